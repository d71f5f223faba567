"""The app's settings, read once from environment variables into one typed object.

The CDK stack sets these variables on every Lambda function; the local stack sets them for
``make dev`` and the end-to-end tests.
"""
from __future__ import annotations

import os
from functools import lru_cache
from typing import Mapping, NamedTuple

SMS_PROVIDERS = ("sns", "sms-voice")
SMS_TYPES = ("transactional", "promotional")
WEBHOOK_URL_MODES = ("https", "loopback")
# "Where required by local laws and regulations (such as in the US and Canada), SMS and MMS recipients
# can use their devices to opt out by replying to the message with any of the following" (End User
# Messaging SMS user guide, keywords-required.html).
REQUIRED_OPT_OUT_KEYWORDS = frozenset({"ARRET", "CANCEL", "END", "OPT-OUT", "OPTOUT", "QUIT", "REMOVE", "STOP",
                                       "TD", "UNSUBSCRIBE"})


class ConfigError(ValueError):
    """A setting is missing or has a value the app cannot use."""


class Settings(NamedTuple):
    media_bucket: str
    messages_table: str
    idempotency_table: str
    stage: str = "dev"
    sms_provider: str = "sns"
    origination_identity: str | None = None
    configuration_set_name: str | None = None
    default_sms_type: str = "transactional"
    sender_id: str | None = None
    allowed_countries: frozenset[str] = frozenset()
    batch_queue_url: str | None = None
    batch_dlq_url: str | None = None
    max_mps: float = 1.0
    message_retention_days: int = 90
    media_upload_expires_seconds: int = 900
    provider_max_attempts: int = 3
    # The batch worker: how many instances may run at once (the event source's maximum concurrency;
    # all of them share one send schedule at max_mps), and after how many receives the queue gives
    # a message to the dead-letter queue.
    worker_concurrency: int = 1
    max_receives: int = 5
    # Scheduled sends (issue 21): a message due within ``schedule_direct_seconds`` goes on the batch queue when
    # it is made, with SQS's DelaySeconds (at most 900); one due later waits in the due index, and the sweep
    # puts it on the queue once it falls due within ``sweep_lookahead_seconds``, reading the index in steps of
    # ``sweep_step_seconds``. The defaults are the deployed ones; tests shorten them (see ``sending.schedule``).
    schedule_direct_seconds: int = 600
    sweep_lookahead_seconds: int = 300
    sweep_step_seconds: int = 60
    # Webhooks (issue 13): the endpoint + attempt table, the delivery queue and its dead-letter
    # queue, the KMS key for secrets, which URLs an endpoint may have ("https" deployed, "loopback"
    # under make dev and the tests), and how many endpoints a stage may have.
    webhooks_table: str | None = None
    webhook_queue_url: str | None = None
    webhook_dlq_url: str | None = None
    webhook_key_id: str | None = None
    webhook_urls: str = "https"
    max_webhooks: int = 10
    # Multiplies every webhook retry delay (the local stack's 0.05 makes retries come seconds apart).
    webhook_backoff_scale: float = 1.0
    # Two-way messaging (issue 14): replies arrive (the stack built the inbound topic, queue and
    # function), the identity's End User Messaging opt-out list, the stage's number in E.164 (when
    # the stack can tell), and the reply keywords that opt a sender out or back in (the stage's
    # ``keywords`` with action OPT_OUT / OPT_IN; End User Messaging's required opt-out keywords
    # by default).
    # Access (issue 19): the keys table the authorizer reads and the /keys routes write.
    keys_table: str | None = None
    inbound_enabled: bool = False
    opt_out_list_name: str | None = None
    origination_number: str | None = None
    opt_out_keywords: frozenset[str] = REQUIRED_OPT_OUT_KEYWORDS
    opt_in_keywords: frozenset[str] = frozenset()
    # Templates (issue 21): the table of templates and their versions.
    templates_table: str | None = None
    # Delivery reports (issue 22): the counters and exports table, the export queue, and the stage's
    # monthlySpendLimitUsd (shown beside the month's cost; None when the stage sets none).
    reports_table: str | None = None
    export_queue_url: str | None = None
    monthly_spend_limit_usd: int | None = None

    @property
    def mms_enabled(self) -> bool:
        return bool(self.origination_identity)

    @classmethod
    def from_env(cls, env: Mapping[str, str] = os.environ) -> "Settings":
        def text(name: str) -> str | None:
            value = env.get(name, "").strip()
            return value or None

        def required(name: str) -> str:
            value = text(name)
            if value is None:
                raise ConfigError(f"environment variable {name} is required")
            return value

        def number(name: str, default, kind=int, minimum=1):
            raw = text(name)
            if raw is None:
                return default
            try:
                value = kind(raw)
            except ValueError:
                raise ConfigError(f"{name} must be a number, got {raw!r}") from None
            if value < minimum:
                raise ConfigError(f"{name} must be at least {minimum}, got {raw!r}")
            return value

        provider = text("SMS_PROVIDER") or "sns"
        if provider not in SMS_PROVIDERS:
            raise ConfigError(f"SMS_PROVIDER must be one of {', '.join(SMS_PROVIDERS)}, got {provider!r}")
        sms_type = (text("DEFAULT_SMS_TYPE") or "transactional").lower()
        if sms_type not in SMS_TYPES:
            raise ConfigError(f"DEFAULT_SMS_TYPE must be one of {', '.join(SMS_TYPES)}, got {sms_type!r}")
        webhook_urls = (text("WEBHOOK_URLS") or "https").lower()
        if webhook_urls not in WEBHOOK_URL_MODES:
            raise ConfigError(f"WEBHOOK_URLS must be one of {', '.join(WEBHOOK_URL_MODES)}, got {webhook_urls!r}")
        def words(name: str) -> frozenset[str]:
            return frozenset(w.strip().upper() for w in (text(name) or "").split(",") if w.strip())

        countries = frozenset(
            code.strip().upper() for code in (text("ALLOWED_COUNTRIES") or "").split(",") if code.strip()
        )
        return cls(
            media_bucket=required("MEDIA_BUCKET"),
            messages_table=required("MESSAGES_TABLE"),
            idempotency_table=required("IDEMPOTENCY_TABLE"),
            stage=text("STAGE") or "dev",
            sms_provider=provider,
            origination_identity=text("ORIGINATION_IDENTITY"),
            configuration_set_name=text("CONFIGURATION_SET_NAME"),
            default_sms_type=sms_type,
            sender_id=text("SENDER_ID"),
            allowed_countries=countries,
            batch_queue_url=text("BATCH_QUEUE_URL"),
            batch_dlq_url=text("BATCH_DLQ_URL"),
            max_mps=number("MAX_MPS", 1.0, float, minimum=0.1),
            message_retention_days=number("MESSAGE_RETENTION_DAYS", 90),
            media_upload_expires_seconds=number("MEDIA_UPLOAD_EXPIRES_SECONDS", 900, minimum=60),
            provider_max_attempts=number("PROVIDER_MAX_ATTEMPTS", 3),
            worker_concurrency=number("WORKER_CONCURRENCY", 1),
            max_receives=number("MAX_RECEIVES", 5),
            **_schedule_settings(number),
            webhooks_table=text("WEBHOOKS_TABLE"),
            webhook_queue_url=text("WEBHOOK_QUEUE_URL"),
            webhook_dlq_url=text("WEBHOOK_DLQ_URL"),
            webhook_key_id=text("WEBHOOK_KEY_ID"),
            webhook_urls=webhook_urls,
            max_webhooks=number("MAX_WEBHOOKS", 10),
            webhook_backoff_scale=number("WEBHOOK_BACKOFF_SCALE", 1.0, float, minimum=0.001),
            keys_table=text("KEYS_TABLE"),
            inbound_enabled=(text("INBOUND_ENABLED") or "").lower() in ("1", "true", "yes"),
            opt_out_list_name=text("OPT_OUT_LIST_NAME"),
            origination_number=text("ORIGINATION_NUMBER"),
            opt_out_keywords=REQUIRED_OPT_OUT_KEYWORDS | words("OPT_OUT_KEYWORDS"),
            opt_in_keywords=words("OPT_IN_KEYWORDS"),
            templates_table=text("TEMPLATES_TABLE"),
            reports_table=text("REPORTS_TABLE"),
            export_queue_url=text("EXPORT_QUEUE_URL"),
            monthly_spend_limit_usd=number("MONTHLY_SPEND_LIMIT_USD", None),
        )


# SQS's longest DelaySeconds ("Valid values: 0 to 900", the SendMessage API reference;
# tests/aws_docs/sqs-delay-seconds.json).
MAX_DELAY_SECONDS = 900


def _schedule_settings(number) -> dict:
    """The three scheduling settings, checked against each other: a message the API leaves to the sweep must be
    due later than the sweep has read (``direct > lookahead``), and the queue's delay must reach as far as the
    API's (``direct <= MAX_DELAY_SECONDS``)."""
    values = {"schedule_direct_seconds": number("SCHEDULE_DIRECT_SECONDS", 600),
              "sweep_lookahead_seconds": number("SWEEP_LOOKAHEAD_SECONDS", 300),
              "sweep_step_seconds": number("SWEEP_STEP_SECONDS", 60)}
    if values["schedule_direct_seconds"] > MAX_DELAY_SECONDS:
        raise ConfigError(f"SCHEDULE_DIRECT_SECONDS must be at most {MAX_DELAY_SECONDS} (SQS's longest delay)")
    if values["sweep_lookahead_seconds"] >= values["schedule_direct_seconds"]:
        raise ConfigError("SWEEP_LOOKAHEAD_SECONDS must be less than SCHEDULE_DIRECT_SECONDS: the sweep must not "
                          "read a range the API may still add messages to")
    return values


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings.from_env()
