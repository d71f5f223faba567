"""The one send path, shared by the API, the batch worker and the local stack.

A record is written as ``queued`` before the provider is called, then moved to ``sent`` (with
the provider's id) or ``failed`` (with the mapped error). A crash between the two writes leaves
a ``queued`` record behind: never a send with no trace.
"""
from __future__ import annotations

import uuid

from . import media, providers, store
from .errors import MessagingError, NotConfigured, NotFound, Throttled
from .log import logger
from .phone import mask
from .segments import segment
from .settings import Settings, get_settings
from .validation import Outbound


def new_record(message: Outbound, **extra) -> dict:
    if message.channel == "sms":
        encoding, segments = segment(message.body or "")
    else:
        encoding, segments = None, 1  # an MMS goes as one part whatever its body
    stamp = store.now_iso()
    record = {
        "id": str(uuid.uuid4()),
        "channel": message.channel,
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
    }
    record.update(extra)
    return record


def check_channel(message: Outbound, settings: Settings) -> None:
    if message.channel == "mms":
        if not settings.mms_enabled:
            raise NotConfigured("MmsNotConfigured",
                                "This stage has no MMS origination identity (set originationIdentity).")
        media.preflight(settings, message.media_url)


def send(message: Outbound, settings: Settings | None = None) -> dict:
    """Record and send one message. Returns the public resource, or raises a domain error
    whose ``message_id`` names the failed record when one was written."""
    settings = settings or get_settings()
    check_channel(message, settings)
    record = new_record(message)
    store.create(record)
    return deliver(record, settings)


def deliver(record: dict, settings: Settings | None = None, *, claimed: bool = False) -> dict:
    """Call the provider for a stored record and store the outcome.

    The API calls it for a ``queued`` record. The batch worker calls it with ``claimed=True`` for a
    record it has moved to ``sending``; then a throttled send puts the record back to ``queued``
    (the worker returns the message to the queue) instead of failing it.
    """
    settings = settings or get_settings()
    expect = (store.SENDING,) if claimed else (store.QUEUED,)
    dry_run = bool(record.get("dryRun"))
    try:
        if record["channel"] == "sms":
            provider_id = providers.send_sms(settings, to=record["to"], body=record["body"],
                                             sms_type=record.get("type") or settings.default_sms_type,
                                             sender_id=record.get("senderId"), message_id=record["id"],
                                             dry_run=dry_run)
        else:
            provider_id = providers.send_mms(settings, to=record["to"], body=record.get("body"),
                                             media_url=record["mediaUrl"], message_id=record["id"], dry_run=dry_run)
    except MessagingError as err:
        err.message_id = record["id"]
        if claimed and isinstance(err, Throttled):
            store.transition(record["id"], store.QUEUED, expect=expect)  # the worker tries again
            raise
        store.transition(record["id"], store.FAILED, expect=expect, error=err.as_dict())
        logger.warning("send failed", extra={"messageId": record["id"], "to": mask(record["to"]),
                                             "channel": record["channel"], "code": err.code})
        raise
    # A dry run is over once AWS has validated it: no receipt will ever come.
    outcome = store.VALIDATED if dry_run else store.SENT
    updated = store.transition(record["id"], outcome, expect=expect, providerMessageId=provider_id) \
        or store.get(record["id"])
    logger.info(outcome, extra={"messageId": record["id"], "to": mask(record["to"]), "channel": record["channel"],
                                "segments": record["segments"], "providerMessageId": provider_id})
    return store.public(updated)


def get(message_id: str) -> dict:
    record = store.get(message_id)
    if record is None or "channel" not in record:  # batch summaries and pacing gates are not messages
        raise NotFound("MessageNotFound", f"No message with id {message_id}.")
    return store.public(record)


def page(limit: int, token: str | None) -> dict:
    records, next_token = store.page(limit, token)
    return {"messages": [store.public(r) for r in records], "next": next_token}
