"""validityPeriod and maxPriceUsd end to end: the local stack in-process, real HTTP on loopback, the End User
Messaging stand-in (which validates every call against botocore's model) deciding on MaxPrice and
TimeToLive, the local receipts and the real status ingest settling the outcome, and the emulated AWS's outbox
as the witness of what was sent."""
import json

import boto3
import pytest

from devstack.resources import EVENTS_LOG_GROUP
from devstack.server import LocalStack

from .localhttp import Http, wait_for

TO = "+14255550123"


@pytest.fixture(scope="module")
def stack():
    with LocalStack(app_port=0, aws_port=0, settings={"PROVIDER_MAX_ATTEMPTS": "2"}) as running:
        yield running


@pytest.fixture
def aws(stack):
    return Http(stack.aws_url)


def outbox(aws):
    return aws.call("GET", "/_outbox")[2]


@pytest.fixture
def media(stack):
    bucket = stack.env["MEDIA_BUCKET"]
    boto3.client("s3", endpoint_url=stack.aws_url, region_name="us-east-1").put_object(
        Bucket=bucket, Key="media/limits.png", Body=b"\x89PNG" + b"0" * 512, ContentType="image/png")
    return f"s3://{bucket}/media/limits.png"


@pytest.fixture
def eum_stage(stack, monkeypatch):
    """The local stack's app on an ``sms-voice`` stage (SMS through the stand-in)."""
    from chalicelib.core import aws as clients

    monkeypatch.setenv("SMS_PROVIDER", "sms-voice")
    clients.reset()
    yield
    monkeypatch.undo()
    clients.reset()


def settled(api, message_id):
    return wait_for(lambda: (lambda m: m if m["status"] not in ("queued", "sent") else None)(
        api.call("GET", f"/messages/{message_id}")[2]))


def test_the_local_sns_stage_refuses_a_price_cap_on_sms(api, aws, stack):
    assert stack.env.get("SMS_PROVIDER", "sns") == "sns"
    before = len(outbox(aws))
    status, _, body = api.call("POST", "/sms", {"to": TO, "body": "capped", "maxPriceUsd": "0.05"})
    assert (status, body["error"]["code"], body["error"]["field"]) == (400, "MaxPriceNotSupported", "maxPriceUsd")
    assert len(outbox(aws)) == before


@pytest.mark.parametrize("channel", ["sms", "mms"])
def test_a_part_priced_over_the_cap_is_refused_by_end_user_messaging_and_nothing_is_sent(
        api, aws, stack, eum_stage, media, channel):
    """The stand-in prices an SMS part at 0.00581 USD and an MMS at 0.02 (devstack/receipts.py)."""
    send = {"sms": ("/sms", {"to": TO, "body": "capped"}, "0.0058", "0.00581"),
            "mms": ("/mms", {"to": TO, "mediaUrl": media}, "0.01999", "0.02")}
    path, request, under, enough = send[channel]
    before = len(outbox(aws))
    status, _, body = api.call("POST", path, {**request, "maxPriceUsd": under})
    assert (status, body["error"]["code"]) == (422, "PriceOverMax")
    assert "nothing charged" in body["error"]["message"]
    refused = api.call("GET", f"/messages/{body['error']['messageId']}")[2]
    assert (refused["status"], refused["maxPriceUsd"], refused["providerMessageId"]) == ("failed", under, None)
    assert len(outbox(aws)) == before
    status, _, message = api.call("POST", path, {**request, "maxPriceUsd": enough})
    assert status == 202 and outbox(aws)[-1]["providerMessageId"] == message["providerMessageId"]
    assert settled(api, message["id"])["status"] == "delivered"


def test_a_send_whose_time_to_live_runs_out_before_the_hand_off_ends_expired(api, aws, stack, media):
    """The local carrier made slower than the message's TimeToLive: End User Messaging (the stand-in) accepts
    it, its final event is MEDIA_TTL_EXPIRED, and the real status ingest ends it failed Expired."""
    standin = stack.emulator.sms_voice
    standin.handoff_seconds = 3600.0
    try:
        status, _, message = api.call("POST", "/mms", {"to": TO, "mediaUrl": media, "validityPeriod": 600})
        assert status == 202 and message["status"] == "sent"
        final = settled(api, message["id"])
    finally:
        standin.handoff_seconds = 0.0
    assert (final["status"], final["error"]["code"]) == ("failed", "Expired")
    assert final["providerResponse"].startswith("MEDIA_TTL_EXPIRED")
    logs = boto3.client("logs", endpoint_url=stack.aws_url, region_name="us-east-1")
    events = [json.loads(e["message"]) for e in logs.filter_log_events(logGroupName=EVENTS_LOG_GROUP)["events"]]
    assert [e["eventType"] for e in events if e["messageId"] == message["providerMessageId"]][-1] == \
        "MEDIA_TTL_EXPIRED"
