"""``/webhooks``: endpoints created with a URL the address guard (``netguard``) allows and the event types
they want, listed, read, deleted, their secret rotated, their delivery attempts listed.

- Secrets are ``whsec_`` + base64 of 24 random bytes, kept only as KMS ciphertext (``endpoints``). The API
  shows a secret once, in the answer that made it. After a rotation the earlier secret stays in force for
  24 hours, so every delivery carries both signatures.
- The stage's endpoint count (``schema.WEBHOOKS_COUNT``) changes in the same transaction as each create
  and delete, so ``MAX_WEBHOOKS`` holds even for simultaneous creates.
"""
from __future__ import annotations

import base64
import secrets as random_bytes
import uuid
from datetime import datetime, timedelta, timezone

from ..core import aws, schema, store
from ..core.errors import InvalidRequest, NotFound, Throttled, aws_errors
from ..core.log import logger
from ..core.settings import Settings
from ..core.store import from_item, now_iso, to_item
from . import netguard
from .endpoints import (ATTEMPT_FIELDS, ENDPOINT_PREFIX, EVENT_TYPES, all_endpoints, configured, decrypt, encrypt,
                        endpoint_key, forget, in_force, load, public)

SECRET_PREFIX = "whsec_"
SECRET_BYTES = 24
ROTATION_OVERLAP = timedelta(hours=24)
MAX_SECRETS = 5  # the newest and up to four earlier ones still in force
DELIVERIES_LIMIT = 50  # GET /webhooks/{id}/deliveries without ?limit=


def _existing(settings: Settings, endpoint_id: str) -> dict:
    endpoint = load(settings, endpoint_id) if endpoint_id.startswith(ENDPOINT_PREFIX) else None
    if endpoint is None:
        raise NotFound("WebhookNotFound", "No webhook with this id.")
    return endpoint


def _guarded(step, *args):
    try:
        return step(*args)
    except netguard.Refused as refused:
        raise InvalidRequest("InvalidUrl", refused.reason, field="url") from None


def _events(raw) -> list[str]:
    if raw is None:
        return list(EVENT_TYPES)
    known = ", ".join(EVENT_TYPES)
    if not isinstance(raw, list) or not raw or not all(isinstance(e, str) for e in raw):
        raise InvalidRequest("InvalidEventType", f"'events' must be a non-empty list of event types ({known}), "
                             "or left out for all of them.", field="events")
    unknown = [e for e in raw if e not in EVENT_TYPES]
    if unknown:
        shown = unknown[0] if len(unknown[0]) <= 40 else unknown[0][:40] + "..."
        raise InvalidRequest("InvalidEventType", f"Unknown event type {shown!r}; the types are {known}.",
                             field="events")
    return list(dict.fromkeys(raw))


@aws_errors("store the webhook")
def create(data: dict, settings: Settings) -> tuple[dict, str]:
    """``POST /webhooks``: (the webhook resource, its secret)."""
    configured(settings)
    url = data.get("url")
    if url is None or url == "":
        raise InvalidRequest("MissingField", "'url' is required.", field="url")
    target = _guarded(netguard.parse, url, settings.webhook_urls)
    events = _events(data.get("events"))
    count = stored_count(settings)
    if count is None:
        _seed_count(settings)
    elif count >= settings.max_webhooks:  # early (no DNS, no KMS); the transaction below decides
        raise _too_many(count, settings)
    _guarded(netguard.resolve, target, settings.webhook_urls)  # after the cheap checks: DNS takes time
    endpoint_id = ENDPOINT_PREFIX + uuid.uuid4().hex
    secret, created = new_secret(), now_iso()
    endpoint = {schema.WEBHOOKS_KEY: schema.WEBHOOKS_ENDPOINTS, schema.WEBHOOKS_SORT: endpoint_id, "url": url,
                "events": events, "enabled": True, "createdAt": created, "version": 1,
                "secrets": [{"ciphertext": encrypt(settings, endpoint_id, secret), "createdAt": created}]}
    _counted(settings, {"Put": {"TableName": settings.webhooks_table, "Item": to_item(endpoint),
                                "ConditionExpression": "attribute_not_exists(#sk)",
                                "ExpressionAttributeNames": {"#sk": schema.WEBHOOKS_SORT}}}, +1)
    logger.info("webhook created", extra={"webhookId": endpoint_id, "host": target.host, "events": len(events)})
    forget(endpoint_id)
    return public(endpoint), secret


@aws_errors("read the webhook")
def get(webhook_id: str, settings: Settings) -> dict:
    return public(_existing(configured(settings), webhook_id))


@aws_errors("list the webhooks")
def listing(settings: Settings) -> dict:
    endpoints = sorted(all_endpoints(configured(settings)), key=lambda e: (e["createdAt"], e[schema.WEBHOOKS_SORT]))
    return {"webhooks": [public(e) for e in endpoints]}


@aws_errors("delete the webhook")
def delete(webhook_id: str, settings: Settings) -> None:
    configured(settings)
    if not webhook_id.startswith(ENDPOINT_PREFIX):
        raise NotFound("WebhookNotFound", "No webhook with this id.")
    _counted(settings, {"Delete": {"TableName": settings.webhooks_table, "Key": endpoint_key(webhook_id),
                                   "ConditionExpression": "attribute_exists(#sk)",
                                   "ExpressionAttributeNames": {"#sk": schema.WEBHOOKS_SORT}}}, -1)
    forget(webhook_id)
    logger.info("webhook deleted", extra={"webhookId": webhook_id})


# -- the stage's endpoint count (schema.WEBHOOKS_COUNT) -----------------------------------------------
COUNT_ATTEMPTS = 5  # transactions that another one on the count item cancelled (TransactionConflict), then 429
_COUNT_KEY = {schema.WEBHOOKS_KEY: {"S": schema.WEBHOOKS_COUNT}, schema.WEBHOOKS_SORT: {"S": schema.WEBHOOKS_COUNT}}
_THROTTLED_REASONS = {"ThrottlingError", "ProvisionedThroughputExceeded", "RequestLimitExceeded"}


def stored_count(settings: Settings) -> int | None:
    """The stage's endpoint count, or None before its first create or delete counted."""
    item = aws.client("dynamodb").get_item(TableName=settings.webhooks_table, Key=_COUNT_KEY,
                                           ConsistentRead=True).get("Item")
    return int(item["count"]["N"]) if item else None


def _too_many(count: int, settings: Settings) -> InvalidRequest:
    return InvalidRequest("TooManyWebhooks", f"This stage has {count} webhooks, its most "
                          f"(MAX_WEBHOOKS {settings.max_webhooks}); delete one first.")


def _seed_count(settings: Settings) -> None:
    """Count the endpoints of a stage that has none counted (made before the count existed). No create
    or delete writes while the count is missing (each one's condition needs it), so simultaneous seeds
    count the same endpoints; the first one stays."""
    client = aws.client("dynamodb")
    count = len(all_endpoints(settings))
    try:
        client.put_item(TableName=settings.webhooks_table, Item={**_COUNT_KEY, "count": {"N": str(count)}},
                        ConditionExpression="attribute_not_exists(#pk)",
                        ExpressionAttributeNames={"#pk": schema.WEBHOOKS_KEY})
        logger.info("webhook count seeded", extra={"webhooks": count})
    except client.exceptions.ConditionalCheckFailedException:
        pass  # another seed was first, with the same count


def _counted(settings: Settings, change: dict, step: int) -> None:
    """An endpoint's Put (``step`` +1) or Delete (-1), and the stage's count moved by ``step``, in one
    transaction: a create only while the count is below MAX_WEBHOOKS, whatever runs at the same time."""
    client = aws.client("dynamodb")
    count = {"Update": {
        "TableName": settings.webhooks_table, "Key": _COUNT_KEY, "UpdateExpression": "ADD #count :step",
        "ConditionExpression": "#count < :max" if step > 0 else "attribute_exists(#count)",
        "ExpressionAttributeNames": {"#count": "count"},
        "ExpressionAttributeValues": {":step": {"N": str(step)},
                                      **({":max": {"N": str(settings.max_webhooks)}} if step > 0 else {})},
        "ReturnValuesOnConditionCheckFailure": "ALL_OLD"}}
    for _attempt in range(COUNT_ATTEMPTS):
        try:  # a token per attempt: botocore's own retry of a write that landed does not write again
            client.transact_write_items(TransactItems=[change, count], ClientRequestToken=str(uuid.uuid4()))
            return
        except client.exceptions.TransactionCanceledException as cancelled:
            reasons = (cancelled.response.get("CancellationReasons") or []) + [{}, {}]  # one per item
            codes = [reason.get("Code") for reason in reasons]
            if codes[0] == "ConditionalCheckFailed":  # a delete's endpoint is gone (a create's id is new)
                raise NotFound("WebhookNotFound", "No webhook with this id.") from None
            if codes[1] == "ConditionalCheckFailed":
                if "Item" in reasons[1]:  # the count is at the stage's most
                    raise _too_many(int(reasons[1]["Item"]["count"]["N"]), settings) from None
                _seed_count(settings)  # no count yet: count the endpoints, then again
            elif _THROTTLED_REASONS & set(codes):
                raise Throttled("AWS is throttling the webhooks table; nothing was changed. Retry later.") from None
            elif "TransactionConflict" not in codes:
                raise
    raise Throttled("Other changes to this stage's webhooks are in progress; retry.", retry_after=1)


@aws_errors("rotate the secret")
def rotate(webhook_id: str, settings: Settings) -> tuple[dict, str]:
    """``POST /webhooks/{id}/rotate``: a new secret first; the ones in force stay for 24 hours more at
    most. A concurrent rotation is not lost: the write is conditional on the item's version."""
    configured(settings)
    client = aws.client("dynamodb")
    for _attempt in range(5):
        endpoint = _existing(settings, webhook_id)
        now = datetime.now(timezone.utc)
        until = now_iso(now + ROTATION_OVERLAP)
        kept = [{**s, "expiresAt": min(s.get("expiresAt") or until, until)}
                for s in endpoint.get("secrets", []) if in_force(s, now)]
        secret = new_secret()
        fresh = {"ciphertext": encrypt(settings, webhook_id, secret), "createdAt": now_iso(now)}
        version = int(endpoint.get("version") or 0)
        try:
            client.update_item(
                TableName=settings.webhooks_table, Key=endpoint_key(webhook_id),
                UpdateExpression="SET #secrets = :secrets, #version = :next",
                ConditionExpression="attribute_exists(#sk) AND (attribute_not_exists(#version) OR #version = :version)",
                ExpressionAttributeNames={"#secrets": "secrets", "#version": "version", "#sk": schema.WEBHOOKS_SORT},
                ExpressionAttributeValues={":secrets": store.encode([fresh, *kept][:MAX_SECRETS]),
                                           ":version": {"N": str(version)}, ":next": {"N": str(version + 1)}})
        except client.exceptions.ConditionalCheckFailedException:
            continue  # deleted (the next look-up says 404) or rotated meanwhile: again, on top of that one
        forget(webhook_id)
        logger.info("webhook secret rotated", extra={"webhookId": webhook_id, "inForce": min(len(kept) + 1, MAX_SECRETS)})
        return public(endpoint), secret
    raise Throttled("Other rotations of this webhook are in progress; retry.", retry_after=1)


@aws_errors("read the secret")
def current_secret(webhook_id: str, settings: Settings) -> str:
    """The newest secret in plain text: what a replayed ``POST /webhooks`` or rotation (same
    ``Idempotency-Key``) shows again, since the stored answer never holds it."""
    endpoint = _existing(configured(settings), webhook_id)
    return decrypt(settings, webhook_id, endpoint["secrets"][0]["ciphertext"])


def with_secret(body: dict, secret: str | None, settings: Settings) -> dict:
    return {**body, "secret": secret if secret is not None else current_secret(body["id"], settings)}


@aws_errors("read the deliveries")
def deliveries(webhook_id: str, limit: int, settings: Settings) -> dict:
    """``GET /webhooks/{id}/deliveries``: the recent attempts, newest first."""
    _existing(configured(settings), webhook_id)
    response = aws.client("dynamodb").query(
        TableName=settings.webhooks_table, KeyConditionExpression="#pk = :pk", ScanIndexForward=False, Limit=limit,
        ExpressionAttributeNames={"#pk": schema.WEBHOOKS_KEY},
        ExpressionAttributeValues={":pk": {"S": schema.WEBHOOKS_DELIVERIES + webhook_id}})
    return {"deliveries": [attempt_public(from_item(item)) for item in response.get("Items", [])]}


def attempt_public(item: dict) -> dict:
    shown = {name: item.get(name) for name in ATTEMPT_FIELDS}
    for name in ("attempt", "status", "durationMs"):
        if shown[name] is not None:
            shown[name] = int(shown[name])
    return shown


def new_secret() -> str:
    return SECRET_PREFIX + base64.b64encode(random_bytes.token_bytes(SECRET_BYTES)).decode("ascii")
