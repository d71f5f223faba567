"""Delivery status ingest: CloudWatch Logs subscription events in, final statuses out.

Two documented log formats arrive here:
- SNS SMS delivery-status logs (``sns/<region>/<account>/DirectPublishToPhoneNumber[/Failure]``):
  ``{"notification": {"messageId", "timestamp"}, "delivery": {"priceInUSD", "providerResponse", ...},
  "status": "SUCCESS" | "FAILURE"}``
- End User Messaging configuration-set events (CloudWatch Logs event destination):
  ``{"eventType": "TEXT_DELIVERED", "eventTimestamp": ms, "isFinal": true, "messageId",
  "messageStatus", "messageStatusDescription", "context": {...}, "totalMessagePrice",
  "totalCarrierFee", ...}``

An End User Messaging event echoes the ``Context`` its send carried in ``context``; ours holds
``{"messageId": <our record id>}`` (``providers.CONTEXT_KEY``), so such an event settles that record
directly. Every other event is matched by the provider's message id through the table's index,
which the send path writes only after the provider answered, and which is eventually consistent:
an id not found yet is looked up again for a few seconds, backing off. An End User Messaging
event still unknown whose event is young makes the invocation raise once everything else is
applied, so that Lambda's asynchronous retries, and then the function's on-failure destination,
keep the event: the stage's own configuration set wrote it, so it is ours. SNS's delivery-status
groups are account-wide and hold every SNS SMS of the account and region (another stage's,
Cognito's, ...), so an SNS receipt still unknown after the few seconds' look-ups is counted and
logged, never retried: retrying strangers' receipts would fill the on-failure queue. Older
unknown ids are counted and logged too.

Status only moves forward and each event is applied at most once (``store.settle`` is a
conditional write keyed on the event's time), so a retried invocation applies nothing twice.
A receipt DynamoDB refuses to write fails the invocation too, once every other line is applied,
so that Lambda retries it (and then keeps it in the on-failure destination): one write that keeps
failing holds back no other message's status.
A line that is not one of these shapes is counted and skipped; the rest of the batch is applied.

End User Messaging's ``messageStatus`` ``UNKNOWN`` (sent, for one, when no carrier receipt came
within 72 hours) is its own final status, ``unknown``: not a delivery failure. Its ``TEXT_TTL_EXPIRED``
and ``MEDIA_TTL_EXPIRED`` events (the message's ``TimeToLive`` ran out before it was handed off) end the
message ``failed`` with ``Expired``, the code the send path gives one whose period ran out before it left.
"""
from __future__ import annotations

import base64
import gzip
import json
import time
from datetime import datetime, timezone
from typing import NamedTuple

from ..core import store
from ..core.log import logger, scrub
from ..core.schema import CONTEXT_KEY

# End User Messaging statuses that mean the message reached the carrier or the handset. With
# isFinal true, UNKNOWN means nobody knows; every other status is a failure (blocked,
# unreachable, opted out, ...).
EUM_SUCCESS = frozenset({"SUCCESSFUL", "DELIVERED"})
EUM_UNKNOWN = "UNKNOWN"
# The events of a message whose TimeToLive ran out (botocore's EventType enum of pinpoint-sms-voice-v2;
# TEXT_TTL_EXPIRED is also in the user guide's list of event types), and the messageStatus such an event
# is expected to carry (an event's messageStatus is its type less the channel, as in TEXT_SUCCESSFUL /
# SUCCESSFUL; AWS shows no example of this one).
EUM_EXPIRED_EVENTS = frozenset({"TEXT_TTL_EXPIRED", "MEDIA_TTL_EXPIRED"})
EUM_EXPIRED_STATUS = "TTL_EXPIRED"
EXPIRED = "Expired"  # the message error code, as the send path gives it (``messages.expired_error``)
NO_RECEIPT = "No carrier receipt came within 72 hours; whether it arrived is not known."

# Looking up a provider id the index does not hold yet: sleeps between the attempts (seconds).
LOOKUP_RETRY_DELAYS = (0.25, 0.5, 1.0, 2.0)
# An event younger than this (by its own timestamp) whose provider id is still unknown makes the
# invocation fail, so that Lambda retries it (twice over about three minutes) and then hands it
# to the on-failure destination.
RETRY_YOUNGER_THAN_MS = 15 * 60 * 1000


class Receipt(NamedTuple):
    provider_id: str
    status: str  # store.DELIVERED | store.FAILED | store.UNKNOWN
    at_ms: int
    price_usd: float | None
    response: str
    message_id: str | None = None  # our record id, when the event echoes the send's Context
    shared: bool = False  # from SNS's account-wide log groups, which hold other senders' receipts too
    error_code: str = "DeliveryFailed"  # of a failed one: ``Expired`` when its TimeToLive ran out


class Malformed(ValueError):
    pass


class UnknownReceipts(RuntimeError):
    """Young receipts whose provider ids the table does not hold yet: fail the invocation so that
    Lambda delivers the event again (and finally to the on-failure destination)."""


class NotApplied(RuntimeError):
    """Receipts DynamoDB would not take (every other line was applied): fail the invocation so that
    Lambda delivers the event again (and finally to the on-failure destination)."""


def decode(event: dict) -> tuple[str, list[str]]:
    """A CloudWatch Logs subscription event (gzipped, base64) -> (log group, messages)."""
    data = json.loads(gzip.decompress(base64.b64decode(event["awslogs"]["data"])))
    if data.get("messageType") != "DATA_MESSAGE":  # CONTROL_MESSAGE: the service checking the destination
        return data.get("logGroup", ""), []
    return data["logGroup"], [e["message"] for e in data.get("logEvents", [])]


def _sns_time(text: str) -> int:
    """SNS writes ``2016-06-28 00:40:34.558`` (UTC)."""
    stamp = datetime.strptime(text, "%Y-%m-%d %H:%M:%S.%f").replace(tzinfo=timezone.utc)
    return int(stamp.timestamp() * 1000)


def _our_id(context) -> str | None:
    """Our record id from an event's ``context``, if the send carried ours."""
    if isinstance(context, dict):
        value = context.get(CONTEXT_KEY)
        if isinstance(value, str) and value:
            return value
    return None


def parse(line: str) -> Receipt | None:
    """One log line -> a final Receipt, None for an event that is not final yet; Malformed otherwise."""
    try:
        data = json.loads(line)
    except ValueError:
        raise Malformed("not JSON") from None
    if not isinstance(data, dict):
        raise Malformed("not a JSON object")
    try:
        if "notification" in data and "delivery" in data:  # SNS
            delivery = data["delivery"]
            status = {"SUCCESS": store.DELIVERED, "FAILURE": store.FAILED}[data["status"]]
            price = delivery.get("priceInUSD")
            return Receipt(str(data["notification"]["messageId"]), status,
                           _sns_time(data["notification"]["timestamp"]),
                           float(price) if price is not None else None, str(delivery.get("providerResponse", "")),
                           shared=True)
        if "eventType" in data and "messageId" in data:  # End User Messaging
            if not data.get("isFinal"):
                return None
            state = data["messageStatus"]
            expired = data["eventType"] in EUM_EXPIRED_EVENTS or state == EUM_EXPIRED_STATUS
            if expired:
                status = store.FAILED
            elif state in EUM_SUCCESS:
                status = store.DELIVERED
            elif state == EUM_UNKNOWN:
                status = store.UNKNOWN
            else:
                status = store.FAILED
            price = data.get("totalMessagePrice")
            if price is not None:
                price = float(price) + float(data.get("totalCarrierFee") or 0)
            description = data.get("messageStatusDescription") or (NO_RECEIPT if status == store.UNKNOWN else "")
            response = f"{data['eventType']}: {description}".rstrip(": ")
            return Receipt(str(data["messageId"]), status, int(data["eventTimestamp"]), price, response,
                           _our_id(data.get("context")), error_code=EXPIRED if expired else "DeliveryFailed")
    except (KeyError, TypeError, ValueError) as err:
        raise Malformed(f"missing or wrong field: {err}") from None
    raise Malformed("neither an SNS delivery log nor an End User Messaging event")


def _fields(receipt: Receipt) -> dict:
    fields = {"priceUsd": receipt.price_usd, "providerResponse": receipt.response}
    if receipt.status == store.FAILED:
        fields["error"] = {"code": receipt.error_code,
                           "message": receipt.response or "The carrier did not deliver it."}
    return fields


def apply(receipt: Receipt) -> str:
    """Settle one receipt; returns what happened: applied, stale, unknown (no record has this
    provider id yet) or orphan (the event names one of our ids that has no record)."""
    if receipt.message_id is not None:
        # Matched by our own id: no index, so no race with the write of the provider id.
        updated, exists = store.settle_checked(receipt.message_id, receipt.status, receipt.at_ms,
                                               provider_id=receipt.provider_id, **_fields(receipt))
        if updated:
            return "applied"
        # Not applied: a repeated or older event, or a record that is gone (expired) or never was.
        return "stale" if exists else "orphan"
    message_id = store.find_id_by_provider_id(receipt.provider_id)
    if message_id is None:
        return "unknown"
    updated = store.settle(message_id, receipt.status, receipt.at_ms, **_fields(receipt))
    return "applied" if updated else "stale"


def is_young(receipt: Receipt, now_ms: int) -> bool:
    """Whether the event is recent enough that its provider id may still be on its way to the
    table (either side of now: clocks differ)."""
    return abs(now_ms - receipt.at_ms) < RETRY_YOUNGER_THAN_MS


def _retry_unknown(pending: list[Receipt], counts: dict[str, int], sleep) -> tuple[list[Receipt], int]:
    """Look the unknown provider ids up again, backing off. Returns (those still unknown, how many
    were found on a retry)."""
    found = 0
    for delay in LOOKUP_RETRY_DELAYS:
        if not pending:
            break
        sleep(delay)
        still = []
        for receipt in pending:
            outcome = apply(receipt)
            if outcome == "unknown":
                still.append(receipt)
            else:
                counts[outcome] += 1
                found += 1
        pending = still
    return pending, found


def ingest(event: dict, *, now_ms: int | None = None, sleep=time.sleep) -> dict[str, int]:
    """Handle one subscription event; returns the counts it logs. Raises, after applying everything
    else, ``NotApplied`` when DynamoDB refused to write a receipt, and ``UnknownReceipts`` when young
    receipts still name provider ids no record holds."""
    counts = {"applied": 0, "stale": 0, "pending": 0, "unknown": 0, "malformed": 0}
    try:
        group, lines = decode(event)
    except (KeyError, TypeError, ValueError, OSError, EOFError) as err:
        logger.warning("undecodable log event", extra={"reason": str(err)})
        counts["malformed"] += 1
        return counts
    now_ms = int(time.time() * 1000) if now_ms is None else now_ms
    young: list[Receipt] = []
    failed: list[Receipt] = []
    for line in lines:
        try:
            receipt = parse(line)
        except Malformed as err:
            counts["malformed"] += 1
            logger.warning("malformed status line skipped", extra={"reason": str(err), "line": scrub(line[:300])})
            continue
        if receipt is None:
            counts["pending"] += 1
            continue
        try:
            outcome = apply(receipt)
        except Exception as err:  # DynamoDB refused this one: apply the others first, then fail
            failed.append(receipt)
            logger.warning("status not applied", extra={"providerMessageId": receipt.provider_id,
                                                        "messageId": receipt.message_id, "reason": type(err).__name__})
            continue
        if outcome == "unknown" and is_young(receipt, now_ms):
            young.append(receipt)  # its provider id may not be in the index yet: look again below
            continue
        if outcome in ("unknown", "orphan"):
            counts["unknown"] += 1
            logger.warning("status for an unknown message",
                           extra={"providerMessageId": receipt.provider_id, "messageId": receipt.message_id})
            continue
        counts[outcome] += 1
    young, found = _retry_unknown(young, counts, sleep)
    for receipt in [r for r in young if r.shared]:
        counts["unknown"] += 1
        logger.warning("status for an unknown message", extra={"providerMessageId": receipt.provider_id})
    young = [r for r in young if not r.shared]
    logger.info("status ingest", extra={"logGroup": group, **counts, "foundOnRetry": found,
                                        "notFoundYet": len(young), "notApplied": len(failed)})
    if failed:  # a retried invocation applies nothing twice: settling is conditional on the event's time
        raise NotApplied(f"{len(failed)} receipt(s) could not be written; the rest of the event was applied")
    if young:
        logger.warning("status for messages not found yet; failing the invocation so that Lambda retries it",
                       extra={"providerMessageIds": [r.provider_id for r in young]})
        raise UnknownReceipts(f"{len(young)} receipt(s) name provider ids that no message holds yet")
    return counts
