"""How far the batch worker scales: a stage at 1,000 MPS draining 100,000 messages, steady drains at
MPS 20 and 100, and small backlogs, for today's design and the new one side by side.

A discrete-event simulation on a virtual clock (no sleeping, no threads) that runs the real pacing
code. Today's design: each instance paces itself with ``pacing.TokenBucket`` at maxMps / its
maximum concurrency, with no burst (what ``worker.new_bucket`` did), one message at a time. The new
one: every instance claims windows from one ``pacing.Schedule`` over ``pacing.MemoryItems`` (the
conditions of the table's UpdateItem; tests/test_pacing.py checks the two agree), sending
``worker.senders_for(maxMps)`` messages at a time. Around that code, a model:

- The SQS event source, standard queue (tests/aws_docs/lambda-sqs-scaling.json, read here): 5
  concurrent batches at first, one more instance every 60/300 s while messages wait, at most
  ``worker.instances_for(maxMps)`` (the stack's maximum concurrency); batches of 10; a batch short of
  10 waits out the mapping's 1-s batching window (infra/api.py). 20 ms per batch to receive, invoke
  and delete.
- The worker, per message: 5 AWS calls of 8 ms each (read the record, the recipient gate, claim,
  send, record ``sent``), plus each UpdateItem call the schedule makes. Every recipient is distinct,
  so the gate never waits.
- The provider: ``pacing.TokenBucket`` at maxMps with one second of burst, as the local emulator
  enforces it. A send reaches it 0 to 20 ms after the call starts. A send above it is throttled: the
  claim is undone and the message comes back 1 to 3 s later, as the worker does.
- DynamoDB: each partition key takes its documented write units a second
  (tests/aws_docs/dynamodb_gsi_writes.json) with one second of burst. A write that finds a key spent
  is throttled and retried with botocore's standard backoff (rand(0, 2^n) s), which delays the
  instance (botocore's limit of 3 attempts and what the app does after it are left out: they would
  only slow today's design more). The final status is written 2 s after the send (the receipt), on
  the same keys, by the status ingest. Only keys that many messages share are modelled (a message's
  own record and its recipient's gate are written a few times each in its life). Shared-key writes
  per message during the drain:

  | write | today | new |
  |---|---|---|
  | claim (and its undo after a throttle) | list index key, batch index key | none (the index still shows ``queued``) |
  | ``sent``, final | list index key, batch index key | batch index shard ``<batchId>#<hash % 8>`` |
  | pacing | none (local) | one ``pacer#<k>`` per UpdateItem, refused ones included (counted, not limited) |

  The creates (POST /batches: 1,000 messages each, which also write the list index) come before the
  drain: the drain starts with all 100,000 queued, oldest batch first.

Figures: parts/s / MPS and time to drain / ideal (parts / MPS) run from the first send to the end of
the last send's share of the MPS (its parts / MPS after it); the ~60 ms from queueing to the first
send (the event source and the worker's first calls) are alike in both designs and left out. The
hottest key is the most write units any one key was asked for in one second, throttled ones
included. The queue wait runs from the start of the drain (every message queued at 0) to the send.

The report tally (issue 22) is simulated too (``tally_drain``): 1,000 MPS for ``TALLY_SECONDS``, each
message's writes in the messages table's stream (its insert, the claim, ``sent``, the final status: what the
mapping's filter passes), spread over ``STREAM_SHARDS`` stream shards by message id; one invocation per shard
at a time, batches of up to 100 records gathered for up to a second (infra/reports.py), each
``TransactWriteItems`` taking ``TX_SECONDS``. Two designs: one transaction per counted record, its counters on
the shard of its message id (16 shards, ``TX_THREADS`` transactions at once per invocation), and the one the
tally runs, with its real chunking and shard choice (``tally.chunks``, ``tally.shard_for``): a batch's records
in as few transactions as fit, each one's counters on one shard. Transactional writes cost 2 write units an
item (markers are one key each). Figures: the hottest key's write units in a second; transactions a second;
the transactions that overlapped another on the same counter item (DynamoDB cancels one of them,
``TransactionConflict``, and the tally tries it again); the stream's lag. And the items a 30-day report reads
(``daily.items_for``), whatever the traffic.

Run: ``python -m bench.scale`` (also part of ``make bench``).
"""
from __future__ import annotations

import heapq
import json
import math
import random
import re
import sys
from collections import Counter, deque
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "app"))
from chalicelib.sending import pacing  # noqa: E402
from chalicelib.core import schema
from chalicelib.core import store
from chalicelib.sending import worker
from chalicelib.reports import daily as report_days
from chalicelib.reports import figures as report_figures
from chalicelib.reports import tally

DOCS = ROOT / "tests" / "aws_docs"

CALL = 0.008  # one AWS call of the worker (DynamoDB or the provider), seconds
INVOKE = 0.020  # the event source's receive, invoke and delete around one batch
IDLE_POLL = 0.05  # an instance with nothing to receive looks again after this
BATCHING_WINDOW = 1.0  # infra/api.py: maximum_batching_window_in_seconds of the worker's mapping
NETWORK = 0.020  # a send reaches the provider up to this long after its call starts
RECEIPT = 2.0  # the final status write comes this long after the send
PATTERN = [1, 1, 1, 2, 1, 1, 3, 1, 1, 1]  # message parts: mostly 1-part SMS, some 2- and 3-part
BATCH = 1000  # messages per POST /batches


def event_source_scaling() -> dict[str, int]:
    """The SQS event source's numbers, from the documented quote kept in tests/aws_docs."""
    fixture = json.loads((DOCS / "lambda-sqs-scaling.json").read_text())
    return {name: entry["value"] for name, entry in fixture["numbers"].items()}


def partition_write_units() -> int:
    """DynamoDB's write units a second per partition, from the documented quote kept in tests/aws_docs."""
    fixture = json.loads((DOCS / "dynamodb_gsi_writes.json").read_text())
    for source in fixture["sources"]:
        for quote in source["quotes"]:
            found = re.search(r"([\d,]+) write units per second", quote)
            if found:
                return int(found.group(1).replace(",", ""))
    raise LookupError("no write units per second in dynamodb_gsi_writes.json")


@dataclass(frozen=True)
class Message:
    id: str
    parts: int
    batch: int


def messages(count: int) -> list[Message]:
    """``count`` messages in batches of ``BATCH``, parts as ``PATTERN``."""
    return [Message(f"m{i:06d}", PATTERN[i % len(PATTERN)], i // BATCH) for i in range(count)]


@dataclass(frozen=True)
class Design:
    name: str
    pacer: Callable  # (mps, concurrency, shared items, clock, rng) -> one instance's pacer
    senders: Callable[[float], int]  # messages one instance sends at once, for an MPS
    claim_keys: Callable[[Message], tuple[str, ...]]  # the claim, and its undo after a throttle
    status_keys: Callable[[Message], tuple[str, ...]]  # "sent" and the final status


def _bucket_per_instance(mps, concurrency, items, clock, rng):
    """Today's pacing: what ``worker.new_bucket`` made, an instance's share of the MPS, no burst."""
    return pacing.TokenBucket(mps / concurrency, capacity=1, clock=clock)


def _shared_schedule(mps, concurrency, items, clock, rng):
    return pacing.Schedule(mps, items, clock=clock, rng=rng)


TODAY = Design("today", _bucket_per_instance, lambda mps: 1,
               lambda m: ("list index", f"batch {m.batch}"), lambda m: ("list index", f"batch {m.batch}"))
NEW = Design("new", _shared_schedule, worker.senders_for,
             lambda m: (), lambda m: (f"batch {m.batch}#{store.shard_of(m.id)}",))


class Sim:
    """Processes are generators that yield how long they wait (seconds), or None to park until
    something starts them again."""

    def __init__(self):
        self.now = 0.0
        self.current = None
        self._events: list = []
        self._n = 0

    def start(self, process, delay: float = 0.0) -> None:
        heapq.heappush(self._events, (self.now + delay, self._n, process))
        self._n += 1

    def run(self) -> None:
        while self._events:
            self.now, _, self.current = heapq.heappop(self._events)
            try:
                delay = next(self.current)
            except StopIteration:
                continue
            if delay is not None:
                self.start(self.current, delay)


class Join:
    """Parks the process that makes it until ``n`` others have called ``done``."""

    def __init__(self, sim: Sim, n: int):
        self.sim, self.n, self.waiter = sim, n, sim.current

    def done(self) -> None:
        self.n -= 1
        if self.n == 0:
            self.sim.start(self.waiter)


class Queue:
    def __init__(self, queued: list[Message]):
        self.visible = deque(queued)
        self.hidden: list = []  # (visible again at, n, message)
        self.unsent = len(queued)

    def _due(self, now: float) -> None:
        while self.hidden and self.hidden[0][0] <= now:
            self.visible.append(heapq.heappop(self.hidden)[2])

    def waiting(self, now: float) -> int:
        self._due(now)
        return len(self.visible)

    def receive(self, now: float, n: int) -> list[Message]:
        self._due(now)
        return [self.visible.popleft() for _ in range(min(n, len(self.visible)))]

    def back(self, message: Message, at: float) -> None:
        heapq.heappush(self.hidden, (at, id(message), message))


class Keys:
    """DynamoDB's limit per partition key: ``limit`` write units a second, one second of burst. A
    write to several keys (a table write and its index writes) goes through only if each has room."""

    def __init__(self, limit: int):
        self.limit = limit
        self.buckets: dict[str, tuple[float, float]] = {}  # key -> (tokens, at)
        self.asked: Counter = Counter()  # (key, second) -> write units asked, throttled ones included
        self.throttled = 0

    def ask(self, key: str, now: float, units: int = 1) -> None:
        self.asked[key, int(now)] += units

    def write(self, keys: tuple[str, ...], now: float) -> bool:
        room = True
        for key in keys:
            self.ask(key, now)
            tokens, at = self.buckets.get(key, (self.limit, now))
            tokens = min(self.limit, tokens + (now - at) * self.limit)
            self.buckets[key] = (tokens, now)
            room = room and tokens >= 1
        if not room:
            self.throttled += 1
            return False
        for key in keys:
            tokens, at = self.buckets[key]
            self.buckets[key] = (tokens - 1, at)
        return True

    def hottest(self) -> tuple[str, int]:
        if not self.asked:
            return "none", 0
        (key, _), units = max(self.asked.items(), key=lambda entry: entry[1])
        return key, units


def drain(design: Design, mps: float, queued: list[Message], seed: int = 1) -> dict:
    """Drain ``queued`` (all visible at 0) at ``mps``; the figures of the report."""
    scaling = event_source_scaling()
    sim, rng = Sim(), random.Random(seed)
    queue, keys = Queue(queued), Keys(partition_write_units())
    clock = lambda: sim.now  # noqa: E731
    provider = pacing.TokenBucket(mps, capacity=mps, clock=clock)
    items = pacing.MemoryItems()
    concurrency = worker.instances_for(mps)
    senders = design.senders(mps)
    sends: list[tuple[float, int]] = []
    launches: list[float] = []  # when the event source started each instance
    provider_throttles = 0

    def write(shared: tuple[str, ...]):
        attempt = 0
        while True:
            yield CALL
            if keys.write(shared, sim.now):
                return
            attempt += 1
            yield rng.random() * min(2.0 ** (attempt - 1), 20.0)  # botocore's standard retry mode

    def pace(pacer, parts: int):
        if isinstance(pacer, pacing.TokenBucket):
            wait = pacer.reserve(parts)
            if wait:
                yield wait
            return
        while True:
            before = dict(items.writes)
            slot = pacer.reserve(parts)
            for item, count in items.writes.items():
                if count != before.get(item, 0):
                    keys.ask(f"{schema.PACER_PREFIX}{item}", sim.now, count - before.get(item, 0))
            yield slot.calls * CALL
            if slot.at > sim.now:
                yield slot.at - sim.now
            if slot.granted:
                return

    def final(message: Message):
        yield from write(design.status_keys(message))

    def send(pacer, message: Message):
        nonlocal provider_throttles
        yield CALL  # read the record
        yield from pace(pacer, message.parts)
        yield CALL  # the recipient gate
        yield from write(design.claim_keys(message))
        reach = rng.uniform(0, NETWORK)
        yield reach
        arrived, accepted = sim.now, provider.try_acquire(message.parts)
        yield max(0.0, CALL - reach)
        if not accepted:
            provider_throttles += 1
            yield from write(design.claim_keys(message))  # back to queued
            queue.back(message, sim.now + 1 + rng.randint(0, 2))
            return
        sends.append((arrived, message.parts))
        queue.unsent -= 1
        yield from write(design.status_keys(message))
        sim.start(final(message), RECEIPT)

    def sender(pacer, todo: deque, join: Join):
        while todo:
            yield from send(pacer, todo.popleft())
        join.done()

    def instance():
        pacer = design.pacer(mps, concurrency, items, clock, rng)
        while queue.unsent:
            batch = queue.receive(sim.now, worker.BATCH_SIZE)
            if not batch:
                yield IDLE_POLL
                continue
            if len(batch) < worker.BATCH_SIZE and queue.unsent > len(batch):
                yield BATCHING_WINDOW
                batch += queue.receive(sim.now, worker.BATCH_SIZE - len(batch))
            yield INVOKE
            if senders == 1:
                for message in batch:
                    yield from send(pacer, message)
                continue
            todo = deque(batch)
            join = Join(sim, min(senders, len(batch)))
            for _ in range(join.n):
                sim.start(sender(pacer, todo, join))
            yield None  # until the batch is done

    def event_source():
        for _ in range(min(scaling["initial_batches"], concurrency)):
            launches.append(sim.now)
            sim.start(instance())
        while queue.unsent:
            yield 60.0 / scaling["added_per_minute"]
            if len(launches) < min(concurrency, scaling["max_batches"]) and queue.waiting(sim.now):
                launches.append(sim.now)
                sim.start(instance())

    sim.start(event_source())
    sim.run()
    times = sorted(t for t, _ in sends)
    parts = sum(p for _, p in sends)
    end = max(t + p / mps for t, p in sends)  # the last send's share of the MPS ends
    hot_key, hot_units = keys.hottest()
    return {
        "ratio": parts / (end - times[0]) / mps,
        "drain_ratio": (end - times[0]) / (parts / mps),
        "hot_key": hot_key, "hot": hot_units,
        "provider_throttles": provider_throttles, "dynamodb_throttles": keys.throttled,
        "p99": times[min(len(times) - 1, int(len(times) * 0.99))],
        "instances": concurrency, "senders": senders, "messages": len(queued), "parts": parts,
        "sends": sends,  # (when the provider took it, parts)
        "launches": launches,
    }


BIG = (1000, 100_000)
STEADY = (20, 100)  # 15 seconds' worth of parts
STEADY_SECONDS = 15
SMALL = [(n, mps) for mps in (3, 20, 100) for n in (10, 100)]


def steady(mps: float) -> list[Message]:
    """``STEADY_SECONDS`` of parts at ``mps``."""
    count, parts = 0, 0
    while parts < mps * STEADY_SECONDS:
        parts += PATTERN[count % len(PATTERN)]
        count += 1
    return messages(count)


def rows() -> list[tuple[str, list[tuple]]]:
    """(heading, [(label, today, new, target, ok)]) for the report."""
    sections = []
    mps, count = BIG
    big = {d.name: drain(d, mps, messages(count)) for d in (TODAY, NEW)}
    sections.append((f"{mps:,} MPS, {count:,} messages ({big['new']['instances']} instances at most, "
                     f"{big['new']['senders']} senders each in the new design)", [
        ("parts/s / MPS", big, "ratio", "{:.3f}", ">= 0.95", lambda v: v >= 0.95),
        ("hottest key, writes/s", big, "hot", "{:,}", "< 1,000", lambda v: v < 1000),
        ("  that key", big, "hot_key", "{}", "", None),
        ("provider throttles", big, "provider_throttles", "{:,}", "0", lambda v: v == 0),
        ("DynamoDB throttles", big, "dynamodb_throttles", "{:,}", "0", lambda v: v == 0),
        ("p99 queue wait (s)", big, "p99", "{:.1f}", "", None),
    ]))
    for mps in STEADY:
        queued = steady(mps)
        result = {d.name: drain(d, mps, queued) for d in (TODAY, NEW)}
        sections.append((f"steady drain at MPS {mps} ({len(queued)} messages, {result['new']['instances']} "
                         f"instances at most)", [
            ("parts/s / MPS", result, "ratio", "{:.3f}", ">= 0.95", lambda v: v >= 0.95),
            ("provider throttles", result, "provider_throttles", "{:,}", "0", lambda v: v == 0),
        ]))
    small = []
    for count, mps in SMALL:
        result = {d.name: drain(d, mps, messages(count)) for d in (TODAY, NEW)}
        small.append((f"{count} messages at MPS {mps}", result, "drain_ratio", "{:.2f}", "<= 1.2",
                      lambda v: v <= 1.2))
        small.append(("  provider throttles", result, "provider_throttles", "{:,}", "0", lambda v: v == 0))
    sections.append(("small backlogs: time to drain / ideal (parts / MPS)", small))
    return sections


# -- the report tally ------------------------------------------------------------------------------
TALLY_MPS = 1000
TALLY_SECONDS = 20
STREAM_SHARDS = 8  # the messages table at 1,000 MPS writes some 4,000 units a second: several partitions
RECORDS = ("insert", "claim", "sent", "final")  # a message's writes, as the stream hands them over
TX_SECONDS = 0.020
INVOKE_SECONDS = 0.010
TX_THREADS = 10  # per-record transactions at once in one invocation (the per-record design needs them)
TALLY_BATCH, TALLY_WINDOW = 100, 1.0
TRANSACTION_UNITS = 2  # write units per item of a transactional write (items under 1 KB)


@dataclass(frozen=True)
class StreamRecord:
    at: float
    message: str
    counted: bool


def stream_records(mps: int, seconds: int) -> dict[int, list[StreamRecord]]:
    """Each stream shard's records in order: every message's writes, ``sent`` 50 ms after it is created and its
    final status 2 s later (the receipt); only those two change the figures."""
    shards: dict[int, list[StreamRecord]] = {}
    for i in range(mps * seconds):
        created, message = i / mps, f"m{i:07d}"
        shard = int(message[1:]) * 2654435761 % 2 ** 32 % STREAM_SHARDS
        for name, delay in zip(RECORDS, (0.0, 0.02, 0.05, 0.05 + RECEIPT)):
            shards.setdefault(shard, []).append(StreamRecord(created + delay, message, name in ("sent", "final")))
    return {shard: sorted(found, key=lambda r: r.at) for shard, found in shards.items()}


def _batches(records: list[StreamRecord]):
    """(time the invocation starts, its records) as the mapping hands them over: up to 100 records, or what
    came within a second of the first."""
    i, free = 0, 0.0
    while i < len(records):
        start = max(free, records[i].at)
        full = records[i + TALLY_BATCH - 1].at if i + TALLY_BATCH - 1 < len(records) else float("inf")
        start = max(start, min(full, records[i].at + TALLY_WINDOW))
        batch = [r for r in records[i:i + TALLY_BATCH] if r.at <= start]
        i += len(batch)
        free = yield start, batch


def tally_drain(design: str, mps: int = TALLY_MPS, seconds: int = TALLY_SECONDS) -> dict:
    """Play the stream into the tally: ``per record`` or ``batched``. Figures of the report."""
    units: Counter = Counter()  # (key, second) -> write units
    spans: dict[str, list[tuple[float, float]]] = {}  # counter item -> its transactions' (start, end)
    transactions, lag = 0, 0.0
    day = "2026-12-05"
    for records in stream_records(mps, seconds).values():
        batches = _batches(records)
        start, batch = next(batches)
        while True:
            lag = max(lag, start - batch[0].at)
            now = start + INVOKE_SECONDS
            counted = [r for r in batch if r.counted]
            if design == "batched":
                groups = tally.chunks([tally.Counted(f"{r.message}-{r.at}", {report_figures.Key(day, "sms"): {
                    "accepted": 1}}) for r in counted])
                for group in groups:
                    keys = [f"daily#{day}#{tally.shard_for(group)}"]
                    for key in keys:
                        units[key, int(now)] += TRANSACTION_UNITS
                        spans.setdefault(key, []).append((now, now + TX_SECONDS))
                    transactions += 1
                    now += TX_SECONDS
            else:
                lanes = [now] * TX_THREADS
                for r in counted:
                    lane = lanes.index(min(lanes))
                    key = f"daily#{day}#{store.shard_of(r.message) % schema.REPORT_SHARDS}"
                    units[key, int(lanes[lane])] += TRANSACTION_UNITS
                    spans.setdefault(key, []).append((lanes[lane], lanes[lane] + TX_SECONDS))
                    lanes[lane] += TX_SECONDS
                    transactions += 1
                now = max(lanes)
            try:
                start, batch = batches.send(now)
            except StopIteration:
                break
    overlapping = 0
    for found in spans.values():
        found.sort()
        end = -1.0
        for begin, finish in found:
            overlapping += begin < end
            end = max(end, finish)
    (key, _), hottest = max(units.items(), key=lambda entry: entry[1])
    return {"hot": hottest, "hot_key": key, "tx": transactions / seconds,
            "conflicts": overlapping / max(transactions, 1), "lag": lag}


def tally_rows() -> list[tuple]:
    designs = {name: tally_drain(name) for name in ("per record", "batched")}
    return [
        ("hottest counter key, write units/s", designs, "hot", "{:,}", "< 1,000", lambda v: v < 1000),
        ("transactions/s", designs, "tx", "{:,.0f}", "", None),
        ("transactions overlapping on an item", designs, "conflicts", "{:.1%}", "", None),
        ("stream lag, most (s)", designs, "lag", "{:.1f}", "< 60", lambda v: v < 60),
    ]


def tally_report(rows_) -> None:
    print(f"{'report counters (simulated)':<40}{'per record':>12}{'':6}{'batched':>12}{'':6}{'target':>9}")
    print(f"{TALLY_MPS:,} MPS for {TALLY_SECONDS} s, {STREAM_SHARDS} stream shards, {schema.REPORT_SHARDS} counter "
          f"shards a day and channel")
    print_designs(rows_, ("per record", "batched"), width=38)
    items = report_days.items_for(30)
    print(f"  {'items a 30-day report reads':<38}{items:>12,}{'':6}{'':>12}{'':6}{'bounded':>9}")
    print(f"  {'BatchGetItem calls (100 keys each)':<38}{-(-items // report_days.BATCH_KEYS):>12,}")


# -- scheduled sends (issue 21) ----------------------------------------------------------------------------
# 100,000 messages scheduled for the same moment, at 1,000 MPS: created beforehand (POST /batches with sendAt,
# 1,000 a batch), queued by one run of the sweep about SWEEP_LOOKAHEAD_SECONDS ahead, each delayed by SQS until
# the moment, then drained by the worker as any batch. Keys per message:
#
#   | write | keys |
#   |---|---|
#   | create | list index ``messages#<n>``, due index ``due#<n>``, batch index ``<batch>#<n>`` |
#   | the claim (``scheduled -> sending``, its due keys removed) | due index ``due#<n>`` (the entry deleted), batch index (``shown`` scheduled -> queued) |
#   | ``sent``, final | batch index, as any batch message |
#   | the sweep | one cursor item in the idempotency table, once per step (a minute) |
SCHEDULED = (1000, 100_000)
CREATE_RATE = 5_000  # messages created a second: 5 batches of 1,000 (the list index takes about 6,000: README)
QUERY_PAGE = 0.050  # one Query page of the due index (up to 1 MB), seconds
SQS_CALL = 0.020  # one SendMessageBatch call (10 entries), seconds
QUERY_PAGE_BYTES = 1024 * 1024  # "a maximum of 1 MB of data" per Query page (the Query API reference)
# One due-index entry as DynamoDB sizes it (names and values in UTF-8: "id" + a uuid, "dueShard" + "due#7",
# "dueAt" + "<sendAt>#<id>"), plus the 100 bytes DynamoDB adds per index item: counted so as to err long.
DUE_ENTRY_BYTES = (2 + 36) + (8 + 5) + (5 + 24 + 1 + 36) + 100


def _scheduled_keys(message: Message) -> tuple[str, ...]:
    shard = store.shard_of(message.id)
    return (f"{schema.DUE_SWEEP_PREFIX}{shard}", f"batch {message.batch}#{shard}")


SCHEDULED_DESIGN = Design("scheduled", _shared_schedule, worker.senders_for, _scheduled_keys, NEW.status_keys)


def creates(queued: list[Message], rate: float = CREATE_RATE) -> dict:
    """The writes of creating ``queued`` at ``rate`` a second: the hottest key of each index, write units a second."""
    per_index: dict[str, Keys] = {name: Keys(partition_write_units()) for name in ("list", "due", "batch")}
    for i, message in enumerate(queued):
        at, shard = i / rate, store.shard_of(message.id)
        per_index["list"].ask(f"{schema.MESSAGES_LIST_PREFIX}{shard}", at)
        per_index["due"].ask(f"{schema.DUE_SWEEP_PREFIX}{shard}", at)
        per_index["batch"].ask(f"batch {message.batch}#{shard}", at)
    return {name: keys.hottest() for name, keys in per_index.items()}


def sweep_run(queued: list[Message], senders: int | None = None) -> dict:
    """One sweep step that finds every message of ``queued``: the due index's shards read at once (pages of
    QUERY_PAGE_BYTES), then SendMessageBatch calls of 10, ``senders`` at a time, then the cursor moved."""
    from chalicelib.sending import schedule

    senders = senders or schedule.SENDERS
    per_shard = Counter(store.shard_of(m.id) for m in queued)
    per_page = QUERY_PAGE_BYTES // DUE_ENTRY_BYTES
    # 2 x 8 Queries (live and test keys' families), each paging through its shard; all at once.
    reading = max(math.ceil(max(n, 1) / per_page) for n in per_shard.values()) * QUERY_PAGE
    sim = Sim()
    calls = math.ceil(len(queued) / schedule.SQS_BATCH)
    todo = deque(range(calls))
    done_at: list[float] = []

    def sender(join: Join):
        while todo:
            todo.popleft()
            yield SQS_CALL
            done_at.append(sim.now)
        join.done()

    def run():
        yield reading
        join = Join(sim, min(senders, calls))
        for _ in range(join.n):
            sim.start(sender(join))
        yield None
        yield CALL  # the cursor's UpdateItem

    sim.start(run())
    sim.run()
    busiest = Counter(int(t) for t in done_at).most_common(1)[0][1] if done_at else 0
    return {"seconds": sim.now, "reading": reading, "calls": calls, "calls_per_second": busiest,
            "messages_per_second": min(len(queued), busiest * schedule.SQS_BATCH), "cursor_writes": 1}


def scheduled() -> dict:
    """The figures of the scheduled section."""
    from chalicelib.sending import schedule

    mps, count = SCHEDULED
    queued = messages(count)
    drained = drain(SCHEDULED_DESIGN, mps, queued)
    return {"creates": creates(queued), "sweep": sweep_run(queued), "drain": drained,
            "timeout": schedule.SWEEP_TIMEOUT_SECONDS, "mps": mps, "count": count}


def scheduled_rows(result: dict) -> tuple[str, list[tuple]]:
    """(heading, [(label, value text, target, ok or None)])."""
    limit = partition_write_units()
    drained, sweep = result["drain"], result["sweep"]
    rows = []
    for name, label in (("due", "due index"), ("list", "list index"), ("batch", "batch index")):
        key, units = result["creates"][name]
        rows.append((f"creates: hottest {label} key, writes/s", f"{units:,}", f"< {limit:,}", units < limit))
    rows += [
        ("sweep: Query pages, s", f"{sweep['reading']:.2f}", "", None),
        ("sweep: SendMessageBatch calls", f"{sweep['calls']:,}", "", None),
        ("sweep: calls/s (busiest second)", f"{sweep['calls_per_second']:,}", "no quota", None),
        ("sweep: one run, s", f"{sweep['seconds']:.1f}", f"< {result['timeout']}", sweep["seconds"] < result["timeout"]),
        ("sweep: cursor writes per run", f"{sweep['cursor_writes']}", f"< {limit:,}/s", True),
        ("drain: parts/s / MPS", f"{drained['ratio']:.3f}", ">= 0.95", drained["ratio"] >= 0.95),
        ("drain: hottest key, writes/s", f"{drained['hot']:,}", f"< {limit:,}", drained["hot"] < limit),
        ("  that key", drained["hot_key"], "", None),
        ("drain: provider throttles", f"{drained['provider_throttles']:,}", "0", drained["provider_throttles"] == 0),
        ("drain: DynamoDB throttles", f"{drained['dynamodb_throttles']:,}", "0", drained["dynamodb_throttles"] == 0),
        ("drain: 99% out, s after sendAt", f"{drained['p99']:.0f}", "", None),
    ]
    heading = (f"scheduled: {result['count']:,} messages due in one minute at {result['mps']:,} MPS "
               f"(created at {CREATE_RATE:,}/s, queued by one sweep run, drained through the batch queue)")
    return heading, rows


def report_scheduled(section: tuple[str, list[tuple]]) -> None:
    heading, rows = section
    print(heading)
    for label, value, target, ok in rows:
        verdict = "" if ok is None else ("ok" if ok else "MISS")
        print(f"  {label:<38}{value:>16} {verdict:<5}{target:>12}")


def report(sections) -> None:
    print(f"{'scale (simulated)':<34}{'today':>12}{'':6}{'new':>12}{'':6}{'target':>9}")
    for heading, section in sections:
        print(heading)
        print_designs(section, ("today", "new"), width=32)


def print_designs(rows_, designs: tuple[str, ...], *, width: int) -> None:
    """Rows that set designs side by side, ``(label, results, key, format, target, check)`` each: the label in
    ``width`` columns, each design's ``results[design][key]`` with ``ok`` or ``MISS`` where the row has a
    check, then the target."""
    for label, result, key, fmt, target, check in rows_:
        cells = ""
        for name in designs:
            value = result[name][key]
            verdict = "" if check is None else ("ok" if check(value) else "MISS")
            cells += f"{fmt.format(value):>12} {verdict:<5}"
        print(f"  {label:<{width}}{cells}{target:>9}")


if __name__ == "__main__":
    report(rows())
    print()
    tally_report(tally_rows())
    print()
    report_scheduled(scheduled_rows(scheduled()))
