"""AWS clients, created once per process and lazily, so that tests can swap them.

Every client uses botocore's standard retry mode with a bounded number of attempts, so a
throttled call is retried with backoff and then surfaces as an error we map to 429.
Endpoints come from the environment (``AWS_ENDPOINT_URL``), which is how the local stack
points the app at the embedded AWS.
"""
from __future__ import annotations

import os
from functools import lru_cache
from typing import Callable

import boto3
from botocore.config import Config

from .settings import get_settings

# What else keeps state built from the clients or the settings, dropped with them by ``reset``.
_on_reset: list[Callable[[], None]] = []


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
        connect_timeout=3,
        read_timeout=10,
        # Presigned POSTs must be SigV4: newer regions accept nothing else.
        signature_version="s3v4" if service == "s3" else None,
        s3={"addressing_style": "virtual"} if service == "s3" else None,
    )
    if service == "s3" and _session().region_name:
        return _session().client(service, config=config, endpoint_url=s3_endpoint(_session().region_name))
    return _session().client(service, config=config)


def reset() -> None:
    """Forget every cached client and the settings (tests, the local stack)."""
    client.cache_clear()
    _session.cache_clear()
    get_settings.cache_clear()
    for forget in _on_reset:
        forget()


def on_reset(forget: Callable[[], None]) -> None:
    """Have ``reset`` call ``forget`` too (a module that caches something built from a client)."""
    if forget not in _on_reset:
        _on_reset.append(forget)
