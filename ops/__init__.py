"""Checks a user runs against their own AWS account: ``make preflight`` before a deploy, ``make smoke`` after.

Each check is a function that returns a :class:`Result`; :func:`report` prints one line per result as it comes
and gives the exit status. Nothing here prints a credential, a full phone number or a message body.
"""
from __future__ import annotations

import os
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

from infra.config import cdk_json_settings

ROOT = Path(__file__).resolve().parent.parent

OK, WARN, FAIL, SKIP = "ok", "WARN", "FAIL", "skip"


@dataclass(frozen=True)
class Result:
    status: str  # OK | WARN | FAIL | SKIP
    name: str
    detail: str
    fix: str | None = None
    value: Any = None  # what a later check needs from this one (an account id, a message id, ...)


E164 = re.compile(r"\+\d{7,15}")


def report(results: Iterable[Result], out=None) -> int:
    """Print each result as it arrives, any phone number in it masked; 1 if any failed, else 0."""
    out = out or sys.stdout
    counts = {OK: 0, WARN: 0, FAIL: 0, SKIP: 0}

    def say(text: str) -> None:
        print(E164.sub(lambda number: mask(number.group()), text), file=out, flush=True)

    for result in results:
        counts[result.status] += 1
        say(f"{result.status:<4}  {result.name}: {result.detail}")
        if result.fix:
            say(f"      fix: {result.fix}")
    print(f"\n{counts[OK]} ok, {counts[WARN]} warning(s), {counts[FAIL]} failed, {counts[SKIP]} skipped",
          file=out, flush=True)
    return 1 if counts[FAIL] else 0


def stage_settings(stage: str, cdk_json: Path = ROOT / "cdk.json") -> tuple[dict, dict]:
    """The stage's raw settings from cdk.json (context.stages.<stage>) and the whole context. A stage cdk.json
    does not name raises ``infra.config.UnknownStage``, naming the stages it has."""
    return cdk_json_settings(stage, cdk_json)


def refuse(prog: str, err: Exception) -> int:
    """One line on stderr for a run that cannot start (an unknown stage, say), and the exit status 2."""
    print(f"{prog}: {err}", file=sys.stderr, flush=True)
    return 2


# How to fix the two things every command against a real account needs first; preflight, smoke and keys say the same.
REGION_FIX = "export AWS_DEFAULT_REGION=us-east-1 (or the region of your origination identity)"
CREDENTIALS_FIX = ("give this shell credentials for the target account: `aws configure`, or "
                   "`aws sso login --profile NAME` and `export AWS_PROFILE=NAME`")


def region(session) -> str | None:
    """The region the CDK app deploys to (app.py): CDK_DEFAULT_REGION, AWS_DEFAULT_REGION, then the profile's."""
    return os.environ.get("CDK_DEFAULT_REGION") or os.environ.get("AWS_DEFAULT_REGION") or session.region_name


# API Gateway's default endpoint, which the stack's ApiUrl output is:
# https://<id>.execute-api.<region>.amazonaws.com/api/ (.amazonaws.com.cn in China)
EXECUTE_API = re.compile(r"https://[a-z0-9]+\.execute-api\.(?P<region>[a-z]{2}(?:-[a-z]+)+-\d)"
                         r"\.amazonaws\.com(?:\.cn)?/")


def api_region(url) -> str | None:
    """The region an ApiUrl names: where the stage, its keys table and its alarms are. None for any other URL (a
    custom domain names none)."""
    found = EXECUTE_API.match(url) if isinstance(url, str) else None
    return found["region"] if found else None


def check_endpoint() -> Result | None:
    """A FAIL when AWS_ENDPOINT_URL sends every AWS call elsewhere (``make dev`` points it at the local stack)."""
    endpoint = os.environ.get("AWS_ENDPOINT_URL")
    if endpoint:
        return Result(FAIL, "AWS endpoint", f"AWS_ENDPOINT_URL is {endpoint}, so these checks would not reach AWS",
                      "`unset AWS_ENDPOINT_URL` in this shell")
    return None


def mask(number: str | None) -> str:
    """A phone number with its middle hidden: +14254147755 -> +142******55."""
    if not number:
        return "?"
    keep = min(4, max(len(number) - 4, 0))
    return number[:keep] + "*" * max(len(number) - keep - 2, 0) + number[-2:]


def aws_error(err: Exception) -> str:
    """'Code: message' for a botocore ClientError, the text of any other error."""
    response = getattr(err, "response", None)
    if response:
        error = response.get("Error", {})
        return f"{error.get('Code', 'Error')}: {error.get('Message', '')}".rstrip(": ")
    return str(err) or type(err).__name__


def error_code(err: Exception) -> str | None:
    return (getattr(err, "response", None) or {}).get("Error", {}).get("Code")
