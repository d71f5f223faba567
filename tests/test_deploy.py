"""What a first `cdk deploy` on a fresh account needs, checked against AWS's own sources: botocore's
service models (in the venv), the policies AWS documents (``tests/aws_docs/``, each naming its
source) and End User Messaging's supported-country lists (``app/chalicelib/countries.json``)."""
import json
import re

import botocore.session
import pytest
from aws_cdk.assertions import Match
from botocore.validate import ParamValidator

from infra.config import StageConfig, StageConfigError

from . import aws_docs
from .synth import ROOT, SMS_VOICE_STAGE

SESSION = botocore.session.get_session()
# AwsCustomResource names services and actions as the JavaScript SDK v3 does.
SDK_SERVICES = {"SNS": "sns", "CloudWatchLogs": "logs", "PinpointSMSVoiceV2": "pinpoint-sms-voice-v2"}


documented = aws_docs.document


def resources_of(template, kind: str) -> dict:
    return template.find_resources(kind)


def sdk_calls(template) -> list[dict]:
    """Every AwsCustomResource call of a template: {"service", "action", "parameters", ...}."""
    calls = []
    for resource in template.find_resources("Custom::AWS").values():
        for key in ("Create", "Update", "Delete"):
            if key in resource["Properties"]:
                calls.append(json.loads(concrete(resource["Properties"][key])))
    return calls


def concrete(value) -> str:
    """A template string with its references filled by example values."""
    if isinstance(value, str):
        return value
    return "".join(p if isinstance(p, str) else
                   "123456789012" if p.get("Ref") == "AWS::AccountId" else
                   "aws" if p.get("Ref") == "AWS::Partition" else
                   "arn:aws:iam::123456789012:role/example" for p in value["Fn::Join"][1])


# End User Messaging also assumes the two-way channel role (tests/test_two_way_stack.py checks that one).
TWO_WAY_ROLES = "TwoWay"


def role_policies(template, principal: str) -> list[dict]:
    """The statements of the policies (inline or attached) of the roles a service principal assumes
    (but the two-way channel role)."""
    roles = {name for name, role in template.find_resources("AWS::IAM::Role").items()
             if principal in json.dumps(role["Properties"]["AssumeRolePolicyDocument"])
             and not name.startswith(TWO_WAY_ROLES)}
    found = []
    for name in roles:
        for inline in template.to_json()["Resources"][name]["Properties"].get("Policies", []):
            found += inline["PolicyDocument"]["Statement"]
    for policy in template.find_resources("AWS::IAM::Policy").values():
        if {r["Ref"] for r in policy["Properties"]["Roles"]} & roles:
            found += policy["Properties"]["PolicyDocument"]["Statement"]
    return found


def as_list(value) -> list:
    return value if isinstance(value, list) else [value]


# 1. SNS's delivery-status log groups: created only where missing, never owned by the stack.

def test_the_stack_never_owns_the_sns_delivery_status_log_groups(template):
    """SNS creates these groups itself and they outlive a destroy: a stack that created them by
    name would fail in any account that has used SNS SMS logging, and on every deploy after destroy."""
    assert "DirectPublishToPhoneNumber" not in json.dumps(template.find_resources("AWS::Logs::LogGroup"))


def test_each_sns_group_is_created_if_missing_then_given_retention(template):
    calls = {(c["action"], c["parameters"]["logGroupName"]): c for c in sdk_calls(template)
             if c["service"] == "CloudWatchLogs"}
    names = {name for _, name in calls}
    assert names == {"sns/us-east-1/123456789012/DirectPublishToPhoneNumber",
                     "sns/us-east-1/123456789012/DirectPublishToPhoneNumber/Failure"}
    for name in names:
        create = calls[("createLogGroup", name)]
        # The error CloudWatch Logs raises for a group that exists (botocore's model), ignored.
        errors = {e.name for e in SESSION.get_service_model("logs").operation_model("CreateLogGroup").error_shapes}
        assert create["ignoreErrorCodesMatching"] in errors
        assert create["ignoreErrorCodesMatching"] == "ResourceAlreadyExistsException"
        assert calls[("putRetentionPolicy", name)]["parameters"]["retentionInDays"] == 90
    for resource in template.find_resources("Custom::AWS").values():
        if "LogGroup" in json.dumps(resource["Properties"].get("Create", "")):
            assert "Delete" not in resource["Properties"]  # destroy leaves them for the next deploy


def test_subscription_filters_attach_only_after_the_groups_exist(template):
    resources = template.to_json()["Resources"]
    retention = {name for name, r in resources.items()
                 if r["Type"] == "Custom::AWS" and "putRetentionPolicy" in json.dumps(r["Properties"]["Create"])}
    assert len(retention) == 2
    sns_filters = [f for f in template.find_resources("AWS::Logs::SubscriptionFilter").values()
                   if "DirectPublishToPhoneNumber" in json.dumps(f["Properties"]["LogGroupName"])]
    assert len(sns_filters) == 2
    for subscription in sns_filters:
        assert retention <= set(subscription["DependsOn"])


def test_every_custom_resource_call_is_a_valid_call_of_botocores_model(template, prod_template,
                                                                       sms_voice_template, mms_template):
    seen = set()
    for t in (template, prod_template, sms_voice_template, mms_template):
        for call in sdk_calls(t):
            model = SESSION.get_service_model(SDK_SERVICES[call["service"]])
            operation = call["action"][0].upper() + call["action"][1:]
            assert operation in model.operation_names, call
            report = ParamValidator().validate(call.get("parameters", {}), model.operation_model(operation).input_shape)
            assert not report.has_errors(), report.generate_report()
            seen.add(operation)
    assert {"CreateLogGroup", "PutRetentionPolicy", "SetSMSAttributes", "SetTextMessageSpendLimitOverride",
            "SetMediaMessageSpendLimitOverride"} <= seen


# 2. Spend limits: within a new account's quota, on both providers.

def test_the_example_stages_deploy_on_a_new_account():
    """SetSMSAttributes refuses a MonthlySpendLimit above the account's quota, $1 on a new account."""
    stages = json.loads((ROOT / "cdk.json").read_text())["context"]["stages"]
    for name, raw in stages.items():
        config = StageConfig.from_dict(name, raw)
        assert config.monthly_spend_limit_usd in (None, 1), name


def test_sms_voice_spend_limits_follow_monthly_spend_limit_usd(sms_voice_template):
    calls = {c["action"]: c["parameters"] for c in sdk_calls(sms_voice_template)}
    assert calls["setTextMessageSpendLimitOverride"] == {"MonthlyLimit": SMS_VOICE_STAGE["monthlySpendLimitUsd"]}
    assert calls["setMediaMessageSpendLimitOverride"] == {"MonthlyLimit": SMS_VOICE_STAGE["monthlySpendLimitUsd"]}
    # SNS's own limit is not End User Messaging's: an sms-voice stage leaves it alone.
    assert "MonthlySpendLimit" not in json.dumps(calls["setSMSAttributes"])
    for resource in sms_voice_template.find_resources("Custom::AWS").values():
        assert "Delete" not in resource["Properties"]


@pytest.mark.parametrize("metric", ["TextMessageMonthlySpend", "MediaMessageMonthlySpend"])
def test_sms_voice_spend_alarms_at_80_percent(sms_voice_template, metric):
    sms_voice_template.has_resource_properties("AWS::CloudWatch::Alarm", {
        "Namespace": "AWS/SMSVoice", "MetricName": metric, "Threshold": 0.8,
        "AlarmActions": [{"Ref": Match.string_like_regexp("MonitoringAlarms")}]})
    assert not sms_voice_template.find_resources("AWS::CloudWatch::Alarm", {
        "Properties": {"MetricName": "SMSMonthToDateSpentUSD"}})


# 3. Protect configuration: End User Messaging's own country lists.

def test_protect_rules_follow_end_user_messagings_own_country_lists(mms_template):
    from chalicelib.sending import countries

    (protect,) = mms_template.find_resources("AWS::SMSVOICE::ProtectConfiguration").values()
    rules = protect["Properties"]["CountryRuleSet"]
    sms = {r["CountryCode"]: r["ProtectStatus"] for r in rules["SMS"]}
    mms = {r["CountryCode"]: r["ProtectStatus"] for r in rules["MMS"]}
    assert set(sms) == countries.SMS and len(sms) == len(rules["SMS"])
    assert {code for code, status in sms.items() if status == "ALLOW"} == {"US", "CA"}
    assert mms == {"US": "ALLOW", "CA": "ALLOW"}  # MMS exists only for the US and Canada
    assert "AC" not in sms and "TA" not in sms  # phonenumbers regions End User Messaging does not take


def test_a_country_end_user_messaging_does_not_serve_fails_the_synth(tmp_path):
    from .synth import synth_stage

    with pytest.raises(Exception) as failure:
        synth_stage(tmp_path, "dev", {"originationIdentity": "phone-abc", "allowedCountries": ["US", "IR"]})
    assert "allowedCountries IR" in failure.value.stderr.decode()


# 4. The End User Messaging event destination.

def test_the_event_destination_role_has_the_documented_policy_and_comes_first(mms_template):
    (statement,) = documented(aws_docs.SMS_VOICE_LOGS_DESTINATION_ROLE)["Statement"]
    ours = role_policies(mms_template, "sms-voice.amazonaws.com")
    assert {a for s in ours for a in as_list(s["Action"])} == set(statement["Action"])
    (destination_set,) = mms_template.find_resources("AWS::SMSVOICE::ConfigurationSet").items()
    name, config_set = destination_set
    policies = [n for n, p in mms_template.find_resources("AWS::IAM::Policy").items()
                if p["Properties"]["PolicyDocument"]["Statement"] == ours]
    assert set(policies) <= set(config_set["DependsOn"]) and policies
    # The API's LogGroupArn has no ":*" (its pattern in botocore's model rejects it).
    arn = concrete(config_set["Properties"]["EventDestinations"][0]["CloudWatchLogsDestination"]["LogGroupArn"])
    assert not arn.endswith(":*")
    shape = SESSION.get_service_model("pinpoint-sms-voice-v2").shape_for("CloudWatchLogsDestination")
    pattern = shape.members["LogGroupArn"].metadata["pattern"]
    example = arn.replace("arn:aws:iam::123456789012:role/example", "sms-sender-dev-events")
    assert re.fullmatch(pattern, example), (pattern, example)


def test_the_event_destination_role_trusts_only_this_accounts_configuration_set(mms_template):
    roles = [r for name, r in mms_template.find_resources("AWS::IAM::Role").items()
             if "sms-voice.amazonaws.com" in json.dumps(r["Properties"]["AssumeRolePolicyDocument"])
             and not name.startswith(TWO_WAY_ROLES)]
    (role,) = roles
    (trust,) = role["Properties"]["AssumeRolePolicyDocument"]["Statement"]
    assert trust["Condition"]["StringEquals"] == {"aws:SourceAccount": {"Ref": "AWS::AccountId"}}
    assert "configuration-set/sms-sender-dev-config" in json.dumps(trust["Condition"]["ArnLike"])


# 5 and 6. Sends are granted on the identities' real ARNs, never on what a request names.

def grants(template, action: str) -> list[str]:
    found = []
    for policy in template.find_resources("AWS::IAM::Policy").values():
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]:
            if action in as_list(statement["Action"]) and statement["Effect"] == "Allow":
                found.append(sorted(json.dumps(r) for r in as_list(statement["Resource"])))
    return found


def test_sends_are_granted_on_the_pool_sender_ids_configuration_set_and_protect_configuration(sms_voice_template):
    text = grants(sms_voice_template, "sms-voice:SendTextMessage")
    media = grants(sms_voice_template, "sms-voice:SendMediaMessage")
    assert len(text) == 2 and len(media) == 2  # the API and the batch worker; the ingest never sends
    resources = " ".join(text[0])
    assert ":pool/pool-0123456789abcdef0123456789abcdef" in resources
    assert "MessagingConfigurationSet" in resources and "MessagingProtect" in resources
    # The stage's sender id, in each allowed country that takes sender ids: GB and DE, not US or CA.
    assert re.findall(r"sender-id/(\w+)/(\w\w)", resources) == [("MyBrand", "DE"), ("MyBrand", "GB")]
    assert "sender-id" not in " ".join(media[0])  # MMS never goes from a sender id


@pytest.mark.parametrize("identity, arn", [
    ("phone-0123abc", "phone-number/phone-0123abc"),
    ("pool-0123abc", "pool/pool-0123abc"),
    ("arn:aws:sms-voice:us-east-1:111122223333:phone-number/phone-9", "phone-number/phone-9"),
])
def test_every_accepted_identity_form_becomes_its_real_arn(identity, arn):
    import aws_cdk as cdk
    from infra.api import SenderApi
    from infra.messaging import EndUserMessaging

    stack = cdk.Stack(cdk.App(), "S", env=cdk.Environment(account="111122223333", region="us-east-1"))
    config = StageConfig.from_dict("eum", {"smsProvider": "sms-voice", "originationIdentity": identity})
    text, media = SenderApi.sms_voice_resources(config, stack, EndUserMessaging(stack, "M", config=config))
    resolved = json.dumps([stack.resolve(a) for a in text])
    assert f"sms-voice:us-east-1:111122223333:{arn}" in resolved or identity in resolved
    assert "+1" not in resolved


def test_a_phone_number_as_identity_fails_the_synth_and_says_what_to_use():
    with pytest.raises(StageConfigError) as failure:
        StageConfig.from_dict("eum", {"smsProvider": "sms-voice", "originationIdentity": "+12065550100"})
    message = str(failure.value)
    assert "PhoneNumberId" in message and "describe-phone-numbers" in message
    assert "+12065550100" not in message  # a full number is never printed


# 7. Alarms can reach their topic.

def test_cloudwatch_may_publish_to_the_alarm_topic_for_this_accounts_alarms(template):
    (policy,) = template.find_resources("AWS::SNS::TopicPolicy").values()
    statements = policy["Properties"]["PolicyDocument"]["Statement"]
    allow = [s for s in statements if s["Effect"] == "Allow"]
    (statement,) = allow
    assert statement["Principal"] == {"Service": "cloudwatch.amazonaws.com"}
    assert statement["Action"] == "sns:Publish"
    assert statement["Condition"]["StringEquals"] == {"aws:SourceAccount": {"Ref": "AWS::AccountId"}}
    assert concrete(statement["Condition"]["ArnLike"]["aws:SourceArn"]) == \
        "arn:aws:cloudwatch:us-east-1:123456789012:alarm:*"
    # The SSL-only Deny is still there.
    assert any(s["Effect"] == "Deny" for s in statements)


def test_smoke_test_alarm_is_an_output(template):
    outputs = template.to_json()["Outputs"]
    assert "SmokeAlarmName" in outputs and "MonitoringDeadLetters" in json.dumps(outputs["SmokeAlarmName"])


# 9. SNS's delivery-status role.

def test_the_sns_delivery_status_role_has_the_documented_actions_on_its_two_groups_only(template):
    (statement,) = documented(aws_docs.SNS_DELIVERY_STATUS_ROLE)["Statement"]
    ours = role_policies(template, "sns.amazonaws.com")
    assert {a for s in ours for a in as_list(s["Action"])} == set(statement["Action"])
    for s in ours:
        for resource in as_list(s["Resource"]):
            assert re.fullmatch(r"arn:aws:logs:us-east-1:123456789012:log-group:sns/us-east-1/123456789012/"
                                r"DirectPublishToPhoneNumber(/Failure)?(:\*)?", concrete(resource)), resource
    (attributes,) = [r for r in template.find_resources("Custom::AWS").values()
                     if "setSMSAttributes" in json.dumps(r["Properties"]["Create"])]
    assert "SnsDeliveryStatusRole" in json.dumps(attributes["DependsOn"])
    # The account keeps pointing at the role after a destroy, so the role keeps its permissions:
    # inline, retained with it, not in a separate policy resource that a destroy deletes.
    (role,) = [r for r in template.find_resources("AWS::IAM::Role").values()
               if "sns.amazonaws.com" in json.dumps(r["Properties"]["AssumeRolePolicyDocument"])]
    assert role["DeletionPolicy"] == "Retain" and role["Properties"]["Policies"]
    assert not [p for p in template.find_resources("AWS::IAM::Policy").values()
                if "DeliveryLogging" in json.dumps(p["Properties"]["Roles"])]


def test_sns_sms_metrics_are_read_where_sns_puts_them(template):
    """SNS publishes SMS-to-phone delivery counts under PhoneNumber=PhoneNumberDirect (aws-cdk-lib's
    canned SNS metrics, generated from CloudWatch's own metric list, say the same); the month's
    spend has no dimensions."""
    for metric in ("NumberOfNotificationsFailed",):
        template.has_resource_properties("AWS::CloudWatch::Alarm", {
            "Namespace": "AWS/SNS", "MetricName": metric,
            "Dimensions": [{"Name": "PhoneNumber", "Value": "PhoneNumberDirect"}]})
    board = json.dumps(template.find_resources("AWS::CloudWatch::Dashboard"))
    assert board.count('\\"PhoneNumber\\",\\"PhoneNumberDirect\\"') == 2


# 10. Receipts the ingest could not apply are kept, and someone is told.

def test_a_failed_ingest_goes_to_a_queue_after_two_retries_and_alarms(template):
    (config,) = [c for c in template.find_resources("AWS::Lambda::EventInvokeConfig").values()
                 if c["Properties"]["FunctionName"] == {"Ref": "StatusIngest"}]  # the sweep has one too
    properties = config["Properties"]
    assert properties["FunctionName"] == {"Ref": "StatusIngest"} and properties["Qualifier"] == "$LATEST"
    assert properties["MaximumRetryAttempts"] == 2
    queue = properties["DestinationConfig"]["OnFailure"]["Destination"]["Fn::GetAtt"][0]
    assert template.to_json()["Resources"][queue]["Type"] == "AWS::SQS::Queue"
    template.has_resource_properties("AWS::CloudWatch::Alarm", {
        "MetricName": "ApproximateNumberOfMessagesVisible", "Threshold": 1,
        "Dimensions": [{"Name": "QueueName", "Value": {"Fn::GetAtt": [queue, "QueueName"]}}]})
    # Lambda sends to the destination with the function's own role.
    ingest_role = template.to_json()["Resources"]["StatusIngest"]["Properties"]["Role"]["Fn::GetAtt"][0]
    allowed = [s for p in template.find_resources("AWS::IAM::Policy").values()
               if {"Ref": ingest_role} in p["Properties"]["Roles"]
               for s in p["Properties"]["PolicyDocument"]["Statement"] if s["Action"] == "sqs:SendMessage"]
    assert allowed and allowed[0]["Resource"] == {"Fn::GetAtt": [queue, "Arn"]}


@pytest.mark.parametrize("stage", ["dev", "sms-voice"])
def test_nothing_kept_after_destroy_blocks_the_next_deploy(template, sms_voice_template, stage):
    """deploy, destroy, deploy: a resource the stack retains on delete must not carry a fixed
    physical name, or the next deploy's create of that name fails."""
    from .test_infra import PHYSICAL_NAMES

    synthesized = template if stage == "dev" else sms_voice_template
    for name, resource in synthesized.to_json()["Resources"].items():
        if resource.get("DeletionPolicy") == "Retain":
            fixed = PHYSICAL_NAMES & set(resource.get("Properties", {}))
            assert not fixed, f"{name} is retained on delete and named {fixed}"
