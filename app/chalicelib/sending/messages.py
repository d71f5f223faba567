"""The one send path, shared by the API, the batch worker and the local stack.

A recipient on the stage's opt-out list (``optouts``) is refused first, with no record and no
provider call: 409 ``RecipientOptedOut``. A record is written as ``queued`` before the provider is
called, then moved to ``sent`` (with the provider's id) or ``failed`` (with the mapped error). A
crash between the two writes leaves a ``queued`` record behind: never a send with no trace.

Faults on the way, and what each leaves (``tests/test_faults.py`` injects every one):
- AWS fails before anything is sent (the media's ``HeadObject``, the first DynamoDB write): a 429
  or 502 the caller can retry, nothing sent (and no record, or none left ``queued``).
- The provider throttles or answers 5xx: botocore retries; what is left is a ``failed`` record
  and a 429 or 502. Nothing went out.
- The provider's answer never comes after the request went out (a read timeout): it may have been
  sent. It is never sent again (``providers`` turns those retries off); the record ends
  ``unknown`` (final, like End User Messaging's own UNKNOWN: nobody knows whether it arrived), and
  a delivery receipt, if one comes, still settles it.
- DynamoDB fails after the provider answered: the outcome write is tried again, and if DynamoDB
  still refuses, the outcome goes on the batch queue for the worker to write (``worker.py``). The
  caller gets the outcome as it happened (202 ``sent``). Never a second send.

A message with a ``validityPeriod`` is valid until ``validUntil`` (its ``createdAt`` plus the period).
``deliver`` never hands a provider one whose period ran out while it waited (queued, scheduled or paced):
it ends ``failed`` with ``Expired`` (a 422 to a caller still waiting for it). End User Messaging gets
what is left of the period as ``TimeToLive``, and ``maxPriceUsd`` as ``MaxPrice``.

A message with ``sendAt`` is recorded ``scheduled`` instead and sent by the batch worker once its time
has come (``schedule``); until then ``cancel`` can stop it.
"""
from __future__ import annotations

import json
import math
import time
import uuid
from datetime import datetime, timedelta, timezone

from botocore.exceptions import BotoCoreError, ClientError

from ..core import aws, store
from ..core.errors import (MessagingError, NotConfigured, NotFound, ProviderFailure, Throttled, Unavailable,
                           Unprocessable, aws_errors, before_send)
from ..core.log import logger, mask
from ..core.segments import segment
from ..core.settings import Settings, get_settings
from ..replies import optouts
from . import media, providers, schedule, simulator
from .validation import Outbound


def sender(message: Outbound, settings: Settings) -> str | None:
    """Who the recipient sees the message from, where the app can tell: the sender id it goes out
    with, else the stage's number (``ORIGINATION_NUMBER``), which sends every MMS and every End User
    Messaging SMS. None where the provider chooses (an SNS SMS, a pool whose number is not known)."""
    if message.channel == "sms" and message.sender_id:
        return message.sender_id
    if message.channel == "sms" and settings.sms_provider == "sns":
        return None
    return settings.origination_number


# What the send path reads the time from (seconds since the epoch); tests move it.
clock = time.time


def new_record(message: Outbound, settings: Settings | None = None, **extra) -> dict:
    if message.channel == "sms":
        encoding, segments = segment(message.body or "")
    else:
        encoding, segments = None, 1  # an MMS goes as one part whatever its body
    created = datetime.fromtimestamp(clock(), timezone.utc)
    stamp = store.now_iso(created)
    period = message.validity_period
    record = {
        "id": str(uuid.uuid4()),
        "direction": store.OUTBOUND,
        "channel": message.channel,
        "from": sender(message, settings or get_settings()),
        "to": message.to,
        "body": message.body,
        "mediaUrl": message.media_url,
        "status": store.QUEUED,
        "providerMessageId": None,
        "segments": segments,
        "encoding": encoding,
        "priceUsd": None,
        "error": None,
        "createdAt": stamp,
        "updatedAt": stamp,
        "dryRun": message.dry_run,
        "type": message.sms_type if message.channel == "sms" else None,
        "senderId": message.sender_id,
        "keyId": message.key_id,
        "test": message.test,
        "validityPeriod": period,
        "validUntil": store.now_iso(created + timedelta(seconds=period)) if period else None,
        "maxPriceUsd": message.max_price_usd,
        "templateId": message.template_id,
        "templateVersion": message.template_version,
    }
    if message.send_at is not None:
        record.update(schedule.scheduled_fields(record["id"], message.send_at, settings or get_settings(),
                                                test=message.test))
    record.update(extra)
    return record


def seconds_left(record: dict) -> float | None:
    """How long the message is still valid for (at most 0 once its period ran out), or None when it has
    no ``validityPeriod``."""
    until = record.get("validUntil")
    if not until:
        return None
    return datetime.fromisoformat(until).timestamp() - clock()


def expired(record: dict) -> bool:
    left = seconds_left(record)
    return left is not None and left <= 0


TTL_MIN = 5  # TimeToLive's minimum in botocore's model of pinpoint-sms-voice-v2


def expired_error(record: dict) -> Unprocessable:
    return Unprocessable("Expired", (
        f"The message's validityPeriod ({record.get('validityPeriod')} s) ran out at {record.get('validUntil')} "
        "before it could be sent; it was not sent, and nothing was charged."), field="validityPeriod")


def time_to_live(record: dict) -> int | None:
    """End User Messaging's ``TimeToLive`` for the message: the whole seconds left of its period, at least
    5 (the model's minimum), or None (no period: End User Messaging's default of 72 hours)."""
    left = seconds_left(record)
    return None if left is None else max(TTL_MIN, math.floor(left))


# Writing the provider's answer to the record: tries after botocore's own (seconds between them).
OUTCOME_RETRY_DELAYS = (0.2, 0.5, 1.0)
UNCERTAIN = ("The provider did not answer after the message went out, so whether it was sent is not known; "
             "it is not sent again.")


def _aws_failure(exc: Exception, doing: str) -> MessagingError:
    """An AWS call of ours failed before anything was sent: a 429 or 502 the caller can retry."""
    err = before_send(exc, doing)
    logger.warning("aws call failed before the send", extra={"doing": doing, "code": err.code, "reason": err.message})
    return err


def check_channel(message: Outbound, settings: Settings) -> None:
    if message.channel == "mms":
        if not settings.mms_enabled:
            raise NotConfigured("MmsNotConfigured",
                                "This stage has no MMS origination identity (set originationIdentity).")
        try:
            media.preflight(settings, message.media_url)
        except (ClientError, BotoCoreError) as exc:  # S3 did not answer, or refused for a reason of ours
            raise _aws_failure(exc, "check the media in S3") from exc


def send(message: Outbound, settings: Settings | None = None) -> dict:
    """Record and send one message. Returns the public resource, or raises a domain error
    whose ``message_id`` names the failed record when one was written."""
    settings = settings or get_settings()
    check_channel(message, settings)
    if message.send_at is not None and not settings.batch_queue_url:
        raise NotConfigured("BatchesNotConfigured", "This stage has no batch queue (BATCH_QUEUE_URL), which "
                            "scheduled messages leave through.")
    try:
        optouts.refuse_opted_out(message.to, settings)
    except (ClientError, BotoCoreError) as exc:
        raise _aws_failure(exc, "check the opt-out list") from exc
    record = new_record(message, settings)
    try:
        store.create(record)
    except (ClientError, BotoCoreError) as exc:
        raise _aws_failure(exc, "record the message") from exc
    if record["status"] == store.SCHEDULED:
        return _hold(record, settings)
    return deliver(record, settings)


ENQUEUE_FAILED = "The batch queue refused this scheduled message; it will not be sent."


def _hold(record: dict, settings: Settings) -> dict:
    """A scheduled message, recorded: the API puts it on the batch queue now, delayed until its ``sendAt``, if
    it is due soon enough (else the sweep will). Should the queue refuse it, it ends ``failed``
    (``EnqueueFailed``) and the caller gets a 502 naming it: nothing will be sent."""
    if schedule.queued_by_api(record):
        try:
            refused = schedule.enqueue(settings, [(record["id"], record["sendAt"], None)])
        except (ClientError, BotoCoreError) as exc:
            refused, reason = [record["id"]], type(exc).__name__
        else:
            reason = "refused"
        if refused:
            store.transition(record["id"], store.FAILED, expect=(store.SCHEDULED,),
                             error={"code": "EnqueueFailed", "message": ENQUEUE_FAILED})
            logger.warning("scheduled message not queued", extra={"messageId": record["id"], "reason": reason})
            error = ProviderFailure("ProviderError", f"{ENQUEUE_FAILED} Schedule it again.")
            error.message_id = record["id"]
            raise error
    logger.info("scheduled", extra={"messageId": record["id"], "to": mask(record["to"]),
                                    "channel": record["channel"], "sendAt": record["sendAt"]})
    return store.public(record)


def deliver(record: dict, settings: Settings | None = None, *, claimed: bool = False) -> dict:
    """Call the provider for a stored record and store the outcome.

    The API calls it for a ``queued`` record. The batch worker calls it with ``claimed=True`` for a
    record it has moved to ``sending``; then a throttled send puts the record back to ``queued``
    (the worker returns the message to the queue) instead of failing it.
    """
    settings = settings or get_settings()
    expect = (store.SENDING,) if claimed else (store.QUEUED,)
    dry_run = bool(record.get("dryRun"))
    if expired(record):  # a test key's message too: it answers as a live one would
        _expire(record, settings, expect)
    if record.get("test"):
        return _simulate(record, settings, expect, dry_run)
    if aws.time_left() < send_seconds_needed():
        _out_of_time(record, settings, expect)
    try:
        try:
            provider_id = _call_provider(record, settings, dry_run)
        except providers.OutcomeUnknown as unknown:
            if not dry_run:
                return _uncertain(record, settings, expect, unknown)
            # A dry run sends nothing, so nothing can go twice: an ordinary failure, retry it.
            raise ProviderFailure("ProviderError", f"{unknown} Nothing was sent (a dry run).") from unknown
    except MessagingError as err:
        err.message_id = record["id"]
        if claimed and isinstance(err, Throttled):
            _record_outcome(record, settings, store.QUEUED, expect)  # the worker tries again
            raise
        _record_outcome(record, settings, store.FAILED, expect, error=err.as_dict())
        logger.warning("send failed", extra={"messageId": record["id"], "to": mask(record["to"]),
                                             "channel": record["channel"], "code": err.code})
        if err.code == optouts.OPTED_OUT:
            optouts.learn(record["to"], settings)  # the next send is refused before the provider
        raise
    # A dry run is over once AWS has validated it: no receipt will ever come.
    outcome = store.VALIDATED if dry_run else store.SENT
    updated = _record_outcome(record, settings, outcome, expect, providerMessageId=provider_id)
    logger.info(outcome, extra={"messageId": record["id"], "to": mask(record["to"]), "channel": record["channel"],
                                "segments": record["segments"], "providerMessageId": provider_id})
    return store.public(updated)


def _expire(record: dict, settings: Settings, expect: tuple[str, ...]) -> None:
    """The message's period ran out before its send: ``failed`` with ``Expired``, never sent."""
    error = expired_error(record)
    error.message_id = record["id"]
    _record_outcome(record, settings, store.FAILED, expect, error=error.as_dict())
    logger.info("not sent: validity period over", extra={"messageId": record["id"], "channel": record["channel"],
                                                         "validUntil": record.get("validUntil")})
    raise error


def send_seconds_needed() -> float:
    """What a send needs before the deadline: one attempt of the provider call, and one of the write of its
    outcome. With less, the provider is not called at all: a send must never happen after its caller was
    answered (API Gateway gives up at 29 seconds)."""
    return 2 * aws.attempt_seconds()


def _out_of_time(record: dict, settings: Settings, expect: tuple[str, ...]) -> None:
    error = Unavailable("There was not time left to send this message and record what the provider said before "
                        "the request must be answered; nothing was sent. Retry (with the same Idempotency-Key).")
    error.message_id = record["id"]
    _record_outcome(record, settings, store.FAILED, expect, error={"code": "NotSent", "message": error.message})
    logger.warning("not sent: out of time", extra={"messageId": record["id"], "left": round(aws.time_left(), 3)})
    raise error


TEST_RESPONSE = "Sent with a test key: no provider was called, and nothing was charged."


def _simulate(record: dict, settings: Settings, expect: tuple[str, ...], dry_run: bool) -> dict:
    """A test key's message: recorded and answered as a real one, but no provider is called (not even with
    ``DryRun``). It is ``sent``, then settles as End User Messaging's simulator numbers do: failed for a
    failure simulator number, delivered for any other, with nothing charged. Its webhooks fire."""
    if dry_run:
        updated = _record_outcome(record, settings, store.VALIDATED, expect, providerResponse=TEST_RESPONSE)
        return store.public(updated)
    provider_id = f"test-{uuid.uuid4()}"
    updated = _record_outcome(record, settings, store.SENT, expect, providerMessageId=provider_id)
    failed = simulator.fails(record["to"])
    receipt = {"priceUsd": 0.0, "providerResponse": TEST_RESPONSE}
    if failed:
        receipt["error"] = {"code": "DeliveryFailed", "message": "The failure simulator number reports a failure."}
    try:
        store.settle(record["id"], store.FAILED if failed else store.DELIVERED, int(time.time() * 1000),
                     provider_id=provider_id, **receipt)
    except (ClientError, BotoCoreError) as exc:  # it stays sent; a test message has no receipt to come
        logger.warning("test message not settled", extra={"messageId": record["id"], "reason": type(exc).__name__})
    logger.info("sent with a test key", extra={"messageId": record["id"], "to": mask(record["to"]),
                                               "channel": record["channel"], "failed": failed})
    return store.public(updated)


def _call_provider(record: dict, settings: Settings, dry_run: bool) -> str:
    limits = {"time_to_live": time_to_live(record), "max_price": record.get("maxPriceUsd")}
    if record["channel"] == "sms":
        return providers.send_sms(settings, to=record["to"], body=record["body"],
                                  sms_type=record.get("type") or settings.default_sms_type,
                                  sender_id=record.get("senderId"), message_id=record["id"], dry_run=dry_run,
                                  **limits)
    return providers.send_mms(settings, to=record["to"], body=record.get("body"),
                              media_url=record["mediaUrl"], message_id=record["id"], dry_run=dry_run, **limits)


def _uncertain(record: dict, settings: Settings, expect: tuple[str, ...], unknown: Exception) -> dict:
    """The provider may have accepted the message: record ``unknown`` (final; a receipt, if one
    comes, still settles it) and answer with the record. Never sent again."""
    updated = _record_outcome(record, settings, store.UNKNOWN, expect, providerResponse=UNCERTAIN)
    logger.warning("send outcome unknown", extra={"messageId": record["id"], "to": mask(record["to"]),
                                                  "channel": record["channel"], "reason": str(unknown)})
    return store.public(updated)


def _record_outcome(record: dict, settings: Settings, status: str, expect: tuple[str, ...], **fields) -> dict:
    """Move the record from one of ``expect`` to ``status`` with ``fields``; the record as it now is.

    The provider has already acted, so this write must not be lost: after botocore's own retries it
    is tried again (``OUTCOME_RETRY_DELAYS``), and if DynamoDB still refuses, the outcome goes on
    the batch queue for the worker to write once DynamoDB takes writes again. What is returned then
    is the outcome as it happened."""
    failure: Exception | None = None
    for delay in (*OUTCOME_RETRY_DELAYS, None):
        try:
            updated = store.transition(record["id"], status, expect=expect, **fields)
            # None: someone moved it first (a receipt that overtook this write); show it as it is.
            return updated or store.get(record["id"]) or {**record, **fields, "status": status}
        except (ClientError, BotoCoreError) as exc:
            failure = exc
            if delay is not None:
                time.sleep(delay)
    _record_later(record, settings, status, fields, failure)
    return {**record, **fields, "status": status, "updatedAt": store.now_iso()}


def _record_later(record: dict, settings: Settings, status: str, fields: dict, failure: Exception) -> None:
    """Hand an outcome DynamoDB would not take to the batch worker (``worker.record_outcome``)."""
    reason = failure.response.get("Error", {}).get("Code", "") if isinstance(failure, ClientError) \
        else type(failure).__name__
    about = {"messageId": record["id"], "status": status, "reason": reason,
             "providerMessageId": fields.get("providerMessageId")}
    if settings.batch_queue_url:
        try:
            aws.client("sqs").send_message(QueueUrl=settings.batch_queue_url, MessageBody=json.dumps(
                {"messageId": record["id"], "outcome": {"status": status, **fields}}))
            logger.warning("outcome not recorded; queued for the batch worker to record", extra=about)
            return
        except (ClientError, BotoCoreError) as exc:
            about["queueReason"] = type(exc).__name__
    # Nothing left to write it with: the record stays as it was, and is never sent again.
    logger.error("outcome not recorded", extra=about)


def _own(message_id: str, test: bool) -> dict:
    record = store.get(message_id)
    if record is None or "channel" not in record or bool(record.get("test")) != test:
        # batch summaries and pacing gates are not messages; the other kind of key's messages are not there
        raise NotFound("MessageNotFound", f"No message with id {message_id}.")
    return record


def get(message_id: str, *, test: bool = False) -> dict:
    """One message, as a key of this kind sees it: a test key sees only what test keys sent, a live key
    never sees those."""
    return store.public(_own(message_id, test))


@aws_errors("cancel the message")
def cancel(message_id: str, *, test: bool = False) -> dict:
    """``POST /messages/{id}/cancel``: ``scheduled -> canceled`` (final), in one conditional write that also
    takes it out of the due index, so it and the worker's claim cannot both win. A message no longer scheduled
    (being sent, sent, canceled...) is 409 ``NotCancelable``; another key kind's message, or none, is 404
    ``MessageNotFound``, as ``get``. Returns the message resource."""
    record = _own(message_id, test)
    if record.get("status") != store.SCHEDULED:
        raise schedule.not_cancelable(record.get("status"))
    canceled = store.transition(message_id, store.CANCELED, expect=(store.SCHEDULED,))
    if canceled is None:  # the worker claimed it between the read and this write: it is being sent
        raise schedule.not_cancelable((store.get(message_id) or record).get("status"))
    logger.info("scheduled message canceled", extra={"messageId": message_id})
    return store.public(canceled)
