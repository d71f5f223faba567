"""Bulk drain: how close the batch worker's pacing gets to an origination identity's MPS, and
what it costs to send without pacing.

A fake provider enforces ``MPS`` message parts per second with a token bucket (one second's
worth of burst) and answers ``ThrottlingException`` above it, after a 10 ms call latency. The
batch is drained by as many instances as the stack gives the worker for that MPS
(``worker.instances_for``, which the stack also uses), each taking 10 messages at a time from a queue:

- paced: each instance sends through the worker's own token bucket (``worker.new_bucket``: its
  share of the MPS, no burst), as ``chalicelib.worker`` does on Lambda;
- naive: the same instances send as fast as they can.

A throttled message goes back to the queue and is tried again, so neither sender loses one.
DynamoDB, SQS and the per-recipient gate are left out (every recipient is distinct): this
measures the pacing, not moto. Run: ``python -m bench.bulk_drain`` (also part of ``make bench``).
"""
from __future__ import annotations

import collections
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LATENCY = 0.010
SECONDS = 15  # how long a paced drain should take: the batch holds MPS * SECONDS parts


class FakeProvider:
    """MPS enforced with a token bucket over parts (one second's burst), as the local emulator does."""

    def __init__(self, mps: float, bucket_class):
        self.bucket = bucket_class(mps, capacity=mps)
        self.lock = threading.Lock()
        self.throttled = 0
        self.sent: list[tuple[float, str, int]] = []  # (time, message id, parts)

    def send(self, message_id: str, parts: int) -> bool:
        time.sleep(LATENCY)
        allowed = self.bucket.try_acquire(parts)
        with self.lock:
            if not allowed:
                self.throttled += 1
                return False
            self.sent.append((time.monotonic(), message_id, parts))
            return True


def batch(mps: float) -> list[tuple[str, int]]:
    """(message id, parts): mostly 1-part SMS, some 2- and 3-part, and MMS (1 part)."""
    messages, parts = [], 0
    pattern = [1, 1, 1, 2, 1, 1, 3, 1, 1, 1]
    while parts < mps * SECONDS:
        n = pattern[len(messages) % len(pattern)]
        messages.append((f"m{len(messages)}", n))
        parts += n
    return messages


def drain(mps: float, paced: bool) -> dict:
    sys.path.insert(0, str(ROOT / "app"))
    from chalicelib import worker
    from chalicelib.settings import Settings

    concurrency = worker.instances_for(mps)  # as many instances as the stack allows for this MPS
    settings = Settings(media_bucket="b", messages_table="m", idempotency_table="i", max_mps=mps,
                        worker_concurrency=concurrency)
    provider = FakeProvider(mps, worker.TokenBucket)
    messages = batch(mps)
    pending = collections.deque(messages)
    lock = threading.Lock()
    start = time.monotonic()

    def instance():
        bucket = worker.new_bucket(settings)
        while True:
            with lock:
                taken = [pending.popleft() for _ in range(min(10, len(pending)))]
            if not taken:
                with lock:
                    if not pending and all_done():
                        return
                time.sleep(0.005)
                continue
            for message_id, parts in taken:
                if paced:
                    bucket.acquire(parts)
                if not provider.send(message_id, parts):
                    with lock:
                        pending.append((message_id, parts))  # back to the queue

    def all_done():
        return len({m for _, m, _ in provider.sent}) >= len(messages)

    threads = [threading.Thread(target=instance) for _ in range(concurrency)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=SECONDS * 20)
    counts = collections.Counter(m for _, m, _ in provider.sent)
    times = [t for t, _, _ in provider.sent]
    parts = sum(p for _, _, p in provider.sent)
    span = max(times) - min(times) + 1.0 / mps
    waits = sorted(t - start for t in times)
    return {
        "ratio": parts / span / mps,
        "throttled": provider.throttled,
        "duplicates": sum(c - 1 for c in counts.values() if c > 1),
        "losses": len({m for m, _ in messages} - set(counts)),
        "p99": waits[min(len(waits) - 1, int(len(waits) * 0.99))],
        "instances": concurrency,
        "messages": len(messages),
    }


def rows() -> list[tuple[str, dict, dict]]:
    return [(f"MPS {mps}", drain(mps, paced=True), drain(mps, paced=False)) for mps in (20, 100)]


def report(results) -> None:
    print(f"{'bulk drain':<22}{'paced':>12}{'naive':>12}{'target':>10}")
    for label, paced, naive in results:
        print(f"{label} ({paced['messages']} messages, {paced['instances']} instances)")
        for key, name, fmt, target in (("ratio", "parts/s / MPS", "{:.3f}", ">= 0.95"),
                                       ("throttled", "throttling errors", "{}", "0"),
                                       ("duplicates", "duplicates", "{}", "0"),
                                       ("losses", "losses", "{}", "0"),
                                       ("p99", "p99 queue wait (s)", "{:.2f}", "")):
            ok = {"ratio": paced["ratio"] >= 0.95}.get(key, paced[key] == 0 if target == "0" else True)
            print(f"  {name:<20}{fmt.format(paced[key]):>12}{fmt.format(naive[key]):>12}{target:>10}"
                  f" {'ok' if ok else 'MISSED'}")


if __name__ == "__main__":
    report(rows())
