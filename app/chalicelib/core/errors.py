"""Domain errors, and the one function that maps AWS errors onto them.

Service modules raise these; ``web.py`` turns them into HTTP responses in one place.
"""
from __future__ import annotations

import functools

from botocore.exceptions import BotoCoreError, ClientError


class MessagingError(Exception):
    """An error a caller can act on: a stable ``code``, a sentence, optionally the field at fault."""

    def __init__(self, code: str, message: str, *, field: str | None = None, retry_after: int | None = None):
        super().__init__(message)
        self.code = code
        self.message = message
        self.field = field
        self.retry_after = retry_after
        # Set by the send path once a message record exists for the failed attempt.
        self.message_id: str | None = None

    def as_dict(self) -> dict:
        error = {"code": self.code, "message": self.message}
        if self.field:
            error["field"] = self.field
        return error


class InvalidRequest(MessagingError):
    """The request itself is wrong."""


class Unauthenticated(MessagingError):
    """No key, or one that does not work: the same answer whatever the reason, so it gives nothing away."""

    def __init__(self):
        super().__init__("Unauthorized", "A valid API key is required: send it as 'Authorization: Bearer <key>'.")


class NotAllowed(MessagingError):
    """The request is well formed but this stage does not allow it."""


class NotFound(MessagingError):
    pass


class Conflict(MessagingError):
    pass


class Unprocessable(MessagingError):
    """The request is well formed but cannot be sent as asked: media the provider refuses, or a
    channel the stage's origination identity lacks."""


class Throttled(MessagingError):
    def __init__(self, message: str = "The provider is throttling sends; retry later.", retry_after: int = 1):
        super().__init__("Throttled", message, retry_after=retry_after)


class ProviderFailure(MessagingError):
    """AWS refused for a reason that is ours (configuration, permissions, limits), not the caller's."""


class NotConfigured(MessagingError):
    pass


class Unavailable(MessagingError):
    """Not now, and nothing was done: retry shortly (with the same Idempotency-Key)."""

    def __init__(self, message: str = "Not now, and nothing was done; retry shortly.", retry_after: int = 1):
        super().__init__("Unavailable", message, retry_after=retry_after)


THROTTLING_CODES = frozenset(
    {"Throttling", "ThrottlingException", "ThrottledException", "TooManyRequestsException", "RequestLimitExceeded"}
)


# AWS throttling codes beyond the messaging providers' (DynamoDB's, S3's).
AWS_THROTTLING_CODES = THROTTLING_CODES | {"ProvisionedThroughputExceededException", "SlowDown"}


def before_send(exc: Exception, doing: str) -> MessagingError:
    """Map an error of one of our own AWS calls (DynamoDB, S3) made before anything was sent: a
    429 or 502 the caller can retry."""
    code = exc.response.get("Error", {}).get("Code", "") if isinstance(exc, ClientError) else type(exc).__name__
    if code in AWS_THROTTLING_CODES:
        return Throttled(f"AWS is throttling the service (could not {doing}); nothing was sent. Retry later.")
    return ProviderFailure("ProviderError", f"AWS failed (could not {doing}: {code}); nothing was sent. Retry later.")


def aws_errors(doing: str):
    """Decorator for a route's service function: AWS failing (DynamoDB, KMS) is a 429 or a 502 the
    caller can retry (``before_send``), not a 500."""
    def decorate(function):
        @functools.wraps(function)
        def wrapper(*args, **kwargs):
            try:
                return function(*args, **kwargs)
            except (ClientError, BotoCoreError) as exc:
                raise before_send(exc, doing) from None
        return wrapper
    return decorate


def from_aws(exc: Exception) -> MessagingError:
    """Map an error from SNS or End User Messaging SMS (sms-voice) to a domain error."""
    if isinstance(exc, MessagingError):
        return exc
    if not isinstance(exc, ClientError):
        if isinstance(exc, BotoCoreError):
            return ProviderFailure("ProviderError", f"Could not reach the messaging provider: {exc}")
        raise exc
    error = exc.response.get("Error", {})
    code = error.get("Code", "")
    text = error.get("Message", "") or ""
    reason = exc.response.get("Reason") or error.get("Reason") or ""
    lowered = text.lower()

    if code in THROTTLING_CODES:
        return Throttled()
    # End User Messaging SMS (pinpoint-sms-voice-v2)
    if code == "ConflictException":
        if reason == "DESTINATION_PHONE_NUMBER_OPTED_OUT":
            return Conflict("RecipientOptedOut", "The recipient has opted out of messages from this sender.")
        if reason in ("DESTINATION_COUNTRY_BLOCKED_BY_PROTECT_CONFIGURATION",
                      "DESTINATION_PHONE_NUMBER_BLOCKED_BY_PROTECT_NUMBER_OVERRIDE"):
            return NotAllowed("CountryNotAllowed", "The protect configuration blocks this destination.")
        if reason == "DESTINATION_PHONE_NUMBER_NOT_VERIFIED":
            return NotAllowed("RecipientNotVerified", (
                "The account is in the End User Messaging SMS sandbox, which sends only to verified destination "
                "numbers. Verify this number (console: Sandbox > Verified destination numbers; API: "
                "CreateVerifiedDestinationNumber, then VerifyDestinationNumber with the code it receives), or "
                "request production access to leave the sandbox."), field="to")
        if reason == "MESSAGE_TYPE_MISMATCH":
            return InvalidRequest("MessageTypeMismatch", (
                "The origination identity does not send this message type; send with the other 'type' "
                "(transactional or promotional) or from an identity registered for this one."), field="type")
        if reason == "NUMBER_CAPABILITIES_MISMATCH":
            return Unprocessable("ChannelNotSupported", (
                "The stage's origination identity cannot send this channel (its number capabilities lack it, "
                "for example MMS); send it as the other channel, or give the stage an identity that has it."))
        return ProviderFailure("ProviderError", f"The provider refused the message ({reason or code}): {text}")
    if code == "ValidationException":
        if reason == "PHONE_NUMBER_CANNOT_BE_OPTED_IN":  # DeleteOptedOutNumber: once every 30 days per number
            return Conflict("OptInTooSoon", "End User Messaging takes a number off an opt-out list once every 30 "
                                            "days, and this one came off less than 30 days ago; try again later.")
        if reason == "DESTINATION_COUNTRY_BLOCKED":
            return NotAllowed("CountryNotAllowed", "Sending to this country is blocked for the account.")
        if reason in ("MEDIA_TYPE_NOT_SUPPORTED", "ATTACHMENT_TYPE_NOT_SUPPORTED"):
            return Unprocessable("MediaTypeNotSupported", "The provider does not support this media type.", field="mediaUrl")
        if reason == "MAXIMUM_SIZE_EXCEEDED":
            return Unprocessable("MediaTooLarge", "The media is larger than MMS allows.", field="mediaUrl")
        if reason == "PRICE_OVER_THRESHOLD":  # SendTextMessage / SendMediaMessage with MaxPrice
            return Unprocessable("PriceOverMax", (
                "End User Messaging would charge more per message part to this destination than 'maxPriceUsd' "
                "allows, so it did not send the message, with nothing charged. Raise 'maxPriceUsd' or leave it "
                "out."), field="maxPriceUsd")
        if reason == "RESOURCE_NOT_ACCESSIBLE":
            return Unprocessable("MediaNotAccessible", "The provider cannot read the media object.", field="mediaUrl")
        if reason in ("SENDER_ID_NOT_REGISTERED", "SENDER_ID_NOT_SUPPORTED", "SENDER_ID_REQUIRES_REGISTRATION"):
            return InvalidRequest("InvalidSenderId", f"The sender id cannot be used here: {text}", field="senderId")
        if reason in ("INVALID_IDENTITY_FOR_DESTINATION_COUNTRY", "COUNTRY_NOT_ENABLED", "CHANNEL_NOT_ENABLED",
                      "INTERNATIONAL_SENDING_NOT_SUPPORTED"):
            return ProviderFailure("ProviderError", f"The origination identity cannot reach this destination ({reason}).")
        return ProviderFailure("ProviderError", f"The provider rejected the request ({reason or code}): {text}")
    if code == "ServiceQuotaExceededException":
        if reason.startswith("MONTHLY_SPEND_LIMIT_REACHED"):
            return ProviderFailure("ProviderError", "The account's monthly SMS/MMS spend limit is reached.")
        return ProviderFailure("ProviderError", f"A service quota is exhausted ({reason or code}).")
    if code == "AccessDeniedException" and reason in ("ACCOUNT_DISABLED", "INSUFFICIENT_ACCOUNT_REPUTATION"):
        # Not IAM: End User Messaging has stopped sending for the whole account.
        return ProviderFailure("ProviderError", (
            f"End User Messaging is not sending for this account ({reason}); see the account's status in the "
            "End User Messaging console, or contact AWS Support."))
    if code in ("AccessDeniedException", "AuthorizationError"):
        return ProviderFailure("ProviderAccessDenied", f"AWS denied the send: {text}")
    if code == "ResourceNotFoundException":
        kind = exc.response.get("ResourceType") or "resource"
        return ProviderFailure("ProviderError", f"The configured {kind} does not exist.")
    # Amazon SNS (Publish declares InvalidParameter and ParameterValueInvalid, and no opted-out
    # error of its own: an opted-out number comes back as InvalidParameter)
    if code in ("InvalidParameter", "ParameterValueInvalid"):
        if getattr(exc, "operation_name", "") == "OptInPhoneNumber":  # the app checked the number already
            return Conflict("OptInTooSoon", "SNS opts a number in once every 30 days, and refused this one: "
                                            f"{text or 'opted in less than 30 days ago'}.")
        if "opted out" in lowered or "opted-out" in lowered:
            return Conflict("RecipientOptedOut", "The recipient has opted out of SMS from this account.")
        if "phonenumber" in lowered or "phone number" in lowered:
            return InvalidRequest("InvalidPhoneNumber", "The provider does not accept this phone number.", field="to")
        return ProviderFailure("ProviderError", f"The provider rejected the request: {text}")
    return ProviderFailure("ProviderError", f"The provider failed ({code}): {text}")
