"""The keys part of the stack (``infra/keys.py``, granted in ``infra/api.py``): only the authorizer (a key's read
and its ``lastUsedAt``) and the API function (the ``/keys`` routes) may touch the keys table, and every call their
code makes is granted; the authorizer is a function of its own, on the same runtime, with a role of its own."""
from __future__ import annotations

import json
import os

from chalicelib.keys import authorizer, scopes

from .conftest import body_of, post
from .test_webhooks_stack import granted, ref_id, resources

EVERY_FUNCTION = ("APIHandler", "BatchWorker", "StatusIngest", "WebhookFanout", "WebhookDelivery", "Bearer",
                  "ReportTally", "ExportWriter", "ScheduleSweep")


def keys_table(template) -> str:
    return ref_id(template.to_json()["Outputs"]["KeysTableName"]["Value"])


def test_only_the_authorizer_and_the_api_may_touch_the_keys_table(template):
    table = keys_table(template)
    touching = {function_id: granted(template, function_id).get(table, set()) for function_id in EVERY_FUNCTION}
    assert {f: actions for f, actions in touching.items() if actions} == {
        "APIHandler": {"dynamodb:PutItem", "dynamodb:GetItem", "dynamodb:UpdateItem", "dynamodb:Scan"},
        "Bearer": {"dynamodb:GetItem", "dynamodb:UpdateItem"}}
    # Nor any other role of the stack (custom resources, service roles).
    function_roles = {ref_id(resources(template)[f]["Properties"]["Role"]) for f in ("APIHandler", "Bearer")}
    for policy in template.find_resources("AWS::IAM::Policy").values():
        if set(json.dumps(r) for r in policy["Properties"]["Roles"]) & {json.dumps({"Ref": r}) for r in function_roles}:
            continue
        assert table not in json.dumps(policy["Properties"]["PolicyDocument"]), policy["Properties"]["Roles"]


def test_the_authorizers_update_may_touch_only_the_last_use(template):
    table = keys_table(template)
    role = ref_id(resources(template)["Bearer"]["Properties"]["Role"])
    updates = [s for p in template.find_resources("AWS::IAM::Policy").values() if {"Ref": role} in p["Properties"]["Roles"]
               for s in p["Properties"]["PolicyDocument"]["Statement"]
               if "dynamodb:UpdateItem" in json.dumps(s.get("Action")) and table in json.dumps(s.get("Resource"))]
    assert [s["Condition"] for s in updates] == [
        {"ForAllValues:StringEquals": {"dynamodb:Attributes": ["id", "lastUsedAt"]}}]


def test_the_authorizer_is_its_own_function_on_the_stacks_runtime_with_a_short_timeout(template):
    functions = resources(template)
    bearer = functions["Bearer"]["Properties"]
    assert bearer["Handler"] == "chalicelib.keys.authorizer.handler"
    assert bearer["Runtime"] == functions["APIHandler"]["Properties"]["Runtime"]
    assert bearer["Timeout"] <= 10 and bearer["Role"] != functions["APIHandler"]["Properties"]["Role"]
    assert bearer["Environment"]["Variables"]["KEYS_TABLE"] == {"Ref": keys_table(template)}


def test_the_authorizer_and_the_key_routes_make_only_granted_calls(client, calls, template):
    """Every call the authorizer and the /keys routes make, recorded against moto, is one their roles have."""
    made = post(client, "/keys", {"name": "granted", "scopes": [scopes.READ, scopes.KEYS]})
    key = body_of(made)["key"]
    from .conftest import hygiene

    hygiene.keys.add(key)
    table = os.environ["KEYS_TABLE"]
    start = len(calls)
    authorizer.check(f"Bearer {key}", "arn:aws:execute-api:us-east-1:123456789012:a/api/GET/keys")
    authorizer_calls = {(p, op) for p, op, params in calls[start:] if params.get("TableName") == table}
    start = len(calls)
    for path in ("/keys", f"/keys/{body_of(made)['id']}", "/keys/current"):
        assert client.http.get(path, headers={"Authorization": f"Bearer {key}"}).status_code == 200
    assert client.http.delete(f"/keys/{body_of(made)['id']}").status_code == 204
    route_calls = {(p, op) for p, op, params in calls[start:] if params.get("TableName") == table}
    as_actions = lambda found: {f"{p}:{op}" for p, op in found}  # noqa: E731
    table_id = keys_table(template)
    assert as_actions(authorizer_calls) == {"dynamodb:GetItem", "dynamodb:UpdateItem"}
    assert as_actions(authorizer_calls) <= granted(template, "Bearer")[table_id]
    assert as_actions(route_calls) | {"dynamodb:PutItem"} <= granted(template, "APIHandler")[table_id]
