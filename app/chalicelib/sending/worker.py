"""The batch worker: SQS messages in, sends out through the same send path as the API, paced.

Pacing: every instance claims its send windows, in message parts (an SMS counts its segments, an
MMS counts 1), from one schedule the whole stage shares (``chalicelib.pacing``), so the stage never
exceeds ``MAX_MPS`` however many instances run, and one instance alone reaches it: it sends up to
``senders_for(MAX_MPS)`` messages of its batch at once (a thread each). On top of that, a
conditional write per recipient (``pacing.reserve_recipient``) lets at most one message a second go
to any one number, across all instances.

At most once: SQS delivers at least once, so a record is claimed (``queued`` -> ``sending``, a
conditional write) before the provider is called, and a message whose record is no longer
``queued`` is never sent again. A throttled send puts the record back to ``queued`` and the
message back on the queue (reported in ``batchItemFailures``). On its last receive
(``MAX_RECEIVES``) a message that still fails is marked ``failed`` and the queue moves it to the
dead-letter queue: ``NotSent`` if it was never claimed, ``SendInterrupted`` if a worker claimed it
and stopped before recording what the provider said (it may have gone out: never sent again). A
message whose last receive never reached this handling (the invocation failed as a whole) is ended
from the dead-letter queue (``deadletters``).

Scheduled messages (``sendAt``) come through the same queue, held back by SQS until their time
(``schedule``). The worker claims one (``scheduled -> sending``, conditional, so that a cancel and the
claim cannot both win) only once its ``sendAt`` has come: one SQS hands over early goes back, hidden for
the time left. Before the claim it checks the opt-out list and the stage's allowlist as they are at send
time: a recipient who opted out since gets nothing (``failed``, ``RecipientOptedOut``).

The queue also carries outcomes the send path could not write to DynamoDB after the provider had
answered (``{"messageId", "outcome": {"status", ...}}``, see ``messages._record_outcome``): the
worker writes them (``record_outcome``), sending nothing.
"""
from __future__ import annotations

import contextvars
import json
import math
import random
import threading
import time
from concurrent.futures import ThreadPoolExecutor

from ..core import aws, phone, store
from ..core.errors import MessagingError, Throttled
from ..core.log import logger
from ..core.settings import Settings, get_settings
from ..replies import optouts
from . import messages
from . import pacing
from . import schedule as scheduling  # sendAt (``schedule`` here is the stage's send schedule)
from .deadletters import INTERRUPTED, STALE_CLAIM_SECONDS, give_up, record_outcome
from .pacing import ITEM_RATE, DynamoItems, Schedule, TokenBucket

# Stop taking new messages when less than this much of the invocation is left: a send plus its
# DynamoDB writes must finish inside the function timeout.
SAFETY_MS = 5000
# About what one sender sends, in parts a second: it sends one message at a time, and a send is
# about six AWS calls (bench/scale.py models them).
PER_SENDER_MPS = 20
# Messages in one SQS event at most (the event source mapping's batch size).
BATCH_SIZE = 10


def instances_for(max_mps: float) -> int:
    """How many worker instances may run at once (the event source's maximum concurrency, at
    least 2): one sender each (``senders_for``) keeps up with max_mps once they all run. The
    shared schedule keeps the stage within max_mps whatever number of them runs."""
    return max(2, min(math.ceil(max_mps / PER_SENDER_MPS), 1000))


# What paces a worker: the stage's schedule, or (tests) a local bucket. Both have ``clock()`` and
# ``acquire(parts, deadline) -> bool``.
Pacer = Schedule | TokenBucket
_schedule: Schedule | None = None


def new_schedule(settings: Settings) -> Schedule:
    """One instance's handle on the stage's send schedule (in the idempotency table)."""
    return Schedule(settings.max_mps, DynamoItems(settings.idempotency_table))


def schedule(settings: Settings) -> Schedule:
    """The schedule handle of this (Lambda) instance."""
    global _schedule
    if _schedule is None:
        _schedule = new_schedule(settings)
    return _schedule


class _Later(Exception):
    """Not now: hand the message back to the queue (another worker may still be sending it)."""

    def __init__(self, claimed: bool = False):
        super().__init__()
        self.claimed = claimed  # the record is claimed (``sending``) by a worker that may have stopped


class _OutOfTime(_Later):
    """This invocation has no time left for the message, nor for the rest of its batch."""


class _Early(_Later):
    """A scheduled message whose ``sendAt`` has not come: back to the queue, hidden for the time left."""

    def __init__(self, seconds: float):
        super().__init__()
        self.seconds = max(1, min(MAX_VISIBILITY_SECONDS, math.ceil(seconds)))


# ChangeMessageVisibility takes at most 12 hours.
MAX_VISIBILITY_SECONDS = 43200


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


def process(sqs_record: dict, settings: Settings, pacer: Pacer, deadline: float) -> str:
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
        give_up(message_id, INTERRUPTED, expect=(store.SENDING,))
        return "interrupted"
    waiting = record["status"]
    if waiting == store.SCHEDULED:
        early = scheduling.epoch(record["sendAt"]) - scheduling.clock()
        if early > 0:
            raise _Early(early)
    elif waiting != store.QUEUED:
        return "already"  # a redelivery of a message that was sent, failed or canceled before
    if optouts.is_opted_out(record["to"], settings):  # a STOP that came after POST /batches (or /sms with sendAt)
        store.transition(message_id, store.FAILED, expect=(waiting,), error=optouts.opted_out_error().as_dict())
        logger.info("batch message to an opted-out recipient not sent", extra={"messageId": message_id})
        return "opted-out"
    if messages.expired(record):  # its validityPeriod ran out while it waited: spend no send window on it
        store.transition(message_id, store.FAILED, expect=(waiting,), error=messages.expired_error(record).as_dict())
        logger.info("batch message not sent: validity period over", extra={"messageId": message_id})
        return "expired"
    if waiting == store.SCHEDULED and settings.allowed_countries:
        try:  # the stage's allowlist as it is now, not as it was when the message was scheduled
            phone.normalize(record["to"], allowed_countries=settings.allowed_countries)
        except MessagingError as refused:
            store.transition(message_id, store.FAILED, expect=(waiting,), error=refused.as_dict())
            logger.info("scheduled message to a country no longer allowed not sent", extra={"messageId": message_id})
            return "not-allowed"
    if not pacer.acquire(int(record.get("segments") or 1), deadline=deadline):
        raise _OutOfTime()
    while (wait := pacing.reserve_recipient(record["to"])) > 0:
        if pacer.clock() + wait > deadline:
            raise _OutOfTime()
        time.sleep(wait)
    claimed = store.transition(message_id, store.SENDING, expect=(waiting,), claimedAt=time.time())
    if claimed is None:
        now = store.get(message_id)
        if now is not None and now["status"] == store.SENDING:
            # Another delivery of the same message claimed it first. It may still hand the record back
            # (a throttled send puts it back to queued), so this copy stays on the queue to come again.
            raise _Later(claimed=True)
        return "already"  # it was canceled, or sent or failed since
    try:
        messages.deliver(claimed, settings, claimed=True)
    except Throttled:
        raise
    except MessagingError:
        return "failed"  # the provider refused it; deliver() recorded the error
    return "sent"


def senders_for(max_mps: float) -> int:
    """How many of its batch's messages one instance sends at once: enough for one instance alone
    to reach max_mps (each sender about PER_SENDER_MPS parts a second), up to one schedule item's
    rate (``ITEM_RATE``). Above that the stage runs more instances (``instances_for``), and
    more senders would only crowd the schedule: a claim it refuses is a write too."""
    return max(1, min(BATCH_SIZE, math.ceil(min(max_mps, ITEM_RATE) / PER_SENDER_MPS)))


def handle(event: dict, context=None, *, settings: Settings | None = None,
           pacer: Pacer | None = None, senders: int | None = None) -> dict:
    """SQS event -> ``{"batchItemFailures": [...]}`` (the event source reports partial failures).
    The records go through ``senders`` at a time (``senders_for(maxMps)`` unless given), each in
    the order it came."""
    settings = settings or get_settings()
    pacer = pacer or schedule(settings)
    deadline = pacer.clock() + _remaining_seconds(context) - SAFETY_MS / 1000.0
    failures: list[str] = []
    records = event.get("Records", [])
    out_of_time = threading.Event()  # set: the rest of the batch goes back without another look

    def one(sqs_record: dict) -> str:
        return _handle_record(sqs_record, settings, pacer, deadline, failures, out_of_time)

    senders = min(len(records), senders or senders_for(settings.max_mps))
    results = _concurrently(one, records, senders) if senders > 1 else [one(r) for r in records]
    outcomes: dict[str, int] = {}
    for outcome in results:
        outcomes[outcome] = outcomes.get(outcome, 0) + 1
    logger.info("batch worker", extra={"records": len(records), **outcomes})
    return {"batchItemFailures": [{"itemIdentifier": message_id} for message_id in failures]}


def _concurrently(fn, items: list, workers: int) -> list:
    """``fn`` over ``items`` on ``workers`` threads, results in order. Each call runs in a copy of
    the caller's context (the logger's keys go along). Should one raise past ``fn``'s own handling
    (the process is going down), the calls not started yet never start."""
    pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="sender")
    try:
        futures = [pool.submit(contextvars.copy_context().run, fn, item) for item in items]
        return [future.result() for future in futures]
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def _handle_record(sqs_record: dict, settings: Settings, pacer: Pacer, deadline: float, failures: list[str],
                   out_of_time: threading.Event) -> str:
    """One record of the batch: send it, or hand it back to the queue (``failures``). Returns what happened."""
    receives = int(sqs_record.get("attributes", {}).get("ApproximateReceiveCount", 1))
    if _is_outcome(sqs_record):
        return _write_outcome(sqs_record, receives, settings, failures)
    try:
        if out_of_time.is_set():  # the rest of the batch goes back without another look at its records
            raise _OutOfTime()
        return process(sqs_record, settings, pacer, deadline)
    except _Later as later:
        if isinstance(later, _OutOfTime):
            out_of_time.set()
        failures.append(sqs_record["messageId"])
        if receives >= settings.max_receives:
            message_id = json.loads(sqs_record["body"])["messageId"]
            if later.claimed:  # nobody will look at it again: it must not stay "sending"
                give_up(message_id, INTERRUPTED, expect=(store.SENDING,))
            elif isinstance(later, _Early):
                give_up(message_id, {"code": "NotSent", "message": (
                    f"The batch queue handed this scheduled message over before its sendAt on all {receives} "
                    "attempts.")}, expect=(store.SCHEDULED,))
            else:
                give_up(message_id, {"code": "NotSent", "message": (
                    f"The batch worker ran out of time for this message on all {receives} attempts.")},
                    expect=(store.QUEUED, store.SCHEDULED))
        else:
            _retry_later(settings, sqs_record, later.seconds if isinstance(later, _Early) else 1)
        return "early" if isinstance(later, _Early) else "later"
    except Throttled as err:
        failures.append(sqs_record["messageId"])
        if receives >= settings.max_receives:
            give_up(err.message_id, {"code": "Throttled", "message": (
                f"The provider throttled this message on all {receives} attempts.")})
        else:
            _retry_later(settings, sqs_record, err.retry_after + random.randint(0, 2))
        return "throttled"
    except Exception:  # anything else: this message only; the rest of the batch goes on
        logger.exception("batch message failed", extra={"sqsMessageId": sqs_record["messageId"]})
        failures.append(sqs_record["messageId"])
        if receives >= settings.max_receives:
            try:
                give_up(json.loads(sqs_record["body"])["messageId"], {
                    "code": "WorkerError", "message": f"The batch worker failed on all {receives} attempts."},
                    expect=(store.QUEUED, store.SENDING, store.SCHEDULED))
            except Exception:
                logger.exception("could not record the failure")
        return "error"


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
