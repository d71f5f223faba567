"""``make smoke STAGE=…``: checks a deployed stage end to end, at no cost unless you pass ``--paid``.

    python -m ops.smoke --stage dev [--paid]

Reads cdk-outputs-<stage>.json (written by ``make deploy``), makes a live key for the run with your credentials
(``messages:send`` and ``messages:read``, expiring in an hour, revoked when the run ends), then checks /health, an SMS and an MMS sent with ``dryRun`` (End User Messaging validates them and sends nothing), and that
the stage's smoke alarm reaches its SNS topic. ``--paid`` also sends one real SMS to AWS's success simulator number
and waits for its delivery receipt. Prints one line per step; exits 1 if any step failed.
"""
from __future__ import annotations

import argparse
import json
import struct
import sys
import time
import urllib.error
import urllib.request
import uuid
import zlib
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Iterator

import boto3
from botocore.exceptions import BotoCoreError, ClientError

import apppath  # noqa: F401  (puts app/ on the path for chalicelib)
from chalicelib.sending import simulator  # AWS's simulator numbers, one table for the app and smoke
from infra.config import StageConfig, StageConfigError, stack_name
from infra.handlers.two_way import REFUSED  # how the stack's KeywordsNotSet output words a refusal
from ops import (CREDENTIALS_FIX, FAIL, OK, ROOT, SKIP, WARN, Result, api_region, aws_error, check_endpoint,
                 keys, mask, refuse, region, report, stage_settings)

# Destination simulator numbers that report success: messages to them stay inside End User Messaging and never
# reach a carrier. Source: AWS End User Messaging SMS User Guide, "Simulator phone numbers",
# https://docs.aws.amazon.com/sms-voice/latest/userguide/test-phone-numbers.html. In order of preference; MMS
# exists only for US and CA destinations, so the MMS check uses the US one.
SIMULATOR_SUCCESS = simulator.SUCCESS_BY_COUNTRY
MMS_COUNTRY = "US"
FINAL_STATUSES = {"delivered": OK, "failed": FAIL, "unknown": WARN}
ALARM_SUCCESS = "Successfully executed action"  # how CloudWatch's alarm history words an action it ran
ALARM_FAILURE = "Failed to execute action"
TOPIC_POLICY_FIX = ("the alarm topic's policy must let cloudwatch.amazonaws.com call sns:Publish (a topic policy "
                    "replaces SNS's default one); fix the stack's alarm topic and run `make deploy` again")


def tiny_png() -> bytes:
    """A valid 1x1 transparent PNG (68 bytes)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 1, 1, 8, 6, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(b"\x00" * 5)) + chunk(b"IEND", b""))


class Api:
    """The deployed API: every path is relative to ApiUrl (its stage path, /api/, included)."""

    def __init__(self, base_url: str, key: str, timeout: float = 30):
        self.base = base_url if base_url.endswith("/") else base_url + "/"
        self.key, self.timeout = key, timeout

    def call(self, method: str, path: str, body: dict | None = None) -> tuple[int, dict | None]:
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(self.base + path, data=data, method=method, headers={
            "Authorization": f"Bearer {self.key}", "Content-Type": "application/json", "Accept": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                return response.status, _json(response.read())
        except urllib.error.HTTPError as err:
            return err.code, _json(err.read())


def _json(raw: bytes):
    try:
        return json.loads(raw) if raw else None
    except ValueError:
        return None


def _problem(status: int, body) -> str:
    """What the API said, without echoing anything we sent."""
    error = body.get("error") if isinstance(body, dict) else None
    if isinstance(error, dict):
        return f"{status} {error.get('code')}: {error.get('message')}"
    if isinstance(body, dict) and "message" in body:  # API Gateway's own answers, e.g. {"message": "Forbidden"}
        return f"{status} {body['message']}"
    return f"HTTP {status}"


def upload(url: str, fields: dict, content: bytes, content_type: str, timeout: float = 30) -> int:
    """POST a file to a presigned S3 POST (multipart/form-data, the file part last, as S3 requires)."""
    boundary = uuid.uuid4().hex
    parts = [f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode()
             for name, value in fields.items()]
    parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="smoke.png"\r\n'
                 f"Content-Type: {content_type}\r\n\r\n".encode() + content + b"\r\n")
    body = b"".join(parts) + f"--{boundary}--\r\n".encode()
    request = urllib.request.Request(url, data=body, method="POST",
                                     headers={"Content-Type": f"multipart/form-data; boundary={boundary}"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status
    except urllib.error.HTTPError as err:
        return err.code


def simulator_for(config: StageConfig) -> tuple[str, str] | None:
    """(country, number) of a success simulator in a country the stage allows (all when none are listed)."""
    for country, number in SIMULATOR_SUCCESS.items():
        if not config.allowed_countries or country in config.allowed_countries:
            return country, number
    return None


def load_outputs(stage: str, path: Path) -> Result:
    name = "stack outputs"
    fix = f"run `make deploy STAGE={stage}` (it writes {path.name})"
    try:
        outputs = json.loads(path.read_text())[stack_name(stage)]
    except FileNotFoundError:
        return Result(FAIL, name, f"{path.name} not found", fix)
    except (ValueError, KeyError, TypeError):
        return Result(FAIL, name, f"{path.name} has no {stack_name(stage)} outputs", fix)
    missing = [key for key in ("ApiUrl", "KeysTableName") if key not in outputs]
    if missing:
        return Result(FAIL, name, f"{path.name} lacks {', '.join(missing)}", fix)
    return Result(OK, name, f"{path.name}: API {outputs['ApiUrl']}", value=outputs)


SMOKE_SCOPES = ["messages:send", "messages:read"]


def make_key(dynamodb, table: str, now: datetime | None = None) -> Result:
    """A live key for this run: it may send and read, expires in an hour, and is revoked when the run ends."""
    now = now or datetime.now(timezone.utc)
    expires = (now + timedelta(hours=1)).isoformat(timespec="seconds").replace("+00:00", "Z")
    try:
        resource, key = keys.create(dynamodb, table, f"make smoke {now:%Y-%m-%d %H:%M}", SMOKE_SCOPES,
                                    expires_at=expires, now=now)
    except (ClientError, BotoCoreError) as err:
        return Result(FAIL, "smoke key", f"could not write a key to {table}: {aws_error(err)}",
                      "use credentials for the stage's account and region, allowed dynamodb:PutItem on the keys "
                      f"table ({CREDENTIALS_FIX})")
    return Result(OK, "smoke key", f"made {resource['id']} ({', '.join(SMOKE_SCOPES)}; expires in an hour)",
                  value=(resource["id"], key))


def revoke_key(dynamodb, table: str, key_id: str) -> Result:
    try:
        keys.revoke(dynamodb, table, key_id)
    except (ClientError, BotoCoreError) as err:
        return Result(WARN, "smoke key", f"could not revoke {key_id}: {aws_error(err)} (it expires within the hour)",
                      f"make revoke-key STAGE=<stage> ID={key_id}")
    return Result(OK, "smoke key", f"revoked {key_id}")


def check_health(api: Api) -> Result:
    try:
        status, body = api.call("GET", "health")
    except (urllib.error.URLError, OSError) as err:
        return Result(FAIL, "health", f"{api.base}health: {err}", "check ApiUrl in the outputs file and the network")
    if status == 200 and body == {"status": "ok"}:
        return Result(OK, "health", "GET /health answered 200 {\"status\": \"ok\"}")
    return Result(FAIL, "health", f"GET /health answered {_problem(status, body)}",
                  "see the API's log group (the ApiHandler function) in CloudWatch Logs")


def _dry_run(api: Api, name: str, path: str, body: dict) -> Result:
    try:
        status, answer = api.call("POST", path, body)
    except (urllib.error.URLError, OSError) as err:
        return Result(FAIL, name, str(err), "check ApiUrl in the outputs file and the network")
    if status == 202 and isinstance(answer, dict) and answer.get("dryRun") is True:
        return Result(OK, name, f"POST /{path} to {mask(body['to'])} answered 202 with dryRun true (message "
                      f"{answer.get('id')}): AWS validated it, nothing was sent", value=answer.get("id"))
    if status == 202:
        return Result(FAIL, name, f"POST /{path} answered 202 without dryRun true: the deployed app ignores dryRun, "
                      "so AWS may have sent and charged for the message", "deploy the current app: `make deploy`")
    if status == 401:
        return Result(FAIL, name, f"POST /{path} answered {_problem(status, answer)}: the smoke key was refused",
                      "see the authorizer's log group (the Bearer function) in CloudWatch Logs, and check that "
                      "KeysTableName in the outputs file is this stage's (`make deploy` writes it)")
    return Result(FAIL, name, f"POST /{path} with dryRun answered {_problem(status, answer)}",
                  "`make preflight` checks the account side (identity, sandbox, spend limits); a 400 about dryRun "
                  "means the deployed app predates it: `make deploy`")


def check_sms_dry_run(api: Api, to: str) -> Result:
    return _dry_run(api, "SMS dry run", "sms", {"to": to, "body": "smoke test", "dryRun": True})


def check_media_upload(api: Api) -> Result:
    name = "MMS media upload"
    png = tiny_png()
    try:
        status, answer = api.call("POST", "media", {"contentType": "image/png", "size": len(png)})
        if status != 201 or not isinstance(answer, dict) or "upload" not in answer:
            return Result(FAIL, name, f"POST /media answered {_problem(status, answer)}",
                          "see the API's log group (the ApiHandler function) in CloudWatch Logs")
        uploaded = upload(answer["upload"]["url"], answer["upload"]["fields"], png, "image/png")
    except (urllib.error.URLError, OSError) as err:
        return Result(FAIL, name, str(err), "check ApiUrl in the outputs file and the network")
    if uploaded not in (200, 201, 204):
        return Result(FAIL, name, f"the presigned upload answered HTTP {uploaded}",
                      "the upload policy or the media bucket refused a 1x1 PNG: check the bucket's CORS and policy")
    return Result(OK, name, f"POST /media answered 201; uploaded a {len(png)}-byte PNG to {answer['mediaUrl']}",
                  value=answer["mediaUrl"])


def check_mms_dry_run(api: Api, to: str, media_url: str) -> Result:
    return _dry_run(api, "MMS dry run", "mms", {"to": to, "mediaUrl": media_url, "dryRun": True})


def _newest_action(cloudwatch, alarm_name: str):
    items = cloudwatch.describe_alarm_history(AlarmName=alarm_name, HistoryItemType="Action",
                                              ScanBy="TimestampDescending", MaxRecords=1)["AlarmHistoryItems"]
    return items[0]["Timestamp"] if items else None


def check_alarm(cloudwatch, alarm_name: str | None, timeout: float = 60, interval: float = 5,
                sleep=time.sleep) -> Result:
    """Set the smoke alarm to ALARM and wait for its history to show whether the SNS action ran; then set it OK."""
    name = "alarm notification"
    if not alarm_name:
        return Result(FAIL, name, "the stack outputs have no SmokeAlarmName", "deploy the current stack: `make deploy`")
    changed = False
    try:
        before = _newest_action(cloudwatch, alarm_name)
        # From OK, so the change to ALARM is a transition and runs the alarm's actions.
        cloudwatch.set_alarm_state(AlarmName=alarm_name, StateValue="OK", StateReason="smoke test: reset")
        changed = True
        cloudwatch.set_alarm_state(AlarmName=alarm_name, StateValue="ALARM", StateReason="smoke test")
        deadline = time.monotonic() + timeout
        while True:
            items = cloudwatch.describe_alarm_history(AlarmName=alarm_name, HistoryItemType="Action",
                                                      ScanBy="TimestampDescending")["AlarmHistoryItems"]
            for item in reversed(items):  # oldest first
                summary = item.get("HistorySummary", "")
                if (before is None or item["Timestamp"] > before) and "arn:aws:sns:" in summary:
                    if summary.startswith(ALARM_SUCCESS):
                        return Result(OK, name, f"{alarm_name} went to ALARM and CloudWatch published to its topic "
                                      f"(\"{summary}\")")
                    if summary.startswith(ALARM_FAILURE):
                        return Result(FAIL, name, f"{alarm_name} went to ALARM but CloudWatch could not publish: "
                                      f"\"{summary}\"", TOPIC_POLICY_FIX)
            if time.monotonic() >= deadline:
                return Result(FAIL, name, f"{alarm_name} went to ALARM and its history shows no SNS action after "
                              f"{timeout:g} s",
                              f"check that the alarm has an SNS alarm action: `aws cloudwatch describe-alarms "
                              f"--alarm-names {alarm_name} --query 'MetricAlarms[].AlarmActions'`")
            sleep(interval)
    except (ClientError, BotoCoreError) as err:
        return Result(FAIL, name, f"{alarm_name}: {aws_error(err)}",
                      "allow these credentials cloudwatch:SetAlarmState and cloudwatch:DescribeAlarmHistory")
    finally:
        if changed:
            try:
                cloudwatch.set_alarm_state(AlarmName=alarm_name, StateValue="OK", StateReason="smoke test done")
            except (ClientError, BotoCoreError):
                pass  # the alarm's next evaluation sets its state from the metric anyway


def check_keywords(outputs: dict) -> Result:
    """What End User Messaging kept of the stage's HELP and STOP answers: the stack's ``KeywordsNotSet``
    output ("none", or which answer and why). AWS's pages disagree on whether PutKeyword may change them, so
    a refusal does not fail the deploy, and is a warning here: replies and opt-outs work all the same."""
    name = "HELP and STOP"
    kept = outputs.get("KeywordsNotSet")
    if kept is None:
        return Result(WARN, name, "the outputs have no KeywordsNotSet: the deployed stack predates it",
                      "deploy the current stack: `make deploy`")
    if REFUSED in kept:
        return Result(WARN, name, f"the stage's identity keeps End User Messaging's own answer: {kept}",
                      "replies and opt-outs work as before; to see the answer it gives, `aws pinpoint-sms-voice-v2 "
                      "describe-keywords --origination-identity <the stage's identity> --keywords HELP STOP`")
    if kept == "none":
        return Result(OK, name, "the stage's identity answers them with the stage's text (KeywordsNotSet: none)")
    return Result(OK, name, f"the stage's identity answers them with the stage's text, but: {kept}")


def check_paid_receipt(api: Api, to: str, timeout: float = 300, interval: float = 10, sleep=time.sleep) -> Result:
    """Send one real SMS and wait, bounded, for its delivery receipt to reach the message record."""
    name = "paid receipt check"
    try:
        status, answer = api.call("POST", "sms", {"to": to, "body": "smoke test"})
        if status != 202 or not isinstance(answer, dict) or "id" not in answer:
            return Result(FAIL, name, f"POST /sms answered {_problem(status, answer)}",
                          "`make preflight` checks the account side (sandbox, spend limits, identity)")
        message_id, deadline = answer["id"], time.monotonic() + timeout
        while True:
            status, answer = api.call("GET", f"messages/{message_id}")
            current = answer.get("status") if status == 200 and isinstance(answer, dict) else None
            if current in FINAL_STATUSES:
                error = answer.get("error") or {}
                detail = f"message {message_id} to {mask(to)} is {current}" + (
                    f" ({error.get('code')}: {error.get('message')})" if error else "")
                fix = None if current == "delivered" else (
                    "no carrier receipt came: see the End User Messaging event log group" if current == "unknown" else
                    "see the message's providerResponse: `curl -H \"Authorization: Bearer <key>\" <ApiUrl>messages/<id>`")
                return Result(FINAL_STATUSES[current], name, detail, fix)
            if time.monotonic() >= deadline:
                return Result(FAIL, name, f"message {message_id} is still {current or _problem(status, answer)} "
                              f"after {timeout:g} s: no delivery receipt reached it",
                              "check delivery-status logging and the status ingest function's log group; run smoke "
                              "--paid again to wait longer only if receipts are merely slow")
            sleep(interval)
    except (urllib.error.URLError, OSError) as err:
        return Result(FAIL, name, str(err), "check ApiUrl in the outputs file and the network")


def run(stage: str, raw: dict, outputs_path: Path, session, paid: bool = False, alarm_timeout: float = 60,
        receipt_timeout: float = 300, interval: float = 5, sleep=time.sleep) -> Iterator[Result]:
    blocker = check_endpoint()
    if blocker:
        yield blocker
        return
    outputs = load_outputs(stage, outputs_path)
    yield outputs
    if outputs.status == FAIL:
        return
    try:
        config = StageConfig.from_dict(stage, raw)
    except StageConfigError as err:
        yield Result(FAIL, "stage settings", str(err), f"edit context.stages.{stage} in cdk.json")
        return
    region_name = api_region(outputs.value["ApiUrl"]) or region(session)
    if not region_name:
        yield Result(FAIL, "region", "no region is set, and ApiUrl names none",
                     "export AWS_DEFAULT_REGION=<the stage's region>")
        return
    client = lambda service: session.client(service, region_name=region_name)  # noqa: E731
    dynamodb, table = client("dynamodb"), outputs.value["KeysTableName"]
    key = make_key(dynamodb, table)
    yield key
    if key.status == FAIL:
        return
    try:
        yield from _checks(stage, config, outputs, Api(outputs.value["ApiUrl"], key.value[1]), client, paid,
                           alarm_timeout, receipt_timeout, interval, sleep)
    finally:
        yield revoke_key(dynamodb, table, key.value[0])


def _checks(stage: str, config: StageConfig, outputs: Result, api: Api, client, paid: bool, alarm_timeout: float,
            receipt_timeout: float, interval: float, sleep) -> Iterator[Result]:
    yield check_health(api)
    destination = simulator_for(config)
    if config.sms_provider != "sms-voice":
        yield Result(SKIP, "SMS dry run", "smsProvider sns: SNS has no dry run, so the API answers a dryRun with 400")
    elif destination is None:
        yield Result(SKIP, "SMS dry run", f"allowedCountries has no country with a simulator number "
                     f"({', '.join(SIMULATOR_SUCCESS)})")
    else:
        yield check_sms_dry_run(api, destination[1])
    if not config.origination_identity:
        yield Result(SKIP, "MMS dry run", "MMS is off: no originationIdentity")
    elif config.allowed_countries and MMS_COUNTRY not in config.allowed_countries:
        yield Result(SKIP, "MMS dry run", f"allowedCountries leaves out {MMS_COUNTRY}, the MMS simulator's country")
    else:
        media = check_media_upload(api)
        yield media
        if media.status == OK:
            yield check_mms_dry_run(api, SIMULATOR_SUCCESS[MMS_COUNTRY], media.value)
    yield check_alarm(client("cloudwatch"), outputs.value.get("SmokeAlarmName"), alarm_timeout, interval, sleep)
    if config.two_way:
        yield check_keywords(outputs.value)
    else:
        yield Result(SKIP, "HELP and STOP", "the stage receives no replies, so the stack sets no keywords")
    if not paid:
        yield Result(SKIP, "paid receipt check", f"sends a real SMS, which AWS charges for: "
                     f"`make smoke STAGE={stage} PAID=1`")
    elif destination is None:
        yield Result(SKIP, "paid receipt check", "allowedCountries has no country with a simulator number")
    else:
        yield Result(WARN, "paid receipt check", f"sending one real SMS to the {destination[0]} success simulator "
                     f"{mask(destination[1])}; AWS charges for it")
        yield check_paid_receipt(api, destination[1], receipt_timeout, interval, sleep)


def main(argv: list[str] | None = None, session=None, out=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ops.smoke", description=__doc__.splitlines()[0])
    parser.add_argument("--stage", default="dev", help="a stage under context.stages in cdk.json (default dev)")
    parser.add_argument("--paid", action="store_true",
                        help="also send one real SMS (charged) to AWS's success simulator and wait for its receipt")
    parser.add_argument("--outputs", type=Path, help="the outputs file (default cdk-outputs-<stage>.json)")
    args = parser.parse_args(argv)
    try:
        raw, _ = stage_settings(args.stage)
    except StageConfigError as err:  # an unknown stage: no check runs, no AWS call is made
        return refuse(parser.prog, err)
    outputs = args.outputs or ROOT / f"cdk-outputs-{args.stage}.json"
    return report(run(args.stage, raw, outputs, session or boto3.Session(), paid=args.paid), out)


if __name__ == "__main__":
    sys.exit(main())
