"""The stage the local stack runs: its settings from ``cdk.json``, turned into the app's environment by the
same function the CDK stack uses (``infra.config.StageConfig.app_environment``), plus the local overrides.

So ``make dev`` answers as the deployed stage does (``allowedCountries`` and all), except where a local
override below says otherwise, and why.
"""
from __future__ import annotations

from apppath import ROOT
from infra.config import StageConfig, StageConfigError  # plain Python: infra/config.py imports no CDK

from chalicelib.sending import countries

CDK_JSON = ROOT / "cdk.json"
DEFAULT_STAGE = "dev"

# Every setting the local stack sets differently from the stage, with the reason. ``ORIGINATION_IDENTITY``
# and ``CONFIGURATION_SET_NAME`` are filled in with the local origination number and configuration set
# that ``resources.create`` makes.
OVERRIDES = {
    "ORIGINATION_IDENTITY": (None, "the local origination number +12065550100 in the emulated End User Messaging: "
                                   "the stage's own identity lives in an AWS account, and this one makes MMS "
                                   "(and sms-voice stages) work locally, even on a stage without MMS"),
    "CONFIGURATION_SET_NAME": (None, "the local configuration set that goes with the local number"),
    "MAX_MPS": ("20", "a quick batch worker: the emulated number has no throughput of its own "
                      "(POST http://127.0.0.1:4566/_limits gives it one)"),
    "WORKER_CONCURRENCY": ("2", "two batch-worker instances, as the stack runs them for 20 MPS"),
    "AWS_READ_TIMEOUT": ("10", "the embedded AWS (moto, in this process) answers far slower than AWS on a busy "
                               "machine: an answer may take 10 s, not 5, before a call counts as timed out"),
    "INBOUND_ENABLED": ("1", "replies and STOP work locally on every stage but one with twoWay false: the "
                             "local number is an End User Messaging number with two-way on (POST "
                             "http://127.0.0.1:4566/_inbound plays a reply); deployed, only a stage whose "
                             "originationIdentity is a phone number or pool receives them"),
    "OPT_OUT_LIST_NAME": (None, "the local number's own opt-out list (Default) in the emulated End User "
                                "Messaging"),
    "ORIGINATION_NUMBER": (None, "the local number, +12065550100"),
    "WEBHOOK_URLS": (None, "webhook endpoints may only be http://127.0.0.1:<port> or http://localhost:<port> "
                           "(deployed: https only, and never a loopback or private address): receivers "
                           "run on this machine, and nothing is delivered off it"),
    "WEBHOOK_BACKOFF_SCALE": ("0.05", "webhook retries come seconds apart, not minutes: every retry delay "
                                      "(backoff, jitter, cap and Retry-After) times 0.05, so the first retry "
                                      "comes after 1 to 2 s (whole seconds) instead of 30 s; the 24 h limit is unchanged"),
}
# How often the local stack runs each function an EventBridge rule runs deployed, with the reason. Not an app
# setting (the rule's rate is the stack's): ``LocalStack`` takes it, and ``make dev`` prints it with the overrides.
RULES = {
    "schedule_sweep": (1.0, "the schedule sweep every second, not every minute (EventBridge's shortest rate): "
                            "under make dev a scheduled message due later than SCHEDULE_DIRECT_SECONDS is put "
                            "on the batch queue within a second of the step it falls in, as deployed within a "
                            "minute; nearer ones are queued by the API itself, on the stage and locally"),
}

# The overrides that make the local number two-way: none on a stage with ``twoWay: false``, which runs
# one-way locally as deployed (a STOP to the number is still End User Messaging's to apply).
TWO_WAY_OVERRIDES = ("INBOUND_ENABLED", "OPT_OUT_LIST_NAME", "ORIGINATION_NUMBER")


def load(stage: str = DEFAULT_STAGE) -> StageConfig:
    """The stage as ``cdk.json`` has it; a stage it does not name is an error (a typo would run on defaults)."""
    return StageConfig.from_cdk_json(stage, CDK_JSON)


def environment(config: StageConfig, created: dict) -> dict[str, str]:
    """The app's environment for ``config`` on the resources ``resources.create`` made (``created``: with
    ``two_way=not config.two_way_off``)."""
    env = config.app_environment(
        media_bucket=created["MEDIA_BUCKET"], messages_table=created["MESSAGES_TABLE"],
        idempotency_table=created["IDEMPOTENCY_TABLE"], batch_queue_url=created["BATCH_QUEUE_URL"],
        batch_dlq_url=created["BATCH_DLQ_URL"], max_receives=int(created["MAX_RECEIVES"]),
        worker_concurrency=int(OVERRIDES["WORKER_CONCURRENCY"][0]),
        configuration_set_name=created["CONFIGURATION_SET_NAME"], webhooks_table=created["WEBHOOKS_TABLE"],
        webhook_queue_url=created["WEBHOOK_QUEUE_URL"], webhook_dlq_url=created["WEBHOOK_DLQ_URL"],
        webhook_key_id=created["WEBHOOK_KEY_ID"], opt_out_list_name=created.get("OPT_OUT_LIST_NAME"),
        origination_number=created.get("ORIGINATION_NUMBER"), keys_table=created["KEYS_TABLE"],
        templates_table=created["TEMPLATES_TABLE"], reports_table=created["REPORTS_TABLE"],
        export_queue_url=created["EXPORT_QUEUE_URL"])
    for name, (value, _reason) in OVERRIDES.items():
        if config.two_way_off and name in TWO_WAY_OVERRIDES:
            continue
        env[name] = created[name] if value is None else value
    return env


def sender_id_countries(config: StageConfig) -> list[str]:
    """Where the stage's sender id is registered: as IAM grants it on an ``sms-voice`` stage, in each allowed
    country that has sender ids (every such country without ``allowedCountries``)."""
    if not (config.sender_id and config.sms_provider == "sms-voice"):
        return []
    wanted = set(config.allowed_countries) or set(countries.SENDER_ID)
    return sorted(wanted & set(countries.SENDER_ID))


__all__ = ["CDK_JSON", "DEFAULT_STAGE", "OVERRIDES", "RULES", "TWO_WAY_OVERRIDES", "StageConfigError", "environment",
           "load", "sender_id_countries"]
