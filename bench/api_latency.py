"""The API's latency and throughput under 16 concurrent clients on the local stack, beside bare
Chalice routes served by the same server in the same run.

The local stack runs in a child process (as ``make dev`` does), on free loopback ports; this
process is the load: 16 threads, one kept-alive connection each (a new one after an error). Each
route is measured for 5 s, in two windows (each after a short pause and warm-up), placed A B B A
with the route it is compared with:

- ``GET /_bench/bare``: a bare Chalice route (returns ``{"ok": true}``), the floor of the server.
- ``GET /_bench/get``: a bare route making the one AWS call ``GET /messages/{id}`` makes
  (``GetItem``), with no app code around it.
- ``GET /messages/{id}`` on messages the send phase created.
- ``GET /_bench/send``: a bare route making the AWS calls ``POST /sms`` makes (``PutItem`` of a
  record, SNS ``Publish``, conditional ``UpdateItem``), with no app code around it.
- ``POST /sms`` to the US success simulator number, without a key (under make dev: no authorizer runs) and with
  one (the key authorizer runs, its answer cached for a minute as API Gateway caches it): the keyed p50 may be at
  most 1.05 times the keyless one.

Every route is printed beside the bare route. The targets compare each API route with the bare
route that makes the same AWS calls: in one process the local stack's AWS (moto, in-process, over
HTTP) costs far more than AWS's does, so a ratio to the bare route alone measures moto. What the
app adds on top of the calls it must make (validation, the record, the idempotency layer, logging,
the error mapping) is its own cost; the same bound as ``make bench``'s per-send CPU applies to its
median: p50 <= 1.25x, throughput >= 0.8x (1 / 1.25), and p99 <= 1.5x (a tail of 16 threads on
one interpreter's lock is noisier than its median).

Delivery receipts are off (a receipt delay longer than the run): each would make the status
ingest query moto's provider-id index, which moto scans, so the background work would grow with
the table and measure moto, not the API. Bounded: at most about 45 s, loopback only.
"""
from __future__ import annotations

import http.client
import json
import os
import sys
import threading
import time
import uuid
from pathlib import Path

from bench.child import serving

ROOT = Path(__file__).resolve().parent.parent
CLIENTS = 16
# Each route is measured in two windows of MEASURE / 2, in the order A B B A with the route it is
# compared with, so that what one window leaves behind (a garbage collection, server threads still
# winding down) falls on both alike.
WARMUP, MEASURE, PAUSE = 0.5, 5.0, 0.5
DEADLINE = 55.0  # seconds for the whole bench, start-up included
TO = "+14254147755"  # AWS's US success simulator number
TARGET_P50, TARGET_P99, TARGET_RPS = 1.25, 1.5, 0.8
TARGET_KEYED_P50 = 1.05


# -- the child: the local stack with the bench routes -----------------------------------------------

def serve(ready_file: str) -> None:
    """Run the local stack with the bare routes added; write its URL to ``ready_file``; stop when
    stdin closes (the parent exits or ends the run)."""
    sys.path.insert(0, str(ROOT))
    from devstack import appload

    module = appload.load()
    app = module.app
    from chalicelib.core import aws
    from chalicelib.sending import messages
    from chalicelib.core import store
    from chalicelib.sending.validation import Outbound

    @app.route("/_bench/bare", methods=["GET"])
    def bare():
        return {"ok": True}

    def item():
        record = messages.new_record(Outbound("sms", TO, "bench"))
        return record, store._message_item(record)

    @app.route("/_bench/get", methods=["GET"])
    def bare_get():
        table = os.environ["MESSAGES_TABLE"]
        key = {"id": {"S": app.current_request.query_params["id"]}}
        response = aws.client("dynamodb").get_item(TableName=table, Key=key, ConsistentRead=True)
        return {"found": "Item" in response}

    @app.route("/_bench/send", methods=["GET"])
    def bare_send():
        table = os.environ["MESSAGES_TABLE"]
        record, stored = item()
        ddb = aws.client("dynamodb")
        # The opt-out check every send makes first (chalicelib.optouts), then the send's own calls.
        ddb.get_item(TableName=os.environ["WEBHOOKS_TABLE"], Key={"pk": {"S": "optout"}, "sk": {"S": TO}},
                     ConsistentRead=True)
        ddb.put_item(TableName=table, Item=stored, ConditionExpression="attribute_not_exists(#id)",
                     ExpressionAttributeNames={"#id": "id"})
        provider_id = aws.client("sns").publish(PhoneNumber=TO, Message="bench", MessageAttributes={
            "AWS.SNS.SMS.SMSType": {"DataType": "String", "StringValue": "Transactional"}})["MessageId"]
        ddb.update_item(TableName=table, Key={"id": {"S": record["id"]}},
                        UpdateExpression="SET #s = :s, #u = :u, #p = :p", ConditionExpression="#s IN (:q)",
                        ExpressionAttributeNames={"#s": "status", "#u": "updatedAt", "#p": "providerMessageId"},
                        ExpressionAttributeValues={":s": {"S": "sent"}, ":q": {"S": "queued"},
                                                   ":u": {"S": store.now_iso()}, ":p": {"S": provider_id}},
                        ReturnValues="ALL_NEW")
        return {"id": record["id"]}

    from devstack.server import LocalStack

    stack = LocalStack(app_port=0, aws_port=0, receipt_delay=3600.0).start()
    try:
        from devstack.server import make_admin_key

        # A key for the keyed phase: its checks go through the authorizer, cached as API Gateway caches them.
        Path(ready_file).write_text(json.dumps({"app": stack.app_url, "key": make_admin_key("bench")}))
        sys.stdin.read()  # until the parent closes it
    finally:
        stack.stop()


# -- the parent: the load ----------------------------------------------------------------------------

class Phase:
    def __init__(self, name: str, request, headers: dict | None = None):
        self.name, self.request = name, request  # request(i) -> (method, path, body or None)
        self.headers = {"Content-Type": "application/json", **(headers or {})}
        self.latencies: list[float] = []
        self.errors = 0
        self.seconds = 0.0
        self.results: list = []

    @property
    def rps(self) -> float:
        return len(self.latencies) / self.seconds

    def pct(self, q: float) -> float:
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1e3 if ordered else float("nan")


def run(phase: Phase, host: str, port: int) -> Phase:
    """One window of MEASURE / 2 seconds, after a pause and a warm-up; adds to the phase."""
    time.sleep(PAUSE)  # the previous window's connections and server threads wind down first
    start = time.perf_counter()
    measure_from, stop_at = start + WARMUP, start + WARMUP + MEASURE / 2
    phase.seconds += MEASURE / 2
    lock = threading.Lock()

    def client(index: int) -> None:
        i = index
        connection = http.client.HTTPConnection(host, port, timeout=15)
        while time.perf_counter() < stop_at:
            method, path, body = phase.request(i)
            i += CLIENTS
            t0 = time.perf_counter()
            try:
                connection.request(method, path, body=body, headers=phase.headers)
                response = connection.getresponse()
                data = response.read()
                ok = 200 <= response.status < 300
            except (OSError, http.client.HTTPException):
                connection.close()
                connection = http.client.HTTPConnection(host, port, timeout=15)
                ok, data = False, b""
            elapsed = time.perf_counter() - t0
            if t0 >= measure_from:
                with lock:
                    if ok:
                        phase.latencies.append(elapsed)
                        phase.results.append(data)
                    else:
                        phase.errors += 1
        connection.close()

    threads = [threading.Thread(target=client, args=(i,), daemon=True) for i in range(CLIENTS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=WARMUP + MEASURE + 20)
    return phase


def rows() -> list[tuple]:
    """Run the phases against a fresh local stack; the measured phases by key."""
    began = time.monotonic()
    with serving("bench.api_latency") as urls:
        url = urls["app"]
        host, port = url.split("//")[1].split(":")
        port = int(port)
        send = json.dumps({"to": TO, "body": "bench"})
        ids: list[str] = []
        phases = {
            "bare": Phase("bare Chalice route", lambda i: ("GET", "/_bench/bare", None)),
            "bare_send": Phase("bare route + a send's 4 AWS calls",
                               lambda i: ("GET", "/_bench/send", None)),
            "sms": Phase("POST /sms", lambda i: ("POST", "/sms", send)),
            "sms_key": Phase("POST /sms with a key", lambda i: ("POST", "/sms", send),
                             {"Authorization": f"Bearer {urls['key']}"}),
            "bare_get": Phase("bare route + GetItem",
                              lambda i: ("GET", f"/_bench/get?id={ids[i % len(ids)]}", None)),
            "get": Phase("GET /messages/{id}", lambda i: ("GET", f"/messages/{ids[i % len(ids)]}", None)),
        }
        for key in ("bare", "bare_send", "sms", "sms_key", "sms_key", "sms", "sms", "bare_send"):
            run(phases[key], host, port)
        # The messages the send phase made (one that does not exist if it made none: a 404 then
        # counts as an error).
        ids.extend([json.loads(r)["id"] for r in phases["sms"].results[:2000]] or [str(uuid.uuid4())])
        for key in ("get", "bare_get", "bare_get", "get", "bare"):
            run(phases[key], host, port)
        if time.monotonic() - began > DEADLINE:
            print(f"note: the run took {time.monotonic() - began:.0f} s, over its {DEADLINE:.0f} s budget")
    return phases


def report(phases: dict) -> bool:
    bare = phases["bare"]
    print(f"API latency, {CLIENTS} concurrent clients with kept-alive connections, loopback "
          f"(local stack, {MEASURE:.0f} s each)")
    print(f"{'route':<44}{'p50 ms':>9}{'p99 ms':>9}{'req/s':>9}{'errors':>8}{'p50/bare':>10}")
    for key in ("bare", "bare_get", "get", "bare_send", "sms", "sms_key"):
        p = phases[key]
        print(f"{p.name:<44}{p.pct(0.5):>9.2f}{p.pct(0.99):>9.2f}{p.rps:>9.0f}{p.errors:>8}"
              f"{p.pct(0.5) / bare.pct(0.5):>9.1f}x")
    print()
    print(f"{'API route against the bare route making the same AWS calls':<60}{'ratio':>8}{'target':>9}")
    ok = True
    for api, base in (("get", "bare_get"), ("sms", "bare_send")):
        a, b = phases[api], phases[base]
        for label, ratio, target, within in (
                ("p50", a.pct(0.5) / b.pct(0.5), f"<= {TARGET_P50}", lambda r: r <= TARGET_P50),
                ("p99", a.pct(0.99) / b.pct(0.99), f"<= {TARGET_P99}", lambda r: r <= TARGET_P99),
                ("req/s", a.rps / b.rps, f">= {TARGET_RPS}", lambda r: r >= TARGET_RPS)):
            verdict = "ok" if within(ratio) and not a.errors else "MISS"
            ok = ok and verdict == "ok"
            print(f"{a.name + ' ' + label + ' / ' + b.name:<60}{ratio:>8.2f}{target:>9} {verdict}")
    # The key check: with the authorizer's answer cached (as API Gateway keeps it for a minute), a keyed send
    # against the same send made without a key (under make dev: no authorizer run at all).
    keyed, plain = phases["sms_key"], phases["sms"]
    ratio = keyed.pct(0.5) / plain.pct(0.5)
    verdict = "ok" if ratio <= TARGET_KEYED_P50 and not keyed.errors else "MISS"
    ok = ok and verdict == "ok"
    print(f"{'POST /sms with a key (cached check) p50 / POST /sms without':<60}{ratio:>8.2f}"
          f"{'<= ' + str(TARGET_KEYED_P50):>9} {verdict}")
    return ok


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--serve":
        serve(sys.argv[2])
    else:
        report(rows())
