"""Sender ids: a request can never choose an identity the stack did not grant.

On an ``sms-voice`` stage, SendTextMessage goes from the stage's ORIGINATION_IDENTITY, or from the
stage's SENDER_ID where the destination country has sender ids (IAM grants
``sender-id/<id>/<country>`` and nothing else). The US, Canada and China, among others, have none
(AWS End User Messaging SMS User Guide, "Sender IDs"; the country list is chalicelib/countries.py).
The Stubber checks every call against botocore's model of pinpoint-sms-voice-v2.
"""
import pytest
from botocore.stub import ANY, Stubber

from tests.conftest import body_of, post
from chalicelib.core import aws
from chalicelib.sending import countries

US, GB, CA = "+14255550123", "+442079460958", "+16135550123"
IDENTITY = "arn:aws:sms-voice:us-east-1:123456789012:phone-number/phone-abc"


def test_the_countries_these_tests_rely_on():
    assert countries.sender_id_supported("GB")
    assert not countries.sender_id_supported("US") and not countries.sender_id_supported("CA")


@pytest.fixture
def eum(client, aws_env):
    """An ``sms-voice`` stage with the sender id ACME, and a Stubber on its client."""
    aws_env(SMS_PROVIDER="sms-voice", SENDER_ID="ACME")
    with Stubber(aws.client("pinpoint-sms-voice-v2")) as stub:
        yield stub
        stub.assert_no_pending_responses()


def expect_text(stub, to, identity):
    stub.add_response("send_text_message", {"MessageId": "eum-1"}, {
        "DestinationPhoneNumber": to, "MessageBody": "hi", "MessageType": "TRANSACTIONAL",
        "OriginationIdentity": identity, "ConfigurationSetName": "sms-sender-test", "Context": ANY})


@pytest.mark.parametrize("to, identity", [(GB, "ACME"), (US, IDENTITY), (CA, IDENTITY)])
def test_the_stage_sender_id_goes_only_where_sender_ids_exist(client, eum, to, identity):
    expect_text(eum, to, identity)
    assert post(client, "/sms", {"to": to, "body": "hi"}).status_code == 202


def test_naming_the_stages_own_sender_id_is_the_same_send(client, eum):
    expect_text(eum, GB, "ACME")
    assert post(client, "/sms", {"to": GB, "body": "hi", "senderId": "ACME"}).status_code == 202


@pytest.mark.parametrize("stage_sender_id, says", [("ACME", "'ACME'"), (None, "no sender id")])
def test_a_sender_id_the_stage_was_not_granted_is_400(client, aws_env, stage_sender_id, says):
    aws_env(SMS_PROVIDER="sms-voice", SENDER_ID=stage_sender_id)
    with Stubber(aws.client("pinpoint-sms-voice-v2")):  # nothing queued: any call fails the test
        response = post(client, "/sms", {"to": GB, "body": "hi", "senderId": "OTHERBRAND"})
    assert response.status_code == 400
    error = body_of(response)["error"]
    assert (error["code"], error["field"]) == ("InvalidSenderId", "senderId")
    assert says in error["message"] and "messageId" not in error


@pytest.mark.parametrize("provider", ["sns", "sms-voice"])
@pytest.mark.parametrize("to", [US, CA])
def test_a_sender_id_for_a_country_without_sender_ids_is_400(client, aws_env, provider, to):
    aws_env(SMS_PROVIDER=provider, SENDER_ID="ACME")
    with Stubber(aws.client("sns")), Stubber(aws.client("pinpoint-sms-voice-v2")):
        response = post(client, "/sms", {"to": to, "body": "hi", "senderId": "ACME"})
    assert response.status_code == 400
    error = body_of(response)["error"]
    assert (error["code"], error["field"]) == ("SenderIdNotSupported", "senderId")
    assert ("US" if to == US else "CA") in error["message"]


@pytest.mark.parametrize("to, request_sender_id, sent_sender_id", [
    (GB, None, "ACME"),        # the stage's default
    (GB, "BRAND", "BRAND"),    # SNS takes any valid sender id where the country has them
    (US, None, None),          # the default does not apply: SNS's own origination
])
def test_sns_sender_ids(client, aws_env, to, request_sender_id, sent_sender_id):
    aws_env(SENDER_ID="ACME")
    attributes = {"AWS.SNS.SMS.SMSType": {"DataType": "String", "StringValue": "Transactional"}}
    if sent_sender_id:
        attributes["AWS.SNS.SMS.SenderID"] = {"DataType": "String", "StringValue": sent_sender_id}
    with Stubber(aws.client("sns")) as stub:
        stub.add_response("publish", {"MessageId": "sns-1"},
                          {"PhoneNumber": to, "Message": "hi", "MessageAttributes": attributes})
        body = {"to": to, "body": "hi", **({"senderId": request_sender_id} if request_sender_id else {})}
        assert post(client, "/sms", body).status_code == 202
        stub.assert_no_pending_responses()


def test_an_mms_never_goes_from_a_sender_id(client, eum, put_media):
    url = put_media()
    # An MMS always goes from the stage's identity: a senderId is a field POST /mms does not define, refused by
    # name before anything is sent (the eum Stubber holds no response: no SendMediaMessage was made).
    refused = post(client, "/mms", {"to": US, "mediaUrl": url, "senderId": "ACME"})
    assert refused.status_code == 400
    assert body_of(refused)["error"]["field"] == "senderId"
    eum.add_response("send_media_message", {"MessageId": "mms-1"}, {
        "DestinationPhoneNumber": US, "OriginationIdentity": IDENTITY, "MediaUrls": [url],
        "ConfigurationSetName": "sms-sender-test", "Context": ANY})
    assert post(client, "/mms", {"to": US, "mediaUrl": url}).status_code == 202


def test_a_batch_item_gets_the_same_sender_id_errors(client, aws_env):
    aws_env(SMS_PROVIDER="sms-voice", SENDER_ID="ACME")
    response = post(client, "/batches", {"messages": [
        {"to": US, "body": "a", "senderId": "ACME"}, {"to": GB, "body": "b", "senderId": "OTHER"},
        {"to": GB, "body": "c"}]})
    accepted = body_of(response)
    assert accepted["accepted"] == 1
    assert [(r["index"], r["error"]["code"]) for r in accepted["rejected"]] == [
        (0, "SenderIdNotSupported"), (1, "InvalidSenderId")]


def test_a_stored_sender_id_the_stage_no_longer_has_never_reaches_aws(aws_env):
    """A batch queued before the stage's sender id changed still goes from a granted identity."""
    from chalicelib.sending import providers
    from chalicelib.core.settings import Settings

    stage = Settings(media_bucket="b", messages_table="m", idempotency_table="i", sms_provider="sms-voice",
                     origination_identity=IDENTITY, sender_id="NEWBRAND")
    assert providers.text_identity(stage, "OLDBRAND") == IDENTITY
    assert providers.text_identity(stage, "NEWBRAND") == "NEWBRAND"
    assert providers.text_identity(stage, None) == IDENTITY
