"""Lambda's DynamoDB stream event source mapping, played locally around the app's own function.

``StreamPlayer`` reads the messages table's stream through the DynamoDB Streams API (moto serves it) and
hands the new records, in Lambda's event format (``stream_record``), to the real ``webhook_fanout``
function: polled 4 times a second from where the stream is when the stack starts, a failing batch split in
two, a record that still fails retried and then kept aside, as the stack's mapping is set up on AWS.
"""
from __future__ import annotations

import logging
from datetime import datetime

from .invocation import Context, b64
from .polling import Poller


class StreamPlayer(Poller):
    """Plays Lambda's DynamoDB stream event source mapping for one table: reads its stream through the
    DynamoDB Streams API (moto serves it) and invokes ``function(event, context)`` with the new records,
    up to ``batch_size`` at a time, in the event format Lambda uses (``stream_record``).

    As the stack's mapping: polled 4 times a second ("Lambda polls shards in your DynamoDB stream for
    records at a base rate of 4 times per second", AWS Lambda Developer Guide, "Using AWS Lambda with
    Amazon DynamoDB"), starting where the stream is when the stack starts (LATEST: the table is new). A
    batch whose invocation raises is split in two and each half tried again (BisectBatchOnFunctionError);
    a single record that still fails is retried ``retries`` times, ``retry_delay`` apart, then kept aside
    in ``failed``, as the on-failure destination keeps it."""

    POLL_SECONDS = 0.25

    def __init__(self, *, streams, dynamodb, table: str, function, region: str, batch_size: int = 100,
                 retries: int = 2, retry_delay: float = 0.5, function_timeout: float = 30.0):
        super().__init__(name="stream-player", function_timeout=function_timeout)
        self.streams, self.function, self.region = streams, function, region
        self.batch_size, self.retries, self.retry_delay = batch_size, retries, retry_delay
        self.stream_arn = dynamodb.describe_table(TableName=table)["Table"]["LatestStreamArn"]
        shard = streams.describe_stream(StreamArn=self.stream_arn)["StreamDescription"]["Shards"][0]
        self.shard_id = shard["ShardId"]
        # moto numbers a shard's records by their place in it, and two concurrent writes can get the same
        # number, so the player keeps its own place: the shard's first number plus the records read.
        self._next = int(shard["SequenceNumberRange"]["StartingSequenceNumber"])
        self.invocations = 0
        self.failed: list[dict] = []  # events every attempt failed on (the on-failure destination)

    def _run(self) -> None:
        full = False
        while not self._stop.wait(0 if full else self.POLL_SECONDS):
            try:
                records = self._read()
            except Exception:
                logging.getLogger(__name__).exception("stream player: GetRecords failed")
                records = []
            full = len(records) == self.batch_size  # more may be waiting: read again at once
            if records:
                self._invoke(records)

    def _read(self) -> list[dict]:
        iterator = self.streams.get_shard_iterator(
            StreamArn=self.stream_arn, ShardId=self.shard_id, ShardIteratorType="AT_SEQUENCE_NUMBER",
            SequenceNumber=str(self._next))["ShardIterator"]
        response = self.streams.get_records(ShardIterator=iterator, Limit=self.batch_size)
        _forget_shard_iterators(iterator, response.get("NextShardIterator"))
        self._next += len(response["Records"])
        return [stream_record(r, self.stream_arn, self.region) for r in response["Records"]]

    def _invoke(self, records: list[dict], attempt: int = 0) -> None:
        self.invocations += 1
        try:
            self.function({"Records": records}, Context(self.function_timeout))
            return
        except Exception:
            logging.getLogger(__name__).exception("stream player: the invocation failed (%d records)", len(records))
        if len(records) > 1:  # split, and try each half (a split is not a retry)
            half = len(records) // 2
            self._invoke(records[:half], attempt)
            self._invoke(records[half:], attempt)
        elif attempt < self.retries and not self._stop.wait(self.retry_delay):
            self._invoke(records, attempt + 1)
        else:
            logging.getLogger(__name__).warning("stream player: a record failed on every attempt; kept aside")
            self.failed.append({"Records": records})


def stream_record(record: dict, stream_arn: str, region: str) -> dict:
    """A ``GetRecords`` record as Lambda hands it to the function (tests/events/dynamodb-stream-event.json):
    with the stream's ARN in ``eventSourceARN`` and the region in ``awsRegion`` (moto always says
    us-east-1), ``ApproximateCreationDateTime`` in epoch seconds (botocore parses it into a datetime) and
    binary values in base64 (JSON), as Lambda's JSON event has them."""
    change = dict(record["dynamodb"])
    when = change.get("ApproximateCreationDateTime")
    if isinstance(when, datetime):
        change["ApproximateCreationDateTime"] = float(int(when.timestamp()))  # rounded down to the second
    for image in ("Keys", "NewImage", "OldImage"):
        if image in change:
            change[image] = {name: _json_value(value) for name, value in change[image].items()}
    out = {"eventID": record["eventID"], "eventName": record["eventName"], "eventVersion": record["eventVersion"],
           "eventSource": record.get("eventSource", "aws:dynamodb"), "awsRegion": region, "dynamodb": change,
           "eventSourceARN": stream_arn}
    if "userIdentity" in record:
        out["userIdentity"] = {k[0].lower() + k[1:]: v for k, v in record["userIdentity"].items()}
    return out


def _json_value(value: dict) -> dict:
    """An AttributeValue as DynamoDB's JSON has it (botocore decodes binary values to bytes)."""
    (kind, inner), = value.items()
    if kind == "B":
        return {"B": b64(inner)}
    if kind == "BS":
        return {"BS": [b64(v) for v in inner]}
    if kind == "M":
        return {"M": {k: _json_value(v) for k, v in inner.items()}}
    if kind == "L":
        return {"L": [_json_value(v) for v in inner]}
    return {kind: inner}


def _forget_shard_iterators(*iterators) -> None:
    """Drop shard iterators moto would keep for ever (AWS lets them expire after 15 minutes): the player
    takes a new one for every read, 4 a second."""
    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.dynamodbstreams.models import dynamodbstreams_backends

    for region in dynamodbstreams_backends[DEFAULT_ACCOUNT_ID].keys():
        kept = dynamodbstreams_backends[DEFAULT_ACCOUNT_ID][region].shard_iterators
        for iterator in iterators:
            kept.pop(iterator, None)
