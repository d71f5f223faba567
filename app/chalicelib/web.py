"""The HTTP edge: domain errors to status codes (in this one place), JSON responses, request
parsing helpers and the wrapper every route goes through."""
from __future__ import annotations

import functools
import json
import uuid

from chalice import Response

from . import errors
from .log import logger

STATUS = (
    (errors.InvalidRequest, 400),
    (errors.NotAllowed, 403),
    (errors.NotFound, 404),
    (errors.Conflict, 409),
    (errors.Unprocessable, 422),
    (errors.Throttled, 429),
    (errors.ProviderFailure, 502),
    (errors.NotConfigured, 503),
)


def status_for(err: errors.MessagingError) -> int:
    for kind, status in STATUS:
        if isinstance(err, kind):
            return status
    return 500


def json_response(status: int, body, headers: dict | None = None) -> Response:
    return Response(
        body=json.dumps(body, separators=(",", ":"), default=str),
        status_code=status,
        headers={"Content-Type": "application/json", **(headers or {})},
    )


def error_response(err: errors.MessagingError) -> Response:
    headers = {"Retry-After": str(err.retry_after)} if err.retry_after else {}
    body = {"error": err.as_dict()}
    if err.message_id:
        body["error"]["messageId"] = err.message_id
    return json_response(status_for(err), body, headers)


def request_id(app) -> str:
    return getattr(app.lambda_context, "aws_request_id", None) or str(uuid.uuid4())


def handled(app):
    """Decorator: a route returns (status, body, headers); errors become the contract's error body,
    and anything unexpected becomes a 500 with a request id, never a stack trace."""

    def decorate(view):
        @functools.wraps(view)
        def wrapper(*args, **kwargs):
            try:
                status, body, headers = view(*args, **kwargs)
                return json_response(status, body, headers)
            except errors.MessagingError as err:
                return error_response(err)
            except Exception:
                rid = request_id(app)
                logger.exception("unhandled error", extra={"requestId": rid})
                return json_response(500, {"error": {"code": "InternalError",
                                                     "message": "An unexpected error occurred.",
                                                     "requestId": rid}})

        return wrapper

    return decorate
