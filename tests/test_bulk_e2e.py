"""Bulk sending and delivery status end to end: POST /batches on the local stack, drained by the
real worker code, delivery receipts turned into statuses by the real ingest code. The emulated
AWS's outbox is the witness: exactly one send per accepted message, none lost, none twice."""
from collections import Counter
from datetime import datetime
import threading
import time

import boto3
import pytest

from devstack.receipts import SIMULATOR_FAILURE, SIMULATOR_SUCCESS
from devstack.server import LocalStack

from .localhttp import Http

MPS = 60
SUCCESS, FAILURE = sorted(SIMULATOR_SUCCESS)[0], sorted(SIMULATOR_FAILURE)[0]
assert SUCCESS.startswith("+1") and FAILURE.startswith("+1")


@pytest.fixture
def stack():
    # A fresh stack per test keeps moto's tables small (its queries scan them). A short visibility
    # timeout, so that the messages of a worker that died come back within seconds; the worker's timeout is
    # no longer (Lambda refuses a longer one: devstack/queues.py).
    with LocalStack(app_port=0, aws_port=0, visibility_timeout=10, function_timeout=10, receipt_delay=0.3,
                    settings={"MAX_MPS": str(MPS), "WORKER_CONCURRENCY": "2"}) as running:
        yield running


@pytest.fixture
def aws(stack):
    emulated = Http(stack.aws_url)
    emulated.call("DELETE", "/_faults")
    emulated.call("POST", "/_limits", {"mps": MPS})  # the provider enforces the stage's MPS
    yield emulated
    emulated.call("DELETE", "/_limits")


@pytest.fixture
def media_url(stack):
    bucket = stack.env["MEDIA_BUCKET"]
    boto3.client("s3", endpoint_url=stack.aws_url, region_name="us-east-1").put_object(
        Bucket=bucket, Key="media/batch.png", Body=b"\x89PNG" + b"0" * 500, ContentType="image/png")
    return f"s3://{bucket}/media/batch.png"


def mixed_batch(tag: str, media_url: str, size: int = 500) -> tuple[list[dict], set[int]]:
    """SMS and MMS to distinct numbers, some to the failure simulator, four in a row to one recipient
    (next to each other in the batch, so that they are sent at the same time but for the pacing to one
    a second), and a few invalid items. Returns (items, indexes that are invalid)."""
    items, invalid = [], set()
    for i in range(size):
        body = f"{tag} #{i}"
        if i % 97 == 13:
            items.append({"to": "not a number", "body": body})
            invalid.add(i)
        elif i % 50 == 7:
            items.append({"to": FAILURE, "body": body})
        elif 3 <= i <= 6:
            items.append({"to": SUCCESS, "body": body})
        elif i % 5 == 0:
            items.append({"to": f"+1206555{1000 + i:04d}", "body": body, "mediaUrl": media_url})
        elif i % 17 == 0:
            items.append({"to": f"+1206555{1000 + i:04d}", "body": body + " " + "long " * 60})  # 2 parts
        else:
            items.append({"to": f"+1206555{1000 + i:04d}", "body": body})
    return items, invalid


# A batch is waited for as long as it moves: the wait fails once its counts have not changed for this long.
# A hang guard, not a measurement: a busy machine slows a batch down (500 messages took over three minutes
# with both cores busy), it does not stop it. The counts only ever move forward (queued, then sent, then
# delivered or failed), so a batch that keeps moving ends.
STALLED = 120.0
# The batch the throttling and the dying worker are tried on: 15 SQS batches with every kind of item (30 MMS for
# 12 MMS throttles, over a hundred SMS for 40 SMS throttles, failures, a recipient paced, invalid items). The 500
# run once is the size test; each variant of that size cost the suite over a minute.
VARIANT_SIZE = 150


def settle(api, batch_id: str) -> dict:
    """The batch's progress once it is done; fails if it stops moving (``STALLED``)."""
    seen, moved = None, time.monotonic()
    while True:
        status, _, progress = api.call("GET", f"/batches/{batch_id}")
        assert status == 200
        if progress["done"]:
            return progress
        counts = tuple(progress[k] for k in ("queued", "sent", "delivered", "failed"))
        if counts != seen:
            seen, moved = counts, time.monotonic()
        assert time.monotonic() - moved < STALLED, f"the batch stopped moving {STALLED:.0f} s ago: {progress}"
        # Each look queries the batch index, which moto answers by scanning the table and copying every record of
        # the batch whole: a look at 500 messages costs the stack a third of a second of the one core it has.
        time.sleep(max(2.0, progress["size"] / 100))


@pytest.fixture
def recipient_slots(monkeypatch):
    """Every slot the workers' per-recipient gate grants (``pacing.reserve_recipient``): (number, the
    gate's clock when granted). The gate itself is unchanged; this only watches it."""
    from chalicelib.sending import pacing

    granted, lock, reserve = [], threading.Lock(), pacing.reserve_recipient

    def watched(to, *args, now=None, **kwargs):
        now = time.time() if now is None else now  # the clock the gate would read, read here to be seen
        wait = reserve(to, *args, now=now, **kwargs)
        if wait == 0:
            with lock:
                granted.append((to, now))
        return wait

    monkeypatch.setattr(pacing, "reserve_recipient", watched)
    return granted


def submit_and_settle(api, aws, items, invalid):
    status, headers, accepted = api.call("POST", "/batches", {"messages": items})
    assert status == 202, accepted
    assert headers["Location"] == f"/batches/{accepted['id']}"
    assert [r["index"] for r in accepted["rejected"]] == sorted(invalid)
    assert all(r["error"]["code"] == "InvalidPhoneNumber" for r in accepted["rejected"])
    assert accepted["accepted"] == len(items) - len(invalid)
    progress = settle(api, accepted["id"])
    return accepted, progress


def assert_exactly_once(aws, tag: str, items, invalid):
    sent = Counter(entry["body"].split(" long")[0] for entry in aws.call("GET", "/_outbox")[2]
                   if (entry["body"] or "").startswith(f"{tag} #"))
    expected = {item["body"].split(" long")[0] for i, item in enumerate(items) if i not in invalid}
    assert set(sent) == expected, f"lost: {sorted(expected - set(sent))[:5]}"
    assert [body for body, count in sent.items() if count > 1] == []


def test_a_batch_of_500_mixed_messages_reaches_final_statuses_sent_once_each(api, aws, media_url, recipient_slots):
    items, invalid = mixed_batch("plain", media_url)
    accepted, progress = submit_and_settle(api, aws, items, invalid)
    failures = sum(1 for item in items if item.get("to") == FAILURE)
    assert (progress["delivered"], progress["failed"], progress["queued"], progress["sent"]) == (
        accepted["accepted"] - failures, failures, 0, 0)
    assert progress["size"] == 500 and progress["rejected"] == len(invalid)
    assert_exactly_once(aws, "plain", items, invalid)
    # Paced to the provider's MPS: not one send was throttled.
    assert aws.call("GET", "/_limits")[2]["throttled"] == 0
    # At most one message a second to any one recipient, shown by order rather than by the gaps between
    # arrivals (a send that was slow to arrive makes the next gap look short): the gate granted the
    # recipient's slots a second apart by its own clock, and no send went out before a slot of its own.
    # The k-th send arrived no earlier than the k-th slot: the emulator stamps a send on arrival, after its
    # slot; never before it. (Both stamps are on this machine's clock, to the millisecond.)
    outbox = aws.call("GET", "/_outbox")[2]
    for number, count in ((SUCCESS, 4), (FAILURE, sum(1 for item in items if item.get("to") == FAILURE))):
        sent = sorted(datetime.fromisoformat(e["at"].replace("Z", "+00:00")).timestamp()
                      for e in outbox if e["to"] == number and e["body"].startswith("plain #"))
        slots = sorted(at for to, at in recipient_slots if to == number)
        assert len(sent) == count and len(slots) >= count, (number, sent, slots)
        assert all(b - a >= 1 - 1e-3 for a, b in zip(slots, slots[1:])), (number, slots)
        assert all(arrived >= slot - 1e-3 for arrived, slot in zip(sent, slots)), (number, sent, slots)


def test_a_message_reads_back_delivered_with_price_or_failed_with_the_carriers_reason(api, aws, media_url):
    items = [{"to": SUCCESS, "body": "status #1"}, {"to": FAILURE, "body": "status #2"},
             {"to": "+12065559999", "mediaUrl": media_url, "body": "status #3"}]
    status, _, accepted = api.call("POST", "/batches", {"messages": items})
    assert status == 202 and accepted["accepted"] == 3
    settle(api, accepted["id"])
    listed = api.call("GET", "/messages?limit=10")[2]["messages"]
    by_body = {m["body"]: m for m in listed if (m["body"] or "").startswith("status #")}
    delivered, failed, mms = by_body["status #1"], by_body["status #2"], by_body["status #3"]
    assert delivered["status"] == "delivered" and delivered["priceUsd"] > 0 and delivered["error"] is None
    assert failed["status"] == "failed" and failed["error"]["code"] == "DeliveryFailed"
    assert "unreachable" in failed["error"]["message"]
    assert mms["channel"] == "mms" and mms["status"] == "delivered"  # an End User Messaging event


def test_the_same_holds_when_the_provider_throttles(api, aws, media_url, stack):
    aws.call("POST", "/_faults", {"operation": "Publish", "code": "Throttling", "count": 40})
    aws.call("POST", "/_faults", {"operation": "SendMediaMessage", "code": "ThrottlingException", "count": 12})
    items, invalid = mixed_batch("throttled", media_url, VARIANT_SIZE)
    accepted, progress = submit_and_settle(api, aws, items, invalid)
    assert progress["failed"] == sum(1 for item in items if item.get("to") == FAILURE)
    assert_exactly_once(aws, "throttled", items, invalid)
    assert [f["count"] for f in aws.call("GET", "/_faults")[2]] == [0, 0]  # the throttling did happen


def test_the_same_holds_when_a_worker_dies_in_the_middle_of_a_batch(api, aws, media_url, stack):
    runner = stack.queue_runner
    deaths = runner.deaths
    runner.kill_next_invocation(after=3)  # the batch's first invocation: 10 messages, dies after 3
    items, invalid = mixed_batch("killed", media_url, VARIANT_SIZE)
    accepted, progress = submit_and_settle(api, aws, items, invalid)
    assert runner.deaths == deaths + 1
    assert progress["failed"] == sum(1 for item in items if item.get("to") == FAILURE)
    assert_exactly_once(aws, "killed", items, invalid)
