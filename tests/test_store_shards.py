"""The sharded indexes (issue 11): newest-first paging stays exact across the list index's shards,
batch counts add up across the batch index's shards, and the index writes each message costs follow
DynamoDB's documented rules (tests/aws_docs/dynamodb_gsi_writes.json) and stay under its per-partition
limit at 1,000 messages a second."""
from __future__ import annotations

import base64
import json
import math
import random
import re
import time
import uuid
from collections import Counter
from pathlib import Path

import boto3
import pytest
from botocore.stub import Stubber

from .conftest import REGION, body_of, post
from chalicelib.core import aws  # noqa: E402
from chalicelib.sending import messages
from chalicelib.core import schema
from chalicelib.status import ingest as status
from chalicelib.core import pages, store
from chalicelib.sending import worker
from chalicelib.core.settings import get_settings  # noqa: E402
from chalicelib.sending.validation import Outbound  # noqa: E402

DOCS = json.loads((Path(__file__).parent / "aws_docs" / "dynamodb_gsi_writes.json").read_text())
TO = "+14155550100"


def quote(*words: str) -> str:
    """The one documented sentence holding all ``words``."""
    found = [q for source in DOCS["sources"] for q in source["quotes"] if all(w in q for w in words)]
    assert len(found) == 1, (words, found)
    return found[0]


def seeded_ids(count: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    return [str(uuid.UUID(int=rng.getrandbits(128), version=4)) for _ in range(count)]


def token_of(sort_key: str) -> str:
    return base64.urlsafe_b64encode(json.dumps({"before": sort_key}).encode()).decode().rstrip("=")


def stored(count: int, *, seed: int = 11, same_time: int = 5, **extra) -> list[dict]:
    """``count`` queued records with seeded ids, ``same_time`` of them sharing each createdAt."""
    records = []
    for i, message_id in enumerate(seeded_ids(count, seed)):
        record = messages.new_record(Outbound("sms", TO, f"n{i}"), **extra)
        record["id"] = message_id
        record["createdAt"] = record["updatedAt"] = f"2026-11-25T10:00:{i // same_time:02d}.000Z"
        records.append(record)
    store.create_many(records)
    return records


def newest_first(records: list[dict]) -> list[str]:
    return [r["id"] for r in sorted(records, key=lambda r: (r["createdAt"], r["id"]), reverse=True)]


# -- the list index ---------------------------------------------------------------------------------

@pytest.mark.parametrize("size", [1, 7, 20, 60, 100])
def test_pages_list_every_message_once_newest_first_across_the_shards(client, size):
    records = stored(60)
    assert set(Counter(store.shard_of(r["id"]) for r in records)) == set(range(schema.INDEX_SHARDS))
    seen, pages, token = [], 0, None
    while True:
        path = f"/messages?limit={size}" + (f"&next={token}" if token else "")
        page = body_of(client.http.get(path))
        pages += 1
        seen += [m["id"] for m in page["messages"]]
        token = page["next"]
        if token is None:
            break
        assert len(page["messages"]) == size  # only the last page is short
    assert seen == newest_first(records)  # none skipped, none twice, ties on createdAt ordered by id
    assert pages == math.ceil(len(records) / size)  # next is null exactly when nothing is left


def test_a_page_reads_each_shard_once_when_its_first_page_is_enough(aws_env):
    stored(40)
    calls = Counter()
    client = aws.client("dynamodb")
    client.meta.events.register("before-call.dynamodb", lambda model, **_: calls.update([model.name]))
    records, token = pages.page(5)
    assert len(records) == 5 and token
    assert calls == {"Query": schema.INDEX_SHARDS, "BatchGetItem": 1}


def test_a_page_asks_a_shard_for_more_only_when_the_merge_needs_it_and_skips_vanished_records(
        aws_env, monkeypatch):
    """A shard's Query can stop early (1 MB pages): the merge then fetches that shard's next page.
    BatchGetItem's UnprocessedKeys are asked for again; a record gone meanwhile is left out."""
    client = aws.client("dynamodb")
    monkeypatch.setattr(pages, "_query_shards", lambda c, queries: [c.query(**q) for q in queries])  # in order
    newer, older = "2026-11-25T10:00:02.000Z#m-new", "2026-11-25T10:00:01.000Z#m-old"
    shard = store.shard_of("m-new")  # both in one shard, as the merge sees it
    table = get_settings().messages_table

    def key(sort_key):
        return {"id": {"S": sort_key.split("#")[1]}, "listKey": {"S": f"messages#{shard}"}, "sortKey": {"S": sort_key}}

    with Stubber(client) as stub:
        for n in range(schema.INDEX_SHARDS):
            first = {"Items": [key(newer)], "LastEvaluatedKey": key(newer)} if n == shard else {"Items": []}
            stub.add_response("query", first)
        stub.add_response("query", {"Items": [key(older)]}, expected_params={
            "TableName": table, "IndexName": schema.MESSAGES_LIST_INDEX, "KeyConditionExpression": "#pk = :pk",
            "ExpressionAttributeNames": {"#pk": "listKey"},
            "ExpressionAttributeValues": {":pk": {"S": f"messages#{shard}"}},
            "ScanIndexForward": False, "Limit": 3, "ExclusiveStartKey": key(newer)})
        record = store.to_item({**messages.new_record(Outbound("sms", TO, "hi")), "id": "m-new"})
        keys = [{"id": {"S": "m-new"}}, {"id": {"S": "m-old"}}]
        stub.add_response("batch_get_item", {
            "Responses": {table: [record]},
            "UnprocessedKeys": {table: {"Keys": keys[1:], "ConsistentRead": True}}},
            expected_params={"RequestItems": {table: {"Keys": keys, "ConsistentRead": True}}})
        stub.add_response("batch_get_item", {"Responses": {table: []}},  # m-old expired meanwhile
                          expected_params={"RequestItems": {table: {"Keys": keys[1:], "ConsistentRead": True}}})
        records, token = pages.page(2)
        stub.assert_no_pending_responses()
    assert [r["id"] for r in records] == ["m-new"] and token is None


def replies(count: int, *, seed: int, same_time: int = 5) -> list[dict]:
    """``count`` stored replies (issue 14), sharing createdAt values with ``stored``'s records."""
    records = stored(count, seed=seed, same_time=same_time)
    client = aws.client("dynamodb")
    for record in records:  # the same records, as replies: their own list partitions
        client.delete_item(TableName=get_settings().messages_table, Key={"id": {"S": record["id"]}})
        record.update(direction=store.INBOUND, status=store.RECEIVED, **{"from": "+14255550182"})
    store.create_many(records)
    return records


@pytest.mark.parametrize("size", [1, 7, 20, 100])
@pytest.mark.parametrize("direction", [None, "outbound", "inbound"])
def test_both_directions_page_exactly_alone_and_merged(client, aws_env, size, direction):
    """Issue 14: replies list under their own partitions; a page of one direction, or of both merged,
    ends exactly where the next begins, ties on createdAt ordered by id across the directions."""
    aws_env(INBOUND_ENABLED="1")
    sent, received = stored(45, seed=11), replies(35, seed=12)
    expected = newest_first({None: sent + received, "outbound": sent, "inbound": received}[direction])
    seen, token = [], None
    while True:
        query = f"/messages?limit={size}" + (f"&direction={direction}" if direction else "") + \
            (f"&next={token}" if token else "")
        page = body_of(client.http.get(query))
        seen += [m["id"] for m in page["messages"]]
        assert {m["direction"] for m in page["messages"]} <= ({direction} if direction else {"outbound", "inbound"})
        token = page["next"]
        if token is None:
            break
        assert len(page["messages"]) == size
    assert seen == expected


def test_a_merged_page_reads_each_shard_of_each_direction_once(aws_env):
    aws_env(INBOUND_ENABLED="1")
    stored(40, seed=11)
    replies(40, seed=12)
    calls = Counter()
    aws.client("dynamodb").meta.events.register("before-call.dynamodb", lambda model, **_: calls.update([model.name]))
    records, token = pages.page(5, directions=(store.OUTBOUND, store.INBOUND))
    assert len(records) == 5 and token
    assert calls == {"Query": 2 * schema.INDEX_SHARDS, "BatchGetItem": 1}


def test_the_next_token_names_the_last_message_and_nothing_else_passes(client):
    records = stored(6)
    page = body_of(client.http.get("/messages?limit=2"))
    last = page["messages"][-1]
    padded = page["next"] + "=" * (-len(page["next"]) % 4)
    assert json.loads(base64.urlsafe_b64decode(padded)) == {"before": f"{last['createdAt']}#{last['id']}"}
    rest = body_of(client.http.get(f"/messages?limit=10&next={token_of(last['createdAt'] + '#' + last['id'])}"))
    assert [m["id"] for m in rest["messages"]] == newest_first(records)[2:] and rest["next"] is None
    old_shape = base64.urlsafe_b64encode(json.dumps(
        {"id": last["id"], "listKey": "messages", "sortKey": "x"}).encode()).decode()
    for token in (old_shape, token_of(""), token_of("not a sort key"), token_of("2026-11-25T10:00:00.000Z#"),
                  token_of("2026-11-25T10:00:00.000Z#" + "é" * 600),  # over DynamoDB's 1,024 bytes
                  token_of("2026-11-25T10:00:00.000Z#\ud800"),  # a lone surrogate: not UTF-8
                  base64.urlsafe_b64encode(b'{"before": 5}').decode(),
                  base64.urlsafe_b64encode(b'{"before": "2026-11-25T10:00:00.000Z#a", "x": 1}').decode()):
        response = client.http.get(f"/messages?next={token}")
        assert response.status_code == 400 and body_of(response)["error"]["code"] == "InvalidNext", token


def test_the_shard_of_a_message_is_a_stable_hash_of_its_id():
    # sha256("m-1") starts a461b472: the same on every machine and Python (hash() is salted per process).
    assert store.shard_of("m-1") == int("a461b472", 16) % schema.INDEX_SHARDS
    ids = seeded_ids(8000, seed=3)
    counts = Counter(store.shard_of(i) for i in ids)
    assert set(counts) == set(range(schema.INDEX_SHARDS))
    assert max(counts.values()) < 1.1 * len(ids) / schema.INDEX_SHARDS  # even


# -- the batch index -------------------------------------------------------------------------------

def test_batch_counts_add_up_across_the_shards(aws_env):
    batch = "batch-shards"
    records = stored(24, seed=5, **{schema.MESSAGES_BATCH_KEY: batch})
    assert len({store.shard_of(r["id"]) for r in records}) > 1
    ids = [r["id"] for r in records]
    for message_id in ids[:4]:
        store.transition(message_id, store.SENDING, claimedAt=time.time())  # shows as queued
    for message_id in ids[4:10]:
        store.transition(message_id, store.SENT, providerMessageId=f"p-{message_id}")
    for message_id in ids[10:13]:
        store.transition(message_id, store.FAILED, error={"code": "X", "message": "no"})
    for message_id in ids[4:7]:
        store.settle(message_id, store.DELIVERED, 1_700_000_000_000)
    store.transition(ids[0], store.QUEUED, expect=(store.SENDING,))  # a throttled claim put back
    assert pages.count_batch(batch) == {"queued": 4 + 11, "sent": 3, "delivered": 3, "failed": 3}
    assert pages.count_batch("batch-other") == {}


# -- index writes, by the documented rules ---------------------------------------------------------

def template_indexes(template) -> dict[str, dict]:
    """The messages table's indexes as synthesized: {name: {"keys": [...], "projected": set or None}}
    (None: every attribute)."""
    (table,) = [t for t in template.find_resources("AWS::DynamoDB::Table").values()
                if any(i["IndexName"] == schema.MESSAGES_PROVIDER_INDEX  # the list index's name is shared
                       for i in t["Properties"].get("GlobalSecondaryIndexes", []))]
    indexes = {}
    for index in table["Properties"]["GlobalSecondaryIndexes"]:
        keys = [k["AttributeName"] for k in index["KeySchema"]]
        projection = index["Projection"]
        projected = {"KEYS_ONLY": set(), "INCLUDE": set(projection.get("NonKeyAttributes", [])),
                     "ALL": None}[projection["ProjectionType"]]
        indexes[index["IndexName"]] = {"keys": keys, "projected": projected}
    return indexes


def test_the_local_tables_have_the_stacks_indexes(template, aws_env):
    described = boto3.client("dynamodb", region_name=REGION).describe_table(
        TableName=get_settings().messages_table)["Table"]["GlobalSecondaryIndexes"]
    local = {i["IndexName"]: {"keys": [k["AttributeName"] for k in i["KeySchema"]],
                              "projected": set(i["Projection"].get("NonKeyAttributes", []))
                              if i["Projection"]["ProjectionType"] != "ALL" else None} for i in described}
    assert local == template_indexes(template)


def named_attributes(params: dict) -> set[str]:
    names = params.get("ExpressionAttributeNames", {})
    expression = params["UpdateExpression"].removeprefix("SET ")
    return {names.get(token, token) for token in re.findall(r"[#:]?\w+", expression) if not token.startswith(":")}


def index_writes(calls: list[tuple[str, dict]], indexes: dict) -> dict[str, Counter]:
    """Index writes per message, by the documented rules: a new item that defines an index's keys is
    one write; an update that names a projected attribute (or, with every attribute projected, any
    attribute) is one; one that names an index key attribute fails the test, since a changed key is
    two writes and these keys are meant never to change."""
    writes = {name: Counter() for name in indexes}
    created: dict[str, dict] = {}
    for operation, params in calls:
        items = [params["Item"]] if operation == "PutItem" else [
            r["PutRequest"]["Item"] for rs in params.get("RequestItems", {}).values() for r in rs
            if "PutRequest" in r] if operation == "BatchWriteItem" else []
        for item in items:
            message_id = item["id"]["S"]
            created[message_id] = item
            for name, index in indexes.items():
                if all(k in item for k in index["keys"]):
                    writes[name][message_id] += 1
        if operation == "UpdateItem" and params["TableName"] == get_settings().messages_table:
            message_id = params["Key"]["id"]["S"]
            named = named_attributes(params)
            for name, index in indexes.items():
                if name == schema.MESSAGES_PROVIDER_INDEX:
                    continue  # its key is set once, by the outcome write, unique per message
                assert not named & set(index["keys"]), (name, params["UpdateExpression"])
                in_index = all(k in created.get(message_id, {}) for k in index["keys"])
                if in_index and (index["projected"] is None or named & index["projected"]):
                    writes[name][message_id] += 1
    return writes


def test_each_message_writes_the_list_index_once_and_the_claim_writes_no_index(client, template):
    """Grounded in the documented rules (quoted) and the synthesized indexes: the list index is keys
    only and written once per message; the batch index is written when the status the API shows
    changes, never by the worker's claim."""
    assert all(s["url"].startswith(("https://docs.aws.amazon.com/", "https://aws.amazon.com/blogs/"))
               for s in DOCS["sources"]) and DOCS["retrieved"]
    quote("two writes are required", "from A to B")
    quote("does not require a global secondary index update", "no write capacity is consumed")
    quote("only changes the value of projected attributes", "one write is required")
    indexes = template_indexes(template)
    assert indexes[schema.MESSAGES_LIST_INDEX] == {"keys": ["listKey", "sortKey"], "projected": set()}
    assert indexes[schema.MESSAGES_BATCH_INDEX] == {"keys": ["batchShard"], "projected": {"shown"}}

    calls: list[tuple[str, dict]] = []
    claims: list[dict] = []

    def record(params, model, **_):
        calls.append((model.name, json.loads(json.dumps(params))))
        values = params.get("ExpressionAttributeValues", {})
        if model.name == "UpdateItem" and values.get(":status") == {"S": store.SENDING}:
            claims.append(params)

    aws.client("dynamodb").meta.events.register("provide-client-params.dynamodb", record)
    single = body_of(post(client, "/sms", {"to": TO, "body": "one"}))
    batch = body_of(post(client, "/batches", {"messages": [{"to": f"+1415555010{i}", "body": "b"} for i in range(3)]}))
    sqs = boto3.client("sqs", region_name=REGION)
    got = sqs.receive_message(QueueUrl=get_settings().batch_queue_url, MaxNumberOfMessages=10,
                              AttributeNames=["All"])["Messages"]
    event = {"Records": [{"messageId": m["MessageId"], "receiptHandle": m["ReceiptHandle"], "body": m["Body"],
                          "attributes": {"ApproximateReceiveCount": "1"}} for m in got]}
    assert worker.handle(event, settings=get_settings(), pacer=worker.TokenBucket(1000)) == {"batchItemFailures": []}
    batch_ids = [json.loads(m["Body"])["messageId"] for m in got]
    for n, message_id in enumerate([single["id"], *batch_ids]):
        record_now = store.get(message_id)
        outcome = status.apply(status.Receipt(record_now["providerMessageId"], store.DELIVERED, 1_700_000_000_000 + n,
                                              0.00581, "SUCCESS: delivered"))
        assert outcome == "applied"
    assert body_of(client.http.get(f"/batches/{batch['id']}"))["delivered"] == 3

    assert len(claims) == 3 and all(schema.MESSAGES_SHOWN not in named_attributes(c) for c in claims)
    writes = index_writes(calls, indexes)
    everyone = [single["id"], *batch_ids]
    assert {m: writes[schema.MESSAGES_LIST_INDEX][m] for m in everyone} == {m: 1 for m in everyone}
    # Created queued, then sent, then delivered: three, whatever the claim did in between.
    assert {m: writes[schema.MESSAGES_BATCH_INDEX][m] for m in batch_ids} == {m: 3 for m in batch_ids}
    assert writes[schema.MESSAGES_BATCH_INDEX][single["id"]] == 0  # not in a batch, not in the index
    for message_id in everyone:  # what the batch index holds is what the API shows
        item = boto3.client("dynamodb", region_name=REGION).get_item(
            TableName=get_settings().messages_table, Key={"id": {"S": message_id}})["Item"]
        assert item["shown"]["S"] == store.shown_status(item["status"]["S"]) == "delivered"

    # At 1,000 messages a second, the hottest key of each index stays under what one partition takes.
    limit = int(re.search(r"([\d,]+) write units per second", quote("every partition", "write units per second"))
                .group(1).replace(",", ""))
    assert limit == 1000
    second = Counter(store.shard_of(i) for i in seeded_ids(1000, seed=7))  # one second of messages
    hottest = max(second.values())  # messages on the busiest shard in that second
    assert hottest < 1000 / schema.INDEX_SHARDS * 1.3
    assert hottest * max(writes[schema.MESSAGES_LIST_INDEX].values()) < limit
    # Even a 1,000-message batch created, sent and settled within one second.
    assert hottest * max(writes[schema.MESSAGES_BATCH_INDEX].values()) < limit
