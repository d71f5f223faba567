"""Python client for the sms-sender API: send SMS and MMS from your own AWS account.

    from sms_sender import Client

    with Client() as sms:                      # SMS_API_URL, SMS_API_KEY (default: make dev's address)
        message = sms.send_sms("+14254147755", "Your order has shipped")
        print(sms.wait_for_final(message.id, timeout=60).status)

``AsyncClient`` has the same methods, awaited. Errors are ``ApiError`` subclasses per status family;
``verify_webhook`` checks a webhook delivery's signature.
"""
from ._client import AsyncClient, Client
from ._core import NO_RETRIES, Retries
from .errors import (ApiConnectionError, ApiError, AuthenticationError, BadRequestError, ConflictError,
                     NotFoundError, PermissionDeniedError, RateLimitError, ServerError, SmsSenderError,
                     UnprocessableError, WaitTimeout, WebhookVerificationError)
from .models import (FINAL_STATUSES, BatchAccepted, BatchItem, BatchProgress, DailyReport, ErrorDetail, Export,
                     Health, Key, KeyWithSecret, MediaUpload, Message, OptOut, Page, Template, Webhook,
                     WebhookDelivery, WebhookEvent, WebhookWithSecret)
from .webhooks import verify_webhook

__version__ = "0.1.0"

__all__ = [
    "Client", "AsyncClient", "Retries", "NO_RETRIES", "verify_webhook",
    "SmsSenderError", "ApiError", "BadRequestError", "AuthenticationError", "PermissionDeniedError",
    "NotFoundError", "ConflictError", "UnprocessableError", "RateLimitError", "ServerError",
    "ApiConnectionError", "WaitTimeout", "WebhookVerificationError",
    "FINAL_STATUSES", "Message", "ErrorDetail", "Page", "MediaUpload", "BatchItem", "BatchAccepted",
    "BatchProgress", "Health", "Webhook", "WebhookWithSecret", "WebhookDelivery", "WebhookEvent", "OptOut", "Key",
    "KeyWithSecret", "Template", "DailyReport", "Export",
]
