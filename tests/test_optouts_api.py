"""Opt-outs (issue 14): the /opt-outs routes through the Chalice test client under moto, every End User
Messaging and SNS call checked by a Stubber against botocore's service models, the 30-day rule, and
sends that never reach the provider for an opted-out recipient (single, batch, and a STOP that lands
between POST /batches and the worker's send)."""
from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from pathlib import Path

import boto3
import botocore.session
import pytest
from botocore.stub import ANY, Stubber
from moto.core import DEFAULT_ACCOUNT_ID
from moto.sns.models import sns_backends

from tests.conftest import REGION, body_of, post
from chalicelib.core import aws
from chalicelib.replies import optouts
from chalicelib.core import schema
from chalicelib.core import settings as settings_module
from chalicelib.core import store
from chalicelib.sending import worker
from chalicelib.core.settings import get_settings

RULES = json.loads((Path(__file__).parent / "aws_docs" / "sms-opt-out-rules.json").read_text())
LIST = "sms-sender-test-optouts"
NUMBER = "+14255550123"
PATH = f"/opt-outs/%2B{NUMBER[1:]}"
IDENTITY = "arn:aws:sms-voice:us-east-1:123456789012:phone-number/phone-abc"


@pytest.fixture
def eum(aws_env):
    """An End User Messaging stage with two-way on: its identity's opt-out list is LIST."""
    aws_env(SMS_PROVIDER="sms-voice", OPT_OUT_LIST_NAME=LIST, INBOUND_ENABLED="1")
    with Stubber(aws.client("pinpoint-sms-voice-v2")) as stub:
        yield stub
        stub.assert_no_pending_responses()


@pytest.fixture
def sns(aws_env):
    """An SNS stage without two-way: the account's list, through a Stubber on the app's SNS client."""
    with Stubber(aws.client("sns")) as stub:
        yield stub
        stub.assert_no_pending_responses()


def sms_sent() -> list:
    return list(sns_backends[DEFAULT_ACCOUNT_ID][REGION].sms_messages.values())


def error_of(response) -> tuple[int, str]:
    return response.status_code, body_of(response)["error"]["code"]


def put_ours(number: str, at: str = "2026-11-01T00:00:00.000Z", source: str = "api") -> None:
    """An entry on the app's list, written as the app writes it."""
    boto3.client("dynamodb", region_name=REGION).put_item(TableName=get_settings().webhooks_table, Item={
        "pk": {"S": schema.OPT_OUTS}, "sk": {"S": number}, "number": {"S": number}, "optedOutAt": {"S": at},
        "source": {"S": source}})


# -- what AWS documents -------------------------------------------------------------------------------

def test_the_rules_come_from_aws():
    keywords = next(s for s in RULES["sources"] if s["url"].endswith("keywords-required.html"))["keywords"]
    assert settings_module.REQUIRED_OPT_OUT_KEYWORDS == frozenset(keywords)
    session = botocore.session.get_session()
    sms_voice, sns_model = session.get_service_model("pinpoint-sms-voice-v2"), session.get_service_model("sns")
    assert "once every 30 days" in sms_voice.operation_model("DeleteOptedOutNumber").documentation
    assert "once every 30 days" in sns_model.operation_model("OptInPhoneNumber").documentation
    assert optouts.OPT_IN_INTERVAL == timedelta(days=30)
    assert "PHONE_NUMBER_CANNOT_BE_OPTED_IN" in sms_voice.shape_for("ValidationExceptionReason").enum
    assert "DESTINATION_PHONE_NUMBER_OPTED_OUT" in sms_voice.shape_for("ConflictExceptionReason").enum


# -- PUT, GET, DELETE on an End User Messaging stage -----------------------------------------------

def test_put_adds_to_aws_list_and_ours_then_get_and_list_show_it(client, eum):
    stamp = datetime(2026, 11, 26, 9, 30, tzinfo=timezone.utc)
    eum.add_response("put_opted_out_number", {"OptOutListName": LIST, "OptedOutNumber": NUMBER,
                                              "OptedOutTimestamp": stamp, "EndUserOptedOut": False},
                     {"OptOutListName": LIST, "OptedOutNumber": NUMBER})
    created = client.http.put(PATH)
    entry = {"number": NUMBER, "optedOutAt": "2026-11-26T09:30:00.000Z", "source": "api"}
    assert (created.status_code, body_of(created)) == (201, entry)
    again = client.http.put(f"/opt-outs/{NUMBER}")  # a literal + works too; no second AWS call
    assert (again.status_code, body_of(again)) == (200, entry)
    assert body_of(client.http.get(PATH)) == entry
    eum.add_response("describe_opted_out_numbers", {"OptedOutNumbers": [
        {"OptedOutNumber": NUMBER, "OptedOutTimestamp": stamp, "EndUserOptedOut": False}]},
        {"OptOutListName": LIST, "MaxResults": 19})
    assert body_of(client.http.get("/opt-outs")) == {"optOuts": [entry], "next": None}  # not twice


def test_get_finds_a_recipients_opt_out_that_only_aws_has(client, eum):
    stamp = datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone.utc)
    eum.add_response("describe_opted_out_numbers", {"OptOutListName": LIST, "OptedOutNumbers": [
        {"OptedOutNumber": NUMBER, "OptedOutTimestamp": stamp, "EndUserOptedOut": True}]},
        {"OptOutListName": LIST, "OptedOutNumbers": [NUMBER]})
    assert body_of(client.http.get(PATH)) == {"number": NUMBER, "optedOutAt": "2026-01-02T03:04:05.000Z",
                                              "source": "recipient"}
    eum.add_response("describe_opted_out_numbers", {"OptedOutNumbers": []},
                     {"OptOutListName": LIST, "OptedOutNumbers": [NUMBER]})
    assert error_of(client.http.get(PATH)) == (404, "OptOutNotFound")
    eum.add_client_error("describe_opted_out_numbers", "ResourceNotFoundException", "not there",
                         response_meta={}, modeled_fields={"ResourceType": "opted-out-number", "ResourceId": NUMBER},
                         expected_params={"OptOutListName": LIST, "OptedOutNumbers": [NUMBER]})
    assert error_of(client.http.get(PATH)) == (404, "OptOutNotFound")


def test_delete_opts_in_once_every_30_days(client, eum):
    put_ours(NUMBER)
    eum.add_response("delete_opted_out_number", {"OptOutListName": LIST, "OptedOutNumber": NUMBER},
                     {"OptOutListName": LIST, "OptedOutNumber": NUMBER})
    deleted = client.http.delete(PATH)
    assert deleted.status_code == 204 and deleted.body == b""
    eum.add_response("describe_opted_out_numbers", {"OptedOutNumbers": []},
                     {"OptOutListName": LIST, "OptedOutNumbers": [NUMBER]})
    assert error_of(client.http.get(PATH)) == (404, "OptOutNotFound")

    put_ours(NUMBER, source="recipient")  # opted out again, and opted in again the same month: refused
    before = datetime.now(timezone.utc)
    refused = client.http.delete(PATH)  # no AWS call: the Stubber has none queued
    assert error_of(refused) == (409, "OptInTooSoon")
    message = body_of(refused)["error"]["message"]
    earliest = datetime.fromisoformat(message.rsplit(" at ", 1)[1].split(" ")[0].replace("Z", "+00:00"))
    assert before + timedelta(days=30) - timedelta(minutes=1) <= earliest <= before + timedelta(days=30, minutes=1)
    assert 29 * 86400 < int(refused.headers["Retry-After"]) <= 30 * 86400
    assert client.http.get(PATH).status_code == 200  # still opted out


def test_an_opt_in_aws_refuses_is_409_and_can_be_tried_again(client, eum):
    put_ours(NUMBER)
    eum.add_client_error("delete_opted_out_number", "ValidationException", "once every 30 days",
                         modeled_fields={"Reason": "PHONE_NUMBER_CANNOT_BE_OPTED_IN"},
                         expected_params={"OptOutListName": LIST, "OptedOutNumber": NUMBER})
    assert error_of(client.http.delete(PATH)) == (409, "OptInTooSoon")
    assert client.http.get(PATH).status_code == 200
    # Refused by AWS, so nothing was opted in: the next try goes to AWS again (not the app's 30 days).
    eum.add_response("delete_opted_out_number", {}, {"OptOutListName": LIST, "OptedOutNumber": NUMBER})
    assert client.http.delete(PATH).status_code == 204


def test_delete_of_a_number_no_list_has_is_404(client, eum):
    eum.add_client_error("delete_opted_out_number", "ResourceNotFoundException", "no such number",
                         modeled_fields={"ResourceType": "opted-out-number", "ResourceId": NUMBER},
                         expected_params={"OptOutListName": LIST, "OptedOutNumber": NUMBER})
    assert error_of(client.http.delete(PATH)) == (404, "OptOutNotFound")
    # ... and that spent no opt-in: a real one right after goes through.
    put_ours(NUMBER)
    eum.add_response("delete_opted_out_number", {}, {"OptOutListName": LIST, "OptedOutNumber": NUMBER})
    assert client.http.delete(PATH).status_code == 204


def test_a_missing_opt_out_list_is_a_502_not_a_404(client, eum):
    put_ours(NUMBER)
    eum.add_client_error("delete_opted_out_number", "ResourceNotFoundException", "no such list",
                         modeled_fields={"ResourceType": "opt-out-list", "ResourceId": LIST},
                         expected_params={"OptOutListName": LIST, "OptedOutNumber": NUMBER})
    assert error_of(client.http.delete(PATH)) == (502, "ProviderError")
    assert client.http.get(PATH).status_code == 200


def test_the_list_pages_ours_then_aws_entries_we_lack(client, eum):
    ours = [f"+1425555{n:04d}" for n in range(100, 105)]
    for number in ours:
        put_ours(number)
    aws_only = [f"+1425555{n:04d}" for n in range(200, 204)]

    def listed(*numbers):
        return [{"OptedOutNumber": n, "OptedOutTimestamp": datetime(2026, 1, 1, tzinfo=timezone.utc),
                 "EndUserOptedOut": True} for n in numbers]

    # Page 1: three of ours. Page 2: the other two, then AWS's list for the one place left: its first
    # page holds only one of ours (not listed twice), so the next page of it is read.
    eum.add_response("describe_opted_out_numbers", {"OptedOutNumbers": listed(ours[0]), "NextToken": "p2"},
                     {"OptOutListName": LIST, "MaxResults": 1})
    eum.add_response("describe_opted_out_numbers", {"OptedOutNumbers": listed(aws_only[0]), "NextToken": "p3"},
                     {"OptOutListName": LIST, "MaxResults": 1, "NextToken": "p2"})
    eum.add_response("describe_opted_out_numbers", {"OptedOutNumbers": listed(*aws_only[1:])},
                     {"OptOutListName": LIST, "MaxResults": 3, "NextToken": "p3"})
    pages, token = [], None
    while True:
        page = body_of(client.http.get("/opt-outs?limit=3" + (f"&next={token}" if token else "")))
        pages.append([e["number"] for e in page["optOuts"]])
        token = page["next"]
        if token is None:
            break
    assert pages == [ours[:3], [*ours[3:], aws_only[0]], aws_only[1:]]


# -- an SNS stage: the account's list, and the app's own for numbers SNS cannot add -----------------

def test_an_sns_stage_puts_numbers_on_its_own_list_and_refuses_sends_to_them(client, sns):
    created = client.http.put(PATH)
    assert created.status_code == 201 and body_of(created)["source"] == "api"  # no SNS call: SNS has none
    response = post(client, "/sms", {"to": NUMBER, "body": "hello"})
    assert error_of(response) == (409, "RecipientOptedOut")
    assert "messageId" not in body_of(response)["error"] and sms_sent() == []
    assert body_of(client.http.get("/messages")) == {"messages": [], "next": None}  # no record either


def test_an_sns_stage_reads_and_opts_in_the_accounts_list(client, sns):
    sns.add_response("check_if_phone_number_is_opted_out", {"isOptedOut": True}, {"phoneNumber": NUMBER})
    assert body_of(client.http.get(PATH)) == {"number": NUMBER, "optedOutAt": None, "source": "recipient"}
    sns.add_response("check_if_phone_number_is_opted_out", {"isOptedOut": True}, {"phoneNumber": NUMBER})
    sns.add_response("opt_in_phone_number", {}, {"phoneNumber": NUMBER})
    assert client.http.delete(PATH).status_code == 204
    sns.add_response("check_if_phone_number_is_opted_out", {"isOptedOut": False}, {"phoneNumber": NUMBER})
    assert error_of(client.http.get(PATH)) == (404, "OptOutNotFound")


def test_sns_refusing_an_opt_in_is_409(client, sns):
    other = "+14255550124"
    sns.add_response("check_if_phone_number_is_opted_out", {"isOptedOut": True}, {"phoneNumber": other})
    sns.add_client_error("opt_in_phone_number", "InvalidParameter", "Invalid parameter: PhoneNumber",
                         expected_params={"phoneNumber": other})
    assert error_of(client.http.delete(f"/opt-outs/%2B{other[1:]}")) == (409, "OptInTooSoon")


def test_the_sns_list_pages_part_way_through_an_sns_page(client, sns):
    put_ours("+14255550100")
    first = [f"+1425555{n:04d}" for n in range(300, 305)] + ["+14255550100"]  # ours is not listed twice
    sns.add_response("list_phone_numbers_opted_out", {"phoneNumbers": first, "nextToken": "sns-2"}, {})
    sns.add_response("list_phone_numbers_opted_out", {"phoneNumbers": first, "nextToken": "sns-2"}, {})
    sns.add_response("list_phone_numbers_opted_out", {"phoneNumbers": ["+14255550400"]}, {"nextToken": "sns-2"})
    seen, token = [], None
    while True:
        page = body_of(client.http.get("/opt-outs?limit=4" + (f"&next={token}" if token else "")))
        seen += [e["number"] for e in page["optOuts"]]
        token = page["next"]
        if token is None:
            break
    assert seen == ["+14255550100", *first[:5], "+14255550400"]


# -- bad input ------------------------------------------------------------------------------------

@pytest.mark.parametrize("number", ["14255550123", "%2B1", "%2B1425555012", "abc", "%2B1425%0A5550123",
                                    "%2B" + "1" * 70, "%2Bfoo"])
def test_a_number_that_is_not_e164_is_400(client, aws_env, number):
    for method in ("GET", "PUT", "DELETE"):
        response = client.http.request(method, f"/opt-outs/{number}", headers={}, body=b"")
        assert error_of(response) == (400, "InvalidPhoneNumber") and body_of(response)["error"]["field"] == "number"


@pytest.mark.parametrize("token", ["x", "e30", "eyJwaGFzZSI6ICJldW0iLCAiYWZ0ZXIiOiBudWxsLCAic2tpcCI6IDB9"])
def test_a_next_token_the_api_did_not_return_is_400(client, aws_env, token):
    # the last one names the End User Messaging list, which this stage does not have
    assert error_of(client.http.get(f"/opt-outs?next={token}")) == (400, "InvalidNext")


def test_without_the_settings_table_the_routes_are_503(client, aws_env):
    aws_env(WEBHOOKS_TABLE=None)
    for method in ("GET", "PUT", "DELETE"):
        assert error_of(client.http.request(method, PATH, headers={}, body=b"")) == (503, "OptOutsNotConfigured")
    assert error_of(client.http.get("/opt-outs")) == (503, "OptOutsNotConfigured")


# -- sends ----------------------------------------------------------------------------------------

def test_a_send_to_an_opted_out_number_costs_one_getitem_and_no_provider_call(client, eum, put_media):
    put_ours(NUMBER)
    calls = []
    aws.client("dynamodb").meta.events.register("before-call.dynamodb", lambda model, **_: calls.append(model.name))
    response = post(client, "/sms", {"to": NUMBER, "body": "hello"})
    assert error_of(response) == (409, "RecipientOptedOut") and calls == ["GetItem"]
    assert error_of(post(client, "/mms", {"to": NUMBER, "mediaUrl": put_media()})) == (409, "RecipientOptedOut")
    assert error_of(post(client, "/sms", {"to": NUMBER, "body": "x", "dryRun": True})) == (409, "RecipientOptedOut")


def test_a_send_the_provider_refuses_as_opted_out_is_409_and_the_next_one_never_reaches_it(client, eum):
    eum.add_client_error("send_text_message", "ConflictException", "opted out",
                         modeled_fields={"Reason": "DESTINATION_PHONE_NUMBER_OPTED_OUT",
                                         "ResourceType": "opted-out-number", "ResourceId": NUMBER},
                         expected_params={"DestinationPhoneNumber": NUMBER, "MessageBody": "hello",
                                          "MessageType": "TRANSACTIONAL", "OriginationIdentity": IDENTITY,
                                          "ConfigurationSetName": "sms-sender-test", "Context": ANY})
    first = post(client, "/sms", {"to": NUMBER, "body": "hello"})
    assert error_of(first) == (409, "RecipientOptedOut") and body_of(first)["error"]["messageId"]
    assert body_of(client.http.get(PATH))["source"] == "recipient"  # learned: on the app's list now
    second = post(client, "/sms", {"to": NUMBER, "body": "hello"})  # the Stubber has nothing more queued
    assert error_of(second) == (409, "RecipientOptedOut") and "messageId" not in body_of(second)["error"]


def test_a_batch_rejects_opted_out_items_and_the_worker_refuses_a_late_stop(client, eum):
    put_ours("+14255550101")
    batch = body_of(post(client, "/batches", {"messages": [
        {"to": "+14255550100", "body": "one"}, {"to": "+14255550101", "body": "two"},
        {"to": "+14255550102", "body": "three"}]}))
    assert batch["accepted"] == 2
    assert [(r["index"], r["error"]["code"]) for r in batch["rejected"]] == [(1, "RecipientOptedOut")]

    put_ours("+14255550102")  # a STOP lands between POST /batches and the send
    eum.add_response("send_text_message", {"MessageId": "eum-1"}, {
        "DestinationPhoneNumber": "+14255550100", "MessageBody": "one", "MessageType": "TRANSACTIONAL",
        "OriginationIdentity": IDENTITY, "ConfigurationSetName": "sms-sender-test", "Context": ANY})
    got = boto3.client("sqs", region_name=REGION).receive_message(
        QueueUrl=get_settings().batch_queue_url, MaxNumberOfMessages=10)["Messages"]
    event = {"Records": [{"messageId": m["MessageId"], "receiptHandle": m["ReceiptHandle"], "body": m["Body"],
                          "attributes": {"ApproximateReceiveCount": "1"}} for m in got]}
    assert worker.handle(event, settings=get_settings(), pacer=worker.TokenBucket(1000)) == {"batchItemFailures": []}
    eum.assert_no_pending_responses()  # exactly one send went to the provider
    by_to = {m["to"]: m for m in body_of(client.http.get("/messages"))["messages"]}
    assert by_to["+14255550100"]["status"] == "sent"
    late = by_to["+14255550102"]
    assert (late["status"], late["error"]["code"], late["providerMessageId"]) == ("failed", "RecipientOptedOut", None)
    progress = body_of(client.http.get(f"/batches/{batch['id']}"))
    assert (progress["sent"], progress["failed"], progress["rejected"]) == (1, 1, 1)


def test_opting_back_in_lets_sends_through(client, eum):
    put_ours(NUMBER)
    eum.add_response("delete_opted_out_number", {}, {"OptOutListName": LIST, "OptedOutNumber": NUMBER})
    assert client.http.delete(PATH).status_code == 204
    eum.add_response("send_text_message", {"MessageId": "eum-2"}, {
        "DestinationPhoneNumber": NUMBER, "MessageBody": "welcome back", "MessageType": "TRANSACTIONAL",
        "OriginationIdentity": IDENTITY, "ConfigurationSetName": "sms-sender-test", "Context": ANY})
    assert post(client, "/sms", {"to": NUMBER, "body": "welcome back"}).status_code == 202


def test_the_opt_in_history_expires_after_the_30_days_it_is_needed(client, eum):
    put_ours(NUMBER)
    eum.add_response("delete_opted_out_number", {}, {"OptOutListName": LIST, "OptedOutNumber": NUMBER})
    client.http.delete(PATH)
    item = boto3.client("dynamodb", region_name=REGION).get_item(TableName=get_settings().webhooks_table, Key={
        "pk": {"S": schema.OPT_INS}, "sk": {"S": NUMBER}})["Item"]
    expires = datetime.fromtimestamp(int(item[schema.WEBHOOKS_TTL]["N"]), timezone.utc)
    last = datetime.fromisoformat(item["lastOptInAt"]["S"].replace("Z", "+00:00"))
    assert timedelta(days=30) < expires - last <= timedelta(days=31, seconds=5)
    assert store.now_iso() >= item["lastOptInAt"]["S"]


def test_every_opt_out_call_passes_the_model_lengths_patterns_and_enums(client, eum):
    """Beyond the Stubber's checks: every call the opt-out routes and the opt-out send check make, with
    the lengths, patterns and enums of botocore's models (tests/test_provider_calls.py's check)."""
    from tests.test_provider_calls import Recorder

    calls = Recorder()
    stamp = datetime(2026, 11, 26, tzinfo=timezone.utc)
    eum.add_response("put_opted_out_number", {"OptedOutNumber": NUMBER, "OptedOutTimestamp": stamp,
                                              "EndUserOptedOut": False})
    assert client.http.put(PATH).status_code == 201
    eum.add_response("describe_opted_out_numbers", {"OptedOutNumbers": []})
    assert client.http.get("/opt-outs?limit=5").status_code == 200
    eum.add_response("describe_opted_out_numbers", {"OptedOutNumbers": []})
    assert client.http.get("/opt-outs/%2B14255550199").status_code == 404
    assert post(client, "/sms", {"to": NUMBER, "body": "hi"}).status_code == 409
    assert post(client, "/batches", {"messages": [{"to": NUMBER, "body": "hi"}]}).status_code == 202
    eum.add_response("delete_opted_out_number", {})
    assert client.http.delete(PATH).status_code == 204
    assert client.http.delete(PATH).status_code == 409
    assert {(s, o) for s, o, _ in calls.calls} >= {
        ("pinpoint-sms-voice-v2", "PutOptedOutNumber"), ("pinpoint-sms-voice-v2", "DescribeOptedOutNumbers"),
        ("pinpoint-sms-voice-v2", "DeleteOptedOutNumber"), ("dynamodb", "BatchGetItem"), ("dynamodb", "GetItem")}
    assert not calls.problems(), calls.problems()
