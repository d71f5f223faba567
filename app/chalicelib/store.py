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
# End User Messaging reported the final status UNKNOWN: no carrier receipt came within 72 hours,
# so nobody knows whether the message arrived. Not a failure: ``error`` stays null.
UNKNOWN = "unknown"
# A dry run (``dryRun``): AWS validated the message all the way and sent nothing. No receipt
# ever comes for it.
VALIDATED = "validated"
# Internal: a batch worker has claimed the record and is calling the provider. The API shows it
# as ``queued``; a record found in this state on redelivery is never sent again.
SENDING = "sending"
FINAL = frozenset({DELIVERED, FAILED, UNKNOWN, VALIDATED})

# Fields of the public message resource, in the order the API shows them.
PUBLIC_FIELDS = (
    "id", "channel", "to", "body", "mediaUrl", "status", "providerMessageId", "segments",
    "encoding", "priceUsd", "error", "providerResponse", "dryRun", "createdAt", "updatedAt",
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


def shown_status(status: str) -> str:
    """The status the API shows: a record being sent is still ``queued`` to the caller."""
    return QUEUED if status == SENDING else status


def public(record: dict) -> dict:
    shown = {field: record.get(field) for field in PUBLIC_FIELDS}
    shown["status"] = shown_status(shown["status"])
    shown["dryRun"] = bool(shown["dryRun"])  # records from before dryRun existed were real sends
    return shown


def _table() -> str:
    return get_settings().messages_table


def _expiry() -> int:
    return int(time.time()) + get_settings().message_retention_days * 86400


def _message_item(record: dict) -> dict:
    """A message record as stored: with the keys the list index needs and an expiry for TTL."""
    item = dict(record)
    item[schema.MESSAGES_LIST_PARTITION] = "messages"
    item[schema.MESSAGES_LIST_SORT] = f"{record['createdAt']}#{record['id']}"
    item[schema.MESSAGES_TTL] = _expiry()
    for key in (schema.MESSAGES_PROVIDER_KEY, schema.MESSAGES_BATCH_KEY):
        if item.get(key) is None:
            item.pop(key, None)  # index keys cannot be null
    return to_item(item)


def create(record: dict) -> None:
    """Store a new message record.

    The id is a fresh uuid4, so an item that already holds it is this record, stored by an earlier
    attempt of this same call whose answer was lost (botocore retries a timed-out PutItem): that is
    success, not a conflict."""
    client = aws.client("dynamodb")
    try:
        client.put_item(
            TableName=_table(),
            Item=_message_item(record),
            ConditionExpression="attribute_not_exists(#id)",
            ExpressionAttributeNames={"#id": schema.MESSAGES_KEY},
        )
    except client.exceptions.ConditionalCheckFailedException:
        if get(record["id"]) is None:
            raise


def create_many(records: list[dict], *, extra: dict | None = None) -> None:
    """Store new message records (fresh ids) 25 at a time, plus one ``extra`` item, if given."""
    client = aws.client("dynamodb")
    items = [_message_item(r) for r in records]
    if extra is not None:
        items.append(to_item({**extra, schema.MESSAGES_TTL: _expiry()}))
    for start in range(0, len(items), 25):
        requests = {_table(): [{"PutRequest": {"Item": item}} for item in items[start:start + 25]]}
        for attempt in range(8):
            unprocessed = client.batch_write_item(RequestItems=requests).get("UnprocessedItems") or {}
            if not unprocessed:
                break
            requests = unprocessed
            time.sleep(min(0.05 * 2 ** attempt, 1.0))
        else:
            raise RuntimeError("DynamoDB left items unprocessed after 8 attempts")


def _update(message_id: str, status: str, fields: dict, condition: str, names: dict, values: dict) -> dict | None:
    """Set ``status`` and ``fields`` when ``condition`` holds; the new record, or None when not."""
    return _update_checked(message_id, status, fields, condition, names, values)[0]


def _update_checked(message_id: str, status: str, fields: dict, condition: str, names: dict,
                    values: dict) -> tuple[dict | None, bool]:
    """As ``_update``; also says whether the record exists (DynamoDB returns the item that failed
    the condition, so this needs no GetItem)."""
    names = {"#status": "status", "#updatedAt": "updatedAt", **names}
    values = {":status": _encode(status), ":updatedAt": _encode(now_iso()), **values}
    sets = ["#status = :status", "#updatedAt = :updatedAt"]
    for i, (name, value) in enumerate(fields.items()):
        names[f"#f{i}"] = name
        values[f":f{i}"] = _encode(value)
        sets.append(f"#f{i} = :f{i}")
    client = aws.client("dynamodb")
    try:
        response = client.update_item(
            TableName=_table(),
            Key={schema.MESSAGES_KEY: {"S": message_id}},
            UpdateExpression="SET " + ", ".join(sets),
            ConditionExpression=condition,
            ExpressionAttributeNames=names,
            ExpressionAttributeValues=values,
            ReturnValues="ALL_NEW",
            ReturnValuesOnConditionCheckFailure="ALL_OLD",
        )
    except client.exceptions.ConditionalCheckFailedException as failed:
        return None, bool(failed.response.get("Item"))
    return from_item(response["Attributes"]), True


def transition(message_id: str, status: str, *, expect: tuple[str, ...] = (QUEUED,), **fields) -> dict | None:
    """Move a record to ``status`` only from one of the ``expect`` states; return the new record.

    Returns None when the record was not in an expected state (someone else moved it first).
    """
    allowed = {f":e{i}": _encode(state) for i, state in enumerate(expect)}
    return _update(message_id, status, fields, f"#status IN ({', '.join(allowed)})", {}, allowed)


def settle(message_id: str, status: str, at_ms: int, *, provider_id: str | None = None, **fields) -> dict | None:
    """``settle_checked`` without the second answer: the new record, or None."""
    return settle_checked(message_id, status, at_ms, provider_id=provider_id, **fields)[0]


def settle_checked(message_id: str, status: str, at_ms: int, *, provider_id: str | None = None,
                   **fields) -> tuple[dict | None, bool]:
    """Apply a delivery event: to ``status`` (final) at event time ``at_ms``, only forward.

    A record not yet final takes it; a final record takes only a newer event, so repeated and
    late events change nothing and out-of-order events settle on the latest. A dry run
    (``validated``) takes none. Returns (the new record, or None when the event was not applied;
    whether the record exists).

    ``provider_id``: the event was matched by our own id (the ``Context`` the send carried), not
    through the provider-id index. The record then takes it only if it holds that provider id or
    none yet (the receipt can overtake the write that records it), and keeps it.
    """
    names = {"#id": schema.MESSAGES_KEY, "#statusAt": "statusAt"}
    values = {":at": _encode(at_ms), ":queued": _encode(QUEUED), ":sending": _encode(SENDING),
              ":sent": _encode(SENT), ":validated": _encode(VALIDATED)}
    condition = ("attribute_exists(#id) AND #status <> :validated AND (#status IN (:queued, :sending, :sent) "
                 "OR attribute_not_exists(#statusAt) OR #statusAt < :at)")
    if provider_id is not None:
        names["#pid"] = schema.MESSAGES_PROVIDER_KEY
        values[":pid"] = _encode(provider_id)
        condition += " AND (attribute_not_exists(#pid) OR #pid = :pid)"
        fields = {**fields, schema.MESSAGES_PROVIDER_KEY: provider_id}
    return _update_checked(message_id, status, {"statusAt": at_ms, **fields}, condition, names, values)


def find_id_by_provider_id(provider_id: str) -> str | None:
    """The id of the message the provider knows by ``provider_id`` (the provider-id index holds
    keys only)."""
    response = aws.client("dynamodb").query(
        TableName=_table(),
        IndexName=schema.MESSAGES_PROVIDER_INDEX,
        KeyConditionExpression="#p = :p",
        ExpressionAttributeNames={"#p": schema.MESSAGES_PROVIDER_KEY},
        ExpressionAttributeValues={":p": {"S": provider_id}},
        Limit=1,
    )
    items = response.get("Items") or []
    return items[0][schema.MESSAGES_KEY]["S"] if items else None


def count_batch(batch_id: str) -> dict[str, int]:
    """How many of a batch's message records are in each status (as the API shows them)."""
    counts: dict[str, int] = {}
    params = {
        "TableName": _table(), "IndexName": schema.MESSAGES_BATCH_INDEX,
        "KeyConditionExpression": "#b = :b", "ProjectionExpression": "#status",
        "ExpressionAttributeNames": {"#b": schema.MESSAGES_BATCH_KEY, "#status": "status"},
        "ExpressionAttributeValues": {":b": {"S": batch_id}},
    }
    client = aws.client("dynamodb")
    while True:
        response = client.query(**params)
        for item in response.get("Items", []):
            status = shown_status(item["status"]["S"])
            counts[status] = counts.get(status, 0) + 1
        if not response.get("LastEvaluatedKey"):
            return counts
        params["ExclusiveStartKey"] = response["LastEvaluatedKey"]


def reserve_recipient(to: str, gap_seconds: float = 1.0) -> float:
    """Take the recipient's next send slot (at most one message per ``gap_seconds``), shared by
    every worker through one conditional write to the short-lived-keys (idempotency) table.
    Returns 0 when taken, else the seconds to wait."""
    now = time.time()
    client = aws.client("dynamodb")
    table = get_settings().idempotency_table
    key = {schema.IDEMPOTENCY_KEY: {"S": f"{schema.RECIPIENT_GATE_PREFIX}{to}"}}
    try:
        client.put_item(
            TableName=table,
            Item={**key, "nextAt": _encode(round(now + gap_seconds, 3)),
                  schema.IDEMPOTENCY_TTL: _encode(int(now) + 3600)},
            ConditionExpression="attribute_not_exists(#id) OR nextAt <= :now",
            ExpressionAttributeNames={"#id": schema.IDEMPOTENCY_KEY},
            ExpressionAttributeValues={":now": _encode(round(now, 3))},
        )
        return 0.0
    except client.exceptions.ConditionalCheckFailedException:
        item = client.get_item(TableName=table, Key=key, ConsistentRead=True).get("Item")
        wait = float(item["nextAt"]["N"]) - now if item else 0.0
        return max(wait, 0.01)


def get(message_id: str) -> dict | None:
    response = aws.client("dynamodb").get_item(
        TableName=_table(), Key={schema.MESSAGES_KEY: {"S": message_id}}, ConsistentRead=True
    )
    item = response.get("Item")
    return from_item(item) if item else None


_TOKEN_KEYS = frozenset({schema.MESSAGES_KEY, schema.MESSAGES_LIST_PARTITION, schema.MESSAGES_LIST_SORT})


def _decode_token(token: str) -> dict:
    try:
        key = json.loads(base64.urlsafe_b64decode(token.encode() + b"=" * (-len(token) % 4)))
        if not isinstance(key, dict) or not all(isinstance(v, str) for v in key.values()):
            raise ValueError
        # Exactly the key a page of the list index ends on, within DynamoDB's key sizes: DynamoDB refuses
        # any other ExclusiveStartKey (a ValidationException, which would be a 500).
        if set(key) != _TOKEN_KEYS or key[schema.MESSAGES_LIST_PARTITION] != "messages" \
                or any(len(v.encode("utf-8")) > 1024 for v in key.values()):
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
