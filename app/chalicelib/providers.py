"""The calls that actually send: SNS Publish, sms-voice SendTextMessage and SendMediaMessage.

Each returns the provider's message id or raises a domain error mapped by ``errors.from_aws``.
"""
from __future__ import annotations

from botocore.exceptions import BotoCoreError, ClientError

from . import aws
from .errors import from_aws
from .settings import Settings


def send_sms(settings: Settings, *, to: str, body: str, sms_type: str, sender_id: str | None) -> str:
    try:
        if settings.sms_provider == "sns":
            attributes = {"AWS.SNS.SMS.SMSType": {"DataType": "String", "StringValue": sms_type.capitalize()}}
            if sender_id:
                attributes["AWS.SNS.SMS.SenderID"] = {"DataType": "String", "StringValue": sender_id}
            response = aws.client("sns").publish(PhoneNumber=to, Message=body, MessageAttributes=attributes)
        else:
            params = {"DestinationPhoneNumber": to, "MessageBody": body, "MessageType": sms_type.upper()}
            identity = sender_id or settings.origination_identity
            if identity:
                params["OriginationIdentity"] = identity
            if settings.configuration_set_name:
                params["ConfigurationSetName"] = settings.configuration_set_name
            response = aws.client("pinpoint-sms-voice-v2").send_text_message(**params)
    except (ClientError, BotoCoreError) as exc:
        raise from_aws(exc) from exc
    return response["MessageId"]


def send_mms(settings: Settings, *, to: str, body: str | None, media_url: str) -> str:
    params = {
        "DestinationPhoneNumber": to,
        "OriginationIdentity": settings.origination_identity,
        "MediaUrls": [media_url],
    }
    if body:
        params["MessageBody"] = body
    if settings.configuration_set_name:
        params["ConfigurationSetName"] = settings.configuration_set_name
    try:
        response = aws.client("pinpoint-sms-voice-v2").send_media_message(**params)
    except (ClientError, BotoCoreError) as exc:
        raise from_aws(exc) from exc
    return response["MessageId"]
