"""The calls that actually send: SNS Publish, sms-voice SendTextMessage and SendMediaMessage.

Each returns the provider's message id or raises a domain error mapped by ``errors.from_aws``.

Every End User Messaging send carries ``Context: {"messageId": <our record id>}``; End User
Messaging echoes it in the ``context`` field of each event it logs for the message, so the status
ingest finds the record by our own id, with no provider-id lookup. ``dry_run`` sets ``DryRun``:
AWS validates the message all the way and neither sends nor charges it. ``time_to_live`` (seconds) and
``max_price`` (US dollars, a decimal string) set ``TimeToLive`` and ``MaxPrice``; SNS has neither
(validation refuses a price cap for an SNS SMS, and the send path itself keeps the validity period).

A send is never repeated blindly. botocore's standard retry mode also retries a call whose
request went out but whose answer never came (a read timeout, or the connection closed before
the answer): for ``Publish``, ``SendTextMessage`` and ``SendMediaMessage``, which take no
idempotency token, that can send the message twice. Those retries are turned off here, and the
send raises ``OutcomeUnknown`` instead: the provider may or may not have accepted the message.
Throttling, 5xx answers (an AWS error answer means the call was not carried out: the models mark
End User Messaging's ``InternalServerException`` retryable) and failures to connect (nothing went
out) are still retried.
"""
from __future__ import annotations

from botocore.exceptions import BotoCoreError, ClientError, ConnectionClosedError, ReadTimeoutError

from ..core import aws
from ..core.errors import InvalidRequest, from_aws
from ..core.schema import CONTEXT_KEY
from ..core.settings import Settings



# The request went out and no answer came back: the provider may have accepted it.
AMBIGUOUS = (ReadTimeoutError, ConnectionClosedError)
SEND_OPERATIONS = {"sns": ("Publish",), "pinpoint-sms-voice-v2": ("SendTextMessage", "SendMediaMessage")}


class OutcomeUnknown(Exception):
    """The send's request went out but its answer never came: it may or may not have been sent."""


def _no_blind_resend(caught_exception=None, **_):
    # The first answer that is not None decides whether botocore retries: False means no retry.
    return False if isinstance(caught_exception, AMBIGUOUS) else None


def _sender(service: str):
    """The app's client for ``service``, with botocore's retries of ambiguous send failures off."""
    client = aws.client(service)
    if not getattr(client, "_no_blind_resend", False):  # once per client, not on every send
        hyphenized = client.meta.service_model.service_id.hyphenize()
        for operation in SEND_OPERATIONS[service]:
            client.meta.events.register_first(f"needs-retry.{hyphenized}.{operation}", _no_blind_resend,
                                              unique_id=f"sms-sender-no-blind-resend-{operation}")
        client._no_blind_resend = True
    return client


def _unknown(exc: Exception) -> OutcomeUnknown:
    return OutcomeUnknown(f"The messaging provider did not answer ({type(exc).__name__}) after the request went out.")


def _context(message_id: str | None) -> dict:
    return {"Context": {CONTEXT_KEY: message_id}} if message_id else {}


def _limits(time_to_live: int | None, max_price: str | None) -> dict:
    limits = {}
    if time_to_live is not None:
        limits["TimeToLive"] = time_to_live
    if max_price is not None:
        limits["MaxPrice"] = max_price
    return limits


def text_identity(settings: Settings, sender_id: str | None) -> str | None:
    """The OriginationIdentity of an End User Messaging SMS: the stage's origination identity,
    or the stage's own sender id where validation chose it (a destination country with sender
    ids). Never any other: IAM grants the stage's identity and ``sender-id/<id>/<country>`` only."""
    if sender_id and sender_id == settings.sender_id:
        return sender_id
    return settings.origination_identity


def send_sms(settings: Settings, *, to: str, body: str, sms_type: str, sender_id: str | None,
             message_id: str | None = None, dry_run: bool = False, time_to_live: int | None = None,
             max_price: str | None = None) -> str:
    try:
        if settings.sms_provider == "sns":
            if dry_run:  # validation refuses this first; SNS has no dry run, so never send for real
                raise InvalidRequest("DryRunNotSupported", "Amazon SNS has no dry run.", field="dryRun")
            if max_price is not None:  # likewise: never send uncapped what was asked to be capped
                raise InvalidRequest("MaxPriceNotSupported", "Amazon SNS has no price cap per message.",
                                     field="maxPriceUsd")
            attributes = {"AWS.SNS.SMS.SMSType": {"DataType": "String", "StringValue": sms_type.capitalize()}}
            if sender_id:
                attributes["AWS.SNS.SMS.SenderID"] = {"DataType": "String", "StringValue": sender_id}
            response = _sender("sns").publish(PhoneNumber=to, Message=body, MessageAttributes=attributes)
        else:
            params = {"DestinationPhoneNumber": to, "MessageBody": body, "MessageType": sms_type.upper(),
                      **_context(message_id), **_limits(time_to_live, max_price)}
            identity = text_identity(settings, sender_id)
            if identity:
                params["OriginationIdentity"] = identity
            if settings.configuration_set_name:
                params["ConfigurationSetName"] = settings.configuration_set_name
            if dry_run:
                params["DryRun"] = True
            response = _sender("pinpoint-sms-voice-v2").send_text_message(**params)
    except AMBIGUOUS as exc:
        raise _unknown(exc) from exc
    except (ClientError, BotoCoreError) as exc:
        raise from_aws(exc) from exc
    return response["MessageId"]


def send_mms(settings: Settings, *, to: str, body: str | None, media_url: str,
             message_id: str | None = None, dry_run: bool = False, time_to_live: int | None = None,
             max_price: str | None = None) -> str:
    params = {
        "DestinationPhoneNumber": to,
        "OriginationIdentity": settings.origination_identity,
        "MediaUrls": [media_url],
        **_context(message_id),
        **_limits(time_to_live, max_price),
    }
    if body:
        params["MessageBody"] = body
    if settings.configuration_set_name:
        params["ConfigurationSetName"] = settings.configuration_set_name
    if dry_run:
        params["DryRun"] = True
    try:
        response = _sender("pinpoint-sms-voice-v2").send_media_message(**params)
    except AMBIGUOUS as exc:
        raise _unknown(exc) from exc
    except (ClientError, BotoCoreError) as exc:
        raise from_aws(exc) from exc
    return response["MessageId"]
