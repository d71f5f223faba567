"""The carrier's delivery receipts and CloudWatch Logs' subscription filters, played locally.

``Receipts`` turns each accepted send into delivery receipts a moment later, in the documented formats: an
SNS SMS delivery-status log line (``sns_receipt``), or End User Messaging events (``eum_receipts``), which
echo the send's ``Context`` in ``context``. It writes them to the matching log group, then hands them to the
real status-ingest function the way a subscription filter does (``subscription_event``: gzipped, base64).
As Lambda does for an asynchronous invocation, an ingest that raises is tried twice more, later, and then
kept aside (``failed``) as the function's on-failure destination would keep it; ``redrive()`` hands those
to the ingest again, as an operator would from that queue.

Destination numbers follow AWS's simulator conventions: the failure simulator numbers fail; every other
number is delivered (locally only; on AWS a real number gets its real outcome).
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

from . import appload  # noqa: F401  (puts chalicelib on the path)
from .polling import Poller
from chalicelib.sending import simulator

# AWS End User Messaging's destination simulator numbers (one table for the app, the receipts and smoke).
SIMULATOR_SUCCESS, SIMULATOR_FAILURE = simulator.SUCCESS, simulator.FAILURE
SMS_PRICE_USD = 0.00581  # per part, for realistic-looking receipts; not a quote
MMS_PRICE_USD = 0.02


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
                 context: dict | None = None, expired: bool = False) -> list[str]:
    """End User Messaging events for one send: a pending event, then the final one. Each carries
    the send's ``Context`` as ``context``, unchanged, as the event format documents. ``expired``: the
    send's TimeToLive ran out before the hand-off, so the final event is ``<TEXT|MEDIA>_TTL_EXPIRED``."""
    kind = "TEXT" if entry["channel"] == "sms" else "MEDIA"
    delivered = delivered and not expired
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

    if expired:  # the user guide: "the time it takes to deliver the message exceeds the TTL value"
        final = event("TTL_EXPIRED", True, "The message was not handed off before its TimeToLive ran out", now)
    elif delivered:
        final = event("DELIVERED", True, "Message has been accepted by phone", now)
    else:
        final = event("CARRIER_UNREACHABLE", True, "Phone carrier is currently unreachable/unavailable", now)
    return [event("PENDING", False, "Message is pending delivery", now - 10), final]


class Receipts(Poller):
    """Turn each accepted send into delivery receipts, ``delay`` seconds later, in batches.

    An ingest invocation that raises is invoked again after each of ``retry_delays`` (Lambda's
    asynchronous retries: two, about one and two minutes apart on AWS; seconds here), then lands
    in ``failed``, as in the function's on-failure destination. ``stop`` waits for the invocation under way
    up to ``function_timeout`` and a little more."""

    def __init__(self, *, emulator, logs, ingest, sns_groups: tuple[str, str], events_group: str,
                 origination: str, delay: float = 0.3, retry_delays: tuple[float, ...] = (1.0, 2.0),
                 function_timeout: float = 5.0):
        super().__init__(name="delivery-receipts", function_timeout=function_timeout)
        self.logs, self.ingest = logs, ingest
        self._standin = getattr(emulator, "sms_voice", None)  # which sends' TimeToLive ran out
        self.sns_groups, self.events_group, self.origination = sns_groups, events_group, origination
        self.delay, self.retry_delays = delay, tuple(retry_delays)
        self.invocations = 0
        self.failed: list[dict] = []  # subscription events every attempt failed on
        self._failed_lock = threading.Lock()
        self._pending: queue.Queue = queue.Queue()
        for group in (*sns_groups, events_group):
            try:
                logs.create_log_stream(logGroupName=group, logStreamName="local")
            except logs.exceptions.ResourceAlreadyExistsException:
                pass
        emulator.listeners.append(self._on_send)

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
                expired = self._standin is not None and entry["providerMessageId"] in self._standin.ttl_expired
                lines.setdefault(self.events_group, []).extend(
                    eum_receipts(entry, delivered, parts, self.origination, context, expired))
        for group, group_lines in lines.items():
            now = int(time.time() * 1000)
            self.logs.put_log_events(logGroupName=group, logStreamName="local",
                                     logEvents=[{"timestamp": now, "message": line} for line in group_lines])
            self._invoke(subscription_event(group, group_lines))
