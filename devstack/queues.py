"""Lambda's SQS event source mapping, played locally around the app's own functions.

``SqsEventSource`` polls a queue, invokes a function with up to 10 records in Lambda's SQS event format
(``sqs_record``), deletes the records the function did not report in ``batchItemFailures``, and leaves
everything when an invocation fails or dies (tests kill one on purpose). The local stack runs three:

- the batch queue's, ``QueueRunner``, for the real batch worker (``chalicelib.sending.worker.handle``). A test
  can make one of its invocations die before it claims a message, or just after the provider accepted one
  (the worker-death hooks below wrap the provider calls for that);
- the webhook delivery queue's, which invokes the real ``webhook_delivery`` function, whose retries set the
  messages' visibility timeouts;
- the inbound queue's (replies, which the inbound SNS topic feeds), which invokes the real ``inbound_reply``
  function.
"""
from __future__ import annotations

import logging
import threading
import time

from .invocation import Context, b64


class WorkerDied(BaseException):
    """Raised inside an invocation to play a worker process that dies mid-batch (not an Exception,
    so the worker's own error handling does not catch it)."""


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

    ``function(event, context)`` is the Lambda handler; a subclass may override ``handle`` instead.

    As Lambda does, it refuses a function whose timeout is longer than the queue's visibility timeout ("Lambda
    validates this requirement when you create or update an event source mapping and will return an error if the
    function timeout exceeds the queue's visibility timeout", https://docs.aws.amazon.com/lambda/latest/dg/
    services-sqs-configure.html). Lambda ends an invocation at its timeout; this one does not, so without the rule
    a batch's messages came back to a second invocation while the first still held them."""

    def __init__(self, *, sqs, queue_url: str, function=None, instances: int = 1, function_timeout: float = 30.0,
                 name: str = "sqs-event-source"):
        self.sqs, self.queue_url, self.function, self.name = sqs, queue_url, function, name
        self.function_timeout = function_timeout
        attributes = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn", "VisibilityTimeout"])[
            "Attributes"]
        self.queue_arn = attributes["QueueArn"]
        if function_timeout > int(attributes["VisibilityTimeout"]):
            raise ValueError(f"{name}: the function's timeout ({function_timeout:g} s) exceeds the queue's visibility "
                             f"timeout ({attributes['VisibilityTimeout']} s), which Lambda refuses")
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
            result = self.handle(index, event, Context(self.function_timeout))
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
            "stringValue": value.get("StringValue"), "binaryValue": b64(value.get("BinaryValue")),
            "stringListValues": value.get("StringListValues", []),
            "binaryListValues": [b64(v) for v in value.get("BinaryListValues", [])], "dataType": value["DataType"]}
            for name, value in message.get("MessageAttributes", {}).items()},
        "md5OfBody": message.get("MD5OfBody"), "eventSource": "aws:sqs", "eventSourceARN": queue_arn,
        "awsRegion": queue_arn.split(":")[3]}


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
