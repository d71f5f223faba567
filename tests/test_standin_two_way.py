"""The End User Messaging stand-in's two-way and opt-out operations (devstack/sms_voice/), driven through
a real botocore client: botocore serializes every request from its service model, the stand-in answers
it, and botocore parses the answer (every answer is also checked against the operation's output shape).
What AWS documents about them is kept in tests/aws_docs/sms-voice-opt-outs.json, and checked here.
"""
import json
from pathlib import Path

import boto3
import pytest
from botocore.awsrequest import AWSResponse
from botocore.exceptions import ClientError, ParamValidationError

from devstack.sms_voice.model import MODEL, TARGET_PREFIX, ApiError, constraint_problems
from devstack.sms_voice.opt_outs import OPT_IN_INTERVAL
from devstack.sms_voice.standin import SmsVoiceStandIn, respond
from devstack.sms_voice.two_way import REQUIRED_OPT_OUT_KEYWORDS

DOCS = json.loads((Path(__file__).parent / "aws_docs" / "sms-voice-opt-outs.json").read_text())["quotes"]
OURS, PHONE, OTHER = "+12065550100", "+14255550123", "+14255550124"
TOPIC = "arn:aws:sns:us-east-1:123456789012:sms-sender-test-inbound"
DAY = 24 * 3600


class _Raw:
    def __init__(self, data: bytes):
        self.data = data

    def stream(self, **_):
        yield self.data


class Clock:
    def __init__(self):
        self.now = 1_800_000_000.0

    def __call__(self):
        return self.now


@pytest.fixture
def standin():
    sent = []
    fake = SmsVoiceStandIn(region="us-east-1", account="123456789012",
                           record_send=lambda *args, **kwargs: sent.append(args), read_media=lambda *_: None)
    fake.sent, fake.clock = sent, Clock()
    fake.number = fake.add_phone_number(OURS)
    return fake


@pytest.fixture
def sms(standin):
    """A pinpoint-sms-voice-v2 client whose requests the stand-in answers (nothing leaves the process)."""
    client = boto3.client("pinpoint-sms-voice-v2", region_name="us-east-1", aws_access_key_id="testing",
                          aws_secret_access_key="testing", endpoint_url="http://127.0.0.1:9")

    def answer(request, **_):
        target = request.headers["X-Amz-Target"].decode()
        status, body = respond(standin, target, request.body)
        if status == 200:  # what the stand-in answers is what the model says the operation returns
            output = MODEL.operation_model(target[len(TARGET_PREFIX):]).output_shape
            missing = [m for m in output.required_members if m not in body]
            unknown = [m for m in body if m not in output.members]
            assert not (missing or unknown or constraint_problems(body, output)), (target, missing, unknown)
        return AWSResponse(request.url, status, {"Content-Type": "application/x-amz-json-1.0"},
                           _Raw(json.dumps(body).encode()))

    client.meta.events.register("before-send", answer)
    return client


def error(caught) -> tuple[str, str | None]:
    return caught.value.response["Error"]["Code"], caught.value.response.get("Reason")


def text(sms, identity, to=PHONE, **extra):
    return sms.send_text_message(DestinationPhoneNumber=to, OriginationIdentity=identity, MessageBody="hi", **extra)


def test_a_new_number_has_two_way_off_the_default_list_and_help_and_stop(sms, standin):
    [number] = sms.describe_phone_numbers(PhoneNumberIds=[standin.number["PhoneNumberId"]])["PhoneNumbers"]
    assert (number["TwoWayEnabled"], number["SelfManagedOptOutsEnabled"], number["OptOutListName"]) == (
        False, False, "Default")
    keywords = sms.describe_keywords(OriginationIdentity=number["PhoneNumberId"])["Keywords"]
    assert {(k["Keyword"], k["KeywordAction"]) for k in keywords} == {("HELP", "AUTOMATIC_RESPONSE"),
                                                                      ("STOP", "OPT_OUT")}


def test_update_phone_number_turns_two_way_on_and_describe_returns_it(sms, standin):
    pid = standin.number["PhoneNumberId"]
    sms.create_opt_out_list(OptOutListName="sms-sender-test")
    with pytest.raises(ClientError) as caught:  # two-way needs somewhere to put the replies
        sms.update_phone_number(PhoneNumberId=pid, TwoWayEnabled=True)
    assert error(caught) == ("ValidationException", "TWO_WAY_CHANNEL_NOT_PRESENT")
    with pytest.raises(ClientError) as caught:
        sms.update_phone_number(PhoneNumberId=pid, OptOutListName="no-such-list")
    assert error(caught)[0] == "ResourceNotFoundException"
    updated = sms.update_phone_number(PhoneNumberId=standin.number["PhoneNumberArn"], TwoWayEnabled=True,
                                      TwoWayChannelArn=TOPIC, OptOutListName="sms-sender-test",
                                      SelfManagedOptOutsEnabled=False)
    assert (updated["TwoWayEnabled"], updated["TwoWayChannelArn"], updated["OptOutListName"]) == (
        True, TOPIC, "sms-sender-test")
    found = sms.describe_phone_numbers(Filters=[{"Name": "two-way-enabled", "Values": ["true"]}])["PhoneNumbers"]
    assert [(n["PhoneNumberId"], n["TwoWayChannelArn"]) for n in found] == [(pid, TOPIC)]
    assert sms.describe_phone_numbers(Filters=[{"Name": "two-way-enabled", "Values": ["false"]}])[
        "PhoneNumbers"] == []


def test_a_number_in_a_pool_takes_its_two_way_settings_from_the_pool(sms, standin):
    pool = standin.add_pool([standin.number["PhoneNumberId"]])
    with pytest.raises(ClientError) as caught:
        sms.update_phone_number(PhoneNumberId=standin.number["PhoneNumberId"], TwoWayEnabled=True,
                                TwoWayChannelArn=TOPIC)
    assert error(caught) == ("ConflictException", "PHONE_NUMBER_ASSOCIATED_TO_POOL")
    sms.update_phone_number(PhoneNumberId=standin.number["PhoneNumberId"], DeletionProtectionEnabled=True)
    sms.create_opt_out_list(OptOutListName="pool-list")
    updated = sms.update_pool(PoolId=pool["PoolId"], TwoWayEnabled=True, TwoWayChannelArn=TOPIC,
                              OptOutListName="pool-list")
    assert (updated["TwoWayEnabled"], updated["OptOutListName"]) == (True, "pool-list")
    assert sms.describe_pools(PoolIds=[pool["PoolArn"]])["Pools"][0]["TwoWayChannelArn"] == TOPIC
    assert standin.receive(PHONE, OURS, "stop")["channel"] == TOPIC
    assert sms.describe_opted_out_numbers(OptOutListName="pool-list")["OptedOutNumbers"][0]["OptedOutNumber"] == PHONE
    with pytest.raises(ClientError) as caught:  # sent from the number by its id: the pool's list applies
        text(sms, standin.number["PhoneNumberId"])
    assert error(caught) == ("ConflictException", "DESTINATION_PHONE_NUMBER_OPTED_OUT")


def test_keywords_are_set_replaced_and_deleted_but_help_and_stop_stay(sms, standin):
    pid = standin.number["PhoneNumberId"]
    made = sms.put_keyword(OriginationIdentity=pid, Keyword="start", KeywordMessage="Welcome back",
                           KeywordAction="OPT_IN")
    assert (made["Keyword"], made["KeywordAction"], made["OriginationIdentityArn"]) == (
        "START", "OPT_IN", standin.number["PhoneNumberArn"])
    sms.put_keyword(OriginationIdentity=pid, Keyword="HELP", KeywordMessage="Call 206 555 0199")
    listed = sms.describe_keywords(OriginationIdentity=pid, Filters=[{"Name": "keyword-action",
                                                                      "Values": ["AUTOMATIC_RESPONSE"]}])
    assert [(k["Keyword"], k["KeywordMessage"]) for k in listed["Keywords"]] == [("HELP", "Call 206 555 0199")]
    for keyword in ("HELP", "stop"):
        with pytest.raises(ClientError) as caught:
            sms.delete_keyword(OriginationIdentity=pid, Keyword=keyword)
        assert error(caught) == ("ConflictException", "RESOURCE_DELETION_NOT_ALLOWED")
    assert sms.delete_keyword(OriginationIdentity=pid, Keyword="START")["Keyword"] == "START"
    with pytest.raises(ClientError) as caught:
        sms.delete_keyword(OriginationIdentity=pid, Keyword="START")
    assert error(caught)[0] == "ResourceNotFoundException"
    with pytest.raises(ClientError) as caught:  # the model's limits hold: 1600 characters at most
        sms.put_keyword(OriginationIdentity=pid, Keyword="INFO", KeywordMessage="x" * 1601)
    assert error(caught) == ("ValidationException", "FIELD_VALIDATION_FAILED")


def test_a_send_to_an_opted_out_number_is_refused_with_the_models_reason(sms, standin):
    assert "DESTINATION_PHONE_NUMBER_OPTED_OUT" in MODEL.shape_for("ConflictExceptionReason").enum
    sms.put_opted_out_number(OptOutListName="Default", OptedOutNumber=PHONE)
    for send in (lambda: text(sms, standin.number["PhoneNumberId"]),
                 lambda: text(sms, standin.number["PhoneNumberArn"], DryRun=True),  # a dry run checks it too
                 lambda: sms.send_media_message(DestinationPhoneNumber=PHONE, MediaUrls=["s3://bucket/cat.png"],
                                                OriginationIdentity=standin.number["PhoneNumberId"])):
        with pytest.raises(ClientError) as caught:
            send()
        assert error(caught) == ("ConflictException", "DESTINATION_PHONE_NUMBER_OPTED_OUT")
    assert standin.sent == []
    assert text(sms, standin.number["PhoneNumberId"], to=OTHER)["MessageId"]  # another number still gets it
    assert len(standin.sent) == 1


def test_opted_out_numbers_page_and_filter_on_end_user_opted_out(sms, standin):
    numbers = [f"+1425555{n:04d}" for n in range(7)]
    for number in numbers[:4]:
        standin.receive(number, OURS, "STOP")
    for number in numbers[4:]:
        sms.put_opted_out_number(OptOutListName="Default", OptedOutNumber=number)
    pages = list(sms.get_paginator("describe_opted_out_numbers").paginate(
        OptOutListName="Default", PaginationConfig={"PageSize": 3}))
    assert [len(p["OptedOutNumbers"]) for p in pages] == [3, 3, 1]
    assert [n["OptedOutNumber"] for p in pages for n in p["OptedOutNumbers"]] == numbers
    by_user = sms.describe_opted_out_numbers(OptOutListName="Default", Filters=[
        {"Name": "end-user-opted-out", "Values": ["true"]}])["OptedOutNumbers"]
    assert [n["OptedOutNumber"] for n in by_user] == numbers[:4]
    one = sms.describe_opted_out_numbers(OptOutListName="Default", OptedOutNumbers=[numbers[5]])
    assert [n["EndUserOptedOut"] for n in one["OptedOutNumbers"]] == [False]
    with pytest.raises(ClientError) as caught:
        sms.describe_opted_out_numbers(OptOutListName="Default", NextToken="not-a-token")
    assert error(caught) == ("ValidationException", "INVALID_NEXT_TOKEN")
    with pytest.raises(ClientError) as caught:
        sms.describe_opted_out_numbers(OptOutListName="no-such-list")
    assert error(caught)[0] == "ResourceNotFoundException"


def test_a_number_can_be_opted_back_in_once_every_30_days(sms, standin):
    assert DOCS["opt_in_interval"]["value"] * DAY == OPT_IN_INTERVAL
    assert "PHONE_NUMBER_CANNOT_BE_OPTED_IN" in MODEL.shape_for("ValidationExceptionReason").enum
    arn = sms.create_opt_out_list(OptOutListName="sms-sender-test")["OptOutListArn"]
    sms.put_opted_out_number(OptOutListName=arn, OptedOutNumber=PHONE)  # the name or the ARN
    removed = sms.delete_opted_out_number(OptOutListName="sms-sender-test", OptedOutNumber=PHONE)
    assert removed["OptedOutNumber"] == PHONE
    with pytest.raises(ClientError) as caught:  # not on the list any more
        sms.delete_opted_out_number(OptOutListName="sms-sender-test", OptedOutNumber=PHONE)
    assert error(caught)[0] == "ResourceNotFoundException"
    sms.put_opted_out_number(OptOutListName="sms-sender-test", OptedOutNumber=PHONE)
    standin.clock.now += OPT_IN_INTERVAL - 60
    with pytest.raises(ClientError) as caught:
        sms.delete_opted_out_number(OptOutListName="sms-sender-test", OptedOutNumber=PHONE)
    assert error(caught) == ("ValidationException", "PHONE_NUMBER_CANNOT_BE_OPTED_IN")
    assert sms.describe_opted_out_numbers(OptOutListName="sms-sender-test")["OptedOutNumbers"]  # still out
    standin.clock.now += 60
    sms.delete_opted_out_number(OptOutListName="sms-sender-test", OptedOutNumber=PHONE)
    assert sms.describe_opted_out_numbers(OptOutListName="sms-sender-test")["OptedOutNumbers"] == []
    with pytest.raises(ClientError) as caught:
        sms.create_opt_out_list(OptOutListName="sms-sender-test")
    assert error(caught) == ("ConflictException", "RESOURCE_ALREADY_EXISTS")


def test_a_text_that_begins_with_a_keyword_is_answered_case_insensitively(standin):
    assert DOCS["required_opt_out_keywords"]["value"] == list(REQUIRED_OPT_OUT_KEYWORDS)
    standin.handle("PutKeyword", {"OriginationIdentity": standin.number["PhoneNumberId"], "Keyword": "HELP",
                                  "KeywordMessage": "Call 206 555 0199"})
    standin.handle("PutKeyword", {"OriginationIdentity": standin.number["PhoneNumberId"], "Keyword": "UNSTOP",
                                  "KeywordMessage": "You are back", "KeywordAction": "OPT_IN"})
    assert standin.receive(PHONE, OURS, "  help me ") == {
        "keyword": "HELP", "action": "AUTOMATIC_RESPONSE", "answer": "Call 206 555 0199", "channel": None,
        "registered_keyword": "KEYWORD_123456789012"}
    assert standin.receive(PHONE, OURS, "helpful")["keyword"] is None  # begins with the word, not the letters
    assert standin.receive(PHONE, OURS, "Thanks, see you")["answer"] is None
    assert not standin.opted_out("Default", PHONE)
    stop = standin.handle("DescribeKeywords", {"OriginationIdentity": standin.number["PhoneNumberId"],
                                               "Keywords": ["STOP"]})["Keywords"][0]["KeywordMessage"]
    for word in REQUIRED_OPT_OUT_KEYWORDS:  # every required opt-out keyword opts out with STOP's answer
        got = standin.receive(PHONE, OURS, word.lower())
        assert (got["keyword"], got["action"], got["answer"]) == (word, "OPT_OUT", stop)
        assert standin.opted_out("Default", PHONE)
        assert standin.receive(PHONE, OURS, "unstop")["answer"] == "You are back"
        assert not standin.opted_out("Default", PHONE)


def test_a_text_names_the_numbers_registered_keyword_whatever_it_says(standin):
    """The two-way payload's ``messageKeyword`` is "the registered keyword that's associated with your dedicated
    phone number" (tests/events/sms-voice-two-way-payload.json): a property of the number, not of the text. A
    keyword the text begins with is still applied and answered."""
    joins = standin.add_phone_number("+12065550111", registered_keyword="JOIN")
    standin.handle("PutKeyword", {"OriginationIdentity": joins["PhoneNumberId"], "Keyword": "JOIN",
                                  "KeywordMessage": "Welcome", "KeywordAction": "OPT_IN"})
    for body in ("EXAMPLE", "STOP", "help", "join"):
        assert standin.receive(PHONE, OURS, body)["registered_keyword"] == "KEYWORD_123456789012", body
        assert standin.receive(PHONE, "+12065550111", body)["registered_keyword"] == "JOIN", body
    got = standin.receive(OTHER, "+12065550111", "EXAMPLE")
    assert (got["keyword"], got["action"], got["answer"]) == (None, None, None)
    assert standin.receive(OTHER, "+12065550111", "Stop")["keyword"] == "STOP" and standin.opted_out("Default", OTHER)
    listed = standin.handle("DescribePhoneNumbers", {"PhoneNumberIds": [joins["PhoneNumberId"]]})["PhoneNumbers"]
    assert "registered_keyword" not in listed[0]  # the stand-in's own bookkeeping, not a member of the model


def test_with_self_managed_opt_outs_nothing_is_answered_or_listed(standin):
    standin.handle("UpdatePhoneNumber", {"PhoneNumberId": standin.number["PhoneNumberId"],
                                         "SelfManagedOptOutsEnabled": True})
    assert standin.receive(PHONE, OURS, "STOP")["answer"] is None
    assert not standin.opted_out("Default", PHONE)


def test_the_stacks_two_way_handler_turns_two_way_on_and_puts_everything_back(sms, standin):
    """The custom resource's handler (infra/handlers/two_way.py), which the local stack also runs, against
    the stand-in: Create turns two-way on and sets the keywords, and leaves the number's opt-out list as it
    is; Delete leaves the number as it was, with every STOP that came meanwhile still on its list."""
    from infra.handlers import two_way

    pid = standin.number["PhoneNumberId"]
    before = (sms.describe_phone_numbers(PhoneNumberIds=[pid])["PhoneNumbers"][0],
              sms.describe_keywords(OriginationIdentity=pid)["Keywords"])
    props = {"Identity": pid, "TopicArn": TOPIC, "ChannelRoleArn": OUR_ROLE, "Stage": "test", "Keywords": [
        {"Keyword": "HELP", "Message": "Call 206 555 0199", "Action": "AUTOMATIC_RESPONSE"},
        {"Keyword": "START", "Message": "You are back", "Action": "OPT_IN"}]}
    done = two_way.on_event({"RequestType": "Create", "ResourceProperties": props}, sms=sms)
    assert done["Data"] == {"PhoneNumber": OURS, "OptOutListName": "Default", "KeywordsNotSet": "none"}
    assert standin.receive(PHONE, OURS, "help") == {"keyword": "HELP", "action": "AUTOMATIC_RESPONSE",
                                                    "answer": "Call 206 555 0199", "channel": TOPIC,
                                                    "registered_keyword": "KEYWORD_123456789012"}
    standin.receive(PHONE, OURS, "stop")
    assert standin.opted_out("Default", PHONE)
    two_way.on_event({"RequestType": "Delete", "ResourceProperties": props,
                      "PhysicalResourceId": done["PhysicalResourceId"]}, sms=sms)
    after = sms.describe_phone_numbers(PhoneNumberIds=[pid])["PhoneNumbers"][0]
    # Two-way is off again; the channel ARN stays, as UpdatePhoneNumber cannot clear it (the model's
    # TwoWayChannelArn is 20 characters at least), and points nowhere while two-way is off.
    assert after.pop("TwoWayChannelArn") == TOPIC and after == before[0]
    assert sms.describe_keywords(OriginationIdentity=pid)["Keywords"] == before[1]
    assert standin.receive(PHONE, OURS, "help")["channel"] is None
    assert standin.opted_out("Default", PHONE)  # the STOP outlives the stack


# -- issue 20: no opt-out is ever lost ------------------------------------------------------------------

OUR_ROLE = "arn:aws:iam::123456789012:role/SmsSender-test-TwoWayChannelRole-1A2B3C4D5E6F"
THEIR_ROLE = "arn:aws:iam::123456789012:role/acme-replies"


def refused(sms, identity, number) -> bool:
    """End User Messaging refuses a send from ``identity`` to ``number`` as opted out (DryRun: the same
    check, nothing sent)."""
    try:
        text(sms, identity, to=number, DryRun=True)
    except ClientError as err:
        assert (err.response["Error"]["Code"], err.response.get("Reason")) == (
            "ConflictException", "DESTINATION_PHONE_NUMBER_OPTED_OUT")
        return True
    return False


def test_no_opt_out_is_lost_across_create_update_replacement_and_delete(sms, standin):
    """Everyone who opted out before the deploy (a STOP, or an entry put by a call) is still refused once
    two-way is on; a STOP while the stack lives lands on the list End User Messaging checks, and the app
    is told that list (``OptOutListName``, its OPT_OUT_LIST_NAME); an update, a move to another identity
    (CloudFormation's replacement: Create on the new identity, Delete of the old id) and a delete leave
    every one of them refused, from each identity. The identity's list is never changed: the number starts
    on ``Default`` (the user guide, tests/aws_docs/sms-voice-opt-outs.json), and End User Messaging refuses
    sends to the numbers on the list associated with the sender."""
    from infra.handlers import two_way

    assert DOCS["default_list"]["quote"].startswith("By default, when a phone number is created it is assigned "
                                                    "to the Default opt-out list")
    number = standin.number["PhoneNumberId"]
    assert sms.describe_phone_numbers(PhoneNumberIds=[number])["PhoneNumbers"][0]["OptOutListName"] == "Default"
    # A pool of its own, on a list of its own, with an opt-out of its own.
    member = standin.add_phone_number("+12065550111")
    pool = standin.add_pool([member["PhoneNumberId"]])["PoolId"]
    sms.create_opt_out_list(OptOutListName="acme-pool")
    sms.update_pool(PoolId=pool, OptOutListName="acme-pool")
    stopped, put, during, pool_before, pool_during = (f"+1425555{n:04d}" for n in (101, 102, 103, 104, 105))
    standin.receive(stopped, OURS, "STOP")  # texted STOP before the deploy
    sms.put_opted_out_number(OptOutListName="Default", OptedOutNumber=put)  # put there by a call
    sms.put_opted_out_number(OptOutListName="acme-pool", OptedOutNumber=pool_before)
    keywords = [{"Keyword": "HELP", "Message": "Call 206 555 0199", "Action": "AUTOMATIC_RESPONSE"}]

    def event(request, identity, physical_id=None, old=None, words=keywords):
        props = {"Identity": identity, "TopicArn": TOPIC, "ChannelRoleArn": OUR_ROLE, "Stage": "test",
                 "Keywords": words}
        return {"RequestType": request, "ResourceProperties": props, "PhysicalResourceId": physical_id,
                "OldResourceProperties": old and old["ResourceProperties"]}

    first = event("Create", number)
    created = two_way.on_event(first, sms=sms)
    assert created["Data"]["OptOutListName"] == "Default"
    assert refused(sms, number, stopped) and refused(sms, number, put)
    standin.receive(during, OURS, "STOP")  # while the stack lives
    listed = sms.describe_opted_out_numbers(OptOutListName=created["Data"]["OptOutListName"])["OptedOutNumbers"]
    assert {n["OptedOutNumber"] for n in listed} == {stopped, put, during}  # what the app reads and writes
    assert not refused(sms, number, pool_before)  # another list's entry stays there

    # An update on the same identity (keywords changed): the same physical id, the same list.
    changed = event("Update", number, created["PhysicalResourceId"], first, words=keywords + [
        {"Keyword": "START", "Message": "You are back", "Action": "OPT_IN"}])
    assert two_way.on_event(changed, sms=sms)["PhysicalResourceId"] == created["PhysicalResourceId"]
    assert all(refused(sms, number, n) for n in (stopped, put, during))

    # originationIdentity changes to the pool: Create there (a new id), then CloudFormation deletes the old.
    moved = two_way.on_event(event("Update", pool, created["PhysicalResourceId"], changed), sms=sms)
    assert moved["PhysicalResourceId"] != created["PhysicalResourceId"]
    assert moved["Data"]["OptOutListName"] == "acme-pool"
    assert refused(sms, pool, pool_before)
    two_way.on_event(event("Delete", number, created["PhysicalResourceId"]), sms=sms)
    assert all(refused(sms, number, n) for n in (stopped, put, during))
    standin.receive(pool_during, "+12065550111", "STOP")
    assert refused(sms, pool, pool_during)

    # The stack is deleted.
    two_way.on_event(event("Delete", pool, moved["PhysicalResourceId"]), sms=sms)
    assert all(refused(sms, pool, n) for n in (pool_before, pool_during))
    assert all(refused(sms, number, n) for n in (stopped, put, during))
    assert [sms.describe_phone_numbers(PhoneNumberIds=[number])["PhoneNumbers"][0]["OptOutListName"],
            sms.describe_pools(PoolIds=[pool])["Pools"][0]["OptOutListName"]] == ["Default", "acme-pool"]
    assert standin.sent == []  # every send above was a refused or dry run


# -- issue 20: an identity with a TwoWayChannelRole of its own --------------------------------------------

def test_a_channel_role_of_the_identitys_own_is_replaced_while_the_stack_lives_then_put_back(sms, standin):
    """End User Messaging publishes as the identity's TwoWayChannelRole where it has one, and that role
    cannot reach the stack's topic or key. The model does not let it be cleared (IamRoleArn is at least
    20 characters), so the stack hands its own role over, and puts the identity's back on Delete."""
    from infra.handlers import two_way

    pid = standin.number["PhoneNumberId"]
    for operation in ("UpdatePhoneNumber", "UpdatePool"):
        assert MODEL.operation_model(operation).input_shape.members["TwoWayChannelRole"].metadata["min"] == 20
    with pytest.raises(ParamValidationError, match="TwoWayChannelRole"):  # botocore refuses it before sending
        sms.update_phone_number(PhoneNumberId=pid, TwoWayChannelRole="")
    with pytest.raises(ApiError, match="TwoWayChannelRole"):  # and so does the stand-in, by the same model
        standin.handle("UpdatePhoneNumber", {"PhoneNumberId": pid, "TwoWayChannelRole": ""})
    sms.update_phone_number(PhoneNumberId=pid, TwoWayChannelRole=THEIR_ROLE)
    props = {"Identity": pid, "TopicArn": TOPIC, "ChannelRoleArn": OUR_ROLE, "Stage": "test", "Keywords": []}
    done = two_way.on_event({"RequestType": "Create", "ResourceProperties": props}, sms=sms)
    on = sms.describe_phone_numbers(PhoneNumberIds=[pid])["PhoneNumbers"][0]
    assert (on["TwoWayEnabled"], on["TwoWayChannelArn"], on["TwoWayChannelRole"]) == (True, TOPIC, OUR_ROLE)
    two_way.on_event({"RequestType": "Delete", "ResourceProperties": props,
                      "PhysicalResourceId": done["PhysicalResourceId"]}, sms=sms)
    assert sms.describe_phone_numbers(PhoneNumberIds=[pid])["PhoneNumbers"][0]["TwoWayChannelRole"] == THEIR_ROLE
    # Without a role of its own to hand over, the identity is refused, naming its role, and left alone.
    with pytest.raises(two_way.TwoWayError, match=f"TwoWayChannelRole {THEIR_ROLE}.*every reply would be lost"):
        two_way.on_event({"RequestType": "Create", "ResourceProperties": {
            **props, "ChannelRoleArn": None}}, sms=sms)
    assert sms.describe_phone_numbers(PhoneNumberIds=[pid])["PhoneNumbers"][0]["TwoWayEnabled"] is False
