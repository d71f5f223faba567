"""Scheduled sends (``sendAt``): how a scheduled message reaches the batch queue on time, and the sweep that
puts the later ones there. (Canceling is ``messages.cancel`` and ``batches.cancel``; listing what waits,
``core.pages.scheduled_page``.)

The batch queue is the only way out: the batch worker sends a scheduled message as it sends a batch message,
paced, once its ``sendAt`` has come. SQS holds a message back for up to 900 s (``DelaySeconds``), so:

- A message due within ``SCHEDULE_DIRECT_SECONDS`` (600 s) goes on the queue when it is made, delayed until
  its ``sendAt`` (``enqueue``). Its due-index entry is in the "queued" family, which the sweep never reads.
- A message due later waits in the due index (its "sweep" family). The sweep (``sweep``, a Lambda function an
  EventBridge rule runs every minute) reads the index from its cursor up to ``SWEEP_LOOKAHEAD_SECONDS`` (300 s)
  ahead, in steps of ``SWEEP_STEP_SECONDS`` (60 s), puts what it finds on the queue delayed until each one's
  ``sendAt``, and moves its cursor past each step it finished (a conditional write: two sweeps that overlap
  never both move it). A step it did not finish is read again by the next run, so a message may be queued
  twice, never not at all; the worker's conditional claim sends it once.

The API leaves to the sweep only messages due at least ``SCHEDULE_DIRECT_SECONDS`` after they were made, and
the sweep reads at most ``SWEEP_LOOKAHEAD_SECONDS`` ahead: it never reads a range the API can still add to.
A message leaves ``scheduled`` (claimed by the worker, canceled, failed) in one conditional write that also
removes its due-index keys (``store.transition``), so the index holds exactly what is waiting, and a cancel and
the worker's claim cannot both win.
"""
from __future__ import annotations

import json
import math
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone

from ..core import aws, schema, store
from ..core.errors import Conflict
from ..core.log import logger
from ..core.settings import MAX_DELAY_SECONDS, Settings, get_settings
from . import deadletters

SQS_BATCH = 10  # SendMessageBatch takes at most 10 entries
# SendMessageBatch calls the sweep has under way at once: 100,000 messages due in one minute take 10,000
# calls, about 6.4 s at 32 at once and 20 ms a call (bench/scale.py models it; one at a time: 200 s).
SENDERS = 32
# The sweep stops starting steps when less than this much of its invocation is left.
SWEEP_SAFETY_SECONDS = 10.0
# The sweep function's timeout: it runs every minute, and a run is meant to end within it (two runs that
# overlap are harmless: the cursor's condition, the worker's claim).
SWEEP_TIMEOUT_SECONDS = 60


def clock() -> float:
    """Now, in epoch seconds: the one clock scheduling reads (tests replace it)."""
    return time.time()


def epoch(iso: str) -> float:
    """A time as the API writes it (``2026-12-05T10:00:00.000Z``) in epoch seconds."""
    return datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()


def iso(seconds: float) -> str:
    return store.now_iso(datetime.fromtimestamp(seconds, timezone.utc))


def delay_for(send_at: str, now: float | None = None) -> int:
    """The ``DelaySeconds`` that holds a message back until ``send_at``: rounded up (never early), 0 to 900."""
    left = epoch(send_at) - (clock() if now is None else now)
    return max(0, min(MAX_DELAY_SECONDS, math.ceil(left)))


def queued_at_once(send_at: str, settings: Settings, now: float | None = None) -> bool:
    """Whether the API puts a message due at ``send_at`` on the queue itself (else the sweep will)."""
    return epoch(send_at) - (clock() if now is None else now) < settings.schedule_direct_seconds


def scheduled_fields(message_id: str, send_at: str, settings: Settings, *, test: bool) -> dict:
    """What a new record scheduled for ``send_at`` holds beyond a queued one: its status, ``sendAt``, and its
    due-index keys (the family says who puts it on the queue)."""
    return {"status": store.SCHEDULED, "sendAt": send_at,
            **store.due_keys(message_id, send_at, test=test, queued=queued_at_once(send_at, settings))}


def not_cancelable(status: str | None, what: str = "this message is") -> Conflict:
    """409 ``NotCancelable``: only a scheduled message can be canceled."""
    return Conflict("NotCancelable", f"Only a scheduled message can be canceled; {what} "
                    f"{store.shown_status(status) if status else 'not scheduled'}.")


def queued_by_api(record: dict) -> bool:
    """Whether this scheduled record is the API's to put on the queue (``scheduled_fields`` decided it)."""
    family = str(record.get(schema.MESSAGES_DUE_PARTITION) or "")
    return family.startswith(store.due_prefixes(bool(record.get("test")))[1])


# -- the queue --------------------------------------------------------------------------------------
def _body(message_id: str, batch_id: str | None = None) -> str:
    body = {"messageId": message_id}
    if batch_id:
        body["batchId"] = batch_id
    return json.dumps(body)


def enqueue(settings: Settings, due: list[tuple[str, str, str | None]], *, senders: int = 1,
            now: float | None = None) -> list[str]:
    """Put ``(message id, sendAt, batch id or None)`` on the batch queue, each delayed until its ``sendAt``:
    SendMessageBatch, 10 at a time, ``senders`` calls at once, entries SQS reports failed sent again. Returns
    the ids SQS still refused."""
    chunks = [due[i:i + SQS_BATCH] for i in range(0, len(due), SQS_BATCH)]

    def send(chunk: list[tuple[str, str, str | None]]) -> list[str]:
        client = aws.client("sqs")
        pending = {str(i): entry for i, entry in enumerate(chunk)}
        for attempt in range(4):
            entries = [{"Id": key, "MessageBody": _body(message_id, batch_id),
                        "DelaySeconds": delay_for(send_at, now)}
                       for key, (message_id, send_at, batch_id) in pending.items()]
            response = client.send_message_batch(QueueUrl=settings.batch_queue_url, Entries=entries)
            pending = {f["Id"]: pending[f["Id"]] for f in response.get("Failed", [])}
            if not pending:
                return []
            time.sleep(0.1 * 2 ** attempt)
        return [message_id for message_id, _, _ in pending.values()]

    if senders <= 1 or len(chunks) <= 1:
        return [lost for chunk in chunks for lost in send(chunk)]
    with ThreadPoolExecutor(max_workers=min(senders, len(chunks)), thread_name_prefix="enqueue") as pool:
        return [lost for refused in pool.map(send, chunks) for lost in refused]


# -- the sweep --------------------------------------------------------------------------------------
def _floor(seconds: float, step: int) -> float:
    return math.floor(seconds / step) * step


def read_cursor(settings: Settings) -> str | None:
    """Where the last sweep stopped: the ``sendAt`` bound (exclusive) up to which it queued everything."""
    item = aws.client("dynamodb").get_item(
        TableName=settings.idempotency_table, Key={schema.IDEMPOTENCY_KEY: {"S": schema.SWEEP_CURSOR}},
        ConsistentRead=True).get("Item")
    return item["until"]["S"] if item else None


def move_cursor(settings: Settings, old: str | None, new: str, now: float) -> bool:
    """Move the cursor from ``old`` to ``new``, only if no other sweep moved it meanwhile."""
    client = aws.client("dynamodb")
    values = {":new": {"S": new}, ":ttl": {"N": str(int(now) + 40 * 86400)}}
    if old is None:
        condition = "attribute_not_exists(#until)"
    else:
        condition, values[":old"] = "#until = :old", {"S": old}
    try:
        client.update_item(
            TableName=settings.idempotency_table, Key={schema.IDEMPOTENCY_KEY: {"S": schema.SWEEP_CURSOR}},
            UpdateExpression="SET #until = :new, #ttl = :ttl", ConditionExpression=condition,
            ExpressionAttributeNames={"#until": "until", "#ttl": schema.IDEMPOTENCY_TTL},
            ExpressionAttributeValues=values)
    except client.exceptions.ConditionalCheckFailedException:
        return False
    return True


def due_between(start: str | None, end: str) -> list[tuple[str, str]]:
    """``(message id, sendAt)`` of every message in the sweep's families (live and test) due at or after
    ``start`` (None: any time before) and before ``end``: one Query per shard, all at once."""
    client = aws.client("dynamodb")
    names = {"#pk": schema.MESSAGES_DUE_PARTITION, "#sk": schema.MESSAGES_DUE_SORT}
    # Sort keys are "<sendAt>#<id>": "<start>" sorts before every key of that time, "<end>" before every key
    # of its own, so BETWEEN takes [start, end) in time.
    if start is None:
        condition, values = "#pk = :pk AND #sk < :end", {":end": {"S": end}}
    else:
        condition, values = "#pk = :pk AND #sk BETWEEN :start AND :end", {":start": {"S": start}, ":end": {"S": end}}
    queries = [{"TableName": store.messages_table(), "IndexName": schema.MESSAGES_DUE_INDEX,
                "KeyConditionExpression": condition, "ExpressionAttributeNames": names,
                "ExpressionAttributeValues": {**values, ":pk": {"S": f"{prefix}{shard}"}}}
               for prefix in (store.due_prefixes(False)[0], store.due_prefixes(True)[0])
               for shard in range(schema.INDEX_SHARDS)]

    def every(params: dict) -> list[tuple[str, str]]:
        found, response = [], client.query(**params)
        while True:
            for item in response.get("Items", []):
                send_at, _, message_id = item[schema.MESSAGES_DUE_SORT]["S"].partition("#")
                found.append((message_id, send_at))
            if not response.get("LastEvaluatedKey"):
                return found
            response = client.query(**params, ExclusiveStartKey=response["LastEvaluatedKey"])

    with ThreadPoolExecutor(max_workers=len(queries), thread_name_prefix="due") as pool:
        return [entry for shard in pool.map(every, queries) for entry in shard]


def _time_left(context) -> float:
    if context is None or not hasattr(context, "get_remaining_time_in_millis"):
        return float(SWEEP_TIMEOUT_SECONDS)
    return context.get_remaining_time_in_millis() / 1000.0


def sweep(event=None, context=None, *, settings: Settings | None = None, now: float | None = None) -> dict:
    """One run of the sweep: from the cursor up to ``lookahead`` ahead of now (whole steps), a step at a time:
    read the step's range of the due index, put what is there on the batch queue delayed until its ``sendAt``,
    move the cursor past the step. Stops when another sweep moved the cursor, or when its time runs short.
    Then it ends the records of what the batch queue dead-lettered (``deadletters.settle_dead_letters``).
    Returns ``{"enqueued", "steps", "cursor", "settled"}``. Raises when SQS refuses messages after retries: the
    cursor then stays before their step, and the next run reads it again."""
    settings = settings or get_settings()
    started, total = time.monotonic(), _time_left(context)
    budget = total - SWEEP_SAFETY_SECONDS
    step = settings.sweep_step_seconds
    fixed = now  # an injected clock (tests); else each delay is reckoned from the moment it is sent
    now = clock() if now is None else now
    until = _floor(now + settings.sweep_lookahead_seconds, step)
    cursor = read_cursor(settings)
    enqueued = steps = 0
    while True:
        start = None if cursor is None else epoch(cursor)
        if start is not None and start >= until:
            break
        if time.monotonic() - started > budget:
            logger.warning("sweep out of time", extra={"cursor": cursor, "until": iso(until)})
            break
        # A first run (no cursor) reads everything due before the horizon in one step.
        end = until if start is None else min(until, _floor(start, step) + step)
        due = due_between(cursor, iso(end))
        refused = enqueue(settings, [(message_id, send_at, None) for message_id, send_at in due],
                          senders=SENDERS, now=fixed) if due else []
        if refused:
            logger.error("sweep: the batch queue refused messages; the step is read again next run",
                         extra={"refused": len(refused), "from": cursor, "to": iso(end)})
            raise RuntimeError(f"the batch queue refused {len(refused)} scheduled messages")
        enqueued += len(due)
        steps += 1
        if not move_cursor(settings, cursor, iso(end), now):
            logger.info("sweep: another run moved the cursor", extra={"from": cursor})
            break
        cursor = iso(end)
    # Then what the batch queue dead-lettered without the worker settling it (``deadletters``). Should SQS or
    # DynamoDB fail there, the run's line is still written (its counts are metrics), then the run fails.
    failed = None
    try:
        settled = deadletters.settle_dead_letters(settings, time_left=lambda: total - (time.monotonic() - started))
    except Exception as err:
        logger.exception("sweep: the batch dead-letter queue was not read to the end; the next run goes on")
        settled, failed = 0, err
    logger.info("schedule sweep", extra={"enqueued": enqueued, "steps": steps, "cursor": cursor, "settled": settled})
    if failed is not None:
        raise failed
    return {"enqueued": enqueued, "steps": steps, "cursor": cursor, "settled": settled}
