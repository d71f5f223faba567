"""AWS clients, created once per process and lazily, so that tests can swap them.

Every client uses botocore's standard retry mode with a bounded number of attempts, so a
throttled call is retried with backoff and then surfaces as an error we map to 429.
Endpoints come from the environment (``AWS_ENDPOINT_URL``), which is how the local stack
points the app at the embedded AWS.
"""
from __future__ import annotations

from functools import lru_cache

import boto3
from botocore.config import Config

from .settings import get_settings


@lru_cache(maxsize=1)
def _session() -> boto3.session.Session:
    # One session for every client: each new session reloads botocore's data files.
    return boto3.session.Session()


@lru_cache(maxsize=None)
def client(service: str):
    config = Config(
        retries={"mode": "standard", "total_max_attempts": get_settings().provider_max_attempts},
        connect_timeout=3,
        read_timeout=10,
        # Presigned POSTs must be SigV4: newer regions accept nothing else.
        signature_version="s3v4" if service == "s3" else None,
    )
    return _session().client(service, config=config)


def reset() -> None:
    """Forget every cached client and the settings (tests, the local stack)."""
    client.cache_clear()
    _session.cache_clear()
    get_settings.cache_clear()
    from . import idempotency

    idempotency.reset()
