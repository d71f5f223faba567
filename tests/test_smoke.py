"""``make smoke``: the steps a user sees after a deploy, against a stand-in API and stubbed AWS answers.

The deployed API is played by a small HTTP server on 127.0.0.1 (a free port; it serves a bounded number of
requests and stops by itself). Every AWS call goes through a botocore ``Stubber``, which checks the parameters
against botocore's service model. Nothing connects to any address off this machine.
"""
from __future__ import annotations

import io
import json
import threading
import time
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest

from ops import CREDENTIALS_FIX, smoke
from ops.smoke import SIMULATOR_SUCCESS

from .localhttp import HANG_GUARD
from .test_preflight import ACCOUNT, REGION, aws  # noqa: F401  (aws: the stubbed-session fixture)

KEYS_TABLE = "SmsSender-dev-KeysTable"
ALARM = "sms-sender-dev-smoke"
TOPIC = f"arn:aws:sns:{REGION}:{ACCOUNT}:sms-sender-dev-alarms"
US = SIMULATOR_SUCCESS["US"]
T0 = datetime(2026, 1, 1, tzinfo=timezone.utc)


class FakeApi:
    """The deployed API on 127.0.0.1: answers from a route table and records every request it gets."""

    def __init__(self, routes, max_requests=50, lifetime=HANG_GUARD):  # the lifetime only guards against a leak
        self.routes, self.requests = routes, []
        self.done = False
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def _answer(self):
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                body = json.loads(raw) if self.headers.get("Content-Type") == "application/json" and raw else raw
                headers = {name.lower(): value for name, value in self.headers.items()}
                fake.requests.append({"method": self.command, "path": self.path, "headers": headers, "body": body})
                route = fake.routes.get((self.command, self.path))
                status, answer = route(body) if route else (404, {"message": "Not Found"})
                payload = json.dumps(answer).encode() if answer is not None else b""
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            do_GET = do_POST = _answer

            def log_message(self, *args):  # keep the test output clean
                pass

        self.server = HTTPServer(("127.0.0.1", 0), Handler)  # port 0: a free port
        self.server.timeout = 0.1
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        deadline = time.monotonic() + lifetime

        def serve():  # bounded: stops after max_requests, after `lifetime` seconds, or when the test ends
            while not self.done and len(self.requests) < max_requests and time.monotonic() < deadline:
                self.server.handle_request()  # returns after one request, or after server.timeout idle
            self.server.server_close()

        self.thread = threading.Thread(target=serve, daemon=True)
        self.thread.start()

    def stop(self):
        self.done = True
        self.thread.join(timeout=5)

    def api_requests(self):
        return [r for r in self.requests if r["path"].startswith("/api/")]


def message(body, **extra):
    return {"id": "msg-1", "channel": "mms" if "mediaUrl" in body else "sms", "to": body["to"], "status": "sent",
            "dryRun": bool(body.get("dryRun")), "error": None, **extra}


def passing_routes(url):
    return {
        ("GET", "/api/health"): lambda body: (200, {"status": "ok"}),
        ("POST", "/api/sms"): lambda body: (202, message(body)),
        ("POST", "/api/media"): lambda body: (201, {
            "mediaUrl": "s3://sms-sender-dev-media/media/smoke.png", "expiresIn": 300,
            "upload": {"url": f"{url}/upload", "fields": {
                "key": "media/smoke.png", "Content-Type": "image/png", "policy": "eyJleHBpcmF0aW9uIjoi",
                "x-amz-signature": "0123abcd"}}}),
        ("POST", "/upload"): lambda body: (204, None),
        ("POST", "/api/mms"): lambda body: (202, message(body)),
        ("GET", "/api/messages/msg-1"): lambda body: (200, {"id": "msg-1", "status": "delivered", "error": None}),
    }


@pytest.fixture
def api():
    server = FakeApi({})
    server.routes.update(passing_routes(server.url))
    yield server
    server.stop()


@pytest.fixture
def outputs(tmp_path, api):
    path = tmp_path / "cdk-outputs-dev.json"
    path.write_text(json.dumps({"SmsSender-dev": {
        "ApiUrl": f"{api.url}/api/", "KeysTableName": KEYS_TABLE, "SmokeAlarmName": ALARM, "MediaBucketName": "b",
        "KeywordsNotSet": "none"}}))
    return path


def smoke_key(aws, revoked=True):
    """The run's key: written to the keys table (the operator's credentials), revoked when the run ends."""
    dynamodb = aws.stub("dynamodb")
    aws.put_items = getattr(aws, "put_items", [])
    aws.client("dynamodb").meta.events.register("provide-client-params.dynamodb.PutItem",
                                                lambda params, **_: aws.put_items.append(params))
    dynamodb.add_response("put_item", {}, None)
    if revoked:
        dynamodb.add_response("update_item", {}, None)


def history(*summaries, at=T0):
    return {"AlarmHistoryItems": [
        {"AlarmName": ALARM, "Timestamp": at + timedelta(seconds=i), "HistoryItemType": "Action",
         "HistorySummary": summary} for i, summary in reversed(list(enumerate(summaries)))]}


def alarm(aws, *polls, before=None):
    """The alarm steps: newest action so far, reset to OK, ALARM, the history polls, back to OK."""
    cw = aws.stub("cloudwatch")
    cw.add_response("describe_alarm_history", history(*(before or [])), {
        "AlarmName": ALARM, "HistoryItemType": "Action", "ScanBy": "TimestampDescending", "MaxRecords": 1})
    cw.add_response("set_alarm_state", {}, {"AlarmName": ALARM, "StateValue": "OK", "StateReason": "smoke test: reset"})
    cw.add_response("set_alarm_state", {}, {"AlarmName": ALARM, "StateValue": "ALARM", "StateReason": "smoke test"})
    for poll in polls:
        cw.add_response("describe_alarm_history", poll,
                        {"AlarmName": ALARM, "HistoryItemType": "Action", "ScanBy": "TimestampDescending"})
    cw.add_response("set_alarm_state", {}, {"AlarmName": ALARM, "StateValue": "OK", "StateReason": "smoke test done"})


def run_smoke(aws, outputs, raw, **options):
    out = io.StringIO()
    options = {"alarm_timeout": 60, "receipt_timeout": 60, "interval": 0, "sleep": lambda seconds: None, **options}
    status = smoke.report(smoke.run("dev", raw, outputs, aws, **options), out)
    text = out.getvalue()
    for start in sent_keys(aws):
        assert start not in text  # no part of the key is ever printed
    assert US not in text  # nor a full phone number
    return status, text.splitlines()


def sent_keys(aws) -> set[str]:
    """The keys the run wrote to the table (from the stubbed PutItem calls it made)."""
    return {call["Item"]["prefix"]["S"].rstrip("…") for call in getattr(aws, "put_items", [])}


def line(lines, name):
    for i, text in enumerate(lines):
        if text[6:].startswith(name + ":"):
            return text + ("\n" + lines[i + 1] if i + 1 < len(lines) and lines[i + 1].startswith("      fix:") else "")
    raise AssertionError(f"no line for {name!r} in:\n" + "\n".join(lines))


MMS_STAGE = {"smsProvider": "sms-voice", "originationIdentity": "phone-abc", "allowedCountries": ["US", "CA"]}
SUCCESS = f"Successfully executed action {TOPIC}"


def test_passing_sms_voice_stage_with_mms(aws, api, outputs):
    smoke_key(aws)
    alarm(aws, history(SUCCESS))
    status, lines = run_smoke(aws, outputs, MMS_STAGE)
    assert status == 0, "\n".join(lines)
    assert lines[1].startswith("ok    smoke key: made key_") and lines[1].endswith(
        "(messages:send, messages:read; expires in an hour)")
    assert lines[9] == "ok    smoke key: revoked " + lines[1].split()[4]
    assert lines[2:9] + lines[10:] == [
        "ok    health: GET /health answered 200 {\"status\": \"ok\"}",
        "ok    SMS dry run: POST /sms to +142******55 answered 202 with dryRun true (message msg-1): AWS validated "
        "it, nothing was sent",
        "ok    MMS media upload: POST /media answered 201; uploaded a 68-byte PNG to "
        "s3://sms-sender-dev-media/media/smoke.png",
        "ok    MMS dry run: POST /mms to +142******55 answered 202 with dryRun true (message msg-1): AWS validated "
        "it, nothing was sent",
        f"ok    alarm notification: {ALARM} went to ALARM and CloudWatch published to its topic (\"{SUCCESS}\")",
        "ok    HELP and STOP: the stage's identity answers them with the stage's text (KeywordsNotSet: none)",
        "skip  paid receipt check: sends a real SMS, which AWS charges for: `make smoke STAGE=dev PAID=1`",
        "",
        "9 ok, 0 warning(s), 0 failed, 1 skipped",
    ]
    assert lines[0].startswith(f"ok    stack outputs: cdk-outputs-dev.json: API {api.url}/api/")
    # What reached the API: every call under the stage path, with the key, and only dry runs to the simulator.
    sent = api.api_requests()
    assert [(r["method"], r["path"]) for r in sent] == [
        ("GET", "/api/health"), ("POST", "/api/sms"), ("POST", "/api/media"), ("POST", "/api/mms")]
    keys = {r["headers"]["authorization"] for r in sent}
    assert len(keys) == 1 and keys.pop().startswith("Bearer sk_live_")
    assert sent[1]["body"] == {"to": US, "body": "smoke test", "dryRun": True}
    assert sent[2]["body"] == {"contentType": "image/png", "size": 68}
    assert sent[3]["body"] == {"to": US, "mediaUrl": "s3://sms-sender-dev-media/media/smoke.png", "dryRun": True}
    # The presigned POST got the policy's fields and then the PNG, as S3 requires.
    upload = next(r for r in api.requests if r["path"] == "/upload")
    assert upload["headers"]["content-type"].startswith("multipart/form-data; boundary=")
    assert b'name="x-amz-signature"\r\n\r\n0123abcd' in upload["body"]
    assert upload["body"].index(b'name="key"') < upload["body"].index(b'name="file"')
    assert b"\x89PNG\r\n\x1a\n" in upload["body"] and "authorization" not in upload["headers"]


def test_sns_stage_skips_the_dry_runs_and_says_why(aws, api, outputs):
    smoke_key(aws)
    alarm(aws, history(SUCCESS))
    status, lines = run_smoke(aws, outputs, {"smsProvider": "sns"})
    assert status == 0
    assert line(lines, "SMS dry run") == (
        "skip  SMS dry run: smsProvider sns: SNS has no dry run, so the API answers a dryRun with 400")
    assert line(lines, "MMS dry run") == "skip  MMS dry run: MMS is off: no originationIdentity"
    assert [r["path"] for r in api.api_requests()] == ["/api/health"]  # nothing was sent


def test_sns_stage_with_mms_still_checks_the_mms_dry_run(aws, api, outputs):
    smoke_key(aws)
    alarm(aws, history(SUCCESS))
    status, lines = run_smoke(aws, outputs, {"smsProvider": "sns", "originationIdentity": "phone-abc"})
    assert status == 0
    assert line(lines, "MMS dry run").startswith("ok    MMS dry run: POST /mms to +142******55 answered 202")


def test_simulator_follows_allowed_countries(aws, api, outputs):
    smoke_key(aws)
    alarm(aws, history(SUCCESS))
    _, lines = run_smoke(aws, outputs, {**MMS_STAGE, "allowedCountries": ["FR"]})
    assert line(lines, "SMS dry run").startswith("ok    SMS dry run: POST /sms to +337******01")
    assert line(lines, "MMS dry run") == (
        "skip  MMS dry run: allowedCountries leaves out US, the MMS simulator's country")


def test_alarm_whose_topic_refuses_cloudwatch_fails_and_is_set_back_to_ok(aws, api, outputs):
    smoke_key(aws)
    refused = (f"Failed to execute action {TOPIC}. Received error: \"CloudWatch Alarms is not authorized to "
               f"perform: SNS:Publish on resource:{TOPIC}\"")
    alarm(aws, history(), history(refused))  # nothing yet on the first poll; the failure on the second
    status, lines = run_smoke(aws, outputs, {"smsProvider": "sns"})
    assert status == 1
    assert line(lines, "alarm notification") == (
        f"FAIL  alarm notification: {ALARM} went to ALARM but CloudWatch could not publish: \"{refused}\"\n"
        "      fix: the alarm topic's policy must let cloudwatch.amazonaws.com call sns:Publish (a topic policy "
        "replaces SNS's default one); fix the stack's alarm topic and run `make deploy` again")
    # The fixture's teardown checks that every stubbed call, the final set back to OK included, was made.


def test_alarm_history_from_an_earlier_run_does_not_count(aws, api, outputs):
    smoke_key(aws)
    old = f"Successfully executed action {TOPIC}"
    alarm(aws, history(old, at=T0), before=[old])  # the only item predates this run
    status, lines = run_smoke(aws, outputs, {"smsProvider": "sns"}, alarm_timeout=0)
    assert status == 1
    assert line(lines, "alarm notification") == (
        f"FAIL  alarm notification: {ALARM} went to ALARM and its history shows no SNS action after 0 s\n"
        f"      fix: check that the alarm has an SNS alarm action: `aws cloudwatch describe-alarms --alarm-names "
        f"{ALARM} --query 'MetricAlarms[].AlarmActions'`")


def test_missing_smoke_alarm_output(aws, api, tmp_path):
    path = tmp_path / "cdk-outputs-dev.json"
    path.write_text(json.dumps({"SmsSender-dev": {"ApiUrl": f"{api.url}/api/", "KeysTableName": KEYS_TABLE}}))
    smoke_key(aws)
    status, lines = run_smoke(aws, path, {"smsProvider": "sns"})
    assert status == 1
    assert line(lines, "alarm notification") == (
        "FAIL  alarm notification: the stack outputs have no SmokeAlarmName\n"
        "      fix: deploy the current stack: `make deploy`")


def test_no_outputs_file(aws, tmp_path):
    status, lines = run_smoke(aws, tmp_path / "cdk-outputs-dev.json", {"smsProvider": "sns"})
    assert status == 1
    assert lines[:2] == ["FAIL  stack outputs: cdk-outputs-dev.json not found",
                         "      fix: run `make deploy STAGE=dev` (it writes cdk-outputs-dev.json)"]


def test_a_refused_smoke_key_says_where_to_look_and_is_still_revoked(aws, api, outputs):
    unauthorized = {"error": {"code": "Unauthorized", "message": "A valid API key is required."}}
    api.routes[("POST", "/api/sms")] = lambda body: (401, unauthorized)
    smoke_key(aws)
    alarm(aws, history(SUCCESS))
    status, lines = run_smoke(aws, outputs, MMS_STAGE)
    assert status == 1
    assert line(lines, "SMS dry run").startswith(
        "FAIL  SMS dry run: POST /sms answered 401 Unauthorized: A valid API key is required.: the smoke key was "
        "refused\n      fix: see the authorizer's log group (the Bearer function)")
    assert lines[-3].startswith("ok    smoke key: revoked key_")


def test_a_key_the_table_refuses_stops_the_run(aws, api, outputs):
    aws.stub("dynamodb").add_client_error("put_item", service_error_code="AccessDeniedException",
                                          service_message="not authorized to perform: dynamodb:PutItem",
                                          http_status_code=400)
    status, lines = run_smoke(aws, outputs, MMS_STAGE)
    assert status == 1
    assert line(lines, "smoke key") == (
        f"FAIL  smoke key: could not write a key to {KEYS_TABLE}: AccessDeniedException: not authorized to perform: "
        "dynamodb:PutItem\n      fix: use credentials for the stage's account and region, allowed dynamodb:PutItem "
        f"on the keys table ({CREDENTIALS_FIX})")  # how, as preflight says it
    assert api.requests == []  # nothing else ran


def test_dry_run_refused_by_aws_shows_the_apis_error(aws, api, outputs):
    api.routes[("POST", "/api/sms")] = lambda body: (409, {"error": {
        "code": "DestinationNotVerified", "message": "the account is in the SMS sandbox"}})
    smoke_key(aws)
    alarm(aws, history(SUCCESS))
    status, lines = run_smoke(aws, outputs, MMS_STAGE)
    assert status == 1
    assert line(lines, "SMS dry run").startswith(
        "FAIL  SMS dry run: POST /sms with dryRun answered 409 DestinationNotVerified: the account is in the SMS "
        "sandbox\n      fix: `make preflight` checks the account side")


def test_app_that_ignores_dry_run_is_a_failure(aws, api, outputs):
    api.routes[("POST", "/api/sms")] = lambda body: (202, message({**body, "dryRun": False}))
    smoke_key(aws)
    alarm(aws, history(SUCCESS))
    _, lines = run_smoke(aws, outputs, MMS_STAGE)
    assert line(lines, "SMS dry run").startswith(
        "FAIL  SMS dry run: POST /sms answered 202 without dryRun true: the deployed app ignores dryRun")


def test_failed_presigned_upload_skips_the_mms_send(aws, api, outputs):
    api.routes[("POST", "/upload")] = lambda body: (403, None)
    smoke_key(aws)
    alarm(aws, history(SUCCESS))
    status, lines = run_smoke(aws, outputs, MMS_STAGE)
    assert status == 1
    assert line(lines, "MMS media upload").startswith(
        "FAIL  MMS media upload: the presigned upload answered HTTP 403")
    assert not any(text[6:].startswith("MMS dry run") for text in lines)
    assert ("POST", "/api/mms") not in [(r["method"], r["path"]) for r in api.requests]


def test_paid_check_says_it_costs_money_then_waits_for_the_receipt(aws, api, outputs):
    statuses = iter(["sent", "sent", "delivered"])
    api.routes[("GET", "/api/messages/msg-1")] = lambda body: (200, {"id": "msg-1", "status": next(statuses)})
    smoke_key(aws)
    alarm(aws, history(SUCCESS))
    status, lines = run_smoke(aws, outputs, MMS_STAGE, paid=True)
    assert status == 0
    notice = lines.index("WARN  paid receipt check: sending one real SMS to the US success simulator +142******55; "
                         "AWS charges for it")
    assert lines[notice + 1] == "ok    paid receipt check: message msg-1 to +142******55 is delivered"
    real = [r for r in api.api_requests() if r["path"] == "/api/sms" and "dryRun" not in r["body"]]
    assert [r["body"] for r in real] == [{"to": US, "body": "smoke test"}]  # exactly one real send
    assert [r["path"] for r in api.api_requests()].count("/api/messages/msg-1") == 3


@pytest.mark.parametrize("final, expected", [
    ({"status": "failed", "error": {"code": "DeliveryFailed", "message": "carrier rejected"}},
     "FAIL  paid receipt check: message msg-1 to +142******55 is failed (DeliveryFailed: carrier rejected)"),
    ({"status": "unknown"}, "WARN  paid receipt check: message msg-1 to +142******55 is unknown"),
])
def test_paid_check_reports_a_final_status_that_is_not_delivered(aws, api, outputs, final, expected):
    api.routes[("GET", "/api/messages/msg-1")] = lambda body: (200, {"id": "msg-1", **final})
    smoke_key(aws)
    alarm(aws, history(SUCCESS))
    _, lines = run_smoke(aws, outputs, MMS_STAGE, paid=True)
    assert line(lines, "paid receipt check").startswith("WARN  paid receipt check: sending one real SMS")
    assert [text for text in lines if text.startswith(expected)]


def test_paid_check_gives_up_after_its_time_limit(aws, api, outputs):
    api.routes[("GET", "/api/messages/msg-1")] = lambda body: (200, {"id": "msg-1", "status": "sent"})
    smoke_key(aws)
    alarm(aws, history(SUCCESS))
    status, lines = run_smoke(aws, outputs, MMS_STAGE, paid=True, receipt_timeout=0)
    assert status == 1
    assert any(text.startswith("FAIL  paid receipt check: message msg-1 is still sent after 0 s: no delivery "
                               "receipt reached it") for text in lines)


def test_main_takes_the_stage_and_the_paid_flag(aws, api, outputs, monkeypatch):
    monkeypatch.setattr(smoke, "stage_settings", lambda stage: ({"smsProvider": "sns"}, {}))
    seen = {}
    real_run = smoke.run

    def run(*args, **kwargs):
        seen.update(kwargs, outputs=args[2])
        return real_run(*args, **{**kwargs, "sleep": lambda seconds: None})

    monkeypatch.setattr(smoke, "run", run)
    smoke_key(aws)
    alarm(aws, history(SUCCESS))
    api.routes[("GET", "/api/messages/msg-1")] = lambda body: (200, {"id": "msg-1", "status": "delivered"})
    out = io.StringIO()
    assert smoke.main(["--stage", "dev", "--paid", "--outputs", str(outputs)], session=aws, out=out) == 0
    assert seen["paid"] is True and seen["outputs"] == outputs
    assert "ok    paid receipt check: message msg-1 to +142******55 is delivered" in out.getvalue()


def test_tiny_png_is_a_png():
    png = smoke.tiny_png()
    assert png.startswith(b"\x89PNG\r\n\x1a\n") and png.endswith(b"IEND\xaeB`\x82") and len(png) == 68


def test_an_endpoint_override_stops_before_any_call(aws, outputs, monkeypatch):
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:4566")
    status, lines = run_smoke(aws, outputs, {"smsProvider": "sns"})
    assert status == 1
    assert lines[0] == ("FAIL  AWS endpoint: AWS_ENDPOINT_URL is http://127.0.0.1:4566, so these checks would not "
                        "reach AWS")


def test_no_region(aws, outputs, monkeypatch):
    monkeypatch.delenv("AWS_DEFAULT_REGION")
    aws.region_name = None
    status, lines = run_smoke(aws, outputs, {"smsProvider": "sns"})
    assert status == 1
    assert lines[1:3] == ["FAIL  region: no region is set, and ApiUrl names none",
                          "      fix: export AWS_DEFAULT_REGION=<the stage's region>"]


@pytest.mark.parametrize("url, expected", [
    ("https://a1b2c3d4e5.execute-api.eu-west-2.amazonaws.com/api/", "eu-west-2"),
    ("https://a1b2c3d4e5.execute-api.us-gov-west-1.amazonaws.com/api/", "us-gov-west-1"),
    ("https://a1b2c3d4e5.execute-api.cn-north-1.amazonaws.com.cn/api/", "cn-north-1"),
    ("https://sms.example.com/api/", None),  # a custom domain names no region
    ("http://127.0.0.1:8000/api/", None),
])
def test_the_region_in_api_url(url, expected):
    assert smoke.api_region(url) == expected


@pytest.mark.parametrize("shell_region", [None, "us-east-1"])
def test_the_stage_region_comes_from_api_url(aws, tmp_path, monkeypatch, shell_region):
    """The keys table is in the stage's region, which ApiUrl names: smoke works there with no region set, or
    with the shell's set to another. The key write fails here, so smoke stops before any request to the API."""
    monkeypatch.delenv("AWS_DEFAULT_REGION")
    if shell_region:
        monkeypatch.setenv("AWS_DEFAULT_REGION", shell_region)
    aws.stub("dynamodb").add_client_error("put_item", "AccessDeniedException", "not allowed")
    aws.region_name, asked, made = None, [], aws.client

    def client(service, region_name=None):
        asked.append((service, region_name))
        return made(service, region_name)

    monkeypatch.setattr(aws, "client", client)
    path = tmp_path / "cdk-outputs-dev.json"
    path.write_text(json.dumps({"SmsSender-dev": {
        "ApiUrl": "https://a1b2c3d4e5.execute-api.eu-west-2.amazonaws.com/api/", "KeysTableName": KEYS_TABLE}}))
    status, lines = run_smoke(aws, path, {"smsProvider": "sns"})
    assert status == 1
    assert asked == [("dynamodb", "eu-west-2")]
    assert lines[1].startswith("FAIL  smoke key: could not write a key to SmsSender-dev-KeysTable: "
                               "AccessDeniedException: not allowed")


def test_a_number_in_an_api_error_is_masked_too(aws, api, outputs):
    api.routes[("POST", "/api/sms")] = lambda body: (409, {"error": {
        "code": "RecipientOptedOut", "message": f"{body['to']} opted out"}})
    smoke_key(aws)
    alarm(aws, history(SUCCESS))
    _, lines = run_smoke(aws, outputs, MMS_STAGE)  # run_smoke asserts the full number appears nowhere
    assert line(lines, "SMS dry run").startswith(
        "FAIL  SMS dry run: POST /sms with dryRun answered 409 RecipientOptedOut: +142******55 opted out")


# -- HELP and STOP (issue 20, item 6) ---------------------------------------------------------------------

@pytest.mark.parametrize("kept, expected", [
    ("HELP: End User Messaging refused PutKeyword (ValidationException) and keeps its own answer",
     "WARN  HELP and STOP: the stage's identity keeps End User Messaging's own answer: HELP: End User Messaging "
     "refused PutKeyword (ValidationException) and keeps its own answer\n"
     "      fix: replies and opt-outs work as before; to see the answer it gives, `aws pinpoint-sms-voice-v2 "
     "describe-keywords --origination-identity <the stage's identity> --keywords HELP STOP`"),
    ("STOP: the carriers answer it on a US toll-free number",
     "ok    HELP and STOP: the stage's identity answers them with the stage's text, but: STOP: the carriers answer "
     "it on a US toll-free number"),
    (None, "WARN  HELP and STOP: the outputs have no KeywordsNotSet: the deployed stack predates it\n"
           "      fix: deploy the current stack: `make deploy`"),
])
def test_a_refused_help_or_stop_answer_is_a_warning_and_the_rest_goes_on(aws, api, tmp_path, kept, expected):
    path = tmp_path / "cdk-outputs-dev.json"
    stack = {"ApiUrl": f"{api.url}/api/", "KeysTableName": KEYS_TABLE, "SmokeAlarmName": ALARM}
    path.write_text(json.dumps({"SmsSender-dev": {**stack, **({"KeywordsNotSet": kept} if kept else {})}}))
    smoke_key(aws)
    alarm(aws, history(SUCCESS))
    status, lines = run_smoke(aws, path, MMS_STAGE)
    assert status == 0  # the stage works: replies arrive and STOP opts out either way
    assert line(lines, "HELP and STOP") == expected
    assert line(lines, "MMS dry run").startswith("ok    MMS dry run")


def test_a_stage_without_two_way_skips_the_keywords(aws, api, outputs):
    smoke_key(aws)
    alarm(aws, history(SUCCESS))
    _, lines = run_smoke(aws, outputs, {**MMS_STAGE, "twoWay": False})
    assert line(lines, "HELP and STOP") == (
        "skip  HELP and STOP: the stage receives no replies, so the stack sets no keywords")
