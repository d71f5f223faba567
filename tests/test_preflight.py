"""``make preflight``: the checklist a user sees, against stubbed AWS answers.

Every AWS call goes through a botocore ``Stubber``, which checks each request's parameters (and each canned
response) against botocore's own service model, so a call the real API would refuse fails here too. Nothing
leaves the machine: a call without a queued answer fails the test.
"""
from __future__ import annotations

import io
import json
from datetime import datetime, timezone

import boto3
import pytest
from botocore.credentials import Credentials
from botocore.stub import Stubber

from ops import mask, report, stage_settings
from ops import preflight

REGION = "us-east-1"
ACCOUNT = "123456789012"
NOW = datetime(2026, 1, 1, tzinfo=timezone.utc)


class StubbedSession:
    """Stands in for boto3.Session: one client per service, each with an active Stubber."""

    region_name = REGION

    def __init__(self):
        self.stubs: dict[str, Stubber] = {}
        self.clients = {}
        self.credentials = Credentials("testing", "testing")  # what boto3 found in the shell (None: nothing)

    def get_credentials(self):
        return self.credentials

    def client(self, service, region_name=None):
        if service not in self.clients:
            # Fake keys: the Stubber answers before anything is signed or sent.
            client = boto3.client(service, region_name=REGION, aws_access_key_id="testing",
                                  aws_secret_access_key="testing")
            self.stubs[service] = Stubber(client)
            self.stubs[service].activate()
            self.clients[service] = client
        return self.clients[service]

    def stub(self, service) -> Stubber:
        self.client(service)
        return self.stubs[service]


@pytest.fixture
def aws(monkeypatch):
    for name in ("CDK_DEFAULT_REGION", "AWS_PROFILE", "AWS_ENDPOINT_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    session = StubbedSession()
    yield session
    for stub in session.stubs.values():
        stub.assert_no_pending_responses()


def checklist(aws, raw, stage="dev", context=None):
    """Run preflight; return (exit status, printed lines)."""
    out = io.StringIO()
    status = report(preflight.run(stage, raw, context or {}, aws), out)
    return status, out.getvalue().splitlines()


def line(lines, name):
    """The printed line of one check, with its fix line if it has one."""
    for i, text in enumerate(lines):
        if text[6:].startswith(name + ":"):
            return text + ("\n" + lines[i + 1] if i + 1 < len(lines) and lines[i + 1].startswith("      fix:") else "")
    raise AssertionError(f"no line for {name!r} in:\n" + "\n".join(lines))


# Canned AWS answers, shaped as the service models say (the Stubber checks them).

def caller(aws):
    aws.stub("sts").add_response("get_caller_identity", {
        "UserId": "AIDAEXAMPLE", "Account": ACCOUNT, "Arn": f"arn:aws:iam::{ACCOUNT}:user/deployer"}, {})


def phone(number_id="phone-abc", number="+18885550123", capabilities=("SMS", "MMS"), status="ACTIVE"):
    return {"PhoneNumberArn": f"arn:aws:sms-voice:{REGION}:{ACCOUNT}:phone-number/{number_id}",
            "PhoneNumberId": number_id, "PhoneNumber": number, "Status": status, "IsoCountryCode": "US",
            "MessageType": "TRANSACTIONAL", "NumberCapabilities": list(capabilities), "NumberType": "TOLL_FREE",
            "MonthlyLeasingPrice": "2.00", "TwoWayEnabled": False, "SelfManagedOptOutsEnabled": False,
            "OptOutListName": "Default", "DeletionProtectionEnabled": False, "CreatedTimestamp": NOW}


def sns_sandbox(aws, in_sandbox=False):
    aws.stub("sns").add_response("get_sms_sandbox_account_status", {"IsInSandbox": in_sandbox}, {})


def sns_quota(aws, value):
    aws.stub("service-quotas").add_response("list_service_quotas", {"Quotas": [
        {"ServiceCode": "sns", "QuotaName": "Topics", "Value": 100000.0},
        {"ServiceCode": "sns", "QuotaName": "Account spend threshold for SMS", "Value": float(value)},
    ]}, {"ServiceCode": "sns"})


def sms_voice_tier(aws, tier="PRODUCTION"):
    aws.stub("pinpoint-sms-voice-v2").add_response(
        "describe_account_attributes", {"AccountAttributes": [{"Name": "ACCOUNT_TIER", "Value": tier}]}, {})


def spend_limits(aws, text=1000, media=1000):
    aws.stub("pinpoint-sms-voice-v2").add_response("describe_spend_limits", {"SpendLimits": [
        {"Name": "TEXT_MESSAGE_MONTHLY_SPEND_LIMIT", "EnforcedLimit": 0, "MaxLimit": text, "Overridden": False},
        {"Name": "VOICE_MESSAGE_MONTHLY_SPEND_LIMIT", "EnforcedLimit": 0, "MaxLimit": 1, "Overridden": False},
        {"Name": "MEDIA_MESSAGE_MONTHLY_SPEND_LIMIT", "EnforcedLimit": 0, "MaxLimit": media, "Overridden": False},
    ]}, {})


def log_groups(aws, others=(), missing=False, region_name=REGION):
    """SNS's two delivery-status groups, with ``others``' subscription filters on each."""
    base = f"sns/{region_name}/{ACCOUNT}/DirectPublishToPhoneNumber"
    for group in (base, f"{base}/Failure"):
        if missing:
            aws.stub("logs").add_client_error("describe_subscription_filters", "ResourceNotFoundException",
                                              "The specified log group does not exist.",
                                              expected_params={"logGroupName": group})
            continue
        aws.stub("logs").add_response("describe_subscription_filters", {"subscriptionFilters": [
            {"filterName": name, "logGroupName": group, "filterPattern": "",
             "destinationArn": f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:x"} for name in others]},
            {"logGroupName": group})


def metrics_role(aws, present=True):
    roles = [{"Path": "/aws-service-role/sms-voice.amazonaws.com/", "RoleName": "AWSServiceRoleForSMSVoice",
              "RoleId": "AROAEXAMPLEEXAMPLE123", "Arn": f"arn:aws:iam::{ACCOUNT}:role/aws-service-role/"
              "sms-voice.amazonaws.com/AWSServiceRoleForSMSVoice", "CreateDate": NOW}] if present else []
    aws.stub("iam").add_response("list_roles", {"Roles": roles},
                                 {"PathPrefix": "/aws-service-role/sms-voice.amazonaws.com/"})


def bootstrap(aws, version="28", status="UPDATE_COMPLETE"):
    aws.stub("cloudformation").add_response("describe_stacks", {"Stacks": [
        {"StackName": "CDKToolkit", "CreationTime": NOW, "StackStatus": status}]}, {"StackName": "CDKToolkit"})
    aws.stub("ssm").add_response("get_parameter", {"Parameter": {
        "Name": "/cdk-bootstrap/hnb659fds/version", "Type": "String", "Value": version}},
        {"Name": "/cdk-bootstrap/hnb659fds/version"})


def two_way_reads(aws, enabled=False, outputs=None, identity_on=False):
    """What the two-way checks read, for a stage whose identity can receive: a number of the account with
    two-way on (none unless ``enabled``; not asked when the identity has it on itself), and the stage's
    stack (not deployed unless ``outputs``)."""
    if not identity_on:
        aws.stub("pinpoint-sms-voice-v2").add_response(
            "describe_phone_numbers", {"PhoneNumbers": [phone("phone-on", "+12065550111")] if enabled else []},
            {"Filters": [{"Name": "two-way-enabled", "Values": ["true"]}], "MaxResults": 1})
    if outputs is None:
        aws.stub("cloudformation").add_client_error(
            "describe_stacks", "ValidationError", "Stack with id SmsSender-dev does not exist",
            expected_params={"StackName": "SmsSender-dev"})
    else:
        aws.stub("cloudformation").add_response("describe_stacks", {"Stacks": [{
            "StackName": "SmsSender-dev", "CreationTime": NOW, "StackStatus": "UPDATE_COMPLETE",
            "Outputs": [{"OutputKey": key, "OutputValue": value} for key, value in outputs.items()]}]},
            {"StackName": "SmsSender-dev"})


SNS_STAGE = {"smsProvider": "sns", "monthlySpendLimitUsd": 20}
EUM_STAGE = {"smsProvider": "sms-voice", "originationIdentity": "phone-abc", "monthlySpendLimitUsd": 50}


def test_passing_sns_account_prints_all_ok_and_exits_0(aws):
    caller(aws)
    sns_sandbox(aws)
    sns_quota(aws, 100)
    log_groups(aws)
    bootstrap(aws)
    status, lines = checklist(aws, SNS_STAGE)
    assert status == 0
    assert lines[:7] == [
        f"ok    credentials: account {ACCOUNT} as arn:aws:iam::{ACCOUNT}:user/deployer",
        "ok    stage settings: dev: smsProvider sns, MMS off",
        "ok    region: us-east-1 offers End User Messaging SMS and SNS SMS",
        "ok    SNS SMS sandbox: out of the sandbox: SMS can go to any number",
        "ok    SNS SMS spend quota: monthlySpendLimitUsd $20 is within $100 (Service Quotas)",
        "ok    SNS delivery-status log groups: they exist, with room for this stage's subscription filter",
        "ok    CDK bootstrap: CDKToolkit UPDATE_COMPLETE, bootstrap version 28 (needs 6+)",
    ]
    assert lines[-1] == "7 ok, 0 warning(s), 0 failed, 0 skipped"


def test_passing_sms_voice_stage_with_mms(aws):
    caller(aws)
    aws.stub("pinpoint-sms-voice-v2").add_response(
        "describe_phone_numbers", {"PhoneNumbers": [phone()]}, {"PhoneNumberIds": ["phone-abc"]})
    two_way_reads(aws)
    sms_voice_tier(aws)
    spend_limits(aws)
    metrics_role(aws)
    log_groups(aws)
    bootstrap(aws)
    status, lines = checklist(aws, EUM_STAGE)
    assert status == 0, "\n".join(lines)
    assert line(lines, "origination identity") == (
        "ok    origination identity: phone number phone-abc (TOLL_FREE, US) is ACTIVE with SMS and MMS")
    assert line(lines, "End User Messaging sandbox") == "ok    End User Messaging sandbox: account tier PRODUCTION"
    assert line(lines, "End User Messaging spend limits") == (
        "ok    End User Messaging spend limits: monthlySpendLimitUsd $50 is within the account limits "
        "(SMS $1000, MMS $1000)")
    assert not any(text[6:].startswith("SNS SMS") for text in lines)  # an sms-voice stage sends no SMS through SNS


def test_e164_identity_fails_and_names_the_phone_number_id(aws):
    caller(aws)
    sms = aws.stub("pinpoint-sms-voice-v2")
    # The lookup pages through the account's numbers (DescribePhoneNumbers has no filter by number).
    sms.add_response("describe_phone_numbers", {"PhoneNumbers": [phone("phone-other", "+12065550100")],
                                                "NextToken": "page2"}, {})
    sms.add_response("describe_phone_numbers", {"PhoneNumbers": [phone("phone-0123abc", "+18885550123")]},
                     {"NextToken": "page2"})
    # The checks after it go on with the number's id.
    sms.add_response("describe_phone_numbers", {"PhoneNumbers": [phone("phone-0123abc")]},
                     {"PhoneNumberIds": ["phone-0123abc"]})
    two_way_reads(aws)
    sns_sandbox(aws)
    sms_voice_tier(aws)
    spend_limits(aws)
    metrics_role(aws)
    log_groups(aws)
    bootstrap(aws)
    status, lines = checklist(aws, {"smsProvider": "sns", "originationIdentity": "+18885550123"})
    assert status == 1
    assert line(lines, "stage settings") == (
        "FAIL  stage settings: originationIdentity is the number +188******23; IAM authorizes sends on its id, "
        "phone-0123abc\n"
        "      fix: set \"originationIdentity\": \"phone-0123abc\" in context.stages.dev of cdk.json "
        "(the checks below use it)")
    assert line(lines, "origination identity").startswith("ok    origination identity: phone number phone-0123abc")
    assert not any("+18885550123" in text or "+12065550100" in text for text in lines)  # numbers are masked


def test_e164_identity_not_in_the_account(aws):
    caller(aws)
    aws.stub("pinpoint-sms-voice-v2").add_response(
        "describe_phone_numbers", {"PhoneNumbers": [phone("phone-other", "+12065550100")]}, {})
    bootstrap(aws)
    status, lines = checklist(aws, {"smsProvider": "sms-voice", "originationIdentity": "+18885550123"})
    assert status == 1
    text = line(lines, "stage settings")
    assert text.startswith("FAIL  stage settings: originationIdentity is the number +188******23, and no phone "
                           "number in this account and us-east-1 has it")
    assert "aws pinpoint-sms-voice-v2 describe-phone-numbers --region us-east-1" in text
    assert line(lines, "account checks") == "skip  account checks: the stage settings must parse first"


def test_other_stage_setting_errors_are_shown_as_they_are(aws):
    caller(aws)
    bootstrap(aws)
    status, lines = checklist(aws, {"smsProvider": "twilio"})
    assert status == 1
    assert line(lines, "stage settings") == (
        "FAIL  stage settings: stage dev: smsProvider must be one of sns, sms-voice\n"
        "      fix: edit context.stages.dev in cdk.json")


def test_number_without_mms_fails_with_how_to_find_one(aws):
    caller(aws)
    aws.stub("pinpoint-sms-voice-v2").add_response(
        "describe_phone_numbers", {"PhoneNumbers": [phone(capabilities=("SMS", "VOICE"))]},
        {"PhoneNumberIds": ["phone-abc"]})
    two_way_reads(aws)
    sms_voice_tier(aws)
    spend_limits(aws)
    metrics_role(aws)
    log_groups(aws)
    bootstrap(aws)
    status, lines = checklist(aws, EUM_STAGE)
    assert status == 1
    assert line(lines, "origination identity") == (
        "FAIL  origination identity: phone number phone-abc (TOLL_FREE, US) lacks MMS\n"
        "      fix: set originationIdentity to a number or pool with SMS and MMS (MMS is on whenever "
        "originationIdentity is set); list numbers with `aws pinpoint-sms-voice-v2 describe-phone-numbers "
        "--region us-east-1 --query 'PhoneNumbers[].[PhoneNumberId,NumberCapabilities,Status]' --output text`")


def test_number_not_active_fails(aws):
    caller(aws)
    aws.stub("pinpoint-sms-voice-v2").add_response(
        "describe_phone_numbers", {"PhoneNumbers": [phone(status="PENDING")]}, {"PhoneNumberIds": ["phone-abc"]})
    two_way_reads(aws)
    sms_voice_tier(aws)
    spend_limits(aws)
    metrics_role(aws)
    log_groups(aws)
    bootstrap(aws)
    _, lines = checklist(aws, EUM_STAGE)
    assert line(lines, "origination identity").startswith(
        "FAIL  origination identity: phone number phone-abc (TOLL_FREE, US) is PENDING, not ACTIVE\n"
        "      fix: wait until it is ACTIVE")


@pytest.mark.parametrize("capabilities, expected", [
    ([["SMS"], ["SMS", "MMS"]], "ok    origination identity: pool pool-abc (2 identities) is ACTIVE with SMS and MMS"),
    ([["SMS"]], "FAIL  origination identity: pool pool-abc (1 identities) lacks MMS\n"
                "      fix: add a number with MMS to the pool (`aws pinpoint-sms-voice-v2 "
                "associate-origination-identity --pool-id pool-abc --origination-identity phone-… "
                "--iso-country-code US`)"),
])
def test_pool_identity_needs_a_member_with_each_capability(aws, capabilities, expected):
    caller(aws)
    sms = aws.stub("pinpoint-sms-voice-v2")
    sms.add_response("describe_pools", {"Pools": [{
        "PoolArn": f"arn:aws:sms-voice:{REGION}:{ACCOUNT}:pool/pool-abc", "PoolId": "pool-abc", "Status": "ACTIVE",
        "MessageType": "TRANSACTIONAL", "TwoWayEnabled": False, "SelfManagedOptOutsEnabled": False,
        "OptOutListName": "Default", "SharedRoutesEnabled": False, "DeletionProtectionEnabled": False,
        "CreatedTimestamp": NOW}]}, {"PoolIds": ["pool-abc"]})
    sms.add_response("list_pool_origination_identities", {"PoolId": "pool-abc", "OriginationIdentities": [
        {"OriginationIdentityArn": f"arn:aws:sms-voice:{REGION}:{ACCOUNT}:phone-number/phone-{i}",
         "OriginationIdentity": f"phone-{i}", "IsoCountryCode": "US", "NumberCapabilities": caps}
        for i, caps in enumerate(capabilities)]}, {"PoolId": "pool-abc"})
    two_way_reads(aws)
    sms_voice_tier(aws)
    spend_limits(aws)
    metrics_role(aws)
    log_groups(aws)
    bootstrap(aws)
    _, lines = checklist(aws, {**EUM_STAGE, "originationIdentity": "pool-abc"})
    assert line(lines, "origination identity") == expected


def test_identity_arn_in_another_region_fails_before_any_lookup(aws):
    caller(aws)
    sms_voice_tier(aws)
    spend_limits(aws)
    metrics_role(aws)
    log_groups(aws)
    bootstrap(aws)
    arn = f"arn:aws:sms-voice:us-west-2:{ACCOUNT}:phone-number/phone-abc"
    status, lines = checklist(aws, {**EUM_STAGE, "originationIdentity": arn})
    assert status == 1
    assert line(lines, "origination identity") == (
        f"FAIL  origination identity: {arn} is in us-west-2, the stack deploys to us-east-1\n"
        "      fix: deploy in us-west-2 (`export AWS_DEFAULT_REGION=us-west-2`: the media bucket must be in the "
        "identity's region), or use an identity in us-east-1")


def test_identity_arn_of_another_account_fails(aws):
    caller(aws)
    sms_voice_tier(aws)
    spend_limits(aws)
    metrics_role(aws)
    log_groups(aws)
    bootstrap(aws)
    arn = f"arn:aws:sms-voice:{REGION}:999999999999:pool/pool-abc"
    _, lines = checklist(aws, {**EUM_STAGE, "originationIdentity": arn})
    assert line(lines, "origination identity").startswith(
        f"FAIL  origination identity: {arn} belongs to account 999999999999, these credentials to {ACCOUNT}\n"
        "      fix: run with credentials for account 999999999999")


def test_identity_that_does_not_exist(aws):
    caller(aws)
    aws.stub("pinpoint-sms-voice-v2").add_client_error(
        "describe_phone_numbers", service_error_code="ResourceNotFoundException",
        service_message="Resource not found", http_status_code=404, expected_params={"PhoneNumberIds": ["phone-abc"]})
    sms_voice_tier(aws)
    spend_limits(aws)
    metrics_role(aws)
    log_groups(aws)
    bootstrap(aws)
    _, lines = checklist(aws, EUM_STAGE)
    assert line(lines, "origination identity").startswith(
        f"FAIL  origination identity: phone-abc does not exist in account {ACCOUNT}, us-east-1\n"
        "      fix: set originationIdentity to one you own here; list them with "
        "`aws pinpoint-sms-voice-v2 describe-phone-numbers --region us-east-1")


def test_sender_id_arn_cannot_carry_mms(aws):
    caller(aws)
    arn = f"arn:aws:sms-voice:{REGION}:{ACCOUNT}:sender-id/MyBrand/GB"
    aws.stub("pinpoint-sms-voice-v2").add_response("describe_sender_ids", {"SenderIds": [{
        "SenderIdArn": arn, "SenderId": "MyBrand", "IsoCountryCode": "GB", "MessageTypes": ["TRANSACTIONAL"],
        "MonthlyLeasingPrice": "0.00", "DeletionProtectionEnabled": False, "Registered": True}]},
        {"SenderIds": [{"SenderId": "MyBrand", "IsoCountryCode": "GB"}]})
    sms_voice_tier(aws)
    spend_limits(aws)
    metrics_role(aws)
    log_groups(aws)
    bootstrap(aws)
    _, lines = checklist(aws, {**EUM_STAGE, "originationIdentity": arn})
    assert line(lines, "origination identity").startswith(
        "FAIL  origination identity: sender id MyBrand (GB) lacks MMS")


def test_sns_sandbox_is_a_warning_with_both_ways_out(aws):
    caller(aws)
    sns_sandbox(aws, in_sandbox=True)
    log_groups(aws)
    bootstrap(aws)
    status, lines = checklist(aws, {"smsProvider": "sns"})
    assert status == 0  # deploys fine; only the destinations are limited
    text = line(lines, "SNS SMS sandbox")
    assert text.startswith("WARN  SNS SMS sandbox: this account is in the SNS SMS sandbox")
    assert "Sandbox destination phone numbers > Add phone number" in text and "Exit SMS sandbox" in text
    assert line(lines, "SNS SMS spend quota") == (
        "ok    SNS SMS spend quota: monthlySpendLimitUsd is not set: the stack leaves the account's limit alone")


def test_sms_voice_sandbox_is_a_warning(aws):
    caller(aws)
    aws.stub("pinpoint-sms-voice-v2").add_response(
        "describe_phone_numbers", {"PhoneNumbers": [phone()]}, {"PhoneNumberIds": ["phone-abc"]})
    two_way_reads(aws)
    sms_voice_tier(aws, "SANDBOXED")
    spend_limits(aws, text=1, media=1)
    metrics_role(aws)
    log_groups(aws)
    bootstrap(aws)
    status, lines = checklist(aws, {**EUM_STAGE, "monthlySpendLimitUsd": 1})
    assert status == 0
    text = line(lines, "End User Messaging sandbox")
    assert text.startswith("WARN  End User Messaging sandbox: account tier SANDBOXED")
    assert "create-verified-destination-number" in text


def test_sns_spend_limit_above_the_service_quota_fails_with_the_support_route(aws):
    caller(aws)
    sns_sandbox(aws)
    sns_quota(aws, 1)
    log_groups(aws)
    bootstrap(aws)
    status, lines = checklist(aws, {"smsProvider": "sns", "monthlySpendLimitUsd": 100})
    assert status == 1
    text = line(lines, "SNS SMS spend quota")
    assert text.startswith("FAIL  SNS SMS spend quota: monthlySpendLimitUsd $100 is above the quota $1 "
                           "(Service Quotas); SetSMSAttributes would refuse it and the deploy would roll back\n"
                           "      fix: raise the quota to at least $100 in us-east-1: AWS Support Center > Create case "
                           "> Service limit increase > Limit type \"SNS Text Messaging\"")
    assert "or lower monthlySpendLimitUsd in cdk.json to 1 or less" in text


def test_sns_spend_quota_falls_back_to_the_accounts_current_limit(aws):
    caller(aws)
    sns_sandbox(aws)
    aws.stub("service-quotas").add_client_error(
        "list_service_quotas", service_error_code="AccessDeniedException", service_message="not allowed",
        http_status_code=400, expected_params={"ServiceCode": "sns"})
    aws.stub("sns").add_response("get_sms_attributes", {"attributes": {"MonthlySpendLimit": "1"}},
                                 {"attributes": ["MonthlySpendLimit"]})
    log_groups(aws)
    bootstrap(aws)
    _, lines = checklist(aws, {"smsProvider": "sns", "monthlySpendLimitUsd": 100})
    text = line(lines, "SNS SMS spend quota")
    assert text.startswith("FAIL  SNS SMS spend quota: monthlySpendLimitUsd $100 is above the quota $1 "
                           "(SNS MonthlySpendLimit)")
    assert "If AWS has already raised your quota to $100 or more, $1 is only the account's current limit" in text


def test_second_stage_without_account_settings_does_not_set_the_sns_limit(aws):
    caller(aws)
    sns_sandbox(aws)
    log_groups(aws)
    bootstrap(aws)
    _, lines = checklist(aws, {"smsProvider": "sns", "monthlySpendLimitUsd": 100, "accountSettings": False})
    assert line(lines, "SNS SMS spend quota").startswith("ok    SNS SMS spend quota: accountSettings is false")


def test_sms_voice_spend_limit_above_the_account_limit_fails(aws):
    caller(aws)
    aws.stub("pinpoint-sms-voice-v2").add_response(
        "describe_phone_numbers", {"PhoneNumbers": [phone()]}, {"PhoneNumberIds": ["phone-abc"]})
    two_way_reads(aws)
    sms_voice_tier(aws)
    spend_limits(aws, text=1, media=1)
    metrics_role(aws)
    log_groups(aws)
    bootstrap(aws)
    status, lines = checklist(aws, EUM_STAGE)
    assert status == 1
    assert line(lines, "End User Messaging spend limits") == (
        "FAIL  End User Messaging spend limits: monthlySpendLimitUsd $50 is above the account limit for SMS and MMS "
        "(SMS $1, MMS $1)\n"
        "      fix: request a spending quota of at least $50 for End User Messaging SMS in us-east-1 (AWS Support "
        "Center > Create case > Service limit increase; "
        "https://docs.aws.amazon.com/sms-voice/latest/userguide/awssupport-spend-threshold.html), or lower "
        "monthlySpendLimitUsd in cdk.json to 1 or less")


def test_sns_stage_with_mms_checks_only_the_media_spend_limit(aws):
    caller(aws)
    aws.stub("pinpoint-sms-voice-v2").add_response(
        "describe_phone_numbers", {"PhoneNumbers": [phone()]}, {"PhoneNumberIds": ["phone-abc"]})
    two_way_reads(aws)
    sns_sandbox(aws)
    sns_quota(aws, 100)
    sms_voice_tier(aws)
    spend_limits(aws, text=1, media=100)
    metrics_role(aws)
    log_groups(aws)
    bootstrap(aws)
    status, lines = checklist(aws, {"smsProvider": "sns", "originationIdentity": "phone-abc",
                                    "monthlySpendLimitUsd": 50})
    assert status == 0, "\n".join(lines)
    assert line(lines, "End User Messaging spend limits") == (
        "ok    End User Messaging spend limits: monthlySpendLimitUsd $50 is within the account limits (MMS $100)")


def test_missing_bootstrap_stack(aws):
    caller(aws)
    sns_sandbox(aws)
    log_groups(aws)
    aws.stub("cloudformation").add_client_error(
        "describe_stacks", service_error_code="ValidationError", service_message="Stack with id CDKToolkit does "
        "not exist", http_status_code=400, expected_params={"StackName": "CDKToolkit"})
    status, lines = checklist(aws, {"smsProvider": "sns"})
    assert status == 1
    assert line(lines, "CDK bootstrap") == (
        "FAIL  CDK bootstrap: no CDKToolkit stack in this account and region\n"
        "      fix: run `make bootstrap` with these credentials and region (it also upgrades an old bootstrap stack)")


@pytest.mark.parametrize("version, status, expected", [
    ("5", "CREATE_COMPLETE", "FAIL  CDK bootstrap: bootstrap version 5; this app needs 6 or newer"),
    ("28", "ROLLBACK_COMPLETE", "FAIL  CDK bootstrap: the CDKToolkit stack is ROLLBACK_COMPLETE"),
    ("28", "UPDATE_IN_PROGRESS", "FAIL  CDK bootstrap: the CDKToolkit stack is UPDATE_IN_PROGRESS"),
])
def test_old_or_broken_bootstrap(aws, version, status, expected):
    caller(aws)
    sns_sandbox(aws)
    log_groups(aws)
    aws.stub("cloudformation").add_response("describe_stacks", {"Stacks": [
        {"StackName": "CDKToolkit", "CreationTime": NOW, "StackStatus": status}]}, {"StackName": "CDKToolkit"})
    if status == "CREATE_COMPLETE":
        aws.stub("ssm").add_response("get_parameter", {"Parameter": {"Value": version}},
                                     {"Name": "/cdk-bootstrap/hnb659fds/version"})
    _, lines = checklist(aws, {"smsProvider": "sns"})
    assert line(lines, "CDK bootstrap").startswith(expected + "\n      fix: run `make bootstrap`")


def test_custom_bootstrap_qualifier_is_honoured(aws):
    caller(aws)
    sns_sandbox(aws)
    log_groups(aws)
    aws.stub("cloudformation").add_response("describe_stacks", {"Stacks": [
        {"StackName": "CDKToolkit", "CreationTime": NOW, "StackStatus": "CREATE_COMPLETE"}]})
    aws.stub("ssm").add_response("get_parameter", {"Parameter": {"Value": "21"}},
                                 {"Name": "/cdk-bootstrap/myqual/version"})
    status, _ = checklist(aws, {"smsProvider": "sns"}, context={"@aws-cdk/core:bootstrapQualifier": "myqual"})
    assert status == 0


def test_bad_credentials_stop_the_checklist(aws):
    aws.stub("sts").add_client_error("get_caller_identity", service_error_code="ExpiredToken",
                                     service_message="The security token included in the request is expired",
                                     http_status_code=403)
    status, lines = checklist(aws, {"smsProvider": "sns"})
    assert status == 1
    assert lines[:2] == [
        "FAIL  credentials: ExpiredToken: The security token included in the request is expired",
        "      fix: give this shell credentials for the target account: `aws configure`, or "
        "`aws sso login --profile NAME` and `export AWS_PROFILE=NAME`"]
    assert lines[-1] == "0 ok, 0 warning(s), 1 failed, 0 skipped"


@pytest.mark.parametrize("credentials, expected", [
    (Credentials("testing", "testing"), ["skip  credentials: found; checked with AWS once a region is set"]),
    (None, ["FAIL  credentials: Unable to locate credentials",
            "      fix: give this shell credentials for the target account: `aws configure`, or "
            "`aws sso login --profile NAME` and `export AWS_PROFILE=NAME`"]),
])
def test_no_region_and_whether_credentials_are_there(aws, monkeypatch, credentials, expected):
    """A run without a region makes no call, and says what else is missing: a new user fixes both at once."""
    monkeypatch.delenv("AWS_DEFAULT_REGION")
    aws.region_name, aws.credentials = None, credentials
    status, lines = checklist(aws, {"smsProvider": "sns"})
    assert status == 1
    assert lines[:-2] == ["FAIL  region: no region is set",
                          "      fix: export AWS_DEFAULT_REGION=us-east-1 (or the region of your origination identity)",
                          *expected]
    assert aws.clients == {}


@pytest.mark.parametrize("region_name, expected", [
    ("ap-east-1", "FAIL  region: ap-east-1 does not offer End User Messaging SMS"),
    ("ap-northeast-2", "WARN  region: ap-northeast-2 offers End User Messaging SMS; check that it is on the SNS "
                       "SMS list before sending SMS through SNS"),
    ("CDK", "ok    region: us-west-2 offers End User Messaging SMS and SNS SMS"),  # CDK_DEFAULT_REGION wins
])
def test_region(aws, monkeypatch, region_name, expected):
    if region_name == "CDK":
        monkeypatch.setenv("CDK_DEFAULT_REGION", "us-west-2")
    else:
        monkeypatch.setenv("AWS_DEFAULT_REGION", region_name)
    caller(aws)
    sns_sandbox(aws)
    log_groups(aws, region_name="us-west-2" if region_name == "CDK" else region_name)
    bootstrap(aws)
    _, lines = checklist(aws, {"smsProvider": "sns"})
    assert line(lines, "region").startswith(expected)


def test_main_reads_the_stage_from_cdk_json(aws, tmp_path, monkeypatch):
    cdk_json = tmp_path / "cdk.json"
    cdk_json.write_text('{"context": {"stages": {"qa": {"smsProvider": "sns"}}}}')
    monkeypatch.setattr(preflight, "stage_settings", lambda stage: stage_settings(stage, cdk_json))
    caller(aws)
    sns_sandbox(aws)
    log_groups(aws)
    bootstrap(aws)
    out = io.StringIO()
    assert preflight.main(["--stage", "qa"], session=aws, out=out) == 0
    assert "ok    stage settings: qa: smsProvider sns, MMS off" in out.getvalue()


def test_mask_keeps_only_the_ends():
    assert mask("+14254147755") == "+142******55"
    assert mask("+33755512501") == "+337******01"


def test_an_endpoint_override_stops_before_any_call(aws, monkeypatch):
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:4566")  # what `make dev` uses
    status, lines = checklist(aws, {"smsProvider": "sns"})
    assert status == 1
    assert lines[:2] == ["FAIL  AWS endpoint: AWS_ENDPOINT_URL is http://127.0.0.1:4566, so these checks would not "
                         "reach AWS", "      fix: `unset AWS_ENDPOINT_URL` in this shell"]


def test_unreachable_aws_is_not_blamed_on_credentials(aws):
    from botocore.exceptions import EndpointConnectionError

    class Unreachable:
        def get_caller_identity(self):
            raise EndpointConnectionError(endpoint_url="https://sts.us-east-1.amazonaws.com/")

    result = preflight.check_credentials(Unreachable())
    assert (result.status, result.fix) == ("FAIL", "check the network connection and any proxy settings")


def test_sms_voice_stage_needs_only_end_user_messaging_in_its_region(monkeypatch):
    config = preflight.StageConfig.from_dict("dev", EUM_STAGE)
    result = preflight.check_region("ap-northeast-2", config)
    assert (result.status, result.detail) == ("ok", "ap-northeast-2 offers End User Messaging SMS")


# -- SNS's account-wide delivery-status groups, and End User Messaging's metrics role ---------------

def test_a_third_subscription_filter_does_not_fit_on_the_sns_groups(aws):
    """CloudWatch Logs allows two subscription filters per log group; each stage adds one."""
    caller(aws)
    sns_sandbox(aws)
    log_groups(aws, others=("SmsSender-prod-ApiIngestSubscription0-X", "someone-elses-shipper"))
    bootstrap(aws)
    status, lines = checklist(aws, {"smsProvider": "sns"})
    assert status == 1
    text = line(lines, "SNS delivery-status log groups")
    assert text.startswith("FAIL  SNS delivery-status log groups: no room for this stage's subscription filter")
    assert "someone-elses-shipper" in text and "delete-subscription-filter" in text


def test_this_stages_own_filter_does_not_count_against_it(aws):
    caller(aws)
    sns_sandbox(aws)
    log_groups(aws, others=("SmsSender-dev-ApiIngestSubscription0-X", "SmsSender-prod-ApiIngestSubscription0-Y"))
    bootstrap(aws)
    status, lines = checklist(aws, {"smsProvider": "sns"})
    assert status == 0, "\n".join(lines)


@pytest.mark.parametrize("account_settings, expected", [
    (True, "ok    SNS delivery-status log groups: the deploy creates them"),
    (False, "FAIL  SNS delivery-status log groups: sns/us-east-1/123456789012/DirectPublishToPhoneNumber, "),
])
def test_missing_sns_groups(aws, account_settings, expected):
    caller(aws)
    sns_sandbox(aws)
    log_groups(aws, missing=True)
    bootstrap(aws)
    _, lines = checklist(aws, {"smsProvider": "sns", "accountSettings": account_settings})
    assert line(lines, "SNS delivery-status log groups").startswith(expected)


def test_no_end_user_messaging_metrics_without_its_service_linked_role(aws):
    caller(aws)
    aws.stub("pinpoint-sms-voice-v2").add_response(
        "describe_phone_numbers", {"PhoneNumbers": [phone()]}, {"PhoneNumberIds": ["phone-abc"]})
    two_way_reads(aws)
    sms_voice_tier(aws)
    spend_limits(aws)
    metrics_role(aws, present=False)
    log_groups(aws)
    bootstrap(aws)
    status, lines = checklist(aws, EUM_STAGE)
    assert status == 0  # a warning: sends work, the spend alarms see nothing
    assert line(lines, "End User Messaging metrics") == (
        "WARN  End User Messaging metrics: no service-linked role for sms-voice.amazonaws.com: End User Messaging "
        "publishes no CloudWatch metrics, so the spend alarms and dashboard stay empty\n"
        "      fix: aws iam create-service-linked-role --aws-service-name sms-voice.amazonaws.com")


# -- two-way (issue 20, items 3 and 6) -----------------------------------------------------------------

def eum_account(aws, number=None):
    """A passing End User Messaging account around the identity ``number`` (a DescribePhoneNumbers entry)."""
    caller(aws)
    aws.stub("pinpoint-sms-voice-v2").add_response(
        "describe_phone_numbers", {"PhoneNumbers": [number or phone()]}, {"PhoneNumberIds": ["phone-abc"]})


def rest_of_account(aws):
    sms_voice_tier(aws)
    spend_limits(aws)
    metrics_role(aws)
    log_groups(aws)
    bootstrap(aws)


def test_the_two_way_countries_are_the_sms_tables_two_way_column():
    from apppath import APP_DIR

    table = json.loads((APP_DIR / "chalicelib" / "sending" / "countries.json").read_text())
    assert table["columns"]["twoWay"] == "Supports two-way SMS"
    assert table["source"]["sms"] == preflight.TWO_WAY_COUNTRIES_URL.split("#")[0]
    assert {"US", "CA", "GB", "AU"} <= preflight.TWO_WAY_COUNTRIES
    assert not {"AR", "BD", "PH", "VN"} & preflight.TWO_WAY_COUNTRIES  # rows that say No


def test_a_number_in_a_country_without_two_way_fails_naming_twoway_false(aws):
    eum_account(aws, {**phone(), "IsoCountryCode": "AR", "NumberType": "LONG_CODE"})
    two_way_reads(aws)
    rest_of_account(aws)
    status, lines = checklist(aws, EUM_STAGE)
    assert status == 1
    assert line(lines, "two-way country") == (
        "FAIL  two-way country: phone number phone-abc (LONG_CODE, AR): End User Messaging has no two-way SMS in AR "
        f"({preflight.TWO_WAY_COUNTRIES_URL}); turning it on would fail (TWO_WAY_NOT_SUPPORTED_IN_COUNTRY) and the "
        "deploy would roll back\n"
        "      fix: set \"twoWay\": false in context.stages.dev of cdk.json: the stage then sends as before and "
        "receives no replies (the stack builds none of the two-way resources)")


def test_a_pool_with_some_numbers_in_a_country_without_two_way_is_a_warning(aws):
    caller(aws)
    sms = aws.stub("pinpoint-sms-voice-v2")
    sms.add_response("describe_pools", {"Pools": [{
        "PoolArn": f"arn:aws:sms-voice:{REGION}:{ACCOUNT}:pool/pool-abc", "PoolId": "pool-abc", "Status": "ACTIVE",
        "MessageType": "TRANSACTIONAL", "TwoWayEnabled": True, "SelfManagedOptOutsEnabled": False,
        "OptOutListName": "Default", "SharedRoutesEnabled": False, "DeletionProtectionEnabled": False,
        "CreatedTimestamp": NOW}]}, {"PoolIds": ["pool-abc"]})
    sms.add_response("list_pool_origination_identities", {"PoolId": "pool-abc", "OriginationIdentities": [
        {"OriginationIdentityArn": f"arn:aws:sms-voice:{REGION}:{ACCOUNT}:phone-number/phone-{country}",
         "OriginationIdentity": f"phone-{country}", "IsoCountryCode": country, "NumberCapabilities": ["SMS", "MMS"]}
        for country in ("US", "PH")]}, {"PoolId": "pool-abc"})
    two_way_reads(aws, identity_on=True)  # the pool has two-way on: no need to look further
    rest_of_account(aws)
    status, lines = checklist(aws, {**EUM_STAGE, "originationIdentity": "pool-abc"})
    assert status == 0
    assert line(lines, "two-way country").startswith(
        "WARN  two-way country: pool pool-abc (2 identities): its numbers in PH cannot receive replies")
    assert line(lines, "two-way region") == (
        "ok    two-way region: pool pool-abc (2 identities) has two-way on already, in us-east-1")


@pytest.mark.parametrize("enabled, expected", [
    (True, "ok    two-way region: us-east-1 offers two-way SMS: phone number phone-on of this account has it on"),
    (False, "WARN  two-way region: AWS lists no Regions for two-way SMS, and no number of this account has it on in "
            "us-east-1, so preflight cannot tell whether us-east-1 offers it; if not, the deploy fails with "
            "TWO_WAY_NOT_SUPPORTED_IN_REGION and rolls back, saying so\n"
            "      fix: deploy and see; if it fails so, set \"twoWay\": false in context.stages.dev of cdk.json: the "
            "stage then sends as before and receives no replies (the stack builds none of the two-way resources)"),
])
def test_the_region_check_looks_for_a_number_with_two_way_on(aws, enabled, expected):
    eum_account(aws)
    two_way_reads(aws, enabled=enabled)
    rest_of_account(aws)
    status, lines = checklist(aws, EUM_STAGE)
    assert status == 0
    assert line(lines, "two-way country") == "ok    two-way country: US offers two-way SMS (End User Messaging's SMS table)"
    assert line(lines, "two-way region") == expected


@pytest.mark.parametrize("outputs, expected", [
    (None, "ok    HELP and STOP: not deployed yet: the deploy sets the stage's answers; should End User Messaging "
           "refuse to change HELP or STOP (AWS's pages disagree on whether it may), the deploy goes on, and the "
           "stack's KeywordsNotSet output, preflight and make smoke say which answer it kept"),
    ({"KeywordsNotSet": "none"}, "ok    HELP and STOP: the deployed stage's identity answers them with the stage's "
                                 "text"),
    ({"KeywordsNotSet": "STOP: End User Messaging refused PutKeyword (ConflictException "
                        "RESOURCE_MODIFICATION_NOT_ALLOWED) and keeps its own answer"},
     "WARN  HELP and STOP: the deployed stage's identity keeps End User Messaging's own answer: STOP: End User "
     "Messaging refused PutKeyword (ConflictException RESOURCE_MODIFICATION_NOT_ALLOWED) and keeps its own answer\n"
     "      fix: replies and opt-outs work as before; to see the answer it gives, `aws pinpoint-sms-voice-v2 "
     "describe-keywords --origination-identity <the stage's identity> --keywords HELP STOP`"),
    ({"ApiUrl": "https://x"}, "ok    HELP and STOP: SmsSender-dev predates the KeywordsNotSet output; the next deploy "
                              "sets the stage's answers and reports any refusal there"),
])
def test_a_refused_help_or_stop_answer_is_reported_once_deployed(aws, outputs, expected):
    eum_account(aws)
    two_way_reads(aws, outputs=outputs)
    rest_of_account(aws)
    status, lines = checklist(aws, EUM_STAGE)
    assert status == 0  # the stage works either way
    assert line(lines, "HELP and STOP") == expected


def test_with_twoway_false_nothing_of_two_way_is_checked(aws):
    eum_account(aws, {**phone(), "IsoCountryCode": "AR"})
    rest_of_account(aws)  # no two-way reads are queued: a call for one would fail the test
    status, lines = checklist(aws, {**EUM_STAGE, "twoWay": False})
    assert status == 0, "\n".join(lines)
    assert line(lines, "two-way") == ("ok    two-way: off (twoWay false): the stage receives no replies, and the "
                                      "stack leaves the identity's two-way settings and keywords alone")
    assert not any(text[6:].startswith(("two-way country", "two-way region", "HELP and STOP")) for text in lines)


def test_an_identity_that_was_not_found_skips_the_two_way_checks(aws):
    caller(aws)
    aws.stub("pinpoint-sms-voice-v2").add_client_error(
        "describe_phone_numbers", service_error_code="ResourceNotFoundException",
        service_message="Resource not found", http_status_code=404, expected_params={"PhoneNumberIds": ["phone-abc"]})
    rest_of_account(aws)
    _, lines = checklist(aws, EUM_STAGE)
    assert line(lines, "two-way") == "skip  two-way: the origination identity must be found first"
