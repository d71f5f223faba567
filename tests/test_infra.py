"""Infrastructure checks on a template synthesized once per test session by the real entry point."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from aws_cdk.assertions import Match, Template

from infra import nag
from chalicelib.keys import scopes
from infra.api import SenderApi
from infra.config import StageConfig, StageConfigError

from .synth import exclusive, synth

ROOT = Path(__file__).resolve().parent.parent


def without_cli_metadata(template: dict) -> dict:
    """The CLI adds construct paths and a CDKMetadata resource; everything else must be identical."""
    resources = {name: {k: v for k, v in resource.items() if k != "Metadata"}
                 for name, resource in template["Resources"].items() if resource["Type"] != "AWS::CDK::Metadata"}
    conditions = {k: v for k, v in template.get("Conditions", {}).items() if k != "CDKMetadataAvailable"}
    return {**template, "Resources": resources, "Conditions": conditions}


def statements(template):
    found = []
    for policy in template.find_resources("AWS::IAM::Policy").values():
        found += policy["Properties"]["PolicyDocument"]["Statement"]
    return found


def test_synth_leaves_no_chalice_out_behind(template, synth_dir):
    assert not (synth_dir / "chalice.out").exists()
    assert (synth_dir / "cdk.out" / "manifest.json").exists()


def test_media_bucket_is_private_encrypted_ssl_only_and_expires(template):
    template.has_resource_properties("AWS::S3::Bucket", {
        "PublicAccessBlockConfiguration": {"BlockPublicAcls": True, "BlockPublicPolicy": True,
                                           "IgnorePublicAcls": True, "RestrictPublicBuckets": True},
        "BucketEncryption": Match.object_like({"ServerSideEncryptionConfiguration": Match.any_value()}),
        "LifecycleConfiguration": {"Rules": [
            Match.object_like({"ExpirationInDays": 30, "Status": "Enabled"}),
            # CSV exports (issue 22): 7 days, and an export's unfinished upload aborted after a day.
            {"Prefix": "exports/", "ExpirationInDays": 7, "Status": "Enabled",
             "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": 1}}]},
        "CorsConfiguration": {"CorsRules": [Match.object_like({"AllowedMethods": ["POST"]})]},
    })
    template.has_resource_properties("AWS::S3::BucketPolicy", {"PolicyDocument": {"Statement": Match.array_with([
        Match.object_like({"Effect": "Deny", "Condition": {"Bool": {"aws:SecureTransport": "false"}}})])}})


def test_message_table_has_pitr_ttl_and_the_list_index(template):
    template.has_resource_properties("AWS::DynamoDB::Table", {
        "BillingMode": "PAY_PER_REQUEST",
        "PointInTimeRecoverySpecification": {"PointInTimeRecoveryEnabled": True},
        "TimeToLiveSpecification": {"AttributeName": "expiresAt", "Enabled": True},
        "GlobalSecondaryIndexes": Match.array_with([Match.object_like({"IndexName": "byCreatedAt"}),
                                                    Match.object_like({"IndexName": "byProviderMessageId"})]),
    })


def test_batch_queue_is_encrypted_and_redrives_to_the_dlq(template):
    template.has_resource_properties("AWS::SQS::Queue", {
        "SqsManagedSseEnabled": True,
        "RedrivePolicy": {"deadLetterTargetArn": Match.any_value(), "maxReceiveCount": 5},
    })
    queues = template.find_resources("AWS::SQS::Queue")
    # The batch queue, its dead-letter queue, the status ingest's on-failure queue, the webhook
    # delivery queue, its dead-letter queue and the fanout's on-failure queue, and the export queue and
    # its dead-letter queue.
    assert len(queues) == 8 and all(q["Properties"].get("SqsManagedSseEnabled") for q in queues.values())
    ssl_policies = [p for p in template.find_resources("AWS::SQS::QueuePolicy").values()
                    if any(s.get("Condition") == {"Bool": {"aws:SecureTransport": "false"}}
                           for s in p["Properties"]["PolicyDocument"]["Statement"])]
    assert len(ssl_policies) == 8


def test_publish_is_allowed_for_sms_but_denied_on_every_topic(template):
    found = statements(template)
    assert {"Action": "sns:Publish", "Effect": "Allow", "Resource": "*"} in found
    assert {"Action": "sns:Publish", "Effect": "Deny", "Resource": "arn:aws:sns:*:*:*"} in found


def test_no_sms_voice_permission_on_star(template):
    for statement in statements(template):
        actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
        if any(a.startswith("sms-voice:") for a in actions):
            assert statement["Resource"] != "*"
    # Only actions with no resource-level permissions may name "*" (SNS's opt-out calls: the account's list).
    star_only = {"sns:Publish", "sns:SetSMSAttributes", "xray:PutTraceSegments", "xray:PutTelemetryRecords",
                 "sns:ListPhoneNumbersOptedOut", "sns:CheckIfPhoneNumberIsOptedOut", "sns:OptInPhoneNumber"}
    for statement in statements(template):
        actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
        assert "*" not in actions
        if statement.get("Resource") == "*" and statement["Effect"] == "Allow":
            assert set(actions) <= star_only, statement


FUNCTIONS = ("APIHandler", "BatchWorker", "StatusIngest", "WebhookFanout", "WebhookDelivery", "ScheduleSweep")


def role_statements(template, function_id: str) -> list[dict]:
    """Every statement of the policies attached to the role a function runs as."""
    resources = template.to_json()["Resources"]
    role_id = resources[function_id]["Properties"]["Role"]["Fn::GetAtt"][0]
    found = []
    for policy in template.find_resources("AWS::IAM::Policy").values():
        if {"Ref": role_id} in policy["Properties"]["Roles"]:
            found += policy["Properties"]["PolicyDocument"]["Statement"]
    return found


def actions_of(statements_):
    found = set()
    for statement in statements_:
        if statement["Effect"] == "Allow":
            found |= set(statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]])
    return found


@pytest.mark.parametrize("function_id", FUNCTIONS)
def test_each_function_runs_as_its_own_role_and_logs_only_to_its_own_group(template, function_id):
    resources = template.to_json()["Resources"]
    function = resources[function_id]["Properties"]
    log_group = function["LoggingConfig"]["LogGroup"]["Ref"]
    assert resources[log_group]["Properties"]["RetentionInDays"] == 90
    role = resources[function["Role"]["Fn::GetAtt"][0]]
    assert "ManagedPolicyArns" not in role["Properties"]  # no AWSLambdaBasicExecutionRole: only its own group
    logging = [s for s in role_statements(template, function_id) if "logs:PutLogEvents" in s["Action"]]
    assert logging == [{"Action": ["logs:CreateLogStream", "logs:PutLogEvents"], "Effect": "Allow",
                        "Resource": {"Fn::GetAtt": [log_group, "Arn"]}}]
    assert function["Tracing"] == "Active"
    roles = {resources[f]["Properties"]["Role"]["Fn::GetAtt"][0] for f in FUNCTIONS}
    assert len(roles) == len(FUNCTIONS)


def test_each_role_has_only_the_actions_its_function_uses(template):
    api, worker, ingest, fanout, delivery, sweep = (actions_of(role_statements(template, f)) for f in FUNCTIONS)
    assert not any(a.endswith("*") for a in api | worker | ingest | fanout | delivery | sweep)
    assert {"sqs:SendMessage", "s3:PutObject", "dynamodb:BatchWriteItem"} <= api
    assert not {"sqs:ReceiveMessage", "sqs:DeleteMessage"} & api
    assert {"sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:ChangeMessageVisibility", "sns:Publish"} <= worker
    assert not {"sqs:SendMessage", "s3:PutObject", "dynamodb:Query", "dynamodb:DeleteItem"} & worker
    # The status ingest only finds records by provider id and updates them (and hands events it
    # could not apply to its on-failure queue): it cannot send.
    assert ingest == {"logs:CreateLogStream", "logs:PutLogEvents", "xray:PutTraceSegments",
                      "xray:PutTelemetryRecords", "dynamodb:Query", "dynamodb:UpdateItem", "sqs:SendMessage"}
    (query,) = [s for s in role_statements(template, "StatusIngest") if s["Action"] == "dynamodb:Query"]
    assert query["Resource"]["Fn::Join"][1][-1] == "/index/byProviderMessageId"
    # The webhook functions neither send nor touch a message record (tests/test_webhooks_stack.py
    # checks each of their grants, resource by resource).
    for webhook_function in (fanout, delivery):
        assert not {"sns:Publish", "sms-voice:SendTextMessage", "s3:GetObject"} & webhook_function
    # The schedule sweep reads the due index, keeps its cursor and queues messages, and ends the records of what
    # the batch queue dead-lettered: it cannot send (tests/test_schedule_stack.py checks each grant against its
    # recorded calls).
    assert sweep == {"logs:CreateLogStream", "logs:PutLogEvents", "xray:PutTraceSegments", "xray:PutTelemetryRecords",
                     "dynamodb:Query", "dynamodb:GetItem", "dynamodb:UpdateItem", "sqs:SendMessage",
                     "sqs:ReceiveMessage", "sqs:DeleteMessage"}


def test_the_worker_drains_the_queue_with_partial_failures_and_bounded_concurrency(template, prod_template):
    from chalicelib.sending import worker as pacing
    from infra.stack import BatchQueue

    (queue_id,) = template.find_resources("AWS::SQS::Queue", {"Properties": {"RedrivePolicy": {
        "maxReceiveCount": BatchQueue.MAX_RECEIVES, "deadLetterTargetArn": Match.any_value()}}})
    template.has_resource_properties("AWS::Lambda::EventSourceMapping", {
        "EventSourceArn": {"Fn::GetAtt": [queue_id, "Arn"]},
        "BatchSize": 10,
        "FunctionResponseTypes": ["ReportBatchItemFailures"],
        "ScalingConfig": {"MaximumConcurrency": 2},
    })
    (mapping,) = [m for m in template.find_resources("AWS::Lambda::EventSourceMapping").values()
                  if m["Properties"]["EventSourceArn"] == {"Fn::GetAtt": [queue_id, "Arn"]}]
    assert "BatchWorker" in json.dumps(mapping["Properties"]["FunctionName"])
    worker = template.to_json()["Resources"]["BatchWorker"]["Properties"]
    queue = template.to_json()["Resources"][queue_id]["Properties"]
    assert queue["VisibilityTimeout"] >= 6 * worker["Timeout"]
    assert worker["Environment"]["Variables"]["WORKER_CONCURRENCY"] == "2"
    assert worker["Environment"]["Variables"]["MAX_RECEIVES"] == str(BatchQueue.MAX_RECEIVES)
    # Concurrency follows maxMps: enough instances, at one instance's speed, to reach it together.
    assert [pacing.instances_for(m) for m in (1, 3, 20, 100, 1000)] == [2, 2, 2, 5, 50]


def test_status_ingest_is_subscribed_to_both_sns_delivery_log_groups(template):
    subscriptions = template.find_resources("AWS::Logs::SubscriptionFilter")
    groups = sorted(json.dumps(s["Properties"]["LogGroupName"]) for s in subscriptions.values())
    assert len(groups) == 2
    assert groups[0].endswith('"/DirectPublishToPhoneNumber"]]}') and groups[1].endswith('/Failure"]]}')
    resources = template.to_json()["Resources"]
    for subscription in subscriptions.values():
        assert subscription["Properties"]["DestinationArn"] == {"Fn::GetAtt": ["StatusIngest", "Arn"]}
        assert subscription["Properties"]["FilterPattern"] == ""
        permissions = [d for d in subscription["DependsOn"] if resources[d]["Type"] == "AWS::Lambda::Permission"]
        (permission_id,) = permissions
        assert resources[permission_id]["Properties"]["Principal"] == "logs.amazonaws.com"


def test_the_function_settings_reach_every_function(template):
    for function_id in FUNCTIONS:
        env = template.to_json()["Resources"][function_id]["Properties"]["Environment"]["Variables"]
        assert env["SMS_PROVIDER"] == "sns" and env["ALLOWED_COUNTRIES"] == "US,CA"
        assert set(env) >= {"MEDIA_BUCKET", "MESSAGES_TABLE", "IDEMPOTENCY_TABLE", "BATCH_QUEUE_URL", "MAX_MPS"}
        assert "ORIGINATION_IDENTITY" not in env  # MMS off on dev: the app answers 503 MmsNotConfigured


def test_every_function_but_the_api_names_itself_so_app_py_registers_no_routes_there(template):
    """app.py registers the routes only where APP_FUNCTION is unset (tests/test_cold_start.py); every other
    function is told its Chalice name."""
    resources = template.to_json()["Resources"]
    named = {function_id: resources[function_id]["Properties"]["Environment"]["Variables"].get("APP_FUNCTION")
             for function_id in FUNCTIONS}
    assert named.pop("APIHandler") is None
    assert named == {SenderApi.LOGICAL_IDS[name]: name for name in SenderApi.LOGICAL_IDS
                     if SenderApi.LOGICAL_IDS[name] in named}
    assert set(named) == set(FUNCTIONS) - {"APIHandler"}




@pytest.mark.parametrize("raw, complaint", [
    ({"smsProvider": "carrier"}, "smsProvider"),
    ({"allowedCountries": "US"}, "allowedCountries"),
    ({"senderId": "WAY-TOO-LONG-ID"}, "senderId"),
    ({"senderId": "AB"}, "senderId must be 3 to 11"),  # SNS's shortest
    ({"senderId": "12345"}, "at least one a letter"),
    ({"apiRateLimit": 0}, "api_rate_limit"),
    ({"maxMps": -1}, "maxMps"),
    ({"colour": "blue"}, "unknown setting"),
    ({"smsProvider": "sms-voice"}, "originationIdentity"),
    ({"accountSettings": "no"}, "accountSettings"),
    # IAM authorizes a send on the identity's id, never on its E.164 number (see test_deploy.py).
    ({"originationIdentity": "+12065550100"}, "PhoneNumberId .* describe-phone-numbers"),
    ({"originationIdentity": "MyBrand"}, "senderId"),
])
def test_wrong_stage_settings_fail_with_a_clear_message(raw, complaint):
    with pytest.raises(StageConfigError, match=complaint):
        StageConfig.from_dict("dev", raw)


def test_every_setting_has_a_safe_default():
    config = StageConfig.from_dict("dev", {})
    assert (config.sms_provider, config.origination_identity, config.allowed_countries) == ("sns", None, ())
    assert config.prefix == "sms-sender-dev"


def test_the_pinned_cdk_cli_accepts_the_assembly_and_synth_is_deterministic(template, tmp_path):
    """`make test` installs the CLI pinned in package.json; a missing CLI fails here, it is not skipped.
    The synth runs with pip kept off every index (``PIP_NO_INDEX``): after the first build, the Lambda
    package comes from Chalice's cache (app/.chalice/deployments/), so a synth needs no network."""
    cli = ROOT / "node_modules" / ".bin" / "cdk"
    assert cli.exists(), "run `npm ci` (make test does) to install the pinned CDK CLI"
    with exclusive("repo-chalice-out"):  # the CLI runs app.py in the repo, where cdk.json is
        result = subprocess.run(
            [str(cli), "synth", "-c", "stage=dev", "--app", f"{sys.executable} {ROOT / 'app.py'}", "-o",
             str(tmp_path / "cdk.out"), "--quiet"],
            cwd=ROOT, env={**os.environ, "AWS_DEFAULT_REGION": "us-east-1", "CDK_DISABLE_VERSION_CHECK": "1",
                           "PIP_NO_INDEX": "1"},
            capture_output=True, text=True, timeout=600)
        assert result.returncode == 0, result.stderr[-3000:]
        again = json.loads((tmp_path / "cdk.out" / "SmsSender-dev.template.json").read_text())
        assert without_cli_metadata(again) == without_cli_metadata(template.to_json())
        assert not (ROOT / "chalice.out").exists()


@pytest.fixture(scope="session")
def expanded(template):
    """The template after the SAM transform, expanded locally with aws-sam-translator."""
    return nag.expand(template.to_json())


def test_every_protected_route_goes_through_the_key_authorizer_and_the_stage_throttles(template, expanded):
    """No API Gateway API key and no usage plan any more: a Lambda authorizer (the app's own, Chalice's
    built-in, ``chalicelib/keys/routing.py``, deployed as ``keys/authorizer.py``'s handler) whose answer API Gateway caches for a minute, and the stage's
    throttle on the stage itself."""
    for kind in ("AWS::ApiGateway::ApiKey", "AWS::ApiGateway::UsagePlan", "AWS::ApiGateway::UsagePlanKey"):
        assert not template.find_resources(kind), kind
    swagger = expanded["Resources"]["RestAPI"]["Properties"]["Body"]
    (scheme,) = swagger["securityDefinitions"].values()
    assert scheme["x-amazon-apigateway-authorizer"]["type"] == "token"
    assert scheme["x-amazon-apigateway-authorizer"]["authorizerResultTtlInSeconds"] == 60
    assert "Bearer.Arn" in json.dumps(scheme["x-amazon-apigateway-authorizer"]["authorizerUri"])
    assert expanded["Resources"]["Bearer"]["Properties"]["Handler"] == "chalicelib.keys.authorizer.handler"
    for path, methods in swagger["paths"].items():
        for method, operation in methods.items():
            if (method.upper(), path) in scopes.OPEN:
                assert "security" not in operation, (method, path)
            elif method != "options":
                assert operation["security"] == [{"bearer": []}], (method, path)
    (stage,) = [r for r in expanded["Resources"].values() if r["Type"] == "AWS::ApiGateway::Stage"]
    (settings,) = stage["Properties"]["MethodSettings"]
    assert (settings["ResourcePath"], settings["HttpMethod"]) == ("/*", "*")
    assert (settings["ThrottlingRateLimit"], settings["ThrottlingBurstLimit"]) == (10, 20)
    assert '"principal": "$context.authorizer.principalId"' in stage["Properties"]["AccessLogSetting"]["Format"]
    outputs = template.to_json()["Outputs"]
    assert {"ApiUrl", "KeysTableName", "MediaBucketName", "MessagesTableName", "BatchQueueUrl", "WebhooksTableName",
            "WebhookDeadLetterQueueUrl"} <= set(outputs) and "ApiKeyId" not in outputs


@pytest.mark.parametrize("region, suffix", [("eu-west-2", "amazonaws.com"), ("cn-north-1", "amazonaws.com.cn")])
def test_the_api_url_output_names_the_region_smoke_and_make_key_work_in(template, region, suffix):
    """``make smoke`` and ``make key`` take the stage's region from ``ApiUrl`` (``ops.api_region``): the output is
    API Gateway's default endpoint, ``https://<api>.execute-api.<region>.<URLSuffix>/api/``, as CloudFormation
    fills it in."""
    from ops import api_region

    value = template.to_json()["Outputs"]["ApiUrl"]["Value"]
    while isinstance(value, dict) and "Fn::Sub" not in value:  # Chalice's output, as the stack passes it on
        (value,) = value.values()
    sub = value["Fn::Sub"]
    assert "execute-api.${AWS::Region}.${AWS::URLSuffix}/" in sub, sub
    filled = sub.replace("${RestAPI}", "a1b2c3d4e5").replace("${AWS::Region}", region).replace("${AWS::URLSuffix}",
                                                                                             suffix)
    assert api_region(filled) == region


def test_api_gateways_own_answers_use_the_contract_body_and_never_quote_the_request(expanded):
    """Every gateway response type is one API Gateway has (botocore's apigateway model, GatewayResponseType),
    answers ``{"error": {"code", "message"}}``, and uses no ``$context.error.message``: for an unknown path with
    an Authorization header, API Gateway's own message quotes the header."""
    import botocore.session

    known = set(botocore.session.get_session().get_service_model("apigateway")
                .shape_for("GatewayResponseType").enum)
    swagger = expanded["Resources"]["RestAPI"]["Properties"]["Body"]
    responses = swagger["x-amazon-apigateway-gateway-responses"]
    assert set(responses) <= known and {"UNAUTHORIZED", "ACCESS_DENIED", "MISSING_AUTHENTICATION_TOKEN",
                                        "THROTTLED", "DEFAULT_4XX", "DEFAULT_5XX"} <= set(responses)
    for response_type, response in responses.items():
        template = response["responseTemplates"]["application/json"]
        assert "$context.error.message" not in template and "Authorization" not in template.replace(
            "'Authorization: Bearer <key>'", "")
        assert set(json.loads(template.replace("$context.", "context."))["error"]) == {"code", "message"}
        assert template.endswith("}\n")  # sent as written, like the app's JSON (tests/test_json_newline.py)
    assert responses["UNAUTHORIZED"]["statusCode"] == "401"
    assert responses["UNAUTHORIZED"]["responseParameters"]["gatewayresponse.header.WWW-Authenticate"] == "'Bearer'"
    assert responses["MISSING_AUTHENTICATION_TOKEN"]["statusCode"] == "404"
    assert responses["THROTTLED"]["responseParameters"]["gatewayresponse.header.Retry-After"] == "'1'"


def test_the_stage_has_access_logs_metrics_and_xray(expanded):
    (stage,) = [r for r in expanded["Resources"].values() if r["Type"] == "AWS::ApiGateway::Stage"]
    props = stage["Properties"]
    assert props["TracingEnabled"] is True
    assert "$context.requestId" in props["AccessLogSetting"]["Format"]
    assert props["MethodSettings"][0]["MetricsEnabled"] is True



def test_sms_attributes_are_set_with_pass_role_and_left_alone_on_delete(template, prod_template):
    (resource,) = [r for r in prod_template.find_resources("Custom::AWS").values()
                   if "setSMSAttributes" in json.dumps(r["Properties"]["Create"])]
    create = json.dumps(resource["Properties"]["Create"])
    for attribute in ("DeliveryStatusIAMRole", "DeliveryStatusSuccessSamplingRate", "DefaultSMSType",
                      "MonthlySpendLimit"):
        assert attribute in create
    assert '\\"MonthlySpendLimit\\":\\"1\\"' in create  # prod's monthlySpendLimitUsd: a new account's quota
    assert "Delete" not in resource["Properties"]
    assert "MonthlySpendLimit" not in json.dumps(template.find_resources("Custom::AWS"))  # dev sets none
    found = statements(prod_template)
    assert any(s["Action"] == "iam:PassRole" and s["Resource"] != "*" for s in found)
    assert any(s["Action"] == "sns:SetSMSAttributes" for s in found)


@pytest.mark.parametrize("metric, threshold", [
    ("NumberOfNotificationsFailed", 5),
    ("Errors", 1),
    ("Throttles", 1),
    ("5XXError", 5),
    ("ApproximateNumberOfMessagesVisible", 1),
    ("ApproximateAgeOfOldestMessage", 900),
])
def test_alarms_and_their_thresholds(template, metric, threshold):
    template.has_resource_properties("AWS::CloudWatch::Alarm", {
        "MetricName": metric, "Threshold": threshold,
        "AlarmActions": [{"Ref": Match.string_like_regexp("MonitoringAlarms")}]})


def test_spend_alarm_at_80_percent_of_the_limit_without_dimensions(prod_template, template):
    prod_template.has_resource_properties("AWS::CloudWatch::Alarm", {
        "MetricName": "SMSMonthToDateSpentUSD", "Threshold": 0.8, "Dimensions": Match.absent()})
    assert not template.find_resources("AWS::CloudWatch::Alarm", {
        "Properties": {"MetricName": "SMSMonthToDateSpentUSD"}})


def test_dashboard_and_outputs(template):
    template.resource_count_is("AWS::CloudWatch::Dashboard", 1)
    assert "DashboardUrl" in template.to_json()["Outputs"]


def test_cfn_lint_is_clean(template, prod_template, mms_template, sms_voice_template, tmp_path):
    """No errors; the one accepted warning (W3005) is a redundant DependsOn inside CDK's own
    AwsCustomResource provider, not something this stack writes."""
    paths = []
    for name, synthesized in (("dev", template), ("prod", prod_template), ("mms", mms_template),
                              ("sms-voice", sms_voice_template)):
        paths.append(tmp_path / f"{name}.template.json")
        paths[-1].write_text(json.dumps(synthesized.to_json()))
    # One cfn-lint for the four (it loads its schemas once); each finding names its template's file.
    result = subprocess.run([str(Path(sys.executable).parent / "cfn-lint"), "--ignore-checks", "W3005",
                             "--", *map(str, paths)], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr



def test_no_end_user_messaging_resources_without_an_identity(template):
    template.resource_count_is("AWS::SMSVOICE::ConfigurationSet", 0)


def test_configuration_set_logs_every_text_and_media_event(mms_template):
    mms_template.has_resource_properties("AWS::SMSVOICE::ConfigurationSet", {
        "ConfigurationSetName": "sms-sender-dev-config",
        "ProtectConfigurationId": Match.any_value(),
        "EventDestinations": [Match.object_like({
            "Enabled": True, "MatchingEventTypes": ["TEXT_ALL", "MEDIA_ALL"],
            "CloudWatchLogsDestination": Match.object_like({"LogGroupArn": Match.any_value()})})],
    })


def test_cdk_nag_passes_with_every_finding_acknowledged_one_by_one(template, synth_dir):
    report = json.loads((synth_dir / "cdk.out" / "validation-report.json").read_text())
    assert all(plugin["violations"] == [] for plugin in report["pluginReports"])
    (plugin,) = [p for p in report["pluginReports"] if p["pluginName"] == "AwsSolutions"]
    assert plugin["conclusion"] == "success"
    acknowledged = {v["ruleName"] for v in plugin["suppressedViolations"]}
    assert "AwsSolutions-IAM5[Resource::*]" in acknowledged
    # Reviewers read the acknowledgments in the template itself: one finding each, each with a reason.
    recorded = [ack for r in template.to_json()["Resources"].values()
                for ack in r.get("Metadata", {}).get("cdk_nag", {}).get("rules_to_suppress", [])]
    assert recorded
    for ack in recorded:
        assert ack["reason"].strip() and len(ack["reason"]) > 30, ack
        if "IAM5" in ack["id"] or "IAM4" in ack["id"]:
            assert ack["id"].endswith("]"), f"{ack['id']} would cover every finding of its rule"


@pytest.mark.parametrize("fixture", ["template", "sms_voice_template", "mms_template"])
def test_cdk_nag_passes_after_the_sam_transform_too(request, fixture, tmp_path):
    """The dev stage, and the two-way stages (a pool, a phone number) with their inbound function."""
    assert nag.check_expanded(request.getfixturevalue(fixture).to_json(), str(tmp_path)) == []


def test_the_check_after_the_sam_transform_sees_what_cdk_nag_misses(template, tmp_path):
    # Without the acknowledgments on the AWS::Serverless resources, the expanded API is flagged.
    bare = json.loads(json.dumps(template.to_json()))
    bare["Resources"]["RestAPI"].pop("Metadata", None)
    rules = {v["rule"] for v in nag.check_expanded(bare, str(tmp_path))}
    assert {"AwsSolutions-APIG2", "AwsSolutions-APIG3"} <= rules



PHYSICAL_NAMES = {"BucketName", "TableName", "QueueName", "TopicName", "LogGroupName", "RoleName", "FunctionName",
                  "DashboardName", "ConfigurationSetName", "Name"}


def fixed_names(template) -> set[str]:
    """Every literal physical name a template gives a resource (what would collide in one account)."""
    names = set()
    for resource in template.to_json()["Resources"].values():
        if resource["Type"] == "AWS::Logs::SubscriptionFilter":
            continue  # its LogGroupName names a group it attaches to, not one it creates
        for key, value in resource.get("Properties", {}).items():
            if key in PHYSICAL_NAMES and (isinstance(value, str) or isinstance(value, dict) and (
                    {"Fn::Join", "Fn::Sub"} & set(value))):  # a name made here, not a reference
                names.add(f"{resource['Type']}:{json.dumps(value, sort_keys=True)}")
        if resource["Type"] == "Custom::AWS":
            names.add(json.dumps(resource["Properties"]["Create"]))
    return names


def test_two_stages_can_live_in_one_account_and_region(template, second_stage):
    assert not fixed_names(template) & fixed_names(second_stage)
    # The second stage leaves the account-wide settings to the first: no SMS attributes, no SNS log
    # groups of its own, no API Gateway account role...
    assert not second_stage.find_resources("Custom::AWS")
    assert not second_stage.find_resources("AWS::ApiGateway::Account")
    assert "DirectPublishToPhoneNumber" not in json.dumps(second_stage.find_resources("AWS::Logs::LogGroup"))
    # ...while the first has them, keeps them on delete, and names its own resources by stage.
    (account,) = template.find_resources("AWS::ApiGateway::Account").values()
    assert account["DeletionPolicy"] == "Retain"
    assert "sms-sender-dev-api" in fixed_names(template) | {
        r["Properties"].get("Name") for r in template.find_resources("AWS::Serverless::Api").values()}
    assert {r["Properties"]["Name"] for r in second_stage.find_resources("AWS::Serverless::Api").values()} == {
        "sms-sender-staging-api"}


def test_errors_and_throttles_alarm_on_every_function(template):
    alarms = template.find_resources("AWS::CloudWatch::Alarm").values()
    for metric in ("Errors", "Throttles"):
        watched = {json.dumps(a["Properties"]["Dimensions"]) for a in alarms
                   if a["Properties"].get("MetricName") == metric}
        assert all(any(f in w for w in watched) for f in FUNCTIONS), (metric, watched)


def test_status_ingest_also_reads_the_end_user_messaging_events(mms_template):
    (events_group,) = [name for name, g in mms_template.find_resources("AWS::Logs::LogGroup").items()
                       if "MessagingEvents" in name]
    mms_template.has_resource_properties("AWS::Logs::SubscriptionFilter", {
        "LogGroupName": {"Ref": events_group}, "DestinationArn": {"Fn::GetAtt": ["StatusIngest", "Arn"]}})


def test_a_second_stage_reads_the_first_stages_sns_log_groups_by_name(second_stage):
    names = sorted(json.dumps(s["Properties"]["LogGroupName"])
                   for s in second_stage.find_resources("AWS::Logs::SubscriptionFilter").values())
    assert len(names) == 2
    assert "DirectPublishToPhoneNumber\"" in names[0] and "DirectPublishToPhoneNumber/Failure" in names[1]


def test_unknown_ids_and_malformed_lines_become_metrics_on_the_dashboard(template):
    resources = template.to_json()["Resources"]
    ingest_logs = resources["StatusIngest"]["Properties"]["LoggingConfig"]["LogGroup"]
    filters = {f["Properties"]["MetricTransformations"][0]["MetricName"]: f["Properties"]
               for f in template.find_resources("AWS::Logs::MetricFilter").values()}
    for name, field in (("StatusUnknownMessage", "unknown"), ("StatusMalformedLine", "malformed")):
        assert filters[name]["LogGroupName"] == ingest_logs
        assert filters[name]["MetricTransformations"][0]["MetricValue"] == f"$.{field}"
    (dashboard,) = template.find_resources("AWS::CloudWatch::Dashboard").values()
    assert "StatusUnknownMessage" in json.dumps(dashboard) and "BatchSends" in json.dumps(dashboard)
