"""What a key check costs in AWS calls: an uncached check (API Gateway's cache of the authorizer's answer
expired, or a key's first request) is one ``GetItem``; ``lastUsedAt`` adds one ``UpdateItem`` at most once a
minute per key. Counted from the calls the real authorizer makes against moto, on an injected clock."""
from __future__ import annotations

import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def rows() -> list[tuple[str, list[str]]]:
    sys.path.insert(0, str(ROOT))
    import boto3
    from botocore.client import BaseClient
    from moto import mock_aws

    from devstack import appload

    appload.load()
    from chalicelib.core import aws
    from chalicelib.core.caller import Caller
    from chalicelib.keys import authorizer, manage, scopes

    saved = {k: os.environ.get(k) for k in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_DEFAULT_REGION",
                                             "AWS_ENDPOINT_URL", "KEYS_TABLE", "MEDIA_BUCKET", "MESSAGES_TABLE",
                                             "IDEMPOTENCY_TABLE")}
    os.environ.update(AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing", AWS_DEFAULT_REGION="us-east-1",
                      KEYS_TABLE="bench-keys", MEDIA_BUCKET="b", MESSAGES_TABLE="m", IDEMPOTENCY_TABLE="i")
    os.environ.pop("AWS_ENDPOINT_URL", None)
    made, original = [], BaseClient._make_api_call

    def recording(client, operation, params):
        made.append(operation)
        return original(client, operation, params)

    try:
        with mock_aws():
            aws.reset()
            boto3.client("dynamodb").create_table(
                TableName="bench-keys", BillingMode="PAY_PER_REQUEST",
                AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
                KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}])
            item, key = manage.prepare({"name": "bench", "scopes": [scopes.SEND]},
                                       Caller("bench", frozenset(scopes.SCOPES), False))
            manage.put(aws.client("dynamodb"), "bench-keys", item)
            arn = "arn:aws:execute-api:us-east-1:123456789012:bench/api/POST/sms"
            found = []
            BaseClient._make_api_call = recording
            for label, at in (("first check (lastUsedAt written)", 1_800_000_000.0),
                              ("uncached check 30 s later", 1_800_000_030.0),
                              ("uncached check 61 s later", 1_800_000_061.0)):
                made.clear()
                authorizer.check(f"Bearer {key}", arn, now=at)
                found.append((label, list(made)))
            return found
    finally:
        BaseClient._make_api_call = original
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        aws.reset()


def report(found: list[tuple[str, list[str]]]) -> bool:
    print("Key check: the AWS calls of an uncached authorizer run (API Gateway caches its answer for 60 s)")
    ok = True
    for label, calls in found:
        print(f"  {label:<36}{', '.join(calls)}")
    # Every uncached check reads the key once; lastUsedAt is written at most once a minute per key.
    ok = all(calls.count("GetItem") == 1 for _, calls in found) and found[1][1] == ["GetItem"]
    print(f"  one GetItem per uncached check; lastUsedAt at most once a minute: {'ok' if ok else 'MISS'}")
    return ok


if __name__ == "__main__":
    report(rows())
