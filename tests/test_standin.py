"""The End User Messaging stand-in (devstack/sms_voice/) and the local receipts
(devstack/receipts.py) behave as AWS documents, on the points the app relies on.

- SendTextMessage's OriginationIdentity: "PhoneNumber, PhoneNumberId, PhoneNumberArn, SenderId,
  SenderIdArn, PoolId, or PoolArn" (botocore's model of pinpoint-sms-voice-v2).
- DryRun: "the message is checked and validated, but isn't sent to the end recipient. You are not
  charged for using DryRun." (same model).
- Context: "If you do, that data is logged to the event destination." (same model); the event's
  field is ``context`` (AWS End User Messaging SMS User Guide, event format).
- A failing asynchronous Lambda invocation is retried twice, then goes to the on-failure
  destination (AWS Lambda Developer Guide, asynchronous invocation).
"""
import pytest

from devstack.receipts import Receipts
from devstack.sms_voice.model import ApiError
from devstack.sms_voice.standin import SmsVoiceStandIn

from .conftest import NullLogs
from .localhttp import wait_for

US, GB = "+14255550123", "+442079460958"


@pytest.fixture
def standin():
    sent = []
    media = {("bucket", "cat.png"): ("image/png", 100)}
    fake = SmsVoiceStandIn(region="us-east-1", account="123456789012",
                           record_send=lambda *args, **kwargs: sent.append((args, kwargs)),
                           read_media=lambda bucket, key: media.get((bucket, key)))
    fake.sent = sent
    return fake


def text(standin, identity, to=US, **extra):
    return standin.handle("SendTextMessage", {"DestinationPhoneNumber": to, "MessageBody": "hi",
                                              "OriginationIdentity": identity, **extra})


def test_every_origination_identity_form_the_api_takes(standin):
    number = standin.add_phone_number("+12065550100")
    pool = standin.add_pool([number["PhoneNumberId"]])
    sender = standin.add_sender_id("ACME", "GB")
    for identity in (number["PhoneNumber"], number["PhoneNumberId"], number["PhoneNumberArn"],
                     pool["PoolId"], pool["PoolArn"]):
        assert text(standin, identity)["MessageId"]
    for identity in ("ACME", sender["SenderIdArn"]):
        assert text(standin, identity, to=GB)["MessageId"]
    assert sender["SenderIdArn"] == "arn:aws:sms-voice:us-east-1:123456789012:sender-id/ACME/GB"
    assert len(standin.sent) == 7


@pytest.mark.parametrize("identity, to, kind", [
    ("phone-nope", US, "phone-number"), ("pool-nope", US, "pool"),
    ("ACME", US, "sender-id"),  # a sender id exists per country: ACME is GB's only
    ("arn:aws:sms-voice:us-east-1:123456789012:sender-id/ACME/FR", GB, "sender-id"),
])
def test_an_identity_that_does_not_exist_is_resource_not_found(standin, identity, to, kind):
    standin.add_sender_id("ACME", "GB")
    with pytest.raises(ApiError) as caught:
        text(standin, identity, to=to)
    assert (caught.value.code, caught.value.fields["ResourceType"]) == ("ResourceNotFoundException", kind)
    assert standin.sent == []


def test_a_dry_run_is_validated_answers_a_message_id_and_sends_nothing(standin):
    number = standin.add_phone_number("+12065550100")
    assert text(standin, number["PhoneNumberArn"], DryRun=True)["MessageId"]
    assert standin.handle("SendMediaMessage", {
        "DestinationPhoneNumber": US, "OriginationIdentity": number["PhoneNumberId"],
        "MediaUrls": ["s3://bucket/cat.png"], "DryRun": True})["MessageId"]
    with pytest.raises(ApiError) as caught:  # validated all the way, as a send would be
        standin.handle("SendMediaMessage", {"DestinationPhoneNumber": US, "OriginationIdentity": number["PhoneNumberId"],
                                            "MediaUrls": ["s3://bucket/missing.png"], "DryRun": True})
    assert caught.value.fields["Reason"] == "RESOURCE_NOT_ACCESSIBLE"
    with pytest.raises(ApiError):
        text(standin, "phone-nope", DryRun=True)
    assert standin.sent == [] and standin.dry_runs == 2


def test_the_context_goes_with_the_send(standin):
    number = standin.add_phone_number("+12065550100")
    text(standin, number["PhoneNumberId"], Context={"messageId": "our-1"})
    [(args, kwargs)] = standin.sent
    assert args[0] == "sms" and kwargs == {"context": {"messageId": "our-1"}}


def test_mms_from_a_number_without_mms_is_a_capabilities_conflict(standin):
    number = standin.add_phone_number("+12065550100", capabilities=("SMS",))
    with pytest.raises(ApiError) as caught:
        standin.handle("SendMediaMessage", {"DestinationPhoneNumber": US, "OriginationIdentity": number["PhoneNumberId"],
                                            "MediaUrls": ["s3://bucket/cat.png"]})
    assert (caught.value.code, caught.value.fields["Reason"]) == ("ConflictException", "NUMBER_CAPABILITIES_MISMATCH")


def test_request_sender_id_registers_one_per_country(standin):
    made = standin.handle("RequestSenderId", {"SenderId": "ACME", "IsoCountryCode": "GB"})
    assert made["SenderIdArn"].endswith(":sender-id/ACME/GB")
    with pytest.raises(ApiError) as caught:
        standin.handle("RequestSenderId", {"SenderId": "ACME", "IsoCountryCode": "GB"})
    assert caught.value.code == "ConflictException"
    assert [s["IsoCountryCode"] for s in standin.handle("DescribeSenderIds", {})["SenderIds"]] == ["GB"]


class _Emulator:
    listeners: list = []


def test_a_failing_ingest_is_retried_twice_then_kept_aside():
    import time

    calls = []

    def ingest(event):
        calls.append(time.monotonic())
        raise RuntimeError("provider id not found yet")

    receipts = Receipts(emulator=_Emulator(), logs=NullLogs(), ingest=ingest, sns_groups=("s", "s/Failure"),
                        events_group="e", origination="+12065550100", delay=0.0, retry_delays=(0.1, 0.2)).start()
    try:
        receipts._on_send({"channel": "sms", "to": US, "body": "hi", "providerMessageId": "p"}, "sns", None)
        assert wait_for(lambda: receipts.failed, every=0.05)
    finally:
        receipts.stop()
    assert len(calls) == 3 and len(receipts.failed) == 1
    # Each retry no sooner than its delay (lower bounds: a busy machine only adds).
    assert calls[1] - calls[0] >= 0.1 and calls[2] - calls[1] >= 0.2
