"""The report tally function (``report_tally``): the messages table's stream in, the daily counters out,
each stream record counted exactly once.

Each record's change (``figures.change``: new image less old) is applied in one ``TransactWriteItems`` with a
marker of the record, a conditional ``Put`` of ``applied#<eventID>`` (``schema.REPORTS_APPLIED``): a marker
that exists means the record was counted, in the very transaction that wrote the marker. So:

- a batch Lambda hands over again (the function failed or timed out after a commit, or the batch was split)
  finds its records' markers: those are skipped, the others applied;
- a duplicate receipt changes no message record, so it makes no stream record at all; a late receipt that
  settles a message again moves its count from one final status to the other.

A batch's records are applied together: one transaction takes up to ``MAX_ITEMS`` items, so a chunk holds
markers and the few counter items their changes add up to (a day and a channel each). The counters of one
transaction go to one shard of the day (``schema.REPORT_SHARDS``), chosen per chunk: the sum over the shards
is what counts, so any shard is right, and spreading the chunks spreads the writes and keeps concurrent
transactions off each other's items. A transaction DynamoDB cancels because another one holds an item
(``TransactionConflict``) is tried again, on another shard. Anything else that fails raises, and Lambda
hands the batch over again (the mapping retries without limit: a record left out would make the figures
wrong).
"""
from __future__ import annotations

import hashlib
import random
import time
from datetime import date, datetime, timezone
from decimal import Decimal
from typing import NamedTuple

from ..core import aws, schema
from ..core.log import logger
from ..core.settings import Settings, get_settings
from . import figures

# TransactWriteItems takes at most 100 items (botocore's model: TransactItems max 100).
MAX_ITEMS = 100
# A marker outlives the stream's 24 hours of records, by a day.
MARKER_SECONDS = 2 * 86400
# Cancellation reasons worth another try, on another shard, after a pause.
RETRYABLE = frozenset({"TransactionConflict", "ThrottlingError", "ProvisionedThroughputExceeded"})
MAX_TRIES = 8


class Counted(NamedTuple):
    """One stream record with a change to apply."""
    event_id: str
    change: dict


class CountFailed(RuntimeError):
    """DynamoDB kept cancelling a transaction for a reason worth retrying: fail the invocation, so that Lambda
    hands the batch over again (its markers keep what was applied from being applied twice)."""


def counter_expiry(day: str) -> int:
    """Epoch seconds at which a day's counters expire: ``schema.REPORT_DAYS`` days after the day ends."""
    start = datetime.combine(date.fromisoformat(day), datetime.min.time(), tzinfo=timezone.utc)
    return int(start.timestamp()) + (schema.REPORT_DAYS + 1) * 86400


def _number(amount) -> dict:
    if isinstance(amount, Decimal):
        text = format(amount.normalize(), "f")
        return {"N": text if text not in ("-0", "") else "0"}
    return {"N": str(int(amount))}


def counter_key(key: figures.Key, shard: int) -> dict:
    return {schema.REPORTS_KEY: {"S": f"{schema.REPORTS_DAILY}{key.day}#{shard}"},
            schema.REPORTS_SORT: {"S": key.channel}}


def counter_update(table: str, key: figures.Key, counts: dict, shard: int) -> dict:
    """The transaction item that adds ``counts`` to the day's counters in ``shard`` (and sets their expiry)."""
    names, values, adds = {"#ttl": schema.REPORTS_TTL}, {":ttl": {"N": str(counter_expiry(key.day))}}, []
    for i, (name, amount) in enumerate(sorted(counts.items())):
        names[f"#c{i}"], values[f":c{i}"] = name, _number(amount)
        adds.append(f"#c{i} :c{i}")
    return {"Update": {"TableName": table, "Key": counter_key(key, shard),
                       "UpdateExpression": "SET #ttl = :ttl ADD " + ", ".join(adds),
                       "ExpressionAttributeNames": names, "ExpressionAttributeValues": values}}


def marker_put(table: str, event_id: str, now: float) -> dict:
    return {"Put": {"TableName": table,
                    "Item": {schema.REPORTS_KEY: {"S": schema.REPORTS_APPLIED + event_id},
                             schema.REPORTS_SORT: {"S": schema.REPORTS_ONE},
                             schema.REPORTS_TTL: {"N": str(int(now) + MARKER_SECONDS)}},
                    "ConditionExpression": "attribute_not_exists(#pk)",
                    "ExpressionAttributeNames": {"#pk": schema.REPORTS_KEY}}}


def counted_records(event: dict) -> list[Counted]:
    """The records of a stream event that change the figures, each once (by eventID)."""
    found, seen = [], set()
    for record in event.get("Records", []):
        change = figures.change(record)
        if not change:
            continue
        event_id = str(record.get("eventID") or (record.get("dynamodb") or {}).get("SequenceNumber") or "")
        if not event_id:
            raise ValueError("a stream record without an eventID or a sequence number")
        if event_id not in seen:
            seen.add(event_id)
            found.append(Counted(event_id, change))
    return found


def chunks(records: list[Counted]) -> list[list[Counted]]:
    """Records in groups whose markers and counter items fit one transaction."""
    groups, current, keys = [], [], set()
    for record in records:
        more = keys | set(record.change)
        if current and len(current) + 1 + len(more) > MAX_ITEMS:
            groups.append(current)
            current, more = [], set(record.change)
        current.append(record)
        keys = more
    if current:
        groups.append(current)
    return groups


def shard_for(records: list[Counted]) -> int:
    """A shard for a chunk: from its first record, so that one chunk handed over again picks the same one."""
    return int(hashlib.sha256(records[0].event_id.encode()).hexdigest()[:8], 16) % schema.REPORT_SHARDS


def apply(client, table: str, records: list[Counted], *, now: float, sleep=time.sleep) -> dict[str, int]:
    """Apply one chunk: {"applied": records counted now, "skipped": records counted before, "tries": n}."""
    pending, outcome, shard = list(records), {"applied": 0, "skipped": 0, "tries": 0}, shard_for(records)
    while pending:
        total: dict = {}
        for record in pending:
            figures.add(total, record.change)
        items = [marker_put(table, r.event_id, now) for r in pending]
        for key, counts in sorted(total.items()):
            nonzero = {name: amount for name, amount in counts.items() if amount}
            if nonzero:
                items.append(counter_update(table, key, nonzero, shard))
        outcome["tries"] += 1
        try:
            client.transact_write_items(TransactItems=items)
        except client.exceptions.TransactionCanceledException as cancelled:
            reasons = [r.get("Code") for r in cancelled.response.get("CancellationReasons") or []]
            counted = {pending[i].event_id for i, code in enumerate(reasons[:len(pending)])
                       if code == "ConditionalCheckFailed"}
            if counted:  # those records were counted before (their markers exist): the others still are not
                outcome["skipped"] += len(counted)
                pending = [r for r in pending if r.event_id not in counted]
                continue
            if not set(reasons) - {"None", None} <= RETRYABLE or outcome["tries"] >= MAX_TRIES:
                raise CountFailed(f"DynamoDB cancelled the count: {sorted(set(reasons) - {'None', None})}") \
                    from cancelled
            sleep(min(0.05 * 2 ** outcome["tries"], 2.0) * random.uniform(0.5, 1.0))
            shard = (shard + 1 + random.randrange(schema.REPORT_SHARDS - 1)) % schema.REPORT_SHARDS
            continue
        outcome["applied"] += len(pending)
        pending = []
    return outcome


def handle(event: dict, context=None, *, settings: Settings | None = None, now: float | None = None,
           sleep=time.sleep) -> dict[str, int]:
    """A batch of stream records -> the counters. Raises (and Lambda hands the batch over again) when a
    count cannot be written; what was written stays counted once."""
    settings = settings or get_settings()
    records = counted_records(event)
    result = {"records": len(event.get("Records", [])), "counted": len(records), "applied": 0, "skipped": 0,
              "transactions": 0}
    if not records:
        return result
    if not settings.reports_table:
        raise RuntimeError("REPORTS_TABLE is not set: the stream's changes would not be counted")
    client = aws.client("dynamodb")
    now = time.time() if now is None else now
    for group in chunks(records):
        outcome = apply(client, settings.reports_table, group, now=now, sleep=sleep)
        result["applied"] += outcome["applied"]
        result["skipped"] += outcome["skipped"]
        result["transactions"] += outcome["tries"]
    logger.info("report tally", extra=result)
    return result
