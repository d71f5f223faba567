"""The local stack's DynamoDB transactions (devstack/transactions.py) against moto's own, and against AWS's word.

- The same sequences of ``TransactWriteItems`` calls, run once with moto's ``transact_write_items`` and once with
  the local stack's, leave the same items (the tables', an index's, moto's own partitions), the same stream
  records (ids, sequence numbers, images) and give the same answers, errors and cancellation reasons: a table of
  cases (puts, updates, deletes and condition checks failing in the first, middle and last operation; errors
  after writes; an update that fails after writing half of itself; two operations on one item; more than 100
  operations), on a table with a sort key, a global secondary index and a stream, one without a sort key with a
  stream, and one with a number key and no stream.
- A cancelled transaction writes nothing and emits no stream record: "The actions are completed atomically so
  that either all of them succeed, or all of them fail" (botocore's model of TransactWriteItems), stream records
  only "after the transaction completes successfully" (the Developer Guide). The quotes are
  tests/aws_docs/dynamodb-transactions-atomicity.json; the ones from the API reference are found in botocore's
  model. Where moto's method leaves writes behind (an item with two operations, a table named by its ARN),
  the local stack's does not; and a cancelled transaction does not put an item back over another one's commit,
  nor over a write another request made meanwhile.
- The cost is per item: a transaction copies as many objects (counted ``copy.deepcopy`` calls) on a table of
  2,000 items as on one of 200, where moto's method copies the table.
"""
from __future__ import annotations

import contextlib
import copy
import json
import re
import threading
from datetime import datetime
from pathlib import Path
from unittest import mock

import boto3
import pytest
from botocore.exceptions import ClientError
from botocore.loaders import Loader
from moto import mock_aws
from moto.core import DEFAULT_ACCOUNT_ID
from moto.dynamodb.models import DynamoDBBackend, dynamodb_backends
from moto.dynamodb.models import table as moto_table
from moto.dynamodb.models.dynamo_type import DynamoType
from moto.moto_api._internal import mock_random

from devstack import transactions
from devstack.emulator import Emulator

REGION = "us-east-1"
DOCS = json.loads((Path(__file__).parent / "aws_docs" / "dynamodb-transactions-atomicity.json").read_text())
MOTO = transactions.MOTO_TRANSACT_WRITE_ITEMS
LOCAL = transactions.transact_write_items
CLOCK = datetime(2026, 12, 6, 12, 0)  # (naive UTC, as moto's utcnow) moto's clock in both runs: the same stream records
BIG = "x" * 250_000  # two of these make an item over DynamoDB's 400 KB

# Three tables: a sort key, a global secondary index and a stream of both images; no sort key and a stream of
# new images; a number key and no stream.
TABLES = {
    "sorted": dict(
        AttributeDefinitions=[{"AttributeName": name, "AttributeType": "S"} for name in ("pk", "sk", "g")],
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
        GlobalSecondaryIndexes=[{"IndexName": "by-g", "Projection": {"ProjectionType": "ALL"},
                                 "KeySchema": [{"AttributeName": "g", "KeyType": "HASH"},
                                               {"AttributeName": "sk", "KeyType": "RANGE"}]}],
        StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"}),
    "plain": dict(
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_IMAGE"}),
    "numbered": dict(
        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "N"}],
        KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}]),
}
SEED_ITEMS = {
    "sorted": [{"pk": {"S": "a"}, "sk": {"S": "1"}, "v": {"S": "x"}, "g": {"S": "g1"}, "n": {"N": "1"}},
               {"pk": {"S": "a"}, "sk": {"S": "2"}, "v": {"S": "y"}},
               {"pk": {"S": "b"}, "sk": {"S": "1"}, "g": {"S": "g2"}}],
    "plain": [{"pk": {"S": "a"}, "v": {"S": "x"}}, {"pk": {"S": "b"}, "n": {"N": "5"}}],
    "numbered": [{"id": {"N": "1"}, "v": {"S": "x"}}],
}


def key(table: str, pk: str = "a", sk: str = "1") -> dict:
    if table == "numbered":
        return {"id": {"N": {"a": "1", "b": "2", "c": "3"}.get(pk, pk)}}
    return {"pk": {"S": pk}, **({"sk": {"S": sk}} if table == "sorted" else {})}


def put(table, pk="a", sk="1", condition=None, **attrs):
    item = {**key(table, pk, sk), **{name: {"S": value} for name, value in attrs.items()}}
    return {"Put": {"TableName": table, "Item": item, **(condition or {})}}


def update(table, pk="a", sk="1", expression="SET #v = :v", condition=None, values=None):
    op = {"TableName": table, "Key": key(table, pk, sk), "UpdateExpression": expression}
    names = {name: name[1:] for name in re.findall(r"#\w+", expression)}  # #v is v
    values = {**({":v": {"S": "new"}} if ":v" in expression else {}), **(values or {})}
    op.update({"ExpressionAttributeNames": names} if names else {})
    op.update({"ExpressionAttributeValues": values} if values else {})
    for name, value in (condition or {}).items():
        if isinstance(value, dict):  # the condition's names and values, with the expression's
            op.setdefault(name, {}).update(value)
        else:
            op[name] = value
    return {"Update": op}


def delete(table, pk="a", sk="1", condition=None):
    return {"Delete": {"TableName": table, "Key": key(table, pk, sk), **(condition or {})}}


def check(table, pk="a", sk="1", condition=None):
    return {"ConditionCheck": {"TableName": table, "Key": key(table, pk, sk), **(condition or EXISTS)}}


EXISTS = {"ConditionExpression": "attribute_exists(#k)", "ExpressionAttributeNames": {"#k": "pk"}}
ABSENT = {"ConditionExpression": "attribute_not_exists(#k)", "ExpressionAttributeNames": {"#k": "pk"}}
ABSENT_ALL_OLD = {**ABSENT, "ReturnValuesOnConditionCheckFailure": "ALL_OLD"}


def numbered(condition: dict) -> dict:
    return {**condition, "ExpressionAttributeNames": {"#k": "id"}}


# -- one run ------------------------------------------------------------------------------------------------
def items_of(table) -> dict:
    """moto's own partitions of a table, empty ones too: {hash: item} or {hash: {range: item}}."""
    def image(item):
        return item.to_json()["Attributes"]

    if table.range_key_attr is None:
        return {repr(h): image(item) for h, item in table.items.items()}
    return {repr(h): {repr(r): image(item) for r, item in part.items()} for h, part in table.items.items()}


def stored(backend) -> dict:
    """Everything a write can change in moto: each table's partitions and its stream records."""
    return {name: {"items": items_of(table),
                   "stream": [r.to_json() for r in table.stream_shard.items] if table.stream_shard else None}
            for name, table in backend.tables.items()}


def seen(client, streams) -> dict:
    """What a client reads back: each table's items and item count, the index's items, the stream's records."""
    out = {}
    for name, spec in TABLES.items():
        table = {"items": client.scan(TableName=name, ConsistentRead=True)["Items"],
                 "count": client.describe_table(TableName=name)["Table"]["ItemCount"]}
        for index in spec.get("GlobalSecondaryIndexes", []):
            table[index["IndexName"]] = client.scan(TableName=name, IndexName=index["IndexName"])["Items"]
        arn = client.describe_table(TableName=name)["Table"].get("LatestStreamArn")
        if arn:
            shard = streams.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"][0]["ShardId"]
            iterator = streams.get_shard_iterator(StreamArn=arn, ShardId=shard,
                                                  ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
            table["stream"] = streams.get_records(ShardIterator=iterator, Limit=1000)["Records"]
        out[name] = table
    return out


def outcome(call) -> object:
    try:
        call()
    except ClientError as error:
        return error.response["Error"]["Code"], error.response["Error"]["Message"], \
            error.response.get("CancellationReasons")
    return "ok"


@contextlib.contextmanager
def account(method):
    """A fresh moto account whose DynamoDB runs ``method`` for TransactWriteItems, with the three tables and
    their first items; moto's clock and random numbers fixed, so that two runs can be compared record for record."""
    with mock.patch.object(DynamoDBBackend, "transact_write_items", method), \
            mock.patch.object(moto_table, "utcnow", lambda: CLOCK), mock_aws():
        mock_random.seed(20261206)
        client = boto3.client("dynamodb", region_name=REGION)
        for name, spec in TABLES.items():
            client.create_table(TableName=name, BillingMode="PAY_PER_REQUEST", **spec)
            for item in SEED_ITEMS[name]:
                client.put_item(TableName=name, Item=item)
        # The streams endpoint moto 5.2.5 answers in-process (botocore now signs stream calls to an account's own).
        streams = boto3.client("dynamodbstreams", region_name=REGION,
                               endpoint_url=f"https://streams.dynamodb.{REGION}.amazonaws.com")
        yield client, streams, dynamodb_backends[DEFAULT_ACCOUNT_ID][REGION]


def run(method, sequence: list[list[dict]]) -> tuple[list, list, dict]:
    """Each transaction of ``sequence`` in turn: (the answers, what moto holds after each, what a client reads
    after the last). Checks on the way that each cancelled transaction left moto's state, and what a client
    reads (items, index, item count, stream records), as it found them."""
    answers, states = [], []
    with account(method) as (client, streams, backend):
        for items in sequence:
            before, read_before = stored(backend), seen(client, streams)
            answers.append(outcome(lambda: client.transact_write_items(TransactItems=items)))
            states.append(stored(backend))
            if answers[-1] != "ok":
                assert states[-1] == before, f"a cancelled transaction changed something: {answers[-1]}"
                assert seen(client, streams) == read_before, f"a cancelled transaction was seen: {answers[-1]}"
        return answers, states, seen(client, streams)


def same_as_moto(sequence: list[list[dict]]) -> list:
    moto_run, local_run = run(MOTO, sequence), run(LOCAL, sequence)
    assert local_run[0] == moto_run[0]  # the answers
    assert local_run[1] == moto_run[1]  # moto's state after each transaction
    assert local_run[2] == moto_run[2]  # what a client reads back
    return local_run[0]


def cancelled(*codes) -> tuple:
    return "TransactionCanceledException", [{"Code": c} if c == "None" else c for c in codes]


# -- a table of cases ---------------------------------------------------------------------------------------
GROW = update("sorted", "c", "9", "SET #a = :big, #b = :big", values={":big": {"S": BIG}})
FIRST_FAILS = [put("sorted", "a", "1", ABSENT_ALL_OLD, v="p"), update("plain", "a"), delete("sorted", "a", "2")]
CASES = {  # each a sequence of transactions in one account
    "commits, and a condition failing first, in the middle, last, in several": [
        [put("sorted", "c", "1", v="p", g="g1"), update("plain", "a"), delete("sorted", "a", "2"),
         check("plain", "b"), update("numbered", "c", expression="SET #v = :v")],
        FIRST_FAILS,
        [put("sorted", "c", "2", v="p", g="g2"), check("plain", "z"),
         update("sorted", "a", "1", "SET #g = :g", values={":g": {"S": "g3"}})],
        [update("sorted", "b", "1", "ADD #n :one", values={":one": {"N": "1"}}), delete("plain", "a"),
         put("sorted", "z", "7", v="p"), delete("numbered", "a", condition=numbered(ABSENT))],
        [check("plain", "z"), put("plain", "c", v="p"), delete("sorted", "a", "1", ABSENT_ALL_OLD)],
        [update("sorted", "c", "1", "REMOVE #v"), put("plain", "b", v="back"), delete("numbered", "a")],
        [delete("sorted", "c", "1", EXISTS), delete("sorted", "c", "2", EXISTS)],
    ],
    "errors after writes: a key of the wrong type, an item without its sort key, an update of a key, "
    "a table that does not exist": [
        [put("plain", "c", v="p"), delete("sorted", "a", "2"),
         {"Put": {"TableName": "plain", "Item": {"pk": {"N": "1"}}}}],
        [put("plain", "c", v="p"), {"Put": {"TableName": "sorted", "Item": {"pk": {"S": "q"}}}}],
        [put("plain", "c", v="p"), update("sorted", "a", "1", "SET #pk = :v")],
        [put("plain", "c", v="p"), check("nowhere", "a")],
    ],
    "an update that grows past 400 KB half way, of a new item and of an item": [
        [put("plain", "c", v="p"), GROW],
        [put("sorted", "c", "9", v="p"), update("plain", "a")],
        [update("plain", "b"), GROW],
    ],
    "two operations on one item, more than 100 operations": [
        [put("sorted", "c", "1", v="p"), update("plain", "a"), check("sorted", "c", "1", ABSENT)],
        [put("plain", f"p{i}", v="p") for i in range(101)],
    ],
}
EXPECTED = {  # what moto answers each case's transactions, as (code, cancellation reasons) or "ok"
    "commits, and a condition failing first, in the middle, last, in several": [
        "ok",
        cancelled("ConditionalCheckFailed", "None", "None"),
        cancelled("None", "ConditionalCheckFailed", "None"),
        cancelled("None", "None", "None", "ConditionalCheckFailed"),
        cancelled("ConditionalCheckFailed", "None", "ConditionalCheckFailed"),
        "ok",
        cancelled("None", "ConditionalCheckFailed"),
    ],
    "errors after writes: a key of the wrong type, an item without its sort key, an update of a key, "
    "a table that does not exist": [("ValidationException", None), cancelled("None", "KeyError"),
                                    ("ValidationException", None), cancelled("None", "ResourceNotFoundException")],
    "an update that grows past 400 KB half way, of a new item and of an item": [
        ("ValidationException", None), "ok", ("ValidationException", None)],
    "two operations on one item, more than 100 operations": [("ValidationException", None)] * 2,
}


def summary(answer):
    if answer == "ok":
        return answer
    code, _, reasons = answer
    if reasons is None:
        return code, None
    return code, [{"Code": r["Code"]} if r["Code"] == "None" else r["Code"] for r in reasons]


@pytest.mark.parametrize("name", list(CASES))
def test_each_case_ends_as_with_moto_s_own_method_and_a_cancelled_transaction_writes_nothing(name):
    """The same answers and state as moto's method; and (``run``) a client reads back after a cancelled
    transaction what it read before, its stream included: "either all of them succeed, or all of them fail",
    stream records only "after the transaction completes successfully"."""
    assert quote("all of them fail") and quote("after the transaction completes successfully")
    answers = same_as_moto(CASES[name])
    assert [summary(a) for a in answers] == EXPECTED[name]  # the case does what its name says


def test_a_failed_condition_returns_the_item_as_it_was_with_all_old():
    (answer,) = run(LOCAL, [FIRST_FAILS])[0]
    assert answer[2][0]["Item"] == {"pk": {"S": "a"}, "sk": {"S": "1"}, "v": {"S": "x"}, "g": {"S": "g1"},
                                    "n": {"N": "1"}}


def test_the_half_written_update_did_write_before_it_failed():
    """The 400 KB case is worth its name: moto's update puts the new item's key (and its stream record) and
    sets the first attribute before it fails, so there is something to roll back."""
    with account(LOCAL) as (client, _, backend), mock.patch.object(transactions.Journal, "undo", lambda self: None):
        table = backend.tables["sorted"]
        records = len(table.stream_shard.items)
        assert outcome(lambda: client.transact_write_items(TransactItems=[GROW]))[0] == "ValidationException"
        (written,) = table.items[DynamoType({"S": "c"})].values()
        assert written.attrs["a"].value == BIG and "b" not in written.attrs
        (record,) = table.stream_shard.items[records:]
        assert record.record["dynamodb"]["Keys"] == {"pk": {"S": "c"}, "sk": {"S": "9"}}


# -- AWS's word -----------------------------------------------------------------------------------------------
def botocore_text() -> str:
    model = Loader().load_service_model("dynamodb", "service-2")
    text = " ".join([model["operations"]["TransactWriteItems"]["documentation"],
                     model["shapes"]["TransactionCanceledException"]["documentation"]])
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", "", text))


def test_the_api_reference_quotes_are_in_botocore_s_model():
    text = botocore_text()
    quoted = [q for source in DOCS["sources"] if source["in_botocore_model"] for q in source["quotes"]]
    assert quoted and all(source["url"].startswith("https://docs.aws.amazon.com/") for source in DOCS["sources"])
    for quote in quoted:
        assert quote in text


def quote(fragment: str) -> str:
    (found,) = [q for source in DOCS["sources"] for q in source["quotes"] if fragment in q]
    return found


def test_where_moto_s_method_leaves_writes_the_local_one_does_not():
    """An item with two operations is rejected, and a transaction with a table named by its ARN is cancelled:
    moto's method leaves the operations before written (it raises the first without putting its copies back,
    and copies only the tables named by their name); AWS's all-or-nothing does not, nor the local stack's."""
    assert quote("all of them fail")
    two = {"Put": put("plain", "d", v="p")["Put"], "Delete": delete("plain", "a")["Delete"]}
    for method, kept in ((MOTO, True), (LOCAL, False)):
        with account(method) as (client, streams, _):
            before = seen(client, streams)
            answer = outcome(lambda: client.transact_write_items(TransactItems=[put("plain", "c", v="p"), two]))
            assert answer[:2] == ("ValidationException",
                                  "TransactItems can only contain one of Check, Put, Update or Delete")
            assert (seen(client, streams) != before) is kept
            before = seen(client, streams)
            arn = client.describe_table(TableName="plain")["Table"]["TableArn"]
            by_arn = [{"Put": {**put("plain", "e", v="p")["Put"], "TableName": arn}}, check("sorted", "z")]
            assert summary(outcome(lambda: client.transact_write_items(TransactItems=by_arn))) == \
                cancelled("None", "ConditionalCheckFailed")
            assert (seen(client, streams) != before) is kept


def while_a_transaction_is_cancelled(monkeypatch, client, backend, request):
    """A transaction that puts item a of "plain" and is then cancelled (its check of z fails). Right after its
    put, ``request()`` starts in another thread, and the transaction goes on once that thread has finished or is
    waiting for the transactions' lock. Returns the transaction's outcome and what ``request`` returned."""
    lock, reached, other = transactions._LOCK, threading.Event(), {}

    class Watched:  # the lock, which says when the other thread reaches it
        def __enter__(self):
            if threading.current_thread() is other.get("thread"):
                reached.set()
            return lock.__enter__()

        def __exit__(self, *exc):
            return lock.__exit__(*exc)

    monkeypatch.setattr(transactions, "_LOCK", Watched())
    real_put = backend.put_item

    def run_request():
        other["answer"] = request()
        reached.set()

    def put_then_another_request(*args, **kwargs):
        written = real_put(*args, **kwargs)
        if "thread" not in other:
            other["thread"] = threading.Thread(target=run_request)
            other["thread"].start()
            reached.wait()  # until the request has ended, or waits for the transaction
        return written

    with mock.patch.object(backend, "put_item", put_then_another_request):
        first = outcome(lambda: client.transact_write_items(TransactItems=[put("plain", "a", v="A"),
                                                                           check("plain", "z")]))
    other["thread"].join()
    return first, other.get("answer")


def test_a_cancelled_transaction_never_puts_back_over_another_s_commit(monkeypatch):
    """Transactions run one at a time. B, sent while A holds an item A will not keep, commits after A has put
    the item back, and B's write stays, its stream record too (moto's method, with no lock, put A's copy of the
    whole table back over B's commit). A goes on once B has committed or is waiting for the lock."""
    with account(LOCAL) as (client, streams, backend):
        first, second = while_a_transaction_is_cancelled(monkeypatch, client, backend, lambda: outcome(
            lambda: client.transact_write_items(TransactItems=[update("plain", "a")])))
        assert summary(first) == cancelled("None", "ConditionalCheckFailed") and second == "ok"
        after = seen(client, streams)["plain"]
        assert {"pk": {"S": "a"}, "v": {"S": "new"}} in after["items"]
        assert after["stream"][-1]["dynamodb"]["NewImage"] == {"pk": {"S": "a"}, "v": {"S": "new"}}
        assert all(r["dynamodb"]["NewImage"].get("v") != {"S": "A"} for r in after["stream"])


def test_a_write_from_another_request_during_a_cancelled_transaction_stays(monkeypatch):
    """Another request's PutItem (another item of a table the transaction writes), sent while the transaction
    runs, waits for it to end, and stays with its stream record after the transaction is cancelled (the
    transaction cuts its table's stream back; moto's method put its copy of the whole table back over both)."""
    with account(LOCAL) as (client, streams, backend):
        first, _ = while_a_transaction_is_cancelled(monkeypatch, client, backend, lambda: client.put_item(
            TableName="plain", Item={"pk": {"S": "f"}, "v": {"S": "other"}}))
        assert summary(first) == cancelled("None", "ConditionalCheckFailed")
        after = seen(client, streams)["plain"]
        assert {"pk": {"S": "f"}, "v": {"S": "other"}} in after["items"]
        assert {"pk": {"S": "a"}, "v": {"S": "x"}} in after["items"]
        assert after["stream"][-1]["dynamodb"]["NewImage"] == {"pk": {"S": "f"}, "v": {"S": "other"}}

# -- cost ---------------------------------------------------------------------------------------------------
def commit(client):
    client.transact_write_items(TransactItems=[put("sorted", "m0", "0", v="new"), update("sorted", "m1", "1"),
                                               delete("sorted", "m2", "2"), put("sorted", "n", "1", v="p")])


def cancel(client):
    assert outcome(lambda: client.transact_write_items(TransactItems=[
        put("sorted", "m3", "0", v="new"), update("sorted", "m4", "1"), check("sorted", "z", "1")])) != "ok"


def copies(size: int, method=LOCAL) -> tuple[int, int]:
    """``copy.deepcopy`` calls (each object copied is one) during a committed and a cancelled transaction on a
    table of ``size`` items with a sort key, an index and a stream."""
    with account(method) as (client, _, backend):
        table = backend.tables["sorted"]
        for i in range(size):
            table.put_item({"pk": {"S": f"m{i // 10}"}, "sk": {"S": str(i % 10)}, "g": {"S": f"g{i % 7}"},
                            "v": {"S": "x" * 20}})
        size = len(table)
        real, calls = copy.deepcopy, [0]

        def counting(*args, **kwargs):
            calls[0] += 1
            return real(*args, **kwargs)

        def count(transact) -> int:
            calls[0] = 0
            with mock.patch.object(copy, "deepcopy", counting):
                transact(client)
            assert len(backend.tables["sorted"]) == size  # (as many put as deleted)
            return calls[0]

        return count(commit), count(cancel)


def test_a_transaction_copies_the_items_it_touches_not_the_table():
    """As many copies on a table of 2,000 items as on one of 200 with the local stack's method; more than the
    table's items with moto's (the measure sees a table copied)."""
    small = copies(200)
    assert small == copies(2_000) and all(small)
    assert copies(200, MOTO)[1] > 200


# -- the local stack ----------------------------------------------------------------------------------------
def test_the_local_stack_runs_its_own_transactions(monkeypatch):
    monkeypatch.setattr(DynamoDBBackend, "transact_write_items", MOTO)  # put back after the test
    Emulator()
    assert DynamoDBBackend.transact_write_items is LOCAL


def test_moto_s_method_is_the_one_the_local_stack_s_follows():
    """A moto upgrade that changes ``transact_write_items`` fails here: re-read moto's method against
    devstack/transactions.py, then update ``MOTO_SOURCE_SHA256``. Until then the local stack keeps moto's."""
    assert transactions.moto_source_sha256() == transactions.MOTO_SOURCE_SHA256


def test_another_moto_s_method_is_kept(monkeypatch, caplog):
    monkeypatch.setattr(DynamoDBBackend, "transact_write_items", MOTO)
    monkeypatch.setattr(transactions, "MOTO_SOURCE_SHA256", "another")
    assert transactions.install() is False
    assert DynamoDBBackend.transact_write_items is MOTO
    assert "kept moto's" in caplog.text
