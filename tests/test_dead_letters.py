"""What the batch queue dead-letters ends: the schedule sweep reads the batch dead-letter queue and ends each
record its messages name (``chalicelib/sending/deadletters.py``), against moto's SQS, whose redrive moves a message
on the receive after its ``maxReceiveCount``-th, as SQS does."""
from __future__ import annotations

import json
import os
import time

import boto3
import pytest

from chalicelib.core import store
from chalicelib.core.settings import get_settings
from chalicelib.sending import deadletters, schedule

from .conftest import REGION, body_of, post


def sqs():
    return boto3.client("sqs", region_name=REGION)


def depth(url: str) -> tuple[int, int]:
    """(visible, in flight) on the queue."""
    attributes = sqs().get_queue_attributes(QueueUrl=url, AttributeNames=[
        "ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"])["Attributes"]
    return int(attributes["ApproximateNumberOfMessages"]), int(attributes["ApproximateNumberOfMessagesNotVisible"])


def one_batch_message(client, body: str = "hello") -> str:
    """A batch of one message; returns its id (the record is ``queued``, its message on the batch queue)."""
    batch = body_of(post(client, "/batches", {"messages": [{"to": "+14155550100", "body": body}]}))
    assert batch["accepted"] == 1
    (message,) = sqs().receive_message(QueueUrl=os.environ["BATCH_QUEUE_URL"], VisibilityTimeout=0)["Messages"]
    return json.loads(message["Body"])["messageId"]


def test_a_batch_message_whose_last_receives_never_reached_the_worker_ends_failed_not_sent(client):
    """Every invocation that received it failed as a whole (a timeout, a crash, a throttled function): the
    worker never had the last receive to give up on, and SQS moved the message to the dead-letter queue. The
    next sweep run ends its record, and the dead-letter queue is empty again."""
    settings = get_settings()
    message_id = one_batch_message(client)
    for _ in range(settings.max_receives - 1):  # one receive was made above; each ends without a delete
        assert sqs().receive_message(QueueUrl=settings.batch_queue_url, VisibilityTimeout=0)["Messages"]
    assert "Messages" not in sqs().receive_message(QueueUrl=settings.batch_queue_url)  # moved on this receive
    assert depth(settings.batch_dlq_url) == (1, 0)
    assert body_of(client.http.get(f"/messages/{message_id}"))["status"] == "queued"  # what a user saw for ever

    assert schedule.sweep(settings=settings)["settled"] == 1
    message = body_of(client.http.get(f"/messages/{message_id}"))
    assert message["status"] == "failed" and message["error"]["code"] == "NotSent"
    assert f"after {settings.max_receives} receives" in message["error"]["message"]
    assert depth(settings.batch_dlq_url) == (0, 0)
    assert schedule.sweep(settings=settings)["settled"] == 0


def dead_letter(body: dict) -> None:
    sqs().send_message(QueueUrl=os.environ["BATCH_DLQ_URL"], MessageBody=json.dumps(body))


@pytest.mark.parametrize("status, fields, ends, code", [
    (store.SCHEDULED, {}, "failed", "NotSent"),
    (store.SENDING, {"claimedAt": 1.0}, "failed", "SendInterrupted"),  # its worker stopped mid-send long ago
    (store.DELIVERED, {}, "delivered", None),  # ended before: left as it is
])
def test_each_record_a_dead_lettered_message_names_ends_once(client, status, fields, ends, code):
    message_id = one_batch_message(client)
    if status == store.SCHEDULED:
        store.transition(message_id, store.SCHEDULED)
    elif status == store.SENDING:
        store.transition(message_id, store.SENDING, **fields)
    else:
        store.transition(message_id, store.SENT, providerMessageId="p-1")
        store.transition(message_id, store.DELIVERED, expect=(store.SENT,))
    dead_letter({"messageId": message_id})
    assert deadletters.settle_dead_letters(get_settings()) == 1
    message = body_of(client.http.get(f"/messages/{message_id}"))
    assert message["status"] == ends and (message["error"] or {}).get("code") == code
    assert depth(os.environ["BATCH_DLQ_URL"]) == (0, 0)


def test_a_claim_that_is_not_stale_yet_is_left_for_a_later_run(client):
    """A worker may still be sending it: its outcome is that worker's to write. The message stays on the
    dead-letter queue, hidden until the claim would be stale, for a later run."""
    message_id = one_batch_message(client)
    store.transition(message_id, store.SENDING, claimedAt=time.time())
    dead_letter({"messageId": message_id})
    assert deadletters.settle_dead_letters(get_settings()) == 0
    assert store.get(message_id)["status"] == store.SENDING
    assert depth(os.environ["BATCH_DLQ_URL"]) == (0, 1)
    later = time.time() + deadletters.STALE_CLAIM_SECONDS + 1
    assert deadletters.settle_one({"messageId": message_id}, 5, later) == "interrupted"


def test_an_outcome_the_send_path_handed_over_is_written_not_failed(client):
    """The provider answered; DynamoDB refused the write, and the worker never got to write it either."""
    message_id = one_batch_message(client)
    store.transition(message_id, store.SENDING, claimedAt=time.time())
    dead_letter({"messageId": message_id, "outcome": {"status": store.SENT, "providerMessageId": "p-2"}})
    assert deadletters.settle_dead_letters(get_settings()) == 1
    assert body_of(client.http.get(f"/messages/{message_id}"))["status"] == "sent"


def test_a_message_that_cannot_be_read_stays_and_the_rest_are_settled(client):
    first, second = one_batch_message(client, "one"), one_batch_message(client, "two")
    dead_letter({"messageId": first})
    sqs().send_message(QueueUrl=os.environ["BATCH_DLQ_URL"], MessageBody="not json")
    dead_letter({"messageId": second})
    dead_letter({"messageId": "no-such-message"})  # its record is gone: nothing to end
    assert deadletters.settle_dead_letters(get_settings()) == 3
    assert {store.get(m)["status"] for m in (first, second)} == {store.FAILED}
    assert depth(os.environ["BATCH_DLQ_URL"]) == (0, 1)  # the unreadable one, hidden until a later run


def test_a_run_stops_when_its_time_is_short(client):
    dead_letter({"messageId": one_batch_message(client)})
    assert deadletters.settle_dead_letters(get_settings(), time_left=lambda: 4.9) == 0
    assert depth(os.environ["BATCH_DLQ_URL"]) == (1, 0)


def test_a_run_whose_dead_letter_queue_fails_still_writes_its_line_then_fails(client, monkeypatch):
    """Its counts are metrics (ScheduledEnqueued, DeadLettersSettled): SQS failing on the dead-letter queue after
    the scheduling is done must not lose the line. The run then fails, for the sweep's errors alarm."""
    lines = []
    monkeypatch.setattr(schedule.logger, "info", lambda message, *a, extra=None, **k: lines.append((message, extra)))
    monkeypatch.setattr(schedule.logger, "exception", lambda message, *a, **k: lines.append((message, None)))

    def unavailable(*args, **kwargs):
        raise ConnectionError("SQS is not answering")

    monkeypatch.setattr(deadletters, "settle_dead_letters", unavailable)
    with pytest.raises(ConnectionError):
        schedule.sweep(settings=get_settings())
    (line,) = [extra for message, extra in lines if message == "schedule sweep"]
    assert line["settled"] == 0 and "enqueued" in line
    assert any("dead-letter queue was not read" in message for message, _ in lines)
