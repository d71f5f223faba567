"""Two-way messaging and opt-outs end to end (issue 14) on the local stack: a reply is played with
``POST /_inbound`` on the embedded AWS, which does what End User Messaging does with a text to the local
number (devstack/emulator.py, devstack/sms_voice/): it applies the keyword the text begins with to the
number's opt-out list and answers it (the answer lands in ``/_outbox``), and publishes the documented
payload to the stack's inbound SNS topic. moto delivers it to the inbound queue, and the real inbound
function (``inbound_reply``) reads it there, as the stack's SQS event source does (devstack/queues.py).

The outbox is the witness of what was sent. The stack runs with a 10 s visibility timeout on its queues
(and 10 s function timeouts: Lambda refuses a longer one); the test of hostile records shortens the inbound
queue's to 2 s, so a reply the function gives up on reaches the dead-letter queue (5 receives) within seconds.
"""
from __future__ import annotations

import json
import urllib.parse
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path

import boto3
import pytest
from standardwebhooks.webhooks import Webhook

from devstack import resources
from devstack.receipts import SIMULATOR_SUCCESS
from devstack.receiver import Receiver
from devstack.server import REGION, LocalStack

from .localhttp import Http, wait_for

EVENTS = Path(__file__).parent / "events"
OURS = resources.ORIGINATION_NUMBER
OTHER_OK = sorted(SIMULATOR_SUCCESS)[0]


@pytest.fixture(scope="module")
def stack():
    # An End User Messaging stage: its texts go from the number replies come to (on an SNS stage they go
    # from SNS's numbers, and a reply to one never reaches the stage).
    with LocalStack(app_port=0, aws_port=0, visibility_timeout=10, function_timeout=10, receipt_delay=0.3,
                    settings={"SMS_PROVIDER": "sms-voice"}) as running:
        yield running


@pytest.fixture
def aws(stack):
    return Http(stack.aws_url)


def phone() -> str:
    """A fresh US number for one test (+1 425 55x xxxx: valid, never a simulator number)."""
    return "+1425555" + f"{uuid.uuid4().int % 10_000:04d}"


def client(stack, service):
    return boto3.client(service, endpoint_url=stack.aws_url, region_name=REGION)


def outbox(aws) -> list[dict]:
    return aws.call("GET", "/_outbox")[2]


def reply(aws, origination: str, body: str, **extra) -> dict:
    status, _, answer = aws.call("POST", "/_inbound", {"originationNumber": origination, "messageBody": body,
                                                       **extra})
    assert status == 202, answer
    return answer


def inbound_messages(api, origination: str | None = None) -> list[dict]:
    """Every reply the API lists (all pages), newest first; only ``origination``'s with it."""
    found, token = [], None
    while True:
        status, _, page = api.call("GET", "/messages?direction=inbound&limit=100" +
                                   (f"&next={urllib.parse.quote(token)}" if token else ""))
        assert status == 200, page
        found += page["messages"]
        token = page["next"]
        if not token:
            return [m for m in found if origination is None or m["from"] == origination]


def quiet(stack) -> bool:
    """Nothing waiting on the inbound queue, and nothing in the inbound function."""
    counts = client(stack, "sqs").get_queue_attributes(
        QueueUrl=stack.resources["INBOUND_QUEUE_URL"],
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"])["Attributes"]
    return all(value == "0" for value in counts.values())


def opt_out(api, number: str) -> dict | None:
    status, _, body = api.call("GET", f"/opt-outs/{urllib.parse.quote(number, safe='')}")
    return body if status == 200 else None


def keyword_answer(stack, keyword: str) -> str:
    return next(k.message for k in stack.stage_config.all_keywords if k.keyword.upper() == keyword)


def texts_to(aws, number: str, since: int = 0) -> list[dict]:
    return [s for s in outbox(aws)[since:] if s["to"] == number]


def stop(api, aws, stack, number: str) -> None:
    """``number`` texts STOP and is on the opt-out list, End User Messaging's and the app's."""
    before = len(outbox(aws))
    assert reply(aws, number, "STOP")["action"] == "OPT_OUT"
    [answer] = texts_to(aws, number, before)  # End User Messaging answers STOP itself
    assert (answer["body"], answer["keyword"], answer["from"]) == (keyword_answer(stack, "STOP"), "STOP", OURS)
    # End User Messaging's own list shows the number at once (GET /opt-outs falls back to it); the inbound
    # function's record comes when it has taken the reply off the queue: wait for that too, or a later
    # opt-in could be undone by this STOP still on its way.
    assert wait_for(lambda: opt_out(api, number) and quiet(stack)), "the inbound function did not record the opt-out"


# -- replies -----------------------------------------------------------------------------------------

def test_a_reply_is_stored_once_linked_to_the_message_it_answers_and_fires_a_signed_webhook(api, aws, stack):
    number, text = phone(), f"Sounds good, see you at 5 ({uuid.uuid4().hex[:8]})"
    with Receiver(200, lifetime=120) as receiver:
        status, _, endpoint = api.call("POST", "/webhooks", {"url": receiver.url, "events": ["message.received"]})
        assert status == 201, endpoint
        try:
            status, _, sent = api.call("POST", "/sms", {"to": number, "body": "Your table is booked for 5pm"})
            assert status == 202 and sent["direction"] == "outbound" and sent["from"] == OURS
            before = len(outbox(aws))
            # The same reply delivered twice (SNS delivers at least once): held on the queue, then handed over
            # in one go, once as End User Messaging published it and once more as a second delivery of it.
            stack.inbound.pause()
            try:
                played = reply(aws, number, text)
                sqs, queue = client(stack, "sqs"), stack.resources["INBOUND_QUEUE_URL"]
                [first] = sqs.receive_message(QueueUrl=queue, VisibilityTimeout=0)["Messages"]
                envelope = json.loads(first["Body"])
                assert json.loads(envelope["Message"])["inboundMessageId"] == played["inboundMessageId"]
                client(stack, "sns").publish(TopicArn=envelope["TopicArn"], Message=envelope["Message"])
            finally:
                stack.inbound.resume()
            # Quiet: both copies were handed over together (held on the queue until then), and nothing is
            # left on the queue or in the function, so a second record would show now.
            assert wait_for(lambda: inbound_messages(api, number) and quiet(stack))
            [stored] = inbound_messages(api, number)
            assert {k: stored[k] for k in ("direction", "channel", "from", "to", "body", "status", "inReplyTo")} == {
                "direction": "inbound", "channel": "sms", "from": number, "to": OURS, "body": text,
                "status": "received", "inReplyTo": sent["id"]}
            assert stored["receivedAt"] and api.call("GET", f"/messages/{stored['id']}")[2] == stored
            listed = api.call("GET", "/messages?limit=100")[2]["messages"]  # both directions, newest first
            assert [m["id"] for m in listed].index(stored["id"]) < [m["id"] for m in listed].index(sent["id"])

            deliveries = receiver.wait_for(lambda ds: [d for d in ds if d.event.get("data", {}).get("id") ==
                                                       stored["id"]])
            assert deliveries and len(deliveries) == 1  # one reply, one event
            event = Webhook(endpoint["secret"]).verify(deliveries[0].body, deliveries[0].headers)
            assert event["type"] == "message.received" and event["data"]["inReplyTo"] == sent["id"]
            assert texts_to(aws, number, before) == []  # a reply is answered by nobody
            assert stack.inbound.errors == 0
        finally:
            api.call("DELETE", f"/webhooks/{endpoint['id']}")


def registered_keyword(stack) -> str:
    """The local number's registered keyword, which End User Messaging puts in every payload's
    ``messageKeyword`` (tests/events/sms-voice-two-way-payload.json)."""
    [number] = [n for n in stack.emulator.sms_voice.phone_numbers.values() if n["PhoneNumber"] == OURS]
    return number["registered_keyword"]


def test_help_is_answered_and_the_text_is_still_a_reply(api, aws, stack):
    number = phone()
    before = len(outbox(aws))
    played = reply(aws, number, "help")
    assert (played["messageKeyword"], played["published"]) == (registered_keyword(stack), True)
    [answer] = texts_to(aws, number, before)
    assert (answer["body"], answer["keyword"], answer["from"]) == (keyword_answer(stack, "HELP"), "HELP", OURS)
    assert wait_for(lambda: inbound_messages(api, number))[0]["body"] == "help"
    assert opt_out(api, number) is None
    assert api.call("POST", "/sms", {"to": number, "body": "Still here"})[0] == 202


def test_every_payload_names_the_numbers_registered_keyword_never_what_the_text_begins_with(api, aws, stack):
    number = phone()
    stack.inbound.pause()
    try:
        played = [reply(aws, number, body) for body in ("help", "Stop", "Yes please", "JOIN")]
        sqs, queue = client(stack, "sqs"), stack.resources["INBOUND_QUEUE_URL"]
        published = {}
        while len(published) < len(played):
            got = sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10, VisibilityTimeout=0,
                                      WaitTimeSeconds=1).get("Messages", [])
            assert got, "End User Messaging did not publish every text"
            for message in got:
                payload = json.loads(json.loads(message["Body"])["Message"])
                if payload["originationNumber"] == number:
                    published[payload["inboundMessageId"]] = payload
    finally:
        stack.inbound.resume()
    assert registered_keyword(stack) == f"KEYWORD_{stack.emulator.sms_voice.account}"
    assert {p["messageKeyword"] for p in played} == {registered_keyword(stack)}
    assert {p["messageKeyword"] for p in published.values()} == {registered_keyword(stack)}
    assert [p["action"] for p in played] == ["AUTOMATIC_RESPONSE", "OPT_OUT", None, None]
    assert wait_for(lambda: opt_out(api, number)), "STOP, read from the body, opts out"


def test_the_documented_payload_is_a_reply_and_opts_nobody_out_whatever_its_message_keyword(api, aws, stack):
    """AWS's example (``"messageKeyword": "JOIN"``, ``"messageBody": "EXAMPLE"``) published to the inbound topic
    for a number of ours, as is and with STOP in ``messageKeyword``: each is stored, nobody is opted out, nothing
    is sent."""
    documented = json.loads((EVENTS / "sms-voice-two-way-payload.json").read_text())["event"]
    numbers = {"JOIN": phone(), "STOP": phone()}
    before = len(outbox(aws))
    for keyword, number in numbers.items():
        client(stack, "sns").publish(TopicArn=stack.resources["INBOUND_TOPIC_ARN"], Message=json.dumps({
            **documented, "originationNumber": number, "destinationNumber": OURS, "messageKeyword": keyword,
            "inboundMessageId": str(uuid.uuid4())}))
    for number in numbers.values():
        assert [m["body"] for m in wait_for(lambda: inbound_messages(api, number))] == ["EXAMPLE"]
    assert wait_for(lambda: quiet(stack))
    assert [opt_out(api, number) for number in numbers.values()] == [None, None]
    assert outbox(aws)[before:] == [] and stack.inbound.errors == 0


# -- opt-outs ----------------------------------------------------------------------------------------

def test_stop_then_a_send_to_that_number_is_409_and_nothing_reaches_the_outbox(api, aws, stack):
    number = phone()
    stop(api, aws, stack, number)
    assert opt_out(api, number)["source"] == "recipient"
    listed = client(stack, "pinpoint-sms-voice-v2").describe_opted_out_numbers(
        OptOutListName=stack.env["OPT_OUT_LIST_NAME"], OptedOutNumbers=[number])["OptedOutNumbers"]
    assert [(n["OptedOutNumber"], n["EndUserOptedOut"]) for n in listed] == [(number, True)]
    before = len(outbox(aws))
    status, _, body = api.call("POST", "/sms", {"to": number, "body": "One more offer for you"})
    assert status == 409 and body["error"]["code"] == "RecipientOptedOut"
    assert texts_to(aws, number, before) == []


def test_the_same_for_a_batch_item(api, aws, stack):
    number = phone()
    stop(api, aws, stack, number)
    before = len(outbox(aws))
    status, _, batch = api.call("POST", "/batches", {"messages": [
        {"to": number, "body": "Batch offer one"}, {"to": OTHER_OK, "body": f"batch {uuid.uuid4().hex[:8]}"}]})
    assert status == 202 and batch["accepted"] == 1, batch
    assert [(r["index"], r["error"]["code"]) for r in batch["rejected"]] == [(0, "RecipientOptedOut")]
    assert wait_for(lambda: api.call("GET", f"/batches/{batch['id']}")[2]["done"])
    assert texts_to(aws, number, before) == [] and len(texts_to(aws, OTHER_OK, before)) == 1


def test_opt_back_in_then_send_and_a_second_opt_in_within_30_days_is_409(api, aws, stack):
    number = phone()
    path = f"/opt-outs/{urllib.parse.quote(number, safe='')}"
    stop(api, aws, stack, number)
    assert api.call("DELETE", path)[0] == 204
    assert opt_out(api, number) is None
    sms = client(stack, "pinpoint-sms-voice-v2")
    assert sms.describe_opted_out_numbers(OptOutListName=stack.env["OPT_OUT_LIST_NAME"],
                                          OptedOutNumbers=[number])["OptedOutNumbers"] == []
    before = len(outbox(aws))
    assert api.call("POST", "/sms", {"to": number, "body": "Welcome back to our updates"})[0] == 202
    assert len(texts_to(aws, number, before)) == 1

    stop(api, aws, stack, number)  # out again; opting in again is for 30 days from the first opt-in
    status, _, body = api.call("DELETE", path)
    assert status == 409 and body["error"]["code"] == "OptInTooSoon"
    soonest = datetime.now(timezone.utc) + timedelta(days=30)
    assert any(day.strftime("%Y-%m-%d") in body["error"]["message"] for day in (soonest - timedelta(days=1), soonest))
    assert opt_out(api, number)
    before = len(outbox(aws))
    assert api.call("POST", "/sms", {"to": number, "body": "Are you still there?"})[0] == 409
    assert texts_to(aws, number, before) == []


def test_the_app_keeps_the_numbers_own_opt_out_list(stack):
    """Two-way leaves the number on its own list (issue 20): the list the app reads and writes is the one
    End User Messaging checks before every send from that number."""
    sms = client(stack, "pinpoint-sms-voice-v2")
    (number,) = [n for n in sms.describe_phone_numbers()["PhoneNumbers"] if n["PhoneNumber"] == OURS]
    assert number["TwoWayEnabled"] and stack.env["OPT_OUT_LIST_NAME"] == number["OptOutListName"] == "Default"


def test_a_number_opted_out_at_end_user_messaging_only_is_refused_as_opted_out(api, aws, stack):
    """Put on the list outside the app (the AWS console, another stage): the provider refuses the send,
    with the same code."""
    number = phone()
    client(stack, "pinpoint-sms-voice-v2").put_opted_out_number(OptOutListName=stack.env["OPT_OUT_LIST_NAME"],
                                                                OptedOutNumber=number)
    before = len(outbox(aws))
    status, _, body = api.call("POST", "/sms", {"to": number, "body": "Hello from the console"})
    assert status == 409 and body["error"]["code"] == "RecipientOptedOut"
    assert texts_to(aws, number, before) == []


# -- hostile replies ---------------------------------------------------------------------------------

def test_hostile_replies_to_inbound_are_refused_or_recorded_and_nothing_is_sent(api, aws, stack):
    number = phone()
    before = len(outbox(aws))
    long_body = ("A" * 9_990) + uuid.uuid4().hex[:10]  # 10,000 characters
    assert reply(aws, number, long_body)["published"] is True
    stored = wait_for(lambda: inbound_messages(api, number))
    assert stored and long_body.startswith(stored[0]["body"][:1000]) and len(stored[0]["body"]) >= 1600
    for raw in (b'{"originationNumber": "+14255550100", "messageBody": "caf\xe9"}',  # not UTF-8
                b'{"originationNumber": "+14255550100", "messageBody": "\\ud800"}',  # a lone surrogate
                b'{"messageBody": "no sender"}', b'{"originationNumber": "+14255550100"}', b'[1, 2]', b'{'):
        assert aws.call("POST", "/_inbound", raw=raw)[0] == 400, raw
    status, _, answer = aws.call("POST", "/_inbound", {"originationNumber": number, "messageBody": "spoof",
                                                       "destinationNumber": "+14255550199"})
    assert status == 404, answer  # none of the account's numbers: End User Messaging never sees it
    assert wait_for(lambda: quiet(stack))
    assert len(inbound_messages(api, number)) == 1
    assert outbox(aws)[before:] == [] and stack.inbound.errors == 0


def test_hostile_records_on_the_topic_and_queue_are_recorded_or_dead_lettered_never_sent(api, aws, stack, request):
    """What only a publisher other than End User Messaging could put there (deployed, the topic's policy lets
    End User Messaging alone publish): each is stored as a reply or ends in the dead-letter queue, the
    function never fails as a whole, and nothing is sent."""
    number, mark = phone(), uuid.uuid4().hex[:12]
    documented = {"originationNumber": number, "destinationNumber": OURS, "messageKeyword": "KEYWORD_1",
                  "messageBody": "", "inboundMessageId": "", "previousPublishedMessageId": "nope"}

    def payload(name, **change):
        return json.dumps({**documented, "messageBody": f"{name} {mark}", "inboundMessageId": str(uuid.uuid4()),
                           **change})

    published = {
        "spoofed destination": payload("spoofed destination", destinationNumber="+14255550199"),
        "missing sender": json.dumps({k: v for k, v in json.loads(payload("missing sender")).items()
                                      if k != "originationNumber"}),
        "missing id": json.dumps({k: v for k, v in json.loads(payload("missing id")).items()
                                  if k != "inboundMessageId"}),
        "lone surrogate": payload("lone surrogate").replace(mark, mark + "\\ud800"),  # JSON's escape of one
        "not json": f"not json {mark}",
        "unknown keys": payload("unknown keys", somethingNew={"nested": [1, 2]}),
    }
    before = len(outbox(aws))
    sns, sqs = client(stack, "sns"), client(stack, "sqs")
    # What the function refuses comes back after the queue's visibility timeout, 5 times: 2 s here, not the stack's
    # 10, so that it is dead-lettered within seconds. Lambda checks a function's timeout against the visibility
    # timeout when the mapping is made (devstack/queues.py), not after; the inbound function holds a reply for
    # milliseconds, so nothing comes back while it still holds it.
    inbound = stack.resources["INBOUND_QUEUE_URL"]
    sqs.set_queue_attributes(QueueUrl=inbound, Attributes={"VisibilityTimeout": "2"})
    request.addfinalizer(lambda: sqs.set_queue_attributes(QueueUrl=inbound, Attributes={"VisibilityTimeout": "10"}))
    for message in published.values():
        sns.publish(TopicArn=stack.resources["INBOUND_TOPIC_ARN"], Message=message)
    sqs.send_message(QueueUrl=stack.resources["INBOUND_QUEUE_URL"], MessageBody=f"no SNS envelope {mark}")
    names = [*published, "no SNS envelope"]

    def dead_letters() -> list[str]:
        found = []
        while True:
            got = sqs.receive_message(QueueUrl=stack.resources["INBOUND_DLQ_URL"], MaxNumberOfMessages=10,
                                      VisibilityTimeout=0).get("Messages", [])
            bodies = [m["Body"] for m in got]
            if not got or all(b in found for b in bodies):
                return found
            found += [b for b in bodies if b not in found]

    def settled():
        if not quiet(stack):
            return None
        stored = [m["body"] for m in inbound_messages(api) if mark in (m["body"] or "")]
        dead = [b for b in dead_letters() if mark in b]
        outcome = {name: ([s for s in stored if name in s], [d for d in dead if name in d]) for name in names}
        return outcome if all(s or d for s, d in outcome.values()) else None

    outcome = wait_for(settled, every=1.0)
    assert outcome, "some hostile records were neither recorded nor dead-lettered"
    for name, (stored, dead) in outcome.items():
        assert len(stored) <= 1, name  # never stored twice
    assert outcome["unknown keys"][0], "a payload with keys AWS may add later is still a reply"
    assert outbox(aws)[before:] == [] and stack.inbound.errors == 0
