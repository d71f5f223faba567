"""``make bench``: each figure printed beside its baseline from the same run.

- per-send CPU: POST /sms through the app (Chalice test client) against a loopback fake AWS,
  divided by the CPU of the bare boto3 calls that one send makes, on the same clients. Target <= 1.25.
- cold import: the Lambda handler module with its clients, against bare ``import boto3`` plus the
  same clients, each in a fresh process. Target <= 1.25.
- Lambda package: the size of the deployment zip ``chalice package`` builds.
- scale (``bench/scale.py``): a simulation on a virtual clock, with the worker's real pacing code,
  of a stage at 1,000 MPS draining 100,000 messages (SQS event source scaling, DynamoDB's limit
  per partition key, the provider's MPS), steady drains at MPS 20 and 100, and small backlogs, for
  today's design and the new one.
- API latency (``bench/api_latency.py``): p50, p99 and throughput of ``POST /sms`` and
  ``GET /messages/{id}`` under 16 concurrent clients on the local stack, beside bare Chalice routes
  on the same server (one bare, and ones making the same AWS calls without the app).
- webhooks (``bench/webhooks_latency.py``): on the local stack, receipt to webhook p50 and p99 beside send
  to receipt, and deliveries per second to a local receiver with 16 events in flight, beside bare POSTs.
"""
from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ENV = {
    "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1",
    "MEDIA_BUCKET": "bench-media", "MESSAGES_TABLE": "bench-messages", "IDEMPOTENCY_TABLE": "bench-idem",
    "WEBHOOKS_TABLE": "bench-settings",  # the stage's settings table: every send checks its opt-out list
    "POWERTOOLS_LOG_LEVEL": "WARNING",
}
CLIENTS = ("dynamodb", "sns", "s3", "pinpoint-sms-voice-v2")


def per_send_cpu(sends: int = 200) -> tuple[float, float]:
    fake = subprocess.Popen([sys.executable, "-m", "bench.fake_aws"], cwd=ROOT, stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True)
    try:
        port = int(fake.stdout.readline())
        os.environ.update(ENV, AWS_ENDPOINT_URL=f"http://127.0.0.1:{port}")
        sys.path.insert(0, str(ROOT))
        from devstack import appload

        module = appload.load()
        from chalice.test import Client
        from chalicelib.core import aws

        aws.reset()
        ddb, sns = aws.client("dynamodb"), aws.client("sns")
        payload = json.dumps({"to": "+14255550123", "body": "Your code is 123456"})

        def bare():
            ddb.get_item(TableName="bench-settings", Key={"pk": {"S": "optout"}, "sk": {"S": "+14255550123"}},
                         ConsistentRead=True)
            ddb.put_item(TableName="bench-messages", Item={"id": {"S": "m-1"}, "body": {"S": "x"}},
                         ConditionExpression="attribute_not_exists(#id)", ExpressionAttributeNames={"#id": "id"})
            sns.publish(PhoneNumber="+14255550123", Message="Your code is 123456", MessageAttributes={
                "AWS.SNS.SMS.SMSType": {"DataType": "String", "StringValue": "Transactional"}})
            ddb.update_item(TableName="bench-messages", Key={"id": {"S": "m-1"}},
                            UpdateExpression="SET #s = :s", ConditionExpression="#s IN (:q)",
                            ExpressionAttributeNames={"#s": "status"},
                            ExpressionAttributeValues={":s": {"S": "sent"}, ":q": {"S": "queued"}},
                            ReturnValues="ALL_NEW")

        with Client(module.app) as client:
            def through_app():
                response = client.http.post("/sms", body=payload, headers={"Content-Type": "application/json"})
                assert response.status_code == 202, response.body

            def cpu(fn):
                for _ in range(20):
                    fn()
                start = time.process_time()
                for _ in range(sends):
                    fn()
                return (time.process_time() - start) / sends

            app_cpu, bare_cpu = [], []
            for _ in range(3):  # interleave, keep the best of each
                app_cpu.append(cpu(through_app))
                bare_cpu.append(cpu(bare))
        return min(app_cpu), min(bare_cpu)
    finally:
        fake.terminate()
        fake.wait(timeout=15)


IMPORT_APP = f"""
import sys, time
t = time.perf_counter()
sys.path.insert(0, {str(ROOT / "app")!r})  # as Lambda does: the package root is app/, the handler app.app
import app
from chalicelib.core import aws
for name in {CLIENTS!r}:
    aws.client(name)
print(time.perf_counter() - t)
"""
IMPORT_BARE = f"""
import time
t = time.perf_counter()
import boto3
from botocore.config import Config
session = boto3.session.Session()
for name in {CLIENTS!r}:
    session.client(name, config=Config(retries={{"mode": "standard", "total_max_attempts": 3}}))
print(time.perf_counter() - t)
"""


def cold_import(runs: int = 7) -> tuple[float, float]:
    env = {**os.environ, **ENV}
    env.pop("AWS_ENDPOINT_URL", None)

    def once(code):
        out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
        return float(out.stdout.strip().splitlines()[-1])

    app, bare = [], []
    for _ in range(runs):
        app.append(once(IMPORT_APP))
        bare.append(once(IMPORT_BARE))
    return statistics.median(app), statistics.median(bare)


def package_size() -> int | None:
    with tempfile.TemporaryDirectory() as out:
        result = subprocess.run([str(Path(sys.executable).parent / "chalice"), "package", out],
                                cwd=ROOT / "app", env={**os.environ, **ENV}, capture_output=True, text=True)
        if result.returncode != 0:
            print(result.stderr[-2000:])
            return None
        return (Path(out) / "deployment.zip").stat().st_size


def main() -> None:
    app_cpu, bare_cpu = per_send_cpu()
    app_imp, bare_imp = cold_import()
    size = package_size()
    rows = [
        ("per-send CPU (ms)", app_cpu * 1e3, bare_cpu * 1e3, 1.25),
        ("cold import + clients (ms)", app_imp * 1e3, bare_imp * 1e3, 1.25),
    ]
    print(f"{'benchmark':<28}{'app':>10}{'baseline':>10}{'ratio':>8}{'target':>9}")
    for name, ours, base, target in rows:
        ratio = ours / base
        verdict = "ok" if ratio <= target else "OVER"
        print(f"{name:<28}{ours:>10.2f}{base:>10.2f}{ratio:>8.2f}{'<= ' + str(target):>9} {verdict}")
    print(f"{'Lambda package (bytes)':<28}{size if size is not None else 'failed':>10}")
    print()
    from bench import scale

    scale.report(scale.rows())
    print()
    from bench import api_latency

    api_latency.report(api_latency.rows())
    print()
    from bench import webhooks_latency

    webhooks_latency.report(webhooks_latency.rows())


if __name__ == "__main__":
    main()
