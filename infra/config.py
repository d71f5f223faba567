"""Per-stage settings from cdk.json context (``stages``), read once into a typed, validated object."""
from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import NamedTuple

SMS_PROVIDERS = ("sns", "sms-voice")
SMS_TYPES = ("transactional", "promotional")

# The forms of originationIdentity whose IAM resource ARN the stack can know at synth time: the
# ARN itself, a PhoneNumberId or a PoolId (End User Messaging's own id formats).
IDENTITY_ARN = re.compile(
    r"arn:aws[a-z-]*:sms-voice:[a-z0-9-]+:\d{12}:(phone-number/phone-[A-Za-z0-9]+|pool/pool-[A-Za-z0-9]+"
    r"|sender-id/[A-Za-z0-9_-]+/[A-Z]{2})")
IDENTITY_ID = re.compile(r"(phone|pool)-[A-Za-z0-9]+")
# The identities that can receive replies (a sender id cannot): a PhoneNumberId or PoolId, or the ARN of one.
TWO_WAY_IDENTITY = re.compile(r"(phone|pool)-[A-Za-z0-9]+|arn:aws[a-z-]*:sms-voice:[a-z0-9-]+:\d{12}:"
                              r"(phone-number/phone|pool/pool)-[A-Za-z0-9]+")
# Keywords AWS keeps on every number and pool (DeleteKeyword refuses them), with the action each must have.
PROTECTED_KEYWORDS = {"HELP": "AUTOMATIC_RESPONSE", "STOP": "OPT_OUT"}
FIND_PHONE_NUMBER_ID = ("aws pinpoint-sms-voice-v2 describe-phone-numbers "
                        "--query \"PhoneNumbers[].[PhoneNumber,PhoneNumberId,PhoneNumberArn]\" --output text")


def stack_name(stage: str) -> str:
    """The CloudFormation stack of a stage (the CDK app names it; preflight and smoke read it)."""
    return f"SmsSender-{stage}"


class StageConfigError(ValueError):
    pass


class UnknownStage(StageConfigError):
    """A stage that the ``stages`` settings do not name: refused, since it would otherwise build or run on
    defaults (every country allowed, no spend limit)."""


# Where the CDK app's stages come from: the CDK CLI passes cdk.json's ``context`` (under any ``-c``) to the
# app in CDK_CONTEXT_JSON, and a ``-c stages=…`` replaces cdk.json's ``stages`` as a whole.
CONTEXT_STAGES = "the stages context (context.stages of cdk.json, or -c stages=…)"


def stages_from(value, where: str) -> dict[str, dict]:
    """The ``stages`` settings as a dict of stage name to settings. From cdk.json they are a JSON object; a
    ``-c stages=…`` reaches the app as the JSON text (the CDK CLI passes every ``-c`` value as a string)."""
    if value is None:
        return {}
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError as err:
            raise StageConfigError(f"the stages in {where} are not JSON: {err}") from None
    if not isinstance(value, dict) or not all(isinstance(name, str) and isinstance(settings, dict)
                                              for name, settings in value.items()):
        raise StageConfigError(f"the stages in {where} must be a JSON object of stage settings, like "
                               f'{{"dev": {{"smsProvider": "sns"}}}}')
    return value


def settings_of(stage, stages: dict[str, dict], where: str) -> dict:
    """``stage``'s settings in ``stages``; a stage they do not name is refused, naming the ones there are."""
    if not isinstance(stage, str) or stage not in stages:
        raise UnknownStage(f"stage {stage!r} is not in {where}; the stages are: {', '.join(sorted(stages)) or 'none'}")
    return stages[stage]


class Keyword(NamedTuple):
    """One ``PutKeyword``: a word a recipient texts, the answer, and what End User Messaging does."""
    keyword: str
    message: str
    action: str = "AUTOMATIC_RESPONSE"


@lru_cache(maxsize=1)
def put_keyword_model() -> dict:
    """``PutKeyword``'s input members (botocore's model of pinpoint-sms-voice-v2), which ``keywords`` is
    checked against: each member's length limits, pattern and enum."""
    import botocore.session

    shape = botocore.session.get_session().get_service_model("pinpoint-sms-voice-v2") \
        .operation_model("PutKeyword").input_shape
    return {name: dict(member.metadata) for name, member in shape.members.items()}


def cdk_json_settings(stage: str, path: str | Path) -> tuple[dict, dict]:
    """``stage``'s raw settings in the ``cdk.json`` at ``path`` (``context.stages.<stage>``), and that file's
    whole ``context``, for what runs outside the CDK app (preflight, smoke, the local stack). A stage the file
    does not name is refused (``UnknownStage``), naming the ones it has."""
    context = json.loads(Path(path).read_text()).get("context", {})
    where = f"{Path(path).name} (context.stages)"
    return settings_of(stage, stages_from(context.get("stages"), where), where), context


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
    # Webhook endpoints a stage may register (POST /webhooks answers 400 TooManyWebhooks beyond).
    max_webhooks: int = 10
    # This stage sets the settings that are one per account and region: the SNS SMS attributes and
    # delivery-status log groups, and API Gateway's CloudWatch Logs role. With two stages in one
    # account and region, exactly one of them keeps this true (and is deployed first).
    account_settings: bool = True
    # Keywords the stage's number or pool answers (cdk.json ``keywords``; see ``all_keywords``).
    keywords: tuple[Keyword, ...] = ()
    # cdk.json ``twoWay``: None (not given) means on wherever the identity can receive; false turns
    # two-way off (the stack builds none of it), for an identity in a country or region without it.
    two_way_setting: bool | None = None

    KEYS = {  # cdk.json key -> attribute
        "smsProvider": "sms_provider", "originationIdentity": "origination_identity",
        "configurationSetName": "configuration_set_name", "defaultSmsType": "default_sms_type",
        "senderId": "sender_id", "allowedCountries": "allowed_countries",
        "monthlySpendLimitUsd": "monthly_spend_limit_usd", "alarmEmail": "alarm_email",
        "mediaRetentionDays": "media_retention_days", "apiRateLimit": "api_rate_limit",
        "apiBurstLimit": "api_burst_limit", "maxMps": "max_mps", "accountSettings": "account_settings",
        "maxWebhooks": "max_webhooks", "keywords": "keywords", "twoWay": "two_way_setting",
    }

    @property
    def uses_end_user_messaging(self) -> bool:
        """End User Messaging carries this stage's SMS or MMS. An sms-voice stage always has an
        origination identity (checked below), so the identity alone decides."""
        return bool(self.origination_identity)

    @property
    def can_receive(self) -> bool:
        """The origination identity is an End User Messaging phone number or pool (a sender id cannot
        receive, and SNS has no inbound API)."""
        return bool(self.origination_identity) and bool(TWO_WAY_IDENTITY.fullmatch(self.origination_identity))

    @property
    def two_way(self) -> bool:
        """Replies reach this stage: its identity can receive and ``twoWay`` is not false. The stack then
        owns the inbound topic, queue and function and the keywords, and turns two-way on for the
        identity, which keeps its own opt-out list (``infra/two_way.py``)."""
        return self.can_receive and self.two_way_setting is not False

    @property
    def two_way_off(self) -> bool:
        """``twoWay: false``: no replies, deployed or under ``make dev`` (whose local number receives on
        every other stage)."""
        return self.two_way_setting is False

    @property
    def all_keywords(self) -> tuple[Keyword, ...]:
        """The stage's ``keywords``, with HELP and STOP answers naming the stage where it gives none."""
        given = {k.keyword.upper() for k in self.keywords}
        defaults = (Keyword("HELP", f"{self.prefix}: reply STOP to stop these messages. Msg&data rates may apply.",
                            "AUTOMATIC_RESPONSE"),
                    Keyword("STOP", f"{self.prefix}: you are unsubscribed and will get no more messages.", "OPT_OUT"))
        return tuple(k for k in defaults if k.keyword not in given) + self.keywords

    def keywords_with(self, action: str) -> tuple[str, ...]:
        return tuple(k.keyword.upper() for k in self.all_keywords if k.action == action)

    @property
    def prefix(self) -> str:
        return f"sms-sender-{self.stage}"

    @classmethod
    def from_context(cls, node) -> "StageConfig":
        """The stage ``-c stage=NAME`` names (default dev), with its settings from the ``stages`` context.
        A stage that context does not name is refused (``UnknownStage``), since a typo would otherwise
        build a stack on defaults."""
        stage = node.try_get_context("stage") or "dev"
        stages = stages_from(node.try_get_context("stages"), CONTEXT_STAGES)
        return cls.from_dict(stage, settings_of(stage, stages, CONTEXT_STAGES))

    @classmethod
    def from_cdk_json(cls, stage: str, path: str | Path) -> "StageConfig":
        """A stage as ``cdk.json`` (at ``path``) has it, outside any CDK app (the local stack reads it so).
        A stage that ``cdk.json`` does not name is refused (``UnknownStage``), as in the CDK app."""
        return cls.from_dict(stage, cdk_json_settings(stage, path)[0])

    def app_environment(self, *, media_bucket: str, messages_table: str, idempotency_table: str,
                        batch_queue_url: str, batch_dlq_url: str, max_receives: int, worker_concurrency: int,
                        configuration_set_name: str | None = None, webhooks_table: str | None = None,
                        webhook_queue_url: str | None = None, webhook_dlq_url: str | None = None,
                        webhook_key_id: str | None = None, opt_out_list_name: str | None = None,
                        origination_number: str | None = None, keys_table: str | None = None,
                        templates_table: str | None = None, reports_table: str | None = None,
                        export_queue_url: str | None = None) -> dict[str, str]:
        """The app's environment variables (what ``chalicelib.settings.Settings.from_env`` reads) for this stage,
        given the names of its resources. The CDK stack (``infra/api.py``) and the local stack (``devstack``)
        both take the app's settings from here, so what runs locally is what is deployed. Webhook endpoints
        must be ``https`` (the local stack overrides ``WEBHOOK_URLS`` to ``loopback``).

        Two-way (the stage receives replies: given the opt-out list of its identity, which two-way leaves in
        place): ``INBOUND_ENABLED``, ``OPT_OUT_LIST_NAME``, the stage's opt-out and opt-in words
        (``OPT_OUT_KEYWORDS``, ``OPT_IN_KEYWORDS``: upper case, comma-separated), and ``ORIGINATION_NUMBER``
        (E.164) when known.

        Reports: ``REPORTS_TABLE`` and ``EXPORT_QUEUE_URL`` (without them the report routes answer 503
        ``ReportsNotConfigured``), and ``MONTHLY_SPEND_LIMIT_USD``, which the daily report shows beside the cost."""
        environment = {
            "STAGE": self.stage,
            "SMS_PROVIDER": self.sms_provider,
            "DEFAULT_SMS_TYPE": self.default_sms_type,
            "MEDIA_BUCKET": media_bucket,
            "MESSAGES_TABLE": messages_table,
            "IDEMPOTENCY_TABLE": idempotency_table,
            "BATCH_QUEUE_URL": batch_queue_url,
            "BATCH_DLQ_URL": batch_dlq_url,
            "ALLOWED_COUNTRIES": ",".join(self.allowed_countries),
            "MAX_MPS": str(self.max_mps),
            "WORKER_CONCURRENCY": str(worker_concurrency),
            "MAX_RECEIVES": str(max_receives),
            "POWERTOOLS_SERVICE_NAME": "sms-sender",
            "WEBHOOK_URLS": "https",
            "MAX_WEBHOOKS": str(self.max_webhooks),
        }
        if opt_out_list_name:
            environment.update({"INBOUND_ENABLED": "1", "OPT_OUT_LIST_NAME": opt_out_list_name,
                                "OPT_OUT_KEYWORDS": ",".join(self.keywords_with("OPT_OUT")),
                                "OPT_IN_KEYWORDS": ",".join(self.keywords_with("OPT_IN"))})
        for key, value in (("ORIGINATION_IDENTITY", self.origination_identity),
                           ("ORIGINATION_NUMBER", origination_number),
                           ("CONFIGURATION_SET_NAME", configuration_set_name),
                           ("SENDER_ID", self.sender_id),
                           ("KEYS_TABLE", keys_table),
                           ("TEMPLATES_TABLE", templates_table),
                           ("REPORTS_TABLE", reports_table), ("EXPORT_QUEUE_URL", export_queue_url),
                           ("MONTHLY_SPEND_LIMIT_USD", str(self.monthly_spend_limit_usd or "")),
                           ("WEBHOOKS_TABLE", webhooks_table), ("WEBHOOK_QUEUE_URL", webhook_queue_url),
                           ("WEBHOOK_DLQ_URL", webhook_dlq_url), ("WEBHOOK_KEY_ID", webhook_key_id)):
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
        if "keywords" in values:
            values["keywords"] = parse_keywords(stage, values["keywords"])
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
        for name in ("media_retention_days", "api_rate_limit", "api_burst_limit", "max_webhooks"):
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
        if self.two_way_setting is not None and not isinstance(self.two_way_setting, bool):
            fail("twoWay must be true or false")
        if self.two_way_setting and not self.can_receive:
            fail("twoWay true needs an originationIdentity that can receive replies: an End User Messaging "
                 "phone number or pool (a sender id cannot, and SNS has no inbound API)")
        if self.keywords and self.two_way_off:
            fail("keywords are what the number answers to replies, and twoWay is false: drop keywords, or "
                 "turn twoWay on")
        if self.keywords and not self.two_way:
            fail("keywords need an originationIdentity that can receive replies: an End User Messaging phone "
                 "number or pool (a sender id cannot, and SNS has no inbound API)")


def parse_keywords(stage: str, raw) -> tuple[Keyword, ...]:
    """cdk.json ``keywords``: ``[{"keyword", "message", "action"?}]``, each checked against botocore's
    ``PutKeyword`` model (lengths, patterns, the action's enum) and the rules the model does not state:
    a keyword does not start or end with a space, and is case-insensitive (so each one once); HELP and
    STOP keep their actions; no comma (the app reads the words as a comma-separated list)."""
    def fail(message):
        raise StageConfigError(f"stage {stage}: keywords: {message}")

    model = put_keyword_model()
    actions = model["KeywordAction"]["enum"]

    def check(value, member, what):
        limits = model[member]
        if not isinstance(value, str) or not limits["min"] <= len(value) <= limits["max"] \
                or not re.fullmatch(limits["pattern"], value):
            fail(f"{what} must be {limits['min']} to {limits['max']} characters (End User Messaging's "
                 f"{member}, pattern {limits['pattern']})")

    if not isinstance(raw, list):
        fail('a list like [{"keyword": "HELP", "message": "..."}]')
    keywords, seen = [], set()
    for i, item in enumerate(raw):
        if not isinstance(item, dict) or set(item) - {"keyword", "message", "action"} \
                or not {"keyword", "message"} <= set(item):
            fail(f"item {i}: give keyword, message and optionally action")
        word, message, action = item["keyword"], item["message"], item.get("action")
        check(word, "Keyword", f"item {i}: keyword")
        if word != word.strip() or "," in word:
            fail(f"item {i}: keyword {word!r} may not start or end with a space, or hold a comma")
        check(message, "KeywordMessage", f"item {i} ({word}): message")
        action = action if action is not None else PROTECTED_KEYWORDS.get(word.upper(), "AUTOMATIC_RESPONSE")
        if action not in actions:
            fail(f"item {i} ({word}): action must be one of {', '.join(actions)}")
        if PROTECTED_KEYWORDS.get(word.upper(), action) != action:
            fail(f"item {i}: {word.upper()} always has the action {PROTECTED_KEYWORDS[word.upper()]}")
        if word.upper() in seen:
            fail(f"item {i}: {word} is given twice (keywords are case-insensitive)")
        seen.add(word.upper())
        keywords.append(Keyword(word, message, action))
    return tuple(keywords)
