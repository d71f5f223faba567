"""The reports part of the stack (``infra/reports.py``, wired in ``infra/api.py``, ``infra/media.py`` and
``infra/monitoring.py``), read from the template synthesized once per session: the table that outlives the
messages, the tally's own mapping on the messages table's stream (never giving up on a record), the export
queue and its function, the alarms, and exactly what each function may do, each DynamoDB grant held to its
kind of item; then every call the code makes, recorded against moto, held to those grants."""
from __future__ import annotations

import json
import os

import pytest
from cfnlint.schema import PROVIDER_SCHEMA_MANAGER

from chalicelib.core import schema
from chalicelib.reports import tally, writer
from infra.api import SenderApi
from infra.monitoring import Monitoring
from devstack import resources as local_resources
from infra.reports import Reports

from .test_webhooks_stack import (EVENTS, item_by_item, messages_record, passes, ref_id, resources, role_policy,
                                  unsupported_filters, dynamodb_stream_filters)

FUNCTIONS = ("ReportTally", "ExportWriter")
EVERY_FUNCTION = ("APIHandler", "BatchWorker", "StatusIngest", "WebhookFanout", "WebhookDelivery", "Bearer",
                  *FUNCTIONS)
DAY = 24 * 3600


def env(template, function_id: str = "APIHandler") -> dict:
    return resources(template)[function_id]["Properties"]["Environment"]["Variables"]


def reports_table(template) -> str:
    return ref_id(env(template)["REPORTS_TABLE"])


def export_queue(template) -> str:
    return ref_id(env(template)["EXPORT_QUEUE_URL"])


def messages_table(template) -> str:
    return ref_id(env(template)["MESSAGES_TABLE"])


def mappings_on(template, source: dict) -> list[tuple[str, dict]]:
    return [(name, r) for name, r in resources(template).items()
            if r["Type"] == "AWS::Lambda::EventSourceMapping" and r["Properties"]["EventSourceArn"] == source]


def mapping_of(template, function_id: str) -> dict:
    (found,) = [r for r in resources(template).values() if r["Type"] == "AWS::Lambda::EventSourceMapping"
                and function_id in json.dumps(r["Properties"]["FunctionName"])]
    return found


# -- the table and the functions --------------------------------------------------------------------

def test_the_counters_outlive_the_messages_in_a_table_kept_on_delete(template):
    table = resources(template)[reports_table(template)]
    props = table["Properties"]
    assert props["KeySchema"] == [{"AttributeName": schema.REPORTS_KEY, "KeyType": "HASH"},
                                  {"AttributeName": schema.REPORTS_SORT, "KeyType": "RANGE"}]
    assert props["BillingMode"] == "PAY_PER_REQUEST"
    assert props["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}
    assert props["TimeToLiveSpecification"] == {"AttributeName": schema.REPORTS_TTL, "Enabled": True}
    assert "StreamSpecification" not in props
    assert table["DeletionPolicy"] == table["UpdateReplacePolicy"] == "Retain"
    # The counters' own expiry (400 days), not the messages' retention, decides how long they stay.
    assert schema.REPORT_DAYS == 400 and tally.counter_expiry("2026-12-05") - tally.counter_expiry("2026-12-04") == DAY


@pytest.mark.parametrize("function_id, timeout", [("ReportTally", Reports.TALLY_TIMEOUT_SECONDS),
                                                  ("ExportWriter", Reports.WRITER_TIMEOUT_SECONDS)])
def test_each_function_is_its_own_with_its_own_role_logs_and_settings(template, prod_template, function_id, timeout):
    functions = resources(template)
    function = functions[function_id]["Properties"]
    name = {logical_id: name for name, logical_id in SenderApi.LOGICAL_IDS.items()}[function_id]
    assert function["Handler"] == f"app.{name}"
    assert function["Timeout"] == timeout and function["Runtime"] == functions["APIHandler"]["Properties"]["Runtime"]
    roles = {ref_id(functions[f]["Properties"]["Role"]) for f in EVERY_FUNCTION}
    assert len(roles) == len(EVERY_FUNCTION)
    log_group = function["LoggingConfig"]["LogGroup"]["Ref"]
    assert functions[log_group]["Properties"]["RetentionInDays"] == 90
    variables = env(template, function_id)
    assert variables["APP_FUNCTION"] == name
    assert {"REPORTS_TABLE", "EXPORT_QUEUE_URL", "MESSAGES_TABLE", "MEDIA_BUCKET"} <= set(variables)
    # The stage's monthlySpendLimitUsd reaches the app (the report shows it), and none where it has none.
    assert env(prod_template, function_id)["MONTHLY_SPEND_LIMIT_USD"] == "1"
    assert "MONTHLY_SPEND_LIMIT_USD" not in variables


def test_the_writer_has_lambdas_whole_15_minutes_and_keeps_a_minute_of_it():
    documented = PROVIDER_SCHEMA_MANAGER.get_resource_schema("us-east-1", "AWS::Lambda::Function").schema
    assert "the maximum allowed value is 900 seconds" in documented["properties"]["Timeout"]["description"]
    assert Reports.WRITER_TIMEOUT_SECONDS == 900
    # What it keeps for itself once it stops reading: the last part, the item, the hand-over.
    assert writer.RESERVE_SECONDS == 60


# -- the tally's mapping ----------------------------------------------------------------------------

def test_the_tally_reads_the_stream_on_a_mapping_of_its_own_and_never_gives_up_on_a_record(template):
    stream = {"Fn::GetAtt": [messages_table(template), "StreamArn"]}
    readers = mappings_on(template, stream)
    # A stream shard takes two readers at most (botocore's model, tests/test_reports.py): the fanout and the tally.
    functions = [f for f in EVERY_FUNCTION for _, r in readers if f in json.dumps(r["Properties"]["FunctionName"])]
    assert sorted(functions) == ["ReportTally", "WebhookFanout"]
    props = mapping_of(template, "ReportTally")["Properties"]
    assert (props["StartingPosition"], props["BatchSize"], props["MaximumBatchingWindowInSeconds"]) == (
        "LATEST", Reports.TALLY_BATCH_SIZE, 1)
    assert props["BisectBatchOnFunctionError"] is True
    # Without limit (-1), as CloudFormation's schema documents: a record is retried until the stream drops it.
    documented = PROVIDER_SCHEMA_MANAGER.get_resource_schema(
        "us-east-1", "AWS::Lambda::EventSourceMapping").schema["properties"]
    assert "-1, which sets the maximum number of retries to infinite" in documented["MaximumRetryAttempts"]["description"]
    assert "Lambda never discards old records" in documented["MaximumRecordAgeInSeconds"]["description"]
    assert (props["MaximumRetryAttempts"], props["MaximumRecordAgeInSeconds"]) == (-1, -1)
    assert "DestinationConfig" not in props  # nothing is ever given up on, so nothing is sent aside
    assert role_policy(template, "ReportTally") in mapping_of(template, "ReportTally")["DependsOn"]


def test_the_tallys_filter_passes_writes_only_and_filters_under_the_dynamodb_key_only(template):
    props = mapping_of(template, "ReportTally")["Properties"]
    (only,) = props["FilterCriteria"]["Filters"]
    pattern = json.loads(only["Pattern"])
    assert unsupported_filters([("ReportTally", pattern)]) == []
    documented = json.loads((EVENTS / "dynamodb-stream-event.json").read_text())["event"]["Records"]
    keyed = [messages_record(template, r) for r in documented]
    assert all(passes(pattern, r) for r in keyed)
    removed = {**keyed[-1], "eventName": "REMOVE",
               "dynamodb": {k: v for k, v in keyed[-1]["dynamodb"].items() if k != "NewImage"}}
    assert not passes(pattern, removed)  # an expiry never reaches the function (nor would it count)
    patterns, sources = dynamodb_stream_filters(template.to_json())
    assert sources == 2 and unsupported_filters(patterns) == []


# -- the export queue -------------------------------------------------------------------------------

def test_exports_wait_on_an_encrypted_queue_and_the_ones_that_fail_are_kept_and_watched(template):
    queue_id = export_queue(template)
    queue = resources(template)[queue_id]["Properties"]
    dead_id = ref_id(queue["RedrivePolicy"]["deadLetterTargetArn"])
    dead = resources(template)[dead_id]["Properties"]
    writer_props = resources(template)["ExportWriter"]["Properties"]
    assert queue["RedrivePolicy"]["maxReceiveCount"] == writer.MAX_RECEIVES
    assert queue["VisibilityTimeout"] >= 6 * writer_props["Timeout"]
    assert writer_props["Timeout"] == local_resources.EXPORT_WRITER_TIMEOUT  # the local stack plays the same
    assert dead["MessageRetentionPeriod"] > queue["MessageRetentionPeriod"]
    assert queue["SqsManagedSseEnabled"] is dead["SqsManagedSseEnabled"] is True
    policies = [p["Properties"] for p in template.find_resources("AWS::SQS::QueuePolicy").values()]
    for name in (queue_id, dead_id):
        assert any({"Ref": name} in p["Queues"] and any(
            s["Effect"] == "Deny" and s["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
            for s in p["PolicyDocument"]["Statement"]) for p in policies), name
    props = mapping_of(template, "ExportWriter")["Properties"]
    assert props["EventSourceArn"] == {"Fn::GetAtt": [queue_id, "Arn"]}
    assert (props["BatchSize"], props["FunctionResponseTypes"]) == (1, ["ReportBatchItemFailures"])
    assert 2 <= props["ScalingConfig"]["MaximumConcurrency"] == Reports.WRITER_CONCURRENCY <= 10
    assert role_policy(template, "ExportWriter") in mapping_of(template, "ExportWriter")["DependsOn"]


def test_alarms_watch_the_tally_falling_behind_and_the_exports_that_failed(template):
    alarms = [a["Properties"] for a in template.find_resources("AWS::CloudWatch::Alarm").values()]
    (behind,) = [a for a in alarms if a.get("MetricName") == "IteratorAge"]
    (dimension,) = behind["Dimensions"]
    assert dimension["Name"] == "FunctionName" and '"ReportTally"' in json.dumps(dimension["Value"])
    assert (behind["Threshold"], behind["Statistic"]) == (Monitoring.TALLY_BEHIND_MS, "Maximum")
    assert behind["Threshold"] < DAY * 1000  # well before the stream drops a record (24 hours)
    queue = resources(template)[export_queue(template)]["Properties"]
    dead_id = ref_id(queue["RedrivePolicy"]["deadLetterTargetArn"])
    (dead,) = [a for a in alarms if a.get("Dimensions") == [
        {"Name": "QueueName", "Value": {"Fn::GetAtt": [dead_id, "QueueName"]}}]]
    assert (dead["MetricName"], dead["Threshold"]) == ("ApproximateNumberOfMessagesVisible", 1)
    for metric in ("Errors", "Throttles"):
        watched = [json.dumps(a["Dimensions"]) for a in alarms if a.get("MetricName") == metric]
        assert all(any(f in w for w in watched) for f in FUNCTIONS), metric


# -- the grants -------------------------------------------------------------------------------------

def kinds(template) -> dict[str, str]:
    """Each resource the reports grants name, as its policy names it (JSON), by kind."""
    table, messages = reports_table(template), messages_table(template)
    queue = export_queue(template)
    dead = ref_id(resources(template)[queue]["Properties"]["RedrivePolicy"]["deadLetterTargetArn"])
    (bucket,) = template.find_resources("AWS::S3::Bucket")
    return {
        json.dumps({"Fn::GetAtt": [table, "Arn"]}): "reports table",
        json.dumps({"Fn::GetAtt": [queue, "Arn"]}): "export queue",
        json.dumps({"Fn::GetAtt": [dead, "Arn"]}): "export dead letters",
        json.dumps({"Fn::GetAtt": [messages, "Arn"]}): "messages table",
        json.dumps({"Fn::GetAtt": [messages, "StreamArn"]}): "stream",
        json.dumps({"Fn::Join": ["", [{"Fn::GetAtt": [messages, "Arn"]}, f"/index/{schema.MESSAGES_LIST_INDEX}"]]}):
            "list index",
        json.dumps({"Fn::Join": ["", [{"Fn::GetAtt": [bucket, "Arn"]}, f"/{schema.EXPORTS_PREFIX}*"]]}): "exports",
    }


def granted(template, function_id: str) -> set[tuple[str, str, tuple | None]]:
    """(kind, action, the partition-key prefixes a condition holds the action to, or None) for every reports
    resource the function's role names."""
    role = ref_id(resources(template)[function_id]["Properties"]["Role"])
    known = kinds(template)
    found = set()
    for policy in template.find_resources("AWS::IAM::Policy").values():
        if {"Ref": role} not in policy["Properties"]["Roles"]:
            continue
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]:
            if statement["Effect"] != "Allow":
                continue
            actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
            targets = statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]]
            ours = [known[json.dumps(t)] for t in targets if json.dumps(t) in known]
            if not ours:
                continue
            condition, prefixes = statement.get("Condition"), None
            if condition:
                assert list(condition) == ["ForAllValues:StringLike"], condition
                assert list(condition["ForAllValues:StringLike"]) == ["dynamodb:LeadingKeys"], condition
                prefixes = tuple(sorted(k.rstrip("*") for k in condition["ForAllValues:StringLike"]["dynamodb:LeadingKeys"]))
            found |= {(kind, action, prefixes) for kind in ours for action in actions}
    return found


EXPORT_ITEMS, COUNTERS = (schema.REPORTS_EXPORT,), (schema.REPORTS_APPLIED, schema.REPORTS_DAILY)
EXPECTED = {
    # The counters, read (GET /reports/daily); the exports, kept and queued (POST and GET /exports).
    "APIHandler": {("reports table", "dynamodb:BatchGetItem", (schema.REPORTS_DAILY,)),
                   *{("reports table", a, EXPORT_ITEMS) for a in ("dynamodb:PutItem", "dynamodb:GetItem",
                                                                  "dynamodb:UpdateItem")},
                   ("export queue", "sqs:SendMessage", None)},
    # The stream (as the webhook fanout reads it), and a marker Put and counter Updates per transaction.
    "ReportTally": {("stream", a, None) for a in ("dynamodb:DescribeStream", "dynamodb:GetRecords",
                                                  "dynamodb:GetShardIterator")}
    | {("reports table", a, tuple(sorted(COUNTERS))) for a in ("dynamodb:PutItem", "dynamodb:UpdateItem")},
    # Its export's progress; the messages by the list index; the file; the queue (polled, and a hand-over).
    "ExportWriter": {("reports table", "dynamodb:GetItem", EXPORT_ITEMS), ("reports table", "dynamodb:UpdateItem",
                                                                           EXPORT_ITEMS),
                     ("messages table", "dynamodb:BatchGetItem", None), ("list index", "dynamodb:Query", None),
                     ("exports", "s3:PutObject", None), ("exports", "s3:AbortMultipartUpload", None),
                     *{("export queue", a, None) for a in ("sqs:ReceiveMessage", "sqs:DeleteMessage",
                                                           "sqs:GetQueueAttributes", "sqs:SendMessage")}},
}
REPORT_KINDS = {"reports table", "export queue", "export dead letters", "exports"}


@pytest.mark.parametrize("function_id", EVERY_FUNCTION)
def test_each_function_is_granted_exactly_its_reports_calls(template, function_id):
    ours = granted(template, function_id)
    # The two reports functions are held exactly; every other function (the API's rights on the messages
    # table and the bucket are the sends' and listings', tests/test_infra.py) only on the reports resources.
    checked = ours if function_id in FUNCTIONS else {g for g in ours if g[0] in REPORT_KINDS}
    assert checked == EXPECTED.get(function_id, set())


def test_the_conditions_hold_actions_the_reference_gives_the_leading_keys_condition():
    """Each conditioned action takes ``dynamodb:LeadingKeys`` (the Service Authorization Reference); that every
    statement's resources and condition keys exist is tests/test_iam_reference.py's, over every role."""
    from .test_iam_reference import actions_matching, service

    for function_id, expected in EXPECTED.items():
        for kind, action, prefixes in expected:
            assert actions_matching(action), action
            if prefixes:
                prefix = action.split(":")[0]
                ((_, privilege),) = actions_matching(action)
                keys = {key for spec in service(prefix)["privileges"][privilege]["resource_types"].values()
                        for key in spec.get("condition_keys", [])}
                assert "dynamodb:LeadingKeys" in keys, action


# -- the grants against the code: every call each function makes, recorded ---------------------------
# What Lambda does as the function, which its code never calls: read the stream (the tally); poll, delete
# and read the attributes of the export queue (the writer).
EVENT_SOURCE = {"ReportTally": {g for g in EXPECTED["ReportTally"] if g[0] == "stream"},
                "ExportWriter": {("export queue", a, None) for a in ("sqs:ReceiveMessage", "sqs:DeleteMessage",
                                                                     "sqs:GetQueueAttributes")}}


def kind_of_call(prefix: str, operation: str, params: dict) -> tuple[str, list[str]] | None:
    """(kind, the partition keys it names) of one recorded call (a transaction's item), None when it is not a
    reports resource's or one the grants above cover."""
    table = params.get("TableName")
    if prefix == "dynamodb" and operation == "BatchGetItem":
        ((table, request),) = params["RequestItems"].items()
        keys = [k[schema.REPORTS_KEY]["S"] for k in request["Keys"]] if table == os.environ["REPORTS_TABLE"] else []
        return ("reports table" if keys else "messages table"), keys
    if table == os.environ["REPORTS_TABLE"]:
        item = params.get("Key") or params.get("Item")
        return "reports table", [item[schema.REPORTS_KEY]["S"]]
    if table == os.environ["MESSAGES_TABLE"] and params.get("IndexName") == schema.MESSAGES_LIST_INDEX:
        return "list index", []
    if params.get("QueueUrl") == os.environ["EXPORT_QUEUE_URL"]:
        return "export queue", []
    if prefix == "s3" and str(params.get("Key", "")).startswith(schema.EXPORTS_PREFIX):
        return "exports", []
    return None


def s3_action(operation: str) -> str:
    """The IAM action an S3 multipart call is authorized as (the Service Authorization Reference lists the
    upload's parts under PutObject)."""
    return {"CreateMultipartUpload": "s3:PutObject", "UploadPart": "s3:PutObject",
            "CompleteMultipartUpload": "s3:PutObject", "AbortMultipartUpload": "s3:AbortMultipartUpload",
            "PutObject": "s3:PutObject"}[operation]


def test_the_multipart_calls_are_authorized_as_put_object_by_the_reference():
    """The reference lists no action for CreateMultipartUpload, UploadPart or CompleteMultipartUpload: a
    multipart upload is authorized as s3:PutObject, and its abort as s3:AbortMultipartUpload."""
    from .test_iam_reference import actions_matching

    for operation in ("CreateMultipartUpload", "UploadPart", "CompleteMultipartUpload"):
        assert not actions_matching(f"s3:{operation}"), operation
    assert actions_matching("s3:PutObject") and actions_matching("s3:AbortMultipartUpload")


def test_each_function_is_granted_every_call_its_code_makes(client, calls, template, monkeypatch):
    """Drive the routes, the tally and the writer (moto behind them) through every path that calls AWS,
    record each call, and hold it to ``EXPECTED`` (which the test above holds to the roles): every call is
    granted, on the items its condition allows, and every grant is called or needed by the event source."""
    import moto.s3.models

    from .conftest import body_of, post
    from .test_reports import Clock, queued_exports, seed, stored, traffic

    made: dict[str, list] = {}

    def as_function(function_id, run):
        start = len(calls)
        result = run()
        made.setdefault(function_id, []).extend(calls[start:])
        return result

    seed()
    for i in range(30):
        stored(createdAt=f"2026-12-04T11:{i:02d}:00.000Z")
    # The tally: a batch, and the same batch again (its markers refuse it).
    records = traffic()
    as_function("ReportTally", lambda: tally.handle({"Records": records}))
    as_function("ReportTally", lambda: tally.handle({"Records": records}))
    # The API: the report, an export started and read.
    assert as_function("APIHandler", lambda: client.http.get("/reports/daily")).status_code == 200
    started = body_of(as_function("APIHandler", lambda: post(client, "/exports", {"from": "2026-12-03",
                                                                                   "to": "2026-12-05"})))
    assert as_function("APIHandler", lambda: client.http.get(f"/exports/{started['id']}")).status_code == 200
    # An export the queue refuses ends failed at once (and the caller gets a 502 to retry).
    from botocore.exceptions import ClientError

    from chalicelib.core import aws

    queue = aws.client("sqs")

    def refused(**params):
        raise ClientError({"Error": {"Code": "InternalError", "Message": "SQS failed"}}, "SendMessage")

    with monkeypatch.context() as patched:
        patched.setattr(queue, "send_message", refused)
        answer = as_function("APIHandler", lambda: post(client, "/exports", {"from": "2026-12-03",
                                                                              "to": "2026-12-05"}))
    assert answer.status_code == 502 and body_of(answer)["error"]["code"] == "ProviderError"
    # The writer: an export handed over between invocations (time runs low), then one that fails for good.
    from devstack.queues import sqs_record

    monkeypatch.setattr(moto.s3.models, "S3_UPLOAD_PART_MIN_SIZE", 1000)
    arn = "arn:aws:sqs:us-east-1:123456789012:exports"
    for _ in range(20):
        waiting = queued_exports()
        if not waiting:
            break
        for found in waiting:
            as_function("ExportWriter", lambda: writer.handle({"Records": [sqs_record(found, arn)]}, Clock(20),
                                                              part_bytes=1500, min_part_bytes=1000))
            import boto3
            boto3.client("sqs", region_name="us-east-1").delete_message(
                QueueUrl=os.environ["EXPORT_QUEUE_URL"], ReceiptHandle=found["ReceiptHandle"])
    assert body_of(client.http.get(f"/exports/{started['id']}"))["status"] == "ready"
    failing = body_of(post(client, "/exports", {"from": "2026-12-03", "to": "2026-12-05"}))
    (found,) = queued_exports()
    record = sqs_record(found, arn)
    record["attributes"]["ApproximateReceiveCount"] = str(writer.MAX_RECEIVES)
    real_complete = writer.Export._complete

    def broken(self, *args, **kwargs):
        raise RuntimeError("S3 refused the completion")

    monkeypatch.setattr(writer.Export, "_complete", broken)
    as_function("ExportWriter", lambda: writer.handle({"Records": [record]}, Clock(10_000)))
    monkeypatch.setattr(writer.Export, "_complete", real_complete)
    assert body_of(client.http.get(f"/exports/{failing['id']}"))["status"] == "failed"

    problems = []
    for function_id, expected in EXPECTED.items():
        used: set[tuple[str, str, tuple | None]] = set()
        for prefix, operation, params in item_by_item(made[function_id]):
            found_kind = kind_of_call(prefix, operation, params)
            if found_kind is None:
                if function_id == "APIHandler" or (prefix, operation) == ("dynamodb", "BatchGetItem"):
                    continue  # the API's other calls are checked in test_infra.py and the webhook/keys tests
                problems.append(f"{function_id} calls {prefix}:{operation}, on no resource of its grants")
                continue
            kind, keys = found_kind
            action = s3_action(operation) if prefix == "s3" else f"{prefix}:{operation}"
            grants = [g for g in expected if g[:2] == (kind, action)]
            if not grants:
                problems.append(f"{function_id} calls {action} on the {kind}, not granted")
                continue
            (grant,) = grants
            if grant[2] is not None and not all(k.startswith(grant[2]) for k in keys):
                problems.append(f"{function_id} calls {action} on {keys}, outside {grant[2]}")
            used.add(grant)
        unused = expected - used - EVENT_SOURCE.get(function_id, set())
        if unused:
            problems.append(f"{function_id} is granted {sorted(unused)} and never calls it")
    assert not problems, "\n".join(problems)
