"""Request models: turn a JSON body into a validated outbound message, or one clear 400."""
from __future__ import annotations

import json
import re
from dataclasses import dataclass

from . import media, phone
from .errors import InvalidRequest
from .settings import SMS_TYPES, Settings

MAX_BODY = 1600
SNS_MAX_BYTES = 1600
_SENDER_ID = re.compile(r"[A-Za-z0-9]{1,11}")


@dataclass(frozen=True)
class Outbound:
    channel: str  # "sms" | "mms"
    to: str  # E.164
    body: str | None
    sms_type: str = "transactional"
    sender_id: str | None = None
    media_url: str | None = None


def parse_json(raw) -> dict:
    if raw in (None, b"", ""):
        raise InvalidRequest("InvalidJson", "The request body must be a JSON object.")
    try:
        data = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise InvalidRequest("InvalidJson", "The request body is not valid JSON.") from None
    if not isinstance(data, dict):
        raise InvalidRequest("InvalidJson", "The request body must be a JSON object.")
    return data


def _body(data: dict, *, required: bool) -> str | None:
    body = data.get("body")
    if body is None or body == "":
        if required:
            raise InvalidRequest("MissingField", "'body' is required.", field="body")
        return None
    if not isinstance(body, str):
        raise InvalidRequest("InvalidBody", "'body' must be a string.", field="body")
    if len(body) > MAX_BODY:
        raise InvalidRequest("BodyTooLong", f"'body' may be at most {MAX_BODY} characters; it has {len(body)}.",
                             field="body")
    return body


def _to(data: dict, settings: Settings) -> str:
    number, _country = phone.normalize(data.get("to"), data.get("country"),
                                       allowed_countries=settings.allowed_countries)
    return number


def sms(data: dict, settings: Settings) -> Outbound:
    body = _body(data, required=True)
    sms_type = data.get("type", settings.default_sms_type)
    if not isinstance(sms_type, str) or sms_type.lower() not in SMS_TYPES:
        raise InvalidRequest("InvalidType", "'type' must be 'transactional' or 'promotional'.", field="type")
    sender_id = data.get("senderId", settings.sender_id)
    if sender_id is not None and (
        not isinstance(sender_id, str) or not _SENDER_ID.fullmatch(sender_id) or sender_id.isdigit()
    ):
        raise InvalidRequest("InvalidSenderId", "'senderId' must be 1 to 11 letters and digits, at least one a letter.",
                             field="senderId")
    if settings.sms_provider == "sns" and len(body.encode("utf-8")) > SNS_MAX_BYTES:
        raise InvalidRequest("BodyTooLong", f"SNS sends at most {SNS_MAX_BYTES} bytes per message; shorten 'body'.",
                             field="body")
    return Outbound("sms", _to(data, settings), body, sms_type.lower(), sender_id or None)


def mms(data: dict, settings: Settings) -> Outbound:
    body = _body(data, required=False)
    media.parse_url(settings, data.get("mediaUrl"))
    return Outbound("mms", _to(data, settings), body, media_url=data["mediaUrl"])


def media_request(data: dict) -> tuple[str, int]:
    content_type = data.get("contentType")
    if not isinstance(content_type, str) or not content_type.strip():
        raise InvalidRequest("MissingField", "'contentType' is required.", field="contentType")
    size = data.get("size")
    if size is None:
        raise InvalidRequest("MissingField", "'size' (bytes) is required.", field="size")
    if isinstance(size, bool) or not isinstance(size, int) or size < 1:
        raise InvalidRequest("InvalidSize", "'size' must be a positive whole number of bytes.", field="size")
    return content_type.strip(), size


def limit(raw, default: int = 20, maximum: int = 100) -> int:
    if raw is None:
        return default
    if not re.fullmatch(r"\d{1,4}", raw) or not 1 <= int(raw) <= maximum:
        raise InvalidRequest("InvalidLimit", f"'limit' must be a whole number from 1 to {maximum}.", field="limit")
    return int(raw)
