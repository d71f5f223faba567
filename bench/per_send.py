"""``make bench``'s per-send row: the CPU one ``POST /sms`` costs the API function, beside the bare boto3 calls
that one send makes, and the difference: the app's own work.

How it is measured: blocks of 20 sends through the app and 20 bare call sequences, side by side, 120 pairs of
them, each path first in turn; the row gives the median of each path and the median of the pairs' differences.
The difference is about a tenth of either figure, and this machine's CPU time per send drifts by more than
that from one second to the next (other guests on the host, the fake's threads). Within a pair both paths meet
the same drift, so the median difference moved by about ±0.02 ms from run to run, where the best of five
rounds of each, compared at the end, moved by ±0.1 ms.
"""
from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# What one send may cost over the bare calls it makes (CPU milliseconds).
OVERHEAD_MS = 0.40

ENV = {
    "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1",
    "MEDIA_BUCKET": "bench-media", "MESSAGES_TABLE": "bench-messages", "IDEMPOTENCY_TABLE": "bench-idem",
    "WEBHOOKS_TABLE": "bench-settings",  # the stage's settings table: every send checks its opt-out list
    # The level the stack deploys (log.py's default): a send writes its outcome's line, as on Lambda.
    "POWERTOOLS_LOG_LEVEL": "INFO",
}


def _proxy_event(payload: str) -> dict:
    """A ``POST /sms`` as API Gateway hands it to the API function (REST API, proxy integration)."""
    return {"resource": "/sms", "path": "/sms", "httpMethod": "POST",
            "headers": {"Content-Type": "application/json", "Host": "bench.execute-api.us-east-1.amazonaws.com"},
            "multiValueHeaders": {}, "queryStringParameters": None, "multiValueQueryStringParameters": None,
            "pathParameters": None, "stageVariables": None, "body": payload, "isBase64Encoded": False,
            "requestContext": {"resourcePath": "/sms", "httpMethod": "POST", "path": "/api/sms", "stage": "api",
                               "requestId": "bench", "identity": {"sourceIp": "127.0.0.1"},
                               # What API Gateway hands on from the key's authorizer (keys/authorizer.py),
                               # whose answer it caches: a send pays for no key check of its own.
                               "authorizer": {"principalId": "key_bench", "keyId": "key_bench",
                                              "scopes": "messages:send", "test": "false"}}}


class _Context:
    aws_request_id, function_name, memory_limit_in_mb = "bench", "bench", 512
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:bench"

    def get_remaining_time_in_millis(self) -> int:
        return 25_000


def per_send_cpu(pairs: int = 120, block: int = 20, level: str = "INFO") -> tuple[float, float, float]:
    """CPU seconds of one ``POST /sms``, invoked as Lambda invokes the API function (the handler called with
    API Gateway's proxy event), beside the bare boto3 calls that one send makes: the same operations with the
    very parameters the app passed (recorded from one send), on the same clients, against the same loopback
    fake. What is left is the app's own work: routing, validation, the record, the error mapping, and the line it
    logs at ``level`` (INFO: the level the stack deploys, a line per send). Returns the medians of the app's and
    the bare calls' CPU seconds per send, and of their difference."""
    fake = subprocess.Popen([sys.executable, "-m", "bench.fake_aws"], cwd=ROOT, stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True)
    nowhere, restore = open(os.devnull, "w", encoding="utf-8"), []
    try:
        port = int(fake.stdout.readline())
        os.environ.update(ENV, AWS_ENDPOINT_URL=f"http://127.0.0.1:{port}")
        sys.path.insert(0, str(ROOT))
        from botocore.client import BaseClient

        from devstack import appload

        module = appload.load()
        from chalicelib.core.log import logger

        logger.setLevel(level)
        # Each line made and written as on Lambda, to nowhere.
        restore += [(handler, handler.setStream(nowhere)) for handler in logger.handlers]
        from chalicelib.core import aws

        aws.reset()
        event = _proxy_event(json.dumps({"to": "+14255550123", "body": "Your code is 123456"}))

        def through_app():
            response = module.app(dict(event), _Context())
            assert response["statusCode"] == 202, response["body"]

        made, original = [], BaseClient._make_api_call

        def recording(client, operation, params):
            made.append((client, operation, params))
            return original(client, operation, params)

        BaseClient._make_api_call = recording
        try:
            through_app()
        finally:
            BaseClient._make_api_call = original
        calls = [(getattr(client, {api: name for name, api in client.meta.method_to_api_mapping.items()}[operation]),
                  params) for client, operation, params in made]

        def bare():
            for method, params in calls:
                method(**params)

        def cpu(fn):
            start = time.process_time()
            for _ in range(block):
                fn()
            return (time.process_time() - start) / block

        for _ in range(30):  # warm both paths
            through_app()
            bare()
        app_cpu, bare_cpu, extra = [], [], []
        for pair in range(pairs):  # adjacent blocks, each first in turn: what drifts meanwhile hits both alike
            first, second = (through_app, bare) if pair % 2 else (bare, through_app)
            timed = {first: cpu(first)}
            timed[second] = cpu(second)
            app_cpu.append(timed[through_app])
            bare_cpu.append(timed[bare])
            extra.append(timed[through_app] - timed[bare])
        return statistics.median(app_cpu), statistics.median(bare_cpu), statistics.median(extra)
    finally:
        for handler, stream in restore:
            handler.setStream(stream)
        nowhere.close()
        fake.terminate()
        fake.wait(timeout=15)


if __name__ == "__main__":
    print(json.dumps(per_send_cpu()))
