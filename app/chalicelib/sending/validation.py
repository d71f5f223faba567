"""Request models: turn a JSON body into a validated outbound message, or one clear 400."""
from __future__ import annotations

import re
import time
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from typing import NamedTuple

from ..core import phone, store
from ..core.errors import InvalidRequest, Unprocessable
from ..core.inputs import SURROGATE
from ..core.settings import SMS_TYPES, Settings
from ..core.text import check_size_and_characters, visible
from . import countries, media

SNS_MAX_BYTES = 1600
# Any control character at all: never part of a phone number, a media URL or a header value.
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f]")
# S3 object keys are at most 1024 bytes of UTF-8; SendMediaMessage takes media URLs of at most 2048 characters.
S3_MAX_KEY_BYTES = 1024
MEDIA_URL_MAX = 2048
_SENDER_ID = re.compile(r"[A-Za-z0-9]{1,11}")
# SNS takes 3 to 11 (AWS.SNS.SMS.SenderID: https://docs.aws.amazon.com/sns/latest/dg/sms_publish-to-phone.html).
SNS_SENDER_ID_MIN = 3


# How long a message may wait before it goes (``validityPeriod``, seconds): End User Messaging's TimeToLive
# goes up to 259,200 (72 hours, its default); the floor of 60 leaves room for a send (TimeToLive's own
# minimum is 5).
MIN_VALIDITY, MAX_VALIDITY = 60, 259_200
# ``maxPriceUsd``: End User Messaging's MaxPrice (botocore's model: a string of 2 to 8 characters matching
# this pattern), at most "9.99999" (the cap; the model's pattern would take up to "99.99999").
MAX_PRICE = re.compile(r"[0-9]{0,2}\.[0-9]{1,5}")
MAX_PRICE_CAP = Decimal("9.99999")
# How far ahead a message may be scheduled.
MAX_SEND_AHEAD = timedelta(days=35)


class Outbound(NamedTuple):
    channel: str  # "sms" | "mms"
    to: str  # E.164
    body: str | None
    sms_type: str = "transactional"
    # The sender id the message goes out with: already checked against the stage and the
    # destination country, so None wherever none applies.
    sender_id: str | None = None
    media_url: str | None = None
    dry_run: bool = False
    # Who sends it: the key's id, and whether it is a test key (then no provider is ever called).
    key_id: str | None = None
    test: bool = False
    # ``validityPeriod`` (seconds from creation after which it is not sent) and ``maxPriceUsd`` (End User
    # Messaging's MaxPrice, a decimal string), or None.
    validity_period: int | None = None
    max_price_usd: str | None = None
    # The template version the body was rendered from (``templated``), if any.
    template_id: str | None = None
    template_version: int | None = None
    # When it is to leave (``sendAt``, UTC as the API writes times), or None: now.
    send_at: str | None = None


def _body(data: dict, *, required: bool) -> str | None:
    body = data.get("body")
    if body is None or body == "":
        if required:
            said = "is required" if body is None else "is empty"
            raise InvalidRequest("MissingField", f"'body' {said}: an SMS needs its text (1 to 1600 characters).",
                                 field="body")
        return None
    if not isinstance(body, str):
        raise InvalidRequest("InvalidBody", "'body' must be a string.", field="body")
    check_size_and_characters(body)
    if not visible(body):
        # End User Messaging refuses such a body too (MessageBody's pattern is (?!\s*$)[\s\S]+).
        hint = "" if required else " Leave 'body' out to send only the media."
        raise InvalidRequest("InvalidBody", "'body' has no visible character (only spaces, line breaks or "
                             f"invisible characters).{hint}", field="body")
    return body


def _to(data: dict, settings: Settings) -> tuple[str, str]:
    """(E.164 number, ISO country of the destination)."""
    return phone.normalize(data.get("to"), data.get("country"), allowed_countries=settings.allowed_countries)


def _dry_run(data: dict, settings: Settings, channel: str) -> bool:
    """``dryRun``: AWS validates the message all the way and sends (and charges) nothing. Only
    End User Messaging has that (``DryRun`` on SendTextMessage / SendMediaMessage); SNS has none."""
    dry_run = data.get("dryRun")
    if dry_run is None:  # absent or null, as the other optional fields
        return False
    if not isinstance(dry_run, bool):
        raise InvalidRequest("InvalidDryRun", "'dryRun' must be true or false.", field="dryRun")
    if dry_run and channel == "sms" and settings.sms_provider == "sns":
        raise InvalidRequest("DryRunNotSupported", (
            "This stage sends SMS through Amazon SNS, which has no dry run. Stages whose smsProvider is "
            "'sms-voice' (End User Messaging SMS) support dryRun for SMS; MMS supports it on every stage."),
            field="dryRun")
    return dry_run


def _sender_id(data: dict, settings: Settings, country: str) -> str | None:
    """The sender id an SMS goes out with, or None. A request can name only the stage's own sender
    id on an End User Messaging stage (IAM grants that one, per country, and no other), and only to a
    country where sender ids exist. The stage's default simply does not apply to other countries."""
    requested = data.get("senderId")
    if requested is None:
        stage = settings.sender_id
        return stage if stage and countries.sender_id_supported(country) else None
    shortest = SNS_SENDER_ID_MIN if settings.sms_provider == "sns" else 1
    if not isinstance(requested, str) or not _SENDER_ID.fullmatch(requested) or requested.isdigit() \
            or len(requested) < shortest:
        raise InvalidRequest("InvalidSenderId", f"'senderId' must be {shortest} to 11 letters and digits, at least "
                             "one a letter.", field="senderId")
    if settings.sms_provider == "sms-voice" and requested != settings.sender_id:
        can_use = (f"the only sender id this stage can use is '{settings.sender_id}' (or leave 'senderId' out)"
                   if settings.sender_id else "this stage has no sender id (leave 'senderId' out)")
        raise InvalidRequest("InvalidSenderId", f"'senderId' {requested!r} is not this stage's: {can_use}.",
                             field="senderId")
    if not countries.sender_id_supported(country):
        raise InvalidRequest("SenderIdNotSupported", (
            f"Sender ids are not supported for {country or 'this destination'}: the message would go from a "
            "phone number. Leave 'senderId' out for this destination."), field="senderId")
    return requested


def validity_period(data: dict) -> int | None:
    """``validityPeriod``: whole seconds from 60 to 259,200, or absent (null)."""
    period = data.get("validityPeriod")
    if period is None:
        return None
    if isinstance(period, bool) or not isinstance(period, int) or not MIN_VALIDITY <= period <= MAX_VALIDITY:
        raise InvalidRequest("InvalidValidityPeriod", f"'validityPeriod' must be a whole number of seconds from "
                             f"{MIN_VALIDITY} to {MAX_VALIDITY:,} (72 hours).", field="validityPeriod")
    return period


def max_price(data: dict) -> str | None:
    """``maxPriceUsd``: a decimal string End User Messaging's MaxPrice takes, above 0 and at most "9.99999",
    or absent (null). Returned as given: it goes to AWS unchanged."""
    price = data.get("maxPriceUsd")
    if price is None:
        return None
    if not isinstance(price, str) or not MAX_PRICE.fullmatch(price) or not 0 < Decimal(price) <= MAX_PRICE_CAP:
        raise InvalidRequest("InvalidMaxPrice", "'maxPriceUsd' must be a string holding a price in US dollars per "
                             "message part, above 0 and at most \"9.99999\", with a decimal point and at most 5 "
                             "decimals: \"0.05\", not 0.05 or \"5\".", field="maxPriceUsd")
    return price


def _limits(data: dict, settings: Settings, channel: str) -> dict:
    """The ``Outbound`` fields of ``validityPeriod`` and ``maxPriceUsd``. SNS has no price cap: an SMS with
    one on an SNS stage is refused (MMS always goes through End User Messaging)."""
    period, price = validity_period(data), max_price(data)
    if price is not None and channel == "sms" and settings.sms_provider == "sns":
        raise InvalidRequest("MaxPriceNotSupported", (
            "This stage sends SMS through Amazon SNS, which has no price cap per message. Leave 'maxPriceUsd' "
            "out, or send from a stage whose smsProvider is 'sms-voice' (End User Messaging SMS, MaxPrice); "
            "MMS takes it on every stage."), field="maxPriceUsd")
    return {"validity_period": period, "max_price_usd": price}


def send_at(raw, *, dry_run: bool = False, now: float | None = None) -> str | None:
    """``sendAt``: None (absent or null: send now), or an ISO 8601 time with an offset or ``Z``, in the future
    and at most ``MAX_SEND_AHEAD`` ahead, as the API writes times (UTC, milliseconds). Else 400
    ``InvalidSendAt``. ``now``: the clock (epoch seconds; default the machine's)."""
    if raw is None:
        return None
    try:
        at = datetime.fromisoformat(raw) if isinstance(raw, str) and len(raw) <= 64 else None
    except ValueError:
        at = None
    if at is None or at.tzinfo is None or not re.fullmatch(r"\d{4}-\d\d-\d\d[Tt ].+", raw):
        raise InvalidRequest("InvalidSendAt", "'sendAt' must be an ISO 8601 time with an offset or Z, such as "
                             "2027-01-31T09:00:00Z or 2027-01-31T10:00:00+01:00.", field="sendAt")
    moment = datetime.fromtimestamp(time.time() if now is None else now, timezone.utc)
    if at <= moment:
        raise InvalidRequest("InvalidSendAt", f"'sendAt' must lie in the future: {store.now_iso(at)} has passed "
                             f"(it is {store.now_iso(moment)}).", field="sendAt")
    if at > moment + MAX_SEND_AHEAD:
        raise InvalidRequest("InvalidSendAt", f"'sendAt' must lie at most {MAX_SEND_AHEAD.days} days ahead: "
                             f"{store.now_iso(at)} is later than {store.now_iso(moment + MAX_SEND_AHEAD)}.",
                             field="sendAt")
    if dry_run:
        raise InvalidRequest("InvalidSendAt", "A dry run is checked and answered at once, so it cannot be "
                             "scheduled: leave out 'sendAt' or 'dryRun'.", field="sendAt")
    return store.now_iso(at)


def sms(data: dict, settings: Settings) -> Outbound:
    body = _body(data, required=True)
    sms_type = data.get("type", settings.default_sms_type)
    if not isinstance(sms_type, str) or sms_type.lower() not in SMS_TYPES:
        raise InvalidRequest("InvalidType", "'type' must be 'transactional' or 'promotional'.", field="type")
    if settings.sms_provider == "sns" and len(body.encode("utf-8")) > SNS_MAX_BYTES:
        raise InvalidRequest("BodyTooLong", f"SNS sends at most {SNS_MAX_BYTES} bytes per message; shorten 'body'.",
                             field="body")
    dry_run = _dry_run(data, settings, "sms")
    limits = _limits(data, settings, "sms")
    to, country = _to(data, settings)
    return Outbound("sms", to, body, sms_type.lower(), _sender_id(data, settings, country), dry_run=dry_run,
                    send_at=send_at(data.get("sendAt"), dry_run=dry_run), **limits)


def _media_url(data: dict, settings: Settings) -> str:
    """``s3://<media bucket>/<key>``: an object key S3 can hold (at most 1024 bytes), in a URL
    SendMediaMessage takes (at most 2048 characters), with no control characters."""
    url = data.get("mediaUrl")
    _bucket, key = media.parse_url(settings, url)
    if _CONTROL.search(url) or (not url.isascii() and SURROGATE.search(url)):
        raise InvalidRequest("InvalidMediaUrl", "'mediaUrl' holds control characters.", field="mediaUrl")
    if len(key.encode("utf-8")) > S3_MAX_KEY_BYTES or len(url) > MEDIA_URL_MAX:
        raise InvalidRequest("InvalidMediaUrl", f"'mediaUrl' is too long: an S3 key holds at most {S3_MAX_KEY_BYTES} "
                             "bytes.", field="mediaUrl")
    return url


def mms(data: dict, settings: Settings) -> Outbound:
    """An MMS always goes from the stage's origination identity: it never carries a sender id."""
    body = _body(data, required=False)
    _media_url(data, settings)
    dry_run = _dry_run(data, settings, "mms")
    limits = _limits(data, settings, "mms")
    to, _country = _to(data, settings)
    return Outbound("mms", to, body, media_url=data["mediaUrl"], dry_run=dry_run,
                    send_at=send_at(data.get("sendAt"), dry_run=dry_run), **limits)


def media_request(data: dict) -> tuple[str, int]:
    content_type = data.get("contentType")
    if not isinstance(content_type, str) or not content_type.strip():
        raise InvalidRequest("MissingField", "'contentType' is required.", field="contentType")
    if not re.fullmatch(r"[\x20-\x7e]{1,255}", content_type):
        # It becomes the upload's Content-Type field and S3's Content-Type header: printable ASCII only.
        raise Unprocessable("MediaTypeNotSupported", "'contentType' must be a media type such as image/png, in "
                            "printable ASCII.", field="contentType")
    size = data.get("size")
    if size is None:
        raise InvalidRequest("MissingField", "'size' (bytes) is required.", field="size")
    if isinstance(size, bool) or not isinstance(size, int) or size < 1:
        raise InvalidRequest("InvalidSize", "'size' must be a positive whole number of bytes.", field="size")
    return content_type.strip(), size
