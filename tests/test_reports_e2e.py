"""Delivery reports end to end on the local stack: the real tally reads the messages table's stream on a mapping of
its own (``devstack/streams.py``), the real export function reads the export queue (``devstack/queues.py``).

Known traffic goes through the API and the emulated AWS: a delivered SMS, one the carrier fails, one whose
provider answer never came (``unknown``), an MMS, a reply, a dry run and a test key's message; then a duplicate
receipt, an out-of-order receipt (older than the one applied) and a late one (newer: the message settles
again), and a stream batch the tally counted and then failed on (handed over again). The report must equal a
count made from the messages themselves, by the issue's definitions, written here anew; and an export's file
must match the messages row for row.
"""
from __future__ import annotations

import csv
import io
import json
import time
import urllib.request
import uuid
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone
from decimal import Decimal

import boto3
import pytest

from devstack import appload
from devstack.receipts import SIMULATOR_FAILURE, SIMULATOR_SUCCESS, sns_receipt, subscription_event
from devstack.server import REGION, LocalStack

from .localhttp import HANG_GUARD, Http, wait_for

SUCCESS, FAILURE = sorted(SIMULATOR_SUCCESS)[0], sorted(SIMULATOR_FAILURE)[0]
READ_TIMEOUT, HELD = 1.0, 2.5  # as tests/test_faults.py: an injected timeout, quickly


@pytest.fixture(scope="module")
def stack():
    with LocalStack(app_port=0, aws_port=0, visibility_timeout=10, function_timeout=10,
                    receipt_delay=0.3) as running:
        yield running


@pytest.fixture(scope="module")
def api(stack):
    return Http(stack.app_url)


@pytest.fixture(scope="module")
def aws(stack):
    emulated = Http(stack.aws_url)
    emulated.call("DELETE", "/_faults")
    yield emulated
    emulated.call("DELETE", "/_faults")


def days() -> tuple[str, str]:
    """Yesterday and today (UTC): a run that crosses midnight still finds its messages."""
    today = datetime.now(timezone.utc).date()
    return (today - timedelta(days=1)).isoformat(), today.isoformat()


def everything(api: Http, headers=None) -> list[dict]:
    """Every message the key lists (both directions, all pages)."""
    found, token = [], None
    while True:
        status, _, page = api.call("GET", "/messages?limit=100" + (f"&next={token}" if token else ""),
                                   headers=headers)
        assert status == 200, page
        found += page["messages"]
        token = page["next"]
        if not token:
            return found


def count(messages: list[dict]) -> dict:
    """The issue's definitions, applied to the messages as the API shows them: per day and channel."""
    figures: dict = {}
    for m in messages:
        if m["dryRun"] or m["test"]:
            continue
        into = figures.setdefault((m["createdAt"][:10], m["channel"]), {
            "accepted": 0, "delivered": 0, "failed": 0, "unknown": 0, "pending": 0, "received": 0, "segments": 0,
            "costUsd": Decimal(0), "failuresByCode": {}})
        if m["direction"] == "inbound":
            into["received"] += m["status"] == "received"
            continue
        taken = m["status"] in ("sent", "delivered", "unknown") or (m["status"] == "failed" and m["providerMessageId"])
        if not taken:
            continue
        into["accepted"] += 1
        into[{"sent": "pending"}.get(m["status"], m["status"])] += 1
        into["segments"] += m["segments"]
        into["costUsd"] += Decimal(repr(m["priceUsd"])) if m["priceUsd"] is not None else 0
        if m["status"] == "failed":
            code = m["error"]["code"]
            into["failuresByCode"][code] = into["failuresByCode"].get(code, 0) + 1
    return figures


def as_report(figures: dict, first: str, last: str) -> dict:
    """The counts in the report's shape (money rounded as the report rounds it)."""
    def shown(f):
        if f is None:
            f = {"accepted": 0, "delivered": 0, "failed": 0, "unknown": 0, "pending": 0, "received": 0,
                 "segments": 0, "costUsd": Decimal(0), "failuresByCode": {}}
        return {**f, "costUsd": float(f["costUsd"].quantize(Decimal("0.000001"))),
                "failuresByCode": dict(sorted(f["failuresByCode"].items(), key=lambda c: (-c[1], c[0])))}

    report_days = [first, last] if first != last else [first]
    return [{"date": day, **{channel: shown(figures.get((day, channel))) for channel in ("sms", "mms")}}
            for day in report_days]


def send(api: Http, path: str, body: dict, headers=None) -> dict:
    status, _, message = api.call("POST", path, body, headers)
    assert status == 202, message
    return message


def receipt_lines(stack, provider_id: str) -> list[tuple[str, str]]:
    """(log group, line) of every SNS delivery-status line the local receipts wrote for this provider id."""
    logs = boto3.client("logs", endpoint_url=stack.aws_url, region_name=REGION)
    found = []
    for group in stack.receipts.sns_groups:
        for event in logs.get_log_events(logGroupName=group, logStreamName="local")["events"]:
            if provider_id in event["message"]:
                found.append((group, event["message"]))
    return found


def ingest(stack, group: str, line: str) -> None:
    """Hand a delivery-status line to the real status ingest, as a subscription filter does."""
    appload.load().status_ingest(subscription_event(group, [line]), None)


def at(line: str, shift_seconds: float) -> str:
    """The same SNS receipt, its time moved by ``shift_seconds``."""
    data = json.loads(line)
    stamp = datetime.strptime(data["notification"]["timestamp"], "%Y-%m-%d %H:%M:%S.%f") + timedelta(
        seconds=shift_seconds)
    data["notification"]["timestamp"] = stamp.strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]
    return json.dumps(data)


def status_of(api: Http, message_id: str) -> str:
    return api.call("GET", f"/messages/{message_id}")[2]["status"]


@contextmanager
def short_timeouts():
    """The app's AWS clients with a 1 s read timeout (10 s otherwise), so an injected timeout is quick; only
    while the one send that needs it is made."""
    from botocore.config import Config
    from chalicelib.core import aws as clients

    real = clients.Config
    clients.Config = lambda **kw: real(**{**kw, "read_timeout": READ_TIMEOUT})
    clients.reset()
    try:
        yield
    finally:
        clients.Config = real
        clients.reset()


def media(stack) -> str:
    bucket = stack.env["MEDIA_BUCKET"]
    key = f"media/{uuid.uuid4()}.png"
    boto3.client("s3", endpoint_url=stack.aws_url, region_name=REGION).put_object(
        Bucket=bucket, Key=key, Body=b"\x89PNG" + b"0" * 300, ContentType="image/png")
    return f"s3://{bucket}/{key}"


@pytest.fixture(scope="module")
def traffic(stack, api, aws):
    """The known traffic, settled; returns the ids by what each message is."""
    ids = {}
    ids["delivered"] = send(api, "/sms", {"to": SUCCESS, "body": "report e2e delivered"})["id"]
    ids["failed"] = send(api, "/sms", {"to": FAILURE, "body": "report e2e failed"})["id"]
    ids["late"] = send(api, "/sms", {"to": FAILURE, "body": "report e2e settles again"})["id"]
    ids["mms"] = send(api, "/mms", {"to": SUCCESS, "body": "report e2e mms", "mediaUrl": media(stack)})["id"]
    ids["dry run"] = send(api, "/mms", {"to": SUCCESS, "mediaUrl": media(stack), "dryRun": True})["id"]
    status, _, made = api.call("POST", "/keys", {"name": "reports e2e", "scopes": ["messages:send", "messages:read"],
                                                 "test": True})
    assert status == 201, made
    test_key = {"Authorization": f"Bearer {made['key']}"}
    ids["test key"] = send(api, "/sms", {"to": SUCCESS, "body": "report e2e test key"}, test_key)["id"]
    status, _, _ = aws.call("POST", "/_inbound", {"originationNumber": "+14255550123",
                                                  "messageBody": "report e2e reply"})
    assert status == 202
    for name in ("delivered", "mms"):
        assert wait_for(lambda: status_of(api, ids[name]) == "delivered"), name
    for name in ("failed", "late"):
        assert wait_for(lambda: status_of(api, ids[name]) == "failed"), name
    assert wait_for(lambda: any(m["direction"] == "inbound" for m in everything(api)))
    return ids, test_key


def report(api: Http, first: str, last: str, headers=None) -> dict:
    status, _, answer = api.call("GET", f"/reports/daily?from={first}&to={last}", headers=headers)
    assert status == 200, answer
    return answer


def settles_into_the_count(api: Http) -> bool:
    first, last = days()
    return report(api, first, last)["days"] == as_report(count(everything(api)), first, last)


def test_the_report_equals_a_count_made_from_the_messages(stack, api, aws, traffic):
    ids, test_key = traffic
    # unknown: the provider's answer never came (nothing recorded it as taken or refused).
    with short_timeouts():
        aws.call("POST", "/_faults", {"operation": "Publish", "effect": "timeout", "delay": HELD, "count": 1})
        unknown = send(api, "/sms", {"to": SUCCESS, "body": "report e2e unknown"})
        time.sleep(HELD)  # the held answer has gone, to nobody
    assert unknown["status"] == "unknown" and unknown["providerMessageId"] is None
    # A duplicate receipt (the very line again), and an out-of-order one (a minute older than the one applied,
    # saying the opposite): neither changes the record, so neither makes a stream record.
    delivered = api.call("GET", f"/messages/{ids['delivered']}")[2]
    ((group, line),) = receipt_lines(stack, delivered["providerMessageId"])
    ingest(stack, group, line)
    failed = api.call("GET", f"/messages/{ids['failed']}")[2]
    ((failed_group, failed_line),) = receipt_lines(stack, failed["providerMessageId"])
    older = at(failed_line, -60).replace('"FAILURE"', '"SUCCESS"')
    ingest(stack, stack.receipts.sns_groups[0], older)
    assert api.call("GET", f"/messages/{ids['delivered']}")[2] == delivered
    assert api.call("GET", f"/messages/{ids['failed']}")[2] == failed
    # A late receipt, a minute newer, that the carrier delivered it after all: failed -> delivered.
    late = api.call("GET", f"/messages/{ids['late']}")[2]
    ((_, late_line),) = receipt_lines(stack, late["providerMessageId"])
    newer = json.loads(at(late_line, 60).replace('"FAILURE"', '"SUCCESS"'))
    newer["delivery"]["priceInUSD"] = 0.00581
    ingest(stack, stack.receipts.sns_groups[0], json.dumps(newer))
    assert wait_for(lambda: status_of(api, ids["late"]) == "delivered")
    first, last = days()
    assert wait_for(lambda: settles_into_the_count(api), 60), (report(api, first, last),
                                                                  as_report(count(everything(api)), first, last))
    answer = report(api, first, last)
    totals = answer["totals"]
    assert totals["sms"]["accepted"] == 4 and totals["sms"]["delivered"] == 2  # delivered, late; failed; unknown
    assert (totals["sms"]["failed"], totals["sms"]["unknown"], totals["sms"]["received"]) == (1, 1, 1)
    assert totals["sms"]["failuresByCode"] == {"DeliveryFailed": 1}
    assert (totals["mms"]["accepted"], totals["mms"]["delivered"]) == (1, 1)  # the dry run is not counted
    assert totals["sms"]["costUsd"] > 0 and totals["sms"]["pending"] == 0
    # The test key's report is all zeros; its message is in no live figure (the count above holds without it).
    assert all(day[channel]["accepted"] == 0 for day in report(api, first, last, test_key)["days"]
               for channel in ("sms", "mms"))


def test_a_stream_batch_handed_over_again_after_it_was_counted_counts_once(stack, api, traffic):
    """The tally counts a batch, then its invocation fails (as a timeout after the write would): the stream
    hands the batch over again, and the markers keep every record from counting twice."""
    player, real = stack.report_tally, stack.report_tally.function
    failed_once = []

    def counted_then_failed(event, context):
        result = real(event, context)
        if not failed_once and result.get("applied"):
            failed_once.append(result)
            raise TimeoutError("the invocation timed out after its transaction was written")
        return result

    player.function = counted_then_failed
    try:
        before = player.invocations
        message = send(api, "/sms", {"to": SUCCESS, "body": "report e2e retried batch"})
        assert wait_for(lambda: status_of(api, message["id"]) == "delivered")
        assert wait_for(lambda: failed_once and player.invocations > before + 1)
        first, last = days()
        assert wait_for(lambda: settles_into_the_count(api), 60)
    finally:
        player.function = real
    assert not player.failed  # nothing was given up on


def test_an_exports_file_matches_the_messages_row_for_row(stack, api, traffic):
    first, last = days()
    status, headers, started = api.call("POST", "/exports", {"from": first, "to": last})
    assert status == 202 and started["status"] == "running", started
    assert headers["Location"] == f"/exports/{started['id']}"
    ready = wait_for(lambda: (e := api.call("GET", f"/exports/{started['id']}")[2])["status"] != "running" and e, 60)
    assert ready and ready["status"] == "ready", ready
    with urllib.request.urlopen(ready["url"], timeout=HANG_GUARD) as answer:  # the presigned URL, on the embedded S3
        assert "attachment" in answer.headers.get("Content-Disposition", "")
        rows = list(csv.DictReader(io.StringIO(answer.read().decode("utf-8"))))
    messages = sorted(everything(api), key=lambda m: (m["createdAt"], m["id"]))
    assert ready["rows"] == len(rows) == len(messages)
    for row, m in zip(rows, messages):
        assert row == {"id": m["id"], "direction": m["direction"], "channel": m["channel"], "to": m["to"],
                       "from": m["from"] or "", "status": m["status"],
                       "errorCode": (m["error"] or {}).get("code", ""), "segments": row["segments"],
                       "priceUsd": row["priceUsd"], "createdAt": m["createdAt"], "updatedAt": m["updatedAt"],
                       "templateId": "", "keyId": m["keyId"] or ""}
        assert Decimal(row["segments"]) == m["segments"]
        assert (row["priceUsd"] == "") == (m["priceUsd"] is None)
        if m["priceUsd"] is not None:
            assert Decimal(row["priceUsd"]) == Decimal(repr(m["priceUsd"]))
