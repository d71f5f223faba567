"""``Idempotency-Key`` for every POST, on Powertools' idempotency utility with a DynamoDB table.

The same key with the same body within 24 hours replays the first response and sends nothing
more; the same key with another body is 409 ``IdempotencyKeyReused``. Requests rejected before
anything was recorded (bad input) and throttled sends are not remembered, so they can be
retried with the same key.
"""
from __future__ import annotations

import hashlib
import json
from functools import lru_cache
from typing import Callable

from . import aws, errors
from .errors import Conflict, InvalidRequest, MessagingError
from .inputs import MAX_KEY_LENGTH
from .settings import get_settings

TTL_SECONDS = 24 * 3600


def _run(request: dict, handler: Callable[[], tuple[int, dict, dict]]) -> dict:
    try:
        status, body, headers = handler()
    except MessagingError as err:
        # An attempt that reached the provider and was refused is an outcome: replay it.
        # Bad input and throttling are not: the caller may fix or retry under the same key.
        if err.message_id is None or err.code in ("Throttled", "Unavailable"):
            raise
        return {"error": err.as_dict(), "errorClass": type(err).__name__, "messageId": err.message_id}
    return {"status": status, "body": body, "headers": headers}


@lru_cache(maxsize=1)
def _runner():
    from aws_lambda_powertools.utilities.idempotency import (
        DynamoDBPersistenceLayer,
        IdempotencyConfig,
        idempotent_function,
    )

    store = DynamoDBPersistenceLayer(table_name=get_settings().idempotency_table,
                                     boto3_client=aws.client("dynamodb"))
    config = IdempotencyConfig(event_key_jmespath="key", payload_validation_jmespath="fingerprint",
                               expires_after_seconds=TTL_SECONDS, raise_on_no_idempotency_key=True)
    return idempotent_function(data_keyword_argument="request", persistence_store=store, config=config)(_run), config


def reset() -> None:
    _runner.cache_clear()


aws.on_reset(reset)  # the runner holds the DynamoDB client and the table's name


def fingerprint(raw) -> str:
    """The same JSON body, whatever its spacing or key order, has the same fingerprint."""
    try:
        canonical = json.dumps(json.loads(raw), sort_keys=True, separators=(",", ":"))
    except (TypeError, ValueError):
        canonical = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw)
    return hashlib.sha256(canonical.encode()).hexdigest()


def once(route: str, key: str | None, raw_body, handler: Callable[[], tuple[int, dict, dict]], lambda_context=None):
    """Run ``handler`` at most once per (route, key). Returns (status, body, headers) or raises."""
    if key is None:
        return handler()
    if not key.strip() or len(key) > MAX_KEY_LENGTH:
        raise InvalidRequest("InvalidIdempotencyKey",
                             f"'Idempotency-Key' must be 1 to {MAX_KEY_LENGTH} characters.", field="Idempotency-Key")
    from aws_lambda_powertools.utilities.idempotency.exceptions import (
        IdempotencyAlreadyInProgressError,
        IdempotencyValidationError,
    )

    runner, config = _runner()
    if hasattr(lambda_context, "get_remaining_time_in_millis"):
        config.register_lambda_context(lambda_context)
    try:
        outcome = runner(request={"key": f"{route} {key}", "fingerprint": fingerprint(raw_body)}, handler=handler)
    except IdempotencyValidationError:
        raise Conflict("IdempotencyKeyReused",
                       "This Idempotency-Key was used with a different request body.") from None
    except IdempotencyAlreadyInProgressError:
        raise Conflict("IdempotencyKeyInProgress",
                       "A request with this Idempotency-Key is still in progress; retry shortly.",
                       retry_after=1) from None
    if "error" in outcome:
        err = getattr(errors, outcome["errorClass"], errors.MessagingError)(
            outcome["error"]["code"], outcome["error"]["message"], field=outcome["error"].get("field"))
        err.message_id = outcome["messageId"]
        raise err
    return outcome["status"], outcome["body"], outcome["headers"]
