"""Reading many records at once: ``GET /messages`` pages (every shard of the list index merged newest
first, the records read by key), ``GET /messages?status=scheduled`` pages (every shard of the due index's
families for the key kind merged soonest first), and a batch's counts per status (its shards of the batch
index). The records themselves, how they are written and read by key, are ``store``'s.
"""
from __future__ import annotations

import base64
import binascii
import heapq
import itertools
import json
import re
from concurrent.futures import ThreadPoolExecutor
from functools import lru_cache

from . import aws, schema, store
from .errors import InvalidRequest
from .settings import Settings, get_settings


@lru_cache(maxsize=1)
def _pool() -> ThreadPoolExecutor:
    """Threads for querying the shards of an index at once (botocore clients are thread-safe): every
    shard of both directions' list partitions."""
    return ThreadPoolExecutor(max_workers=schema.INDEX_SHARDS * len(store.LIST_PREFIXES), thread_name_prefix="shard")


def _query_shards(client, queries: list[dict]) -> list[dict]:
    """The first page of each query, all at once."""
    return list(_pool().map(lambda params: client.query(**params), queries))


def _pages(client, params: dict, response: dict):
    """Every item of a query, from its first ``response`` on, fetching a page only when asked for it."""
    while True:
        yield from response.get("Items", [])
        last = response.get("LastEvaluatedKey")
        if not last:
            return
        response = client.query(**params, ExclusiveStartKey=last)


def count_batch(batch_id: str) -> dict[str, int]:
    """How many of a batch's message records are in each status (as the API shows them).

    Records written before the batch index held ``shown`` are not counted (none were deployed)."""
    counts: dict[str, int] = {}
    for status in batch_statuses(batch_id).values():
        counts[status] = counts.get(status, 0) + 1
    return counts


def batch_statuses(batch_id: str) -> dict[str, str]:
    """Each of a batch's message records (by id) with the status the API shows, as the batch index has it
    (eventually consistent: a change of the last moment may not be there yet)."""
    client = aws.client("dynamodb")
    queries = [{
        "TableName": store.messages_table(), "IndexName": schema.MESSAGES_BATCH_INDEX,
        "KeyConditionExpression": "#b = :b", "ProjectionExpression": "#id, #shown",
        "ExpressionAttributeNames": {"#b": schema.MESSAGES_BATCH_PARTITION, "#shown": schema.MESSAGES_SHOWN,
                                     "#id": schema.MESSAGES_KEY},
        "ExpressionAttributeValues": {":b": {"S": f"{batch_id}#{shard}"}},
    } for shard in range(schema.INDEX_SHARDS)]
    found: dict[str, str] = {}
    for params, first in zip(queries, _query_shards(client, queries)):
        for item in _pages(client, params, first):
            found[item[schema.MESSAGES_KEY]["S"]] = item[schema.MESSAGES_SHOWN]["S"]
    return found


# A list page's token names the sort key (createdAt#id) of the last message it returned; a page of scheduled
# messages, the due index's sort key (sendAt#id) of its last one, under another name: neither is taken for
# the other.
_TOKEN_FIELD = "before"
_DUE_TOKEN_FIELD = "after"
_SORT_KEY = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z#.+", re.DOTALL)


def _decode_token(token: str, field: str = _TOKEN_FIELD) -> str:
    """The sort key a ``next`` token names. Anything this API did not return is 400 ``InvalidNext``
    (and never reaches DynamoDB, which would refuse an empty or oversized key: a 500)."""
    try:
        plain = json.loads(base64.urlsafe_b64decode(token.encode() + b"=" * (-len(token) % 4)))
        if not isinstance(plain, dict) or set(plain) != {field}:
            raise ValueError
        before = plain[field]
        # createdAt#id, within DynamoDB's 1,024 bytes for a sort key.
        if not isinstance(before, str) or not _SORT_KEY.fullmatch(before) or len(before.encode("utf-8")) > 1024:
            raise ValueError
    except (ValueError, binascii.Error, UnicodeError):
        raise InvalidRequest("InvalidNext", "'next' is not a token this API returned.", field="next") from None
    return before


def _encode_token(sort_key: str, field: str = _TOKEN_FIELD) -> str:
    plain = json.dumps({field: sort_key}, separators=(",", ":"))
    return base64.urlsafe_b64encode(plain.encode()).decode().rstrip("=")


# Other listings sorted by ``createdAt#id`` (GET /templates) page with the same tokens.
def next_token(sort_key: str) -> str:
    """The ``next`` token of a page whose last item has this sort key."""
    return _encode_token(sort_key)


def before(token: str) -> str:
    """The sort key a ``next`` token names (400 ``InvalidNext`` for a token this API did not return)."""
    return _decode_token(token)


def _get_many(ids: list[str]) -> dict[str, dict]:
    """The records with these ids that exist (strongly consistent), by id."""
    keys = [{schema.MESSAGES_KEY: {"S": i}} for i in ids]
    records = (store.from_item(item) for item in store.batch_get(store.messages_table(), keys, ConsistentRead=True))
    return {record[schema.MESSAGES_KEY]: record for record in records}


def page(limit: int, token: str | None = None, directions: tuple[str, ...] = (store.OUTBOUND,), *,
         test: bool = False) -> tuple[list[dict], str | None]:
    """Newest first, of the ``directions`` asked for. Returns (records, token for the next page or
    None when no shard has more).

    Each shard of each direction's list partitions is queried (all at once) for keys older than the
    token's; the shards are merged newest first, fetching a shard's next page only when the merge
    reaches it; the first ``limit`` keys are read from the table. Sort keys (createdAt#id) are unique, so a
    page ends exactly where the next begins. A record gone since the index listed it is skipped."""
    prefixes = store.list_prefixes(test)
    directions = tuple(d for d in directions if d in prefixes)  # a test key has sent messages, no replies
    if not directions:  # nothing to list (a stage without replies asked for them); the token is still checked
        if token:
            _decode_token(token)
        return [], None
    condition, values = "#pk = :pk", {}
    names = {"#pk": schema.MESSAGES_LIST_PARTITION}
    if token:
        condition += " AND #sk < :before"
        names["#sk"] = schema.MESSAGES_LIST_SORT
        values[":before"] = {"S": _decode_token(token)}
    queries = [{
        "TableName": store.messages_table(), "IndexName": schema.MESSAGES_LIST_INDEX,
        "KeyConditionExpression": condition, "ExpressionAttributeNames": names,
        "ExpressionAttributeValues": {**values, ":pk": {"S": f"{prefixes[direction]}{shard}"}},
        "ScanIndexForward": False,
        "Limit": limit + 1,  # with one more, one round of queries tells whether another page exists
    } for direction in directions for shard in range(schema.INDEX_SHARDS)]
    client = aws.client("dynamodb")
    shards = [((item[schema.MESSAGES_LIST_SORT]["S"], item[schema.MESSAGES_KEY]["S"])
               for item in _pages(client, params, first))
              for params, first in zip(queries, _query_shards(client, queries))]
    keys = list(itertools.islice(heapq.merge(*shards, reverse=True), limit + 1))
    more, keys = len(keys) > limit, keys[:limit]
    found = _get_many([message_id for _, message_id in keys])
    records = [found[message_id] for _, message_id in keys if message_id in found]
    return records, (_encode_token(keys[-1][0]) if more else None)


def scheduled_page(limit: int, token: str | None = None, *, test: bool = False) -> tuple[list[dict], str | None]:
    """The messages still waiting for their ``sendAt``, soonest first (ties by id), from the due index: every
    shard of both families of the key kind queried at once for keys after the token's, merged, and the first
    ``limit`` records read from the table. Returns (records, token for the next page or None). A record that
    left ``scheduled`` since the index listed it (claimed, canceled) is left out of its page."""
    condition, names = "#pk = :pk", {"#pk": schema.MESSAGES_DUE_PARTITION}
    values = {}
    if token:
        condition += " AND #sk > :after"
        names["#sk"] = schema.MESSAGES_DUE_SORT
        values[":after"] = {"S": _decode_token(token, _DUE_TOKEN_FIELD)}
    queries = [{
        "TableName": store.messages_table(), "IndexName": schema.MESSAGES_DUE_INDEX,
        "KeyConditionExpression": condition, "ExpressionAttributeNames": names,
        "ExpressionAttributeValues": {**values, ":pk": {"S": f"{prefix}{shard}"}},
        "ScanIndexForward": True, "Limit": limit + 1,
    } for prefix in store.due_prefixes(test) for shard in range(schema.INDEX_SHARDS)]
    client = aws.client("dynamodb")
    shards = [((item[schema.MESSAGES_DUE_SORT]["S"], item[schema.MESSAGES_KEY]["S"])
               for item in _pages(client, params, first))
              for params, first in zip(queries, _query_shards(client, queries))]
    keys = list(itertools.islice(heapq.merge(*shards), limit + 1))
    more, keys = len(keys) > limit, keys[:limit]
    found = _get_many([message_id for _, message_id in keys])
    records = [found[message_id] for _, message_id in keys
               if message_id in found and found[message_id].get("status") == store.SCHEDULED]
    return records, (_encode_token(keys[-1][0], _DUE_TOKEN_FIELD) if more else None)


# The statuses ``GET /messages?status=`` lists by (each from an index of its own).
LISTED_STATUSES = (store.SCHEDULED,)


def listing(limit: int, token: str | None, direction: str | None = None, settings: Settings | None = None, *,
            test: bool = False, status: str | None = None) -> dict:
    """``GET /messages``: both directions newest first, or the one ``direction`` names. A stage
    without replies (no ``INBOUND_ENABLED``) has no inbound partitions to read. A test key lists what test
    keys sent, a live key everything else. ``status=scheduled``: the messages waiting for their ``sendAt``,
    soonest first (``scheduled_page``); no reply is ever scheduled."""
    settings = settings or get_settings()
    if direction is not None and direction not in store.LIST_PREFIXES:
        raise InvalidRequest("InvalidDirection", "'direction' must be 'outbound' or 'inbound'.", field="direction")
    if status is not None:
        if status not in LISTED_STATUSES:
            raise InvalidRequest("InvalidStatus", f"'status' can only be {', '.join(map(repr, LISTED_STATUSES))} "
                                 "(messages waiting for their sendAt); leave it out to list every message.",
                                 field="status")
        if direction == store.INBOUND:
            if token:
                _decode_token(token, _DUE_TOKEN_FIELD)
            return {"messages": [], "next": None}
        records, next_token = scheduled_page(limit, token, test=test)
        return {"messages": [store.public(r) for r in records], "next": next_token}
    kept = (store.OUTBOUND, store.INBOUND) if settings.inbound_enabled else (store.OUTBOUND,)
    records, next_token = page(limit, token, tuple(d for d in kept if direction in (None, d)), test=test)
    return {"messages": [store.public(r) for r in records], "next": next_token}
