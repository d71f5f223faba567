"""What a message counts for in the daily figures, and the change a stream record of the messages table makes
to them. Pure functions: no AWS call.

A message counts on the UTC day of its ``createdAt``, under its channel (``sms`` or ``mms``). Test-key messages
(``test``) and dry runs (``dryRun``) never count, nor does any item that is not a message (a batch summary).

- An outbound message counts once the provider took it: ``sent`` (``pending``: not final yet), ``delivered``,
  ``failed`` with a ``providerMessageId`` (the carrier failed it: a refusal before sending has none), and
  ``unknown`` (it may have gone). It then counts in ``accepted``, its ``segments``, its ``priceUsd`` in
  ``costUsd``, and, failed, its error code in the failures by code.
- A reply (``inbound``, ``received``) counts in ``received``.
- Any other status counts nothing: ``queued``, ``sending``, ``validated``, a ``failed`` without a provider id,
  and any status this code does not know (``scheduled``, ``canceled``...).

A stream record changes the figures by what its new image counts for less what its old image counted for, so
a message moves from ``pending`` to its final status when it settles, and from one final status to another
when a later receipt settles it again. A deletion (a TTL expiry) changes nothing: the figures outlive the
messages.
"""
from __future__ import annotations

import re
from decimal import Decimal
from typing import NamedTuple

from ..core import schema

CHANNELS = ("sms", "mms")
# The whole numbers each channel of a day carries, in the order the report shows them.
COUNTS = ("accepted", "delivered", "failed", "unknown", "pending", "received", "segments")
COST = "costUsd"
# A failure's code is counted under an attribute of its own: "failure#<code>".
FAILURE = "failure#"
OTHER_CODE = "Unknown"  # a failed message whose error carries no usable code
_CODE = re.compile(r"[A-Za-z0-9]{1,64}")
_DAY = re.compile(r"\d{4}-\d{2}-\d{2}")

OUTBOUND, INBOUND = "outbound", "inbound"
SENT, DELIVERED, FAILED, UNKNOWN, RECEIVED = "sent", "delivered", "failed", "unknown", "received"
# The outbound statuses that count, and the figure each one counts in.
FINAL = {SENT: "pending", DELIVERED: "delivered", FAILED: "failed", UNKNOWN: "unknown"}


class Key(NamedTuple):
    """Where a message counts: its UTC day (YYYY-MM-DD) and its channel."""
    day: str
    channel: str


def _text(image: dict, name: str) -> str | None:
    value = image.get(name)
    return value.get("S") if isinstance(value, dict) else None


def _number(image: dict, name: str) -> Decimal | None:
    value = image.get(name)
    raw = value.get("N") if isinstance(value, dict) else None
    try:
        return Decimal(raw) if raw is not None else None
    except ArithmeticError:
        return None


def _true(image: dict, name: str) -> bool:
    value = image.get(name)
    return isinstance(value, dict) and value.get("BOOL") is True


def failure_code(image: dict) -> str:
    """The error code of a failed message's image (``error.code``), as an attribute name may carry it."""
    error = image.get("error")
    code = None
    if isinstance(error, dict) and isinstance(error.get("M"), dict):
        code = _text(error["M"], "code")
    return code if isinstance(code, str) and _CODE.fullmatch(code) else OTHER_CODE


def counts_of(image: dict | None) -> tuple[Key, dict[str, Decimal | int]] | None:
    """What one image of a message record (DynamoDB JSON) counts for: (where, {figure: amount}), or None."""
    if not image:
        return None
    message_id = _text(image, schema.MESSAGES_KEY)
    channel, created = _text(image, "channel"), _text(image, "createdAt") or ""
    if not message_id or message_id.startswith(schema.BATCH_ID_PREFIX) or channel not in CHANNELS \
            or not _DAY.fullmatch(created[:10]):
        return None
    if _true(image, "test") or _true(image, "dryRun"):
        return None
    key, status = Key(created[:10], channel), _text(image, "status")
    if (_text(image, "direction") or OUTBOUND) == INBOUND:
        return (key, {"received": 1}) if status == RECEIVED else None
    if status not in FINAL or (status == FAILED and not _text(image, schema.MESSAGES_PROVIDER_KEY)):
        return None
    counts: dict[str, Decimal | int] = {"accepted": 1, FINAL[status]: 1}
    segments = _number(image, "segments")
    if segments:
        counts["segments"] = int(segments)
    price = _number(image, "priceUsd")
    if price:
        counts[COST] = price
    if status == FAILED:
        counts[FAILURE + failure_code(image)] = 1
    return key, counts


def change(record: dict) -> dict[Key, dict[str, Decimal | int]]:
    """The change one stream record (Lambda's DynamoDB event format) makes to the figures: per key, the
    amounts to add (negative ones to take away). Empty when it changes nothing."""
    if record.get("eventName") == "REMOVE":
        return {}
    images = record.get("dynamodb") or {}
    found: dict[Key, dict[str, Decimal | int]] = {}
    for sign, image in ((1, images.get("NewImage")), (-1, images.get("OldImage"))):
        counted = counts_of(image)
        if counted is None:
            continue
        key, counts = counted
        into = found.setdefault(key, {})
        for name, amount in counts.items():
            into[name] = into.get(name, 0) + sign * amount
    return {key: nonzero for key, counts in found.items()
            if (nonzero := {name: amount for name, amount in counts.items() if amount})}


def add(into: dict[Key, dict], more: dict[Key, dict]) -> None:
    """Add the changes ``more`` to ``into`` (both keyed as ``change`` answers)."""
    for key, counts in more.items():
        target = into.setdefault(key, {})
        for name, amount in counts.items():
            target[name] = target.get(name, 0) + amount
