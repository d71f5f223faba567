"""What Lambda and CloudWatch Logs do around the app on AWS, done locally with the app's own code.

- ``QueueRunner`` plays the SQS event source mapping: it polls the batch queue, invokes the real
  worker (``chalicelib.worker.handle``) with up to 10 records, deletes the records the worker did
  not report in ``batchItemFailures``, and leaves everything when an invocation dies (tests kill
  one on purpose: before it claims a message, or just after the provider accepted one).
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
    from chalicelib import providers

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
    from chalicelib import providers

    with _patch_lock:
        for name, original in _patched.items():
            setattr(providers, name, original)
        _patched.clear()


class QueueRunner:
    def __init__(self, *, sqs, queue_url: str, settings, function_timeout: float = 30.0):
        from chalicelib import worker

        self.sqs, self.queue_url, self.settings = sqs, queue_url, settings
        self.function_timeout = function_timeout
        self.worker = worker
        # One bucket per instance, as each Lambda instance has its own (worker.bucket()).
        self.buckets = [worker.new_bucket(settings) for _ in range(settings.worker_concurrency)]
        self.invocations = self.deaths = 0
        self._kill: list[int] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._poll, args=(i,), name=f"batch-worker-{i}", daemon=True)
                         for i in range(settings.worker_concurrency)]

    def kill_next_invocation(self, after: int, *, at: str = "claim") -> None:
        """The next invocation dies after sending ``after`` of its messages: at ``"claim"``, before
        it claims the next one; at ``"send"``, right after the provider accepted the next one,
        before its record says so."""
        if at not in ("claim", "send"):
            raise ValueError("at must be 'claim' or 'send'")
        if at == "send":
            _install_send_hook()
        with self._lock:
            self._kill.append((after, at))

    def start(self) -> "QueueRunner":
        for thread in self._threads:
            thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=self.function_timeout + 5)
        _remove_send_hook()

    def _poll(self, index: int) -> None:
        while not self._stop.is_set():
            try:
                received = self.sqs.receive_message(QueueUrl=self.queue_url, MaxNumberOfMessages=10,
                                                    WaitTimeSeconds=1, AttributeNames=["All"])
            except Exception:
                if self._stop.wait(0.5):
                    return
                continue
            if received.get("Messages"):
                self._invoke(index, received["Messages"])

    def _invoke(self, index: int, messages: list[dict]) -> None:
        event = {"Records": [{
            "messageId": m["MessageId"], "receiptHandle": m["ReceiptHandle"], "body": m["Body"],
            "attributes": {"ApproximateReceiveCount": m.get("Attributes", {}).get("ApproximateReceiveCount", "1")},
            "eventSource": "aws:sqs"} for m in messages]}
        bucket, dies = self.buckets[index], None
        with self._lock:
            self.invocations += 1
            if self._kill:
                after, at = self._kill.pop(0)
                if at == "claim":
                    bucket = _DyingBucket(bucket, after)
                else:
                    dies = _DiesAfterSend(after)
        _local.dies = dies
        try:
            result = self.worker.handle(event, _Context(self.function_timeout), settings=self.settings, pacer=bucket)
        except WorkerDied:
            with self._lock:
                self.deaths += 1
            return  # nothing deleted: every record comes back after the visibility timeout
        finally:
            _local.dies = None
        # Too few messages to die in: the next invocation will.
        if isinstance(bucket, _DyingBucket):
            with self._lock:
                self._kill.insert(0, (bucket.allowed, "claim"))
        elif dies is not None:
            with self._lock:
                self._kill.insert(0, (dies.allowed, "send"))
        failed = {f["itemIdentifier"] for f in result.get("batchItemFailures", [])}
        done = [{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]}
                for i, m in enumerate(messages) if m["MessageId"] not in failed]
        if done:
            self.sqs.delete_message_batch(QueueUrl=self.queue_url, Entries=done)


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
        from chalicelib.segments import segment

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
