"""The webhook fan-out and delivery functions (``webhook_fanout``, ``webhook_delivery``) on moto's DynamoDB,
KMS and SQS, delivering for real to receivers on 127.0.0.1 that each test starts and stops
(``devstack.receiver``).

Stream records are built on the documented record (tests/events/dynamodb-stream-event.json) with message
items as the app stores them; SQS records on the documented SQS event (tests/events/sqs-event.json) with
the messages moto's queue hands out. Receivers verify every delivery with ``standardwebhooks``."""
from __future__ import annotations

import copy
import json
import logging
import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta, timezone
from email.utils import format_datetime
from pathlib import Path

import boto3
import pytest
from botocore.stub import Stubber
from standardwebhooks import Webhook

from chalicelib.core import aws
from chalicelib.webhooks import netguard
from chalicelib.core import schema
from chalicelib.core import store
from chalicelib.webhooks import delivery as webhook_delivery
from chalicelib.webhooks import events as webhook_events
from chalicelib.webhooks import endpoints as webhooks
from chalicelib.core.settings import get_settings
from devstack.receiver import HANG, Receiver

from .conftest import REGION, body_of, post, sender
from .localhttp import HANG_GUARD
from .test_netguard import RawServer, answer
from .test_webhooks_api import Calls

EVENTS = Path(__file__).parent / "events"
STREAM_EVENT = json.loads((EVENTS / "dynamodb-stream-event.json").read_text())["event"]
SQS_EVENT = json.loads((EVENTS / "sqs-event.json").read_text())["event"]
TO = "+14255550123"


class Context:
    """What Lambda hands the function: the time left."""

    def __init__(self, seconds: float = 30.0):
        self.deadline = time.monotonic() + seconds

    def get_remaining_time_in_millis(self) -> int:
        return int((self.deadline - time.monotonic()) * 1000)


def stream_record(old: dict | None, new: dict | None) -> dict:
    """A stream record of the messages table, shaped as the documented one (INSERT, MODIFY or REMOVE)."""
    record = copy.deepcopy(STREAM_EVENT["Records"][1])  # the guide's MODIFY record
    images = record["dynamodb"]
    images.pop("OldImage"), images.pop("NewImage")
    record["eventName"] = "MODIFY" if old and new else "INSERT" if new else "REMOVE"
    images["Keys"] = {schema.MESSAGES_KEY: (new or old)[schema.MESSAGES_KEY]}
    if old:
        images["OldImage"] = old
    if new:
        images["NewImage"] = new
    return record


def sqs_record(message: dict, **attributes) -> dict:
    """A message moto's queue handed out, as Lambda's SQS event carries it."""
    record = copy.deepcopy(SQS_EVENT["Records"][0])
    record.update(messageId=message["MessageId"], receiptHandle=message["ReceiptHandle"], body=message["Body"],
                  md5OfBody=message["MD5OfBody"])
    record["attributes"].update({k: message["Attributes"][k] for k in (
        "ApproximateReceiveCount", "SentTimestamp", "ApproximateFirstReceiveTimestamp")}, **attributes)
    return record


class Hooks:
    """The API, the functions and the queues of one test."""

    def __init__(self, client):
        self.client = client
        self.sqs = boto3.client("sqs", region_name=REGION)
        self.dynamodb = boto3.client("dynamodb", region_name=REGION)
        self.queue, self.dlq = os.environ["WEBHOOK_QUEUE_URL"], os.environ["WEBHOOK_DLQ_URL"]

    def endpoint(self, url: str, events=None) -> dict:
        response = post(self.client, "/webhooks", {"url": url, **({"events": events} if events else {})})
        assert response.status_code == 201, response.body
        return body_of(response)

    def item(self, message_id: str) -> dict:
        return self.dynamodb.get_item(TableName=os.environ["MESSAGES_TABLE"], Key={"id": {"S": message_id}},
                                      ConsistentRead=True)["Item"]

    def sent_message(self) -> tuple[dict, dict]:
        """An SMS sent through the API: (its item as queued, as sent)."""
        response = post(self.client, "/sms", {"to": TO, "body": "Your parcel is on its way"})
        assert response.status_code == 202, response.body
        sent = self.item(body_of(response)["id"])
        return {**sent, "status": {"S": "queued"}}, sent

    def fan(self, *records) -> dict:
        return sender.webhook_fanout({"Records": list(records)}, Context())

    def received(self, queue: str | None = None, count: int = 10) -> list[dict]:
        got = self.sqs.receive_message(QueueUrl=queue or self.queue, MaxNumberOfMessages=count,
                                       AttributeNames=["All"]).get("Messages", [])
        return sorted(got, key=lambda m: m["MessageId"])

    def deliver(self, messages: list[dict], seconds: float = 30.0, **attributes) -> list[str]:
        """Invoke the delivery function (with ``seconds`` left in its invocation); delete what it did not
        report failed, as the event source does. Returns the failed message ids."""
        result = sender.webhook_delivery({"Records": [sqs_record(m, **attributes) for m in messages]},
                                         Context(seconds))
        failed = [f["itemIdentifier"] for f in result["batchItemFailures"]]
        for m in messages:
            if m["MessageId"] not in failed:
                self.sqs.delete_message(QueueUrl=self.queue, ReceiptHandle=m["ReceiptHandle"])
        return failed

    def again(self, messages: list[dict], window_passes: bool = True) -> list[dict]:
        """What the queue hands out once the retry delay has passed (made to pass now): for the endpoints
        too (their backoff windows end), unless ``window_passes`` is false."""
        if window_passes:
            self.window_passes()
        for m in messages:
            self.sqs.change_message_visibility(QueueUrl=self.queue, ReceiptHandle=m["ReceiptHandle"],
                                               VisibilityTimeout=0)
        return self.received()

    def endpoint_item(self, webhook_id: str) -> dict:
        return webhooks.from_item(self.dynamodb.get_item(TableName=os.environ["WEBHOOKS_TABLE"], Key=webhooks.endpoint_key(
            webhook_id), ConsistentRead=True)["Item"])

    def set_endpoint(self, webhook_id: str, **attributes) -> None:
        """Write attributes of an endpoint item, as another delivery (or time passing) would have."""
        self.dynamodb.update_item(
            TableName=os.environ["WEBHOOKS_TABLE"], Key=webhooks.endpoint_key(webhook_id),
            UpdateExpression="SET " + ", ".join(f"#a{i} = :a{i}" for i in range(len(attributes))),
            ExpressionAttributeNames={f"#a{i}": name for i, name in enumerate(attributes)},
            ExpressionAttributeValues={f":a{i}": v for i, v in enumerate(webhooks.to_item(attributes).values())})

    def window_passes(self) -> None:
        """Every endpoint's backoff window is over: its ``retryAt`` a moment ago (the next delivery reads it)."""
        past = webhooks.now_iso(datetime.now(timezone.utc) - timedelta(seconds=1))
        for endpoint in webhooks.all_endpoints(get_settings()):
            if webhook_delivery.RETRY_AT in endpoint:
                self.set_endpoint(endpoint[schema.WEBHOOKS_SORT], retryAt=past)

    def queue_events(self, counts: dict[str, int]) -> dict[str, list[str]]:
        """``counts[endpoint id]`` events for each endpoint on the delivery queue, interleaved (so every
        batch holds some of each), as the fan-out puts them; the event ids of each."""
        ids: dict[str, list[str]] = {endpoint_id: [] for endpoint_id in counts}
        bodies = []
        for i in range(max(counts.values())):
            for endpoint_id, count in counts.items():
                if i < count:
                    event_id = f"msg_{endpoint_id[-6:]}{i:04d}"
                    ids[endpoint_id].append(event_id)
                    bodies.append(json.dumps({
                        "eventId": event_id, "endpointId": endpoint_id, "type": "message.sent",
                        "payload": webhook_events.payload({"type": "message.sent", "timestamp": webhooks.now_iso(),
                                                           "data": {"id": event_id}}),
                        "createdAt": webhooks.now_iso()}))
        for start in range(0, len(bodies), 10):
            sent = self.sqs.send_message_batch(QueueUrl=self.queue, Entries=[
                {"Id": str(i), "MessageBody": body} for i, body in enumerate(bodies[start:start + 10])])
            assert not sent.get("Failed"), sent
        return ids

    def batches(self) -> list[list[dict]]:
        """Everything visible on the delivery queue, in batches of (up to) 10 as the event source takes them."""
        taken = []
        while got := self.received():
            taken.append(got)
        return taken

    def deliver_at_once(self, batches: list[list[dict]], **attributes) -> list[str]:
        """The batches delivered by as many instances of the function at once (the event source runs
        up to five); the failed message ids."""
        with ThreadPoolExecutor(max_workers=len(batches)) as pool:
            return [m for failed in pool.map(lambda b: self.deliver(b, **attributes), batches) for m in failed]

    def deliveries(self, webhook_id: str) -> list[dict]:
        return body_of(self.client.http.get(f"/webhooks/{webhook_id}/deliveries"))["deliveries"]


@pytest.fixture
def hooks(client):
    webhook_delivery.forget(None)
    yield Hooks(client)
    webhook_delivery.forget(None)


def verified(delivery, secret: str) -> dict:
    return Webhook(secret).verify(delivery.body, delivery.headers)


# -- the fan-out ---------------------------------------------------------------------------------
def test_each_status_change_makes_one_event_per_subscribed_endpoint(hooks):
    everything = hooks.endpoint("http://127.0.0.1:9/all")
    delivered_only = hooks.endpoint("http://127.0.0.1:9/delivered", ["message.delivered"])
    disabled = hooks.endpoint("http://127.0.0.1:9/disabled")
    webhooks.disable(get_settings(), disabled["id"], "test")
    queued, sent = hooks.sent_message()
    message_id = sent["id"]["S"]
    store.settle(message_id, store.DELIVERED, int(time.time() * 1000), priceUsd=0.00645)
    delivered = hooks.item(message_id)

    result = hooks.fan(stream_record(None, queued),  # created: queued, no event
                       stream_record(queued, sent),  # message.sent
                       stream_record(sent, delivered),  # message.delivered
                       stream_record(delivered, None),  # removed (TTL): no event
                       *STREAM_EVENT["Records"])  # the guide's own records: not messages, no event
    assert result == {"events": 2, "queued": 3}
    bodies = [json.loads(m["Body"]) for m in hooks.received()]
    by_endpoint = {}
    for body in bodies:
        by_endpoint.setdefault(body["endpointId"], []).append(body["type"])
    assert {k: sorted(v) for k, v in by_endpoint.items()} == {
        everything["id"]: ["message.delivered", "message.sent"], delivered_only["id"]: ["message.delivered"]}
    event = next(b for b in bodies if b["type"] == "message.delivered")
    assert set(event) == {"eventId", "endpointId", "type", "payload", "createdAt"}
    payload = json.loads(event["payload"])
    expected = store.public(store.from_item(delivered))
    expected.pop("body")
    assert payload == {"type": "message.delivered", "timestamp": expected["updatedAt"], "data": expected}
    assert payload["data"]["status"] == "delivered" and payload["data"]["priceUsd"] == 0.00645
    assert "body" not in payload["data"] and "Your parcel" not in event["payload"]
    # The same stream batch handed over again makes the same event ids (receivers drop the repeats).
    ids = {(b["endpointId"], b["type"]): b["eventId"] for b in bodies}
    hooks.fan(stream_record(queued, sent), stream_record(sent, delivered))
    again = {(b["endpointId"], b["type"]): b["eventId"] for b in map(lambda m: json.loads(m["Body"]),
                                                                      hooks.received())}
    assert again == ids and len(set(ids.values())) == 2


@pytest.mark.parametrize("old_status, new_status", [
    ("queued", "sending"),  # shown as queued both times
    ("sending", "queued"),
    ("queued", "validated"),  # a dry run fires nothing
    ("sent", "sent"),  # another field changed (the provider id written later)
])
def test_no_event_when_the_shown_status_does_not_change_or_is_not_an_event(hooks, old_status, new_status):
    hooks.endpoint("http://127.0.0.1:9/all")
    _queued, sent = hooks.sent_message()
    old, new = {**sent, "status": {"S": old_status}}, {**sent, "status": {"S": new_status}}
    assert hooks.fan(stream_record(old, new)) == {"events": 0, "queued": 0}
    assert hooks.received() == []


def test_a_batch_summary_makes_no_event(hooks):
    hooks.endpoint("http://127.0.0.1:9/all")
    summary = store.to_item({"id": f"{schema.BATCH_ID_PREFIX}1", "kind": "batch", "status": "sent",
                             "createdAt": "2026-11-25T10:00:00.000Z"})
    assert hooks.fan(stream_record(None, summary)) == {"events": 0, "queued": 0}


@pytest.mark.parametrize("final", ["failed", "unknown"])
def test_the_final_statuses_make_their_events(hooks, final):
    hooks.endpoint("http://127.0.0.1:9/all")
    _queued, sent = hooks.sent_message()
    new = {**sent, "status": {"S": final}}
    assert hooks.fan(stream_record(sent, new))["events"] == 1
    (message,) = hooks.received()
    assert json.loads(message["Body"])["type"] == f"message.{final}"


def test_queue_entries_the_queue_refuses_are_sent_again_and_a_lasting_refusal_fails_the_invocation(hooks):
    hooks.endpoint("http://127.0.0.1:9/a")
    hooks.endpoint("http://127.0.0.1:9/b")
    queued, sent = hooks.sent_message()
    with Stubber(aws.client("sqs")) as sqs:
        sqs.add_response("send_message_batch", {"Successful": [{"Id": "0", "MessageId": "m0", "MD5OfMessageBody": "x"}],
                                                "Failed": [{"Id": "1", "SenderFault": False, "Code": "InternalError"}]})
        sqs.add_response("send_message_batch", {"Successful": [{"Id": "1", "MessageId": "m1", "MD5OfMessageBody": "x"}],
                                                "Failed": []})
        hooks.fan(stream_record(queued, sent))
        sqs.assert_no_pending_responses()
        for _ in range(5):
            sqs.add_response("send_message_batch", {"Successful": [], "Failed": [
                {"Id": "0", "SenderFault": False, "Code": "InternalError"},
                {"Id": "1", "SenderFault": False, "Code": "InternalError"}]})
        with pytest.raises(RuntimeError, match="refused 2"):
            hooks.fan(stream_record(queued, sent))


# -- delivery ------------------------------------------------------------------------------------
def test_a_delivery_is_signed_with_standard_webhooks_and_recorded(hooks):
    with Receiver(200) as receiver:
        endpoint = hooks.endpoint(receiver.url + "?token=query-never-logged")
        queued, sent = hooks.sent_message()
        hooks.fan(stream_record(queued, sent))
        (message,) = hooks.received()
        before = time.time()
        assert hooks.deliver([message]) == []
        after = time.time()
    (delivery,) = receiver.deliveries
    body = json.loads(message["Body"])
    assert verified(delivery, endpoint["secret"]) == json.loads(body["payload"])
    assert delivery.body == body["payload"].encode()  # the exact bytes made by the fan-out
    assert delivery.id == body["eventId"] and delivery.path == "/hooks?token=query-never-logged"
    assert delivery.headers["content-type"] == "application/json"
    assert int(before) <= int(delivery.headers["webhook-timestamp"]) <= after  # when it was signed: epoch seconds
    (attempt,) = hooks.deliveries(endpoint["id"])
    assert {k: attempt[k] for k in ("eventId", "type", "attempt", "outcome", "status", "error", "nextAttemptAt")} == {
        "eventId": body["eventId"], "type": "message.sent", "attempt": 1, "outcome": "delivered", "status": 200,
        "error": None, "nextAttemptAt": None}
    assert hooks.received() == []  # deleted


def test_500_then_200_delivers_the_same_event_id_and_bytes_twice(hooks):
    answers = iter([500, 200])
    with Receiver(lambda delivery: next(answers)) as receiver:
        endpoint = hooks.endpoint(receiver.url)
        queued, sent = hooks.sent_message()
        hooks.fan(stream_record(queued, sent))
        first = hooks.received()
        calls = Calls()
        before = datetime.now(timezone.utc)
        assert hooks.deliver(first) == [first[0]["MessageId"]]
        after = datetime.now(timezone.utc)
        (visibility,) = [p for _s, o, p in calls.calls if o == "ChangeMessageVisibility"]
        assert 24 <= visibility["VisibilityTimeout"] <= 36  # the first retry within a minute
        assert hooks.received() == []  # invisible until then
        backed_off = hooks.endpoint_item(endpoint["id"])  # and the endpoint waits as long (its breaker)
        assert backed_off["failures"] == 1
        second = hooks.again(first)
        assert second[0]["Attributes"]["ApproximateReceiveCount"] == "2"
        assert hooks.deliver(second) == []
        assert "retryAt" not in hooks.endpoint_item(endpoint["id"])  # a success closes it
        assert "failures" not in hooks.endpoint_item(endpoint["id"])
    one, two = receiver.deliveries
    assert one.id == two.id and one.body == two.body
    for delivery in (one, two):
        verified(delivery, endpoint["secret"])
    latest, earliest = hooks.deliveries(endpoint["id"])
    assert (earliest["outcome"], earliest["status"], earliest["error"], earliest["attempt"]) == (
        "retrying", 500, "http", 1)
    assert earliest["nextAttemptAt"] == backed_off["retryAt"]
    # The retry is the backoff after the attempt (as its visibility), whenever the attempt was made.
    next_at = datetime.fromisoformat(earliest["nextAttemptAt"].replace("Z", "+00:00"))
    wait = timedelta(seconds=visibility["VisibilityTimeout"])
    assert before + wait - timedelta(milliseconds=1) <= next_at <= after + wait  # ISO times: to the millisecond
    assert (latest["outcome"], latest["status"], latest["attempt"]) == ("delivered", 200, 2)


def test_410_disables_the_endpoint_and_nothing_more_goes_to_it(hooks):
    with Receiver(410) as receiver:
        endpoint = hooks.endpoint(receiver.url)
        queued, sent = hooks.sent_message()
        hooks.fan(stream_record(queued, sent))
        assert hooks.deliver(hooks.received()) == []
        shown = body_of(hooks.client.http.get(f"/webhooks/{endpoint['id']}"))
        assert shown["enabled"] is False and "410" in shown["disabledReason"]
        # No new event is queued for it, and one already queued is skipped.
        delivered = {**sent, "status": {"S": "delivered"}}
        assert hooks.fan(stream_record(sent, delivered)) == {"events": 1, "queued": 0}
        late = webhook_events.payload({"type": "message.failed", "timestamp": "t", "data": {}})
        hooks.sqs.send_message(QueueUrl=hooks.queue, MessageBody=json.dumps({
            "eventId": "msg_late", "endpointId": endpoint["id"], "type": "message.failed", "payload": late,
            "createdAt": webhooks.now_iso()}))
        assert hooks.deliver(hooks.received()) == []
    assert len(receiver.deliveries) == 1
    skipped, disabled = hooks.deliveries(endpoint["id"])
    assert (disabled["outcome"], disabled["status"]) == ("disabled", 410)
    assert (skipped["eventId"], skipped["outcome"], skipped["error"]) == ("msg_late", "skipped", "endpoint-disabled")


@pytest.mark.parametrize("status", [400, 401, 404, 413, 302, 301])
def test_other_4xx_and_3xx_are_recorded_and_not_retried(hooks, status):
    with Receiver(status) as receiver:
        endpoint = hooks.endpoint(receiver.url)
        queued, sent = hooks.sent_message()
        hooks.fan(stream_record(queued, sent))
        calls = Calls()
        assert hooks.deliver(hooks.received()) == []
    assert len(receiver.deliveries) == 1  # a redirect is not followed
    assert not [o for _s, o, _p in calls.calls if o == "ChangeMessageVisibility"]
    (attempt,) = hooks.deliveries(endpoint["id"])
    assert (attempt["outcome"], attempt["status"], attempt["error"], attempt["nextAttemptAt"]) == (
        "failed", status, "http", None)
    assert hooks.again([]) == []  # nothing left on the queue


@pytest.mark.parametrize("status, retry_after, floor", [
    (429, b"600", 600), (503, b"7200", 7200), (429, None, 0), (503, b"not a date", 0),
    (429, b"http-date", 900)])
def test_retry_after_is_honoured_in_the_visibility(hooks, status, retry_after, floor):
    if retry_after == b"http-date":
        retry_after = format_datetime(datetime.now(timezone.utc) + timedelta(seconds=905), usegmt=True).encode()
    header = b"Retry-After: %s\r\n" % retry_after if retry_after else b""
    with RawServer(answer(status, header)) as server:
        endpoint = hooks.endpoint(f"http://127.0.0.1:{server.port}/hooks")
        queued, sent = hooks.sent_message()
        hooks.fan(stream_record(queued, sent))
        messages = hooks.received()
        calls = Calls()
        assert hooks.deliver(messages) == [messages[0]["MessageId"]]
    (visibility,) = [p["VisibilityTimeout"] for _s, o, p in calls.calls if o == "ChangeMessageVisibility"]
    assert visibility >= floor and (visibility <= 36 if not floor else visibility <= floor + 36)
    (attempt,) = hooks.deliveries(endpoint["id"])
    assert (attempt["outcome"], attempt["status"]) == ("retrying", status)


def test_a_receiver_that_never_answers_is_cut_at_the_timeout(hooks, monkeypatch):
    """The POST is made with the delivery's timeout (netguard cuts the whole exchange at the timeout it is
    given: tests/test_netguard.py), and the function returns while the receiver still holds the request,
    recording a timeout that waited at least that long. How long past the timeout the cut comes is no
    business of a test: the bound below only catches a function that never returns."""
    monkeypatch.setattr(webhook_delivery, "TIMEOUT_SECONDS", 1.5)  # the contract's 10 s, shortened for the test
    given = []
    post = netguard.post

    def spied(target, address, body, headers, timeout):
        given.append(timeout)
        return post(target, address, body, headers, timeout)

    monkeypatch.setattr(netguard, "post", spied)
    with Receiver(HANG) as hanging:
        slow = hooks.endpoint(hanging.url)
        queued, sent = hooks.sent_message()
        hooks.fan(stream_record(queued, sent))
        messages = hooks.received()
        failed = in_thread(lambda: hooks.deliver(messages))  # the receiver holds on until the block ends
        assert len(hanging.deliveries) == 1 and hanging.deliveries[0].status is None
    assert given == [1.5]
    assert failed == [messages[0]["MessageId"]]  # back on the queue, for a retry
    (cut,) = hooks.deliveries(slow["id"])
    assert (cut["outcome"], cut["status"], cut["error"]) == ("retrying", None, "timeout")
    assert cut["durationMs"] >= 1400  # it waited for the timeout (a lower bound: a busy machine only adds)


def test_a_receiver_that_never_answers_holds_back_no_other_record(hooks, monkeypatch):
    """Proved by order: the hanging receiver's request is held until the test lets it go (its timeout made
    longer than the test, a hang guard), and the other endpoint's delivery arrives before that. Were the
    records delivered one after another, the other one would wait for the release, which never comes."""
    monkeypatch.setattr(webhook_delivery, "TIMEOUT_SECONDS", 10 * HANG_GUARD)
    with Receiver(HANG) as hanging, Receiver(200) as quick:
        slow = hooks.endpoint(hanging.url)
        fast = hooks.endpoint(quick.url)
        queued, sent = hooks.sent_message()
        hooks.fan(stream_record(queued, sent))
        # The hanging receiver's record first: one at a time, it would hold the other back.
        messages = sorted(hooks.received(), key=lambda m: json.loads(m["Body"])["endpointId"] != slow["id"])
        assert len(messages) == 2
        outcome: dict = {}
        worker = threading.Thread(target=lambda: outcome.update(failed=hooks.deliver(messages, seconds=20 * HANG_GUARD)),
                                  daemon=True)
        worker.start()
        assert quick.wait_for(lambda ds: ds), "the other endpoint's delivery waited for the hanging one"
        assert hanging.wait_for(lambda ds: ds) and hanging.deliveries[0].status is None  # still held
        assert hooks.deliveries(slow["id"]) == []  # its attempt has not ended
    # Leaving the block let the hanging receiver go: its connection closed, and the function returns.
    worker.join(HANG_GUARD)
    assert not worker.is_alive()
    assert len(hanging.deliveries) == 1 and quick.deliveries[0].status == 200
    slow_body = next(m for m in messages if json.loads(m["Body"])["endpointId"] == slow["id"])
    assert outcome["failed"] == [slow_body["MessageId"]]
    (held,) = hooks.deliveries(slow["id"])
    assert (held["outcome"], held["status"]) == ("retrying", None)
    assert hooks.deliveries(fast["id"])[0]["outcome"] == "delivered"


def in_thread(call):
    """``call()`` on a thread, its result; fails (instead of hanging the suite) if it has not returned within
    the hang guard."""
    result: dict = {}
    worker = threading.Thread(target=lambda: result.update(value=call()), daemon=True)
    worker.start()
    worker.join(HANG_GUARD)
    assert not worker.is_alive(), f"still running after {HANG_GUARD:.0f} s (a hang guard)"
    return result["value"]


# -- the breaker: a failing endpoint is tried once per backoff window, its other events wait ----------
def _event_of(message: dict) -> dict:
    return json.loads(message["Body"])


def test_a_dead_receiver_is_tried_once_per_backoff_window_while_a_healthy_one_gets_every_event(hooks, monkeypatch):
    monkeypatch.setattr(webhook_delivery, "TIMEOUT_SECONDS", 2.0)  # the contract's 10 s, shortened for the test
    calls = Calls()
    with Receiver(HANG) as hanging, Receiver(200) as quick:
        dead, fine = hooks.endpoint(hanging.url), hooks.endpoint(quick.url)
        ids = hooks.queue_events({dead["id"]: 25, fine["id"]: 25})
        batches = hooks.batches()
        assert len(batches) == 5 and all({_event_of(m)["endpointId"] for m in b} == {dead["id"], fine["id"]}
                                         for b in batches)

        # Window 1: five instances at once, each holding events of both endpoints. Each tries the dead
        # receiver once (they cannot know yet), and the other 20 of its events are not tried.
        began = time.time()
        failed = hooks.deliver_at_once(batches)
        first_tries = len(hanging.deliveries)
        assert 1 <= first_tries <= len(batches)
        assert sorted(d.id for d in quick.deliveries) == sorted(ids[fine["id"]])  # every one, in that window
        for delivery in quick.deliveries:
            verified(delivery, fine["secret"])
        dead_messages = [m for b in batches for m in b if _event_of(m)["endpointId"] == dead["id"]]
        assert sorted(failed) == sorted(m["MessageId"] for m in dead_messages)  # all kept on the queue
        # None of them comes back before the endpoint's first window can end (its first retry: 30 s +-20 %,
        # after a try that began with the wave): each visibility counted from the call that set it, so it
        # holds however long the wave took.
        waits = [(at, p["VisibilityTimeout"]) for at, (_s, o, p) in zip(calls.at, calls.calls)
                 if o == "ChangeMessageVisibility"]
        assert len(waits) == 25 and all(at + wait >= began + 24 for at, wait in waits), (began, waits)
        # Only the tries are listed: the events put back made none.
        tries = hooks.deliveries(dead["id"])
        assert len(tries) == first_tries and {(t["outcome"], t["error"]) for t in tries} == {("retrying", "timeout")}
        retry_at = hooks.endpoint_item(dead["id"])["retryAt"]
        assert retry_at >= webhooks.now_iso(datetime.fromtimestamp(began + 24, timezone.utc))
        assert retry_at in {t["nextAttemptAt"] for t in tries}

        # Handed over again inside the window (a queue's delay is not exact): still nothing is tried. The
        # window is made to hold, an hour ahead, however long the test took to get here.
        hooks.set_endpoint(dead["id"], retryAt=webhooks.now_iso(datetime.now(timezone.utc) + timedelta(hours=1)))
        again = hooks.again(dead_messages[:10], window_passes=False)
        assert len(again) == 10 and len(hooks.deliver(again)) == 10
        assert len(hanging.deliveries) == first_tries and len(hooks.deliveries(dead["id"])) == first_tries

        # Each later window: one try, by whichever instance gets there first, however many events wait.
        for window in range(2, 4):
            hooks.window_passes()
            for m in dead_messages:
                hooks.sqs.change_message_visibility(QueueUrl=hooks.queue, ReceiptHandle=m["ReceiptHandle"],
                                                    VisibilityTimeout=0)
            batches = hooks.batches()
            assert sum(len(b) for b in batches) == 25
            assert len(hooks.deliver_at_once(batches)) == 25
            assert len(hanging.deliveries) == first_tries + window - 1, window
            dead_messages = [m for b in batches for m in b]
        assert all(d.status is None for d in hanging.deliveries)  # it never answered any
        assert hooks.endpoint_item(dead["id"])["failures"] >= 3  # the window doubles as it goes on
    assert len(quick.deliveries) == 25
    assert calls.problems() == []  # every call, the breaker's writes included, as botocore's models take it


def test_a_batch_tries_an_endpoint_once_before_its_other_events(hooks, monkeypatch):
    monkeypatch.setattr(webhook_delivery, "TIMEOUT_SECONDS", 2.0)
    with Receiver(HANG) as hanging, Receiver(200) as quick:
        dead, fine = hooks.endpoint(hanging.url), hooks.endpoint(quick.url)
        hooks.queue_events({dead["id"]: 5, fine["id"]: 5})
        (batch,) = hooks.batches()
        failed = hooks.deliver(batch)
        assert len(hanging.deliveries) == 1 and len(quick.deliveries) == 5
    assert sorted(failed) == sorted(m["MessageId"] for m in batch if _event_of(m)["endpointId"] == dead["id"])
    assert len(hooks.deliveries(dead["id"])) == 1


def test_the_endpoint_recovering_closes_its_breaker_and_its_waiting_events_flow(hooks):
    answers = iter([503] + [200] * 20)
    with Receiver(lambda delivery: next(answers)) as receiver:
        endpoint = hooks.endpoint(receiver.url)
        ids = hooks.queue_events({endpoint["id"]: 8})
        (batch,) = hooks.batches()
        assert len(hooks.deliver(batch)) == 8  # one 503, seven put back
        assert len(receiver.deliveries) == 1 and hooks.endpoint_item(endpoint["id"])["failures"] == 1
        assert len(hooks.deliver(hooks.again(batch))) == 0  # the window over: the try succeeds, the rest follow
    assert sorted({d.id for d in receiver.deliveries}) == sorted(ids[endpoint["id"]])
    assert len(receiver.deliveries) == 9  # the first event twice, every other once
    item = hooks.endpoint_item(endpoint["id"])
    assert "retryAt" not in item and "failures" not in item


def test_a_new_event_on_an_endpoint_failing_for_hours_keeps_the_long_window(hooks):
    """The window grows with the endpoint's failures in a row, not only the event's own receives: an
    event that just arrived does not start the breaker again at 30 seconds."""
    with Receiver(500) as receiver:
        endpoint = hooks.endpoint(receiver.url)
        past = webhooks.now_iso(datetime.now(timezone.utc) - timedelta(seconds=1))
        hooks.set_endpoint(endpoint["id"], retryAt=past, failures=8)
        hooks.queue_events({endpoint["id"]: 1})
        calls = Calls()
        (batch,) = hooks.batches()
        assert batch[0]["Attributes"]["ApproximateReceiveCount"] == "1"
        assert len(hooks.deliver(batch)) == 1
    (visibility,) = [p["VisibilityTimeout"] for _s, o, p in calls.calls if o == "ChangeMessageVisibility"]
    assert 2880 <= visibility <= 4320  # an hour +-20 %, the 9th failure's
    assert hooks.endpoint_item(endpoint["id"])["failures"] == 9
    assert calls.problems() == []


def test_an_event_24_hours_old_waiting_on_a_backed_off_endpoint_goes_to_the_dead_letter_queue(hooks):
    with Receiver(500) as receiver:
        endpoint = hooks.endpoint(receiver.url)
        future = webhooks.now_iso(datetime.now(timezone.utc) + timedelta(minutes=30))
        hooks.set_endpoint(endpoint["id"], retryAt=future, failures=20)
        hooks.queue_events({endpoint["id"]: 1})
        (batch,) = hooks.batches()
        sent_ms = int((datetime.now(timezone.utc) - timedelta(hours=24, seconds=1)).timestamp() * 1000)
        assert hooks.deliver(batch, SentTimestamp=str(sent_ms)) == []
    assert receiver.deliveries == []  # not tried: its endpoint still fails
    (kept,) = hooks.received(hooks.dlq)
    assert kept["Body"] == batch[0]["Body"]
    (attempt,) = hooks.deliveries(endpoint["id"])
    assert (attempt["outcome"], attempt["status"], attempt["error"], attempt["durationMs"]) == (
        "dead-lettered", None, None, 0)  # listed, as not tried


def test_the_contract_timeout_is_10_seconds():
    assert webhook_delivery.TIMEOUT_SECONDS == 10


@pytest.mark.parametrize("age, dead", [(timedelta(hours=24, seconds=1), True), (timedelta(hours=23, minutes=59), False)])
def test_a_failure_after_24_hours_goes_to_the_dead_letter_queue(hooks, age, dead):
    with Receiver(500) as receiver:
        endpoint = hooks.endpoint(receiver.url)
        queued, sent = hooks.sent_message()
        hooks.fan(stream_record(queued, sent))
        messages = hooks.received()
        sent_ms = int((datetime.now(timezone.utc) - age).timestamp() * 1000)
        failed = hooks.deliver(messages, SentTimestamp=str(sent_ms), ApproximateReceiveCount="27")
    assert len(receiver.deliveries) == 1
    (attempt,) = hooks.deliveries(endpoint["id"])
    if dead:
        assert failed == [] and attempt["outcome"] == "dead-lettered"
        (kept,) = hooks.received(hooks.dlq)
        assert kept["Body"] == messages[0]["Body"]  # as it was: a redrive sends it again
        assert hooks.again([]) == []
    else:
        assert failed == [messages[0]["MessageId"]] and attempt["outcome"] == "retrying"
        assert hooks.received(hooks.dlq) == []


def test_after_rotation_every_delivery_carries_both_signatures(hooks):
    with Receiver(200) as receiver:
        endpoint = hooks.endpoint(receiver.url)
        rotated = body_of(hooks.client.http.post(f"/webhooks/{endpoint['id']}/rotate"))
        queued, sent = hooks.sent_message()
        hooks.fan(stream_record(queued, sent))
        assert hooks.deliver(hooks.received()) == []
    (delivery,) = receiver.deliveries
    new, old = delivery.signatures
    for signature, secret in ((new, rotated["secret"]), (old, endpoint["secret"])):
        verified(type(delivery)(**{**delivery.__dict__, "headers": {**delivery.headers,
                                                                     "webhook-signature": signature}}), secret)


def test_a_deleted_endpoint_gets_nothing_more(hooks):
    with Receiver(200) as receiver:
        endpoint = hooks.endpoint(receiver.url)
        queued, sent = hooks.sent_message()
        hooks.fan(stream_record(queued, sent))
        messages = hooks.received()
        assert hooks.client.http.delete(f"/webhooks/{endpoint['id']}").status_code == 204
        assert hooks.deliver(messages) == []
    assert receiver.deliveries == []


def test_a_malformed_queue_message_goes_to_the_dead_letter_queue(hooks):
    hooks.sqs.send_message(QueueUrl=hooks.queue, MessageBody="not json")
    assert hooks.deliver(hooks.received()) == []
    assert [m["Body"] for m in hooks.received(hooks.dlq)] == ["not json"]


def test_the_guard_runs_again_at_delivery_time(hooks, monkeypatch):
    """An endpoint made with a name that resolved to loopback, which now resolves elsewhere (DNS
    rebinding): refused and retried, and nothing is sent."""
    with Receiver(200) as receiver:
        endpoint = hooks.endpoint(receiver.url.replace("127.0.0.1", "localhost"))
        queued, sent = hooks.sent_message()
        hooks.fan(stream_record(queued, sent))
        monkeypatch.setattr(netguard, "getaddrinfo", lambda host, port, *a, **k: [
            (2, 1, 6, "", ("10.0.0.7", port))])
        messages = hooks.received()
        assert hooks.deliver(messages) == [messages[0]["MessageId"]]
    assert receiver.deliveries == []
    (attempt,) = hooks.deliveries(endpoint["id"])
    assert (attempt["outcome"], attempt["error"]) == ("retrying", "address-refused")


def test_no_log_line_holds_the_url_path_the_query_the_secret_or_the_payload(hooks, caplog, monkeypatch):
    caplog.set_level(logging.INFO)
    app_logger = logging.getLogger("sms-sender")  # its lines do not propagate to the root logger caplog is on
    monkeypatch.setattr(app_logger, "handlers", [*app_logger.handlers, caplog.handler])
    answers = iter([500, 200])
    with Receiver(lambda delivery: next(answers)) as receiver:
        endpoint = hooks.endpoint(receiver.url + "/private-path?token=query-value-1234")
        queued, sent = hooks.sent_message()
        hooks.fan(stream_record(queued, sent))
        first = hooks.received()
        hooks.deliver(first)
        hooks.deliver(hooks.again(first))
    payload = json.loads(first[0]["Body"])["payload"]
    lines = [record.getMessage() + " " + json.dumps({k: v for k, v in vars(record).items()
                                                     if k not in logging.LogRecord("", 0, "", 0, "", (), None).__dict__},
                                                    default=str)
             for record in caplog.records]
    text = "\n".join(lines)
    assert "webhook attempt" in text and "127.0.0.1" in text  # the host is shown
    for secret in ("private-path", "query-value-1234", endpoint["secret"], endpoint["secret"][6:], payload,
                   sent["id"]["S"] + '","channel'):
        assert secret not in text, secret


# -- backoff -------------------------------------------------------------------------------------
@pytest.mark.parametrize("attempt, low, high", [(1, 24, 36), (2, 48, 72), (3, 96, 144), (7, 1536, 2304),
                                               (8, 2880, 4320), (30, 2880, 4320)])
def test_backoff_doubles_from_30_seconds_to_an_hour_with_20_percent_jitter(attempt, low, high):
    assert webhook_delivery.backoff(attempt, uniform=lambda a, b: a) == low
    assert webhook_delivery.backoff(attempt, uniform=lambda a, b: b) == high
    assert all(low <= webhook_delivery.backoff(attempt) <= high for _ in range(50))


def test_backoff_waits_at_least_retry_after_and_at_most_12_hours():
    assert webhook_delivery.backoff(1, 600, uniform=lambda a, b: b) == 600
    assert webhook_delivery.backoff(8, 60, uniform=lambda a, b: a) == 2880
    assert webhook_delivery.backoff(1, 10 ** 9) == 43200 - 60
    assert webhook_delivery.backoff(1, uniform=lambda a, b: 1.0, scale=0.05) == 2  # the local stack's scale


def test_24_hours_of_retries_take_about_30_receives():
    """The queue's redrive (100 receives) must not end the retries first."""
    waited, receives = 0, 0
    while waited < 24 * 3600:
        receives += 1
        waited += webhook_delivery.backoff(receives, uniform=lambda a, b: b)
    assert receives < 40


@pytest.mark.parametrize("value, seconds", [("120", 120), (" 5 ", 5), (None, None), ("", None), ("soon", None),
                                            ("-3", None), ("Wed, 21 Oct 2015 07:28:00 GMT", 0)])
def test_retry_after_is_read_as_seconds_or_an_http_date(value, seconds):
    assert webhook_delivery.retry_after_seconds(value) == seconds
    at = datetime(2030, 1, 1, 0, 0, 0, tzinfo=timezone.utc)
    assert webhook_delivery.retry_after_seconds(format_datetime(at, usegmt=True), now=at.timestamp() - 90) == 90


# -- every call of the two functions, against botocore's models --------------------------------------
def test_every_call_of_fanout_and_delivery_passes_the_model(hooks):
    calls = Calls()
    answers = iter([500, 410])
    with Receiver(lambda delivery: next(answers)) as receiver:
        hooks.endpoint(receiver.url)
        queued, sent = hooks.sent_message()
        hooks.fan(stream_record(queued, sent))
        first = hooks.received()
        hooks.deliver(first)
        hooks.deliver(hooks.again(first))
    hooks.sqs.send_message(QueueUrl=hooks.queue, MessageBody="not json")
    hooks.deliver(hooks.received())
    assert {("dynamodb", "Query"), ("sqs", "SendMessageBatch"), ("dynamodb", "GetItem"), ("kms", "Decrypt"),
            ("dynamodb", "PutItem"), ("sqs", "ChangeMessageVisibility"), ("dynamodb", "UpdateItem"),
            ("sqs", "SendMessage")} <= calls.operations()
    assert calls.problems() == []


def test_the_longest_wait_is_the_visibility_timeout_sqs_allows():
    """ChangeMessageVisibility's VisibilityTimeout, in botocore's SQS model: "Values range: 0 to 43200.
    Maximum: 12 hours", and "If you attempt to set the VisibilityTimeout to a value greater than the maximum
    time left, Amazon SQS returns an error." The wait is set a moment after the receive, so a longer
    Retry-After is cut to a minute short of 12 hours rather than refused by SQS."""
    import botocore.session

    shape = botocore.session.get_session().get_service_model("sqs").operation_model(
        "ChangeMessageVisibility").input_shape.members["VisibilityTimeout"]
    assert "<code>0</code> to <code>43200</code>" in shape.documentation
    operation = botocore.session.get_session().get_service_model("sqs").operation_model("ChangeMessageVisibility")
    assert "greater than the maximum time left, Amazon SQS returns an error" in operation.documentation
    assert webhook_delivery.MAX_VISIBILITY == 43200
    assert 43200 - 120 <= webhook_delivery.backoff(1, 86400) < 43200
