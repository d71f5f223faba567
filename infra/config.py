"""Per-stage settings from cdk.json context (``stages``), read once into a typed, validated object."""
from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

SMS_PROVIDERS = ("sns", "sms-voice")
SMS_TYPES = ("transactional", "promotional")

# The forms of originationIdentity whose IAM resource ARN the stack can know at synth time: the
# ARN itself, a PhoneNumberId or a PoolId (End User Messaging's own id formats).
IDENTITY_ARN = re.compile(
    r"arn:aws[a-z-]*:sms-voice:[a-z0-9-]+:\d{12}:(phone-number/phone-[A-Za-z0-9]+|pool/pool-[A-Za-z0-9]+"
    r"|sender-id/[A-Za-z0-9_-]+/[A-Z]{2})")
IDENTITY_ID = re.compile(r"(phone|pool)-[A-Za-z0-9]+")
FIND_PHONE_NUMBER_ID = ("aws pinpoint-sms-voice-v2 describe-phone-numbers "
                        "--query \"PhoneNumbers[].[PhoneNumber,PhoneNumberId,PhoneNumberArn]\" --output text")


def stack_name(stage: str) -> str:
    """The CloudFormation stack of a stage (the CDK app names it; preflight and smoke read it)."""
    return f"SmsSender-{stage}"


class StageConfigError(ValueError):
    pass


@dataclass(frozen=True)
class StageConfig:
    stage: str
    sms_provider: str = "sns"
    origination_identity: str | None = None
    configuration_set_name: str | None = None
    default_sms_type: str = "transactional"
    sender_id: str | None = None
    allowed_countries: tuple[str, ...] = ()
    monthly_spend_limit_usd: int | None = None
    alarm_email: str | None = None
    media_retention_days: int = 30
    api_rate_limit: int = 10
    api_burst_limit: int = 20
    max_mps: float = 1.0
    # This stage sets the settings that are one per account and region: the SNS SMS attributes and
    # delivery-status log groups, and API Gateway's CloudWatch Logs role. With two stages in one
    # account and region, exactly one of them keeps this true (and is deployed first).
    account_settings: bool = True

    KEYS = {  # cdk.json key -> attribute
        "smsProvider": "sms_provider", "originationIdentity": "origination_identity",
        "configurationSetName": "configuration_set_name", "defaultSmsType": "default_sms_type",
        "senderId": "sender_id", "allowedCountries": "allowed_countries",
        "monthlySpendLimitUsd": "monthly_spend_limit_usd", "alarmEmail": "alarm_email",
        "mediaRetentionDays": "media_retention_days", "apiRateLimit": "api_rate_limit",
        "apiBurstLimit": "api_burst_limit", "maxMps": "max_mps", "accountSettings": "account_settings",
    }

    @property
    def uses_end_user_messaging(self) -> bool:
        """End User Messaging carries this stage's SMS or MMS. An sms-voice stage always has an
        origination identity (checked below), so the identity alone decides."""
        return bool(self.origination_identity)

    @property
    def prefix(self) -> str:
        return f"sms-sender-{self.stage}"

    @classmethod
    def from_context(cls, node) -> "StageConfig":
        stage = node.try_get_context("stage") or "dev"
        stages = node.try_get_context("stages") or {}
        return cls.from_dict(stage, stages.get(stage, {}))

    @classmethod
    def from_cdk_json(cls, stage: str, path: str | Path) -> "StageConfig":
        """A stage as ``cdk.json`` (at ``path``) has it, outside any CDK app (the local stack reads it so).
        A stage that ``cdk.json`` does not name is refused, since a typo would otherwise run on defaults."""
        stages = json.loads(Path(path).read_text()).get("context", {}).get("stages") or {}
        if stage not in stages:
            raise StageConfigError(f"stage {stage!r} is not in {Path(path).name} (stages: {', '.join(sorted(stages))})")
        return cls.from_dict(stage, stages[stage])

    def app_environment(self, *, media_bucket: str, messages_table: str, idempotency_table: str,
                        batch_queue_url: str, max_receives: int, worker_concurrency: int,
                        configuration_set_name: str | None = None) -> dict[str, str]:
        """The app's environment variables (what ``chalicelib.settings.Settings.from_env`` reads) for this stage,
        given the names of its resources. The CDK stack (``infra/api.py``) and the local stack (``devstack``)
        both take the app's settings from here, so what runs locally is what is deployed."""
        environment = {
            "STAGE": self.stage,
            "SMS_PROVIDER": self.sms_provider,
            "DEFAULT_SMS_TYPE": self.default_sms_type,
            "MEDIA_BUCKET": media_bucket,
            "MESSAGES_TABLE": messages_table,
            "IDEMPOTENCY_TABLE": idempotency_table,
            "BATCH_QUEUE_URL": batch_queue_url,
            "ALLOWED_COUNTRIES": ",".join(self.allowed_countries),
            "MAX_MPS": str(self.max_mps),
            "WORKER_CONCURRENCY": str(worker_concurrency),
            "MAX_RECEIVES": str(max_receives),
            "POWERTOOLS_SERVICE_NAME": "sms-sender",
        }
        for key, value in (("ORIGINATION_IDENTITY", self.origination_identity),
                           ("CONFIGURATION_SET_NAME", configuration_set_name),
                           ("SENDER_ID", self.sender_id)):
            if value:
                environment[key] = value
        return environment

    @classmethod
    def from_dict(cls, stage: str, raw: dict) -> "StageConfig":
        if not re.fullmatch(r"[a-z][a-z0-9-]{0,19}", stage or ""):
            raise StageConfigError(f"stage {stage!r}: use 1 to 20 lower-case letters, digits and dashes")
        unknown = set(raw) - set(cls.KEYS)
        if unknown:
            raise StageConfigError(f"stage {stage}: unknown setting(s) {', '.join(sorted(unknown))}; "
                                   f"known: {', '.join(sorted(cls.KEYS))}")
        values = {cls.KEYS[k]: v for k, v in raw.items()}
        if "allowed_countries" in values:
            countries = values["allowed_countries"]
            if not isinstance(countries, list) or not all(
                    isinstance(c, str) and re.fullmatch(r"[A-Z]{2}", c) for c in countries):
                raise StageConfigError(f"stage {stage}: allowedCountries must be a list of ISO codes like [\"US\"]")
            values["allowed_countries"] = tuple(countries)
        config = cls(stage=stage, **values)
        config._check()
        return config

    def _check(self) -> None:
        def fail(message):
            raise StageConfigError(f"stage {self.stage}: {message}")

        if self.sms_provider not in SMS_PROVIDERS:
            fail(f"smsProvider must be one of {', '.join(SMS_PROVIDERS)}")
        if self.sms_provider == "sms-voice" and not self.origination_identity:
            fail("smsProvider sms-voice needs originationIdentity (the number, pool or sender id to send from)")
        identity = self.origination_identity
        if identity is not None:
            if not isinstance(identity, str):
                fail("originationIdentity must be a string")
            if identity.startswith("+"):
                fail(f"originationIdentity {identity[:3]}…: IAM authorizes sends on the number's id, not on its "
                     f"E.164 form, so give its PhoneNumberId (phone-…) or PhoneNumberArn. Find it with "
                     f"`{FIND_PHONE_NUMBER_ID}`, or run `make preflight STAGE={self.stage}`")
            if not (IDENTITY_ID.fullmatch(identity) or IDENTITY_ARN.fullmatch(identity)):
                fail("originationIdentity must be a PhoneNumberId (phone-…), a PoolId (pool-…) or the ARN of a "
                     "phone number, pool or sender id (arn:aws:sms-voice:…); put an alphanumeric sender id in "
                     "senderId")
        if self.default_sms_type not in SMS_TYPES:
            fail(f"defaultSmsType must be one of {', '.join(SMS_TYPES)}")
        if self.sender_id is not None:
            # SNS takes 3 to 11 characters for AWS.SNS.SMS.SenderID; a sender id is never all digits.
            shortest = 3 if self.sms_provider == "sns" else 1
            if not isinstance(self.sender_id, str) or not re.fullmatch(rf"[A-Za-z0-9]{{{shortest},11}}", self.sender_id) \
                    or self.sender_id.isdigit():
                fail(f"senderId must be {shortest} to 11 letters and digits, at least one a letter")
        for name in ("media_retention_days", "api_rate_limit", "api_burst_limit"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                fail(f"{name} must be a whole number of at least 1")
        if self.monthly_spend_limit_usd is not None and (
                not isinstance(self.monthly_spend_limit_usd, int) or self.monthly_spend_limit_usd < 1):
            fail("monthlySpendLimitUsd must be a whole number of dollars")
        if not isinstance(self.max_mps, (int, float)) or self.max_mps <= 0:
            fail("maxMps must be a positive number")
        if not isinstance(self.account_settings, bool):
            fail("accountSettings must be true or false")
        if self.alarm_email is not None and "@" not in self.alarm_email:
            fail("alarmEmail must be an email address")
