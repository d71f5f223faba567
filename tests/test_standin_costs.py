"""The local stack's GetRecords and ReceiveMessage (devstack/motocosts.py) against moto's own, and their cost.

- ``GetRecords``: the same stream records, answered through moto's serializer and through the local stack's
  (``serialized``, which writes DynamoDB's answers too), give the same answer: status, headers, body (as JSON) and what botocore parses from it, page after page, for records with
  every kind of DynamoDB value (nested maps and lists, binary values and sets, empty strings, lists and maps,
  text outside ASCII), inserts, updates and removes, on a stream of both images and one of keys only; and the
  same error for an iterator moto does not know. A value moto's records do not usually hold (a key the model
  does not have, a None) goes through moto's serializer, and the answer is still moto's. What it writes is
  in botocore's model of the answer (every key a member of its shape, binary values in base64).
- ``ReceiveMessage``: the retention check decides as moto's does, on either side of the retention period, and a
  receive from a queue holding an expired message hands out the same messages as moto's.
- The dispatcher's backend for a host: the same backend as moto's dispatcher finds, for the host of every moto
  service and the hosts it finds none for, asked once and again; bounded.
- DynamoDB's answers: the same calls, answered through moto's serializer and through the local stack's, give
  the same answer (status, headers, body as JSON) for every operation the app makes and the table's own: items
  with every kind of value, put, read, updated (each ``ReturnValues``), deleted, queried on the table and on an
  index (a page of it too), scanned, read and written in batches and transactions, and a refused condition
  with the item it returns (moto adds ``ConsumedCapacity``, a float, to most). An answer with a member the model
  does not have (moto's ``ConsumedCapacityUnits``) goes through moto's serializer.
- A KMS key's private key: a symmetric key encrypts and decrypts as moto's does, and answers a private-key
  operation (GetPublicKey, Sign) as moto's does, its RSA key made then; an RSA or ECC key gets moto's at once.
- The cost: a GetRecords of 25 records looks as few values up in moto's serializer as one of 10 (moto's looks
  up each value of each record), and a receive computes none of the queue's attributes (moto's computes them
  all, counting the queue's messages, for each message it hands out); the dispatcher lists moto's package
  folders once per host, where moto's lists them for every request.
"""
from __future__ import annotations

import base64
import contextlib
import json
from datetime import datetime, timezone
from unittest import mock

import boto3
import botocore.session
import pytest
from moto import mock_aws
from moto.core import DEFAULT_ACCOUNT_ID
from moto.core import serialize as moto_serialize
from moto.dynamodb.models import table as moto_table
from moto import backends as moto_backends
from moto.dynamodb.responses import DynamoHandler
from moto.dynamodbstreams.responses import DynamoDBStreamsHandler
from moto.kms import models as kms_models
from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app
from moto.sqs import models as sqs_models

from devstack import motocosts
from devstack.emulator import Emulator

REGION = "us-east-1"
CLOCK = datetime(2026, 12, 6, 12, 0, 0, 123456)  # naive UTC, as moto's utcnow: with microseconds, cut to ms
STREAMS_ENDPOINT = f"https://streams.dynamodb.{REGION}.amazonaws.com"  # moto 5.2.5 answers it in-process
MOTO_CHECK, LOCAL_CHECK = motocosts.MOTO_RETENTION_CHECK, motocosts.is_message_valid_based_on_retention_period
MOTO_BACKEND, LOCAL_BACKEND = motocosts.MOTO_BACKEND_FOR_HOST, motocosts.get_backend_for_host
MOTO_KEY, LOCAL_KEY = motocosts.MOTO_PRIVATE_KEY, motocosts.generate_private_key
MOTO_SERIALIZED, LOCAL_SERIALIZED = motocosts.MOTO_SERIALIZED, motocosts.serialized

# Every kind of AttributeValue, nested, and the edge values: empty string, list and map, text outside ASCII
# (a line separator among it, which JSON writes escaped), a binary value of every byte.
EVERY_KIND = {
    "s": {"S": "é\u2028✓"}, "empty": {"S": ""}, "n": {"N": "-1.50E+10"}, "big": {"N": "9" * 38},
    "b": {"B": bytes(range(256))}, "bs": {"BS": [b"\x00", b"\xff"]}, "ss": {"SS": ["x", "y"]}, "ns": {"NS": ["1", "2"]},
    "t": {"BOOL": True}, "f": {"BOOL": False}, "nul": {"NULL": True}, "l0": {"L": []}, "m0": {"M": {}},
    "m": {"M": {"B": {"S": "a map key named B"}, "bb": {"B": b"q"},
                "l": {"L": [{"N": "3"}, {"B": b"z"}, {"BS": [b"y"]}, {"M": {"deep": {"NULL": True}}}]}}},
}


def _answers(client, log: list) -> None:
    """Keep each raw GetRecords answer ``client`` gets: (status, headers, body)."""
    def keep(http_response, **_):
        log.append((http_response.status_code, dict(http_response.headers), http_response.content))
    client.meta.events.register("after-call.dynamodbstreams.GetRecords", keep)


@contextlib.contextmanager
def stream_account():
    """A fresh account with two tables and their streams (both images; keys only), holding inserts, updates and a
    remove of items with every kind of value; moto's clock fixed. Yields (streams client, raw answers,
    {table: (stream arn, shard id)})."""
    with mock.patch.object(moto_table, "utcnow", lambda: CLOCK), mock_aws():
        dynamodb = boto3.client("dynamodb", region_name=REGION)
        streams = boto3.client("dynamodbstreams", region_name=REGION, endpoint_url=STREAMS_ENDPOINT)
        raw: list = []
        _answers(streams, raw)
        shards = {}
        for name, view in (("both", "NEW_AND_OLD_IMAGES"), ("keys", "KEYS_ONLY")):
            dynamodb.create_table(
                TableName=name, BillingMode="PAY_PER_REQUEST",
                AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"},
                                      {"AttributeName": "sk", "AttributeType": "B"}],
                KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
                StreamSpecification={"StreamEnabled": True, "StreamViewType": view})
            for i in range(12):
                key = {"pk": {"S": f"item {i}"}, "sk": {"B": bytes([i, 255])}}
                dynamodb.put_item(TableName=name, Item={**key, **EVERY_KIND})
                dynamodb.update_item(TableName=name, Key=key, UpdateExpression="SET n = n + :one, added = :b",
                                     ExpressionAttributeValues={":one": {"N": "1"}, ":b": {"B": b"\x01"}})
            dynamodb.delete_item(TableName=name, Key={"pk": {"S": "item 3"}, "sk": {"B": bytes([3, 255])}})
            arn = dynamodb.describe_table(TableName=name)["Table"]["LatestStreamArn"]
            shards[name] = (arn, streams.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"][0]["ShardId"])
        yield streams, raw, shards


def read_stream(streams, raw, arn, shard, limit, method, pages=4) -> list:
    """Up to ``pages`` GetRecords answers from the stream's start with ``method`` as the handler's: for each,
    (status, headers without the request's own, body as JSON without the iterator, what botocore parsed
    without the iterator and metadata)."""
    out = []
    with mock.patch.object(DynamoDBStreamsHandler, "serialized", method):
        iterator = streams.get_shard_iterator(StreamArn=arn, ShardId=shard,
                                              ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
        for _ in range(pages):
            parsed = streams.get_records(ShardIterator=iterator, **({} if limit is None else {"Limit": limit}))
            status, headers, body = raw[-1]
            iterator = parsed.pop("NextShardIterator")
            parsed.pop("ResponseMetadata")
            body = json.loads(body)
            assert body.pop("NextShardIterator") == iterator
            headers = {k.lower(): v for k, v in headers.items() if k.lower() not in ("x-amzn-requestid", "date")}
            out.append((status, headers, body, parsed))
    return out


# -- GetRecords ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("limit", [None, 1, 7, 1000])
def test_get_records_answers_as_moto_does(limit):
    with stream_account() as (streams, raw, shards):
        for arn, shard in shards.values():
            moto_pages = read_stream(streams, raw, arn, shard, limit, MOTO_SERIALIZED)
            local_pages = read_stream(streams, raw, arn, shard, limit, LOCAL_SERIALIZED)
            assert local_pages == moto_pages
            assert sum(len(page[2]["Records"]) for page in local_pages) == min(4 * (limit or 1000), 25)


def test_the_records_hold_every_kind_of_value_the_test_means_them_to():
    """The comparison above is worth what the records hold: both images, every kind of value, all three events."""
    with stream_account() as (streams, raw, shards):
        records = read_stream(streams, raw, *shards["both"], None, LOCAL_SERIALIZED, pages=1)[0][3]["Records"]
        assert {r["eventName"] for r in records} == {"INSERT", "MODIFY", "REMOVE"}
        modify = next(r["dynamodb"] for r in records if r["eventName"] == "MODIFY")
        assert modify["OldImage"]["b"] == {"B": bytes(range(256))} and modify["NewImage"]["added"] == {"B": b"\x01"}
        # (A binary key's value in ``Keys`` comes base64 twice over, from moto's records: as moto answers it.)
        assert modify["NewImage"]["m"] == EVERY_KIND["m"] and modify["Keys"]["pk"] == {"S": "item 0"}
        assert modify["ApproximateCreationDateTime"] == CLOCK.replace(microsecond=123000, tzinfo=timezone.utc)
        keys_only = read_stream(streams, raw, *shards["keys"], None, LOCAL_SERIALIZED, pages=1)[0][3]["Records"]
        assert all(set(r["dynamodb"]) >= {"Keys"} and "NewImage" not in r["dynamodb"] for r in keys_only)


@pytest.mark.parametrize("odd", ["a key the model does not have", "a None in an image", "a float"])
def test_a_value_moto_s_records_do_not_usually_hold_goes_through_moto_s_serializer(odd):
    with stream_account() as (streams, raw, shards):
        from moto.dynamodb.models import dynamodb_backends

        record = dynamodb_backends[DEFAULT_ACCOUNT_ID][REGION].get_table("both").stream_shard.items[1].record
        if odd == "a key the model does not have":
            record["dynamodb"]["NotInTheModel"] = "x"
        elif odd == "a None in an image":
            record["dynamodb"]["OldImage"]["s"] = None
        else:
            record["dynamodb"]["SizeBytes"] = 12.0
        with pytest.raises(motocosts.Unexpected):
            motocosts.encode([record], botocore_shape("GetRecords").members["Records"])
        arn, shard = shards["both"]
        assert read_stream(streams, raw, arn, shard, 5, LOCAL_SERIALIZED) == \
            read_stream(streams, raw, arn, shard, 5, MOTO_SERIALIZED)


def test_a_member_that_is_none_is_left_out_as_moto_leaves_it_out():
    with stream_account() as (streams, raw, shards):
        from moto.dynamodb.models import dynamodb_backends

        record = dynamodb_backends[DEFAULT_ACCOUNT_ID][REGION].get_table("both").stream_shard.items[1].record
        record["dynamodb"]["OldImage"] = None
        arn, shard = shards["both"]
        local = read_stream(streams, raw, arn, shard, 5, LOCAL_SERIALIZED)
        assert local == read_stream(streams, raw, arn, shard, 5, MOTO_SERIALIZED)
        assert "OldImage" not in local[0][2]["Records"][1]["dynamodb"]


def test_an_iterator_moto_does_not_know_fails_as_with_moto():
    with stream_account() as (streams, raw, shards):
        arn, _ = shards["both"]
        errors = []
        for method in (MOTO_SERIALIZED, LOCAL_SERIALIZED):
            with mock.patch.object(DynamoDBStreamsHandler, "serialized", method):
                with pytest.raises(Exception) as failed:
                    streams.get_records(ShardIterator=f"{arn}|1|{'A' * 40}")
                errors.append((type(failed.value), str(failed.value)))
        assert errors[0] == errors[1]


def botocore_shape(operation: str, service: str = "dynamodbstreams"):
    return botocore.session.get_session().get_service_model(service).operation_model(operation).output_shape


def test_what_get_records_writes_is_in_botocore_s_model():
    """Every key of the answer is a member of its shape in botocore's model of GetRecords (a map's keys are the
    item's attribute names); binary values are base64 of the bytes written; a timestamp is epoch seconds."""
    def walk(value, shape, path=""):
        if shape.type_name == "structure":
            assert set(value) <= set(shape.members), (path, set(value) - set(shape.members))
            for name, member in value.items():
                walk(member, shape.members[name], f"{path}.{name}")
        elif shape.type_name == "map":
            for name, member in value.items():
                walk(member, shape.value, f"{path}[{name}]")
        elif shape.type_name == "list":
            for member in value:
                walk(member, shape.member, f"{path}[]")
        elif shape.type_name == "blob":
            assert isinstance(value, str) and base64.b64encode(base64.b64decode(value)).decode() == value, path
        elif shape.type_name == "timestamp":
            assert isinstance(value, (int, float)), path

    with stream_account() as (streams, raw, shards):
        body = read_stream(streams, raw, *shards["both"], None, LOCAL_SERIALIZED, pages=1)[0][2]
        walk(body, botocore_shape("GetRecords"))
        first = body["Records"][0]["dynamodb"]["NewImage"]
        assert base64.b64decode(first["b"]["B"]) == bytes(range(256))
        assert first["m"]["M"]["B"] == {"S": "a map key named B"}  # an attribute named B is not a binary value


def serializer_lookups(records: int, method) -> int:
    """Values moto's serializer looks up (``AttributePicker`` calls) in one GetRecords of ``records`` records."""
    with stream_account() as (streams, raw, shards):
        arn, shard = shards["both"]
        iterator = streams.get_shard_iterator(StreamArn=arn, ShardId=shard,
                                              ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
        real, calls = moto_serialize.AttributePicker.__call__, [0]

        def counting(self, context):
            calls[0] += 1
            return real(self, context)

        with mock.patch.object(DynamoDBStreamsHandler, "serialized", method), \
                mock.patch.object(moto_serialize.AttributePicker, "__call__", counting):
            assert len(streams.get_records(ShardIterator=iterator, Limit=records)["Records"]) == records
        return calls[0]


def test_a_read_of_25_records_costs_moto_s_serializer_no_more_than_a_read_of_10():
    local = serializer_lookups(10, LOCAL_SERIALIZED)
    assert local == serializer_lookups(25, LOCAL_SERIALIZED) and local < 10
    assert serializer_lookups(25, MOTO_SERIALIZED) > 25 * 40  # moto's looks up every value of every record


# -- ReceiveMessage -----------------------------------------------------------------------------------------
@contextlib.contextmanager
def queue_account(retention: int = 60, messages: int = 5):
    """A fresh account with one queue of ``messages`` messages, ``retention`` seconds' retention period.
    Yields (client, queue url, the backend's queue)."""
    with mock_aws():
        sqs = boto3.client("sqs", region_name=REGION)
        url = sqs.create_queue(QueueName="q", Attributes={"MessageRetentionPeriod": str(retention)})["QueueUrl"]
        for start in range(0, messages, 10):
            sqs.send_message_batch(QueueUrl=url, Entries=[{"Id": str(i), "MessageBody": f"m{i}"}
                                                          for i in range(start, min(start + 10, messages))])
        yield sqs, url, sqs_models.sqs_backends[DEFAULT_ACCOUNT_ID][REGION].get_queue("q")


@pytest.mark.parametrize("retention", [60, 345_600])
def test_the_retention_check_decides_as_moto_s(retention):
    with queue_account(retention) as (_, _, queue):
        backend, message = sqs_models.sqs_backends[DEFAULT_ACCOUNT_ID][REGION], queue._messages[0]
        now = 1_800_000_000.0
        with mock.patch.object(sqs_models, "unix_time", lambda dt=None: now):
            for age in (0, retention - 0.001, retention, retention + 0.001, 10 * retention):
                message.sent_timestamp = (now - age) * 1000
                expected = MOTO_CHECK(backend, "q", message)
                assert LOCAL_CHECK(backend, "q", message) is expected, age
                assert expected is (age < retention), age  # the comparison this test holds both to


def received(method, expired: int | None) -> list[str]:
    with queue_account(60, 6) as (sqs, url, queue), \
            mock.patch.object(sqs_models.SQSBackend, "is_message_valid_based_on_retention_period", method):
        if expired is not None:
            queue._messages[expired].sent_timestamp -= 61_000
        bodies = []
        for _ in range(3):
            bodies.append([m["Body"] for m in sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10,
                                                                  WaitTimeSeconds=0).get("Messages", [])])
        return bodies


@pytest.mark.parametrize("expired", [None, 0, 2, 5])
def test_a_receive_hands_out_the_messages_moto_s_does(expired):
    assert received(LOCAL_CHECK, expired) == received(MOTO_CHECK, expired)


def attribute_computations(method, messages: int) -> int:
    """How many times one ReceiveMessage of 10 computes the queue's attributes, on a queue of ``messages``."""
    with queue_account(3600, messages) as (sqs, url, _):
        real, calls = sqs_models.Queue.attributes, [0]

        def counting(queue):
            calls[0] += 1
            return real.fget(queue)

        with mock.patch.object(sqs_models.SQSBackend, "is_message_valid_based_on_retention_period", method), \
                mock.patch.object(sqs_models.Queue, "attributes", property(counting)):
            assert len(sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10)["Messages"]) == 10
        return calls[0]


def test_a_receive_does_not_compute_the_queue_s_attributes():
    assert attribute_computations(LOCAL_CHECK, 200) == 0
    assert attribute_computations(MOTO_CHECK, 200) >= 10  # moto's: all of them, for each message handed out


# -- the dispatcher's backend for a host --------------------------------------------------------------------
# The hosts a request can name: each moto service's in a region (as the dispatcher builds it from a request's
# signature), S3's global and bucket hosts, moto's own API, and hosts moto has no backend for.
HOSTS = ([f"{service}.{REGION}.amazonaws.com" for service in moto_backends.list_of_moto_modules()]
         + ["s3.amazonaws.com", "media.s3.amazonaws.com", "sms-voice.eu-west-2.amazonaws.com", "moto_api", None,
            "nothing.example.com", "nothing.us-east-1.amazonaws.com"])


def dispatcher() -> DomainDispatcherApplication:
    return DomainDispatcherApplication(create_backend_app)


def test_the_backend_for_each_host_is_moto_s():
    moto_s, local = dispatcher(), dispatcher()
    expected = [MOTO_BACKEND(moto_s, host) for host in HOSTS]
    assert sum(found is not None for found in expected) > 100  # the hosts do name moto's backends
    assert [LOCAL_BACKEND(local, host) for host in HOSTS] == expected
    assert [LOCAL_BACKEND(local, host) for host in HOSTS] == expected  # remembered, the same


def test_moto_s_folders_are_listed_once_per_host(monkeypatch):
    listed = []
    every_module = moto_backends.list_of_moto_modules

    def listing():
        listed.append(1)
        return every_module()

    monkeypatch.setattr(moto_backends, "list_of_moto_modules", listing)
    local, host = dispatcher(), f"dynamodb.{REGION}.amazonaws.com"
    for _ in range(5):
        assert LOCAL_BACKEND(local, host) == "dynamodb"
    assert len(listed) == 1
    for _ in range(5):
        MOTO_BACKEND(local, host)
    assert len(listed) == 6  # moto's: every time


def test_at_most_so_many_hosts_are_remembered(monkeypatch):
    monkeypatch.setattr(motocosts, "REMEMBERED_HOSTS", 3)
    local = dispatcher()
    hosts = [f"nothing{i}.example.com" for i in range(5)] + [f"sqs.{REGION}.amazonaws.com"]
    assert [LOCAL_BACKEND(local, host) for host in hosts] == [None] * 5 + ["sqs"]
    assert len(local._backend_for_host) == 3


# -- DynamoDB's answers --------------------------------------------------------------------------------------
def dynamodb_answers(method) -> list:
    """Every kind of DynamoDB call the app makes, on a table with an index, its answers written by ``method``:
    (operation, status, headers without the request's own, body as JSON)."""
    raw: list = []

    def keep(http_response, model, **_):
        raw.append((model.name, http_response.status_code,
                    {k.lower(): v for k, v in http_response.headers.items()
                     if k.lower() not in ("x-amzn-requestid", "date", "x-amz-crc32")},
                    json.loads(http_response.content)))

    with mock.patch.object(DynamoHandler, "serialized", method), \
            mock.patch.object(moto_table, "utcnow", lambda: CLOCK), mock_aws():
        dynamodb = boto3.client("dynamodb", region_name=REGION)
        dynamodb.meta.events.register("after-call.dynamodb", keep)
        dynamodb.create_table(
            TableName="t", BillingMode="PAY_PER_REQUEST",
            AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"},
                                  {"AttributeName": "g", "AttributeType": "S"}],
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
            GlobalSecondaryIndexes=[{"IndexName": "byG", "KeySchema": [{"AttributeName": "g", "KeyType": "HASH"}],
                                     "Projection": {"ProjectionType": "INCLUDE", "NonKeyAttributes": ["m"]}}])
        key = {"pk": {"S": "k1"}}
        for i in range(5):
            dynamodb.put_item(TableName="t", Item={"pk": {"S": f"k{i}"}, "g": {"S": "G"}, **EVERY_KIND})
        dynamodb.put_item(TableName="t", Item={"pk": {"S": "k0"}, "g": {"S": "G"}}, ReturnValues="ALL_OLD")
        dynamodb.get_item(TableName="t", Key=key, ConsistentRead=True)
        dynamodb.get_item(TableName="t", Key={"pk": {"S": "none"}})
        dynamodb.get_item(TableName="t", Key=key, ProjectionExpression="#m.l[1], s",
                          ExpressionAttributeNames={"#m": "m"})
        for returned in ("ALL_NEW", "UPDATED_NEW", "ALL_OLD", "UPDATED_OLD", "NONE"):
            dynamodb.update_item(TableName="t", Key=key, UpdateExpression="SET n = n + :one, added = :b REMOVE t",
                                 ExpressionAttributeValues={":one": {"N": "1"}, ":b": {"B": b"\x01"}},
                                 ReturnValues=returned)
        dynamodb.update_item(TableName="t", Key=key, UpdateExpression="SET s = :s", ReturnConsumedCapacity="TOTAL",
                             ExpressionAttributeValues={":s": {"S": "x"}}, ReturnValues="ALL_NEW")
        dynamodb.query(TableName="t", IndexName="byG", KeyConditionExpression="g = :g",
                       ExpressionAttributeValues={":g": {"S": "G"}}, Limit=2)
        dynamodb.query(TableName="t", IndexName="byG", KeyConditionExpression="g = :g", Select="COUNT",
                       ExpressionAttributeValues={":g": {"S": "G"}})
        dynamodb.query(TableName="t", KeyConditionExpression="pk = :p", ExpressionAttributeValues={":p": {"S": "k2"}})
        dynamodb.query(TableName="t", KeyConditionExpression="pk = :p", ExpressionAttributeValues={":p": {"S": "no"}})
        dynamodb.scan(TableName="t")
        dynamodb.batch_get_item(RequestItems={"t": {"Keys": [{"pk": {"S": "k3"}}, {"pk": {"S": "no"}}]}})
        dynamodb.batch_write_item(RequestItems={"t": [{"PutRequest": {"Item": {"pk": {"S": "w"}}}},
                                                      {"DeleteRequest": {"Key": {"pk": {"S": "k2"}}}}]})
        dynamodb.transact_write_items(TransactItems=[
            {"Put": {"TableName": "t", "Item": {"pk": {"S": "x"}}}},
            {"Update": {"TableName": "t", "Key": {"pk": {"S": "k3"}}, "UpdateExpression": "SET s = :s",
                        "ExpressionAttributeValues": {":s": {"S": "y"}}}}])
        dynamodb.transact_get_items(TransactItems=[{"Get": {"TableName": "t", "Key": {"pk": {"S": "k3"}}}}])
        dynamodb.delete_item(TableName="t", Key={"pk": {"S": "k4"}}, ReturnValues="ALL_OLD")
        dynamodb.describe_table(TableName="t")
        with pytest.raises(dynamodb.exceptions.ConditionalCheckFailedException) as refused:
            dynamodb.put_item(TableName="t", Item=key, ConditionExpression="attribute_not_exists(pk)",
                              ReturnValuesOnConditionCheckFailure="ALL_OLD")
        assert refused.value.response["Item"]["m"] == EVERY_KIND["m"]
    return raw


def test_dynamodb_answers_as_moto_does():
    moto_answers = dynamodb_answers(MOTO_SERIALIZED)
    local_answers = dynamodb_answers(LOCAL_SERIALIZED)
    assert [answer[0] for answer in local_answers] == [answer[0] for answer in moto_answers]
    for local, moto in zip(local_answers, moto_answers):
        assert local == moto, local[0]
    # The comparison is worth what the answers hold: items with every kind of value, in both ways of writing.
    updated = next(answer[3] for answer in local_answers if answer[0] == "UpdateItem")
    assert updated["Attributes"]["b"] == {"B": base64.b64encode(bytes(range(256))).decode()}
    in_base64 = {"bb": {"B": "cQ=="}, "l": {"L": [{"N": "3"}, {"B": "eg=="}, {"BS": ["eQ=="]},
                                                  {"M": {"deep": {"NULL": True}}}]}}
    assert updated["Attributes"]["m"] == {"M": {**EVERY_KIND["m"]["M"], **in_base64}}
    assert len(local_answers) == 28 and local_answers[-1][1] == 400  # the last: the refused condition


def test_a_dynamodb_answer_encode_does_not_take_is_moto_s_whole():
    with mock.patch.object(motocosts, "MOTO_SERIALIZED", wraps=MOTO_SERIALIZED) as moto_serialized:
        answers = dynamodb_answers(LOCAL_SERIALIZED)
    whole = [call.args[1].result for call in moto_serialized.call_args_list if call.args[1].result != {}]
    # Only the answer with a member the model does not have went whole: moto adds ConsumedCapacityUnits to a
    # DeleteItem's answer, and its serializer leaves it out.
    assert [sorted(answer) for answer in whole] == [["Attributes", "ConsumedCapacityUnits"]]
    assert len(answers) == 28


# -- KMS keys -----------------------------------------------------------------------------------------------
@contextlib.contextmanager
def kms_with(method, monkeypatch):
    """moto's KMS with ``method`` as its ``generate_private_key``; yields (client, the RSA keys made so far)."""
    from moto.kms import utils as kms_utils

    made, generate = [], kms_utils.rsa.generate_private_key

    def counted(*args, **kwargs):
        made.append(kwargs.get("key_size"))
        return generate(*args, **kwargs)

    monkeypatch.setattr(kms_utils.rsa, "generate_private_key", counted)
    monkeypatch.setattr(kms_models, "generate_private_key", method)
    with mock_aws():
        yield boto3.client("kms", region_name=REGION), made


def symmetric_answers(kms) -> list:
    """What a symmetric key answers, as botocore parses it: encrypt then decrypt, and the private-key operations."""
    key = kms.create_key(KeyUsage="ENCRYPT_DECRYPT", KeySpec="SYMMETRIC_DEFAULT")["KeyMetadata"]["KeyId"]
    plain = kms.decrypt(CiphertextBlob=kms.encrypt(KeyId=key, Plaintext=b"a webhook secret")["CiphertextBlob"])
    answers = [("decrypt", plain["Plaintext"], plain["KeyId"].endswith(key))]
    for name, call in (("public key", lambda: kms.get_public_key(KeyId=key)),
                       ("sign", lambda: kms.sign(KeyId=key, Message=b"m", SigningAlgorithm="RSASSA_PSS_SHA_256"))):
        try:
            answer = call()
            answers.append((name, sorted(answer), len(answer.get("PublicKey", b""))))
        except kms.exceptions.ClientError as error:
            answers.append((name, error.response["Error"]["Code"],
                            error.response["Error"]["Message"].replace(key, "K")))
    return answers


def test_a_symmetric_key_answers_as_moto_s_and_makes_its_rsa_key_only_when_asked(monkeypatch):
    with kms_with(MOTO_KEY, monkeypatch) as (kms, made):
        moto_answers = symmetric_answers(kms)
    with kms_with(LOCAL_KEY, monkeypatch) as (kms, made):
        key = kms.create_key(KeyUsage="ENCRYPT_DECRYPT", KeySpec="SYMMETRIC_DEFAULT")["KeyMetadata"]["KeyId"]
        kms.decrypt(CiphertextBlob=kms.encrypt(KeyId=key, Plaintext=b"x")["CiphertextBlob"])
        assert made == []  # moto's made one with the key
        local_answers = symmetric_answers(kms)
        assert made == [2048]  # for the GetPublicKey of the second key: moto's own key, when it was asked for
    assert local_answers == moto_answers
    assert local_answers[0] == ("decrypt", b"a webhook secret", True)


@pytest.mark.parametrize("spec", ["RSA_2048", "ECC_NIST_P256"])
def test_an_asymmetric_key_gets_moto_s_private_key_at_once_and_signs(spec, monkeypatch):
    with kms_with(LOCAL_KEY, monkeypatch) as (kms, made):
        key = kms.create_key(KeyUsage="SIGN_VERIFY", KeySpec=spec)["KeyMetadata"]["KeyId"]
        assert made == ([2048] if spec == "RSA_2048" else [])
        algorithm = "RSASSA_PSS_SHA_256" if spec == "RSA_2048" else "ECDSA_SHA_256"
        signature = kms.sign(KeyId=key, Message=b"m", SigningAlgorithm=algorithm)["Signature"]
        assert kms.verify(KeyId=key, Message=b"m", Signature=signature, SigningAlgorithm=algorithm)["SignatureValid"]
    from moto.kms import utils as kms_utils

    assert type(LOCAL_KEY(spec)) is type(MOTO_KEY(spec)) and type(MOTO_KEY(spec)) in (
        kms_utils.RSAPrivateKey, kms_utils.ECDSAPrivateKey)


# -- the local stack ----------------------------------------------------------------------------------------
def moto_s_own(monkeypatch):
    """moto's own methods in place of the local stack's, until the test ends."""
    monkeypatch.setattr(sqs_models.SQSBackend, "is_message_valid_based_on_retention_period", MOTO_CHECK)
    monkeypatch.setattr(DomainDispatcherApplication, "get_backend_for_host", MOTO_BACKEND)
    monkeypatch.setattr(kms_models, "generate_private_key", MOTO_KEY)
    for handler in (DynamoDBStreamsHandler, DynamoHandler):
        monkeypatch.delattr(handler, "serialized")


def test_the_local_stack_answers_with_these(monkeypatch):
    moto_s_own(monkeypatch)
    Emulator()
    assert sqs_models.SQSBackend.is_message_valid_based_on_retention_period is LOCAL_CHECK
    assert DomainDispatcherApplication.get_backend_for_host is LOCAL_BACKEND
    assert kms_models.generate_private_key is LOCAL_KEY
    assert DynamoDBStreamsHandler.serialized is LOCAL_SERIALIZED and DynamoHandler.serialized is LOCAL_SERIALIZED


@pytest.mark.parametrize("name", sorted(motocosts.MOTO_SOURCES))
def test_moto_s_methods_are_the_ones_the_local_stack_s_follow(name):
    """A moto upgrade that changes one of them fails here: re-read moto's method against devstack/motocosts.py,
    then update ``MOTO_SOURCES``. Until then the local stack keeps moto's."""
    assert motocosts.moto_source_sha256(name) == motocosts.MOTO_SOURCES[name]


def test_another_moto_s_method_is_kept(monkeypatch, caplog):
    moto_s_own(monkeypatch)
    monkeypatch.setitem(motocosts.MOTO_SOURCES, "serialized", "another")
    assert motocosts.install() == {"is_message_valid_based_on_retention_period": True, "get_backend_for_host": True,
                                   "generate_private_key": True, "serialized": False}
    assert DynamoDBStreamsHandler.serialized is MOTO_SERIALIZED and DynamoHandler.serialized is MOTO_SERIALIZED
    assert sqs_models.SQSBackend.is_message_valid_based_on_retention_period is LOCAL_CHECK
    assert DomainDispatcherApplication.get_backend_for_host is LOCAL_BACKEND
    assert "kept moto's" in caplog.text
