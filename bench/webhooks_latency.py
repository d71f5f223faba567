"""Webhooks on the local stack: how soon a receipt reaches a receiver, and how many deliveries a second the
delivery function makes.

The local stack runs in a child process with the ``make dev`` settings (as ``bench/api_latency.py`` runs
it); this process holds the receiver (``devstack/receiver.py``, on loopback) and the load.

- Receipt to webhook: ``MESSAGES`` SMS to distinct numbers, one every ``GAP`` seconds, each delivered by
  the emulated carrier; an endpoint subscribed to ``message.delivered``. For each message, the time from
  the receipt (the status write: the event's ``timestamp``, the record's ``updatedAt``) to the webhook's
  arrival at the receiver: the messages table's stream, the fan-out, the delivery queue and the delivery
  function. Beside it, the time of the receipt itself: from the send (``POST /sms``) to that status write,
  which locally is the emulated carrier's delay (``receipt_delay``, 0.5 s) plus the status ingest, and on
  AWS whatever the carrier takes (seconds to minutes). Every delivery's signature is checked.
- A send beside a receiver that never answers: ``SENDS`` ``POST /sms`` one after another with an endpoint that
  answers at once, then ``SENDS`` more once a second endpoint's receiver holds a delivery it never answers
  (the test suite shows by order that a send waits for no webhook, tests/test_webhooks_e2e.py; this is how
  long it takes). Target: p50 with the hung receiver at most 3 times the p50 without, plus 250 ms.
- Deliveries per second: 16 events in flight at all times (a new one is put on the delivery queue as each
  arrives), for ``MEASURE`` seconds, through the real delivery function (endpoint look-up, signature,
  address guard, POST, the attempt's record, the queue's bookkeeping). Beside it, 16 threads POSTing the
  same signed payload to the same receiver, a new connection each (as each delivery makes one), with
  nothing around it.

Targets (local stack, 2 shared cores):
- receipt -> webhook p99 <= 1 s. The stream is polled 4 times a second (Lambda's documented base rate for
  a DynamoDB stream shard), so 250 ms of it is waiting by design; the rest is the fan-out, the queue's
  long poll and one POST. On AWS, Lambda's stream and queue pollers add their own (unmeasured here).
- deliveries >= 40 a second with 16 in flight: a burst of 1,000 status changes reaches one receiver within
  25 s locally. Each delivery also writes its attempt to DynamoDB and deletes its message from the queue,
  which moto serves in this same interpreter, so the bare POSTs beside it are a floor, not a target.
  Deployed, Lambda runs more delivery functions as the queue grows. Bounded: about 40 s, loopback only.
"""
from __future__ import annotations

import http.client
import json
import sys
import threading
import time
import uuid
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.child import serving  # noqa: E402
from devstack.receiver import HANG, Receiver  # noqa: E402

MESSAGES, GAP = 60, 0.1
SENDS = 20
HUNG_FACTOR, HUNG_SLACK_MS = 3.0, 250.0
IN_FLIGHT, WARMUP, MEASURE = 16, 1.0, 6.0
TARGET_P99_MS, TARGET_RATE = 1000.0, 40.0
DEADLINE = 90.0


# -- the child: the local stack ----------------------------------------------------------------------

def serve(ready_file: str) -> None:
    """Run the local stack (make dev's settings); write its URLs to ``ready_file``; stop when stdin closes."""
    from devstack.server import LocalStack

    stack = LocalStack(app_port=0, aws_port=0).start()
    try:
        Path(ready_file).write_text(json.dumps({"app": stack.app_url, "aws": stack.aws_url,
                                                "queue": stack.env["WEBHOOK_QUEUE_URL"]}))
        sys.stdin.read()
    finally:
        stack.stop()


# -- the parent ----------------------------------------------------------------------------------------

def _call(app: str, method: str, path: str, body: dict | None = None) -> tuple[int, dict | None]:
    host, port = app.split("//")[1].split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=30)
    try:
        connection.request(method, path, body=json.dumps(body) if body is not None else None,
                           headers={"Content-Type": "application/json"})
        response = connection.getresponse()
        raw = response.read()
        return response.status, json.loads(raw) if raw else None
    finally:
        connection.close()


def _ms(value: str) -> float:
    return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


def receipt_latency(app: str, receiver: Receiver) -> dict:
    from standardwebhooks.webhooks import Webhook

    status, endpoint = _call(app, "POST", "/webhooks", {"url": receiver.url, "events": ["message.delivered"]})
    assert status == 201, endpoint
    sent: dict[str, float] = {}
    try:
        for i in range(MESSAGES):
            started = time.time()
            status, message = _call(app, "POST", "/sms", {"to": f"+1206555{7000 + i:04d}", "body": "bench"})
            assert status == 202, message
            sent[message["id"]] = started
            time.sleep(GAP)
        receiver.wait_for(lambda ds: {d.event.get("data", {}).get("id") for d in ds} >= set(sent), 30)
    finally:
        _call(app, "DELETE", f"/webhooks/{endpoint['id']}")
    hook = Webhook(endpoint["secret"])
    receipt, webhook, payload = [], [], None
    for delivery in receiver.deliveries:
        event = hook.verify(delivery.body, delivery.headers)
        if event["data"]["id"] in sent:
            written = _ms(event["timestamp"])
            receipt.append(written - sent[event["data"]["id"]])
            webhook.append(delivery.at - written)
            payload = delivery.body.decode()
    return {"receipt": receipt, "webhook": webhook, "missing": len(set(sent)) - len(webhook), "payload": payload}


def send_latency(app: str, receiver: Receiver) -> dict:
    """``POST /sms`` times (seconds), ``SENDS`` with an endpoint that answers (``receiver``), then ``SENDS``
    with a receiver that never answers as well, once it holds a delivery."""
    def timed(first: int) -> list[float]:
        times = []
        for i in range(first, first + SENDS):
            started = time.perf_counter()
            status, message = _call(app, "POST", "/sms", {"to": f"+1206555{8000 + i:04d}", "body": "bench"})
            times.append(time.perf_counter() - started)
            assert status == 202, message
        return times

    endpoints = []
    with Receiver(HANG, lifetime=DEADLINE) as hung:
        try:
            for url in (receiver.url, hung.url):
                status, endpoint = _call(app, "POST", "/webhooks", {"url": url, "events": ["message.sent"]})
                assert status == 201, endpoint
                endpoints.append(endpoint["id"])
                if url == receiver.url:
                    before = timed(0)
            # A send of its own gives the second receiver a delivery to hold: the ``before`` sends' events may all
            # have been fanned out before its endpoint existed.
            status, message = _call(app, "POST", "/sms", {"to": "+12065557999", "body": "bench"})
            assert status == 202, message
            held = bool(hung.wait_for(lambda ds: ds, 30))
            during = timed(SENDS)
            held = held and all(d.status is None for d in hung.deliveries)
        finally:
            for endpoint_id in endpoints:
                _call(app, "DELETE", f"/webhooks/{endpoint_id}")
    return {"before": before, "during": during, "held": held}


def delivery_rate(app: str, aws: str, queue: str, receiver: Receiver, payload: str) -> tuple[float, int]:
    """Deliveries a second with IN_FLIGHT events on their way at all times."""
    import boto3

    status, endpoint = _call(app, "POST", "/webhooks", {"url": receiver.url})
    assert status == 201, endpoint
    sqs = boto3.client("sqs", endpoint_url=aws, region_name="us-east-1", aws_access_key_id="testing",
                       aws_secret_access_key="testing")
    arrived = threading.Semaphore(0)
    receiver.on_request = lambda delivery: arrived.release()

    def put(n: int) -> None:  # as the fan-out puts them: SendMessageBatch, 10 at most each
        entries = [{"Id": str(i), "MessageBody": json.dumps({
            "eventId": "msg_" + uuid.uuid4().hex[:26], "endpointId": endpoint["id"], "type": "message.delivered",
            "payload": payload, "createdAt": datetime.now(timezone.utc).isoformat()})} for i in range(n)]
        for first in range(0, n, 10):
            sqs.send_message_batch(QueueUrl=queue, Entries=entries[first:first + 10])

    try:
        before = len(receiver.deliveries)
        put(IN_FLIGHT)
        start = time.monotonic()
        measure_from, stop_at = start + WARMUP, start + WARMUP + MEASURE
        counted = None
        while time.monotonic() < stop_at:
            if not arrived.acquire(timeout=max(0.0, stop_at - time.monotonic())):
                break
            if counted is None and time.monotonic() >= measure_from:
                counted = len(receiver.deliveries)
            put(1)
        total = len(receiver.deliveries) - (counted if counted is not None else before)
        errors = sum(1 for d in receiver.deliveries[before:] if d.status != 200)
        return total / MEASURE, errors
    finally:
        receiver.on_request = None
        _call(app, "DELETE", f"/webhooks/{endpoint['id']}")


def bare_rate(receiver: Receiver, payload: str) -> float:
    """The same POSTs from IN_FLIGHT threads, a new connection each, with nothing around them."""
    host, port = receiver.url.split("//")[1].split("/")[0].split(":")
    body = payload.encode()
    headers = {"content-type": "application/json", "webhook-id": "msg_bare", "webhook-timestamp": "0",
               "webhook-signature": "v1,bare"}
    count, lock = [0], threading.Lock()
    start = time.monotonic()
    measure_from, stop_at = start + WARMUP, start + WARMUP + MEASURE

    def client() -> None:
        while (now := time.monotonic()) < stop_at:
            connection = http.client.HTTPConnection(host, int(port), timeout=10)
            connection.request("POST", "/hooks", body=body, headers=headers)
            connection.getresponse().read()
            connection.close()
            if now >= measure_from:
                with lock:
                    count[0] += 1

    threads = [threading.Thread(target=client, daemon=True) for _ in range(IN_FLIGHT)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=WARMUP + MEASURE + 15)
    return count[0] / MEASURE


def rows() -> dict:
    began = time.monotonic()
    with serving("bench.webhooks_latency") as urls:
        with Receiver(200, lifetime=DEADLINE) as receiver:
            latency = receipt_latency(urls["app"], receiver)
            sends = send_latency(urls["app"], receiver)
            rate, failed = delivery_rate(urls["app"], urls["aws"], urls["queue"], receiver, latency["payload"])
            bare = bare_rate(receiver, latency["payload"])
    return {**latency, "sends": sends, "rate": rate, "failed": failed, "bare": bare,
            "seconds": time.monotonic() - began}


def report(results: dict) -> bool:
    receipt = [s * 1e3 for s in results["receipt"]]
    webhook = [s * 1e3 for s in results["webhook"]]
    print(f"Webhooks on the local stack: {MESSAGES} SMS, one every {GAP:.1f} s, each delivered; a receiver on loopback")
    print(f"{'figure':<44}{'p50 ms':>9}{'p99 ms':>9}{'target':>12}")
    print(f"{'send -> receipt (the status write; baseline)':<44}{_pct(receipt, 0.5):>9.0f}{_pct(receipt, 0.99):>9.0f}")
    ok = bool(webhook) and _pct(webhook, 0.99) <= TARGET_P99_MS and results["missing"] == 0
    missing = f" ({results['missing']} never arrived)" if results["missing"] else ""
    print(f"{'receipt -> webhook arrival':<44}{_pct(webhook, 0.5):>9.0f}{_pct(webhook, 0.99):>9.0f}"
          f"{'p99 <= ' + format(TARGET_P99_MS, '.0f'):>12} {'ok' if ok else 'MISS'}{missing}")
    sends = results["sends"]
    before, during = ([t * 1e3 for t in sends[k]] for k in ("before", "during"))
    print(f"{'POST /sms, an endpoint that answers (baseline)':<44}{_pct(before, 0.5):>9.0f}{_pct(before, 0.99):>9.0f}")
    limit = HUNG_FACTOR * _pct(before, 0.5) + HUNG_SLACK_MS
    sends_ok = sends["held"] and _pct(during, 0.5) <= limit
    print(f"{'POST /sms, and a receiver that never answers':<44}{_pct(during, 0.5):>9.0f}{_pct(during, 0.99):>9.0f}"
          f"{'p50 <= ' + format(limit, '.0f'):>12} {'ok' if sends_ok else 'MISS'}"
          f"{'' if sends['held'] else ' (the receiver held no delivery)'}")
    rate_ok = results["rate"] >= TARGET_RATE and not results["failed"]
    print(f"{'deliveries/s, ' + str(IN_FLIGHT) + ' events in flight':<44}{results['rate']:>9.0f}"
          f"{'':>9}{'>= ' + format(TARGET_RATE, '.0f'):>12} {'ok' if rate_ok else 'MISS'}")
    print(f"{'  bare POSTs/s, ' + str(IN_FLIGHT) + ' threads (baseline)':<44}{results['bare']:>9.0f}")
    return ok and sends_ok and rate_ok


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--serve":
        serve(sys.argv[2])
    else:
        report(rows())
