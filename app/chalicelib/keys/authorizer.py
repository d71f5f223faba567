"""The one check every protected route goes through: API Gateway's TOKEN authorizer, and the Chalice built-in
authorizer of ``routing`` that calls it, so Chalice's local server runs the same code API Gateway runs deployed.

API Gateway hands it the ``Authorization`` header and the ARN of the method called. A well-formed key
(``tokens``) whose stored digest matches, not revoked and not expired, gets a policy allowing exactly the
routes its scopes open (``scopes.policy``): API Gateway caches that answer per key for a minute
(``routing.CACHE_SECONDS``), so a revocation holds within a minute. Anything else raises ``Unauthorized``,
which API Gateway answers 401 (the same answer whatever the reason). The routes read who called from the
context (``keyId``, ``scopes``, ``test``), and the access log records the key id as the principal.

An uncached check is one ``GetItem``; ``lastUsedAt`` is written at most once a minute per key. ``handler`` is
its own Lambda function's handler (``chalicelib.keys.authorizer.handler``, which the stack sets): its cold start
loads neither Chalice nor any route.
"""
from __future__ import annotations

import time

from ..core import aws
from ..core.settings import get_settings
from . import scopes as scope_table
from . import tokens

LAST_USED_EVERY_SECONDS = 60

class Unauthorized(Exception):
    """API Gateway answers 401 when a Lambda authorizer fails with exactly this message."""

    def __init__(self):
        super().__init__("Unauthorized")


def handler(event: dict, context) -> dict:
    """The Lambda handler: API Gateway's TOKEN input is ``{"type": "TOKEN", "authorizationToken": ...,
    "methodArn": ...}`` (tests/aws_docs/api-gateway-token-authorizer-input.json)."""
    return check(event.get("authorizationToken"), event["methodArn"])


def _iso(seconds: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + f".{int(seconds * 1000) % 1000:03d}Z"


def _text(item: dict, name: str) -> str | None:
    value = item.get(name) or {}
    return value.get("S")


def check(header, method_arn: str, *, now: float | None = None) -> dict:
    """The authorizer's answer for this ``Authorization`` header, or ``Unauthorized``."""
    key = tokens.from_header(header)
    parsed = tokens.parse(key)
    table = get_settings().keys_table
    if parsed is None or not table:
        raise Unauthorized()
    key_id, test = parsed
    now = time.time() if now is None else now
    client = aws.client("dynamodb")
    item = client.get_item(TableName=table, Key={"id": {"S": key_id}}, ConsistentRead=True).get("Item")
    if not item or not tokens.matches(key, _text(item, "hash")) or _text(item, "revokedAt") \
            or item.get("test", {}).get("BOOL", False) != test:
        raise Unauthorized()
    expires = _text(item, "expiresAt")
    if expires and expires <= _iso(now):
        raise Unauthorized()
    granted = [value["S"] for value in item.get("scopes", {}).get("L", [])]
    last_used = _text(item, "lastUsedAt")
    if not last_used or last_used < _iso(now - LAST_USED_EVERY_SECONDS):
        _touch(client, table, key_id, now)
    return {"principalId": key_id, "policyDocument": scope_table.policy(method_arn, granted),
            "context": {"keyId": key_id, "scopes": " ".join(granted), "test": "true" if test else "false"}}


def _touch(client, table: str, key_id: str, now: float) -> None:
    """``lastUsedAt``, at most once a minute per key (a conditional write); a failure costs nothing."""
    try:
        client.update_item(
            TableName=table, Key={"id": {"S": key_id}}, UpdateExpression="SET #used = :now",
            ConditionExpression="attribute_exists(#id) AND (attribute_not_exists(#used) OR #used < :cutoff)",
            ExpressionAttributeNames={"#used": "lastUsedAt", "#id": "id"},
            ExpressionAttributeValues={":now": {"S": _iso(now)},
                                       ":cutoff": {"S": _iso(now - LAST_USED_EVERY_SECONDS)}})
    except Exception:  # another check wrote it first, or DynamoDB refused: the key still works
        pass
