"""The stored webhook endpoints, as every webhook function reads them: the endpoint items in the webhooks
table (``schema.WEBHOOKS_*``), their secrets (KMS ciphertext under the encryption context
``{"webhookId": <id>}``), the event types, the delivery attempts kept per endpoint, and disabling an
endpoint that answered 410.

The routes that create, rotate and delete endpoints are ``manage.py``; the fanout (``events.py``) reads
the messages table's stream and queues one message per event and subscribed endpoint; the delivery
function (``delivery.py``) delivers them.
"""
from __future__ import annotations

import time
from datetime import datetime, timezone

from boto3.dynamodb.types import Binary

from ..core import aws, schema, store
from ..core.errors import NotConfigured
from ..core.settings import Settings
from ..core.store import from_item, now_iso, to_item  # one conversion and one time format for every table

# The statuses that make an event: every change of the shown status after ``queued``, except a dry
# run's ``validated``; a reply stored (``received``, issue 14); a message scheduled, and one canceled
# before it left (issue 21).
EVENT_STATUSES = (store.SENT, store.DELIVERED, store.FAILED, store.UNKNOWN, store.RECEIVED, store.SCHEDULED,
                  store.CANCELED)
EVENT_TYPES = tuple(f"message.{status}" for status in EVENT_STATUSES)
ENDPOINT_PREFIX = "wh_"


def configured(settings: Settings) -> Settings:
    if not (settings.webhooks_table and settings.webhook_queue_url and settings.webhook_key_id):
        raise NotConfigured("WebhooksNotConfigured", "This stage has no webhooks (WEBHOOKS_TABLE, WEBHOOK_QUEUE_URL "
                            "and WEBHOOK_KEY_ID).")
    return settings


# -- endpoints ---------------------------------------------------------------------------------
def public(endpoint: dict) -> dict:
    """The webhook resource, as the API shows it (never a secret)."""
    return {"id": endpoint[schema.WEBHOOKS_SORT], "url": endpoint["url"], "events": list(endpoint["events"]),
            "enabled": bool(endpoint["enabled"]), "createdAt": endpoint["createdAt"],
            "disabledReason": endpoint.get("disabledReason")}


def endpoint_key(endpoint_id: str) -> dict:
    return {schema.WEBHOOKS_KEY: {"S": schema.WEBHOOKS_ENDPOINTS}, schema.WEBHOOKS_SORT: {"S": endpoint_id}}


def load(settings: Settings, endpoint_id: str) -> dict | None:
    """The endpoint item (secrets as ciphertext), or None."""
    item = aws.client("dynamodb").get_item(TableName=settings.webhooks_table, Key=endpoint_key(endpoint_id),
                                           ConsistentRead=True).get("Item")
    return from_item(item) if item else None


def all_endpoints(settings: Settings) -> list[dict]:
    client, found = aws.client("dynamodb"), []
    params = {"TableName": settings.webhooks_table, "KeyConditionExpression": "#pk = :pk",
              "ExpressionAttributeNames": {"#pk": schema.WEBHOOKS_KEY},
              "ExpressionAttributeValues": {":pk": {"S": schema.WEBHOOKS_ENDPOINTS}}}
    while True:
        response = client.query(**params)
        found += [from_item(item) for item in response.get("Items", [])]
        if not response.get("LastEvaluatedKey"):
            return found
        params["ExclusiveStartKey"] = response["LastEvaluatedKey"]


ATTEMPT_FIELDS = ("eventId", "type", "attempt", "attemptedAt", "outcome", "status", "error", "durationMs",
                  "nextAttemptAt")


def record_attempt(settings: Settings, endpoint_id: str, attempt: dict) -> None:
    """One delivery attempt, kept ``WEBHOOK_ATTEMPT_DAYS`` days (TTL)."""
    item = {schema.WEBHOOKS_KEY: schema.WEBHOOKS_DELIVERIES + endpoint_id,
            schema.WEBHOOKS_SORT: f"{attempt['attemptedAt']}#{attempt['eventId']}",
            schema.WEBHOOKS_TTL: int(time.time()) + schema.WEBHOOK_ATTEMPT_DAYS * 86400,
            **{name: attempt.get(name) for name in ATTEMPT_FIELDS}}
    aws.client("dynamodb").put_item(TableName=settings.webhooks_table, Item=to_item(item))


def disable(settings: Settings, endpoint_id: str, reason: str) -> None:
    """The receiver answered 410 Gone: nothing more goes to it."""
    client = aws.client("dynamodb")
    try:
        client.update_item(TableName=settings.webhooks_table, Key=endpoint_key(endpoint_id),
                           UpdateExpression="SET #enabled = :false, #reason = :reason",
                           ConditionExpression="attribute_exists(#sk)",
                           ExpressionAttributeNames={"#enabled": "enabled", "#reason": "disabledReason",
                                                     "#sk": schema.WEBHOOKS_SORT},
                           ExpressionAttributeValues={":false": {"BOOL": False}, ":reason": {"S": reason}})
    except client.exceptions.ConditionalCheckFailedException:
        pass  # deleted meanwhile
    forget(endpoint_id)


# -- secrets -----------------------------------------------------------------------------------
def encrypt(settings: Settings, endpoint_id: str, secret: str) -> bytes:
    return aws.client("kms").encrypt(KeyId=settings.webhook_key_id, Plaintext=secret.encode("ascii"),
                                     EncryptionContext={"webhookId": endpoint_id})["CiphertextBlob"]


def decrypt(settings: Settings, endpoint_id: str, ciphertext) -> str:
    blob = ciphertext.value if isinstance(ciphertext, Binary) else bytes(ciphertext)
    return aws.client("kms").decrypt(KeyId=settings.webhook_key_id, CiphertextBlob=blob,
                                     EncryptionContext={"webhookId": endpoint_id})["Plaintext"].decode("ascii")


def in_force(secret: dict, now: datetime) -> bool:
    return not secret.get("expiresAt") or secret["expiresAt"] > now_iso(now)


def secrets_in_force(settings: Settings, endpoint: dict, now: datetime | None = None) -> list[str]:
    now = now or datetime.now(timezone.utc)
    return [decrypt(settings, endpoint[schema.WEBHOOKS_SORT], s["ciphertext"])
            for s in endpoint.get("secrets", []) if in_force(s, now)]


# -- what other modules of this process keep about endpoints (the delivery: decrypted secrets) ------
_forget_hooks: list = []


def on_forget(hook) -> None:
    """Have ``forget`` call ``hook(endpoint_id)`` too: a module that caches something of endpoints."""
    if hook not in _forget_hooks:
        _forget_hooks.append(hook)


def forget(endpoint_id: str | None = None) -> None:
    """Drop what this process has cached about an endpoint (after a change made here)."""
    for hook in _forget_hooks:
        hook(endpoint_id)
