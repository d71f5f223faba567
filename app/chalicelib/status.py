"""Delivery status ingest: CloudWatch Logs subscription events in, final statuses out.

Two documented log formats arrive here:
- SNS SMS delivery-status logs (``sns/<region>/<account>/DirectPublishToPhoneNumber[/Failure]``):
  ``{"notification": {"messageId", "timestamp"}, "delivery": {"priceInUSD", "providerResponse", ...},
  "status": "SUCCESS" | "FAILURE"}``
- End User Messaging configuration-set events (CloudWatch Logs event destination):
  ``{"eventType": "TEXT_DELIVERED", "eventTimestamp": ms, "isFinal": true, "messageId",
  "messageStatus", "messageStatusDescription", "totalMessagePrice", "totalCarrierFee", ...}``

Both are keyed by the provider's message id. Status only moves forward (``store.settle``). An
event for an unknown id, or a line that is not one of these shapes, is counted and skipped; the
rest of the batch is still applied.
"""
from __future__ import annotations

import base64
import gzip
import json
from dataclasses import dataclass
from datetime import datetime, timezone

from . import store
from .log import logger
from .phone import scrub

# End User Messaging statuses that mean the message reached the carrier or the handset. With
# isFinal true, every other status is a failure (blocked, unreachable, opted out, ...).
EUM_SUCCESS = frozenset({"SUCCESSFUL", "DELIVERED"})


@dataclass(frozen=True)
class Receipt:
    provider_id: str
    status: str  # store.DELIVERED | store.FAILED
    at_ms: int
    price_usd: float | None
    response: str


class Malformed(ValueError):
    pass


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
                           float(price) if price is not None else None, str(delivery.get("providerResponse", "")))
        if "eventType" in data and "messageId" in data:  # End User Messaging
            if not data.get("isFinal"):
                return None
            status = store.DELIVERED if data["messageStatus"] in EUM_SUCCESS else store.FAILED
            price = data.get("totalMessagePrice")
            if price is not None:
                price = float(price) + float(data.get("totalCarrierFee") or 0)
            response = f"{data['eventType']}: {data.get('messageStatusDescription', '')}".rstrip(": ")
            return Receipt(str(data["messageId"]), status, int(data["eventTimestamp"]), price, response)
    except (KeyError, TypeError, ValueError) as err:
        raise Malformed(f"missing or wrong field: {err}") from None
    raise Malformed("neither an SNS delivery log nor an End User Messaging event")


def apply(receipt: Receipt) -> str:
    """Settle one receipt; returns what happened: applied, stale or unknown."""
    message_id = store.find_id_by_provider_id(receipt.provider_id)
    if message_id is None:
        return "unknown"
    fields = {"priceUsd": receipt.price_usd, "providerResponse": receipt.response}
    if receipt.status == store.FAILED:
        fields["error"] = {"code": "DeliveryFailed", "message": receipt.response or "The carrier did not deliver it."}
    updated = store.settle(message_id, receipt.status, receipt.at_ms, **fields)
    return "applied" if updated else "stale"


def ingest(event: dict) -> dict[str, int]:
    """Handle one subscription event; returns the counts it logs."""
    counts = {"applied": 0, "stale": 0, "pending": 0, "unknown": 0, "malformed": 0}
    try:
        group, lines = decode(event)
    except (KeyError, TypeError, ValueError, OSError, EOFError) as err:
        logger.warning("undecodable log event", extra={"reason": str(err)})
        counts["malformed"] += 1
        return counts
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
        outcome = apply(receipt)
        counts[outcome] += 1
        if outcome == "unknown":
            logger.warning("status for an unknown message", extra={"providerMessageId": receipt.provider_id})
    logger.info("status ingest", extra={"logGroup": group, **counts})
    return counts
