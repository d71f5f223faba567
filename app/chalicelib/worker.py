"""The batch worker: SQS messages in, sends out through the same send path as the API, paced.

Pacing: a token bucket over message parts (an SMS counts its segments, an MMS counts 1) at
``MAX_MPS / WORKER_CONCURRENCY`` per instance. The event source mapping runs at most
``WORKER_CONCURRENCY`` instances, so together they never exceed ``MAX_MPS``. On top of that, a
conditional write per recipient (``store.reserve_recipient``) lets at most one message a second
go to any one number, across all instances.

At most once: SQS delivers at least once, so a record is claimed (``queued`` -> ``sending``, a
conditional write) before the provider is called, and a message whose record is no longer
``queued`` is never sent again. A throttled send puts the record back to ``queued`` and the
message back on the queue (reported in ``batchItemFailures``). On its last receive
(``MAX_RECEIVES``) a message that still fails is marked ``failed`` and the queue moves it to the
dead-letter queue: ``NotSent`` if it was never claimed, ``SendInterrupted`` if a worker claimed it
and stopped before recording what the provider said (it may have gone out: never sent again).

The queue also carries outcomes the send path could not write to DynamoDB after the provider had
answered (``{"messageId", "outcome": {"status", ...}}``, see ``messages._record_outcome``): the
worker writes them (``record_outcome``), sending nothing.
"""
from __future__ import annotations

import json
import math
import random
import threading
import time

from . import aws, messages, store
from .errors import MessagingError, Throttled
from .log import logger
from .settings import Settings, get_settings

# Stop taking new messages when less than this much of the invocation is left: a send plus its
# DynamoDB writes must finish inside the function timeout.
SAFETY_MS = 5000
# A claim older than this (seconds) belongs to a worker that stopped mid-send.
STALE_CLAIM_SECONDS = 300
# What one worker instance is asked to send at most, in parts a second (a send is about five AWS
# calls).
PER_INSTANCE_MPS = 20


def instances_for(max_mps: float) -> int:
    """How many worker instances may run at once (the event source's maximum concurrency, at
    least 2): each paces to max_mps / this, so together they never exceed max_mps."""
    return max(2, min(math.ceil(max_mps / PER_INSTANCE_MPS), 1000))


class TokenBucket:
    """Tokens are message parts, refilled at ``rate`` per second up to ``capacity``. A message
    with more parts than the capacity waits for a full bucket and leaves a debt, so over any
    window the parts sent stay within ``rate * seconds + capacity``."""

    def __init__(self, rate: float, capacity: float | None = None, clock=time.monotonic, sleep=time.sleep):
        self.rate = float(rate)
        self.capacity = max(float(capacity if capacity is not None else rate), 1.0)
        self.tokens = self.capacity
        self.clock, self.sleep = clock, sleep
        self.updated = clock()
        self._lock = threading.Lock()

    def _refill(self) -> None:
        now = self.clock()
        self.tokens = min(self.capacity, self.tokens + (now - self.updated) * self.rate)
        self.updated = now

    def acquire(self, parts: int, deadline: float | None = None) -> bool:
        """Wait until ``parts`` may go; False (nothing taken) if that would pass ``deadline``
        (a ``clock()`` value)."""
        need = min(float(parts), self.capacity)
        with self._lock:
            self._refill()
            wait = max(0.0, (need - self.tokens) / self.rate)
            if deadline is not None and self.clock() + wait > deadline:
                return False
            self.tokens -= parts  # reserve now; concurrent callers queue up behind the debt
        if wait:
            self.sleep(wait)
        return True

    def try_acquire(self, parts: int) -> bool:
        """Take ``parts`` now if they are there (a message larger than the capacity needs a full
        bucket and leaves a debt); False, taking nothing, if not. What a provider enforcing an MPS
        does."""
        with self._lock:
            self._refill()
            if self.tokens < min(float(parts), self.capacity):
                return False
            self.tokens -= parts
            return True


_bucket: TokenBucket | None = None


def new_bucket(settings: Settings) -> TokenBucket:
    """One instance's share of the stage's MPS, with no burst: evenly spaced sends leave the
    provider's own bucket full, so jitter on the way there does not get a send throttled."""
    return TokenBucket(settings.max_mps / settings.worker_concurrency, capacity=1)


def bucket(settings: Settings) -> TokenBucket:
    """The bucket of this (Lambda) instance."""
    global _bucket
    if _bucket is None:
        _bucket = new_bucket(settings)
    return _bucket


class _Later(Exception):
    """Not now: hand the message back to the queue (another worker may still be sending it)."""

    def __init__(self, claimed: bool = False):
        super().__init__()
        self.claimed = claimed  # the record is claimed (``sending``) by a worker that may have stopped


class _OutOfTime(_Later):
    """This invocation has no time left for the message, nor for the rest of its batch."""


def _remaining_seconds(context) -> float:
    if context is None or not hasattr(context, "get_remaining_time_in_millis"):
        return 900.0
    return context.get_remaining_time_in_millis() / 1000.0


def _retry_later(settings: Settings, sqs_record: dict, seconds: int) -> None:
    """Make a failed message visible again soon rather than after the full visibility timeout."""
    try:
        aws.client("sqs").change_message_visibility(QueueUrl=settings.batch_queue_url,
                                                    ReceiptHandle=sqs_record["receiptHandle"],
                                                    VisibilityTimeout=seconds)
    except Exception as err:  # the message still comes back after the visibility timeout
        logger.warning("could not shorten visibility", extra={"reason": str(err)})


def _give_up(message_id: str, error: dict, expect=(store.QUEUED,)) -> None:
    """The last receive failed too: record the message as failed (the queue dead-letters it).
    Only a record still waiting is failed: one another worker is sending is left to it."""
    store.transition(message_id, store.FAILED, expect=expect, error=error)


INTERRUPTED = {"code": "SendInterrupted", "message": (
    "A worker stopped while sending this message; it may or may not have gone out, so it was not sent again.")}


def record_outcome(body: dict) -> str:
    """Write an outcome the send path could not (DynamoDB refused it after the provider had
    answered). Only forward: a record a receipt has settled meanwhile keeps its status."""
    fields = dict(body["outcome"])
    status = fields.pop("status")
    updated = store.transition(body["messageId"], status, expect=(store.QUEUED, store.SENDING), **fields)
    logger.info("outcome recorded" if updated else "outcome already overtaken",
                extra={"messageId": body["messageId"], "status": status})
    return "recorded" if updated else "already"


def process(sqs_record: dict, settings: Settings, pacer: TokenBucket, deadline: float) -> str:
    """Send the message one SQS record names, at most once. Returns what happened."""
    message_id = json.loads(sqs_record["body"])["messageId"]
    record = store.get(message_id)
    if record is None:
        logger.warning("batch message has no record", extra={"messageId": message_id})
        return "missing"
    if record["status"] == store.SENDING:
        claimed_at = record.get("claimedAt", 0)
        if time.time() - claimed_at < STALE_CLAIM_SECONDS:
            raise _Later(claimed=True)  # another worker may still be sending it: look again later
        _give_up(message_id, INTERRUPTED, expect=(store.SENDING,))
        return "interrupted"
    if record["status"] != store.QUEUED:
        return "already"  # a redelivery of a message that was sent (or failed) before
    if not pacer.acquire(int(record.get("segments") or 1), deadline=deadline):
        raise _OutOfTime()
    while (wait := store.reserve_recipient(record["to"])) > 0:
        if pacer.clock() + wait > deadline:
            raise _OutOfTime()
        time.sleep(wait)
    claimed = store.transition(message_id, store.SENDING, expect=(store.QUEUED,), claimedAt=time.time())
    if claimed is None:
        return "already"  # another delivery of the same message claimed it first
    try:
        messages.deliver(claimed, settings, claimed=True)
    except Throttled:
        raise
    except MessagingError:
        return "failed"  # the provider refused it; deliver() recorded the error
    return "sent"


def handle(event: dict, context=None, *, settings: Settings | None = None,
           pacer: TokenBucket | None = None) -> dict:
    """SQS event -> ``{"batchItemFailures": [...]}`` (the event source reports partial failures)."""
    settings = settings or get_settings()
    pacer = pacer or bucket(settings)
    deadline = pacer.clock() + _remaining_seconds(context) - SAFETY_MS / 1000.0
    failures: list[str] = []
    outcomes: dict[str, int] = {}
    records = event.get("Records", [])
    out_of_time = False
    for sqs_record in records:
        receives = int(sqs_record.get("attributes", {}).get("ApproximateReceiveCount", 1))
        if _is_outcome(sqs_record):
            outcome = _write_outcome(sqs_record, receives, settings, failures)
            outcomes[outcome] = outcomes.get(outcome, 0) + 1
            continue
        try:
            if out_of_time:  # the rest of the batch goes back without another look at its records
                raise _OutOfTime()
            outcome = process(sqs_record, settings, pacer, deadline)
        except _Later as later:
            out_of_time = out_of_time or isinstance(later, _OutOfTime)
            outcome = "later"
            failures.append(sqs_record["messageId"])
            if receives >= settings.max_receives:
                message_id = json.loads(sqs_record["body"])["messageId"]
                if later.claimed:  # nobody will look at it again: it must not stay "sending"
                    _give_up(message_id, INTERRUPTED, expect=(store.SENDING,))
                else:
                    _give_up(message_id, {"code": "NotSent", "message": (
                        f"The batch worker ran out of time for this message on all {receives} attempts.")})
            else:
                _retry_later(settings, sqs_record, 1)
        except Throttled as err:
            outcome = "throttled"
            failures.append(sqs_record["messageId"])
            if receives >= settings.max_receives:
                _give_up(err.message_id, {"code": "Throttled", "message": (
                    f"The provider throttled this message on all {receives} attempts.")})
            else:
                _retry_later(settings, sqs_record, err.retry_after + random.randint(0, 2))
        except Exception:  # anything else: this message only; the rest of the batch goes on
            logger.exception("batch message failed", extra={"sqsMessageId": sqs_record["messageId"]})
            outcome = "error"
            failures.append(sqs_record["messageId"])
            if receives >= settings.max_receives:
                try:
                    _give_up(json.loads(sqs_record["body"])["messageId"], {
                        "code": "WorkerError", "message": f"The batch worker failed on all {receives} attempts."},
                        expect=(store.QUEUED, store.SENDING))
                except Exception:
                    logger.exception("could not record the failure")
        outcomes[outcome] = outcomes.get(outcome, 0) + 1
    logger.info("batch worker", extra={"records": len(records), **outcomes})
    return {"batchItemFailures": [{"itemIdentifier": message_id} for message_id in failures]}


def _is_outcome(sqs_record: dict) -> bool:
    try:
        return "outcome" in json.loads(sqs_record["body"])
    except (ValueError, TypeError):
        return False


def _write_outcome(sqs_record: dict, receives: int, settings: Settings, failures: list[str]) -> str:
    """An outcome message: write it, or hand it back to the queue. Never marks anything failed: the
    provider has already answered for this message."""
    try:
        return record_outcome(json.loads(sqs_record["body"]))
    except Exception:
        failures.append(sqs_record["messageId"])
        if receives >= settings.max_receives:
            logger.exception("outcome could not be recorded on any receive; it goes to the dead-letter queue",
                             extra={"sqsMessageId": sqs_record["messageId"]})
        else:
            logger.warning("outcome not recorded yet; back to the queue",
                           extra={"sqsMessageId": sqs_record["messageId"]})
            _retry_later(settings, sqs_record, 2 + random.randint(0, 2))
        return "error"
