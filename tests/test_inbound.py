"""Replies (issue 14): the inbound function stores End User Messaging's documented two-way payload as a
message (once per ``inboundMessageId``, linked to the message it answers), applies opt-out and opt-in
keywords, fires ``message.received``, and never crashes or sends anything on hostile input: what it
cannot read goes back to the queue (and, after the retries, to the dead-letter queue)."""
from __future__ import annotations

import json
import re
from pathlib import Path

import boto3
import botocore.session
import pytest
from botocore.exceptions import ClientError
from botocore.stub import Stubber
from moto.core import DEFAULT_ACCOUNT_ID
from moto.sns.models import sns_backends

from tests.conftest import REGION, body_of, post
from chalicelib.core import aws
from chalicelib.replies import inbound
from chalicelib.sending import messages
from chalicelib.core import store
from chalicelib.webhooks import events as webhook_events
from chalicelib.core.settings import get_settings
from chalicelib.sending.validation import Outbound

DOC = json.loads((Path(__file__).parent / "events" / "sms-voice-two-way-payload.json").read_text())
PAYLOAD, ENVELOPE = DOC["event"], DOC["envelope"]
OUR_NUMBER = PAYLOAD["destinationNumber"]  # the documented example's "dedicated phone number"
SENDER = PAYLOAD["originationNumber"]


@pytest.fixture
def two_way(aws_env):
    """A stage with replies on, whose number is the documented destination number."""
    aws_env(INBOUND_ENABLED="1", ORIGINATION_NUMBER=OUR_NUMBER, OPT_IN_KEYWORDS="START,UNSTOP")
    return aws_env


@pytest.fixture
def nothing_sent(two_way):
    """Any sms-voice call fails the test (a Stubber with no responses), and SNS's outbox stays empty."""
    with Stubber(aws.client("pinpoint-sms-voice-v2")) as stub:
        yield
        stub.assert_no_pending_responses()
    assert list(sns_backends[DEFAULT_ACCOUNT_ID][REGION].sms_messages.values()) == []


def sqs_record(payload=None, *, body=None, message_id="sqs-1", timestamp=ENVELOPE["Timestamp"], **changes) -> dict:
    """An SQS record carrying an SNS notification of ``payload`` (the documented one, with ``changes``),
    or the raw ``body`` given."""
    if body is None:
        message = {**(PAYLOAD if payload is None else payload), **changes}
        body = json.dumps({**ENVELOPE, "Timestamp": timestamp, "Message": json.dumps(message)})
    return {"messageId": message_id, "receiptHandle": "handle", "body": body,
            "attributes": {"ApproximateReceiveCount": "1"}, "eventSource": "aws:sqs"}


def event(*records) -> dict:
    return {"Records": list(records)}


def reply_of(payload=PAYLOAD) -> dict | None:
    record = store.get(inbound.reply_id(payload["inboundMessageId"]))
    return store.public(record) if record else None


def outbound_with_provider_id(provider_id: str) -> str:
    record = messages.new_record(Outbound("sms", SENDER, "Reply JOIN to join"), get_settings())
    record.update(status=store.SENT, providerMessageId=provider_id)
    store.create(record)
    return record["id"]


def test_the_documented_payload_is_a_reply_linked_to_the_message_it_answers(client, nothing_sent):
    answered = outbound_with_provider_id(PAYLOAD["previousPublishedMessageId"])
    assert inbound.handle(event(sqs_record())) == {"batchItemFailures": []}
    reply = body_of(client.http.get(f"/messages/{inbound.reply_id(PAYLOAD['inboundMessageId'])}"))
    assert reply == {**reply, "direction": "inbound", "channel": "sms", "from": SENDER, "to": OUR_NUMBER,
                     "body": "EXAMPLE", "status": "received", "providerMessageId": PAYLOAD["inboundMessageId"],
                     "receivedAt": ENVELOPE["Timestamp"], "inReplyTo": answered, "error": None, "dryRun": False}
    assert set(reply) == set(store.PUBLIC_FIELDS)
    sent = body_of(client.http.get(f"/messages/{answered}"))
    assert (sent["direction"], sent["inReplyTo"], sent["receivedAt"]) == ("outbound", None, None)

    listed = {d: [m["id"] for m in body_of(client.http.get(f"/messages?direction={d}"))["messages"]]
              for d in ("inbound", "outbound")}
    assert listed == {"inbound": [reply["id"]], "outbound": [answered]}
    both = body_of(client.http.get("/messages"))["messages"]
    assert [m["id"] for m in both] == [reply["id"], answered]  # newest first


def test_a_reply_to_a_message_we_do_not_know_has_no_in_reply_to(nothing_sent):
    inbound.handle(event(sqs_record(previousPublishedMessageId="not-ours")))
    assert reply_of()["inReplyTo"] is None
    other = {**PAYLOAD, "inboundMessageId": "second"}
    del other["previousPublishedMessageId"]
    inbound.handle(event(sqs_record(other)))
    assert reply_of(other)["inReplyTo"] is None


def test_the_same_reply_delivered_twice_is_stored_once(client, nothing_sent):
    twice = event(sqs_record(message_id="a"), sqs_record(message_id="b"))
    assert inbound.handle(twice) == {"batchItemFailures": []}
    assert inbound.handle(event(sqs_record(message_id="c"))) == {"batchItemFailures": []}
    assert [m["from"] for m in body_of(client.http.get("/messages?direction=inbound"))["messages"]] == [SENDER]


def test_unknown_keys_are_ignored(nothing_sent):
    assert inbound.handle(event(sqs_record(carrier="X", newField={"a": 1}))) == {"batchItemFailures": []}
    assert reply_of()["body"] == "EXAMPLE"


def test_outbound_messages_show_where_they_came_from(client, two_way):
    sent = body_of(post(client, "/sms", {"to": "+14255550123", "body": "hi"}))
    assert (sent["direction"], sent["from"]) == ("outbound", None)  # SNS chooses the number
    two_way(SMS_PROVIDER="sms-voice")
    with Stubber(aws.client("pinpoint-sms-voice-v2")) as stub:
        stub.add_response("send_text_message", {"MessageId": "eum-1"})
        sent = body_of(post(client, "/sms", {"to": "+14255550123", "body": "hi"}))
    assert (sent["direction"], sent["from"]) == ("outbound", OUR_NUMBER)
    old = messages.new_record(Outbound("sms", "+14255550123", "from before replies"), get_settings())
    for field in ("direction", "from"):
        del old[field]
    store.create(old)
    assert body_of(client.http.get(f"/messages/{old['id']}"))["direction"] == "outbound"


# -- hostile replies ---------------------------------------------------------------------------------

LONG = "x" * 10_000


@pytest.mark.parametrize("case, record", [
    ("not JSON", sqs_record(body="not json {")),
    ("invalid UTF-8 bytes", sqs_record(body=b'{"Type": "Notification", "Message": "\xff\xfe"}')),
    ("not an SNS notification", sqs_record(body=json.dumps(PAYLOAD))),
    ("Message not JSON", sqs_record(body=json.dumps({**ENVELOPE, "Message": "STOP"}))),
    ("Message not an object", sqs_record(body=json.dumps({**ENVELOPE, "Message": "[1, 2]"}))),
    ("no Timestamp", sqs_record(body=json.dumps({"Type": "Notification", "Message": json.dumps(PAYLOAD)}))),
    *[(f"missing {name}", sqs_record({k: v for k, v in PAYLOAD.items() if k != name}))
      for name in ("originationNumber", "destinationNumber", "messageBody", "inboundMessageId")],
    ("body not a string", sqs_record(messageBody=["STOP"])),
    ("sender not E.164", sqs_record(originationNumber="4255550182")),
    ("sender with a lone surrogate", sqs_record(originationNumber="+1425555\ud8000")),
    ("spoofed destinationNumber", sqs_record(destinationNumber="+12065550100")),
    ("an id that is not one", sqs_record(inboundMessageId="x" * 300)),
])
def test_a_reply_that_cannot_be_read_goes_back_to_the_queue_and_nothing_else_is_held_back(
        client, nothing_sent, case, record):
    good = sqs_record({**PAYLOAD, "inboundMessageId": "good-one"}, message_id="good")
    bad = {**record, "messageId": "bad"}
    assert inbound.handle(event(bad, good)) == {"batchItemFailures": [{"itemIdentifier": "bad"}]}, case
    listed = body_of(client.http.get("/messages?direction=inbound"))["messages"]
    assert [m["providerMessageId"] for m in listed] == ["good-one"]


def test_a_long_body_and_invalid_unicode_are_recorded(nothing_sent):
    long_reply = {**PAYLOAD, "inboundMessageId": "long", "messageBody": LONG}
    broken = {**PAYLOAD, "inboundMessageId": "broken", "messageBody": "caf\udce9 ok"}
    assert inbound.handle(event(sqs_record(long_reply), sqs_record(broken, message_id="2"))) == {
        "batchItemFailures": []}
    assert reply_of(long_reply)["body"] == LONG[:inbound.MAX_BODY] and inbound.MAX_BODY == 5000
    assert reply_of(broken)["body"] == "caf\ufffd ok"


def test_the_stage_number_is_not_checked_where_the_stage_does_not_know_it(nothing_sent, two_way):
    two_way(ORIGINATION_NUMBER=None)  # a pool: any of its numbers may receive
    assert inbound.handle(event(sqs_record(destinationNumber="+12065550100"))) == {"batchItemFailures": []}


def test_a_record_dynamodb_refuses_goes_back_alone(nothing_sent, monkeypatch):
    real = store.create_once

    def refuse(record):
        if record["providerMessageId"] == "refused":
            raise ClientError({"Error": {"Code": "ProvisionedThroughputExceededException", "Message": "slow"}},
                              "PutItem")
        return real(record)

    monkeypatch.setattr(store, "create_once", refuse)
    records = event(sqs_record({**PAYLOAD, "inboundMessageId": "refused"}, message_id="r"),
                    sqs_record(message_id="ok"))
    assert inbound.handle(records) == {"batchItemFailures": [{"itemIdentifier": "r"}]}
    assert reply_of() is not None


def test_odd_events_never_crash_the_function(nothing_sent):
    assert inbound.handle({}) == {"batchItemFailures": []}
    assert inbound.handle({"Records": [None, "x", {"body": "{}"}]}) == {"batchItemFailures": []}


# -- keywords ----------------------------------------------------------------------------------------

def keyword_reply(body: str, n: int, timestamp: str) -> dict:
    """A reply of ``body``, as End User Messaging publishes it: its ``messageKeyword`` is the number's registered
    keyword (the documented payload's ``JOIN``), whatever the recipient typed."""
    return sqs_record({**PAYLOAD, "messageBody": body, "inboundMessageId": f"kw-{n}"}, message_id=f"m{n}",
                      timestamp=timestamp)


def opted_out(client) -> bool:
    return client.http.get(f"/opt-outs/%2B{SENDER[1:]}").status_code == 200


@pytest.mark.parametrize("body, opts_out", [
    ("STOP", True), ("stop", True), ("  Unsubscribe  ", True), ("STOP please", True), ("quit", True),
    ("Please don't stop", False), ("Stopping by later", False), ("HELP", False), ("", False),
])
def test_a_reply_beginning_with_an_opt_out_keyword_opts_the_sender_out(client, nothing_sent, body, opts_out):
    assert inbound.handle(event(keyword_reply(body, 1, "2026-11-26T10:00:00.000Z"))) == {"batchItemFailures": []}
    assert opted_out(client) is opts_out
    if opts_out:
        entry = body_of(client.http.get(f"/opt-outs/%2B{SENDER[1:]}"))
        assert entry == {"number": SENDER, "optedOutAt": "2026-11-26T10:00:00.000Z", "source": "recipient"}
        response = post(client, "/sms", {"to": SENDER, "body": "are you there?"})  # nothing_sent: no provider call
        assert response.status_code == 409 and body_of(response)["error"]["code"] == "RecipientOptedOut"


def test_keywords_apply_in_the_order_they_were_sent_whatever_order_they_arrive(client, nothing_sent):
    stop, start = keyword_reply("STOP", 1, "2026-11-26T10:00:00.000Z"), keyword_reply("START", 2,
                                                                                         "2026-11-26T10:05:00.000Z")
    inbound.handle(event(start))
    inbound.handle(event(stop))  # older: changes nothing
    assert not opted_out(client)
    inbound.handle(event(keyword_reply("STOP", 3, "2026-11-26T10:06:00.000Z")))
    assert opted_out(client)
    inbound.handle(event(keyword_reply("STOP", 3, "2026-11-26T10:06:00.000Z")))  # a redelivery
    inbound.handle(event(keyword_reply("unstop", 4, "2026-11-26T10:07:00.000Z")))
    assert not opted_out(client)


def test_the_stages_own_opt_out_keywords_count_too(client, nothing_sent, two_way):
    two_way(OPT_OUT_KEYWORDS="BASTA")
    inbound.handle(event(keyword_reply("basta", 1, "2026-11-26T10:00:00.000Z")))
    assert opted_out(client)


# -- the body decides, never messageKeyword ---------------------------------------------------------
# AWS: messageKeyword is "the registered keyword that's associated with your dedicated phone number", and its
# example pairs "JOIN" with the body "EXAMPLE" (tests/events/sms-voice-two-way-payload.json).

def test_the_documented_example_is_a_reply_and_changes_no_opt_out_even_when_join_is_an_opt_in_word(
        client, nothing_sent, two_way):
    assert (PAYLOAD["messageKeyword"], PAYLOAD["messageBody"]) == ("JOIN", "EXAMPLE")
    assert DOC["fields"]["messageKeyword"] == ("The registered keyword that's associated with your dedicated "
                                               "phone number.")
    assert DOC["fields"]["messageBody"] == "The message that the customer sent to you."
    two_way(OPT_IN_KEYWORDS="JOIN,START")
    inbound.handle(event(keyword_reply("STOP", 1, "2020-11-26T23:00:00.000Z")))  # before the example's 23:48
    listed = body_of(client.http.get(f"/opt-outs/%2B{SENDER[1:]}"))
    assert inbound.handle(event(sqs_record())) == {"batchItemFailures": []}
    assert reply_of()["body"] == "EXAMPLE" and reply_of()["status"] == "received"
    assert body_of(client.http.get(f"/opt-outs/%2B{SENDER[1:]}")) == listed  # still out, since the STOP


def test_a_stop_sent_before_the_documented_reply_still_applies_when_it_arrives_after_it(
        client, nothing_sent, two_way):
    """The example is no keyword: it leaves no mark that would make an earlier STOP arrive too late."""
    two_way(OPT_IN_KEYWORDS="JOIN")
    inbound.handle(event(sqs_record()))  # sent at 23:48:02
    inbound.handle(event(keyword_reply("STOP", 1, "2020-11-26T23:40:00.000Z")))  # sent before, arrives after
    assert opted_out(client)


@pytest.mark.parametrize("registered", ["STOP", "unsubscribe", "BASTA"])
def test_a_message_keyword_never_opts_out_a_reply_that_is_no_keyword(client, nothing_sent, two_way, registered):
    two_way(OPT_OUT_KEYWORDS="BASTA")
    inbound.handle(event(sqs_record(messageKeyword=registered, messageBody="Sounds good, see you at 5")))
    assert reply_of()["body"] == "Sounds good, see you at 5"
    assert not opted_out(client)


@pytest.mark.parametrize("registered", ["START", "unstop", "JOIN"])
def test_a_message_keyword_never_opts_back_in_a_reply_that_is_no_keyword(client, nothing_sent, two_way, registered):
    two_way(OPT_IN_KEYWORDS="START,UNSTOP,JOIN")
    inbound.handle(event(keyword_reply("STOP", 1, "2026-11-26T10:00:00.000Z")))
    inbound.handle(event(sqs_record(messageKeyword=registered, messageBody="EXAMPLE", inboundMessageId="later",
                                    timestamp="2026-11-26T10:05:00.000Z")))
    assert opted_out(client)


def test_a_keyword_of_more_than_one_word_is_read_from_the_body(client, nothing_sent, two_way):
    """A keyword may hold spaces (botocore's model of PutKeyword: pattern ``[ \\S]+``); the body begins with
    it when the next character is a space or there is none."""
    model = botocore.session.get_session().get_service_model("pinpoint-sms-voice-v2")
    pattern = model.shape_for("Keyword").metadata["pattern"]
    assert re.fullmatch(pattern, "NO MORE") and re.fullmatch(pattern, "SIGN ME UP")
    two_way(OPT_OUT_KEYWORDS="NO MORE", OPT_IN_KEYWORDS="SIGN ME UP")
    inbound.handle(event(keyword_reply("No more texts, thanks", 1, "2026-11-26T10:00:00.000Z")))
    assert opted_out(client)
    inbound.handle(event(keyword_reply("nomore", 2, "2026-11-26T10:01:00.000Z")))
    inbound.handle(event(keyword_reply("Sign me", 3, "2026-11-26T10:02:00.000Z")))
    assert opted_out(client)
    inbound.handle(event(keyword_reply("sign me up", 4, "2026-11-26T10:03:00.000Z")))
    assert not opted_out(client)


# -- the webhook ------------------------------------------------------------------------------------

def test_a_stored_reply_makes_a_message_received_event_without_its_body(nothing_sent):
    inbound.handle(event(sqs_record()))
    item = boto3.client("dynamodb", region_name=REGION).get_item(
        TableName=get_settings().messages_table, Key={"id": {"S": inbound.reply_id(PAYLOAD["inboundMessageId"])}})
    made = webhook_events.event_for({"eventName": "INSERT", "dynamodb": {"NewImage": item["Item"]}})
    expected = {k: v for k, v in reply_of().items() if k != "body"}
    assert (made["type"], made["data"]) == ("message.received", expected)


# -- a stage without replies ------------------------------------------------------------------------

def test_a_stage_without_replies_lists_no_inbound_page_and_reads_no_inbound_partition(client, aws_env):
    post(client, "/sms", {"to": "+14255550123", "body": "hi"})
    queries = []
    aws.client("dynamodb").meta.events.register("provide-client-params.dynamodb.Query", lambda params, **_: queries.append(
        params["ExpressionAttributeValues"][":pk"]["S"]))
    assert body_of(client.http.get("/messages?direction=inbound")) == {"messages": [], "next": None}
    assert queries == []
    assert len(body_of(client.http.get("/messages"))["messages"]) == 1
    assert queries and all(pk.startswith("messages#") for pk in queries)
    bad = client.http.get("/messages?direction=inbound&next=not-a-token")
    assert bad.status_code == 400 and body_of(bad)["error"]["code"] == "InvalidNext"


@pytest.mark.parametrize("value", ["in", "INBOUND", "both", ""])
def test_a_direction_that_is_neither_is_400(client, two_way, value):
    response = client.http.get(f"/messages?direction={value}")
    assert response.status_code == 400
    assert body_of(response)["error"] == {**body_of(response)["error"], "code": "InvalidDirection",
                                          "field": "direction"}


def test_every_call_of_a_reply_passes_the_model(nothing_sent):
    """The reply's writes and look-ups (the keyword transaction included), with the lengths, patterns
    and enums of botocore's models (tests/test_provider_calls.py's check)."""
    from tests.test_provider_calls import Recorder

    calls = Recorder()
    outbound_with_provider_id(PAYLOAD["previousPublishedMessageId"])
    inbound.handle(event(keyword_reply("STOP", 1, "2026-11-26T10:00:00.000Z"), sqs_record(message_id="x")))
    assert {o for _, o, _ in calls.calls} >= {"TransactWriteItems", "PutItem", "Query"}
    assert not calls.problems(), calls.problems()
