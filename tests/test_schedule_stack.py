"""The scheduled-sends part of the stack (``infra/api.py``, ``infra/store.py``, ``infra/monitoring.py``), read from
the dev template synthesized once per session: the sweep function with a role of its own, its EventBridge rule,
the due index, the alarms; and every AWS call the sweep and the new routes make, recorded against moto, held to
the grants (the sweep's both ways: it may do nothing it does not do)."""
from __future__ import annotations

import json
import os
import time

from chalicelib.core import schema
from chalicelib.core.settings import get_settings
from chalicelib.sending import schedule

from .conftest import body_of, post

SWEEP, API = "ScheduleSweep", "APIHandler"
# SendMessageBatch is authorized as sqs:SendMessage (the Service Authorization Reference lists no action of
# its own for it; tests/test_iam_reference.py checks every granted action exists).
ACTIONS = {"SendMessageBatch": "sqs:SendMessage"}
NOT_DATA = ("logs:", "xray:")


def resources(template) -> dict:
    return template.to_json()["Resources"]


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
        ref = by_value[name]
        logical = ref["Ref"] if "Ref" in ref else ref["Fn::GetAtt"][0]
        made.append((ACTIONS.get(operation, f"{service}:{operation}"), (logical, params.get("IndexName")), params))
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
    watched = {(a["Properties"]["MetricName"], json.dumps(a["Properties"].get("Dimensions")))
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
    start = len(calls)
    schedule.sweep(settings=settings, now=time.time() + 3600 - 120)  # a first run: reads all, queues both
    assert schedule.sweep(settings=settings, now=time.time() + 3600 - 60)["steps"] >= 0  # a run from the cursor
    made = needed(template, SWEEP, calls[start:])
    granted = grants(template, SWEEP)
    assert {(action, where) for action, where, _ in made} == {(action, where) for action, where, _ in granted}
    assert {action for action, _, _ in made} == {"dynamodb:Query", "dynamodb:GetItem", "dynamodb:UpdateItem",
                                                "sqs:SendMessage"}
    for action, (logical, _index), condition in granted:
        if action in ("dynamodb:GetItem", "dynamodb:UpdateItem"):
            assert condition == {"ForAllValues:StringEquals": {"dynamodb:LeadingKeys": [schema.SWEEP_CURSOR]}}
    keys = {params["Key"][schema.IDEMPOTENCY_KEY]["S"] for action, _, params in made if "Key" in params}
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
