"""The two-way part of the stack (``infra/two_way.py``, wired in ``infra/api.py``, ``infra/monitoring.py`` and
``infra/stack.py``), read from the templates synthesized once per session: the pool stage
(``sms_voice_template``: an sms-voice stage with keywords) and the phone-number stage (``mms_template``: an SNS
stage whose End User Messaging number receives), against the dev stage, which has no such identity."""
import ast
import json

import pytest

from infra.config import Keyword, StageConfig, StageConfigError, put_keyword_model
from infra.handlers import two_way as handler_module
from infra.two_way import TwoWay

from . import aws_docs, synth
from .test_iam_reference import ACCOUNT, REGION, resolve

TWO_WAY = {"sms_voice_template": synth.SMS_VOICE_STAGE, "mms_template": synth.MMS_STAGE}
FUNCTION = "InboundReply"


def resources(template) -> dict:
    return template.to_json()["Resources"]


def of_type(template, kind: str) -> dict:
    return {name: r for name, r in resources(template).items() if r["Type"] == kind}


def ref_id(value) -> str:
    return value["Ref"] if "Ref" in value else value["Fn::GetAtt"][0]


def config_of(fixture: str) -> StageConfig:
    return StageConfig.from_dict("eum" if fixture == "sms_voice_template" else "dev", TWO_WAY[fixture])


def env(template, function_id: str) -> dict:
    return resources(template)[function_id]["Properties"]["Environment"]["Variables"]


def the_resource(template) -> tuple[str, dict]:
    (found,) = of_type(template, "Custom::TwoWayMessaging").items()
    return found


def topic_id(template) -> str:
    return ref_id(the_resource(template)[1]["Properties"]["TopicArn"])


def role_statements(template, role_id: str) -> list[dict]:
    found = []
    for policy in of_type(template, "AWS::IAM::Policy").values():
        if {"Ref": role_id} in policy["Properties"]["Roles"]:
            found += policy["Properties"]["PolicyDocument"]["Statement"]
    return found


def grants(template, role_id: str) -> dict[str, set[str]]:
    """Resource (resolved to an example ARN) -> the actions a role is allowed on it."""
    found: dict[str, set[str]] = {}
    cdk_json = template.to_json()
    for statement in role_statements(template, role_id):
        if statement["Effect"] != "Allow":
            continue
        actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
        targets = statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]]
        for target in targets:
            found.setdefault(resolve(cdk_json, target), set()).update(actions)
    return found


def function_role(template, function_id: str) -> str:
    return ref_id(resources(template)[function_id]["Properties"]["Role"])


def handler_role(template) -> str:
    (function,) = [f for f in of_type(template, "AWS::Lambda::Function").values()
                   if f["Properties"].get("Handler") == "two_way.on_event"]
    return ref_id(function["Properties"]["Role"])


# -- which stages ---------------------------------------------------------------------------------

def test_a_stage_without_an_end_user_messaging_number_builds_none_of_it(template, prod_template, one_way_template):
    """Nor does a stage whose number could receive but whose ``twoWay`` is false (issue 20, item 3)."""
    for stage in (template, prod_template, one_way_template):
        assert not of_type(stage, "Custom::TwoWayMessaging")
        assert not of_type(stage, "AWS::SMSVOICE::OptOutList")
        assert FUNCTION not in resources(stage)  # Chalice packages it; the stack leaves it out
        assert len(of_type(stage, "AWS::SNS::Topic")) == 1  # the alarms' topic only
        assert not [n for n in resources(stage) if "Inbound" in n or "TwoWay" in n]
        for function_id in ("APIHandler", "BatchWorker"):
            assert not {"INBOUND_ENABLED", "OPT_OUT_LIST_NAME", "ORIGINATION_NUMBER"} & set(env(stage, function_id))
    # A sender id cannot receive, and neither can SNS itself.
    sender_id = "arn:aws:sms-voice:us-east-1:111122223333:sender-id/MyBrand/GB"
    assert not StageConfig.from_dict("x", {"originationIdentity": sender_id}).two_way
    assert not StageConfig.from_dict("x", {}).two_way
    assert all(config_of(name).two_way for name in TWO_WAY)
    # The one-way stage still sends MMS through its number (End User Messaging's configuration set).
    assert of_type(one_way_template, "AWS::SMSVOICE::ConfigurationSet")


@pytest.mark.parametrize("settings, two_way", [
    ({"originationIdentity": "phone-abc"}, True),  # on by default where the identity can receive
    ({"originationIdentity": "pool-abc", "twoWay": True}, True),
    ({"originationIdentity": "phone-abc", "twoWay": False}, False),
    ({"originationIdentity": "arn:aws:sms-voice:us-east-1:111122223333:sender-id/MyBrand/GB"}, False),
])
def test_two_way_is_on_wherever_the_identity_can_receive_unless_twoway_is_false(settings, two_way):
    config = StageConfig.from_dict("x", settings)
    assert config.two_way is two_way
    environment = config.app_environment(media_bucket="b", messages_table="m", idempotency_table="i",
                                         batch_queue_url="q", batch_dlq_url="d", max_receives=5, worker_concurrency=1)
    assert "INBOUND_ENABLED" not in environment  # the stack gives the list only where it builds two-way


@pytest.mark.parametrize("settings, complaint", [
    ({"originationIdentity": "phone-abc", "twoWay": "no"}, "twoWay must be true or false"),
    ({"twoWay": True}, "twoWay true needs an originationIdentity that can receive"),
    ({"originationIdentity": "arn:aws:sms-voice:us-east-1:111122223333:sender-id/MyBrand/GB", "twoWay": True},
     "twoWay true needs"),
    ({"originationIdentity": "phone-abc", "twoWay": False,
      "keywords": [{"keyword": "JOIN", "message": "m", "action": "OPT_IN"}]}, "twoWay is false"),
])
def test_wrong_twoway_settings_fail_with_a_clear_message(settings, complaint):
    with pytest.raises(StageConfigError, match=complaint):
        StageConfig.from_dict("x", settings)


# -- the topic, its key and the queue ----------------------------------------------------------------

def documented(action: str) -> dict:
    (statement,) = [s for s in aws_docs.document(aws_docs.SMS_VOICE_TWO_WAY_TOPIC)["Statement"]
                    if action in json.dumps(s["Action"])]
    return statement


def filled(statement: dict, **values) -> dict:
    """A documented statement with its placeholders (accountId, region, snsTopicArn) filled in."""
    text = json.dumps(statement)
    for name, value in values.items():
        text = text.replace(name, value)
    return json.loads(text)


def normal(statement: dict) -> dict:
    actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
    return {**{k: v for k, v in statement.items() if k != "Sid"}, "Action": sorted(actions)}


@pytest.mark.parametrize("fixture", sorted(TWO_WAY))
def test_only_end_user_messaging_of_this_account_may_publish_replies_as_documented(request, fixture):
    template = request.getfixturevalue(fixture)
    cdk_json = template.to_json()
    topic = resources(template)[topic_id(template)]
    assert "FifoTopic" not in topic["Properties"]  # FIFO topics are not supported
    key_id = ref_id(topic["Properties"]["KmsMasterKeyId"])
    key = resources(template)[key_id]["Properties"]
    assert key["EnableKeyRotation"] is True and key.get("KeySpec", "SYMMETRIC_DEFAULT") == "SYMMETRIC_DEFAULT"
    topic_arn = resolve(cdk_json, {"Ref": topic_id(template)})
    key_statement = documented("kms:Decrypt")
    ours = [normal(json.loads(json.dumps(resolve_all(cdk_json, s)))) for s in key["KeyPolicy"]["Statement"]
            if s.get("Principal") == {"Service": "sms-voice.amazonaws.com"}]
    assert ours == [normal(filled(key_statement, accountId=ACCOUNT, region=REGION))]
    # The topic policy: the documented statement, with the same confused-deputy conditions as the key's.
    (policy,) = [p["Properties"] for p in of_type(template, "AWS::SNS::TopicPolicy").values()
                 if {"Ref": topic_id(template)} in p["Properties"]["Topics"]]
    published = [normal(resolve_all(cdk_json, s)) for s in policy["PolicyDocument"]["Statement"]
                 if s["Effect"] == "Allow"]
    expected = filled({**documented("sns:Publish"), "Condition": key_statement["Condition"]},
                      snsTopicArn=topic_arn, accountId=ACCOUNT, region=REGION)
    assert published == [normal(expected)]
    # Nothing but TLS (the rest of the policy is the Deny cdk-nag asks for).
    denies = [s for s in policy["PolicyDocument"]["Statement"] if s["Effect"] == "Deny"]
    assert [s["Condition"] for s in denies] == [{"Bool": {"aws:SecureTransport": "false"}}]


def resolve_all(cdk_json, value):
    """Every intrinsic in a policy statement resolved to its example value."""
    if isinstance(value, dict):
        if len(value) == 1 and next(iter(value)) in ("Ref", "Fn::GetAtt", "Fn::Join", "Fn::Sub"):
            return resolve(cdk_json, value)
        return {k: resolve_all(cdk_json, v) for k, v in value.items()}
    if isinstance(value, list):
        return [resolve_all(cdk_json, v) for v in value]
    return value


@pytest.mark.parametrize("fixture", sorted(TWO_WAY))
def test_replies_wait_in_a_queue_with_their_envelope_and_then_a_dead_letter_queue(request, fixture):
    template = request.getfixturevalue(fixture)
    (subscription,) = [s["Properties"] for s in of_type(template, "AWS::SNS::Subscription").values()
                       if s["Properties"]["TopicArn"] == {"Ref": topic_id(template)}]
    # Not raw: the SNS envelope's Timestamp is the reply's time (the payload has none).
    assert subscription["Protocol"] == "sqs" and not subscription.get("RawMessageDelivery")
    queue_id = ref_id(subscription["Endpoint"])
    queue = resources(template)[queue_id]["Properties"]
    dead_id = ref_id(queue["RedrivePolicy"]["deadLetterTargetArn"])
    dead = resources(template)[dead_id]["Properties"]
    assert queue["RedrivePolicy"]["maxReceiveCount"] == TwoWay.MAX_RECEIVES == 5
    assert queue["SqsManagedSseEnabled"] is True and dead["SqsManagedSseEnabled"] is True
    assert dead["MessageRetentionPeriod"] > queue["MessageRetentionPeriod"]
    function = resources(template)[FUNCTION]["Properties"]
    assert function["Timeout"] == TwoWay.INBOUND_TIMEOUT_SECONDS and queue["VisibilityTimeout"] >= 6 * function["Timeout"]
    # SNS may send to the queue for this topic only; and nothing reaches either queue without TLS.
    policies = [p["Properties"] for p in of_type(template, "AWS::SQS::QueuePolicy").values()]
    (send,) = [s for p in policies if {"Ref": queue_id} in p["Queues"] for s in p["PolicyDocument"]["Statement"]
               if s["Effect"] == "Allow"]
    assert send["Principal"] == {"Service": "sns.amazonaws.com"}
    assert send["Condition"] == {"ArnEquals": {"aws:SourceArn": {"Ref": topic_id(template)}}}
    for queue_ref in (queue_id, dead_id):
        assert any({"Ref": queue_ref} in p["Queues"] and any(
            s["Effect"] == "Deny" and s["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
            for s in p["PolicyDocument"]["Statement"]) for p in policies)
    # The inbound function drains it, 10 at a time, reporting each failure on its own.
    (mapping,) = [m for m in of_type(template, "AWS::Lambda::EventSourceMapping").values()
                  if m["Properties"]["EventSourceArn"] == {"Fn::GetAtt": [queue_id, "Arn"]}]
    assert FUNCTION in json.dumps(mapping["Properties"]["FunctionName"])
    assert mapping["Properties"]["BatchSize"] == 10
    assert mapping["Properties"]["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    # A reply given up on raises the alarm.
    alarms = [a["Properties"] for a in of_type(template, "AWS::CloudWatch::Alarm").values()]
    assert any(a.get("Dimensions") == [{"Name": "QueueName", "Value": {"Fn::GetAtt": [dead_id, "QueueName"]}}]
               and a.get("MetricName") == "ApproximateNumberOfMessagesVisible" and a["Threshold"] == 1 for a in alarms)
    for metric in ("Errors", "Throttles"):
        assert any(a.get("MetricName") == metric and FUNCTION in json.dumps(a.get("Dimensions")) for a in alarms)


# -- the custom resource ---------------------------------------------------------------------------

@pytest.mark.parametrize("fixture", sorted(TWO_WAY))
def test_the_identity_is_pointed_at_the_topic_and_list_with_the_stage_keywords(request, fixture):
    template = request.getfixturevalue(fixture)
    config = config_of(fixture)
    _, resource = the_resource(template)
    props = resource["Properties"]
    assert props["Identity"] == config.origination_identity
    # No opt-out list of the stack's: the identity keeps its own (issue 20, item 1).
    assert not of_type(template, "AWS::SMSVOICE::OptOutList") and "OptOutListName" not in props
    assert props["ChannelRoleArn"] == {"Fn::GetAtt": [channel_role(template), "Arn"]}
    assert props["Stage"] == config.stage  # the refusal's fix names the stage
    assert props["Keywords"] == [{"Keyword": k.keyword, "Message": k.message, "Action": k.action}
                                 for k in config.all_keywords]
    # The topic's policy and key are in place before End User Messaging is pointed at the topic.
    (policy_id,) = [n for n, p in of_type(template, "AWS::SNS::TopicPolicy").items()
                    if {"Ref": topic_id(template)} in p["Properties"]["Topics"]]
    assert {policy_id, topic_id(template)} <= set(resource["DependsOn"])
    # And the channel role with its policy, before it is handed over.
    role_policies = [n for n, p in of_type(template, "AWS::IAM::Policy").items()
                     if {"Ref": channel_role(template)} in p["Properties"]["Roles"]]
    assert {channel_role(template), *role_policies} <= set(resource["DependsOn"])


def channel_role(template) -> str:
    """The two-way construct's role that End User Messaging assumes (not the event destination's)."""
    (role_id,) = [n for n, r in of_type(template, "AWS::IAM::Role").items() if n.startswith("TwoWay")
                  and r["Properties"]["AssumeRolePolicyDocument"]["Statement"][0]["Principal"] ==
                  {"Service": "sms-voice.amazonaws.com"}]
    return role_id


@pytest.mark.parametrize("fixture", sorted(TWO_WAY))
def test_the_channel_role_is_the_documented_one_held_to_this_topic_and_key(request, fixture):
    """The role End User Messaging publishes as on an identity with a TwoWayChannelRole of its own
    (issue 20, item 4): the guide's trust and permission policies
    (tests/aws_docs/sms-voice-two-way-channel-role.json), the key statement narrowed from * to the key."""
    template = request.getfixturevalue(fixture)
    cdk_json = template.to_json()
    fixture_doc = json.loads((aws_docs.HERE / aws_docs.SMS_VOICE_TWO_WAY_CHANNEL_ROLE).read_text())
    role_id = channel_role(template)
    topic_arn = resolve(cdk_json, {"Ref": topic_id(template)})
    key_id = ref_id(resources(template)[topic_id(template)]["Properties"]["KmsMasterKeyId"])
    trust = resources(template)[role_id]["Properties"]["AssumeRolePolicyDocument"]["Statement"]
    assert [normal(resolve_all(cdk_json, s)) for s in trust] == [
        normal(filled(s, accountId=ACCOUNT)) for s in fixture_doc["trust"]["Statement"]]
    documented = [filled(s, snsTopicArn=topic_arn, accountId=ACCOUNT) for s in fixture_doc["document"]["Statement"]]
    assert documented[1]["Resource"] == "*"
    documented[1]["Resource"] = resolve(cdk_json, {"Fn::GetAtt": [key_id, "Arn"]})
    assert sorted((normal(resolve_all(cdk_json, s)) for s in role_statements(template, role_id)), key=json.dumps) == \
        sorted((normal(s) for s in documented), key=json.dumps)


def test_the_pool_stage_sets_its_own_answers_and_defaults_for_the_rest(sms_voice_template):
    _, resource = the_resource(sms_voice_template)
    keywords = {k["Keyword"]: (k["Message"], k["Action"]) for k in resource["Properties"]["Keywords"]}
    assert keywords["HELP"][0].startswith("MyBrand support")  # the stage's own
    assert keywords["STOP"] == ("sms-sender-eum: you are unsubscribed and will get no more messages.", "OPT_OUT")
    assert keywords["START"][1] == "OPT_IN"


def actions_the_handler_calls(identity: str) -> set[str]:
    """Drive the handler through Create, an Update and Delete on the model-checked stand-in account
    of tests/test_two_way_handler.py; the IAM action of every call it made."""
    from .test_two_way_handler import STAGE_KEYWORDS, account, event, props

    aws = account()
    created = handler_module.on_event(event("Create", props(identity, STAGE_KEYWORDS)), sms=aws)
    fewer = props(identity, STAGE_KEYWORDS[:2])
    handler_module.on_event(event("Update", fewer, created["PhysicalResourceId"],
                                  props(identity, STAGE_KEYWORDS)), sms=aws)
    handler_module.on_event(event("Update", props(identity, STAGE_KEYWORDS), created["PhysicalResourceId"], fewer),
                            sms=aws)
    handler_module.on_event(event("Delete", props(identity, STAGE_KEYWORDS), created["PhysicalResourceId"]), sms=aws)
    return {f"sms-voice:{operation}" for operation, _ in aws.calls}


def handled_a_channel_role(identity: str) -> bool:
    """Whether Create hands End User Messaging a role (iam:PassRole), on the handler tests' account."""
    from .test_two_way_handler import STAGE_KEYWORDS, account, event, props

    aws = account()
    handler_module.on_event(event("Create", props(identity, STAGE_KEYWORDS)), sms=aws)
    return any("TwoWayChannelRole" in params for operation, params in aws.calls if operation.startswith("Update"))


@pytest.mark.parametrize("fixture, example", [("sms_voice_template", "pool-0123456789abcdef0123456789abcdef"),
                                              ("mms_template", "phone-0123456789abcdef0123456789abcdef")])
def test_the_handler_may_do_exactly_what_it_does_on_this_one_identity(request, fixture, example):
    template = request.getfixturevalue(fixture)
    config = config_of(fixture)
    identity = config.origination_identity
    arn = identity if identity.startswith("arn:") else f"arn:aws:sms-voice:{REGION}:{ACCOUNT}:pool/{identity}"
    granted = grants(template, handler_role(template))
    sms_voice = {resource: actions for resource, actions in granted.items()
                 if any(a.startswith("sms-voice:") for a in actions)}
    assert set(sms_voice) == {arn}
    assert sms_voice[arn] == actions_the_handler_calls(example)
    # It hands End User Messaging the stack's channel role (an identity with a role of its own: the pool
    # of the handler tests' account has one), so it may pass that role, to that service only.
    assert handled_a_channel_role(example) is (fixture == "sms_voice_template")
    role_arn = resolve(template.to_json(), {"Fn::GetAtt": [channel_role(template), "Arn"]})
    (passing,) = [s for s in role_statements(template, handler_role(template)) if s["Action"] == "iam:PassRole"]
    assert resolve(template.to_json(), passing["Resource"]) == role_arn
    assert passing["Condition"] == {"StringEquals": {"iam:PassedToService": "sms-voice.amazonaws.com"}}
    # And what it may do beyond that: write its own logs.
    assert {a for actions in granted.values() for a in actions} - sms_voice[arn] == {
        "logs:CreateLogStream", "logs:PutLogEvents", "iam:PassRole"}


@pytest.mark.parametrize("fixture", sorted(TWO_WAY))
def test_the_custom_resource_logs_no_phone_number(request, fixture):
    """The handler logs identities and keywords only (tests/test_two_way_handler.py runs under the log
    hygiene check); the Provider framework, which would print the handler's answer (the number, for
    ORIGINATION_NUMBER), logs nothing below FATAL."""
    template = request.getfixturevalue(fixture)
    (framework,) = [f["Properties"] for f in of_type(template, "AWS::Lambda::Function").values()
                    if f["Properties"].get("Handler") == "framework.onEvent"]
    assert framework["LoggingConfig"]["ApplicationLogLevel"] == "FATAL"
    (handler,) = [f["Properties"] for f in of_type(template, "AWS::Lambda::Function").values()
                  if f["Properties"].get("Handler") == "two_way.on_event"]
    for function in (framework, handler):  # each to a log group of the stack's, kept three months
        group = resources(template)[ref_id(function["LoggingConfig"]["LogGroup"])]["Properties"]
        assert group["RetentionInDays"] == 90


def test_the_handler_is_plain_boto3():
    """The asset is this one module, run by Lambda's own Python: nothing beyond the standard library
    and the boto3 the runtime ships."""
    import sys

    tree = ast.parse(open(handler_module.__file__).read())
    imported = {alias.name.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.Import)
                for alias in node.names}
    imported |= {node.module.split(".")[0] for node in ast.walk(tree)
                 if isinstance(node, ast.ImportFrom) and node.module and node.level == 0}
    assert imported - set(sys.stdlib_module_names) == {"boto3", "botocore"}


# -- the app's settings and roles ------------------------------------------------------------------

@pytest.mark.parametrize("fixture", sorted(TWO_WAY))
def test_every_function_gets_the_two_way_settings(request, fixture):
    template = request.getfixturevalue(fixture)
    config = config_of(fixture)
    resource_id, _ = the_resource(template)
    for function_id in ("APIHandler", "BatchWorker", "StatusIngest", "WebhookFanout", "WebhookDelivery", FUNCTION):
        variables = env(template, function_id)
        # The identity's own opt-out list, as the custom resource read it.
        assert variables["INBOUND_ENABLED"] == "1"
        assert variables["OPT_OUT_LIST_NAME"] == {"Fn::GetAtt": [resource_id, "OptOutListName"]}
        assert variables["OPT_OUT_KEYWORDS"].split(",") == list(config.keywords_with("OPT_OUT"))
        assert variables["OPT_IN_KEYWORDS"] == ",".join(config.keywords_with("OPT_IN"))
        if fixture == "mms_template":  # a number: its E.164 form, as the custom resource read it
            assert variables["ORIGINATION_NUMBER"] == {"Fn::GetAtt": [resource_id, "PhoneNumber"]}
        else:  # a pool has several numbers
            assert "ORIGINATION_NUMBER" not in variables
    assert env(template, "APIHandler")["OPT_IN_KEYWORDS"] == ("START" if fixture == "sms_voice_template" else "")


@pytest.mark.parametrize("fixture", ["template", "sms_voice_template", "mms_template"])
def test_the_api_may_manage_the_opt_out_lists_of_its_stage(request, fixture):
    template = request.getfixturevalue(fixture)
    granted = grants(template, function_role(template, "APIHandler"))
    sns = {"sns:ListPhoneNumbersOptedOut", "sns:CheckIfPhoneNumberIsOptedOut", "sns:OptInPhoneNumber"}
    lists = {r: a for r, a in granted.items() if ":opt-out-list/" in r}
    provider = "sms-voice" if fixture == "sms_voice_template" else "sns"
    # SNS's opt-out list is the account's, and its calls take no resource.
    assert (granted.get("*", set()) & sns) == (sns if provider == "sns" else set())
    if fixture == "template":
        assert not lists
    else:  # the identity's own list: its ARN from the name the custom resource read
        resource_id, _ = the_resource(template)
        (statement,) = [s for s in role_statements(template, function_role(template, "APIHandler"))
                        if "sms-voice:PutOptedOutNumber" in s["Action"]]
        assert statement["Resource"]["Fn::Join"][1][-2:] == [
            ":opt-out-list/", {"Fn::GetAtt": [resource_id, "OptOutListName"]}]
        assert lists == {f"arn:aws:sms-voice:{REGION}:{ACCOUNT}:opt-out-list/Default": {
            "sms-voice:DescribeOptedOutNumbers", "sms-voice:PutOptedOutNumber", "sms-voice:DeleteOptedOutNumber"}}


def table_grants(template, function_id: str) -> dict[tuple[str, str], frozenset | None]:
    """(table kind, action) -> the partition keys a condition holds the grant to (None: any), for the
    function's grants on the messages table (and its indexes) and the settings table."""
    cdk_json = template.to_json()
    variables = env(template, "APIHandler")
    kinds = {resolve(cdk_json, {"Fn::GetAtt": [ref_id(variables[name]), "Arn"]}): kind
             for name, kind in (("MESSAGES_TABLE", "messages"), ("WEBHOOKS_TABLE", "settings"))}
    found = {}
    for statement in role_statements(template, function_role(template, function_id)):
        actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
        targets = statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]]
        keys = statement.get("Condition", {}).get("ForAllValues:StringEquals", {}).get("dynamodb:LeadingKeys")
        for target in targets:
            arn = resolve(cdk_json, target)
            table, _, index = arn.partition("/index/")
            if statement["Effect"] == "Allow" and table in kinds:
                for action in actions:
                    found[(kinds[table] + (f"/index/{index}" if index else ""), action)] = \
                        frozenset(keys) if keys else None
    return found


@pytest.mark.parametrize("fixture", sorted(TWO_WAY))
def test_the_inbound_function_stores_replies_and_opt_outs_and_cannot_send(request, fixture):
    from chalicelib.core import schema

    template = request.getfixturevalue(fixture)
    cdk_json = template.to_json()
    logs = resolve(cdk_json, {"Fn::GetAtt": [
        ref_id(resources(template)[FUNCTION]["Properties"]["LoggingConfig"]["LogGroup"]), "Arn"]})
    (subscription,) = [s["Properties"] for s in of_type(template, "AWS::SNS::Subscription").values()
                       if s["Properties"]["TopicArn"] == {"Ref": topic_id(template)}]
    role = function_role(template, FUNCTION)
    assert role not in {function_role(template, f) for f in ("APIHandler", "BatchWorker", "StatusIngest")}
    granted = grants(template, role)
    assert {a for actions in granted.values() for a in actions} == {
        "dynamodb:PutItem", "dynamodb:Query", "dynamodb:UpdateItem", "dynamodb:DeleteItem", "sqs:ReceiveMessage",
        "sqs:DeleteMessage", "sqs:GetQueueAttributes", "logs:CreateLogStream", "logs:PutLogEvents",
        "xray:PutTraceSegments", "xray:PutTelemetryRecords"}
    assert granted[resolve(cdk_json, subscription["Endpoint"])] == {
        "sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes"}
    assert granted[logs] == {"logs:CreateLogStream", "logs:PutLogEvents"}
    opt_outs = frozenset({schema.OPT_OUTS, schema.OPT_INS})
    assert table_grants(template, FUNCTION) == {
        ("messages", "dynamodb:PutItem"): None, (f"messages/index/{schema.MESSAGES_PROVIDER_INDEX}", "dynamodb:Query"):
        None, ("settings", "dynamodb:UpdateItem"): opt_outs, ("settings", "dynamodb:DeleteItem"): opt_outs}


def test_every_stage_may_check_and_record_opt_outs_and_only_those(template, mms_template):
    from chalicelib.core import schema

    only = frozenset({schema.OPT_OUTS})
    for stage in (template, mms_template):
        worker = table_grants(stage, "BatchWorker")
        assert {k: v for k, v in worker.items() if k[0] == "settings"} == {
            ("settings", "dynamodb:GetItem"): only, ("settings", "dynamodb:UpdateItem"): only}
        assert table_grants(stage, "APIHandler")[("settings", "dynamodb:BatchGetItem")] == only


# -- the grants against the code: every opt-out and reply call, recorded --------------------------------

def dynamodb_uses(made, tables: dict[str, str]) -> set[tuple[str, str, str]]:
    """(table kind, IAM action, partition key) of each DynamoDB call (a transaction item by item, as
    IAM authorizes it; a batch read key by key)."""
    from chalicelib.core import schema

    used = set()

    def key_of(key):
        return key.get(schema.WEBHOOKS_KEY, {}).get("S") if key else None

    for prefix, operation, params in made:
        if prefix != "dynamodb":
            continue
        if operation == "TransactWriteItems":
            for item in params["TransactItems"]:
                (kind, body), = item.items()
                action = {"Put": "PutItem", "Update": "UpdateItem", "Delete": "DeleteItem",
                          "ConditionCheck": "ConditionCheckItem"}[kind]
                used.add((tables[body["TableName"]], f"dynamodb:{action}",
                          key_of(body.get("Key") or body.get("Item"))))
        elif operation == "BatchGetItem":
            for table, request in params["RequestItems"].items():
                used |= {(tables[table], "dynamodb:BatchGetItem", key_of(k)) for k in request["Keys"]}
        else:
            kind = tables[params["TableName"]] + (f"/index/{params['IndexName']}" if "IndexName" in params else "")
            used.add((kind, f"dynamodb:{operation}", key_of(params.get("Key") or params.get("Item"))))
    return used


def allowed(grants_: dict, use: tuple[str, str, str]) -> bool:
    kind, action, partition = use
    if (kind, action) not in grants_:
        return False
    keys = grants_[(kind, action)]
    return keys is None or (kind == "settings" and partition in keys)


def test_each_function_is_granted_every_reply_and_opt_out_call_its_code_makes(mms_template, aws_env, calls):
    """Replies (a plain one answering a sent message, the same again, STOP, then START) through the
    inbound function, and the opt-out checks of a batch (the API) and of the worker, on moto: every
    DynamoDB call each makes is one its role allows (partition keys included), and every DynamoDB
    grant of the inbound function is used."""
    import os

    from chalicelib.replies import inbound
    from chalicelib.sending import messages
    from chalicelib.replies import optouts
    from chalicelib.core import store
    from chalicelib.core.settings import get_settings
    from chalicelib.sending.validation import Outbound

    from .test_inbound import DOC, OUR_NUMBER, PAYLOAD, SENDER, event, sqs_record

    aws_env(INBOUND_ENABLED="1", ORIGINATION_NUMBER=OUR_NUMBER, OPT_OUT_LIST_NAME="list",
            OPT_OUT_KEYWORDS="STOP", OPT_IN_KEYWORDS="START")
    settings = get_settings()
    tables = {os.environ["MESSAGES_TABLE"]: "messages", os.environ["WEBHOOKS_TABLE"]: "settings"}
    sent = messages.new_record(Outbound("sms", SENDER, "Reply JOIN to join"), settings)
    sent.update(status=store.SENT, providerMessageId=PAYLOAD["previousPublishedMessageId"])
    store.create(sent)
    made: dict[str, list] = {}

    def as_function(function_id, run):
        start = len(calls)
        result = run()
        made.setdefault(function_id, []).extend(calls[start:])
        return result

    later = DOC["envelope"]["Timestamp"].replace("2020", "2021")
    replies = [sqs_record(), sqs_record(message_id="sqs-2"),
               sqs_record(message_id="sqs-3", messageBody="STOP", messageKeyword="STOP", inboundMessageId="in-2"),
               sqs_record(message_id="sqs-4", timestamp=later, messageBody="START", messageKeyword="START",
                          inboundMessageId="in-3")]
    for record in replies:
        assert as_function(FUNCTION, lambda: inbound.handle(event(record))) == {"batchItemFailures": []}
    assert not optouts.is_opted_out(SENDER, settings)  # STOP, then START
    as_function(FUNCTION, lambda: inbound.handle(event(sqs_record(
        message_id="sqs-5", timestamp=later.replace("2021", "2022"), messageBody="STOP", messageKeyword="STOP",
        inboundMessageId="in-4"))))
    # The API checks a batch's recipients at once; the worker checks each message again before
    # sending, and records an opt-out the provider reports (messages.deliver calls optouts.learn).
    assert as_function("APIHandler", lambda: optouts.opted_out_among([SENDER, "+14255550123"], settings)) == {SENDER}
    assert as_function("BatchWorker", lambda: optouts.is_opted_out(SENDER, settings))
    as_function("BatchWorker", lambda: optouts.learn("+14255550123", settings))

    problems = []
    for function_id, made_calls in made.items():
        granted = table_grants(mms_template, function_id)
        used = dynamodb_uses(made_calls, tables)
        problems += [f"{function_id}: {use} is not allowed by its role" for use in sorted(used, key=str)
                     if not allowed(granted, use)]
        if function_id == FUNCTION:
            unused = set(granted) - {(kind, action) for kind, action, _ in used}
            problems += [f"{function_id} is granted {grant} and never uses it" for grant in sorted(unused)]
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("fixture", sorted(TWO_WAY))
def test_the_stack_names_what_an_operator_needs(request, fixture):
    template = request.getfixturevalue(fixture)
    outputs = template.to_json()["Outputs"]
    assert {"InboundTopicArn", "OptOutListName", "InboundDeadLetterQueueUrl", "KeywordsNotSet"} <= set(outputs)
    resource_id, _ = the_resource(template)
    # Which list every STOP lands on, and which HELP or STOP answers AWS kept (issue 20, items 1 and 6).
    assert outputs["OptOutListName"]["Value"] == {"Fn::GetAtt": [resource_id, "OptOutListName"]}
    assert outputs["KeywordsNotSet"]["Value"] == {"Fn::GetAtt": [resource_id, "KeywordsNotSet"]}


# -- the keywords setting --------------------------------------------------------------------------

POOL = {"originationIdentity": "pool-0123456789abcdef0123456789abcdef"}


@pytest.mark.parametrize("keywords, complaint", [
    ("HELP", "a list"),
    ([{"keyword": "HELP"}], "give keyword, message"),
    ([{"keyword": "HELP", "message": "m", "colour": "red"}], "give keyword, message"),
    ([{"keyword": "", "message": "m"}], "keyword must be 1 to 30"),
    ([{"keyword": "X" * 31, "message": "m"}], "keyword must be 1 to 30"),
    ([{"keyword": " JOIN", "message": "m"}], "start or end with a space"),
    ([{"keyword": "JOIN,NOW", "message": "m"}], "comma"),
    ([{"keyword": "JOIN", "message": ""}], "message must be 1 to 1600"),
    ([{"keyword": "JOIN", "message": "x" * 1601}], "message must be 1 to 1600"),
    ([{"keyword": "JOIN", "message": " \n "}], "message must be 1 to 1600"),
    ([{"keyword": "JOIN", "message": "m", "action": "SUBSCRIBE"}], "AUTOMATIC_RESPONSE, OPT_OUT, OPT_IN"),
    ([{"keyword": "STOP", "message": "m", "action": "OPT_IN"}], "STOP always has the action OPT_OUT"),
    ([{"keyword": "help", "message": "m", "action": "OPT_OUT"}], "HELP always has the action AUTOMATIC_RESPONSE"),
    ([{"keyword": "JOIN", "message": "m"}, {"keyword": "join", "message": "n"}], "twice"),
])
def test_wrong_keywords_fail_with_a_clear_message(keywords, complaint):
    with pytest.raises(StageConfigError, match=complaint):
        StageConfig.from_dict("eum", {**POOL, "keywords": keywords})


def test_the_limits_are_botocores():
    model = put_keyword_model()
    assert (model["Keyword"]["min"], model["Keyword"]["max"]) == (1, 30)
    assert (model["KeywordMessage"]["min"], model["KeywordMessage"]["max"]) == (1, 1600)
    assert model["KeywordAction"]["enum"] == ["AUTOMATIC_RESPONSE", "OPT_OUT", "OPT_IN"]
    longest = StageConfig.from_dict("eum", {**POOL, "keywords": [{"keyword": "K" * 30, "message": "m" * 1600}]})
    assert longest.keywords == (Keyword("K" * 30, "m" * 1600, "AUTOMATIC_RESPONSE"),)


def test_keywords_need_an_identity_that_receives():
    with pytest.raises(StageConfigError, match="phone number or pool"):
        StageConfig.from_dict("dev", {"keywords": [{"keyword": "JOIN", "message": "m", "action": "OPT_IN"}]})


def test_help_and_stop_always_have_an_answer_naming_the_stage():
    config = StageConfig.from_dict("eum", {**POOL, "keywords": [
        {"keyword": "Join", "message": "Welcome", "action": "OPT_IN"},
        {"keyword": "quit", "message": "Bye", "action": "OPT_OUT"}]})
    answers = {k.keyword.upper(): k for k in config.all_keywords}
    assert set(answers) == {"HELP", "STOP", "JOIN", "QUIT"}
    assert "sms-sender-eum" in answers["HELP"].message and "STOP" in answers["HELP"].message
    assert answers["STOP"].action == "OPT_OUT" and "sms-sender-eum" in answers["STOP"].message
    assert (config.keywords_with("OPT_OUT"), config.keywords_with("OPT_IN")) == (("STOP", "QUIT"), ("JOIN",))
    variables = config.app_environment(media_bucket="b", messages_table="m", idempotency_table="i",
                                       batch_queue_url="q", batch_dlq_url="d", max_receives=5, worker_concurrency=1,
                                       opt_out_list_name="list")
    assert (variables["OPT_OUT_KEYWORDS"], variables["OPT_IN_KEYWORDS"]) == ("STOP,QUIT", "JOIN")
    assert "ORIGINATION_NUMBER" not in variables
    # Without the list (the stack passes it on two-way stages only) the app has no inbound settings.
    assert "INBOUND_ENABLED" not in config.app_environment(
        media_bucket="b", messages_table="m", idempotency_table="i", batch_queue_url="q", batch_dlq_url="d",
        max_receives=5, worker_concurrency=1)

