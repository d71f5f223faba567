"""Exceptions: one class per error family of the API, each carrying the contract's error body.

Every error answer of the API has the body ``{"error": {"code", "message", "field"?, "messageId"?,
"requestId"?}}``; ``ApiError`` carries those members as attributes, with the HTTP ``status`` and the
``Retry-After`` seconds where the answer gave them. ``except sms_sender.NotFoundError`` catches every 404,
``except sms_sender.ApiError`` every answer that was not a success.
"""
from __future__ import annotations

from typing import Any


class SmsSenderError(Exception):
    """Base of every exception this package raises."""


class ApiError(SmsSenderError):
    """The API answered with an error status. ``code`` is the contract's stable code (``InvalidPhoneNumber``);
    ``message`` is for people and may change; ``field`` names the request field at fault; ``message_id`` names
    the message record of a failed attempt; ``request_id`` comes with ``InternalError``. ``idempotency_key`` is the
    key a POST went with: call again with it to ask again without sending twice."""

    status: int
    code: str | None
    message: str
    field: str | None
    message_id: str | None
    request_id: str | None
    retry_after: float | None
    body: Any
    idempotency_key: str | None

    def __init__(self, status: int, code: str | None, message: str, *, field: str | None = None,
                 message_id: str | None = None, request_id: str | None = None,
                 retry_after: float | None = None, body: Any = None, operation: str | None = None,
                 idempotency_key: str | None = None):
        self.status, self.code, self.message, self.field = status, code, message, field
        self.message_id, self.request_id, self.retry_after, self.body = message_id, request_id, retry_after, body
        self.operation, self.idempotency_key = operation, idempotency_key
        super().__init__(str(self))

    def __str__(self) -> str:
        where = f" (field {self.field})" if self.field else ""
        return f"{self.status} {self.code or 'HTTP error'}: {self.message}{where}"

    def __repr__(self) -> str:
        return f"{type(self).__name__}(status={self.status}, code={self.code!r}, field={self.field!r})"


class BadRequestError(ApiError):
    """400: the request is wrong (``InvalidPhoneNumber``, ``UnknownField``, ...)."""


class AuthenticationError(ApiError):
    """401 ``Unauthorized``: no key, or one that is unknown, wrong, revoked or expired."""


class PermissionDeniedError(ApiError):
    """403: ``InsufficientScope``, ``CountryNotAllowed``, ``RecipientNotVerified``."""


class NotFoundError(ApiError):
    """404: ``MessageNotFound``, ``BatchNotFound``, ``RouteNotFound``, ..."""


class ConflictError(ApiError):
    """409: ``RecipientOptedOut``, ``IdempotencyKeyReused``, ``OptInTooSoon``, ``NotCancelable``, ..."""


class UnprocessableError(ApiError):
    """422: ``MediaTooLarge``, ``MediaTypeNotSupported``, ``MediaNotAccessible``, ``ChannelNotSupported``."""


class RateLimitError(ApiError):
    """429 ``Throttled`` (``retry_after`` seconds), once the client's retries are spent."""


class ServerError(ApiError):
    """5xx: ``InternalError`` (with ``request_id``), ``ProviderError``, ``MmsNotConfigured``, ``Unavailable``, ..."""


FAMILIES: dict[int, type[ApiError]] = {400: BadRequestError, 401: AuthenticationError, 403: PermissionDeniedError,
                                       404: NotFoundError, 409: ConflictError, 422: UnprocessableError,
                                       429: RateLimitError}


def error_class(status: int) -> type[ApiError]:
    """The exception for a status: its family's, ``ServerError`` for any 5xx, else ``ApiError`` (405, 413, 415)."""
    return FAMILIES.get(status) or (ServerError if status >= 500 else ApiError)


class ApiConnectionError(SmsSenderError):
    """No answer came: the connection failed or timed out on every try (``attempts`` of them). A POST may have
    been done all the same: call again with its ``idempotency_key`` to find out without sending twice."""

    def __init__(self, message: str, *, attempts: int, operation: str | None = None,
                 idempotency_key: str | None = None):
        self.attempts, self.operation, self.idempotency_key = attempts, operation, idempotency_key
        super().__init__(message)


class WaitTimeout(SmsSenderError):
    """``wait_for_final`` (or another wait) ran out of time; ``last`` is what was read last."""

    def __init__(self, message: str, last: Any = None):
        self.last = last
        super().__init__(message)


class WebhookVerificationError(SmsSenderError):
    """A webhook delivery whose headers or signature do not verify: refuse it (answer 400)."""
