"""End to end: the local stack in-process, real HTTP on loopback, the emulated AWS's outbox as the
witness of what was actually sent."""
import json
import urllib.error
import urllib.request

import boto3
import pytest
from botocore.config import Config

from devstack.server import LocalStack

from .localhttp import HANG_GUARD, Http, wait_for

TO = "+14255550123"


@pytest.fixture(scope="module")
def stack():
    with LocalStack(app_port=0, aws_port=0, settings={"PROVIDER_MAX_ATTEMPTS": "2"}) as running:
        yield running


@pytest.fixture
def aws(stack):
    emulated = Http(stack.aws_url)
    emulated.call("DELETE", "/_faults")
    return emulated


def outbox(aws):
    return aws.call("GET", "/_outbox")[2]


def test_send_read_back_and_outbox(api, aws):
    before = len(outbox(aws))
    status, headers, message = api.call("POST", "/sms", {"to": TO, "body": "Hello from the local stack"})
    assert status == 202 and headers["Location"] == f"/messages/{message['id']}"
    assert message["status"] == "sent"
    sent = outbox(aws)[before:]
    assert [(s["channel"], s["to"], s["body"], s["providerMessageId"]) for s in sent] == [
        ("sms", TO, "Hello from the local stack", message["providerMessageId"])]
    status, _, fetched = api.call("GET", f"/messages/{message['id']}")
    assert status == 200 and fetched == message
    status, _, listed = api.call("GET", "/messages?limit=1")
    assert listed["messages"][0]["id"] == message["id"]


def test_bad_input_is_refused_and_nothing_is_sent(api, aws):
    before = len(outbox(aws))
    assert api.call("POST", "/sms", raw=b"{oops")[0] == 400
    status, _, body = api.call("POST", "/sms", {"to": "12", "body": "hi"})
    assert status == 400 and body["error"] == {"code": "InvalidPhoneNumber", "field": "to",
                                               "message": body["error"]["message"]}
    assert api.call("POST", "/mms", {"to": TO, "mediaUrl": "s3://not-ours/x.png"})[0] == 400
    assert len(outbox(aws)) == before


def test_idempotent_retry_sends_once(api, aws):
    before = len(outbox(aws))
    headers = {"Idempotency-Key": "e2e-once"}
    first = api.call("POST", "/sms", {"to": TO, "body": "only once"}, headers)
    second = api.call("POST", "/sms", {"to": TO, "body": "only once"}, headers)
    assert first[0] == second[0] == 202 and first[2] == second[2]
    assert len(outbox(aws)) == before + 1
    assert api.call("POST", "/sms", {"to": TO, "body": "changed"}, headers)[0] == 409


def test_provider_throttling_is_retried_then_surfaces_as_429(api, aws):
    before = len(outbox(aws))
    # One throttle: the client's standard retry absorbs it and the message goes out once.
    aws.call("POST", "/_faults", {"operation": "Publish", "code": "Throttling", "count": 1})
    status, _, message = api.call("POST", "/sms", {"to": TO, "body": "after one throttle"})
    assert status == 202 and message["status"] == "sent"
    assert len(outbox(aws)) == before + 1
    # Throttled on every attempt: 429 with Retry-After, the record failed, nothing sent.
    aws.call("POST", "/_faults", {"operation": "Publish", "code": "Throttling", "count": 2})
    status, headers, body = api.call("POST", "/sms", {"to": TO, "body": "throttled"})
    assert status == 429 and headers["Retry-After"] == "1" and body["error"]["code"] == "Throttled"
    assert api.call("GET", f"/messages/{body['error']['messageId']}")[2]["status"] == "failed"
    assert len(outbox(aws)) == before + 1


def test_sms_voice_throttling_too(api, aws, stack, monkeypatch):
    monkeypatch.setenv("SMS_PROVIDER", "sms-voice")
    from chalicelib.core import aws as clients

    clients.reset()
    try:
        aws.call("POST", "/_faults", {"operation": "SendTextMessage", "code": "ThrottlingException", "count": 2})
        status, headers, _ = api.call("POST", "/sms", {"to": TO, "body": "eum throttled"})
        assert status == 429 and headers["Retry-After"] == "1"
        status, _, message = api.call("POST", "/sms", {"to": TO, "body": "eum ok"})
        assert status == 202 and outbox(aws)[-1]["providerMessageId"] == message["providerMessageId"]
    finally:
        monkeypatch.undo()
        clients.reset()


def _multipart(fields: dict, filename: str, content: bytes, content_type: str):
    boundary = "----e2eboundary"
    parts = []
    for name, value in fields.items():
        parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode())
    parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{filename}"\r\n'
                 f"Content-Type: {content_type}\r\n\r\n".encode() + content + b"\r\n")
    parts.append(f"--{boundary}--\r\n".encode())
    return b"".join(parts), f"multipart/form-data; boundary={boundary}"


def upload(stack, grant, content: bytes, content_type="image/png"):
    body, ctype = _multipart(grant["upload"]["fields"], "cat.png", content, content_type)
    assert grant["upload"]["url"].startswith(stack.aws_url)
    request = urllib.request.Request(grant["upload"]["url"], data=body, method="POST",
                                     headers={"Content-Type": ctype})
    try:
        with urllib.request.urlopen(request, timeout=HANG_GUARD) as response:
            return response.status
    except urllib.error.HTTPError as err:
        return err.code


def test_mms_upload_then_send(api, aws, stack):
    status, _, grant = api.call("POST", "/media", {"contentType": "image/png", "size": 4096})
    assert status == 201
    assert upload(stack, grant, b"\x89PNG" + b"0" * 2000) == 204
    status, _, message = api.call("POST", "/mms", {"to": TO, "body": "A cat", "mediaUrl": grant["mediaUrl"]})
    assert status == 202 and message["status"] == "sent"
    last = outbox(aws)[-1]
    assert (last["channel"], last["to"], last["mediaUrl"], last["body"]) == ("mms", TO, grant["mediaUrl"], "A cat")


def test_the_upload_policy_is_enforced(api, stack):
    _, _, grant = api.call("POST", "/media", {"contentType": "image/png", "size": 100})
    assert upload(stack, grant, b"x" * 101) == 400                  # larger than declared
    assert upload(stack, grant, b"x" * 50, "image/gif") == 204      # the form field, not the part, sets the type
    tampered = json.loads(json.dumps(grant))
    tampered["upload"]["fields"]["Content-Type"] = "application/x-msdownload"
    assert upload(stack, tampered, b"x" * 50) == 403
    status, _, body = api.call("POST", "/mms", {"to": TO, "mediaUrl": grant["mediaUrl"]})
    assert status == 202


def test_unuploaded_media_is_404(api):
    _, _, grant = api.call("POST", "/media", {"contentType": "image/png", "size": 100})
    status, _, body = api.call("POST", "/mms", {"to": TO, "mediaUrl": grant["mediaUrl"]})
    assert status == 404 and body["error"]["code"] == "MediaNotFound"


def test_stand_in_validates_against_the_botocore_model(stack):
    # Client-side validation off, so the stand-in itself must refuse what the model forbids.
    client = boto3.client("pinpoint-sms-voice-v2", endpoint_url=stack.aws_url, region_name="us-east-1",
                          config=Config(parameter_validation=False, retries={"total_max_attempts": 1}))
    with pytest.raises(client.exceptions.ValidationException) as caught:
        client.send_text_message(DestinationPhoneNumber=TO, MessageBody="x" * 1601)
    assert caught.value.response["Reason"] == "FIELD_VALIDATION_FAILED"
    with pytest.raises(client.exceptions.ValidationException):
        client.send_media_message(DestinationPhoneNumber=TO, OriginationIdentity=stack.env["ORIGINATION_IDENTITY"],
                                  MediaUrls=["s3://a/b", "s3://a/c"])
    with pytest.raises(client.exceptions.ValidationException):
        client.send_text_message(DestinationPhoneNumber="not-a-number", MessageBody="hi")
    with pytest.raises(client.exceptions.ResourceNotFoundException):
        client.send_text_message(DestinationPhoneNumber=TO, MessageBody="hi", OriginationIdentity="phone-unknown")


@pytest.fixture
def eum_stage(stack, monkeypatch):
    """The local stack's app on an ``sms-voice`` stage (SMS through the stand-in)."""
    from chalicelib.core import aws as clients

    def configure(**values):
        for name, value in {"SMS_PROVIDER": "sms-voice", **values}.items():
            monkeypatch.setenv(name, value)
        clients.reset()

    configure()
    yield configure
    monkeypatch.undo()
    clients.reset()


def test_a_dry_run_is_validated_by_the_stand_in_and_never_sent(api, aws, stack, eum_stage):
    before, dry_runs = len(outbox(aws)), stack.emulator.sms_voice.dry_runs
    status, _, message = api.call("POST", "/sms", {"to": TO, "body": "check only", "dryRun": True})
    assert status == 202 and (message["status"], message["dryRun"]) == ("validated", True)
    assert message["providerMessageId"]
    _, _, grant = api.call("POST", "/media", {"contentType": "image/png", "size": 100})
    assert upload(stack, grant, b"x" * 100) == 204
    status, _, mms = api.call("POST", "/mms", {"to": TO, "mediaUrl": grant["mediaUrl"], "dryRun": True})
    assert status == 202 and mms["status"] == "validated"
    # Checked as a send is: media that is not there is refused.
    status, _, body = api.call("POST", "/mms", {"to": TO, "mediaUrl": grant["mediaUrl"] + "x", "dryRun": True})
    assert status == 404 and body["error"]["code"] == "MediaNotFound"
    assert stack.emulator.sms_voice.dry_runs == dry_runs + 2
    assert len(outbox(aws)) == before
    # A real send after them, as a barrier: the stand-in's receipts come in the order of the sends, so once
    # this one's receipt has settled it, a receipt for the dry runs would have come before. None did.
    status, _, barrier = api.call("POST", "/sms", {"to": TO, "body": "after the dry runs"})
    assert status == 202
    assert wait_for(lambda: api.call("GET", f"/messages/{barrier['id']}")[2]["status"] == "delivered")
    assert [entry["body"] for entry in outbox(aws)[before:]] == ["after the dry runs"]
    assert [api.call("GET", f"/messages/{m['id']}")[2]["status"] for m in (message, mms)] == ["validated"] * 2


def test_an_sms_voice_receipt_echoes_our_id_and_settles_the_message(api, aws, stack, eum_stage):
    from devstack.resources import EVENTS_LOG_GROUP

    status, _, message = api.call("POST", "/sms", {"to": TO, "body": "context round trip"})
    assert status == 202
    settled = wait_for(lambda: api.call("GET", f"/messages/{message['id']}")[2]["status"] == "delivered")
    assert settled
    logs = boto3.client("logs", endpoint_url=stack.aws_url, region_name="us-east-1")
    lines = [json.loads(e["message"]) for e in logs.filter_log_events(logGroupName=EVENTS_LOG_GROUP)["events"]]
    ours = [line for line in lines if line["messageId"] == message["providerMessageId"]]
    assert len(ours) == 2 and all(line["context"] == {"messageId": message["id"]} for line in ours)


def test_the_stage_sender_id_goes_where_the_country_has_sender_ids(api, aws, stack, eum_stage):
    client = boto3.client("pinpoint-sms-voice-v2", endpoint_url=stack.aws_url, region_name="us-east-1")
    try:
        client.request_sender_id(SenderId="LOCALCO", IsoCountryCode="GB", MessageTypes=["TRANSACTIONAL"])
    except client.exceptions.ConflictException:
        pass  # an earlier test of the module asked for it
    # An sms-voice stage that also sends to GB (the dev stage's allowedCountries are US and CA).
    eum_stage(SENDER_ID="LOCALCO", ALLOWED_COUNTRIES="US,CA,GB")
    gb = "+442079460958"
    status, _, message = api.call("POST", "/sms", {"to": gb, "body": "from a sender id"})
    assert status == 202 and outbox(aws)[-1]["providerMessageId"] == message["providerMessageId"]
    status, _, us = api.call("POST", "/sms", {"to": TO, "body": "from the number"})
    assert status == 202
    identities = dict(stack.emulator.sms_voice.identities)
    assert identities[message["providerMessageId"]] == "LOCALCO"
    assert identities[us["providerMessageId"]] == stack.env["ORIGINATION_IDENTITY"]
    status, _, body = api.call("POST", "/sms", {"to": TO, "body": "x", "senderId": "LOCALCO"})
    assert (status, body["error"]["code"]) == (400, "SenderIdNotSupported")
    status, _, body = api.call("POST", "/sms", {"to": gb, "body": "x", "senderId": "OTHERCO"})
    assert (status, body["error"]["code"]) == (400, "InvalidSenderId")
