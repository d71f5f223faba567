"""AWS clients, created once per process and lazily, so that tests can swap them.

Every client uses botocore's standard retry mode with a bounded number of attempts, so a
throttled call is retried with backoff and then surfaces as an error we map to 429.
Endpoints come from the environment (``AWS_ENDPOINT_URL``), which is how the local stack
points the app at the embedded AWS.

Behind API Gateway, which gives up at 29 seconds, a request has a deadline (``deadline``): the API's
function times out sooner (``API_TIMEOUT_SECONDS``), no call is tried again once another attempt would
not fit before the deadline, and the send path asks ``time_left`` before it calls the provider. So every
AWS call ends, retries included, before the function must answer, and no send happens after the caller
was answered.
"""
from __future__ import annotations

import math
import os
import time
from contextlib import contextmanager
from contextvars import ContextVar
from functools import lru_cache
from typing import Callable

import boto3
from botocore.config import Config

from .settings import get_settings

# What else keeps state built from the clients or the settings, dropped with them by ``reset``.
_on_reset: list[Callable[[], None]] = []

# The API's Lambda timeout: under API Gateway's 29 seconds (its integration timeout), with room to answer.
API_TIMEOUT_SECONDS = 28
CONNECT_TIMEOUT_SECONDS = 2
# One attempt of a call waits at most this long for an answer (AWS_READ_TIMEOUT overrides it: the local
# stack's moto, on a loaded machine, answers far slower than AWS).
READ_TIMEOUT_SECONDS = 5
# botocore's standard retry mode waits at most min(2 ** i, 20) seconds before attempt i + 2, plus up to 5
# when AWS asks for more (x-amz-retry-after): botocore/retries/standard.py, ExponentialBackoff.
_MAX_BACKOFF, _RETRY_AFTER_EXTRA = 20, 5

_deadline: ContextVar[float | None] = ContextVar("aws_deadline", default=None)
clock = time.monotonic  # tests put their own


@lru_cache(maxsize=1)
def read_timeout() -> float:
    """The clients' read timeout, read from the environment once (``reset`` reads it again with the clients:
    every AWS call asks ``attempt_seconds`` after its answer)."""
    raw = os.environ.get("AWS_READ_TIMEOUT", "").strip()
    return float(raw) if raw else READ_TIMEOUT_SECONDS


def attempt_seconds() -> float:
    """The longest one attempt of a call takes: connecting, then waiting for the answer."""
    return CONNECT_TIMEOUT_SECONDS + read_timeout()


def backoff_seconds(attempt: int) -> float:
    """The longest botocore waits before the attempt after ``attempt`` (1-based)."""
    return min(2 ** (attempt - 1), _MAX_BACKOFF) + _RETRY_AFTER_EXTRA


@contextmanager
def deadline(seconds: float | None):
    """Calls made inside end within ``seconds`` from now, retries included (None: no deadline)."""
    token = _deadline.set(None if seconds is None else clock() + seconds)
    try:
        yield
    finally:
        _deadline.reset(token)


def time_left() -> float:
    """Seconds before the current deadline (infinite without one)."""
    until = _deadline.get()
    return math.inf if until is None else until - clock()


def _retry_only_in_time(attempts=0, **_):
    """``needs-retry``, asked first: no further attempt that might not end before the deadline. Otherwise
    no opinion: botocore's own retry handler decides."""
    return False if time_left() < backoff_seconds(attempts) + attempt_seconds() else None


@lru_cache(maxsize=1)
def _session() -> boto3.session.Session:
    # One session for every client: each new session reloads botocore's data files.
    return boto3.session.Session()


def s3_endpoint(region: str) -> str | None:
    """S3's regional endpoint, unless the environment names one (the local stack does).

    botocore presigns POSTs for the global endpoint (``<bucket>.s3.amazonaws.com``) in every
    region; S3 redirects that for a new bucket outside us-east-1 (which a browser's CORS upload
    does not follow) and refuses it in opt-in regions. The regional name works everywhere."""
    if os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL"):
        return None
    partition = _session().get_partition_for_region(region)
    suffix = "amazonaws.com.cn" if partition == "aws-cn" else "amazonaws.com"
    return f"https://s3.{region}.{suffix}"


@lru_cache(maxsize=None)
def client(service: str):
    config = Config(
        retries={"mode": "standard", "total_max_attempts": get_settings().provider_max_attempts},
        connect_timeout=CONNECT_TIMEOUT_SECONDS,
        read_timeout=read_timeout(),
        # Presigned POSTs must be SigV4: newer regions accept nothing else.
        signature_version="s3v4" if service == "s3" else None,
        s3={"addressing_style": "virtual"} if service == "s3" else None,
    )
    if service == "s3" and _session().region_name:
        made = _session().client(service, config=config, endpoint_url=s3_endpoint(_session().region_name))
    else:
        made = _session().client(service, config=config)
    made.meta.events.register_first(f"needs-retry.{made.meta.service_model.service_id.hyphenize()}",
                                    _retry_only_in_time, unique_id="sms-sender-retry-only-in-time")
    return made


def reset() -> None:
    """Forget every cached client and the settings (tests, the local stack)."""
    client.cache_clear()
    read_timeout.cache_clear()
    _session.cache_clear()
    get_settings.cache_clear()
    for forget in _on_reset:
        forget()


def on_reset(forget: Callable[[], None]) -> None:
    """Have ``reset`` call ``forget`` too (a module that caches something built from a client)."""
    if forget not in _on_reset:
        _on_reset.append(forget)
