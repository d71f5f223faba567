"""What the sync and the async client share: building a request, deciding whether to try it again and after
how long, turning the answer into a model or an exception, and pacing a wait. Nothing here does I/O; the two
clients (``_client.py``) are thin loops around it.
"""
from __future__ import annotations

import email.utils
import json
import logging
import math
import os
import re
import uuid
from dataclasses import dataclass
from typing import Any, Callable, Mapping, Sequence

import httpx

from . import errors
from .models import decode

log = logging.getLogger("sms_sender")

_NUMBER_IN_URL = re.compile(r"(?:%2B|\+)(\d)(\d{3,13})(\d{2})(?!\d)", re.IGNORECASE)


def mask_numbers(text: str) -> str:
    """Phone numbers in a URL (``/opt-outs/%2B14255550123``) as ``+1********23``, the app's own log mask."""
    return _NUMBER_IN_URL.sub(lambda m: "+" + m[1] + "*" * len(m[2]) + m[3], text)


class _MaskNumbers(logging.Filter):
    """httpx logs every request's URL at INFO; ``/opt-outs/{number}`` puts a phone number in it. This filter,
    on httpx's logger only, masks the number, so a client's log never holds a whole one."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(mask_numbers(str(arg)) if isinstance(arg, (httpx.URL, str)) else arg
                                for arg in record.args)
        elif isinstance(record.msg, str):
            record.msg = mask_numbers(record.msg)
        return True


if not any(isinstance(f, _MaskNumbers) for f in logging.getLogger("httpx").filters):
    logging.getLogger("httpx").addFilter(_MaskNumbers())

DEFAULT_URL = "http://127.0.0.1:8000"  # make dev
USER_AGENT = "sms-sender-client/0.1 (python; httpx)"

# 5xx answers that say how the stage is set up, not that something is passing: trying again changes nothing.
NOT_RETRIED = frozenset({"MmsNotConfigured", "BatchesNotConfigured", "WebhooksNotConfigured",
                         "OptOutsNotConfigured", "KeysNotConfigured"})
# 409s that say "the same request is still being answered": wait as Retry-After says, then ask again, until the
# deadline even past ``max_attempts`` (asking again sends nothing: the first request's answer comes back).
RETRIED_CONFLICTS = frozenset({"IdempotencyKeyInProgress"})
# A 5xx that names a message record is that message's outcome (the provider refused it): the API answers the same
# Idempotency-Key with it again (app/chalicelib/core/idempotency.py), so trying again changes nothing. These codes
# are not kept as outcomes: the same key tries them again.
NOT_KEPT = frozenset({"Throttled", "Unavailable"})


@dataclass(frozen=True)
class Retries:
    """How one call is tried again: on 429, on 5xx (but the ``*NotConfigured`` codes, and a failure the API recorded
    on a message: ``messageId``), on 409 ``IdempotencyKeyInProgress`` and on connection errors and timeouts.

    At most ``max_attempts`` tries, all within ``deadline`` seconds from the first; ``IdempotencyKeyInProgress``
    is asked again until the deadline, however many tries that takes. Between tries: the answer's
    ``Retry-After`` (plus up to 10 % jitter), else exponential backoff from ``initial`` by ``factor`` up to
    ``max_backoff``, with jitter (each wait is between half and all of its step). A ``Retry-After`` that ends
    past the deadline ends the call at once, with the answer's exception."""

    max_attempts: int = 4
    deadline: float = 60.0
    initial: float = 0.5
    factor: float = 2.0
    max_backoff: float = 8.0

    def __post_init__(self):
        if self.max_attempts < 1 or self.deadline <= 0:
            raise ValueError("max_attempts must be at least 1 and deadline positive")


NO_RETRIES = Retries(max_attempts=1)


@dataclass(frozen=True)
class Call:
    """One operation as the API takes it: no I/O yet. ``url`` (absolute) is for a presigned upload, which goes
    to S3, not to the API, and so never carries the key."""

    operation_id: str
    method: str
    path: str = ""
    query: Sequence[tuple[str, str]] = ()
    json: Any = None
    returns: Any = None
    idempotency_key: str | None = None
    url: str | None = None
    form: Mapping[str, str] | None = None
    file: tuple[str, bytes, str] | None = None


@dataclass(frozen=True)
class Answer:
    """What came back: the status, the headers (lower-case names) and the body's bytes."""

    status: int
    headers: Mapping[str, str]
    content: bytes

    @classmethod
    def of(cls, response: httpx.Response) -> "Answer":
        return cls(response.status_code, {k.lower(): v for k, v in response.headers.items()}, response.content)


Outcome = "Answer | Exception"


def _retried_transport_error(err: BaseException) -> bool:
    return isinstance(err, httpx.TransportError) and not isinstance(err, httpx.UnsupportedProtocol)


def json_value(value: Any) -> Any:
    """A Python value as JSON: datetimes and dates as ISO 8601 (a datetime must carry its offset)."""
    import datetime as dt

    if isinstance(value, dt.datetime):
        if value.tzinfo is None:
            raise ValueError("give a datetime with its time zone (datetime.now(timezone.utc)), not a naive one")
        return value.isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, Mapping):
        return {k: json_value(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_value(v) for v in value]
    return value


def query_value(value: Any) -> str:
    value = json_value(value)
    return ("true" if value else "false") if isinstance(value, bool) else str(value)


class Core:
    """The shared half of a client: its address, key, timeouts and retry rules, and the clocks it reads."""

    def __init__(self, base_url: str | None = None, api_key: str | None = None, timeout: float = 30.0,
                 retries: Retries | None = None, clock: Callable[[], float] | None = None,
                 random: Callable[[], float] | None = None, wall: Callable[[], float] | None = None):
        import random as _random
        import time

        self.base_url: str = (base_url or os.environ.get("SMS_API_URL") or DEFAULT_URL).rstrip("/")
        self.api_key: str | None = api_key if api_key is not None else (os.environ.get("SMS_API_KEY") or None)
        self.timeout, self.retries = timeout, retries or Retries()
        self.clock: Callable[[], float] = clock or time.monotonic
        self.random: Callable[[], float] = random or _random.random
        self.wall: Callable[[], float] = wall or time.time

    def __repr__(self) -> str:  # never the key
        return f"Core(base_url={self.base_url!r})"

    # -- building -------------------------------------------------------------------------------------------
    def request(self, call: Call, timeout: float) -> dict[str, Any]:
        """The keyword arguments of ``httpx.Client.request`` for one try of ``call``."""
        if call.url is not None:  # a presigned upload: S3's address, no key, no JSON
            files = {"file": call.file} if call.file else None
            return {"method": call.method, "url": call.url, "data": dict(call.form or {}), "files": files,
                    "headers": {"User-Agent": USER_AGENT}, "timeout": timeout}
        headers = {"Accept": "application/json", "User-Agent": USER_AGENT}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        if call.idempotency_key is not None:
            headers["Idempotency-Key"] = call.idempotency_key
        kwargs: dict[str, Any] = {"method": call.method, "url": self.base_url + call.path, "headers": headers,
                                  "timeout": timeout}
        if call.query:
            kwargs["params"] = list(call.query)
        if call.json is not None:
            headers["Content-Type"] = "application/json"
            kwargs["content"] = json.dumps(call.json, ensure_ascii=False).encode()
        return kwargs

    @staticmethod
    def idempotency_key(given: str | None, method: str) -> str | None:
        """Every POST carries one: the caller's, else a new one, the same on every try of the call."""
        if given is not None:
            return given
        return str(uuid.uuid4()) if method == "POST" else None

    # -- trying again ---------------------------------------------------------------------------------------
    def attempt_timeout(self, started: float) -> float:
        """The read timeout of the next try: the per-try timeout, or what is left of the deadline if less."""
        return max(0.001, min(self.timeout, self.retries.deadline - (self.clock() - started)))

    def retry_after(self, answer: Answer) -> float | None:
        """``Retry-After`` in seconds (a number of seconds, or an HTTP date), or None."""
        value = answer.headers.get("retry-after")
        if not value:
            return None
        try:
            seconds = float(value)
        except ValueError:
            try:
                when = email.utils.parsedate_to_datetime(value).timestamp()
            except (TypeError, ValueError, IndexError, OverflowError):
                return None
            seconds = when - self.wall()
        return max(0.0, seconds) if math.isfinite(seconds) else None

    def retriable(self, outcome: Answer | BaseException) -> bool:
        if isinstance(outcome, BaseException):
            return _retried_transport_error(outcome)
        if outcome.status == 429:
            return True
        body = _error_body(outcome)
        code = body.get("code")
        if outcome.status >= 500:
            return code not in NOT_RETRIED and (body.get("messageId") is None or code in NOT_KEPT)
        return _in_progress(outcome)

    def next_wait(self, call: Call, attempt: int, started: float, outcome: Answer | BaseException) -> float | None:
        """Seconds to wait before try ``attempt + 1``, or None: the outcome is final."""
        if not self.retriable(outcome):
            return None
        beyond = attempt >= self.retries.max_attempts
        if beyond and not _in_progress(outcome):
            return None
        hinted = None if isinstance(outcome, BaseException) else self.retry_after(outcome)
        if hinted is not None:
            wait = hinted + self.random() * min(1.0, hinted * 0.1)
        else:
            step = min(self.retries.max_backoff, self.retries.initial * self.retries.factor ** (attempt - 1))
            wait = step / 2 + self.random() * step / 2
        if self.clock() - started + wait >= self.retries.deadline:
            return None
        what = (type(outcome).__name__ if isinstance(outcome, BaseException)
                else f"{outcome.status} {_error_body(outcome).get('code') or ''}".strip())
        log.info("%s: %s; try %d %s in %.2f s", call.operation_id, what, attempt + 1,
                 "(until the deadline: the first is still being answered)" if beyond else
                 f"of {self.retries.max_attempts}", wait)
        return wait

    # -- the answer -----------------------------------------------------------------------------------------
    def result(self, call: Call, outcome: Answer | BaseException, attempts: int) -> Any:
        """The call's value, or its exception."""
        if isinstance(outcome, BaseException):
            if isinstance(outcome, httpx.TransportError):
                raise errors.ApiConnectionError(
                    f"{call.operation_id}: no answer after {attempts} tr{'y' if attempts == 1 else 'ies'} "
                    f"({type(outcome).__name__}: {outcome})", attempts=attempts,
                    operation=call.operation_id, idempotency_key=call.idempotency_key) from outcome
            raise outcome
        if outcome.status >= 300:
            raise self.error(call, outcome)
        if call.returns is None or outcome.status == 204 or not outcome.content:
            return None
        if call.returns is str:
            return outcome.content.decode("utf-8", "replace")
        return decode(call.returns, json.loads(outcome.content))

    def error(self, call: Call, answer: Answer) -> errors.ApiError:
        body = _error_body(answer)
        message = body.get("message")
        if not isinstance(message, str):
            message = _plain_message(answer)
        cls = errors.error_class(answer.status)
        return cls(answer.status, _str(body.get("code")), message, field=_str(body.get("field")),
                   message_id=_str(body.get("messageId")), request_id=_str(body.get("requestId")),
                   retry_after=self.retry_after(answer), body=_json_or_none(answer.content),
                   operation=call.operation_id, idempotency_key=call.idempotency_key)


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _json_or_none(content: bytes) -> Any:
    try:
        return json.loads(content) if content else None
    except ValueError:
        return None


def _in_progress(outcome: Answer | BaseException) -> bool:
    return (isinstance(outcome, Answer) and outcome.status == 409
            and _error_body(outcome).get("code") in RETRIED_CONFLICTS)


def _error_body(answer: Answer) -> dict[str, Any]:
    body = _json_or_none(answer.content)
    detail = body.get("error") if isinstance(body, dict) else None
    return detail if isinstance(detail, dict) else {}


def _plain_message(answer: Answer) -> str:
    body = _json_or_none(answer.content)
    if isinstance(body, dict) and isinstance(body.get("message"), str):  # API Gateway's own shape
        return body["message"]
    return f"HTTP {answer.status}"


class Poll:
    """The pace of a wait (``wait_for_final`` and the like): first after ``initial`` seconds, each wait
    ``factor`` times the last, at most ``cap``; None once ``timeout`` seconds have passed since the start."""

    def __init__(self, timeout: float, clock: Callable[[], float], *, initial: float = 0.25, factor: float = 1.5,
                 cap: float = 5.0):
        self.clock, self.started, self.timeout = clock, clock(), timeout
        self.wait, self.factor, self.cap = initial, factor, cap

    def next(self) -> float | None:
        left = self.timeout - (self.clock() - self.started)
        if left <= 0:
            return None
        wait, self.wait = min(self.wait, left), min(self.cap, self.wait * self.factor)
        return wait
