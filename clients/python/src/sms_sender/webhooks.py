"""Verifying a webhook delivery: Standard Webhooks v1 (https://www.standardwebhooks.com/), symmetric.

The signed content is ``"{webhook-id}.{webhook-timestamp}.{body}"``, with the body's bytes exactly as received;
the key is the secret less ``whsec_``, base64-decoded; ``webhook-signature`` holds one or more space-separated
``v1,<base64 HMAC-SHA256>`` (more than one for a day after a rotation), and any one that matches is enough.
Signatures are compared in constant time, and a ``webhook-timestamp`` more than ``tolerance`` seconds off the
clock is refused (replays). The ``standardwebhooks`` package does the same; this one needs no dependency.
"""
from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import time
from typing import Any, Callable, Mapping

from .errors import WebhookVerificationError
from .models import WebhookEvent

PREFIX = "whsec_"
TOLERANCE = 5 * 60  # seconds, as the standardwebhooks libraries allow


def _key(secret: str) -> bytes:
    try:
        return base64.b64decode(secret[len(PREFIX):] if secret.startswith(PREFIX) else secret, validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("not a webhook secret: expected whsec_ and base64") from None


def sign(secret: str, webhook_id: str, timestamp: int, body: bytes | str) -> str:
    """The ``v1,<signature>`` of one delivery (what the API sends; handy in a receiver's tests)."""
    content = body.encode() if isinstance(body, str) else body
    digest = hmac.new(_key(secret), f"{webhook_id}.{timestamp}.".encode() + content, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def _header(headers: Mapping[str, str], name: str) -> str:
    for key, value in headers.items():
        if key.lower() == name:
            return value
    raise WebhookVerificationError(f"missing {name} header")


def verify_webhook(body: bytes | str, headers: Mapping[str, str], secret: str | list[str], *,
                   tolerance: float = TOLERANCE, now: Callable[[], float] = time.time) -> WebhookEvent:
    """Verify one delivery and answer its event; ``WebhookVerificationError`` if it does not verify.

    ``body``: the request body exactly as received (bytes; do not parse and re-serialise it). ``headers``: the
    request's headers (any case). ``secret``: the endpoint's ``whsec_`` secret, or a list of them (during a
    rotation)."""
    webhook_id = _header(headers, "webhook-id")
    stamp = _header(headers, "webhook-timestamp")
    signatures = _header(headers, "webhook-signature").split()
    try:
        timestamp = int(stamp)
    except ValueError:
        raise WebhookVerificationError("webhook-timestamp is not a number of seconds") from None
    if abs(now() - timestamp) > tolerance:
        raise WebhookVerificationError("webhook-timestamp is too far from now (a replay, or a wrong clock)")
    content = body.encode() if isinstance(body, str) else bytes(body)
    offered = [sig.split(",", 1)[1].encode() for sig in signatures if sig.startswith("v1,")]
    for one in [secret] if isinstance(secret, str) else list(secret):
        expected = sign(one, webhook_id, timestamp, content).split(",", 1)[1].encode()
        # compare against every offered signature, so the time taken says nothing about which matched
        matched = False
        for candidate in offered:
            matched |= hmac.compare_digest(expected, candidate)
        if matched:
            try:
                payload: Any = json.loads(content)
            except ValueError:
                raise WebhookVerificationError("the body is not JSON") from None
            return WebhookEvent.from_json(payload)
    raise WebhookVerificationError("no signature matches")
