"""Webhooks end to end (issue 13) on the local stack: the real fan-out function reads the messages
table's stream and the real delivery function reads the delivery queue (``devstack/streams.py`` and
``devstack/queues.py`` play Lambda's event source mappings), and receivers on loopback
(``devstack/receiver.py``) check every delivery's signature with the ``standardwebhooks`` package.

The stack runs with the ``make dev`` settings, ``WEBHOOK_BACKOFF_SCALE`` 0.05 among them (retries come
seconds apart instead of minutes; ``devstack/stage.py``), and a 10 s visibility timeout on its queues, so
that the batch of a delivery function that died comes back within seconds.
"""
from __future__ import annotations

import json
import time
from collections import Counter
from pathlib import Path

import boto3
import pytest
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from devstack import queues, streams
from devstack.receipts import SIMULATOR_FAILURE, SIMULATOR_SUCCESS
from devstack.receiver import HANG, Receiver
from devstack.server import REGION, LocalStack

from .localhttp import HANG_GUARD, Http, wait_for

SUCCESS, FAILURE = sorted(SIMULATOR_SUCCESS)[0], sorted(SIMULATOR_FAILURE)[0]  # US: delivered, failed
FINAL = {"delivered", "failed", "unknown"}
DELIVERY_TIMEOUT = 10.0  # the delivery function's limit on one POST (the contract: a 2xx within 10 s)
EVENTS = Path(__file__).parent / "events"


@pytest.fixture(scope="module")
def stack():
    with LocalStack(app_port=0, aws_port=0, visibility_timeout=10, function_timeout=10, receipt_delay=0.3) as running:
        yield running


@pytest.fixture
def aws(stack):
    emulated = Http(stack.aws_url)
    emulated.call("DELETE", "/_faults")
    yield emulated
    emulated.call("DELETE", "/_faults")


class Hooks:
    """Receivers and the endpoints that point at them, for one test: every endpoint is deleted and every
    receiver stopped after it, so that no later test's events go to them."""

    def __init__(self, api: Http):
        self.api, self.receivers, self.ids = api, [], []

    def receiver(self, answers=200) -> Receiver:
        # The lifetime only guards against a leak (``close`` stops it): longer than any test waits.
        receiver = Receiver(answers, lifetime=30 * HANG_GUARD).start()
        self.receivers.append(receiver)
        return receiver

    def endpoint(self, receiver: Receiver, events: list[str] | None = None) -> dict:
        status, _, created = self.api.call("POST", "/webhooks", {"url": receiver.url,
                                                                 **({"events": events} if events else {})})
        assert status == 201, created
        self.ids.append(created["id"])
        return created

    def close(self) -> None:
        for endpoint_id in self.ids:
            self.api.call("DELETE", f"/webhooks/{endpoint_id}")
        for receiver in self.receivers:
            receiver.stop()


@pytest.fixture
def hooks(api):
    made = Hooks(api)
    yield made
    made.close()


def send(api: Http, to: str, body: str = "webhooks end to end") -> dict:
    status, _, message = api.call("POST", "/sms", {"to": to, "body": body})
    assert status == 202, message
    return message


def verified(delivery, secret: str) -> dict:
    """The event, once its signature checks out under ``secret`` (raises otherwise)."""
    return Webhook(secret).verify(delivery.body, delivery.headers)


def for_message(deliveries, message_id: str, event_type: str | None = None) -> list:
    return [d for d in deliveries if d.event.get("data", {}).get("id") == message_id
            and (event_type is None or d.event.get("type") == event_type)]


def attempts(api: Http, endpoint_id: str) -> list[dict]:
    status, _, body = api.call("GET", f"/webhooks/{endpoint_id}/deliveries")
    assert status == 200, body
    return body["deliveries"]


def _waiting(stack) -> int:
    """Messages visible on the delivery queue."""
    sqs = boto3.client("sqs", endpoint_url=stack.aws_url, region_name=REGION)
    return int(sqs.get_queue_attributes(QueueUrl=stack.env["WEBHOOK_QUEUE_URL"], AttributeNames=[
        "ApproximateNumberOfMessages"])["Attributes"]["ApproximateNumberOfMessages"])


def queue_drained(stack) -> bool:
    """Nothing waiting on the delivery queue, or in a delivery function."""
    sqs = boto3.client("sqs", endpoint_url=stack.aws_url, region_name=REGION)
    counts = sqs.get_queue_attributes(QueueUrl=stack.env["WEBHOOK_QUEUE_URL"], AttributeNames=[
        "ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"])["Attributes"]
    return all(value == "0" for value in counts.values())


# -- events from the simulator numbers, each signed ------------------------------------------------

def test_delivered_and_failed_from_the_simulator_numbers_each_signed(api, hooks):
    receiver = hooks.receiver()
    endpoint = hooks.endpoint(receiver)
    assert endpoint["enabled"] is True and endpoint["secret"].startswith("whsec_")
    assert "secret" not in api.call("GET", f"/webhooks/{endpoint['id']}")[2]
    final = {SUCCESS: "message.delivered", FAILURE: "message.failed"}
    sent = {to: send(api, to)["id"] for to in final}

    assert receiver.wait_for(lambda ds: all(for_message(ds, sent[to], final[to]) for to in final))
    events = {}
    for delivery in receiver.deliveries:
        event = verified(delivery, endpoint["secret"])  # every delivery, signed under the endpoint's secret
        assert delivery.headers["content-type"] == "application/json"
        assert set(event) == {"type", "timestamp", "data"} and "body" not in event["data"]
        events.setdefault((event["data"]["id"], event["type"]), set()).add(delivery.id)
    for to, message_id in sent.items():
        assert {t for m, t in events if m == message_id} == {"message.sent", final[to]}
        # The final event carries the message as GET /messages/{id} shows it, less its body.
        status, _, shown = api.call("GET", f"/messages/{message_id}")
        shown.pop("body")
        [last] = {d.body: d for d in for_message(receiver.deliveries, message_id, final[to])}.values()
        assert last.event["data"] == shown and last.event["type"] == f"message.{shown['status']}"
        assert last.event["timestamp"] == shown["updatedAt"]
    ids = [i for found in events.values() for i in found]
    assert all(len(found) == 1 for found in events.values()) and len(set(ids)) == len(ids) == 4
    assert all(i.startswith("msg_") for i in ids)
    recorded = {(a["eventId"], a["outcome"], a["status"]) for a in attempts(api, endpoint["id"])}
    assert {(i, "delivered", 200) for i in ids} <= recorded


# -- retries ----------------------------------------------------------------------------------------

def test_a_receiver_answering_500_then_200_gets_the_same_webhook_id_twice(api, hooks):
    seen: set[str] = set()

    def answers(delivery):
        first = delivery.id not in seen
        seen.add(delivery.id)
        return 500 if first else 200

    receiver = hooks.receiver(answers)
    endpoint = hooks.endpoint(receiver, events=["message.delivered"])
    message_id = send(api, SUCCESS)["id"]
    both = receiver.wait_for(lambda ds: len(got := for_message(ds, message_id)) >= 2 and
                             all(d.status for d in got) and got)
    assert both, [(d.id, d.status) for d in receiver.deliveries]
    first, second = both
    assert (first.status, second.status) == (500, 200)
    assert first.id == second.id and first.body == second.body  # the same event, the same bytes
    for delivery in both:
        verified(delivery, endpoint["secret"])
    # The attempt is recorded once the receiver has answered: wait for the second record too.
    tries = wait_for(lambda: len(found := [a for a in attempts(api, endpoint["id"]) if a["eventId"] == first.id])
                     >= 2 and found) or []  # newest first
    assert [(a["attempt"], a["status"], a["outcome"]) for a in tries] == [(2, 200, "delivered"),
                                                                         (1, 500, "retrying")]
    assert tries[1]["nextAttemptAt"] is not None and tries[0]["nextAttemptAt"] is None


def test_410_disables_the_endpoint_and_nothing_more_is_delivered_to_it(api, hooks, stack):
    gone = hooks.receiver(410)
    endpoint = hooks.endpoint(gone, events=["message.delivered"])
    first = send(api, SUCCESS)["id"]
    assert gone.wait_for(lambda ds: for_message(ds, first))
    shown = wait_for(lambda: (s := api.call("GET", f"/webhooks/{endpoint['id']}")[2]) and not s["enabled"] and s)
    assert shown and shown["enabled"] is False and "410" in shown["disabledReason"]
    # A later event goes to the endpoint still enabled, and not to the disabled one.
    witness = hooks.receiver()
    hooks.endpoint(witness, events=["message.delivered"])
    second = send(api, SUCCESS)["id"]
    assert witness.wait_for(lambda ds: for_message(ds, second))
    assert wait_for(lambda: queue_drained(stack))
    assert [d.event["data"]["id"] for d in gone.deliveries] == [first]
    assert [a["status"] for a in attempts(api, endpoint["id"])] == [410]


# -- rotation -------------------------------------------------------------------------------------

def test_after_a_rotation_every_delivery_carries_a_signature_under_each_secret(api, hooks):
    receiver = hooks.receiver()
    endpoint = hooks.endpoint(receiver, events=["message.delivered"])
    status, _, rotated = api.call("POST", f"/webhooks/{endpoint['id']}/rotate")
    assert status == 200 and rotated["secret"].startswith("whsec_") and rotated["secret"] != endpoint["secret"]
    message_id = send(api, SUCCESS)["id"]
    [delivery] = receiver.wait_for(lambda ds: for_message(ds, message_id))
    assert len(delivery.signatures) == 2
    for secret in (endpoint["secret"], rotated["secret"]):  # a receiver on either secret accepts it
        assert verified(delivery, secret)["data"]["id"] == message_id
        # and exactly one of the two signatures is under that secret
        assert sum(_verifies(delivery, signature, secret) for signature in delivery.signatures) == 1
    with pytest.raises(WebhookVerificationError):
        verified(delivery, "whsec_" + "A" * 32)  # a secret the endpoint never had


def _verifies(delivery, signature: str, secret: str) -> bool:
    try:
        Webhook(secret).verify(delivery.body, {**delivery.headers, "webhook-signature": signature})
        return True
    except WebhookVerificationError:
        return False


# -- a receiver that never answers ----------------------------------------------------------------

def test_a_receiver_that_never_answers_does_not_slow_a_send_or_another_endpoint(api, hooks, stack, monkeypatch):
    """Proved by order, not by seconds: the dead receiver's first delivery is held open until the test
    lets it go, and every send is answered, and the other endpoint gets events, while it is still held.
    A send that waited for a webhook, or an endpoint that waited for another, would wait for the test to
    let go first, which never comes (the send fails on its 30 s client timeout; the other wait on its hang
    guard). How long a send takes with and without a hung receiver is for ``make bench``."""
    from chalicelib.webhooks import delivery

    # The delivery's timeout (10 s) and its invocation's (20 s locally) made longer than the test, so that
    # no delivery to the dead receiver ends before the test releases it. Hang guards, not measurements.
    monkeypatch.setattr(delivery, "TIMEOUT_SECONDS", 10 * HANG_GUARD)
    monkeypatch.setattr(stack.webhook_delivery, "function_timeout", 10 * HANG_GUARD + 2 * delivery.RESERVE_SECONDS)
    healthy = hooks.receiver()
    hooks.endpoint(healthy)
    hung = hooks.receiver(HANG)
    dead = hooks.endpoint(hung)
    send(api, SUCCESS)
    assert hung.wait_for(lambda ds: ds)  # the receiver holds a delivery from now on

    def held() -> bool:
        """No delivery to the dead receiver has ended: none answered, and none recorded (an attempt is
        recorded once it ends, by an answer, a timeout or a lost connection)."""
        return all(d.status is None for d in hung.deliveries) and attempts(api, dead["id"]) == []

    numbers = [f"+1206555{5010 + i:04d}" for i in range(8)]
    for to in numbers:
        send(api, to)  # 202, asserted
        assert held(), "a send was answered only after the dead receiver's delivery had ended"
    # The other endpoint gets events of those sends while the dead receiver still holds its delivery:
    # a delivery batch with an event for each endpoint delivers the healthy one without waiting for the
    # other. (Only some of them: each of the five delivery instances that tries the dead receiver is
    # held with it, and here nothing ends those tries; the breaker test below covers the rest.)

    def sent_to(ds) -> set[str]:
        return {d.event["data"]["to"] for d in ds if d.event.get("type") == "message.sent"} & set(numbers)

    assert healthy.wait_for(sent_to), "no event reached the healthy endpoint"
    assert held(), "the healthy endpoint got its events only after the dead receiver's delivery had ended"
    # Once the dead receiver lets go (its connections close: each try fails, and its breaker opens), the
    # other endpoint gets every event. The contract's timeouts again first, for what the release sets off
    # (the breaker puts the dead receiver's other events back for a window plus a timeout).
    monkeypatch.undo()
    hung.stop()
    assert healthy.wait_for(lambda ds: sent_to(ds) == set(numbers)), sorted(sent_to(healthy.deliveries))
    assert all(d.status is None for d in hung.deliveries)  # never answered


# -- faults ---------------------------------------------------------------------------------------

def test_the_delivery_function_dies_mid_batch_and_no_event_is_lost(api, hooks, stack):
    # Earlier tests' messages settled and their events delivered (or retried) first: the batch that dies
    # below is to hold this test's events, and the endpoint to get no late event of theirs.
    assert wait_for(lambda: all(m["status"] in FINAL for m in api.call("GET", "/messages?limit=100")[2]["messages"]))
    assert wait_for(lambda: queue_drained(stack))
    receiver = hooks.receiver()
    endpoint = hooks.endpoint(receiver)
    runner = stack.webhook_delivery
    deaths = runner.deaths
    numbers = [f"+1206555{6000 + i:04d}" for i in range(6)]
    runner.pause()  # the events gather on the queue: the next invocation takes a full batch
    try:
        status, _, batch = api.call("POST", "/batches", {"messages": [
            {"to": to, "body": f"webhook batch {i}"} for i, to in enumerate(numbers)]})
        assert status == 202 and batch["accepted"] == 6
        assert wait_for(lambda: _waiting(stack) >= 12)  # sent and delivered, for each message
        runner.kill_next_invocation(after=3)  # it delivers the first 3 of its 10, then dies
    finally:
        runner.resume()

    def again(ds) -> int:
        """Deliveries made more than once (under the same id)."""
        return sum(1 for n in Counter(d.id for d in ds).values() if n >= 2)

    def every_event(ds):
        # Each of the twelve came, the invocation died, and the three it delivered before dying came again
        # with the rest of its batch (the last of them may still be on their way once the twelve are in).
        return {(d.event["data"]["to"], d.event["type"]) for d in ds} >= {
            (to, t) for to in numbers for t in ("message.sent", "message.delivered")} and runner.deaths > deaths \
            and again(ds) >= 3

    assert receiver.wait_for(every_event), (runner.deaths, len(receiver.deliveries), again(receiver.deliveries))
    assert runner.deaths == deaths + 1
    ids: dict[tuple, set] = {}
    for delivery in receiver.deliveries:
        event = verified(delivery, endpoint["secret"])
        ids.setdefault((event["data"]["to"], event["data"]["id"], event["type"]), set()).add(delivery.id)
    assert all(len(found) == 1 for found in ids.values())  # each event keeps its id, however often it comes
    assert len([key for key in ids if key[0] in numbers]) == 12  # none of this test's lost


def test_the_fanout_fails_and_the_stream_hands_its_records_over_again(api, hooks, stack, aws):
    receiver = hooks.receiver()
    endpoint = hooks.endpoint(receiver, events=["message.delivered"])
    # Every attempt of the fan-out's next SendMessageBatch fails (botocore's retries included): its
    # invocation fails, and the stream player hands the records over again.
    from chalicelib.core.settings import get_settings

    attempts_per_call = get_settings().provider_max_attempts
    status, _, _ = aws.call("POST", "/_faults", {"operation": "SendMessageBatch", "code": "InternalError",
                                                 "status": 500, "count": attempts_per_call})
    assert status == 201
    message_id = send(api, SUCCESS)["id"]
    [delivery] = receiver.wait_for(lambda ds: for_message(ds, message_id))
    verified(delivery, endpoint["secret"])
    assert [f["taken"] for f in aws.call("GET", "/_faults")[2]] == [attempts_per_call]
    assert not stack.webhook_fanout.failed


# -- a dead receiver is backed off: its events wait, the other endpoint's flow ----------------------

def test_a_dead_receiver_is_tried_once_a_window_and_the_other_endpoint_gets_every_event(api, hooks, capsys):
    """Forty events for a receiver that never answers and forty for one that does. Without the
    breaker, every delivery batch holding one of the dead receiver's events would be held for its
    10 s timeout, one POST per event; with it, the dead receiver is tried a few times at first (the
    instances that reach it before the first timeout) and then once per backoff window, while the
    other endpoint gets all forty."""
    from devstack.server import WEBHOOK_INSTANCES

    dead_receiver = hooks.receiver(HANG)
    dead = hooks.endpoint(dead_receiver, events=["message.sent"])
    healthy = hooks.receiver()
    fine = hooks.endpoint(healthy, events=["message.sent"])
    numbers = {f"+1206555{7000 + i:04d}" for i in range(40)}
    started = time.time()
    status, _, batch = api.call("POST", "/batches", {"messages": [
        {"to": to, "body": f"breaker {i}"} for i, to in enumerate(sorted(numbers))]})
    assert status == 202 and batch["accepted"] == 40
    # A hang guard: forty events, and the dead receiver's first tries hold five instances a timeout each.
    got = healthy.wait_for(lambda ds: {d.event["data"]["to"] for d in ds} >= numbers and ds, 3 * HANG_GUARD)
    assert got, len(healthy.deliveries)
    elapsed = time.time() - started
    for delivery in got:
        verified(delivery, fine["secret"])
    tries = len(dead_receiver.deliveries)
    assert tries >= 1 and all(d.status is None for d in dead_receiver.deliveries)  # it still hangs
    # Each try after the first ones holds the endpoint for its whole timeout, so no more than one per
    # DELIVERY_TIMEOUT follows them; far fewer than one per event.
    assert tries <= WEBHOOK_INSTANCES + elapsed / DELIVERY_TIMEOUT + 2, (tries, elapsed)
    assert tries < len(numbers) / 2
    # Its deliveries list holds its tries, all timed out (the events put back are not listed).
    listed = attempts(hooks.api, dead["id"])
    assert len(listed) <= tries and {(a["outcome"], a["error"]) for a in listed} <= {("retrying", "timeout")}
    with capsys.disabled():
        print(f"\nthe healthy endpoint got 40 events in {elapsed:.1f} s; the dead one was tried {tries} times")


# -- the local event sources hand over Lambda's formats --------------------------------------------

def test_the_stream_player_hands_over_lambdas_dynamodb_stream_event(api, stack):
    documented = json.loads((EVENTS / "dynamodb-stream-event.json").read_text())["event"]["Records"][1]  # MODIFY
    got: list[dict] = []
    clients = {s: boto3.client(s, endpoint_url=stack.aws_url, region_name=REGION)
               for s in ("dynamodb", "dynamodbstreams")}
    player = streams.StreamPlayer(streams=clients["dynamodbstreams"], dynamodb=clients["dynamodb"],
                                  table=stack.env["MESSAGES_TABLE"], region=REGION,
                                  function=lambda event, context: got.append(json.loads(json.dumps(event))))
    player.start()
    try:
        before = time.time()
        message_id = send(api, SUCCESS)["id"]
        assert wait_for(lambda: _modify_of(got, message_id))
        after = time.time()
    finally:
        player.stop()
    record = _modify_of(got, message_id)
    assert set(record) == set(documented)  # eventSourceARN included, which GetRecords does not give
    assert set(record["dynamodb"]) == set(documented["dynamodb"]) | {"ApproximateCreationDateTime"}
    when = record["dynamodb"]["ApproximateCreationDateTime"]
    # Epoch seconds, whole (as Lambda has it), of the write: between the send and its record's arrival here,
    # give or take the rounding to the second.
    assert isinstance(when, float) and when == int(when) and before - 1 <= when <= after + 1
    assert record["eventSourceARN"].startswith(
        f"arn:aws:dynamodb:{REGION}:") and f":table/{stack.env['MESSAGES_TABLE']}/stream/" in record["eventSourceARN"]
    assert record["dynamodb"]["Keys"] == {"id": {"S": message_id}}


def _modify_of(events: list[dict], message_id: str) -> dict | None:
    return next((r for e in events for r in e["Records"] if r["eventName"] == "MODIFY"
                 and r["dynamodb"]["Keys"]["id"]["S"] == message_id), None)


def test_the_queue_event_source_hands_over_lambdas_sqs_event(stack):
    documented = json.loads((EVENTS / "sqs-event.json").read_text())["event"]["Records"][0]
    sqs = boto3.client("sqs", endpoint_url=stack.aws_url, region_name=REGION)
    queue = sqs.create_queue(QueueName="sqs-event-format")["QueueUrl"]
    got: list[dict] = []
    source = queues.SqsEventSource(sqs=sqs, queue_url=queue, name="format-check",
                                   function=lambda event, context: got.append(json.loads(json.dumps(event))))
    source.start()
    try:
        sqs.send_message(QueueUrl=queue, MessageBody="Test message.")
        assert wait_for(lambda: got)
    finally:
        source.stop()
    [record] = got[0]["Records"]
    assert set(record) == set(documented) and set(record["attributes"]) == set(documented["attributes"])
    assert record["eventSourceARN"] == source.queue_arn and record["awsRegion"] == REGION
    assert record["body"] == "Test message." and record["attributes"]["ApproximateReceiveCount"] == "1"
