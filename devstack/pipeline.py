"""What Lambda and CloudWatch Logs do around the app on AWS, done locally with the app's own code.

- ``SqsEventSource`` plays an SQS event source mapping: it polls a queue, invokes a function with
  up to 10 records, deletes the records the function did not report in ``batchItemFailures``, and
  leaves everything when an invocation fails or dies (tests kill one on purpose). ``QueueRunner`` is
  the batch queue's, for the real worker (``chalicelib.sending.worker.handle``; it dies before it claims a
  message, or just after the provider accepted one); the webhook delivery queue's invokes the real
  ``webhook_delivery`` function, whose retries set the messages' visibility timeouts; the inbound
  queue's (replies, which the inbound SNS topic feeds) invokes the real ``inbound_reply`` function.
- ``StreamPlayer`` plays a DynamoDB stream event source mapping: it reads the messages table's
  stream (moto's DynamoDB Streams API) and hands the records, in Lambda's event format, to the
  real ``webhook_fanout`` function.
- ``Receipts`` plays the carrier and CloudWatch Logs: a moment after each accepted send it writes
  a delivery receipt in the documented format (SNS delivery-status log, or End User Messaging
  event, which echoes the send's ``Context`` in ``context``) to the matching log group, then hands
  it to the real status-ingest function the way a subscription filter does (gzipped, base64). As
  Lambda does for an asynchronous invocation, an ingest that raises is tried twice more, later,
  and then kept aside (``failed``) as the function's on-failure destination would keep it;
  ``redrive()`` hands those to the ingest again, as an operator would from that queue.

Destination numbers follow AWS's simulator conventions: the failure simulator numbers fail;
every other number is delivered (locally only; on AWS a real number gets its real outcome).
"""
from __future__ import annotations

import base64
import gzip
import json
import logging
import queue
import threading
import time
import uuid
from datetime import datetime, timezone

import phonenumbers

# AWS End User Messaging destination simulator numbers (test-phone-numbers in the user guide):
# success and failure per country.
SIMULATOR_SUCCESS = {"+14254147755", "+61455944038", "+33755512501"}
SIMULATOR_FAILURE = {"+14254147167", "+61455944039", "+33755512502"}
SMS_PRICE_USD = 0.00581  # per part, for realistic-looking receipts; not a quote
MMS_PRICE_USD = 0.02


class WorkerDied(BaseException):
    """Raised inside an invocation to play a worker process that dies mid-batch (not an Exception,
    so the worker's own error handling does not catch it)."""


class _Context:
    def __init__(self, timeout_seconds: float):
        self.deadline = time.monotonic() + timeout_seconds
        self.aws_request_id = str(uuid.uuid4())

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self.deadline - time.monotonic()) * 1000))


class _DyingBucket:
    """A worker's token bucket that lets ``allowed`` messages through, then kills the invocation."""

    def __init__(self, bucket, allowed: int):
        self.bucket, self.allowed = bucket, allowed
        self.clock = bucket.clock

    def acquire(self, parts, deadline=None):
        if self.allowed <= 0:
            raise WorkerDied()
        self.allowed -= 1
        return self.bucket.acquire(parts, deadline)


class _DiesAfterSend:
    """Kills the invocation running on this thread right after the provider accepts a send,
    once ``allowed`` sends have gone through: the worst moment, the message is out and its record
    still says ``sending`` (a Lambda that timed out or crashed mid-send)."""

    def __init__(self, allowed: int):
        self.allowed = allowed


_local = threading.local()
_patched: dict = {}
_patch_lock = threading.Lock()


def _install_send_hook() -> None:
    """Wrap the provider calls once per process; a wrapper acts only on a thread whose invocation
    is marked to die (``_local.dies``), every other caller goes straight through."""
    from chalicelib.sending import providers

    with _patch_lock:
        if _patched:
            return
        for name in ("send_sms", "send_mms"):
            original = getattr(providers, name)

            def hooked(*args, _original=original, **kwargs):
                result = _original(*args, **kwargs)
                plan = getattr(_local, "dies", None)
                if plan is not None:
                    if plan.allowed <= 0:
                        raise WorkerDied()
                    plan.allowed -= 1
                return result

            _patched[name] = original
            setattr(providers, name, hooked)


def _remove_send_hook() -> None:
    from chalicelib.sending import providers

    with _patch_lock:
        for name, original in _patched.items():
            setattr(providers, name, original)
        _patched.clear()


class SqsEventSource:
    """Plays Lambda's SQS event source mapping for one function (batch size 10, partial batch responses
    on): ``instances`` pollers, each receiving up to 10 messages and invoking the function with them in
    Lambda's SQS event format, one invocation at a time. The records the function does not report in
    ``batchItemFailures`` are deleted; the others stay on the queue until their visibility timeout ends
    (the queue's, or the one the function set with ``ChangeMessageVisibility``: the queue keeps that
    time, as SQS does). An invocation that raises, or dies (``WorkerDied``: tests kill one on purpose),
    deletes nothing: its whole batch comes back after the visibility timeout.

    ``function(event, context)`` is the Lambda handler; a subclass may override ``handle`` instead."""

    def __init__(self, *, sqs, queue_url: str, function=None, instances: int = 1, function_timeout: float = 30.0,
                 name: str = "sqs-event-source"):
        self.sqs, self.queue_url, self.function, self.name = sqs, queue_url, function, name
        self.function_timeout = function_timeout
        self.queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])[
            "Attributes"]["QueueArn"]
        self.invocations = self.deaths = self.errors = 0
        self._dying: list[int] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._polling = threading.Event()
        self._polling.set()
        self._receiving = 0  # pollers inside ReceiveMessage
        self._threads = [threading.Thread(target=self._poll, args=(i,), name=f"{name}-{i}", daemon=True)
                         for i in range(instances)]

    def kill_next_invocation(self, after: int) -> None:
        """The next invocation with more than ``after`` records hands the function only its first
        ``after`` and then dies, before anything is deleted: the function's work on those is done (a
        webhook delivered), the rest of the batch is not, and the whole batch comes back."""
        with self._lock:
            self._dying.append(after)

    def start(self):
        for thread in self._threads:
            thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._polling.set()
        for thread in self._threads:
            thread.join(timeout=self.function_timeout + 5)

    def pause(self) -> None:
        """Receive nothing more (the invocations under way finish) until ``resume()``, as disabling the
        mapping does: messages gather on the queue (tests and the benchmark use it to make full batches).
        Returns once no poller is still inside a ReceiveMessage (a long poll ends within a second)."""
        with self._lock:
            self._polling.clear()
        deadline = time.monotonic() + 3
        while self._receiving and time.monotonic() < deadline:
            time.sleep(0.02)

    def resume(self) -> None:
        self._polling.set()

    def handle(self, index: int, event: dict, context) -> dict | None:
        """One invocation of the function on instance ``index``."""
        with self._lock:
            after = self._dying.pop(0) if self._dying else None
        if after is not None and len(event["Records"]) <= after:
            with self._lock:
                self._dying.insert(0, after)  # too few records to die in: the next invocation will
            after = None
        if after is None:
            return self.function(event, context)
        self.function({"Records": event["Records"][:after]}, context)
        raise WorkerDied()

    def _poll(self, index: int) -> None:
        while not self._stop.is_set():
            if not self._polling.wait(0.5):
                continue
            with self._lock:
                if not self._polling.is_set():
                    continue
                self._receiving += 1
            try:
                received = self.sqs.receive_message(QueueUrl=self.queue_url, MaxNumberOfMessages=10,
                                                    WaitTimeSeconds=1, AttributeNames=["All"],
                                                    MessageAttributeNames=["All"])
            except Exception:
                if self._stop.wait(0.5):
                    return
                continue
            finally:
                with self._lock:
                    self._receiving -= 1
            if received.get("Messages"):
                self._invoke(index, received["Messages"])

    def _invoke(self, index: int, messages: list[dict]) -> None:
        event = {"Records": [sqs_record(m, self.queue_arn) for m in messages]}
        with self._lock:
            self.invocations += 1
        try:
            result = self.handle(index, event, _Context(self.function_timeout))
        except WorkerDied:
            with self._lock:
                self.deaths += 1
            return  # nothing deleted: every record comes back after the visibility timeout
        except Exception:
            logging.getLogger(__name__).exception("%s: the invocation failed; its batch comes back", self.name)
            with self._lock:
                self.errors += 1
            return
        failed = {f["itemIdentifier"] for f in (result or {}).get("batchItemFailures", [])}
        done = [{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]}
                for i, m in enumerate(messages) if m["MessageId"] not in failed]
        if done:
            self.sqs.delete_message_batch(QueueUrl=self.queue_url, Entries=done)


# The attributes Lambda puts in an SQS record (the others ReceiveMessage can return are left out).
SQS_RECORD_ATTRIBUTES = ("ApproximateReceiveCount", "SentTimestamp", "SenderId", "ApproximateFirstReceiveTimestamp",
                         "AWSTraceHeader", "MessageGroupId", "MessageDeduplicationId", "SequenceNumber")


def sqs_record(message: dict, queue_arn: str) -> dict:
    """A ``ReceiveMessage`` message as Lambda hands it to the function (tests/events/sqs-event.json)."""
    attributes = message.get("Attributes", {})
    return {
        "messageId": message["MessageId"], "receiptHandle": message["ReceiptHandle"], "body": message["Body"],
        "attributes": {k: attributes[k] for k in SQS_RECORD_ATTRIBUTES if k in attributes},
        "messageAttributes": {name: {
            "stringValue": value.get("StringValue"), "binaryValue": _b64(value.get("BinaryValue")),
            "stringListValues": value.get("StringListValues", []),
            "binaryListValues": [_b64(v) for v in value.get("BinaryListValues", [])], "dataType": value["DataType"]}
            for name, value in message.get("MessageAttributes", {}).items()},
        "md5OfBody": message.get("MD5OfBody"), "eventSource": "aws:sqs", "eventSourceARN": queue_arn,
        "awsRegion": queue_arn.split(":")[3]}


def _b64(value):
    return base64.b64encode(value).decode() if isinstance(value, (bytes, bytearray)) else value


class QueueRunner(SqsEventSource):
    """The batch queue's event source for the batch worker (``chalicelib.sending.worker.handle``): as many
    instances as ``WORKER_CONCURRENCY``, each with its own handle on the stage's send schedule, as
    each Lambda instance has its own (``worker.schedule()``)."""

    def __init__(self, *, sqs, queue_url, settings, function_timeout: float = 30.0):
        from chalicelib.sending import worker

        super().__init__(sqs=sqs, queue_url=queue_url, instances=settings.worker_concurrency,
                         function_timeout=function_timeout, name="batch-worker")
        self.settings, self.worker = settings, worker
        self.buckets = [worker.new_schedule(settings) for _ in range(settings.worker_concurrency)]
        self._kill: list = []

    def kill_next_invocation(self, after: int, *, at: str = "claim") -> None:
        """The next invocation with more than ``after`` messages dies after sending ``after`` of them:
        at ``"claim"``, before it claims the next one; at ``"send"``, right after the provider accepted
        the next one, before its record says so."""
        if at not in ("claim", "send"):
            raise ValueError("at must be 'claim' or 'send'")
        if at == "send":
            _install_send_hook()
        with self._lock:
            self._kill.append((after, at))

    def stop(self) -> None:
        super().stop()
        _remove_send_hook()

    def handle(self, index: int, event: dict, context) -> dict:
        bucket, dies = self.buckets[index], None
        with self._lock:
            # The invocation that dies is one with more messages than it lets through (two instances
            # poll at once, so a batch can be split between them; the smaller share may be too small).
            if self._kill and len(event.get("Records", [])) > self._kill[0][0]:
                after, at = self._kill.pop(0)
                if at == "claim":
                    bucket = _DyingBucket(bucket, after)
                else:
                    dies = _DiesAfterSend(after)
        _local.dies = dies
        try:
            # An invocation marked to die sends its messages one at a time, so that it dies at exactly
            # the moment a test names (the others send as many at once as the worker does on Lambda).
            senders = 1 if dies is not None or isinstance(bucket, _DyingBucket) else None
            result = self.worker.handle(event, context, settings=self.settings, pacer=bucket, senders=senders)
        finally:
            _local.dies = None
        # Too few messages to die in: the next invocation will.
        if isinstance(bucket, _DyingBucket):
            with self._lock:
                self._kill.insert(0, (bucket.allowed, "claim"))
        elif dies is not None:
            with self._lock:
                self._kill.insert(0, (dies.allowed, "send"))
        return result


class StreamPlayer:
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
        self.streams, self.function, self.region = streams, function, region
        self.batch_size, self.retries, self.retry_delay = batch_size, retries, retry_delay
        self.function_timeout = function_timeout
        self.stream_arn = dynamodb.describe_table(TableName=table)["Table"]["LatestStreamArn"]
        shard = streams.describe_stream(StreamArn=self.stream_arn)["StreamDescription"]["Shards"][0]
        self.shard_id = shard["ShardId"]
        # moto numbers a shard's records by their place in it, and two concurrent writes can get the same
        # number, so the player keeps its own place: the shard's first number plus the records read.
        self._next = int(shard["SequenceNumberRange"]["StartingSequenceNumber"])
        self.invocations = 0
        self.failed: list[dict] = []  # events every attempt failed on (the on-failure destination)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="stream-player", daemon=True)

    def start(self) -> "StreamPlayer":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=self.function_timeout + 5)

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
            self.function({"Records": records}, _Context(self.function_timeout))
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
        return {"B": _b64(inner)}
    if kind == "BS":
        return {"BS": [_b64(v) for v in inner]}
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


def subscription_event(log_group: str, lines: list[str]) -> dict:
    """A CloudWatch Logs subscription delivery, as Lambda receives it."""
    now = int(time.time() * 1000)
    data = {"messageType": "DATA_MESSAGE", "owner": "123456789012", "logGroup": log_group,
            "logStream": "local", "subscriptionFilters": ["status-ingest"],
            "logEvents": [{"id": str(uuid.uuid4().int)[:56], "timestamp": now, "message": line} for line in lines]}
    return {"awslogs": {"data": base64.b64encode(gzip.compress(json.dumps(data).encode())).decode()}}


def sns_receipt(entry: dict, delivered: bool, parts: int) -> str:
    """An SNS SMS delivery-status log line (the documented shape)."""
    stamp = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]
    return json.dumps({
        "notification": {"messageId": entry["providerMessageId"], "timestamp": stamp},
        "delivery": {"phoneCarrier": "Local Carrier", "mnc": 0, "numberOfMessageParts": parts,
                     "destination": entry["to"], "priceInUSD": round(SMS_PRICE_USD * parts, 5) if delivered else 0.0,
                     "smsType": "Transactional", "mcc": 310, "dwellTimeMs": 120,
                     "providerResponse": "Message has been accepted by phone carrier" if delivered
                     else "Phone carrier is currently unreachable/unavailable"},
        "status": "SUCCESS" if delivered else "FAILURE"})


def eum_receipts(entry: dict, delivered: bool, parts: int, origination: str,
                 context: dict | None = None) -> list[str]:
    """End User Messaging events for one send: a pending event, then the final one. Each carries
    the send's ``Context`` as ``context``, unchanged, as the event format documents."""
    kind = "TEXT" if entry["channel"] == "sms" else "MEDIA"
    price = (SMS_PRICE_USD * parts if kind == "TEXT" else MMS_PRICE_USD) if delivered else 0.0
    now = int(time.time() * 1000)
    try:
        country = phonenumbers.region_code_for_number(phonenumbers.parse(entry["to"])) or "US"
    except phonenumbers.NumberParseException:
        country = "US"

    def event(status, final, description, at):
        data = {
            "eventType": f"{kind}_{status}", "eventVersion": "1.0", "eventTimestamp": at, "isFinal": final,
            "originationPhoneNumber": origination, "destinationPhoneNumber": entry["to"],
            "isoCountryCode": country, "messageId": entry["providerMessageId"], "messageRequestTimestamp": now - 50,
            "messageEncoding": "GSM", "messageType": "TRANSACTIONAL", "messageStatus": status,
            "messageStatusDescription": description}
        if context is not None:
            data["context"] = dict(context)
        data.update({"totalMessageParts": parts, "totalMessagePrice": round(price, 5), "totalCarrierFee": 0.0})
        return json.dumps(data)

    final = (event("DELIVERED", True, "Message has been accepted by phone", now) if delivered else
             event("CARRIER_UNREACHABLE", True, "Phone carrier is currently unreachable/unavailable", now))
    return [event("PENDING", False, "Message is pending delivery", now - 10), final]


class Receipts:
    """Turn each accepted send into delivery receipts, ``delay`` seconds later, in batches.

    An ingest invocation that raises is invoked again after each of ``retry_delays`` (Lambda's
    asynchronous retries: two, about one and two minutes apart on AWS; seconds here), then lands
    in ``failed``, as in the function's on-failure destination."""

    def __init__(self, *, emulator, logs, ingest, sns_groups: tuple[str, str], events_group: str,
                 origination: str, delay: float = 0.3, retry_delays: tuple[float, ...] = (1.0, 2.0)):
        self.logs, self.ingest = logs, ingest
        self.sns_groups, self.events_group, self.origination = sns_groups, events_group, origination
        self.delay, self.retry_delays = delay, tuple(retry_delays)
        self.invocations = 0
        self.failed: list[dict] = []  # subscription events every attempt failed on
        self._failed_lock = threading.Lock()
        self._pending: queue.Queue = queue.Queue()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="delivery-receipts", daemon=True)
        for group in (*sns_groups, events_group):
            try:
                logs.create_log_stream(logGroupName=group, logStreamName="local")
            except logs.exceptions.ResourceAlreadyExistsException:
                pass
        emulator.listeners.append(self._on_send)

    def start(self) -> "Receipts":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def deliver_now(self, entries: list[dict], provider: str = "sns") -> None:
        """Write the receipts of these outbox entries now, in this order, as one delivery to the
        ingest per log group (tests use it to put receipts in one invocation)."""
        self._deliver([(entry, provider, None) for entry in entries])

    def redrive(self) -> int:
        """Invoke the ingest again with every event kept aside (what an operator does with the
        on-failure queue once the cause is fixed); one attempt each, kept aside again if it fails.
        Returns how many were handed over."""
        with self._failed_lock:
            events, self.failed = self.failed, []
        for event in events:
            self._invoke(event, attempt=len(self.retry_delays))
        return len(events)

    def _on_send(self, entry: dict, provider: str, context: dict | None = None) -> None:
        self._pending.put((time.monotonic() + self.delay, "send", (entry, provider, context)))

    def _run(self) -> None:
        waiting: list = []
        while not self._stop.is_set():
            try:
                waiting.append(self._pending.get(timeout=0.05))
                while True:
                    waiting.append(self._pending.get_nowait())
            except queue.Empty:
                pass
            now = time.monotonic()
            due = [w for w in waiting if w[0] <= now]
            waiting = [w for w in waiting if w[0] > now]
            if not due:
                continue
            try:
                self._deliver([w[2] for w in due if w[1] == "send"])
            except Exception:  # a receipt problem must not stop the next ones
                logging.getLogger(__name__).exception("delivery receipts failed")
            for _, _, (event, attempt) in (w for w in due if w[1] == "retry"):
                self._invoke(event, attempt)

    def _invoke(self, event: dict, attempt: int = 0) -> None:
        """One asynchronous invocation of the ingest function."""
        self.invocations += 1
        try:
            self.ingest(event)
        except Exception:
            if attempt < len(self.retry_delays):
                self._pending.put((time.monotonic() + self.retry_delays[attempt], "retry", (event, attempt + 1)))
            else:
                logging.getLogger(__name__).warning("status ingest failed on every attempt; event kept aside")
                with self._failed_lock:
                    self.failed.append(event)

    def _deliver(self, sends: list[tuple[dict, str, dict | None]]) -> None:
        from chalicelib.core.segments import segment

        if not sends:
            return
        lines: dict[str, list[str]] = {}
        for entry, provider, context in sends:
            delivered = entry["to"] not in SIMULATOR_FAILURE
            parts = segment(entry.get("body") or "")[1] if entry["channel"] == "sms" else 1
            if provider == "sns":
                group = self.sns_groups[0] if delivered else self.sns_groups[1]
                lines.setdefault(group, []).append(sns_receipt(entry, delivered, parts))
            else:
                lines.setdefault(self.events_group, []).extend(
                    eum_receipts(entry, delivered, parts, self.origination, context))
        for group, group_lines in lines.items():
            now = int(time.time() * 1000)
            self.logs.put_log_events(logGroupName=group, logStreamName="local",
                                     logEvents=[{"timestamp": now, "message": line} for line in group_lines])
            self._invoke(subscription_event(group, group_lines))
