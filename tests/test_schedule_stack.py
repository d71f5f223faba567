"""The scheduled-sends part of the stack (``infra/api.py``, ``infra/store.py``, ``infra/monitoring.py``), read from
the dev template synthesized once per session: the sweep function with a role of its own, its EventBridge rule,
the due index, the alarms; and every AWS call the sweep and the new routes make, recorded against moto, held to
the grants (the sweep's both ways: it may do nothing it does not do)."""
from __future__ import annotations

import json
import os
import time

from chalicelib.core import aws, schema, store
from chalicelib.core.settings import get_settings
from chalicelib.sending import schedule

from .conftest import body_of, post
from .test_webhooks_stack import ref_id, resources

SWEEP, API = "ScheduleSweep", "APIHandler"
# SendMessageBatch is authorized as sqs:SendMessage (the Service Authorization Reference lists no action of
# its own for it; tests/test_iam_reference.py checks every granted action exists).
ACTIONS = {"SendMessageBatch": "sqs:SendMessage", "DeleteMessageBatch": "sqs:DeleteMessage"}
NOT_DATA = ("logs:", "xray:")


def role_of(template, function_id: str) -> str:
    return resources(template)[function_id]["Properties"]["Role"]["Fn::GetAtt"][0]


def grants(template, function_id: str) -> list[tuple[str, tuple[str, str | None], dict]]:
    """(action, (logical id, index name or None), condition) for every Allow statement of the function's role
    on a data resource (not its logs or traces)."""
    role, found = role_of(template, function_id), []
    for policy in template.find_resources("AWS::IAM::Policy").values():
        if {"Ref": role} not in policy["Properties"]["Roles"]:
            continue
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]:
            actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
            targets = statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]]
            if statement["Effect"] != "Allow" or all(a.startswith(NOT_DATA) for a in actions):
                continue
            for target in targets:
                if isinstance(target, dict) and "Fn::GetAtt" in target:
                    where = (target["Fn::GetAtt"][0], None)
                elif isinstance(target, dict) and "Fn::Join" in target:
                    parts = target["Fn::Join"][1]
                    where = (parts[0]["Fn::GetAtt"][0], parts[1].removeprefix("/index/"))
                else:
                    where = (json.dumps(target), None)
                found += [(action, where, statement.get("Condition", {})) for action in actions]
    return found


def by_variable(template, function_id: str, name: str) -> str:
    """The logical id of the resource the function's environment variable ``name`` names."""
    return ref_id(resources(template)[function_id]["Properties"]["Environment"]["Variables"][name])


def needed(template, function_id: str, calls: list) -> list[tuple[str, tuple[str, str | None], dict]]:
    """The recorded calls as (IAM action, (logical id, index), the call's parameters), each resource found the way
    the function finds it: the environment variable that names it."""
    environment = resources(template)[function_id]["Properties"]["Environment"]["Variables"]
    by_value = {os.environ[name]: value for name, value in environment.items()
                if isinstance(value, dict) and name in os.environ}
    made = []
    for service, operation, params in calls:
        name = params.get("TableName") or params.get("QueueUrl")
        if name not in by_value:
            continue
        made.append((ACTIONS.get(operation, f"{service}:{operation}"), (ref_id(by_value[name]),
                                                                         params.get("IndexName")), params))
    return made


def test_the_sweep_is_a_function_of_its_own_run_every_minute_and_never_retried(template):
    functions = resources(template)
    sweep = functions[SWEEP]["Properties"]
    assert sweep["Handler"] == "app.schedule_sweep" and sweep["Timeout"] == schedule.SWEEP_TIMEOUT_SECONDS
    assert sweep["Runtime"] == functions[API]["Properties"]["Runtime"]
    assert sweep["Environment"]["Variables"]["APP_FUNCTION"] == "schedule_sweep"
    assert role_of(template, SWEEP) not in {role_of(template, f) for f in (API, "BatchWorker")}
    (rule,) = template.find_resources("AWS::Events::Rule").values()
    assert rule["Properties"]["ScheduleExpression"] == "rate(1 minute)" and rule["Properties"]["State"] == "ENABLED"
    (target,) = rule["Properties"]["Targets"]
    assert target["Arn"] == {"Fn::GetAtt": [SWEEP, "Arn"]}
    assert target["RetryPolicy"] == {"MaximumRetryAttempts": 0, "MaximumEventAgeInSeconds": 60}
    (rule_id,) = template.find_resources("AWS::Events::Rule")
    permissions = [p["Properties"] for p in template.find_resources("AWS::Lambda::Permission").values()
                   if p["Properties"]["Principal"] == "events.amazonaws.com"]
    assert [(p["FunctionName"], p["SourceArn"]) for p in permissions] == [
        ({"Fn::GetAtt": [SWEEP, "Arn"]}, {"Fn::GetAtt": [rule_id, "Arn"]})]
    configs = [c["Properties"] for c in template.find_resources("AWS::Lambda::EventInvokeConfig").values()
               if c["Properties"]["FunctionName"] == {"Ref": SWEEP}]
    assert [(c["MaximumRetryAttempts"], c["MaximumEventAgeInSeconds"]) for c in configs] == [(0, 60)]


def test_the_due_index_is_sparse_keys_only_and_sorted_by_send_at(template):
    (table,) = [t for t in template.find_resources("AWS::DynamoDB::Table").values()
                if any(i["IndexName"] == schema.MESSAGES_DUE_INDEX for i in t["Properties"].get(
                    "GlobalSecondaryIndexes", []))]
    (index,) = [i for i in table["Properties"]["GlobalSecondaryIndexes"] if i["IndexName"] == schema.MESSAGES_DUE_INDEX]
    assert index["KeySchema"] == [{"AttributeName": schema.MESSAGES_DUE_PARTITION, "KeyType": "HASH"},
                                  {"AttributeName": schema.MESSAGES_DUE_SORT, "KeyType": "RANGE"}]
    assert index["Projection"] == {"ProjectionType": "KEYS_ONLY"}


def test_the_sweeps_errors_and_throttles_alarm(template):
    watched = {(a["Properties"].get("MetricName"), json.dumps(a["Properties"].get("Dimensions")))
               for a in template.find_resources("AWS::CloudWatch::Alarm").values()}
    for metric in ("Errors", "Throttles"):
        assert any(name == metric and SWEEP in dims for name, dims in watched), metric


def test_the_sweep_makes_exactly_the_calls_its_role_grants(client, calls, template):
    """Both ways: every call of a sweep run is granted, and every grant is used by one (so the role holds
    nothing the function does not need). The cursor's grant holds only for the cursor's item."""
    settings = get_settings()
    post(client, "/sms", {"to": "+14255550123", "body": "for the sweep", "sendAt": _later(3600)})
    test_key = _test_key(client)
    post(client, "/sms", {"to": "+14255550123", "body": "for the sweep too", "sendAt": _later(3600)},
         {"Authorization": f"Bearer {test_key}"})
    # A batch message the queue dead-lettered without the worker ending its record: the sweep ends it.
    post(client, "/batches", {"messages": [{"to": "+14255550123", "body": "set aside by the queue"}]})
    (dead,) = aws.client("sqs").receive_message(QueueUrl=settings.batch_queue_url, MaxNumberOfMessages=10)["Messages"]
    aws.client("sqs").send_message(QueueUrl=settings.batch_dlq_url, MessageBody=dead["Body"])
    start = len(calls)
    schedule.sweep(settings=settings, now=time.time() + 3600 - 120)  # a first run: reads all, queues both
    assert schedule.sweep(settings=settings, now=time.time() + 3600 - 60)["steps"] >= 0  # a run from the cursor
    assert store.get(json.loads(dead["Body"])["messageId"])["status"] == store.FAILED
    made = needed(template, SWEEP, calls[start:])
    granted = grants(template, SWEEP)
    assert {(action, where) for action, where, _ in made} == {(action, where) for action, where, _ in granted}
    assert {action for action, _, _ in made} == {"dynamodb:Query", "dynamodb:GetItem", "dynamodb:UpdateItem",
                                                "sqs:SendMessage", "sqs:ReceiveMessage", "sqs:DeleteMessage"}
    idempotency = by_variable(template, SWEEP, "IDEMPOTENCY_TABLE")
    for action, (logical, _index), condition in granted:
        if action in ("dynamodb:GetItem", "dynamodb:UpdateItem") and logical == idempotency:
            assert condition == {"ForAllValues:StringEquals": {"dynamodb:LeadingKeys": [schema.SWEEP_CURSOR]}}
    keys = {params["Key"][schema.IDEMPOTENCY_KEY]["S"] for action, (logical, _), params in made
            if "Key" in params and logical == idempotency}
    assert keys == {schema.SWEEP_CURSOR}
    assert {where[1] for action, where, _ in made if action == "dynamodb:Query"} == {schema.MESSAGES_DUE_INDEX}


def test_the_new_routes_make_only_calls_the_api_role_grants(client, calls, template):
    start = len(calls)
    message = body_of(post(client, "/sms", {"to": "+14255550123", "body": "cancel me", "sendAt": _later(120)}))
    assert client.http.post(f"/messages/{message['id']}/cancel").status_code == 200
    batch = body_of(post(client, "/batches", {"messages": [{"to": "+14255550123", "body": "b"}],
                                              "sendAt": _later(3600)}))
    assert client.http.get("/messages?status=scheduled").status_code == 200
    assert client.http.post(f"/batches/{batch['id']}/cancel").status_code == 200
    made = {(action, where) for action, where, _ in needed(template, API, calls[start:])}
    granted = {(action, where) for action, where, _ in grants(template, API)}
    assert made - granted == set()
    assert ("dynamodb:Query", (made_table(made), schema.MESSAGES_DUE_INDEX)) in made


def made_table(made) -> str:
    (table,) = {where[0] for action, where in made if where[1] == schema.MESSAGES_DUE_INDEX}
    return table


def _later(seconds: float) -> str:
    return schedule.iso(time.time() + seconds)


def _test_key(client) -> str:
    from .test_keys import make_key

    return make_key(client, ["messages:send"], test=True)[1]


def test_what_the_batch_queue_dead_letters_is_ended_by_the_sweep_and_still_fires_the_alarm(template):
    """The sweep reads the batch dead-letter queue (its variable names that queue, the one the batch queue's
    redrive targets), and the DeadLetters alarm adds the queue's depth to the sweep's count of what it ended,
    which a metric filter reads from the sweep's log line (``schedule sweep``, its ``settled`` field)."""
    everything = resources(template)
    dlq = by_variable(template, SWEEP, "BATCH_DLQ_URL")
    batch_queue = by_variable(template, SWEEP, "BATCH_QUEUE_URL")
    redrive = everything[batch_queue]["Properties"]["RedrivePolicy"]
    assert redrive["deadLetterTargetArn"] == {"Fn::GetAtt": [dlq, "Arn"]}
    sweep_logs = everything[SWEEP]["Properties"]["LoggingConfig"]["LogGroup"]
    (settled,) = [f["Properties"] for f in template.find_resources("AWS::Logs::MetricFilter").values()
                  if f["Properties"]["MetricTransformations"][0]["MetricName"] == "DeadLettersSettled"]
    assert settled["LogGroupName"] == sweep_logs and settled["FilterPattern"] == '{ $.settled = "*" }'
    assert settled["MetricTransformations"][0]["MetricValue"] == "$.settled"
    (alarm,) = [a["Properties"] for name, a in template.find_resources("AWS::CloudWatch::Alarm").items()
                if name.startswith("MonitoringDeadLetters")]
    queries = {q["Id"]: q for q in alarm["Metrics"]}
    (expression,) = [q for q in queries.values() if "Expression" in q]
    assert expression["Expression"] == "visible + hidden + settled" and expression["ReturnData"]
    for name, metric in (("visible", "ApproximateNumberOfMessagesVisible"),
                         ("hidden", "ApproximateNumberOfMessagesNotVisible")):
        depth = queries[name]["MetricStat"]
        assert depth["Metric"]["MetricName"] == metric
        assert depth["Metric"]["Dimensions"] == [{"Name": "QueueName", "Value": {"Fn::GetAtt": [dlq, "QueueName"]}}]
    count = queries["settled"]["MetricStat"]
    assert (count["Metric"]["MetricName"], count["Stat"]) == ("DeadLettersSettled", "Sum")
    assert alarm["Threshold"] == 1 and alarm["ComparisonOperator"] == "GreaterThanOrEqualToThreshold"
