"""Every provider error a user can meet maps to the contract's status and code, for both APIs."""
import pytest
from botocore.stub import Stubber

from tests.conftest import body_of, post
from chalicelib.core import aws

TO = "+14255550123"

SMS_VOICE_ERRORS = [
    ("ConflictException", {"Reason": "DESTINATION_PHONE_NUMBER_OPTED_OUT"}, 409, "RecipientOptedOut"),
    ("ConflictException", {"Reason": "DESTINATION_COUNTRY_BLOCKED_BY_PROTECT_CONFIGURATION"}, 403, "CountryNotAllowed"),
    ("ConflictException", {"Reason": "RESOURCE_NOT_ACTIVE"}, 502, "ProviderError"),
    ("ValidationException", {"Reason": "DESTINATION_COUNTRY_BLOCKED"}, 403, "CountryNotAllowed"),
    ("ValidationException", {"Reason": "MEDIA_TYPE_NOT_SUPPORTED"}, 422, "MediaTypeNotSupported"),
    ("ValidationException", {"Reason": "MAXIMUM_SIZE_EXCEEDED"}, 422, "MediaTooLarge"),
    ("ValidationException", {"Reason": "SENDER_ID_NOT_REGISTERED"}, 400, "InvalidSenderId"),
    ("ValidationException", {"Reason": "INVALID_IDENTITY_FOR_DESTINATION_COUNTRY"}, 502, "ProviderError"),
    ("ValidationException", {"Reason": "INVALID_PARAMETER"}, 502, "ProviderError"),
    ("ServiceQuotaExceededException", {"Reason": "MONTHLY_SPEND_LIMIT_REACHED_FOR_TEXT"}, 502, "ProviderError"),
    ("AccessDeniedException", {"Reason": "ACCOUNT_DISABLED"}, 502, "ProviderError"),
    ("AccessDeniedException", {}, 502, "ProviderAccessDenied"),
    ("ResourceNotFoundException", {"ResourceType": "phone-number", "ResourceId": "phone-x"}, 502, "ProviderError"),
    ("InternalServerException", {}, 502, "ProviderError"),
]

SNS_ERRORS = [
    ("InvalidParameter", "Invalid parameter: PhoneNumber Reason: +1425 is not valid to publish", 400,
     "InvalidPhoneNumber"),
    ("InvalidParameter", "Phone number is opted out", 409, "RecipientOptedOut"),
    ("InvalidParameter", "Invalid parameter: MessageAttributes", 502, "ProviderError"),
    ("AuthorizationError", "User is not authorized to perform: SNS:Publish", 502, "ProviderAccessDenied"),
    ("KMSAccessDenied", "no", 502, "ProviderError"),
]


@pytest.mark.parametrize("code, fields, status, mapped", SMS_VOICE_ERRORS)
def test_sms_voice_errors_map_to_the_contract(client, aws_env, code, fields, status, mapped):
    aws_env(SMS_PROVIDER="sms-voice")
    with Stubber(aws.client("pinpoint-sms-voice-v2")) as stub:
        stub.add_client_error("send_text_message", code, "refused", modeled_fields=fields or None)
        response = post(client, "/sms", {"to": TO, "body": "hi"})
    assert response.status_code == status
    error = body_of(response)["error"]
    assert error["code"] == mapped
    # The attempt is on record, marked failed with the same error.
    record = body_of(client.http.get(f"/messages/{error['messageId']}"))
    assert record["status"] == "failed" and record["error"]["code"] == mapped


@pytest.mark.parametrize("code, text, status, mapped", SNS_ERRORS)
def test_sns_errors_map_to_the_contract(client, sns_stub, code, text, status, mapped):
    sns_stub.add_client_error("publish", code, text)
    response = post(client, "/sms", {"to": TO, "body": "hi"})
    assert response.status_code == status and body_of(response)["error"]["code"] == mapped


@pytest.mark.parametrize("provider, code", [("sns", "Throttling"), ("sms-voice", "ThrottlingException")])
def test_throttling_is_retried_then_429_with_retry_after(client, aws_env, provider, code):
    aws_env(SMS_PROVIDER=provider)
    service, operation = ("sns", "publish") if provider == "sns" else ("pinpoint-sms-voice-v2", "send_text_message")
    with Stubber(aws.client(service)) as stub:
        # Stubber bypasses botocore's retry loop, so one error here is the error left after the retries.
        stub.add_client_error(operation, code, "Rate exceeded", http_status_code=400)
        response = post(client, "/sms", {"to": TO, "body": "hi"})
    assert response.status_code == 429
    assert response.headers["Retry-After"] == "1"
    assert body_of(response)["error"]["code"] == "Throttled"


def test_clients_use_standard_retries_with_a_bound(aws_env):
    config = aws.client("sns").meta.config
    assert config.retries == {"mode": "standard", "total_max_attempts": 2}


def test_a_throttled_send_can_be_retried_under_the_same_key(client, sns_stub):
    headers = {"Idempotency-Key": "retry-me"}
    sns_stub.add_client_error("publish", "Throttling", "Rate exceeded")
    sns_stub.add_response("publish", {"MessageId": "sns-9"})
    assert post(client, "/sms", {"to": TO, "body": "hi"}, headers).status_code == 429
    second = post(client, "/sms", {"to": TO, "body": "hi"}, headers)
    assert second.status_code == 202 and body_of(second)["providerMessageId"] == "sns-9"


def test_a_refused_send_is_replayed_not_resent(client, sns_stub):
    headers = {"Idempotency-Key": "opted-out"}
    sns_stub.add_client_error("publish", "InvalidParameter", "Phone number is opted out")
    first = post(client, "/sms", {"to": TO, "body": "hi"}, headers)
    again = post(client, "/sms", {"to": TO, "body": "hi"}, headers)
    assert first.status_code == again.status_code == 409
    assert body_of(again) == body_of(first)


# ConflictException reasons that are the caller's to answer (botocore's model lists them in
# ConflictExceptionReason). DESTINATION_PHONE_NUMBER_NOT_VERIFIED: the account is in the SMS
# sandbox, which sends only to verified destination numbers.
CALLERS_CONFLICTS = [
    ("DESTINATION_PHONE_NUMBER_NOT_VERIFIED", 403, "RecipientNotVerified", "to", "sandbox"),
    ("MESSAGE_TYPE_MISMATCH", 400, "MessageTypeMismatch", "type", "type"),
    ("NUMBER_CAPABILITIES_MISMATCH", 422, "ChannelNotSupported", None, "capabilities"),
]


@pytest.mark.parametrize("channel", ["sms", "mms"])
@pytest.mark.parametrize("reason, status, mapped, field, says", CALLERS_CONFLICTS)
def test_conflicts_the_caller_can_answer_are_4xx(client, aws_env, put_media, channel, reason, status, mapped,
                                                 field, says):
    aws_env(SMS_PROVIDER="sms-voice")
    operation = "send_text_message" if channel == "sms" else "send_media_message"
    body = {"to": TO, "body": "hi"} if channel == "sms" else {"to": TO, "mediaUrl": put_media()}
    with Stubber(aws.client("pinpoint-sms-voice-v2")) as stub:
        stub.add_client_error(operation, "ConflictException", "refused", http_status_code=400,
                              modeled_fields={"Reason": reason, "ResourceType": "phone-number",
                                              "ResourceId": "phone-abc"})
        response = post(client, f"/{channel}", body)
    assert response.status_code == status
    error = body_of(response)["error"]
    assert (error["code"], error.get("field")) == (mapped, field)
    assert says in error["message"]
    record = body_of(client.http.get(f"/messages/{error['messageId']}"))
    assert record["status"] == "failed" and record["error"]["code"] == mapped


def test_the_sandbox_error_says_how_to_verify(client, aws_env):
    aws_env(SMS_PROVIDER="sms-voice")
    with Stubber(aws.client("pinpoint-sms-voice-v2")) as stub:
        stub.add_client_error("send_text_message", "ConflictException", "not verified",
                              modeled_fields={"Reason": "DESTINATION_PHONE_NUMBER_NOT_VERIFIED"})
        message = body_of(post(client, "/sms", {"to": TO, "body": "hi"}))["error"]["message"]
    assert "CreateVerifiedDestinationNumber" in message and "VerifyDestinationNumber" in message
    assert "production access" in message and TO not in message


@pytest.mark.parametrize("reason", ["ACCOUNT_DISABLED", "INSUFFICIENT_ACCOUNT_REPUTATION"])
def test_an_account_end_user_messaging_stopped_is_not_called_an_iam_denial(reason):
    from botocore.exceptions import ClientError

    from chalicelib.core.errors import from_aws

    err = from_aws(ClientError({"Error": {"Code": "AccessDeniedException", "Message": "denied"}, "Reason": reason},
                               "SendTextMessage"))
    assert err.code == "ProviderError" and reason in err.message and "Support" in err.message
