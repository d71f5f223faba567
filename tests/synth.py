"""Synthesize the stack the way the CDK CLI does, once per stage per test session.

Every template a test reads comes from here, so each stage is synthesized once however many test
files look at it (``tests/conftest.py`` holds the session fixtures)."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from aws_cdk.assertions import Template

ROOT = Path(__file__).resolve().parent.parent

# An End User Messaging stage with every kind of identity the IAM grants must handle: a pool, a
# phone number id, a sender id, and a configuration set with a protect configuration. Its pool
# receives replies (two-way, with keywords); MMS_STAGE's phone number does too, on an SNS stage.
SMS_VOICE_STAGE = {
    "smsProvider": "sms-voice",
    "originationIdentity": "pool-0123456789abcdef0123456789abcdef",
    "senderId": "MyBrand",
    "allowedCountries": ["US", "CA", "GB", "DE"],
    "monthlySpendLimitUsd": 1,
    # Two-way (a pool can receive): an opt-in word, and a HELP answer of the stage's own.
    "keywords": [{"keyword": "START", "message": "MyBrand: you are subscribed again. Reply STOP to opt out.",
                  "action": "OPT_IN"},
                 {"keyword": "HELP", "message": "MyBrand support: help@example.com. Reply STOP to opt out."}],
}
MMS_STAGE = {
    "originationIdentity": "arn:aws:sms-voice:us-east-1:111122223333:phone-number/phone-abc",
    "allowedCountries": ["US", "CA"],
}
# The same number, with two-way turned off (for a country or Region without it).
ONE_WAY_STAGE = {**MMS_STAGE, "twoWay": False}


def synth(workdir: Path, *context: str) -> Template:
    """Run ``python app.py`` as the CDK CLI would (cdk.json context plus ``key=value`` overrides,
    JSON values allowed), in ``workdir``; return the stack's template."""
    overrides = {}
    for item in context:
        key, value = item.split("=", 1)
        overrides[key] = json.loads(value) if value.startswith("{") else value
    env = {**os.environ, "CDK_OUTDIR": str(workdir / "cdk.out"), "AWS_DEFAULT_REGION": "us-east-1",
           "CDK_CONTEXT_JSON": json.dumps({**json.loads((ROOT / "cdk.json").read_text())["context"], **overrides})}
    subprocess.run([sys.executable, str(ROOT / "app.py")], cwd=workdir, env=env, check=True,
                   capture_output=True, timeout=600)
    stage = overrides.get("stage", "dev")
    template = json.loads((workdir / "cdk.out" / f"SmsSender-{stage}.template.json").read_text())
    return Template.from_json(template)


def synth_stage(workdir: Path, stage: str, settings: dict | None = None) -> Template:
    """One stage: as cdk.json has it, or with ``settings`` as its whole configuration."""
    if settings is None:
        return synth(workdir, f"stage={stage}")
    return synth(workdir, f"stage={stage}", "stages=" + json.dumps({stage: settings}))
