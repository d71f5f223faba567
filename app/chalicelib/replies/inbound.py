"""Replies: the inbound function's body. SQS records in (from the stack's inbound queue, subscribed to
the topic End User Messaging publishes replies to), stored messages out. Nothing is ever sent.

Each SQS record's body is an SNS notification (``Type: Notification``; not raw delivery) whose
``Message`` is End User Messaging's two-way payload (tests/events/sms-voice-two-way-payload.json):
``originationNumber`` (who replied), ``destinationNumber`` (the stage's number), ``messageKeyword``,
``messageBody``, ``inboundMessageId`` and ``previousPublishedMessageId`` (the provider id of the
message replied to). Unknown keys are ignored. The payload has no time of its own: the notification's
``Timestamp`` is the reply's ``receivedAt``. ``messageKeyword`` is not read: AWS documents it as "the
registered keyword that's associated with your dedicated phone number", a property of the number, and its
own example pairs ``JOIN`` with the body ``EXAMPLE``. What the recipient typed is ``messageBody``.

- A reply is stored once, whatever the number of deliveries: its id is derived from
  ``inboundMessageId`` and written with a conditional put. ``inReplyTo`` is our id of the message
  ``previousPublishedMessageId`` names, when the provider-id index has it.
- A reply whose body begins with an opt-out keyword (End User Messaging's required ones, plus the
  stage's ``OPT_OUT`` keywords) puts the sender on the stage's opt-out list; one that begins with an
  ``OPT_IN`` keyword takes them off. AWS answers the keywords itself: the app never does.
- A record that cannot be read (not an SNS notification, not the JSON payload, a field missing or of
  the wrong type, numbers that are not E.164, a ``destinationNumber`` other than the stage's number
  when the stage knows it) is reported in ``batchItemFailures``: the queue hands it over again and,
  after its retries, to the dead-letter queue (its alarm fires). So is a record DynamoDB would not
  take. One record's failure never fails another's, nor the function.
- A body is kept up to ``MAX_BODY`` characters (longer ones are cut there, so that a page of 100
  messages stays well within Lambda's 6 MB response); invalid Unicode in it (a lone surrogate) is
  replaced with U+FFFD.
"""
from __future__ import annotations

import json
import re
import uuid
from datetime import datetime, timezone

from ..core import store
from ..core.log import logger, mask
from ..core.segments import segment
from ..core.settings import Settings, get_settings
from . import optouts

MAX_BODY = 5000
# A stable namespace for reply ids: uuid5(NAMESPACE, inboundMessageId).
NAMESPACE = uuid.UUID("5b0f7c52-8d2e-4c55-9a53-3f9c2e6c1e14")
_E164 = re.compile(r"\+[1-9][0-9]{1,14}")
# An id AWS hands out: printable ASCII, no spaces (a UUID in the documented example).
_PROVIDER_ID = re.compile(r"[\x21-\x7e]{1,256}")
_SURROGATE = re.compile("[\ud800-\udfff]")


class Unreadable(ValueError):
    """A record that is not a reply this function can store."""


def reply_id(inbound_message_id: str) -> str:
    return str(uuid.uuid5(NAMESPACE, inbound_message_id))


def _text(payload: dict, name: str, *, required: bool = True) -> str | None:
    value = payload.get(name)
    if value is None and not required:
        return None
    if not isinstance(value, str):
        raise Unreadable(f"{name} is missing or not a string")
    return value


def _timestamp(value) -> str:
    """SNS's ``Timestamp`` (ISO 8601, UTC) as the API writes times: milliseconds and ``Z``."""
    if not isinstance(value, str):
        raise Unreadable("the notification has no Timestamp")
    try:
        at = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise Unreadable("the notification's Timestamp is not ISO 8601") from None
    if at.tzinfo is None:
        at = at.replace(tzinfo=timezone.utc)
    return store.now_iso(at)


def parse(sqs_record: dict, settings: Settings) -> dict:
    """One SQS record -> the reply's fields; ``Unreadable`` otherwise."""
    try:
        envelope = json.loads(sqs_record["body"])
    except (KeyError, TypeError, ValueError):
        raise Unreadable("the record's body is not JSON") from None
    if not isinstance(envelope, dict) or envelope.get("Type") != "Notification" \
            or not isinstance(envelope.get("Message"), str):
        raise Unreadable("the record's body is not an SNS notification")
    try:
        payload = json.loads(envelope["Message"])
    except ValueError:
        raise Unreadable("the notification's Message is not JSON") from None
    if not isinstance(payload, dict):
        raise Unreadable("the notification's Message is not a JSON object")
    sender, destination = _text(payload, "originationNumber"), _text(payload, "destinationNumber")
    if not _E164.fullmatch(sender) or not _E164.fullmatch(destination):
        raise Unreadable("originationNumber or destinationNumber is not an E.164 number")
    if settings.origination_number and destination != settings.origination_number:
        raise Unreadable("destinationNumber is not the stage's number")
    inbound_id = _text(payload, "inboundMessageId")
    if not _PROVIDER_ID.fullmatch(inbound_id):
        raise Unreadable("inboundMessageId is not an id")
    body = _SURROGATE.sub("\ufffd", _text(payload, "messageBody"))[:MAX_BODY]
    previous = payload.get("previousPublishedMessageId")
    return {"sender": sender, "destination": destination, "inboundMessageId": inbound_id, "body": body,
            "receivedAt": _timestamp(envelope.get("Timestamp")),
            "previous": previous if isinstance(previous, str) and _PROVIDER_ID.fullmatch(previous) else None}


def keyword_action(reply: dict, settings: Settings) -> str | None:
    """``optouts.OPT_OUT`` / ``OPT_IN`` when the body the recipient typed is, or begins with, one of the
    stage's opt-out / opt-in keywords, as End User Messaging matches them: case-insensitive, a whole keyword
    (one of several words too) followed by a space or nothing, the longest one when several fit. Else None."""
    text = reply["body"].strip().upper()
    fits = [(len(keyword), action == optouts.OPT_OUT, action)
            for action, keywords in ((optouts.OPT_OUT, settings.opt_out_keywords),
                                     (optouts.OPT_IN, settings.opt_in_keywords))
            for keyword in keywords if _begins_with(text, keyword)]
    return max(fits)[2] if fits else None  # the longest keyword; opt-out when one of each is as long


def _begins_with(text: str, keyword: str) -> bool:
    return text == keyword or (text.startswith(keyword) and text[len(keyword)].isspace())


def record_of(reply: dict) -> dict:
    encoding, segments = segment(reply["body"])
    now = store.now_iso()
    return {
        "id": reply_id(reply["inboundMessageId"]),
        "direction": store.INBOUND,
        "channel": "sms",
        "from": reply["sender"],
        "to": reply["destination"],
        "body": reply["body"],
        "mediaUrl": None,
        "status": store.RECEIVED,
        "providerMessageId": reply["inboundMessageId"],
        "segments": segments,
        "encoding": encoding,
        "priceUsd": None,
        "error": None,
        "providerResponse": None,
        "dryRun": False,
        "createdAt": now,
        "updatedAt": now,
        "receivedAt": reply["receivedAt"],
        "inReplyTo": None,
    }


def receive(sqs_record: dict, settings: Settings) -> str:
    """Store one reply (and apply its keyword). Returns ``stored`` or ``duplicate``; raises on failure."""
    reply = parse(sqs_record, settings)
    action = keyword_action(reply, settings)
    if action:  # before the record: a retry after a failed put applies it (once: it is keyed on the time)
        optouts.record_keyword(reply["sender"], action, reply["receivedAt"], settings)
    record = record_of(reply)
    if reply["previous"]:
        record["inReplyTo"] = store.find_id_by_provider_id(reply["previous"])
    stored = store.create_once(record)
    logger.info("reply stored" if stored else "reply already stored",
                extra={"messageId": record["id"], "from": mask(reply["sender"]), "keyword": action,
                       "inReplyTo": record["inReplyTo"]})
    return "stored" if stored else "duplicate"


def handle(event: dict, context=None, *, settings: Settings | None = None) -> dict:
    """SQS event -> ``{"batchItemFailures": [...]}``: the records not stored go back to the queue."""
    settings = settings or get_settings()
    failures, outcomes = [], {}
    for sqs_record in event.get("Records") or []:
        identifier = sqs_record.get("messageId") if isinstance(sqs_record, dict) else None
        if not isinstance(identifier, str) or not identifier:  # not an SQS record: nothing to hand back
            logger.warning("inbound event record without a messageId skipped")
            outcomes["skipped"] = outcomes.get("skipped", 0) + 1
            continue
        try:
            outcome = receive(sqs_record, settings)
        except Unreadable as unreadable:
            outcome = "unreadable"
            logger.warning("reply not readable; back to the queue, then the dead-letter queue",
                           extra={"sqsMessageId": identifier, "reason": str(unreadable)})
        except Exception as err:  # DynamoDB, or anything else: this record only
            outcome = "error"
            logger.warning("reply not stored; back to the queue", extra={"sqsMessageId": identifier,
                                                                          "reason": type(err).__name__})
        if outcome in ("unreadable", "error"):
            failures.append({"itemIdentifier": identifier})
        outcomes[outcome] = outcomes.get(outcome, 0) + 1
    logger.info("inbound", extra={"records": sum(outcomes.values()), **outcomes})
    return {"batchItemFailures": failures}
