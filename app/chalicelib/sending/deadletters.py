"""How a batch message ends when the batch worker will not send it: failed with the reason, or with the outcome the
provider gave, never waiting for ever.

The worker gives up on a message's last receive (``MAX_RECEIVES``) and records why (``give_up``). But SQS counts
every receive, and some never reach the worker's own handling: an invocation that fails as a whole (it timed out,
ran out of memory, its runtime crashed, or Lambda throttled it) returns its whole batch to the queue. When that
was a message's last receive, SQS moves it to the dead-letter queue and its record still says ``queued``,
``scheduled`` or ``sending``. ``settle_dead_letters`` (the schedule sweep runs it every minute) reads the batch
dead-letter queue, ends each such record, and deletes the message: a record still waiting is failed
(``NotSent``), one claimed by a worker that stopped is failed (``SendInterrupted``: it may have gone out, so it
is never sent again), and an outcome the send path handed over (``{"messageId", "outcome"}``) is written. A claim
that is not stale yet is left for a later run. The ``DeadLetters`` alarm counts what was settled, and what waits
on the queue, visible or not.
"""
from __future__ import annotations

import json
import time

from ..core import aws, store
from ..core.log import logger
from ..core.settings import Settings

# A claim older than this (seconds) belongs to a worker that stopped mid-send.
STALE_CLAIM_SECONDS = 300
INTERRUPTED = {"code": "SendInterrupted", "message": (
    "A worker stopped while sending this message; it may or may not have gone out, so it was not sent again.")}
# ReceiveMessage returns at most 10 messages a call.
RECEIVE_MAX = 10
# Receives one run makes at most: 1,000 messages a minute.
RECEIVES_PER_RUN = 100


def give_up(message_id: str, error: dict, expect=(store.QUEUED,)) -> dict | None:
    """Record a message the batch worker will not send again as failed, with ``error``. Only a record in one of
    the ``expect`` states is failed: one another worker is sending is left to it. Returns the new record, or None."""
    return store.transition(message_id, store.FAILED, expect=expect, error=error)


def record_outcome(body: dict) -> str:
    """Write an outcome the send path could not (DynamoDB refused it after the provider had answered). Only
    forward: a record a receipt has settled meanwhile keeps its status."""
    fields = dict(body["outcome"])
    status = fields.pop("status")
    updated = store.transition(body["messageId"], status, expect=(store.QUEUED, store.SENDING), **fields)
    logger.info("outcome recorded" if updated else "outcome already overtaken",
                extra={"messageId": body["messageId"], "status": status})
    return "recorded" if updated else "already"


def not_sent(receives: int) -> dict:
    return {"code": "NotSent", "message": (
        f"The batch queue set this message aside after {receives} receives that ended without a send; "
        "it was not sent.")}


def settle_one(body: dict, receives: int, now: float) -> str | None:
    """End the record one dead-lettered message names. Returns what happened, or None when the message must stay
    on the dead-letter queue for a later run (a worker's claim that is not stale yet)."""
    if "outcome" in body:
        return record_outcome(body)
    message_id = body["messageId"]
    record = store.get(message_id)
    if record is None:
        return "missing"
    status = record["status"]
    if status in (store.QUEUED, store.SCHEDULED):
        return "failed" if give_up(message_id, not_sent(receives), expect=(status,)) else "already"
    if status == store.SENDING:
        if now - float(record.get("claimedAt", 0)) < STALE_CLAIM_SECONDS:
            return None
        return "interrupted" if give_up(message_id, INTERRUPTED, expect=(store.SENDING,)) else "already"
    return "already"  # it ended before (sent, delivered, failed, canceled)


def settle_dead_letters(settings: Settings, *, time_left=lambda: 60.0, now=time.time) -> int:
    """Read the batch dead-letter queue, end the record of each message in it (``settle_one``) and delete the
    message, until a receive comes back empty, ``RECEIVES_PER_RUN`` receives were made, or ``time_left()``
    (seconds) is under 5. A receive is a short poll, which may come back empty while a few messages wait: the next
    run takes them. A message it cannot read is left on the queue, hidden for ``STALE_CLAIM_SECONDS``, and logged
    (the alarm counts the messages hidden there too). Returns how many messages it deleted."""
    if not settings.batch_dlq_url:
        return 0
    sqs, deleted = aws.client("sqs"), 0
    for _ in range(RECEIVES_PER_RUN):
        if time_left() < 5:
            break
        # Hidden from the next run's receive for as long as a claim takes to go stale: a message left for later.
        received = sqs.receive_message(QueueUrl=settings.batch_dlq_url, MaxNumberOfMessages=RECEIVE_MAX,
                                       VisibilityTimeout=STALE_CLAIM_SECONDS, WaitTimeSeconds=0).get("Messages", [])
        if not received:
            break
        done = []
        for message in received:
            try:
                body = json.loads(message["Body"])
                outcome = settle_one(body, settings.max_receives, now())
            except Exception:
                logger.exception("dead-lettered batch message not settled; it stays on the dead-letter queue",
                                 extra={"sqsMessageId": message["MessageId"]})
                continue
            if outcome is None:
                continue
            logger.warning("dead-lettered batch message settled",
                           extra={"messageId": body.get("messageId"), "outcome": outcome})
            done.append({"Id": str(len(done)), "ReceiptHandle": message["ReceiptHandle"]})
        if done:
            failed = sqs.delete_message_batch(QueueUrl=settings.batch_dlq_url, Entries=done).get("Failed", [])
            if failed:  # each comes back after its visibility timeout, and reads as settled then
                logger.warning("dead-lettered batch messages not deleted", extra={"failed": len(failed)})
            deleted += len(done) - len(failed)
    return deleted
