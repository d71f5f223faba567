"""The message store: one DynamoDB item per message, written before the provider is called.

Uses the low-level client with a small hand-written conversion; the record holds only
strings, integers, decimals and nulls.
"""
from __future__ import annotations

import base64
import binascii
import json
import time
from datetime import datetime, timezone
from decimal import Decimal

from . import aws, schema
from .errors import InvalidRequest
from .settings import get_settings

QUEUED, SENT, DELIVERED, FAILED = "queued", "sent", "delivered", "failed"
FINAL = frozenset({DELIVERED, FAILED})

# Fields of the public message resource, in the order the API shows them.
PUBLIC_FIELDS = (
    "id", "channel", "to", "body", "mediaUrl", "status", "providerMessageId", "segments",
    "encoding", "priceUsd", "error", "createdAt", "updatedAt",
)


def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _encode(value):
    if value is None:
        return {"NULL": True}
    if isinstance(value, bool):
        return {"BOOL": value}
    if isinstance(value, (int, float, Decimal)):
        return {"N": str(value)}
    if isinstance(value, str):
        return {"S": value}
    if isinstance(value, dict):
        return {"M": {k: _encode(v) for k, v in value.items()}}
    raise TypeError(f"cannot store {type(value).__name__}")


def _decode(attr):
    (kind, value), = attr.items()
    if kind == "S":
        return value
    if kind == "N":
        number = Decimal(value)
        return int(number) if number == number.to_integral_value() else float(number)
    if kind == "NULL":
        return None
    if kind == "BOOL":
        return value
    if kind == "M":
        return {k: _decode(v) for k, v in value.items()}
    raise TypeError(f"unexpected attribute type {kind}")


def to_item(record: dict) -> dict:
    return {k: _encode(v) for k, v in record.items()}


def from_item(item: dict) -> dict:
    return {k: _decode(v) for k, v in item.items()}


def public(record: dict) -> dict:
    return {field: record.get(field) for field in PUBLIC_FIELDS}


def _table() -> str:
    return get_settings().messages_table


def create(record: dict) -> None:
    """Store a new record. It carries the keys the list index needs and an expiry for TTL."""
    settings = get_settings()
    item = dict(record)
    item[schema.MESSAGES_LIST_PARTITION] = "messages"
    item[schema.MESSAGES_LIST_SORT] = f"{record['createdAt']}#{record['id']}"
    item[schema.MESSAGES_TTL] = int(time.time()) + settings.message_retention_days * 86400
    if item.get(schema.MESSAGES_PROVIDER_KEY) is None:
        item.pop(schema.MESSAGES_PROVIDER_KEY, None)  # index keys cannot be null
    aws.client("dynamodb").put_item(
        TableName=_table(),
        Item=to_item(item),
        ConditionExpression="attribute_not_exists(#id)",
        ExpressionAttributeNames={"#id": schema.MESSAGES_KEY},
    )


def transition(message_id: str, status: str, *, expect: tuple[str, ...] = (QUEUED,), **fields) -> dict | None:
    """Move a record to ``status`` only from one of the ``expect`` states; return the new record.

    Returns None when the record was not in an expected state (someone else moved it first).
    """
    names = {"#status": "status", "#updatedAt": "updatedAt"}
    values = {":status": _encode(status), ":updatedAt": _encode(now_iso())}
    sets = ["#status = :status", "#updatedAt = :updatedAt"]
    for i, (name, value) in enumerate(fields.items()):
        names[f"#f{i}"] = name
        values[f":f{i}"] = _encode(value)
        sets.append(f"#f{i} = :f{i}")
    allowed = []
    for i, state in enumerate(expect):
        values[f":e{i}"] = _encode(state)
        allowed.append(f":e{i}")
    client = aws.client("dynamodb")
    try:
        response = client.update_item(
            TableName=_table(),
            Key={schema.MESSAGES_KEY: {"S": message_id}},
            UpdateExpression="SET " + ", ".join(sets),
            ConditionExpression=f"#status IN ({', '.join(allowed)})",
            ExpressionAttributeNames=names,
            ExpressionAttributeValues=values,
            ReturnValues="ALL_NEW",
        )
    except client.exceptions.ConditionalCheckFailedException:
        return None
    return from_item(response["Attributes"])


def get(message_id: str) -> dict | None:
    response = aws.client("dynamodb").get_item(
        TableName=_table(), Key={schema.MESSAGES_KEY: {"S": message_id}}, ConsistentRead=True
    )
    item = response.get("Item")
    return from_item(item) if item else None


def _decode_token(token: str) -> dict:
    try:
        key = json.loads(base64.urlsafe_b64decode(token.encode() + b"=" * (-len(token) % 4)))
        if not isinstance(key, dict) or not all(isinstance(v, str) for v in key.values()):
            raise ValueError
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise InvalidRequest("InvalidNext", "'next' is not a token this API returned.", field="next") from None
    return {name: {"S": value} for name, value in key.items()}


def _encode_token(key: dict) -> str:
    plain = {name: attr["S"] for name, attr in key.items()}
    return base64.urlsafe_b64encode(json.dumps(plain, separators=(",", ":")).encode()).decode().rstrip("=")


def page(limit: int, token: str | None = None) -> tuple[list[dict], str | None]:
    """Newest first. Returns (records, token for the next page or None)."""
    params = {
        "TableName": _table(),
        "IndexName": schema.MESSAGES_LIST_INDEX,
        "KeyConditionExpression": "#pk = :pk",
        "ExpressionAttributeNames": {"#pk": schema.MESSAGES_LIST_PARTITION},
        "ExpressionAttributeValues": {":pk": {"S": "messages"}},
        "ScanIndexForward": False,
        "Limit": limit,
    }
    if token:
        params["ExclusiveStartKey"] = _decode_token(token)
    response = aws.client("dynamodb").query(**params)
    records = [from_item(item) for item in response.get("Items", [])]
    last = response.get("LastEvaluatedKey")
    return records, (_encode_token(last) if last and len(records) == limit else None)
