"""Pacing sends to the stage's MPS: one send schedule shared by every worker instance.

The schedule is K items ``pacer#0`` .. ``pacer#<K-1>`` in the idempotency table (short-lived keys,
with its TTL), ``K = items_for(maxMps)``, so that no item takes more than about ``ITEM_RATE``
writes a second (DynamoDB allows 1,000 a second per partition key). Each item is a GCRA: its
``nextAt`` is the time (epoch seconds) its next free window starts, and the item runs at
``maxMps / K`` parts a second. Claiming a window of ``parts`` is one conditional UpdateItem:

- the item is missing or free (``nextAt <= now``): the window starts now, ``nextAt = now + parts / rate``;
- the item is booked, but no further ahead than ``MAX_AHEAD`` (``now <= nextAt <= now + MAX_AHEAD``):
  the window starts at the old ``nextAt``, ``nextAt += parts / rate``;
- booked further ahead: refused, nothing consumed; the refusal (``ReturnValuesOnConditionCheckFailure``)
  says the item's ``nextAt``. The claimer tries the next item (round robin from a random start per
  instance) and, when every item refuses, waits until the earliest takes claims again.

DynamoDB's update expressions have no ``max()``, so the first two cases are two expression shapes:
the claimer guesses the second on an item it has seen before (under load it is booked; when the
stage is idle an extra call costs nothing), and a wrong guess costs one more call (its refusal
says which shape fits). ``nextAt`` never goes back, so an item last seen booked past the horizon
is skipped without a call.

The windows of one item never overlap and each item runs at ``maxMps / K``: the whole stage stays
within ``maxMps`` however many instances claim, and one instance alone can use all of it (as fast
as it can send). A message with more parts than a second's worth takes a longer window.

Clock: wall time (``time.time()``) on every instance, compared across instances through the items.
This assumes the instances' clocks agree to well under a second; nothing here checks it. A skew of
s seconds between two instances can bring up to ``s * maxMps`` parts closer together than the
schedule says (the rate over time stays the same), which the provider's one second of burst absorbs
while s is well under a second.

``TokenBucket`` is a local token bucket: the provider's MPS model in the local stack's emulator and
in the benchmarks, and the per-instance pacing this schedule replaced (the benchmarks compare both).
"""
from __future__ import annotations

import math
import random
import threading
import time
from typing import NamedTuple

from ..core import aws, schema
from ..core.settings import get_settings
from ..core.store import encode

# How far ahead of now a claim may book (seconds): a claimer waits at most this long for its window.
MAX_AHEAD = 0.25
# Parts a second one item takes at most: K = ceil(maxMps / ITEM_RATE) keeps each item's key far
# below DynamoDB's 1,000 writes a second per partition key, refused claims included.
ITEM_RATE = 100.0
# How late a send may reach the provider after its window starts (seconds). The provider's bucket
# holds one second of parts; a message that needs nearly all of it waits this much longer, so that
# the bucket has refilled from a send before it that went out late.
SEND_JITTER = 0.1
TTL_SECONDS = 3600


def items_for(max_mps: float) -> int:
    """How many schedule items a stage with this MPS uses."""
    return max(1, math.ceil(max_mps / ITEM_RATE))


def claim(next_at: float | None, fresh: bool, now: float, latest: float, seconds: float) -> float | None:
    """The GCRA step of one item, exactly as the two UpdateItem conditions have it: the item's new
    ``nextAt`` if the claim of a window ``seconds`` long is granted, else None (nothing changes).

    ``fresh``: granted if the item is missing or free (``nextAt <= now``); the window starts at ``now``.
    Not ``fresh``: granted if ``now <= nextAt <= latest``; the window starts at ``nextAt``."""
    if fresh:
        return now + seconds if next_at is None or next_at <= now else None
    return next_at + seconds if next_at is not None and now <= next_at <= latest else None


class MemoryItems:
    """The schedule's items in memory, with the same conditions as the table (``claim``): what the
    simulation in ``bench/scale.py`` runs. ``writes`` counts the calls per item, refused ones included
    (DynamoDB charges a write for a failed conditional write too)."""

    def __init__(self):
        self.next_at: dict[int, float] = {}
        self.writes: dict[int, int] = {}

    def update(self, item: int, fresh: bool, now: float, latest: float, seconds: float) -> tuple[bool, float | None]:
        """(granted, the item's nextAt before the call)."""
        old = self.next_at.get(item)
        self.writes[item] = self.writes.get(item, 0) + 1
        new = claim(old, fresh, now, latest, seconds)
        if new is not None:
            self.next_at[item] = new
        return new is not None, old


def _number(value: float) -> dict:
    return {"N": format(value, ".6f")}


class DynamoItems:
    """The schedule's items in the idempotency table: one conditional UpdateItem per claim."""

    def __init__(self, table: str):
        self.table = table

    def update(self, item: int, fresh: bool, now: float, latest: float, seconds: float) -> tuple[bool, float | None]:
        """(granted, the item's nextAt before the call; None if missing, or unknown after a fresh grant)."""
        client = aws.client("dynamodb")
        values = {":now": _number(now), ":ttl": {"N": str(int(now) + TTL_SECONDS)}}
        if fresh:
            shape = {"UpdateExpression": "SET #at = :next, #ttl = :ttl",
                     "ConditionExpression": "attribute_not_exists(#at) OR #at <= :now"}
            values[":next"] = _number(now + seconds)
        else:
            shape = {"UpdateExpression": "SET #at = #at + :seconds, #ttl = :ttl",
                     "ConditionExpression": "#at BETWEEN :now AND :latest", "ReturnValues": "UPDATED_OLD"}
            values.update({":seconds": _number(seconds), ":latest": _number(latest)})
        try:
            response = client.update_item(
                TableName=self.table, Key={schema.IDEMPOTENCY_KEY: {"S": f"{schema.PACER_PREFIX}{item}"}},
                ExpressionAttributeNames={"#at": "nextAt", "#ttl": schema.IDEMPOTENCY_TTL},
                ExpressionAttributeValues=values, ReturnValuesOnConditionCheckFailure="ALL_OLD", **shape)
        except client.exceptions.ConditionalCheckFailedException as err:
            old = err.response.get("Item", {}).get("nextAt")
            return False, float(old["N"]) if old else None
        old = response.get("Attributes", {}).get("nextAt")
        return True, float(old["N"]) if old else None


class Slot(NamedTuple):
    at: float  # granted: when to send; refused: when to ask again (the earliest item takes claims then)
    granted: bool
    calls: int  # UpdateItem calls it took


class Schedule:
    """One instance's view of the stage's schedule. ``reserve`` claims without sleeping (the
    simulation drives it on a virtual clock); ``acquire`` is what the worker calls."""

    def __init__(self, max_mps: float, items, *, clock=time.time, sleep=time.sleep, rng=random):
        self.max_mps = float(max_mps)
        self.size = items_for(max_mps)
        self.rate = self.max_mps / self.size  # parts a second on each item
        self.items, self.clock, self.sleep, self.rng = items, clock, sleep, rng
        self._next = rng.randrange(self.size)  # this instance's first item
        self._seen: dict[int, float | None] = {}  # nextAt last seen per item: guesses the update's shape

    def window(self, parts: int) -> tuple[float, float]:
        """(lead, seconds): a window of ``seconds`` on one item, the send ``lead`` seconds into it.
        The lead is 0 unless the message needs nearly the provider's whole second of burst
        (``SEND_JITTER``)."""
        lead = max(0.0, SEND_JITTER - 1.0 + min(parts, self.max_mps) / self.max_mps)
        return lead, lead + parts / self.rate

    def reserve(self, parts: int, deadline: float | None = None) -> Slot | None:
        """Claim a window for ``parts``; None if no window can start by ``deadline`` (a ``clock()``
        value), with nothing claimed."""
        now = self.clock()
        lead, seconds = self.window(parts)
        latest = now + MAX_AHEAD if deadline is None else min(now + MAX_AHEAD, deadline - lead)
        if latest < now:
            return None
        calls, earliest = 0, None
        for i in range(self.size):
            item = (self._next + i) % self.size
            seen = self._seen.get(item)
            if seen is not None and seen > latest:  # nextAt never goes back: it would refuse
                if earliest is None or seen < earliest[1]:
                    earliest = (item, seen)
                continue
            fresh = seen is None  # an item seen before is most likely booked by now, under load
            calls += 1
            granted, old = self.items.update(item, fresh, now, latest, seconds)
            if not granted and (old is None or old <= latest) and (old is None or old <= now) != fresh:
                fresh = not fresh  # the other shape fits: the refusal told the item's nextAt
                calls += 1
                granted, old = self.items.update(item, fresh, now, latest, seconds)
            if granted:
                start = now if fresh else old
                self._seen[item] = start + seconds
                self._next = (item + 1) % self.size
                return Slot(start + lead, True, calls)
            self._seen[item] = old
            if old is not None and old > latest and (earliest is None or old < earliest[1]):
                earliest = (item, old)
        if earliest is None:  # lost races only: ask again at once
            return Slot(now, False, calls)
        item, next_at = earliest
        if deadline is not None and next_at + lead > deadline:
            return None
        self._next = item
        # Ask again once the earliest item takes claims, plus a random part of MAX_AHEAD: the refused
        # instances do not all come back at the same moment.
        return Slot(max(now, next_at - MAX_AHEAD + self.rng.uniform(0, MAX_AHEAD)), False, calls)

    def acquire(self, parts: int, deadline: float | None = None) -> bool:
        """Wait for a window and until it starts; False, with nothing claimed, if none can start by
        ``deadline``."""
        while (slot := self.reserve(parts, deadline)) is not None:
            wait = slot.at - self.clock()
            if wait > 0:
                self.sleep(wait)
            if slot.granted:
                return True
        return False


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

    def reserve(self, parts: int, deadline: float | None = None) -> float | None:
        """Take ``parts`` now and say how many seconds to wait before sending them; None (nothing
        taken) if that would pass ``deadline`` (a ``clock()`` value). Concurrent callers queue up
        behind the debt."""
        need = min(float(parts), self.capacity)
        with self._lock:
            self._refill()
            wait = max(0.0, (need - self.tokens) / self.rate)
            if deadline is not None and self.updated + wait > deadline:
                return None
            self.tokens -= parts
        return wait

    def acquire(self, parts: int, deadline: float | None = None) -> bool:
        """Wait until ``parts`` may go; False (nothing taken) if that would pass ``deadline``."""
        wait = self.reserve(parts, deadline)
        if wait is None:
            return False
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


def reserve_recipient(to: str, gap_seconds: float = 1.0, *, now: float | None = None) -> float:
    """Take the recipient's next send slot (at most one message per ``gap_seconds``), shared by
    every worker through one conditional write to the short-lived-keys (idempotency) table.
    Returns 0 when taken, else the seconds to wait. ``now``: the clock (epoch seconds; default the
    machine's)."""
    now = time.time() if now is None else now
    client = aws.client("dynamodb")
    table = get_settings().idempotency_table
    key = {schema.IDEMPOTENCY_KEY: {"S": f"{schema.RECIPIENT_GATE_PREFIX}{to}"}}
    try:
        client.put_item(
            TableName=table,
            Item={**key, "nextAt": encode(round(now + gap_seconds, 3)),
                  schema.IDEMPOTENCY_TTL: encode(int(now) + 3600)},
            ConditionExpression="attribute_not_exists(#id) OR nextAt <= :now",
            ExpressionAttributeNames={"#id": schema.IDEMPOTENCY_KEY},
            ExpressionAttributeValues={":now": encode(round(now, 3))},
        )
        return 0.0
    except client.exceptions.ConditionalCheckFailedException:
        item = client.get_item(TableName=table, Key=key, ConsistentRead=True).get("Item")
        wait = float(item["nextAt"]["N"]) - now if item else 0.0
        return max(wait, 0.01)
