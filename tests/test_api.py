"""API tests through chalice.test.Client, with moto for S3/SNS/DynamoDB and a Stubber for sms-voice."""
import base64
import io
import json
import logging

import pytest
from botocore.stub import ANY
from moto.core import DEFAULT_ACCOUNT_ID
from moto.sns.models import sns_backends

from tests.conftest import REGION, body_of, post
from chalicelib.core import store

TO = "+14255550123"


def sent_sms():
    return list(sns_backends[DEFAULT_ACCOUNT_ID][REGION].sms_messages.values())


def test_health(client):
    response = client.http.get("/health")
    assert response.status_code == 200 and body_of(response) == {"status": "ok"}


def test_console_page_is_served(client):
    response = client.http.get("/")
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/html")
    assert b'id="send"' in response.body  # what the page calls, and from where: tests/test_console.py


def test_send_sms_through_sns_and_read_it_back(client):
    response = post(client, "/sms", {"to": TO, "body": "Your code is 123456"})
    assert response.status_code == 202
    message = body_of(response)
    assert response.headers["Location"] == f"/messages/{message['id']}"
    assert message["status"] == "sent" and message["providerMessageId"]
    assert (message["channel"], message["to"], message["segments"], message["encoding"]) == ("sms", TO, 1, "GSM-7")
    assert sent_sms() == [(TO, "Your code is 123456")]

    fetched = body_of(client.http.get(f"/messages/{message['id']}"))
    assert fetched == message
    assert set(fetched) == set(store.PUBLIC_FIELDS)


GB = "+442079460958"  # a country where sender ids exist (AWS's SMS country table)


def test_sns_publish_carries_type_and_sender_id(client, sns_stub):
    sns_stub.add_response("publish", {"MessageId": "sns-1"}, {
        "PhoneNumber": GB, "Message": "Sale today",
        "MessageAttributes": {
            "AWS.SNS.SMS.SMSType": {"DataType": "String", "StringValue": "Promotional"},
            "AWS.SNS.SMS.SenderID": {"DataType": "String", "StringValue": "ACME"},
        },
    })
    response = post(client, "/sms", {"to": GB, "body": "Sale today", "type": "promotional", "senderId": "ACME"})
    assert response.status_code == 202 and body_of(response)["providerMessageId"] == "sns-1"


def test_national_number_with_country(client):
    response = post(client, "/sms", {"to": "(425) 555-0123", "country": "US", "body": "hi"})
    assert response.status_code == 202 and body_of(response)["to"] == TO


def test_sms_voice_provider_uses_send_text_message(client, aws_env):
    aws_env(SMS_PROVIDER="sms-voice")
    from chalicelib.core import aws
    from botocore.stub import Stubber

    with Stubber(aws.client("pinpoint-sms-voice-v2")) as stub:
        stub.add_response("send_text_message", {"MessageId": "eum-1"}, {
            "DestinationPhoneNumber": TO, "MessageBody": "Привет", "MessageType": "TRANSACTIONAL",
            "OriginationIdentity": "arn:aws:sms-voice:us-east-1:123456789012:phone-number/phone-abc",
            "ConfigurationSetName": "sms-sender-test", "Context": ANY,
        })
        response = post(client, "/sms", {"to": TO, "body": "Привет"})
        stub.assert_no_pending_responses()
    message = body_of(response)
    assert response.status_code == 202
    assert (message["providerMessageId"], message["encoding"]) == ("eum-1", "UCS-2")
    assert sent_sms() == []


def test_send_mms(client, sms_voice, put_media):
    url = put_media()
    sms_voice.add_response("send_media_message", {"MessageId": "mms-1"}, {
        "DestinationPhoneNumber": TO, "MessageBody": "A cat",
        "OriginationIdentity": "arn:aws:sms-voice:us-east-1:123456789012:phone-number/phone-abc",
        "MediaUrls": [url], "ConfigurationSetName": "sms-sender-test", "Context": ANY,
    })
    response = post(client, "/mms", {"to": TO, "body": "A cat", "mediaUrl": url})
    assert response.status_code == 202
    message = body_of(response)
    assert (message["channel"], message["mediaUrl"], message["status"], message["segments"]) == ("mms", url, "sent", 1)


@pytest.mark.parametrize("key, content_type, size, status, code", [
    ("media/big.png", "image/png", 2 * 1024 * 1024 + 1, 422, "MediaTooLarge"),
    ("media/big.pdf", "application/pdf", 600 * 1024 + 1, 422, "MediaTooLarge"),
    ("media/app.exe", "application/x-msdownload", 10, 422, "MediaTypeNotSupported"),
])
def test_mms_media_preflight(client, sms_voice, put_media, key, content_type, size, status, code):
    url = put_media(key, content_type, size)
    response = post(client, "/mms", {"to": TO, "mediaUrl": url})
    assert response.status_code == status and body_of(response)["error"]["code"] == code


def test_mms_media_that_was_never_uploaded_is_404(client, sms_voice, aws_env):
    import os
    response = post(client, "/mms", {"to": TO, "mediaUrl": f"s3://{os.environ['MEDIA_BUCKET']}/media/none.png"})
    assert response.status_code == 404 and body_of(response)["error"]["code"] == "MediaNotFound"


def test_mms_without_an_origination_identity_is_503(client, aws_env, put_media):
    aws_env(ORIGINATION_IDENTITY=None)
    response = post(client, "/mms", {"to": TO, "mediaUrl": put_media()})
    assert response.status_code == 503 and body_of(response)["error"]["code"] == "MmsNotConfigured"


def test_media_upload_policy_pins_type_and_size(client):
    response = post(client, "/media", {"contentType": "image/png", "size": 50_000})
    assert response.status_code == 201
    data = body_of(response)
    assert data["mediaUrl"].startswith("s3://sms-sender-local-media/media/") and data["mediaUrl"].endswith(".png")
    assert data["expiresIn"] == 900
    fields = data["upload"]["fields"]
    assert fields["key"] == data["mediaUrl"].split("/", 3)[3]
    policy = json.loads(base64.b64decode(fields["policy"]))
    assert {"Content-Type": "image/png"} in policy["conditions"]
    assert ["content-length-range", 1, 50_000] in policy["conditions"]


@pytest.mark.parametrize("body, status, code", [
    ({"contentType": "image/png"}, 400, "MissingField"),
    ({"size": 10}, 400, "MissingField"),
    ({"contentType": "image/png", "size": "big"}, 400, "InvalidSize"),
    ({"contentType": "image/png", "size": 3 * 1024 * 1024}, 422, "MediaTooLarge"),
    ({"contentType": "application/zip", "size": 10}, 422, "MediaTypeNotSupported"),
])
def test_bad_media_requests(client, body, status, code):
    response = post(client, "/media", body)
    assert response.status_code == status and body_of(response)["error"]["code"] == code


@pytest.mark.parametrize("path, body, status, code", [
    ("/sms", "{not json", 400, "InvalidJson"),
    ("/sms", {"body": "hi"}, 400, "MissingField"),
    ("/sms", {"to": "+1555", "body": "hi"}, 400, "InvalidPhoneNumber"),
    ("/sms", {"to": TO, "body": "x" * 1601}, 400, "BodyTooLong"),
    ("/sms", {"to": TO, "body": "hi", "type": "bulk"}, 400, "InvalidType"),
    ("/sms", {"to": TO, "body": "hi", "senderId": "!!"}, 400, "InvalidSenderId"),
    ("/mms", {"to": TO, "mediaUrl": "s3://someone-elses-bucket/x.png"}, 400, "InvalidMediaUrl"),
])
def test_bad_input_gets_the_contract_error_body(client, path, body, status, code):
    response = post(client, path, body)
    assert response.status_code == status
    error = body_of(response)["error"]
    assert error["code"] == code and error["message"]
    assert sent_sms() == []


def test_country_allowlist_is_403(client, aws_env):
    aws_env(ALLOWED_COUNTRIES="US,CA")
    response = post(client, "/sms", {"to": "+442079460958", "body": "hi"})
    assert response.status_code == 403 and body_of(response)["error"]["code"] == "CountryNotAllowed"


def test_unknown_message_is_404(client):
    response = client.http.get("/messages/does-not-exist")
    assert response.status_code == 404 and body_of(response)["error"]["code"] == "MessageNotFound"


def test_list_is_newest_first_and_pages(client):
    ids = [body_of(post(client, "/sms", {"to": TO, "body": f"n{i}"}))["id"] for i in range(5)]
    first = body_of(client.http.get("/messages?limit=2"))
    assert [m["id"] for m in first["messages"]] == ids[::-1][:2] and first["next"]
    second = body_of(client.http.get(f"/messages?limit=2&next={first['next']}"))
    assert [m["id"] for m in second["messages"]] == ids[::-1][2:4]
    third = body_of(client.http.get(f"/messages?limit=2&next={second['next']}"))
    assert [m["id"] for m in third["messages"]] == ids[:1] and third["next"] is None
    bad = client.http.get("/messages?next=garbage!")
    assert bad.status_code == 400 and body_of(bad)["error"]["code"] == "InvalidNext"


def test_idempotent_retry_sends_once(client):
    headers = {"Idempotency-Key": "order-42"}
    first = post(client, "/sms", {"to": TO, "body": "Order shipped"}, headers)
    again = post(client, "/sms", '{"body": "Order shipped",   "to": "+14255550123"}', headers)
    assert first.status_code == again.status_code == 202
    assert body_of(again) == body_of(first) and again.headers["Location"] == first.headers["Location"]
    assert sent_sms() == [(TO, "Order shipped")]
    reused = post(client, "/sms", {"to": TO, "body": "Different"}, headers)
    assert reused.status_code == 409 and body_of(reused)["error"]["code"] == "IdempotencyKeyReused"
    assert len(sent_sms()) == 1
    # The same key on another route is another operation.
    other = post(client, "/media", {"contentType": "image/png", "size": 10}, headers)
    assert other.status_code == 201


def test_rejected_input_is_not_remembered_under_its_key(client):
    headers = {"Idempotency-Key": "k-1"}
    assert post(client, "/sms", {"to": TO}, headers).status_code == 400
    assert post(client, "/sms", {"to": TO, "body": "fixed"}, headers).status_code == 202


def test_crash_between_the_writes_leaves_a_record(client, monkeypatch):
    def crash(*args, **kwargs):
        raise RuntimeError("the Lambda died here")

    monkeypatch.setattr(store, "transition", crash)
    response = post(client, "/sms", {"to": TO, "body": "hello"})
    assert response.status_code == 500
    error = body_of(response)["error"]
    assert error["code"] == "InternalError" and error["requestId"] and "Traceback" not in response.body.decode()
    monkeypatch.undo()
    listed = body_of(client.http.get("/messages"))["messages"]
    assert [(m["to"], m["status"]) for m in listed] == [(TO, "queued")]
    assert sent_sms() == [(TO, "hello")]


def test_logs_never_hold_a_full_phone_number(client, sns_stub):
    from chalicelib.core.log import JsonFormatter, logger

    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    logger.addHandler(handler)
    try:
        sns_stub.add_client_error("publish", "InvalidParameter",
                                  f"Invalid parameter: PhoneNumber Reason: {TO} is not valid to publish to")
        sns_stub.add_client_error("publish", "AuthorizationError", f"not allowed to publish to {TO}")
        sns_stub.add_response("publish", {"MessageId": "sns-2"})
        assert post(client, "/sms", {"to": TO, "body": "hello"}).status_code == 400
        assert post(client, "/sms", {"to": TO, "body": "again"}).status_code == 502
        assert post(client, "/sms", {"to": TO, "body": "third"}).status_code == 202
    finally:
        logger.removeHandler(handler)
    lines = stream.getvalue().splitlines()
    assert len(lines) == 3
    assert "4255550123" not in stream.getvalue()
    assert all(json.loads(line)["to"] == "+1********23" for line in lines)
