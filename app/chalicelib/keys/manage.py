"""``/keys``: create a key (its secret shown once), list and read keys (never a secret), revoke one.

Keys live in the keys table, one item per key (``id``): ``name``, ``scopes``, ``test``, ``prefix``, the
SHA-256 ``hash`` of the whole key, ``createdAt``, ``createdBy`` (the key that made it), ``expiresAt``,
``lastUsedAt`` (the authorizer writes it) and ``revokedAt``. Revoking keeps the item, so the key's id still
reads back in a listing and in the messages it sent.

A key cannot make a key with a scope it lacks, and a test key makes only test keys.
"""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

from ..core import aws, inputs, store
from ..core.errors import InvalidRequest, NotAllowed, NotConfigured, NotFound, aws_errors
from ..core.log import logger
from ..core.settings import Settings
from ..core.caller import Caller
from . import tokens
from .scopes import SCOPES

MAX_NAME = 64
# How far ahead a key may expire (and how far back expiresAt may be refused as past).
MAX_LIFETIME = timedelta(days=3650)
FIELDS = ("id", "name", "scopes", "test", "prefix", "createdAt", "expiresAt", "lastUsedAt", "revokedAt")


def configured(settings: Settings) -> Settings:
    if not settings.keys_table:
        raise NotConfigured("KeysNotConfigured", "This stage has no keys table (KEYS_TABLE).")
    return settings


def public(item: dict) -> dict:
    shown = {name: item.get(name) for name in FIELDS}
    shown["test"] = bool(shown["test"])
    shown["scopes"] = list(shown["scopes"] or [])
    return shown


def _scopes(data: dict, caller: Caller) -> list[str]:
    asked = data.get("scopes")
    if asked is None:
        raise InvalidRequest("MissingField", "'scopes' is required: a list of " + ", ".join(SCOPES) + ".",
                             field="scopes")
    if not isinstance(asked, list) or not asked or not all(isinstance(s, str) for s in asked):
        raise InvalidRequest("InvalidScope", "'scopes' must be a non-empty list of " + ", ".join(SCOPES) + ".",
                             field="scopes")
    unknown = [s for s in asked if s not in SCOPES]
    if unknown:
        shown = unknown[0] if len(unknown[0]) <= 40 else unknown[0][:40] + "..."
        raise InvalidRequest("InvalidScope", f"Unknown scope {shown!r}; the scopes are {', '.join(SCOPES)}.",
                             field="scopes")
    lacking = [s for s in asked if s not in caller.scopes]
    if lacking:
        raise NotAllowed("InsufficientScope", f"This key lacks the scope {lacking[0]}, so it cannot make a key "
                         "that has it.", field="scopes")
    return [s for s in SCOPES if s in asked]  # in the table's order, each once


def _test(data: dict, caller: Caller) -> bool:
    test = data.get("test", False)
    if test is None:
        test = False
    if not isinstance(test, bool):
        raise InvalidRequest("InvalidTest", "'test' must be true or false.", field="test")
    if caller.test and not test:
        raise NotAllowed("InsufficientScope", "A test key makes only test keys: send \"test\": true.", field="test")
    return test


def _expires(data: dict, now: datetime) -> str | None:
    raw = data.get("expiresAt")
    if raw is None:
        return None
    try:
        at = datetime.fromisoformat(raw.replace("Z", "+00:00")) if isinstance(raw, str) else None
    except ValueError:
        at = None
    if at is None or at.tzinfo is None:
        raise InvalidRequest("InvalidExpiresAt", "'expiresAt' must be an ISO 8601 time with an offset or Z, such "
                             "as 2027-01-31T00:00:00Z.", field="expiresAt")
    if at <= now or at > now + MAX_LIFETIME:
        raise InvalidRequest("InvalidExpiresAt", "'expiresAt' must lie in the future, and at most 10 years ahead.",
                             field="expiresAt")
    return store.now_iso(at)


def prepare(data: dict, caller: Caller, *, now: datetime | None = None) -> tuple[dict, str]:
    """The item to store and the key itself, for a request ``caller`` may make (the checks of ``POST /keys``;
    ``make key`` makes keys through here too, as the operator)."""
    now = now or datetime.now(timezone.utc)
    name, granted = inputs.name(data, MAX_NAME, "say what the key is for"), _scopes(data, caller)
    test, expires = _test(data, caller), _expires(data, now)
    key_id = tokens.new_id()
    key = tokens.new_key(key_id, test=test)
    item = {"id": key_id, "name": name, "scopes": granted, "test": test, "prefix": tokens.prefix(key),
            "hash": tokens.digest(key), "createdAt": store.now_iso(now), "createdBy": caller.key_id}
    if expires:
        item["expiresAt"] = expires
    return item, key


def put(client, table: str, item: dict) -> None:
    client.put_item(TableName=table, Item=store.to_item(item), ConditionExpression="attribute_not_exists(#id)",
                    ExpressionAttributeNames={"#id": "id"})


@aws_errors("store the key")
def create(data: dict, caller: Caller, settings: Settings, *, now: datetime | None = None) -> tuple[dict, str]:
    """``POST /keys``: (the key resource, the key itself, which no other answer shows)."""
    configured(settings)
    item, key = prepare(data, caller, now=now)
    put(aws.client("dynamodb"), settings.keys_table, item)
    logger.info("key created", extra={"keyId": item["id"], "scopes": item["scopes"], "test": item["test"],
                                      "by": caller.key_id})
    return public(item), key


def _load(settings: Settings, key_id: str) -> dict:
    item = aws.client("dynamodb").get_item(TableName=settings.keys_table, Key={"id": {"S": key_id}},
                                           ConsistentRead=True).get("Item") if key_id.startswith(tokens.ID_PREFIX) \
        else None
    if not item:
        raise NotFound("KeyNotFound", "No key with this id.")
    return store.from_item(item)


@aws_errors("read the key")
def get(key_id: str, settings: Settings) -> dict:
    return public(_load(configured(settings), key_id))


@aws_errors("list the keys")
def listing(settings: Settings) -> dict:
    """Every key of the stage, newest first (a stage has tens of keys: one Scan, paged by DynamoDB)."""
    configured(settings)
    return listing_in(aws.client("dynamodb"), settings.keys_table)


def listing_in(client, table: str) -> dict:
    found, params = [], {"TableName": table}
    while True:
        response = client.scan(**params)
        found += [store.from_item(item) for item in response.get("Items", [])]
        if not response.get("LastEvaluatedKey"):
            break
        params["ExclusiveStartKey"] = response["LastEvaluatedKey"]
    found.sort(key=lambda item: (item.get("createdAt") or "", item["id"]), reverse=True)
    return {"keys": [public(item) for item in found]}


@aws_errors("revoke the key")
def revoke(key_id: str, caller: Caller, settings: Settings) -> None:
    """``DELETE /keys/{id}``: the key stops working within the authorizer's cache time (a minute). Revoking a
    revoked key changes nothing."""
    configured(settings)
    revoke_in(aws.client("dynamodb"), settings.keys_table, key_id)
    logger.info("key revoked", extra={"keyId": key_id, "by": caller.key_id})


def revoke_in(client, table: str, key_id: str) -> None:
    if not key_id.startswith(tokens.ID_PREFIX):
        raise NotFound("KeyNotFound", "No key with this id.")
    try:
        client.update_item(TableName=table, Key={"id": {"S": key_id}},
                           UpdateExpression="SET #revoked = if_not_exists(#revoked, :now)",
                           ConditionExpression="attribute_exists(#id)",
                           ExpressionAttributeNames={"#revoked": "revokedAt", "#id": "id"},
                           ExpressionAttributeValues={":now": {"S": store.now_iso()}})
    except client.exceptions.ConditionalCheckFailedException:
        raise NotFound("KeyNotFound", "No key with this id.") from None


def current(caller: Caller, settings: Settings) -> dict:
    """``GET /keys/current``: the calling key. Under ``make dev`` a request without a key is the local
    stack's own, which has no item."""
    if caller.key_id == LOCAL_KEY_ID or not settings.keys_table:
        return {"id": caller.key_id, "name": "make dev (no key sent)", "scopes": [s for s in SCOPES if s in caller.scopes],
                "test": caller.test, "prefix": None, "createdAt": None, "expiresAt": None, "lastUsedAt": None,
                "revokedAt": None}
    return get(caller.key_id, settings)


# The caller a request without a key stands for under ``make dev`` (never deployed: API Gateway answers
# a request without a key 401 before any route runs).
LOCAL_KEY_ID = "local"
