"""The calls that actually send: SNS Publish, sms-voice SendTextMessage and SendMediaMessage.

Each returns the provider's message id or raises a domain error mapped by ``errors.from_aws``.

Every End User Messaging send carries ``Context: {"messageId": <our record id>}``; End User
Messaging echoes it in the ``context`` field of each event it logs for the message, so the status
ingest finds the record by our own id, with no provider-id lookup. ``dry_run`` sets ``DryRun``:
AWS validates the message all the way and neither sends nor charges it.
"""
from __future__ import annotations

from botocore.exceptions import BotoCoreError, ClientError

from . import aws
from .errors import InvalidRequest, from_aws
from .settings import Settings

# The key our record id travels under in Context (the model allows at most 5 entries; keys 1 to
# 100 non-space characters, values 1 to 800 characters without leading or trailing space).
CONTEXT_KEY = "messageId"


def _context(message_id: str | None) -> dict:
    return {"Context": {CONTEXT_KEY: message_id}} if message_id else {}


def text_identity(settings: Settings, sender_id: str | None) -> str | None:
    """The OriginationIdentity of an End User Messaging SMS: the stage's origination identity,
    or the stage's own sender id where validation chose it (a destination country with sender
    ids). Never any other: IAM grants the stage's identity and ``sender-id/<id>/<country>`` only."""
    if sender_id and sender_id == settings.sender_id:
        return sender_id
    return settings.origination_identity


def send_sms(settings: Settings, *, to: str, body: str, sms_type: str, sender_id: str | None,
             message_id: str | None = None, dry_run: bool = False) -> str:
    try:
        if settings.sms_provider == "sns":
            if dry_run:  # validation refuses this first; SNS has no dry run, so never send for real
                raise InvalidRequest("DryRunNotSupported", "Amazon SNS has no dry run.", field="dryRun")
            attributes = {"AWS.SNS.SMS.SMSType": {"DataType": "String", "StringValue": sms_type.capitalize()}}
            if sender_id:
                attributes["AWS.SNS.SMS.SenderID"] = {"DataType": "String", "StringValue": sender_id}
            response = aws.client("sns").publish(PhoneNumber=to, Message=body, MessageAttributes=attributes)
        else:
            params = {"DestinationPhoneNumber": to, "MessageBody": body, "MessageType": sms_type.upper(),
                      **_context(message_id)}
            identity = text_identity(settings, sender_id)
            if identity:
                params["OriginationIdentity"] = identity
            if settings.configuration_set_name:
                params["ConfigurationSetName"] = settings.configuration_set_name
            if dry_run:
                params["DryRun"] = True
            response = aws.client("pinpoint-sms-voice-v2").send_text_message(**params)
    except (ClientError, BotoCoreError) as exc:
        raise from_aws(exc) from exc
    return response["MessageId"]


def send_mms(settings: Settings, *, to: str, body: str | None, media_url: str,
             message_id: str | None = None, dry_run: bool = False) -> str:
    params = {
        "DestinationPhoneNumber": to,
        "OriginationIdentity": settings.origination_identity,
        "MediaUrls": [media_url],
        **_context(message_id),
    }
    if body:
        params["MessageBody"] = body
    if settings.configuration_set_name:
        params["ConfigurationSetName"] = settings.configuration_set_name
    if dry_run:
        params["DryRun"] = True
    try:
        response = aws.client("pinpoint-sms-voice-v2").send_media_message(**params)
    except (ClientError, BotoCoreError) as exc:
        raise from_aws(exc) from exc
    return response["MessageId"]
