"""The two-way custom resource's handler (``infra/handlers/two_way.py``), called as the CDK Provider
framework calls it, against botocore's ``pinpoint-sms-voice-v2`` model.

Two kinds of test: a ``Stubber`` pins every call (operation, exact parameters, checked against the model,
and responses checked against it too); a small stand-in for one account's numbers and pools (``Account``,
every request and answer also checked against the model) follows what a user would see on the identity
across Create, Update and Delete."""
from __future__ import annotations

import copy
import json
import random
import string
from datetime import datetime, timezone
from pathlib import Path

import boto3
import botocore.session
import pytest
from botocore.exceptions import ClientError
from botocore.stub import Stubber
from botocore.validate import validate_parameters

from infra.handlers import two_way
from infra.handlers.two_way import TwoWayError

REGION, ACCOUNT = "us-east-1", "123456789012"
NUMBER_ID = "phone-0123456789abcdef0123456789abcdef"
NUMBER_ARN = f"arn:aws:sms-voice:{REGION}:{ACCOUNT}:phone-number/{NUMBER_ID}"
OTHER_ID = "phone-fedcba9876543210fedcba9876543210"
POOL_ID = "pool-0123456789abcdef0123456789abcdef"
POOL_ARN = f"arn:aws:sms-voice:{REGION}:{ACCOUNT}:pool/{POOL_ID}"
NUMBER = "+12065550100"
TOPIC = f"arn:aws:sns:{REGION}:{ACCOUNT}:SmsSender-eum-TwoWayInbound8154B07D-1A2B3C4D5E6F"
THEIR_TOPIC = f"arn:aws:sns:{REGION}:{ACCOUNT}:their-replies"
OUR_ROLE = f"arn:aws:iam::{ACCOUNT}:role/SmsSender-eum-TwoWayChannelRole-1A2B3C4D5E6F"
THEIR_ROLE = f"arn:aws:iam::{ACCOUNT}:role/acme-replies"
HELP_BEFORE = ["Acme: for help call (206) 555-0199.", "AUTOMATIC_RESPONSE"]
STOP_BEFORE = ["Acme: you are opted out.", "OPT_OUT"]
MODEL = botocore.session.get_session().get_service_model("pinpoint-sms-voice-v2")


def props(identity=NUMBER_ID, keywords=(("HELP", "Ours: help", "AUTOMATIC_RESPONSE"),
                                        ("STOP", "Ours: stopped", "OPT_OUT"))) -> dict:
    """Resource properties as infra/two_way.py writes them."""
    return {"ServiceToken": "arn:aws:lambda:us-east-1:123456789012:function:framework", "Identity": identity,
            "TopicArn": TOPIC, "ChannelRoleArn": OUR_ROLE, "Stage": "eum",
            "Keywords": [{"Keyword": k, "Message": m, "Action": a} for k, m, a in keywords]}


def turned_on(key: str, value: str, **extra) -> dict:
    """The UpdatePhoneNumber or UpdatePool parameters that turn two-way on: never an opt-out list."""
    return {key: value, "TwoWayEnabled": True, "TwoWayChannelArn": TOPIC, "SelfManagedOptOutsEnabled": False,
            **extra}


def event(request, properties, physical_id=None, old=None) -> dict:
    found = {"RequestType": request, "RequestId": "r-1", "StackId": f"arn:aws:cloudformation:{REGION}:{ACCOUNT}:"
             "stack/SmsSender-eum/1", "LogicalResourceId": "TwoWayIdentityC2756CAF",
             "ResourceType": "Custom::TwoWayMessaging", "ResponseURL": "...", "ResourceProperties": properties}
    if physical_id is not None:
        found["PhysicalResourceId"] = physical_id
    if old is not None:
        found["OldResourceProperties"] = old
    return found


def number_info(**changes) -> dict:
    """DescribePhoneNumbers' answer for one number, every member the model requires."""
    info = {"PhoneNumberArn": NUMBER_ARN, "PhoneNumberId": NUMBER_ID, "PhoneNumber": NUMBER, "Status": "ACTIVE",
            "IsoCountryCode": "US", "MessageType": "TRANSACTIONAL", "NumberCapabilities": ["SMS"],
            "NumberType": "TEN_DLC", "MonthlyLeasingPrice": "2.00", "TwoWayEnabled": False,
            "SelfManagedOptOutsEnabled": False, "OptOutListName": "Default", "DeletionProtectionEnabled": False,
            "CreatedTimestamp": datetime(2026, 1, 1, tzinfo=timezone.utc)}
    return {**info, **changes}


def pool_info(**changes) -> dict:
    info = {"PoolArn": POOL_ARN, "PoolId": POOL_ID, "Status": "ACTIVE", "MessageType": "TRANSACTIONAL",
            "TwoWayEnabled": False, "SelfManagedOptOutsEnabled": False, "OptOutListName": "Default",
            "SharedRoutesEnabled": False, "DeletionProtectionEnabled": False,
            "CreatedTimestamp": datetime(2026, 1, 1, tzinfo=timezone.utc)}
    return {**info, **changes}


def keyword_page(identity, keywords: dict, token=None) -> dict:
    page = {"OriginationIdentity": identity, "OriginationIdentityArn": POOL_ARN if two_way.is_pool(identity)
            else NUMBER_ARN, "Keywords": [{"Keyword": k, "KeywordMessage": m, "KeywordAction": a}
                                        for k, (m, a) in keywords.items()]}
    if token:
        page["NextToken"] = token
    return page


def not_found(kind, identity):
    return {"service_error_code": "ResourceNotFoundException", "service_message": f"{kind} not found",
            "http_status_code": 404, "modeled_fields": {"ResourceType": kind, "ResourceId": identity}}


@pytest.fixture
def sms():
    client = boto3.client("pinpoint-sms-voice-v2", region_name=REGION, aws_access_key_id="testing",
                          aws_secret_access_key="testing")
    with Stubber(client) as stub:
        yield client, stub
        stub.assert_no_pending_responses()


# -- the calls, pinned ----------------------------------------------------------------------------

def test_create_points_a_number_at_the_topic_and_keeps_what_it_had(sms):
    client, stub = sms
    stub.add_response("describe_phone_numbers", {"PhoneNumbers": [number_info(
        TwoWayEnabled=True, TwoWayChannelArn=THEIR_TOPIC, OptOutListName="acme-list")]},
        {"PhoneNumberIds": [NUMBER_ID]})
    stub.add_response("describe_keywords", keyword_page(NUMBER_ID, {"HELP": HELP_BEFORE, "STOP": STOP_BEFORE}),
                      {"OriginationIdentity": NUMBER_ID, "MaxResults": 100})
    # Its opt-out list stays: OptOutListName is not passed.
    stub.add_response("update_phone_number", {}, turned_on("PhoneNumberId", NUMBER_ID))
    stub.add_response("put_keyword", {}, {"OriginationIdentity": NUMBER_ID, "Keyword": "HELP",
                                          "KeywordMessage": "Ours: help", "KeywordAction": "AUTOMATIC_RESPONSE"})
    stub.add_response("put_keyword", {}, {"OriginationIdentity": NUMBER_ID, "Keyword": "STOP",
                                          "KeywordMessage": "Ours: stopped", "KeywordAction": "OPT_OUT"})
    result = two_way.on_event(event("Create", props()), sms=client)
    # The number in E.164 for the app (ORIGINATION_NUMBER, by Fn::GetAtt: not masked by NoEcho), and the
    # number's own opt-out list (OPT_OUT_LIST_NAME).
    assert result["Data"] == {"PhoneNumber": NUMBER, "OptOutListName": "acme-list", "KeywordsNotSet": "none"}
    assert not result.get("NoEcho")
    record = two_way.decode(result["PhysicalResourceId"])
    assert record["i"] == NUMBER_ID
    assert record["e"] == [True, THEIR_TOPIC, False, None]  # no channel role of its own
    assert record["k"] == {"HELP": HELP_BEFORE, "STOP": STOP_BEFORE}
    assert len(result["PhysicalResourceId"].encode()) <= 1024


def test_create_on_a_pool_uses_update_pool(sms):
    client, stub = sms
    stub.add_response("describe_pools", {"Pools": [pool_info()]}, {"PoolIds": [POOL_ARN]})
    stub.add_response("describe_keywords", keyword_page(POOL_ARN, {}, token="page-2"),
                      {"OriginationIdentity": POOL_ARN, "MaxResults": 100})
    stub.add_response("describe_keywords", keyword_page(POOL_ARN, {"HELP": HELP_BEFORE}),
                      {"OriginationIdentity": POOL_ARN, "MaxResults": 100, "NextToken": "page-2"})
    stub.add_response("update_pool", {}, turned_on("PoolId", POOL_ARN))
    stub.add_response("put_keyword", {}, {"OriginationIdentity": POOL_ARN, "Keyword": "HELP",
                                          "KeywordMessage": "Ours: help", "KeywordAction": "AUTOMATIC_RESPONSE"})
    result = two_way.on_event(event("Create", props(POOL_ARN, [("HELP", "Ours: help", "AUTOMATIC_RESPONSE")])),
                              sms=client)
    assert result["Data"] == {"OptOutListName": "Default", "KeywordsNotSet": "none"}  # a pool has no one number
    assert two_way.decode(result["PhysicalResourceId"])["k"] == {"HELP": HELP_BEFORE}


def test_a_number_in_a_pool_is_refused_naming_the_pool(sms):
    client, stub = sms
    stub.add_response("describe_phone_numbers", {"PhoneNumbers": [number_info(PoolId=POOL_ID)]},
                      {"PhoneNumberIds": [NUMBER_ID]})
    with pytest.raises(TwoWayError, match=f"belongs to pool {POOL_ID}.*set originationIdentity to {POOL_ID}"):
        two_way.on_event(event("Create", props()), sms=client)
    # Nothing was changed: the stubber answers no other call.


def test_an_identity_not_in_the_account_fails_the_create_clearly(sms):
    client, stub = sms
    stub.add_client_error("describe_phone_numbers", **not_found("phone-number", NUMBER_ID),
                          expected_params={"PhoneNumberIds": [NUMBER_ID]})
    with pytest.raises(TwoWayError, match="not in this account and region"):
        two_way.on_event(event("Create", props()), sms=client)


def test_on_a_us_toll_free_number_the_carriers_answer_stop(sms):
    client, stub = sms
    stub.add_response("describe_phone_numbers", {"PhoneNumbers": [number_info(NumberType="TOLL_FREE")]},
                      {"PhoneNumberIds": [NUMBER_ID]})
    stub.add_response("describe_keywords", keyword_page(NUMBER_ID, {}), {"OriginationIdentity": NUMBER_ID,
                                                                         "MaxResults": 100})
    stub.add_response("update_phone_number", {}, turned_on("PhoneNumberId", NUMBER_ID))
    stub.add_response("put_keyword", {}, {"OriginationIdentity": NUMBER_ID, "Keyword": "START",
                                          "KeywordMessage": "Welcome back", "KeywordAction": "OPT_IN"})
    result = two_way.on_event(event("Create", props(keywords=[("STOP", "Ours: stopped", "OPT_OUT"),
                                                              ("QUIT", "Ours: stopped", "OPT_OUT"),
                                                              ("START", "Welcome back", "OPT_IN")])), sms=client)
    assert result["Data"]["KeywordsNotSet"] == ("STOP: the carriers answer it on a US toll-free number; "
                                                "QUIT: the carriers answer it on a US toll-free number")


def test_delete_puts_the_earlier_settings_and_answers_back(sms):
    client, stub = sms
    record = {"v": 2, "i": NUMBER_ID, "e": [True, THEIR_TOPIC, False, None],
              "k": {"HELP": HELP_BEFORE, "STOP": STOP_BEFORE}}
    stub.add_response("describe_phone_numbers", {"PhoneNumbers": [number_info(TwoWayEnabled=True,
                                                                              TwoWayChannelArn=TOPIC)]},
                      {"PhoneNumberIds": [NUMBER_ID]})
    stub.add_response("update_phone_number", {}, {  # its opt-out list is left as it is
        "PhoneNumberId": NUMBER_ID, "TwoWayEnabled": True, "TwoWayChannelArn": THEIR_TOPIC,
        "SelfManagedOptOutsEnabled": False})
    stub.add_response("put_keyword", {}, {"OriginationIdentity": NUMBER_ID, "Keyword": "HELP",
                                          "KeywordMessage": HELP_BEFORE[0], "KeywordAction": HELP_BEFORE[1]})
    stub.add_response("put_keyword", {}, {"OriginationIdentity": NUMBER_ID, "Keyword": "STOP",
                                          "KeywordMessage": STOP_BEFORE[0], "KeywordAction": STOP_BEFORE[1]})
    stub.add_response("delete_keyword", {}, {"OriginationIdentity": NUMBER_ID, "Keyword": "START"})
    physical_id = json.dumps(record, separators=(",", ":"))
    keywords = [("HELP", "h", "AUTOMATIC_RESPONSE"), ("STOP", "s", "OPT_OUT"), ("START", "w", "OPT_IN")]
    assert two_way.on_event(event("Delete", props(keywords=keywords), physical_id), sms=client) == {
        "PhysicalResourceId": physical_id}


def test_delete_turns_two_way_off_where_it_was_off(sms):
    """With no earlier topic there is none to pass (the model takes no empty ARN): two-way goes off."""
    client, stub = sms
    record = {"v": 2, "i": POOL_ID, "e": [False, None, False, None], "k": {"HELP": HELP_BEFORE}}
    stub.add_response("describe_pools", {"Pools": [pool_info(TwoWayEnabled=True, TwoWayChannelArn=TOPIC)]},
                      {"PoolIds": [POOL_ID]})
    stub.add_response("update_pool", {}, {"PoolId": POOL_ID, "TwoWayEnabled": False,
                                          "SelfManagedOptOutsEnabled": False})
    stub.add_response("put_keyword", {}, {"OriginationIdentity": POOL_ID, "Keyword": "HELP",
                                          "KeywordMessage": HELP_BEFORE[0], "KeywordAction": HELP_BEFORE[1]})
    two_way.on_event(event("Delete", props(POOL_ID, [("HELP", "h", "AUTOMATIC_RESPONSE"), ("STOP", "s", "OPT_OUT")]),
                           json.dumps(record)), sms=client)  # STOP had no kept answer: left as it is


def test_delete_tolerates_an_identity_that_is_gone(sms):
    client, stub = sms
    stub.add_client_error("describe_phone_numbers", **not_found("phone-number", NUMBER_ID),
                          expected_params={"PhoneNumberIds": [NUMBER_ID]})
    physical_id = json.dumps({"v": 2, "i": NUMBER_ID, "e": [False, None, False, None], "k": {}})
    assert two_way.on_event(event("Delete", props(), physical_id), sms=client)["PhysicalResourceId"] == physical_id


def test_delete_after_a_failed_create_touches_nothing(sms):
    client, _ = sms
    marker = "AWSCDK::CustomResourceProviderFramework::CREATE_FAILED"
    assert two_way.on_event(event("Delete", props(), marker), sms=client) == {"PhysicalResourceId": marker}


def test_update_keeps_the_id_restores_dropped_keywords_and_sets_new_ones(sms):
    client, stub = sms
    record = {"v": 2, "i": NUMBER_ID, "e": [False, None, False, None],
              "k": {"HELP": HELP_BEFORE, "STOP": STOP_BEFORE, "INFO": ["Acme info", "AUTOMATIC_RESPONSE"]}}
    physical_id = json.dumps(record, separators=(",", ":"))
    old = props(keywords=[("HELP", "h", "AUTOMATIC_RESPONSE"), ("INFO", "i", "AUTOMATIC_RESPONSE"),
                          ("JOIN", "j", "OPT_IN")])
    new = props(keywords=[("HELP", "h2", "AUTOMATIC_RESPONSE"), ("START", "w", "OPT_IN")])
    stub.add_response("describe_phone_numbers", {"PhoneNumbers": [number_info(TwoWayEnabled=True,
                                                                              TwoWayChannelArn=TOPIC)]},
                      {"PhoneNumberIds": [NUMBER_ID]})
    # START is new to the stack and not in the record: it must not be on the number already.
    stub.add_response("describe_keywords", keyword_page(NUMBER_ID, {"HELP": ["h", "AUTOMATIC_RESPONSE"]}),
                      {"OriginationIdentity": NUMBER_ID, "MaxResults": 100})
    # Dropped: INFO gets its earlier answer back, JOIN (added by the stack) is deleted.
    stub.add_response("put_keyword", {}, {"OriginationIdentity": NUMBER_ID, "Keyword": "INFO",
                                          "KeywordMessage": "Acme info", "KeywordAction": "AUTOMATIC_RESPONSE"})
    stub.add_response("delete_keyword", {}, {"OriginationIdentity": NUMBER_ID, "Keyword": "JOIN"})
    stub.add_response("update_phone_number", {}, turned_on("PhoneNumberId", NUMBER_ID))
    stub.add_response("put_keyword", {}, {"OriginationIdentity": NUMBER_ID, "Keyword": "HELP",
                                          "KeywordMessage": "h2", "KeywordAction": "AUTOMATIC_RESPONSE"})
    stub.add_response("put_keyword", {}, {"OriginationIdentity": NUMBER_ID, "Keyword": "START",
                                          "KeywordMessage": "w", "KeywordAction": "OPT_IN"})
    result = two_way.on_event(event("Update", new, physical_id, old), sms=client)
    # The same id: a new one would make CloudFormation delete the old, turning two-way off.
    assert result["PhysicalResourceId"] == physical_id


def test_update_refuses_a_keyword_whose_earlier_answer_it_could_not_put_back(sms):
    client, stub = sms
    physical_id = json.dumps({"v": 2, "i": NUMBER_ID, "e": [False, None, False, None],
                              "k": {"HELP": HELP_BEFORE}})
    stub.add_response("describe_phone_numbers", {"PhoneNumbers": [number_info()]}, {"PhoneNumberIds": [NUMBER_ID]})
    stub.add_response("describe_keywords", keyword_page(NUMBER_ID, {"PROMO": ["added by hand", "AUTOMATIC_RESPONSE"]}),
                      {"OriginationIdentity": NUMBER_ID, "MaxResults": 100})
    with pytest.raises(TwoWayError, match="PROMO .*delete-keyword"):
        two_way.on_event(event("Update", props(keywords=[("PROMO", "p", "AUTOMATIC_RESPONSE")]), physical_id,
                               props(keywords=[])), sms=client)


def test_update_to_another_identity_is_a_create_with_a_new_id(sms):
    client, stub = sms
    old_id = json.dumps({"v": 2, "i": OTHER_ID, "e": [False, None, False, None], "k": {}})
    stub.add_response("describe_pools", {"Pools": [pool_info()]}, {"PoolIds": [POOL_ID]})
    stub.add_response("describe_keywords", keyword_page(POOL_ID, {}), {"OriginationIdentity": POOL_ID,
                                                                       "MaxResults": 100})
    stub.add_response("update_pool", {}, turned_on("PoolId", POOL_ID))
    result = two_way.on_event(event("Update", props(POOL_ID, []), old_id, props(OTHER_ID, [])), sms=client)
    assert result["PhysicalResourceId"] != old_id and two_way.decode(result["PhysicalResourceId"])["i"] == POOL_ID


def test_every_call_matches_the_model():
    """The operations the handler calls exist in the model with the parameters it passes (the Stubber
    tests above check each value; this one guards the names against a model upgrade)."""
    used = {"DescribePhoneNumbers": {"PhoneNumberIds"}, "DescribePools": {"PoolIds"},
            "DescribeKeywords": {"OriginationIdentity", "MaxResults", "NextToken"},
            "UpdatePhoneNumber": {"PhoneNumberId", "TwoWayEnabled", "TwoWayChannelArn", "TwoWayChannelRole",
                                  "SelfManagedOptOutsEnabled"},
            "UpdatePool": {"PoolId", "TwoWayEnabled", "TwoWayChannelArn", "TwoWayChannelRole",
                           "SelfManagedOptOutsEnabled"},
            "PutKeyword": {"OriginationIdentity", "Keyword", "KeywordMessage", "KeywordAction"},
            "DeleteKeyword": {"OriginationIdentity", "Keyword"}}
    for operation, parameters in used.items():
        assert parameters <= set(MODEL.operation_model(operation).input_shape.members), operation
    # The handler reads the list's name, the channel role and the two-way fields from the descriptions.
    for shape in ("PhoneNumberInformation", "PoolInformation"):
        members = MODEL.shape_for(shape)
        assert {"OptOutListName", "TwoWayChannelRole", "TwoWayChannelArn", "TwoWayEnabled"} <= set(members.members)
        assert "OptOutListName" in members.required_members  # so Data always names it



# -- issue 20: an identity with a TwoWayChannelRole of its own (item 4) ------------------------------------

def test_an_identity_with_a_channel_role_gets_the_stacks_role_and_its_own_back_on_delete(sms):
    """End User Messaging publishes as the identity's TwoWayChannelRole where it has one, and that role
    cannot reach the stack's topic or key. The model's IamRoleArn is at least 20 characters, so the role
    cannot be cleared: the stack passes its own (``ChannelRoleArn``), and Delete passes the identity's back."""
    assert MODEL.shape_for("IamRoleArn").metadata["min"] == 20
    client, stub = sms
    stub.add_response("describe_pools", {"Pools": [pool_info(TwoWayEnabled=True, TwoWayChannelArn=THEIR_TOPIC,
                                                             TwoWayChannelRole=THEIR_ROLE)]}, {"PoolIds": [POOL_ID]})
    stub.add_response("describe_keywords", keyword_page(POOL_ID, {}), {"OriginationIdentity": POOL_ID,
                                                                       "MaxResults": 100})
    stub.add_response("update_pool", {}, turned_on("PoolId", POOL_ID, TwoWayChannelRole=OUR_ROLE))
    created = two_way.on_event(event("Create", props(POOL_ID, [])), sms=client)
    assert two_way.decode(created["PhysicalResourceId"])["e"] == [True, THEIR_TOPIC, False, THEIR_ROLE]
    stub.add_response("describe_pools", {"Pools": [pool_info(TwoWayEnabled=True, TwoWayChannelArn=TOPIC,
                                                             TwoWayChannelRole=OUR_ROLE)]}, {"PoolIds": [POOL_ID]})
    stub.add_response("update_pool", {}, {"PoolId": POOL_ID, "TwoWayEnabled": True, "TwoWayChannelArn": THEIR_TOPIC,
                                          "SelfManagedOptOutsEnabled": False, "TwoWayChannelRole": THEIR_ROLE})
    two_way.on_event(event("Delete", props(POOL_ID, []), created["PhysicalResourceId"]), sms=client)


def test_an_identity_with_a_channel_role_and_no_role_to_hand_over_is_refused_naming_its_role(sms):
    client, stub = sms
    stub.add_response("describe_phone_numbers", {"PhoneNumbers": [number_info(TwoWayChannelRole=THEIR_ROLE)]},
                      {"PhoneNumberIds": [NUMBER_ID]})
    with pytest.raises(TwoWayError, match=f"has TwoWayChannelRole {THEIR_ROLE}: End User Messaging would publish "
                                          f"replies as that role"):
        two_way.on_event(event("Create", {**props(), "ChannelRoleArn": None}), sms=client)
    # Nothing was changed: the stubber answers no other call.


# -- issue 20: two-way where AWS lacks it (item 3) ---------------------------------------------------------

@pytest.mark.parametrize("reason, where", [("TWO_WAY_NOT_SUPPORTED_IN_COUNTRY", "the identity's country"),
                                           ("TWO_WAY_NOT_SUPPORTED_IN_REGION", "this AWS Region")])
def test_where_two_way_is_not_offered_the_refusal_names_twoway_false(sms, reason, where):
    assert reason in MODEL.shape_for("ValidationExceptionReason").enum
    client, stub = sms
    stub.add_response("describe_phone_numbers", {"PhoneNumbers": [number_info(IsoCountryCode="MX")]},
                      {"PhoneNumberIds": [NUMBER_ID]})
    stub.add_response("describe_keywords", keyword_page(NUMBER_ID, {}), {"OriginationIdentity": NUMBER_ID,
                                                                         "MaxResults": 100})
    stub.add_client_error("update_phone_number", "ValidationException", "Two-way is not supported",
                          modeled_fields={"Reason": reason}, expected_params=turned_on("PhoneNumberId", NUMBER_ID))
    with pytest.raises(TwoWayError) as refused:
        two_way.on_event(event("Create", props()), sms=client)
    assert f"no two-way SMS for {NUMBER_ID} in {where} ({reason})" in str(refused.value)
    assert 'set "twoWay": false in context.stages.eum of cdk.json' in str(refused.value)
    # No keyword was set: the stubber answers no other call.


def test_other_refusals_of_two_way_fail_as_they_are(sms):
    client, stub = sms
    stub.add_response("describe_phone_numbers", {"PhoneNumbers": [number_info()]}, {"PhoneNumberIds": [NUMBER_ID]})
    stub.add_response("describe_keywords", keyword_page(NUMBER_ID, {}), {"OriginationIdentity": NUMBER_ID,
                                                                         "MaxResults": 100})
    stub.add_client_error("update_phone_number", "ValidationException", "no topic",
                          modeled_fields={"Reason": "TWO_WAY_TOPIC_NOT_PRESENT"})
    with pytest.raises(ClientError, match="no topic"):
        two_way.on_event(event("Create", props()), sms=client)


# -- issue 20: HELP and STOP answers AWS may refuse to change (item 6) ---------------------------------------

def test_the_model_itself_says_both_things_about_help_and_stop():
    """The two API reference sentences that disagree (tests/aws_docs/sms-voice-help-stop-keywords.json)
    are botocore's model documentation of the operations, as read here."""
    fixture = json.loads((Path(__file__).parent / "aws_docs" / "sms-voice-help-stop-keywords.json").read_text())
    for quote in fixture["quotes"].values():
        documented = MODEL.operation_model(quote["operation"]).documentation.replace("&quot;", '"')
        assert quote["quote"] in documented, quote["operation"]
    assert set(two_way.KEYWORD_REFUSALS) <= {e.name for e in MODEL.operation_model("PutKeyword").error_shapes}


@pytest.mark.parametrize("code, reason", [("ConflictException", "RESOURCE_MODIFICATION_NOT_ALLOWED"),
                                          ("ValidationException", None)])
def test_a_refused_help_or_stop_answer_does_not_fail_the_deploy_and_is_reported(sms, code, reason):
    client, stub = sms
    stub.add_response("describe_phone_numbers", {"PhoneNumbers": [number_info()]}, {"PhoneNumberIds": [NUMBER_ID]})
    stub.add_response("describe_keywords", keyword_page(NUMBER_ID, {"HELP": HELP_BEFORE, "STOP": STOP_BEFORE}),
                      {"OriginationIdentity": NUMBER_ID, "MaxResults": 100})
    stub.add_response("update_phone_number", {}, turned_on("PhoneNumberId", NUMBER_ID))
    refusal = {"service_error_code": code, "service_message": "HELP and STOP can't be modified",
               "modeled_fields": {"Reason": reason} if reason else None}
    for keyword, message, action in STAGE_KEYWORDS:
        expected = {"OriginationIdentity": NUMBER_ID, "Keyword": keyword, "KeywordMessage": message,
                    "KeywordAction": action}
        if keyword in ("HELP", "STOP"):
            stub.add_client_error("put_keyword", expected_params=expected, **refusal)
        else:  # the words after them are still set
            stub.add_response("put_keyword", {}, expected)
    result = two_way.on_event(event("Create", props(keywords=STAGE_KEYWORDS)), sms=client)
    shown = f"{code} {reason}" if reason else code
    assert result["Data"]["KeywordsNotSet"] == (
        f"HELP: End User Messaging refused PutKeyword ({shown}) and keeps its own answer; "
        f"STOP: End User Messaging refused PutKeyword ({shown}) and keeps its own answer")
    # Delete puts back the earlier answers; refused again, it still puts the rest back.
    stub.add_response("describe_phone_numbers", {"PhoneNumbers": [number_info(TwoWayEnabled=True,
                                                                              TwoWayChannelArn=TOPIC)]},
                      {"PhoneNumberIds": [NUMBER_ID]})
    stub.add_response("update_phone_number", {}, {"PhoneNumberId": NUMBER_ID, "TwoWayEnabled": False,
                                                  "SelfManagedOptOutsEnabled": False})
    for keyword, earlier in (("HELP", HELP_BEFORE), ("STOP", STOP_BEFORE)):
        stub.add_client_error("put_keyword", expected_params={
            "OriginationIdentity": NUMBER_ID, "Keyword": keyword, "KeywordMessage": earlier[0],
            "KeywordAction": earlier[1]}, **refusal)
    stub.add_response("delete_keyword", {}, {"OriginationIdentity": NUMBER_ID, "Keyword": "START"})
    assert two_way.on_event(event("Delete", props(keywords=STAGE_KEYWORDS), result["PhysicalResourceId"]),
                            sms=client)["PhysicalResourceId"] == result["PhysicalResourceId"]


@pytest.mark.parametrize("keyword, code", [("START", "ConflictException"), ("HELP", "AccessDeniedException")])
def test_any_other_keyword_refusal_still_fails_the_deploy(sms, keyword, code):
    """Only HELP and STOP, and only a refusal of the request (not a missing permission), are let through."""
    client, stub = sms
    stub.add_response("describe_phone_numbers", {"PhoneNumbers": [number_info()]}, {"PhoneNumberIds": [NUMBER_ID]})
    stub.add_response("describe_keywords", keyword_page(NUMBER_ID, {}), {"OriginationIdentity": NUMBER_ID,
                                                                         "MaxResults": 100})
    stub.add_response("update_phone_number", {}, turned_on("PhoneNumberId", NUMBER_ID))
    stub.add_client_error("put_keyword", code, "refused")
    with pytest.raises(ClientError, match="refused"):
        two_way.on_event(event("Create", props(keywords=[k for k in STAGE_KEYWORDS if k[0] == keyword])), sms=client)


# -- the identity across the resource's life --------------------------------------------------------

class Account:
    """One account's numbers and pools as End User Messaging keeps them: every request and answer is
    checked against botocore's model, and the calls End User Messaging refuses are refused."""

    def __init__(self, **identities):
        self.identities = identities  # id -> {"info": ..., "keywords": {KEYWORD: [message, action]}}
        self.calls = []

    def _call(self, operation, params, answer):
        model = MODEL.operation_model(operation)
        validate_parameters(params, model.input_shape)
        validate_parameters(answer, model.output_shape)
        self.calls.append((operation, params))
        return answer

    def _find(self, identity, kind):
        key = identity.rsplit("/", 1)[-1]
        if key not in self.identities:
            raise ClientError({"Error": {"Code": "ResourceNotFoundException", "Message": "not found"},
                               "ResourceType": kind}, "Describe")
        return self.identities[key]

    def describe_phone_numbers(self, **params):
        found = self._find(params["PhoneNumberIds"][0], "phone-number")
        return self._call("DescribePhoneNumbers", params, {"PhoneNumbers": [copy.deepcopy(found["info"])]})

    def describe_pools(self, **params):
        found = self._find(params["PoolIds"][0], "pool")
        return self._call("DescribePools", params, {"Pools": [copy.deepcopy(found["info"])]})

    def describe_keywords(self, **params):
        found = self._find(params["OriginationIdentity"], "keyword")
        return self._call("DescribeKeywords", params, keyword_page(params["OriginationIdentity"],
                                                                   found["keywords"]))

    def _update(self, operation, key, params):
        found = self._find(params[key], "phone-number" if key == "PhoneNumberId" else "pool")
        if key == "PhoneNumberId" and found["info"].get("PoolId"):
            raise ClientError({"Error": {"Code": "ConflictException", "Message": "in a pool"},
                               "Reason": "PHONE_NUMBER_ASSOCIATED_TO_POOL"}, operation)
        found["info"].update({k: v for k, v in params.items() if k != key})
        return self._call(operation, params, {})

    def update_phone_number(self, **params):
        return self._update("UpdatePhoneNumber", "PhoneNumberId", params)

    def update_pool(self, **params):
        return self._update("UpdatePool", "PoolId", params)

    def put_keyword(self, **params):
        found = self._find(params["OriginationIdentity"], "keyword")
        found["keywords"][params["Keyword"].upper()] = [params["KeywordMessage"], params["KeywordAction"]]
        return self._call("PutKeyword", params, {})

    def delete_keyword(self, **params):
        found = self._find(params["OriginationIdentity"], "keyword")
        keyword = params["Keyword"].upper()
        if keyword in ("HELP", "STOP"):
            raise ClientError({"Error": {"Code": "ValidationException", "Message": "cannot delete"}}, "DeleteKeyword")
        if keyword not in found["keywords"]:
            raise ClientError({"Error": {"Code": "ResourceNotFoundException", "Message": "no such keyword"},
                               "ResourceType": "keyword"}, "DeleteKeyword")
        del found["keywords"][keyword]
        return self._call("DeleteKeyword", params, {})

    def seen(self, identity):
        """What the user sees on the identity: its two-way fields, its opt-out list and keywords."""
        found = self.identities[identity]
        info = found["info"]
        return ({k: info.get(k) for k in ("TwoWayEnabled", "TwoWayChannelArn", "TwoWayChannelRole",
                                          "SelfManagedOptOutsEnabled", "OptOutListName")},
                copy.deepcopy(found["keywords"]))


def account() -> Account:
    return Account(**{
        NUMBER_ID: {"info": number_info(TwoWayEnabled=True, TwoWayChannelArn=THEIR_TOPIC, OptOutListName="acme-list"),
                    "keywords": {"HELP": list(HELP_BEFORE), "STOP": list(STOP_BEFORE),
                                 "INFO": ["Acme info", "AUTOMATIC_RESPONSE"]}},
        OTHER_ID: {"info": number_info(PhoneNumberId=OTHER_ID), "keywords": {"HELP": list(HELP_BEFORE),
                                                                            "STOP": list(STOP_BEFORE)}},
        # A pool with a channel role of its own (End User Messaging would publish as it).
        POOL_ID: {"info": pool_info(TwoWayChannelRole=THEIR_ROLE, OptOutListName="acme-pool-list"),
                  "keywords": {"HELP": list(HELP_BEFORE), "STOP": list(STOP_BEFORE)}},
    })


STAGE_KEYWORDS = [("HELP", "Ours: help", "AUTOMATIC_RESPONSE"), ("STOP", "Ours: stopped", "OPT_OUT"),
                  ("START", "Ours: welcome back", "OPT_IN")]


@pytest.mark.parametrize("identity", [NUMBER_ID, NUMBER_ARN, POOL_ID])
def test_create_then_delete_leaves_the_identity_as_it_was(identity):
    aws = account()
    key = identity.rsplit("/", 1)[-1]
    before = aws.seen(key)
    created = two_way.on_event(event("Create", props(identity, STAGE_KEYWORDS)), sms=aws)
    settings, keywords = aws.seen(key)
    # Its own opt-out list stays; its own channel role, where it has one, gives way to the stack's.
    assert settings == {"TwoWayEnabled": True, "TwoWayChannelArn": TOPIC, "SelfManagedOptOutsEnabled": False,
                        "OptOutListName": before[0]["OptOutListName"],
                        "TwoWayChannelRole": OUR_ROLE if before[0]["TwoWayChannelRole"] else None}
    assert created["Data"]["OptOutListName"] == before[0]["OptOutListName"]
    assert {k: keywords[k] for k, _, _ in STAGE_KEYWORDS} == {k: [m, a] for k, m, a in STAGE_KEYWORDS}
    two_way.on_event(event("Delete", props(identity, STAGE_KEYWORDS), created["PhysicalResourceId"]), sms=aws)
    after_settings, after_keywords = aws.seen(key)
    assert after_keywords == before[1]
    if before[0]["TwoWayChannelArn"]:
        assert after_settings == before[0]
    else:  # no topic to go back to (the model takes no empty ARN): two-way off is what counts
        assert after_settings == {**before[0], "TwoWayChannelArn": TOPIC} and after_settings["TwoWayEnabled"] is False


def test_updates_then_delete_leave_the_number_as_it_was():
    aws = account()
    before = aws.seen(NUMBER_ID)
    generation = props(NUMBER_ID, STAGE_KEYWORDS)
    physical_id = two_way.on_event(event("Create", generation), sms=aws)["PhysicalResourceId"]
    for keywords in ([("HELP", "Ours 2", "AUTOMATIC_RESPONSE"), ("INFO", "Ours: info", "AUTOMATIC_RESPONSE")],
                     [("JOIN", "Ours: joined", "OPT_IN")], STAGE_KEYWORDS):
        new = props(NUMBER_ID, keywords)
        result = two_way.on_event(event("Update", new, physical_id, generation), sms=aws)
        assert result["PhysicalResourceId"] == physical_id
        assert {k: aws.seen(NUMBER_ID)[1][k] for k, _, _ in keywords} == {k: [m, a] for k, m, a in keywords}
        generation = new
    two_way.on_event(event("Delete", generation, physical_id), sms=aws)
    assert aws.seen(NUMBER_ID) == before


def test_moving_to_another_identity_then_deleting_leaves_both_as_they_were():
    """Update to a new identity answers a new id; CloudFormation then deletes the old id (with the old
    properties), which puts the old number back; deleting the stack puts the new one back."""
    aws = account()
    before = {key: aws.seen(key) for key in (NUMBER_ID, POOL_ID)}
    old = props(NUMBER_ID, STAGE_KEYWORDS)
    first = two_way.on_event(event("Create", old), sms=aws)["PhysicalResourceId"]
    new = props(POOL_ID, STAGE_KEYWORDS)
    second = two_way.on_event(event("Update", new, first, old), sms=aws)["PhysicalResourceId"]
    assert second != first
    assert aws.seen(POOL_ID)[0]["TwoWayChannelArn"] == TOPIC
    two_way.on_event(event("Delete", old, first), sms=aws)  # CloudFormation's clean-up of the replaced id
    assert aws.seen(NUMBER_ID) == before[NUMBER_ID]
    assert aws.seen(POOL_ID)[0]["TwoWayEnabled"] is True  # the stage's identity now
    two_way.on_event(event("Delete", new, second), sms=aws)
    assert aws.seen(POOL_ID)[1] == before[POOL_ID][1] and aws.seen(POOL_ID)[0]["TwoWayEnabled"] is False


def test_an_id_and_its_arn_are_the_same_identity():
    aws = account()
    old = props(NUMBER_ID, STAGE_KEYWORDS)
    physical_id = two_way.on_event(event("Create", old), sms=aws)["PhysicalResourceId"]
    result = two_way.on_event(event("Update", props(NUMBER_ARN, STAGE_KEYWORDS), physical_id, old), sms=aws)
    assert result["PhysicalResourceId"] == physical_id  # no replacement: no Delete turning two-way off


# -- the PhysicalResourceId stays under 1 KB -------------------------------------------------------

def noise(size: int, seed: int) -> str:
    rng = random.Random(seed)  # text that does not compress
    return "".join(rng.choice(string.ascii_letters + string.digits) for _ in range(size))


def test_the_earlier_settings_always_fit_in_1_kb_or_the_create_fails_before_changing_anything():
    aws = account()
    # Many long answers of keywords the stack does not set: only the ones it sets are kept.
    aws.identities[NUMBER_ID]["keywords"].update({f"PROMO{i}": [noise(1500, i), "AUTOMATIC_RESPONSE"]
                                                  for i in range(8)})
    created = two_way.on_event(event("Create", props(NUMBER_ID, STAGE_KEYWORDS)), sms=aws)
    physical_id = created["PhysicalResourceId"]
    assert len(physical_id.encode()) <= 1024
    record = two_way.decode(physical_id)
    assert record["t"] == 1 and set(record["k"]) == {"HELP", "STOP"}  # START did not exist before
    # A long answer that compresses still fits whole.
    aws = account()
    aws.identities[NUMBER_ID]["keywords"]["HELP"] = ["Acme support: call us. " * 60, "AUTOMATIC_RESPONSE"]
    physical_id = two_way.on_event(event("Create", props(NUMBER_ID, STAGE_KEYWORDS)), sms=aws)["PhysicalResourceId"]
    assert physical_id.startswith("z:") and len(physical_id) <= 1024
    assert two_way.decode(physical_id)["k"]["HELP"][0].startswith("Acme support")
    # An earlier answer of a keyword the stack sets that cannot fit: refused, the number untouched.
    aws = account()
    aws.identities[NUMBER_ID]["keywords"]["HELP"] = [noise(1500, 99), "AUTOMATIC_RESPONSE"]
    before = aws.seen(NUMBER_ID)
    with pytest.raises(TwoWayError, match="1 KB"):
        two_way.on_event(event("Create", props(NUMBER_ID, STAGE_KEYWORDS)), sms=aws)
    assert aws.seen(NUMBER_ID) == before
    assert not [c for c in aws.calls if not c[0].startswith("Describe")]
