"""The message store: one DynamoDB item per message, written before the provider is called.

Uses the low-level client with boto3's ``TypeSerializer``/``TypeDeserializer``; a record holds
strings, integers, floats, booleans, nulls and maps of those, and reads back as it was written
(numbers come back as ints when whole, else floats, never as ``Decimal``).

Index writes (DynamoDB writes an index only when a write changes its key or a projected
attribute): the list index holds keys only, set once when the record is created; the batch index
holds ``shown``, which an update sets only when the status the API shows can change; the due index
holds keys only, and only while a message is ``scheduled`` (the write that takes it out of ``scheduled``
removes them). All three spread their keys over ``schema.INDEX_SHARDS`` partition keys.
"""
from __future__ import annotations

import hashlib
import time
from datetime import datetime, timezone
from decimal import Decimal

from boto3.dynamodb.types import DYNAMODB_CONTEXT, TypeDeserializer, TypeSerializer

from . import aws, schema
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
# A reply a recipient sent to the stage's number (``inbound.py``): final from the start.
RECEIVED = "received"
# Scheduled sends (issue 21): waiting for its ``sendAt`` (shown, not final), and canceled before it left (final).
SCHEDULED, CANCELED = "scheduled", "canceled"
FINAL = frozenset({DELIVERED, FAILED, UNKNOWN, VALIDATED, RECEIVED, CANCELED})
# Every status the API shows (``sending`` shows as ``queued``), in the order of the message resource's enum.
SHOWN_STATUSES = (SCHEDULED, QUEUED, SENT, DELIVERED, FAILED, UNKNOWN, VALIDATED, RECEIVED, CANCELED)

OUTBOUND, INBOUND = "outbound", "inbound"
# Each direction lists under its own partitions of the list index; messages a test key sent under theirs
# (replies come from real phones: there are no test replies).
LIST_PREFIXES = {OUTBOUND: schema.MESSAGES_LIST_PREFIX, INBOUND: schema.MESSAGES_INBOUND_PREFIX}
TEST_LIST_PREFIXES = {OUTBOUND: schema.MESSAGES_TEST_PREFIX}


def list_prefixes(test: bool = False) -> dict[str, str]:
    return TEST_LIST_PREFIXES if test else LIST_PREFIXES

# Fields of the public message resource, in the order the API shows them.
PUBLIC_FIELDS = (
    "id", "direction", "channel", "from", "to", "body", "mediaUrl", "status", "providerMessageId", "segments",
    "encoding", "priceUsd", "error", "providerResponse", "dryRun", "createdAt", "updatedAt", "receivedAt",
    "inReplyTo", "keyId", "test", "validityPeriod", "validUntil", "maxPriceUsd", "templateId", "templateVersion",
    "sendAt",  # scheduled sends (issue 21)
)


def now_iso(at: datetime | None = None) -> str:
    """``at`` (default: now) as the API writes times: UTC, milliseconds, ``Z``."""
    at = (at or datetime.now(timezone.utc)).astimezone(timezone.utc)
    return at.isoformat(timespec="milliseconds").replace("+00:00", "Z")


_SERIALIZER = TypeSerializer()
_DESERIALIZER = TypeDeserializer()


def _storable(value):
    """What ``TypeSerializer`` takes: it refuses floats, so a float goes as the Decimal of its
    shortest repr (the number DynamoDB would have parsed from it)."""
    if isinstance(value, float):
        return Decimal(repr(value))
    if isinstance(value, dict):
        return {k: _storable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_storable(v) for v in value]
    return value


def _plain(value):
    """A deserialized value as the record held it: a whole number as an int, any other as a float."""
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


# The largest whole number DynamoDB's 38 digits hold exactly, as TypeSerializer's context allows.
_EXACT_INT = 10 ** 38


def encode(value) -> dict:
    """One value as a DynamoDB attribute value, as boto3's ``TypeSerializer`` writes it. The plain values
    a record is made of (a string, a flag, nothing, a whole number) are written directly: every send encodes
    some thirty, and the serializer's type tests cost more than the send's own validation."""
    kind = type(value)
    if kind is str:
        return {"S": value}
    if kind is bool:
        return {"BOOL": value}
    if value is None:
        return {"NULL": True}
    if kind is int and -_EXACT_INT < value < _EXACT_INT:
        return {"N": str(value)}
    return _SERIALIZER.serialize(_storable(value))


def decode(attr: dict):
    """One DynamoDB attribute value as the record held it (see ``_plain``), as boto3's ``TypeDeserializer``
    reads it; the plain ones directly, as ``encode`` writes them."""
    if len(attr) == 1:
        kind, value = next(iter(attr.items()))
        if kind == "S" or kind == "BOOL":
            return value
        if kind == "NULL":
            return None
        if kind == "N":
            return _plain(DYNAMODB_CONTEXT.create_decimal(value))
    return _plain(_DESERIALIZER.deserialize(attr))


def to_item(record: dict) -> dict:
    return {k: encode(v) for k, v in record.items()}


def from_item(item: dict) -> dict:
    return {k: decode(v) for k, v in item.items()}


def shard_of(message_id: str) -> int:
    """The index shard of a message: stable across processes and Python versions (not ``hash()``)."""
    return int(hashlib.sha256(message_id.encode()).hexdigest()[:8], 16) % schema.INDEX_SHARDS


def shown_status(status: str) -> str:
    """The status the API shows: a record being sent is still ``queued`` to the caller."""
    return QUEUED if status == SENDING else status


def public(record: dict) -> dict:
    shown = {field: record.get(field) for field in PUBLIC_FIELDS}
    shown["status"] = shown_status(shown["status"])
    shown["dryRun"] = bool(shown["dryRun"])  # records from before dryRun existed were real sends
    shown["direction"] = shown["direction"] or OUTBOUND  # records from before replies were all sent ones
    shown["test"] = bool(shown["test"])
    return shown


def due_prefixes(test: bool = False) -> tuple[str, str]:
    """The due index's two families for a key kind: (the sweep's, the ones the API queued itself)."""
    if test:
        return schema.DUE_TEST_SWEEP_PREFIX, schema.DUE_TEST_QUEUED_PREFIX
    return schema.DUE_SWEEP_PREFIX, schema.DUE_QUEUED_PREFIX


def due_keys(message_id: str, send_at: str, *, test: bool, queued: bool) -> dict:
    """A scheduled record's due index keys: its family (``queued``: the API puts it on the batch queue itself)
    and shard, and ``<sendAt>#<id>``."""
    sweep, direct = due_prefixes(test)
    return {schema.MESSAGES_DUE_PARTITION: f"{direct if queued else sweep}{shard_of(message_id)}",
            schema.MESSAGES_DUE_SORT: f"{send_at}#{message_id}"}


DUE_KEYS = (schema.MESSAGES_DUE_PARTITION, schema.MESSAGES_DUE_SORT)


def messages_table() -> str:
    """The messages table's name (the stage's settings)."""
    return get_settings().messages_table


def _expiry() -> int:
    return int(time.time()) + get_settings().message_retention_days * 86400


def _message_item(record: dict) -> dict:
    """A message record as stored: with the index keys (its shard's, never changed afterwards),
    the status the batch index shows, and an expiry for TTL."""
    item = dict(record)
    shard = shard_of(record["id"])
    prefixes = list_prefixes(bool(record.get("test")))
    item[schema.MESSAGES_LIST_PARTITION] = f"{prefixes[record.get('direction') or OUTBOUND]}{shard}"
    item[schema.MESSAGES_LIST_SORT] = f"{record['createdAt']}#{record['id']}"
    item[schema.MESSAGES_SHOWN] = shown_status(record["status"])
    if record.get(schema.MESSAGES_BATCH_KEY) is not None:
        item[schema.MESSAGES_BATCH_PARTITION] = f"{record[schema.MESSAGES_BATCH_KEY]}#{shard}"
    item[schema.MESSAGES_TTL] = _expiry()
    if item.get(schema.MESSAGES_PROVIDER_KEY) is None:
        item.pop(schema.MESSAGES_PROVIDER_KEY, None)  # an index key cannot be null
    return to_item(item)


def create(record: dict) -> None:
    """Store a new message record.

    The id is a fresh uuid4, so an item that already holds it is this record, stored by an earlier
    attempt of this same call whose answer was lost (botocore retries a timed-out PutItem): that is
    success, not a conflict."""
    create_once(record)


def create_once(record: dict) -> bool:
    """Store a record whose id is derived from something that must be stored once (a reply's
    ``inboundMessageId``). Returns False when a record with this id already exists."""
    client = aws.client("dynamodb")
    try:
        client.put_item(
            TableName=messages_table(),
            Item=_message_item(record),
            ConditionExpression="attribute_not_exists(#id)",
            ExpressionAttributeNames={"#id": schema.MESSAGES_KEY},
        )
    except client.exceptions.ConditionalCheckFailedException:
        return False
    return True


def create_many(records: list[dict], *, extra: dict | None = None) -> None:
    """Store new message records (fresh ids) 25 at a time, plus one ``extra`` item, if given."""
    client = aws.client("dynamodb")
    items = [_message_item(r) for r in records]
    if extra is not None:
        items.append(to_item({**extra, schema.MESSAGES_TTL: _expiry()}))
    for start in range(0, len(items), 25):
        requests = {messages_table(): [{"PutRequest": {"Item": item}} for item in items[start:start + 25]]}
        for attempt in range(8):
            unprocessed = client.batch_write_item(RequestItems=requests).get("UnprocessedItems") or {}
            if not unprocessed:
                break
            requests = unprocessed
            time.sleep(min(0.05 * 2 ** attempt, 1.0))
        else:
            raise RuntimeError("DynamoDB left items unprocessed after 8 attempts")


def _update_checked(message_id: str, status: str, fields: dict, condition: str, names: dict,
                    values: dict, *, shown: bool, remove: tuple[str, ...] = ()) -> tuple[dict | None, bool]:
    """Set ``status`` and ``fields`` when ``condition`` holds. Returns (the new record, or None
    when the condition failed; whether the record exists: DynamoDB returns the item that failed the
    condition, so this needs no GetItem).

    ``shown``: also set the status the API shows (projected into the batch index). Leave it out
    when no state the condition admits can show differently, so the write leaves the index alone.
    ``remove``: attributes the same write removes (a record leaving ``scheduled`` leaves the due index)."""
    names = {"#status": "status", "#updatedAt": "updatedAt", **names}
    values = {":status": encode(status), ":updatedAt": encode(now_iso()), **values}
    sets = ["#status = :status", "#updatedAt = :updatedAt"]
    if shown:
        names["#shown"] = schema.MESSAGES_SHOWN
        values[":shown"] = encode(shown_status(status))
        sets.append("#shown = :shown")
    for i, (name, value) in enumerate(fields.items()):
        names[f"#f{i}"] = name
        values[f":f{i}"] = encode(value)
        sets.append(f"#f{i} = :f{i}")
    expression = "SET " + ", ".join(sets)
    if remove:
        names.update({f"#r{i}": name for i, name in enumerate(remove)})
        expression += " REMOVE " + ", ".join(f"#r{i}" for i in range(len(remove)))
    client = aws.client("dynamodb")
    try:
        response = client.update_item(
            TableName=messages_table(),
            Key={schema.MESSAGES_KEY: {"S": message_id}},
            UpdateExpression=expression,
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
    The status the API shows is written only when it can change (not by the worker's claim,
    ``queued -> sending``: both show as ``queued``), so such a write does not touch the batch index.
    A record leaving ``scheduled`` leaves the due index in the same write (its keys are removed), so the
    index holds exactly the messages still waiting; two writers racing for it (the worker's claim and a
    cancel) cannot both win, since each holds only while the record is ``scheduled``.
    """
    allowed = {f":e{i}": encode(state) for i, state in enumerate(expect)}
    shown = any(shown_status(state) != shown_status(status) for state in expect)
    remove = DUE_KEYS if SCHEDULED in expect and status != SCHEDULED else ()
    return _update_checked(message_id, status, fields, f"#status IN ({', '.join(allowed)})", {}, allowed,
                           shown=shown, remove=remove)[0]


def settle(message_id: str, status: str, at_ms: int, *, provider_id: str | None = None, **fields) -> dict | None:
    """``settle_checked`` without the second answer: the new record, or None."""
    return settle_checked(message_id, status, at_ms, provider_id=provider_id, **fields)[0]


def settle_checked(message_id: str, status: str, at_ms: int, *, provider_id: str | None = None,
                   **fields) -> tuple[dict | None, bool]:
    """Apply a delivery event: to ``status`` (final) at event time ``at_ms``, only forward.

    A record not yet final takes it; a final record takes only a newer event, so repeated and
    late events change nothing and out-of-order events settle on the latest. A dry run
    (``validated``) and a reply (``received``) take none. Returns (the new record, or None when the event was not applied;
    whether the record exists).

    ``provider_id``: the event was matched by our own id (the ``Context`` the send carried), not
    through the provider-id index. The record then takes it only if it holds that provider id or
    none yet (the receipt can overtake the write that records it), and keeps it.
    """
    names = {"#id": schema.MESSAGES_KEY, "#statusAt": "statusAt"}
    values = {":at": encode(at_ms), ":queued": encode(QUEUED), ":sending": encode(SENDING),
              ":sent": encode(SENT), ":validated": encode(VALIDATED), ":received": encode(RECEIVED),
              ":scheduled": encode(SCHEDULED), ":canceled": encode(CANCELED)}
    # A message not sent yet (scheduled) or never sent (canceled) has no receipt to take.
    condition = ("attribute_exists(#id) AND NOT (#status IN (:validated, :received, :scheduled, :canceled)) "
                 "AND (#status IN (:queued, :sending, :sent) "
                 "OR attribute_not_exists(#statusAt) OR #statusAt < :at)")
    if provider_id is not None:
        names["#pid"] = schema.MESSAGES_PROVIDER_KEY
        values[":pid"] = encode(provider_id)
        condition += " AND (attribute_not_exists(#pid) OR #pid = :pid)"
        fields = {**fields, schema.MESSAGES_PROVIDER_KEY: provider_id}
    return _update_checked(message_id, status, {"statusAt": at_ms, **fields}, condition, names, values, shown=True)


def find_id_by_provider_id(provider_id: str) -> str | None:
    """The id of the message the provider knows by ``provider_id`` (the provider-id index holds
    keys only)."""
    response = aws.client("dynamodb").query(
        TableName=messages_table(),
        IndexName=schema.MESSAGES_PROVIDER_INDEX,
        KeyConditionExpression="#p = :p",
        ExpressionAttributeNames={"#p": schema.MESSAGES_PROVIDER_KEY},
        ExpressionAttributeValues={":p": {"S": provider_id}},
        Limit=1,
    )
    items = response.get("Items") or []
    return items[0][schema.MESSAGES_KEY]["S"] if items else None


def batch_get(table: str, keys: list[dict], **read) -> list[dict]:
    """The items of ``keys`` that exist, in no particular order: BatchGetItem, 100 keys a call, the
    keys DynamoDB leaves unprocessed asked for again with backoff. ``read``: the request's other
    fields (``ConsistentRead``, ``ProjectionExpression``...)."""
    client = aws.client("dynamodb")
    items: list[dict] = []
    for start in range(0, len(keys), 100):  # BatchGetItem takes at most 100 keys
        requests = {table: {"Keys": keys[start:start + 100], **read}}
        for attempt in range(8):
            response = client.batch_get_item(RequestItems=requests)
            items.extend(response.get("Responses", {}).get(table, []))
            requests = response.get("UnprocessedKeys") or {}
            if not requests:
                break
            time.sleep(min(0.05 * 2 ** attempt, 1.0))
        else:
            raise RuntimeError("DynamoDB left keys unprocessed after 8 attempts")
    return items


def get(message_id: str) -> dict | None:
    response = aws.client("dynamodb").get_item(
        TableName=messages_table(), Key={schema.MESSAGES_KEY: {"S": message_id}}, ConsistentRead=True
    )
    item = response.get("Item")
    return from_item(item) if item else None
