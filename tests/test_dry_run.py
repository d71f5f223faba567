"""``dryRun`` on POST /sms and POST /mms: End User Messaging validates the message all the way
(``DryRun`` on SendTextMessage / SendMediaMessage) and sends and charges nothing. The Stubber
checks every call against botocore's model of pinpoint-sms-voice-v2."""
import pytest
from botocore.stub import ANY, Stubber
from moto.core import DEFAULT_ACCOUNT_ID
from moto.sns.models import sns_backends

from tests.conftest import REGION, body_of, post
from chalicelib.core import aws

TO = "+14255550123"
IDENTITY = "arn:aws:sms-voice:us-east-1:123456789012:phone-number/phone-abc"


def sent_sms():
    return list(sns_backends[DEFAULT_ACCOUNT_ID][REGION].sms_messages.values())


@pytest.fixture
def eum(client, aws_env):
    """An ``sms-voice`` stage, with a Stubber on its End User Messaging client."""
    aws_env(SMS_PROVIDER="sms-voice")
    with Stubber(aws.client("pinpoint-sms-voice-v2")) as stub:
        yield stub
        stub.assert_no_pending_responses()


def test_a_dry_run_sms_is_validated_by_aws_and_recorded_as_validated(client, eum):
    eum.add_response("send_text_message", {"MessageId": "dry-1"}, {
        "DestinationPhoneNumber": TO, "MessageBody": "Your code is 123456", "MessageType": "TRANSACTIONAL",
        "OriginationIdentity": IDENTITY, "ConfigurationSetName": "sms-sender-test", "Context": ANY,
        "DryRun": True})
    response = post(client, "/sms", {"to": TO, "body": "Your code is 123456", "dryRun": True})
    assert response.status_code == 202
    message = body_of(response)
    assert (message["status"], message["dryRun"], message["error"]) == ("validated", True, None)
    assert body_of(client.http.get(f"/messages/{message['id']}")) == message
    assert sent_sms() == []


def test_a_dry_run_mms_is_validated_by_aws(client, sms_voice, put_media):
    url = put_media()
    sms_voice.add_response("send_media_message", {"MessageId": "dry-mms"}, {
        "DestinationPhoneNumber": TO, "OriginationIdentity": IDENTITY, "MediaUrls": [url],
        "ConfigurationSetName": "sms-sender-test", "Context": ANY, "DryRun": True})
    # MMS always goes through End User Messaging, so a dry run works on an SNS stage too.
    response = post(client, "/mms", {"to": TO, "mediaUrl": url, "dryRun": True})
    assert response.status_code == 202
    assert (body_of(response)["status"], body_of(response)["dryRun"]) == ("validated", True)


def test_a_normal_send_says_it_was_not_a_dry_run(client):
    response = post(client, "/sms", {"to": TO, "body": "hi", "dryRun": False})
    assert response.status_code == 202
    assert (body_of(response)["status"], body_of(response)["dryRun"]) == ("sent", False)
    assert body_of(post(client, "/sms", {"to": TO, "body": "no flag"}))["dryRun"] is False
    assert len(sent_sms()) == 2


def test_sns_has_no_dry_run_so_an_sns_stage_refuses_it(client, sns_stub):
    response = post(client, "/sms", {"to": TO, "body": "hi", "dryRun": True})
    assert response.status_code == 400
    error = body_of(response)["error"]
    assert (error["code"], error["field"]) == ("DryRunNotSupported", "dryRun")
    assert "SNS" in error["message"] and "sms-voice" in error["message"]
    assert "messageId" not in error  # refused before anything was recorded
    # sns_stub has nothing queued: a Publish would have failed the test.


@pytest.mark.parametrize("value", ["true", 1, 0, {"x": 1}])
def test_a_dry_run_flag_that_is_not_a_boolean_is_400(client, value):
    response = post(client, "/sms", {"to": TO, "body": "hi", "dryRun": value})
    assert response.status_code == 400
    error = body_of(response)["error"]
    assert (error["code"], error["field"]) == ("InvalidDryRun", "dryRun")
    assert sent_sms() == []


def test_a_dry_run_refused_by_aws_is_the_same_error_as_a_send(client, eum):
    eum.add_client_error("send_text_message", "ConflictException", "opted out",
                         modeled_fields={"Reason": "DESTINATION_PHONE_NUMBER_OPTED_OUT"})
    response = post(client, "/sms", {"to": TO, "body": "hi", "dryRun": True})
    assert response.status_code == 409
    error = body_of(response)["error"]
    assert error["code"] == "RecipientOptedOut"
    record = body_of(client.http.get(f"/messages/{error['messageId']}"))
    assert (record["status"], record["dryRun"]) == ("failed", True)


def test_a_dry_run_under_an_idempotency_key_is_validated_once(client, eum):
    eum.add_response("send_text_message", {"MessageId": "dry-2"})
    headers = {"Idempotency-Key": "check-42"}
    first = post(client, "/sms", {"to": TO, "body": "hi", "dryRun": True}, headers)
    again = post(client, "/sms", {"to": TO, "body": "hi", "dryRun": True}, headers)
    assert first.status_code == again.status_code == 202 and body_of(first) == body_of(again)
    reused = post(client, "/sms", {"to": TO, "body": "hi"}, headers)  # the real send is another body
    assert reused.status_code == 409 and body_of(reused)["error"]["code"] == "IdempotencyKeyReused"


def test_a_receipt_never_settles_a_dry_run(client, eum):
    from chalicelib.core import store

    eum.add_response("send_text_message", {"MessageId": "dry-3"})
    message = body_of(post(client, "/sms", {"to": TO, "body": "hi", "dryRun": True}))
    assert store.settle(message["id"], store.DELIVERED, 10**13, provider_id="dry-3") is None
    assert body_of(client.http.get(f"/messages/{message['id']}"))["status"] == "validated"


def test_a_batch_item_cannot_be_a_dry_run(client):
    response = post(client, "/batches", {"messages": [{"to": TO, "body": "a", "dryRun": True},
                                                      {"to": TO, "body": "b", "dryRun": False}]})
    assert response.status_code == 202
    accepted = body_of(response)
    assert accepted["accepted"] == 1
    [rejected] = accepted["rejected"]
    assert (rejected["index"], rejected["error"]["code"], rejected["error"]["field"]) == (0, "DryRunNotSupported",
                                                                                          "dryRun")
