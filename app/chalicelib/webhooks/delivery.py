"""The webhook delivery function: SQS records from the delivery queue (the fanout, ``events.py``, put them
there), each POSTed to its endpoint, signed (Standard Webhooks v1), all of a batch at once.

- A thread per endpoint of the batch, and per record: a receiver that is slow or never answers holds
  back no other endpoint. Each exchange is cut at ``TIMEOUT_SECONDS``; redirects are never followed.
- 2xx: delivered. 410: the endpoint is disabled. Any other 3xx or 4xx but 429: recorded, not retried.
- 429, 5xx, a timeout, a connection error, or an address the guard refuses now (DNS may recover): the
  record's visibility is set to the backoff (``backoff``) and it is reported in ``batchItemFailures``,
  so SQS hands it over again then, with the same payload and event id. Once the event is 24 hours old
  (from SQS's ``SentTimestamp``) a failure sends it to the dead-letter queue instead.
- A breaker per endpoint (``_gate``): a retried failure stores on the endpoint item when it may next be
  tried (``retryAt``, the failed record's own backoff). Until then its records are not tried: each is
  put back on the queue until just after that time, so a dead receiver costs one timed-out attempt per
  backoff window, not one per event, and the delivery instances stay free for the other endpoints.
- Every attempt is recorded (``webhooks.record_attempt``): ``GET /webhooks/{id}/deliveries``. A record
  put back by the breaker made no attempt and is not recorded.
- Log lines name the endpoint and the URL's host, never its path or query, a secret or a payload.
"""
from __future__ import annotations

import http.client
import json
import random
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime

from standardwebhooks import Webhook

from ..core import aws, schema
from ..core.log import logger
from ..core.settings import Settings, get_settings
from . import endpoints as webhooks
from . import netguard

TIMEOUT_SECONDS = 10.0
MAX_AGE_SECONDS = 24 * 3600
BASE_DELAY, MAX_DELAY = 30, 3600
JITTER = 0.2
# SQS: a visibility timeout is at most 12 hours (43200 s), counted from the receive, and a longer one is
# refused; the wait is set a little after the receive, so it stays a minute short of that.
MAX_VISIBILITY = 43200
MAX_WAIT = MAX_VISIBILITY - 60
# Time an invocation keeps for itself after the last POST (recording the attempt, the visibility).
RESERVE_SECONDS = 3.0
RETRIED = "retrying"
DEFERRED = "deferred"  # not tried: the endpoint's breaker holds (reported as a batch item failure)
# The breaker, on the endpoint item: when the endpoint may next be tried (ISO time, like every time in
# the table), and how many tries in a row failed (the window doubles with it, as a record's backoff does).
RETRY_AT, FAILURES = "retryAt", "failures"
# The one delivery that tries an endpoint once its window is over holds it for its timeout and this
# much more; the records put back wait for the window, the probe's timeout and this much more.
PROBE_MARGIN = 5.0


def backoff(attempt: int, retry_after: int | None = None, *, scale: float = 1.0, uniform=random.uniform) -> int:
    """Seconds before attempt ``attempt`` + 1: 30 s doubling to an hour, +-20 %, at least the
    receiver's ``Retry-After``, at most (a minute short of) SQS's 12 hours; all of it times ``scale``
    (``WEBHOOK_BACKOFF_SCALE``, 1 but on the local stack)."""
    delay = min(BASE_DELAY * 2 ** (max(attempt, 1) - 1), MAX_DELAY) * uniform(1 - JITTER, 1 + JITTER)
    if retry_after:
        delay = max(delay, retry_after)
    return max(0, round(min(delay, MAX_WAIT) * scale))


def retry_after_seconds(value: str | None, now: float | None = None) -> int | None:
    """``Retry-After`` as seconds: a number of seconds or an HTTP date (RFC 9110 10.2.3)."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return int(value)
    try:
        at = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if at.tzinfo is None:
        at = at.replace(tzinfo=timezone.utc)
    return max(0, int(at.timestamp() - (now if now is not None else time.time())))


# -- endpoints: read at every delivery; their secrets decrypted once per ciphertext ---------------
# Every delivery reads its endpoint (one strongly consistent GetItem), so a delete, a 410's disabling,
# a rotation or the breaker another instance set holds from the next delivery on, in every instance.
# Only the KMS decryption is kept: plain secrets by (endpoint id, ciphertexts in force).
_secrets: dict[tuple, list[str]] = {}
_lock = threading.Lock()
_MAX_SECRETS = 1000


def forget(endpoint_id: str | None) -> None:
    with _lock:
        for key in [k for k in _secrets if endpoint_id is None or k[0] == endpoint_id]:
            del _secrets[key]


webhooks.on_forget(forget)


def _endpoint(settings: Settings, endpoint_id: str) -> tuple[dict | None, list[str]]:
    endpoint = webhooks.load(settings, endpoint_id)
    if not endpoint or not endpoint.get("enabled"):
        return endpoint, []
    now = datetime.now(timezone.utc)
    ciphertexts = [s["ciphertext"] for s in endpoint.get("secrets", []) if webhooks.in_force(s, now)]
    key = (endpoint_id, tuple(bytes(getattr(c, "value", c)) for c in ciphertexts))
    with _lock:
        secrets = _secrets.get(key)
    if secrets is None:
        secrets = [webhooks.decrypt(settings, endpoint_id, c) for c in ciphertexts]
        with _lock:
            if len(_secrets) >= _MAX_SECRETS:
                _secrets.clear()
            _secrets[key] = secrets
    return endpoint, secrets


def _note(endpoint_id: str, endpoint: dict) -> dict:
    """The endpoint as this delivery just wrote it (the breaker's fields; None removes one)."""
    return {k: v for k, v in endpoint.items() if v is not None}


# -- the breaker -------------------------------------------------------------------------------
def _seconds(iso: str) -> float:
    return datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()


def _at(seconds: float) -> str:
    return webhooks.now_iso(datetime.fromtimestamp(seconds, timezone.utc))


def _update(settings: Settings, endpoint_id: str, expression: str, condition: str | None, names: dict,
            values: dict | None = None) -> bool:
    """A conditional write of the endpoint's breaker: False when the condition fails (another delivery
    wrote it first, or the endpoint was deleted: an update never makes the item again), or DynamoDB
    fails (the breaker is an optimisation: a delivery's outcome never depends on it)."""
    client = aws.client("dynamodb")
    params = {"ExpressionAttributeValues": values} if values else {}
    try:
        client.update_item(TableName=settings.webhooks_table, Key=webhooks.endpoint_key(endpoint_id),
                           UpdateExpression=expression,
                           ConditionExpression="attribute_exists(#sk)" + (f" AND ({condition})" if condition else ""),
                           ExpressionAttributeNames={"#sk": schema.WEBHOOKS_SORT, **names}, **params)
    except client.exceptions.ConditionalCheckFailedException:
        return False
    except Exception as err:
        logger.warning("webhook endpoint's retry time not written",
                       extra={"webhookId": endpoint_id, "reason": type(err).__name__})
        return False
    return True


def _gate(settings: Settings, endpoint_id: str, endpoint: dict, timeout: float) -> tuple[dict, float | None]:
    """(the endpoint, None: try it now) or (the endpoint, the time until which its breaker holds; 0:
    another delivery is trying it now).

    No ``retryAt``: try. A ``retryAt`` to come: wait for it. One passed: the first delivery to take it
    (a conditional write on the value it saw) holds the endpoint for its own attempt and tries; any
    other, here or in another instance, sees that hold and waits, so the end of a window costs one
    try, not one per event waiting for it."""
    retry_at = endpoint.get(RETRY_AT)
    if not retry_at:
        return endpoint, None
    now = time.time()
    if _seconds(retry_at) > now:
        return endpoint, _seconds(retry_at)
    hold = _at(now + timeout + PROBE_MARGIN)
    if _update(settings, endpoint_id, "SET #at = :hold", "#at = :seen", {"#at": RETRY_AT},
               {":hold": {"S": hold}, ":seen": {"S": retry_at}}):
        return _note(endpoint_id, {**endpoint, RETRY_AT: hold}), None
    return endpoint, 0.0  # another delivery took it (or it succeeded): the next read says which


def _opened(settings: Settings, endpoint_id: str, endpoint: dict, retry_at: str, failures: int) -> None:
    """A retried failure: the endpoint waits until ``retry_at``. Concurrent failures of the same
    endpoint write the same ``failures``; only the first stands (and an instance whose cached view is
    older never shortens a longer window another one set)."""
    if _update(settings, endpoint_id, "SET #at = :at, #n = :n", "attribute_not_exists(#n) OR #n < :n",
               {"#at": RETRY_AT, "#n": FAILURES}, {":at": {"S": retry_at}, ":n": {"N": str(failures)}}):
        _note(endpoint_id, {**endpoint, RETRY_AT: retry_at, FAILURES: failures})
    # else the window another delivery set stands: the next delivery reads it


def _closed(settings: Settings, endpoint_id: str, endpoint: dict) -> None:
    """The endpoint answered (a 2xx, or a 3xx/4xx not retried: it is up): no more waiting."""
    if endpoint.get(RETRY_AT) or endpoint.get(FAILURES):
        _update(settings, endpoint_id, "REMOVE #at, #n", None, {"#at": RETRY_AT, "#n": FAILURES})
        _note(endpoint_id, {**endpoint, RETRY_AT: None, FAILURES: None})


def _wait(seconds: float) -> int:
    """A visibility timeout SQS takes: whole seconds, 0 to ``MAX_WAIT``."""
    return max(0, min(MAX_WAIT, int(seconds + 0.999)))


def signature(secrets: list[str], event_id: str, at: datetime, text: str) -> str:
    """``webhook-signature``: ``v1,<base64>`` per secret in force, space-separated."""
    return " ".join(Webhook(secret).sign(event_id, at, text) for secret in secrets)


# -- one record ------------------------------------------------------------------------------
def _remaining(context) -> float:
    if context is None or not hasattr(context, "get_remaining_time_in_millis"):
        return 900.0
    return context.get_remaining_time_in_millis() / 1000.0


def _visibility(settings: Settings, record: dict, seconds: int) -> None:
    try:
        aws.client("sqs").change_message_visibility(QueueUrl=settings.webhook_queue_url,
                                                    ReceiptHandle=record["receiptHandle"], VisibilityTimeout=seconds)
    except Exception as err:  # it still comes back, after the queue's own visibility timeout
        logger.warning("could not set the webhook's retry time", extra={"reason": type(err).__name__})


def _dead_letter(settings: Settings, record: dict, reason: str) -> None:
    aws.client("sqs").send_message(QueueUrl=settings.webhook_dlq_url, MessageBody=record["body"], MessageAttributes={
        "reason": {"DataType": "String", "StringValue": reason}})


def _post(settings: Settings, endpoint: dict, secrets: list[str], message: dict, timeout: float):
    """(HTTP status or None, error code or None, Retry-After or None, host)."""
    host = "?"
    try:
        target = netguard.parse(endpoint["url"], settings.webhook_urls)
        host = target.host
        address = netguard.resolve(target, settings.webhook_urls)
        at = datetime.now(timezone.utc).replace(microsecond=0)
        headers = {"content-type": "application/json", "user-agent": "sms-sender-webhooks/1",
                   "webhook-id": message["eventId"], "webhook-timestamp": str(int(at.timestamp())),
                   "webhook-signature": signature(secrets, message["eventId"], at, message["payload"])}
        status, retry_after = netguard.post(target, address, message["payload"].encode("utf-8"), headers, timeout)
        return status, None, retry_after, host
    except netguard.Refused:
        return None, "address-refused", None, host
    except netguard.TimedOut:
        return None, "timeout", None, host
    except (OSError, http.client.HTTPException):
        return None, "connection", None, host


def deliver(settings: Settings, record: dict, timeout: float = TIMEOUT_SECONDS) -> str:
    """Deliver one SQS record; its outcome (``retrying`` means: report it as a batch item failure)."""
    try:
        message = json.loads(record["body"])
        event_id, endpoint_id, event_type = message["eventId"], message["endpointId"], message["type"]
        message["payload"].encode("utf-8")
    except (ValueError, KeyError, TypeError, AttributeError, UnicodeError):
        _dead_letter(settings, record, "malformed")
        logger.error("webhook message malformed; sent to the dead-letter queue",
                     extra={"sqsMessageId": record.get("messageId")})
        return "dead-lettered"
    attributes = record.get("attributes") or {}
    attempt = int(attributes.get("ApproximateReceiveCount") or 1)
    sent_at = int(attributes.get("SentTimestamp") or time.time() * 1000) / 1000.0
    endpoint, secrets = _endpoint(settings, endpoint_id)
    log = {"webhookId": endpoint_id, "eventId": event_id, "type": event_type, "attempt": attempt}
    if endpoint is None:
        logger.info("webhook skipped: the endpoint was deleted", extra=log)
        return "skipped"
    attempted_at = webhooks.now_iso()
    entry = {"eventId": event_id, "type": event_type, "attempt": attempt, "attemptedAt": attempted_at,
             "status": None, "error": None, "durationMs": 0, "nextAttemptAt": None}
    if not endpoint.get("enabled") or event_type not in endpoint.get("events", ()):
        return _record(settings, endpoint_id, {**entry, "outcome": "skipped", "error": "endpoint-disabled"}, log)
    endpoint, until = _gate(settings, endpoint_id, endpoint, timeout)
    if until is not None:
        now = time.time()
        if until > now and now - sent_at >= MAX_AGE_SECONDS:  # its 24 hours are over; the endpoint still fails
            _dead_letter(settings, record, f"no 2xx within {MAX_AGE_SECONDS // 3600} hours")
            # Listed (it ends the event), with no status and no error: it was not tried this time.
            return _record(settings, endpoint_id, {**entry, "outcome": "dead-lettered"}, log)
        # Not tried, not recorded (the list shows attempts): back on the queue until the try that ends
        # the endpoint's window has had its timeout, so it finds that try's outcome.
        _visibility(settings, record, _wait(max(until - now, 0) + TIMEOUT_SECONDS + PROBE_MARGIN))
        return DEFERRED
    failures = int(endpoint.get(FAILURES) or 0)
    started = time.monotonic()
    status, error, retry_after, host = _post(settings, endpoint, secrets, message, timeout)
    entry.update(status=status, error=error, durationMs=int((time.monotonic() - started) * 1000))
    log["host"] = host
    if status is not None and 200 <= status < 300:
        entry["outcome"] = "delivered"
        _closed(settings, endpoint_id, endpoint)
    elif status == 410:
        entry["outcome"] = "disabled"
        webhooks.disable(settings, endpoint_id, f"The endpoint answered 410 Gone at {attempted_at}.")
    elif status is not None and status != 429 and status < 500:
        entry.update(outcome="failed", error="http")  # 3xx (never followed) and 4xx: not retried
        _closed(settings, endpoint_id, endpoint)
    else:
        # The backoff counts the endpoint's failures in a row too: an event that just arrived and fails
        # on a receiver dead for hours keeps the hour-long window rather than starting it again at 30 s.
        delay = backoff(max(attempt, failures + 1), retry_after_seconds(retry_after),
                        scale=settings.webhook_backoff_scale)
        retry_at = _at(time.time() + delay)
        _opened(settings, endpoint_id, endpoint, retry_at, failures + 1)
        if time.time() - sent_at >= MAX_AGE_SECONDS:
            entry.update(outcome="dead-lettered", error=error or "http")
            _dead_letter(settings, record, f"no 2xx within {MAX_AGE_SECONDS // 3600} hours")
        else:
            entry.update(outcome=RETRIED, error=error or "http", nextAttemptAt=retry_at)
            _visibility(settings, record, delay)
    return _record(settings, endpoint_id, entry, log)


def _record(settings: Settings, endpoint_id: str, entry: dict, log: dict) -> str:
    try:
        webhooks.record_attempt(settings, endpoint_id, entry)
    except Exception as err:  # the delivery's outcome stands; only its record is missing
        logger.warning("webhook attempt not recorded", extra={**log, "reason": type(err).__name__})
    logger.info("webhook attempt", extra={**log, "outcome": entry["outcome"], "status": entry["status"],
                                          "error": entry["error"], "durationMs": entry["durationMs"]})
    return entry["outcome"]


def _endpoint_of(record: dict) -> str | None:
    try:
        endpoint_id = json.loads(record["body"]).get("endpointId")
    except (ValueError, KeyError, TypeError, AttributeError):
        return None
    return endpoint_id if isinstance(endpoint_id, str) else None


def deliver_batch(event: dict, context=None) -> dict:
    """SQS event -> ``{"batchItemFailures": [...]}``: each endpoint's records in their own threads, one of
    them first (``endpoint`` below), every endpoint at once."""
    settings = webhooks.configured(get_settings())
    if not settings.webhook_dlq_url:
        raise RuntimeError("WEBHOOK_DLQ_URL is not set: a delivery that runs out of time would have nowhere to go")
    records = event.get("Records", [])
    for service in ("dynamodb", "kms", "sqs"):
        aws.client(service)  # made once, here: creating clients from several threads at once is not safe

    def one(index: int) -> None:
        record = records[index]
        timeout = min(TIMEOUT_SECONDS, _remaining(context) - RESERVE_SECONDS)  # what this invocation has left
        if timeout < 1:  # no time left in this invocation: back to the queue, at once
            _visibility(settings, record, 0)
            outcomes[index] = RETRIED
            return
        try:
            outcomes[index] = deliver(settings, record, timeout)
        except Exception:
            logger.exception("webhook delivery failed", extra={"sqsMessageId": record.get("messageId")})
            outcomes[index] = "error"

    def endpoint(indices: list[int]) -> None:
        # One record of an endpoint first, then its others together. Should the first fail, the
        # endpoint's breaker is open and the others go back to the queue untried: a batch of ten events
        # for a receiver that never answers costs one timeout, not ten at once. A healthy endpoint's
        # others wait for one answer only (a slow one's for two timeouts at most: the function has time).
        first, *others = indices
        one(first)
        if others:
            with ThreadPoolExecutor(max_workers=len(others), thread_name_prefix="webhook") as pool:
                list(pool.map(one, others))

    outcomes: list[str] = ["error"] * len(records)
    groups: dict[str, list[int]] = {}
    for index, record in enumerate(records):
        groups.setdefault(_endpoint_of(record) or f"record {index}", []).append(index)
    with ThreadPoolExecutor(max_workers=max(len(groups), 1), thread_name_prefix="webhook") as pool:
        list(pool.map(endpoint, groups.values()))
    failed = [r["messageId"] for r, outcome in zip(records, outcomes) if outcome in (RETRIED, DEFERRED, "error")]
    counts: dict[str, int] = {}
    for outcome in outcomes:
        counts[outcome] = counts.get(outcome, 0) + 1
    logger.info("webhook batch", extra={"records": len(records), **counts})
    return {"batchItemFailures": [{"itemIdentifier": message_id} for message_id in failed]}

