"""The templates part of the stack (``infra/templates.py``, granted in ``infra/api.py``): the table and its list
index as the app and the local stack have them; only the API function may touch it, with exactly the actions its
code calls (recorded against moto, a transaction counted item by item as IAM authorizes it); and the index is
written only when a template is made (DynamoDB's documented index-write rules, ``tests/aws_docs/``)."""
from __future__ import annotations

import json
import os
from pathlib import Path

from chalicelib.core import schema

from .conftest import body_of, post
from .test_webhooks_stack import env, granted, item_by_item, ref_id, resources, role_policy

FUNCTIONS = ("APIHandler", "BatchWorker", "StatusIngest", "WebhookFanout", "WebhookDelivery", "Bearer")
TO = "+14255550123"
# What the API's role may do on the table, and on its list index.
TABLE_ACTIONS = {"dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:BatchGetItem"}
INDEX_ACTIONS = {"dynamodb:Query"}


def templates_table(template) -> str:
    return ref_id(env(template, "APIHandler")["TEMPLATES_TABLE"])


def index_grants(template, function_id: str, table: str) -> set[str]:
    """The actions a function's role is allowed on the table's list index (``<table arn>/index/<name>``)."""
    found = set()
    for policy in template.find_resources("AWS::IAM::Policy").values():
        if {"Ref": ref_id(resources(template)[function_id]["Properties"]["Role"])} not in policy["Properties"]["Roles"]:
            continue
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]:
            targets = statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]]
            for target in targets:
                if target == {"Fn::Join": ["", [{"Fn::GetAtt": [table, "Arn"]},
                                                f"/index/{schema.TEMPLATES_LIST_INDEX}"]]}:
                    actions = statement["Action"]
                    found |= set(actions if isinstance(actions, list) else [actions])
    return found


def test_the_table_keeps_versions_under_the_template_and_lists_heads_from_a_keys_only_index(template):
    from devstack import resources as local

    table = resources(template)[templates_table(template)]
    props = table["Properties"]
    assert props["KeySchema"] == [{"AttributeName": schema.TEMPLATES_KEY, "KeyType": "HASH"},
                                  {"AttributeName": schema.TEMPLATES_SORT, "KeyType": "RANGE"}]
    (index,) = props["GlobalSecondaryIndexes"]
    assert index == {"IndexName": schema.TEMPLATES_LIST_INDEX, "Projection": {"ProjectionType": "KEYS_ONLY"},
                     "KeySchema": [{"AttributeName": schema.TEMPLATES_LIST_PARTITION, "KeyType": "HASH"},
                                   {"AttributeName": schema.TEMPLATES_LIST_SORT, "KeyType": "RANGE"}]}
    assert props["BillingMode"] == "PAY_PER_REQUEST"
    assert props["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}
    # Messages name their template and version: the templates outlive a destroy, as the messages do.
    assert table["DeletionPolicy"] == table["UpdateReplacePolicy"] == "Retain"

    # The local stack's table is the same table.
    made = {}

    class Recorder:
        def create_table(self, **params):
            made.update(params)

    local.create_templates(Recorder())
    assert made["KeySchema"] == props["KeySchema"]
    assert sorted(made["AttributeDefinitions"], key=str) == sorted(props["AttributeDefinitions"], key=str)
    assert made["GlobalSecondaryIndexes"] == props["GlobalSecondaryIndexes"]


def test_only_the_api_may_touch_the_templates_table(template):
    table = templates_table(template)
    touching = {f: granted(template, f).get(table, set()) | index_grants(template, f, table) for f in FUNCTIONS}
    assert {f: actions for f, actions in touching.items() if actions} == {"APIHandler": TABLE_ACTIONS | INDEX_ACTIONS}
    assert granted(template, "APIHandler")[table] == TABLE_ACTIONS
    assert index_grants(template, "APIHandler", table) == INDEX_ACTIONS
    # Nor any other role of the stack (custom resources, service roles).
    api_policy = role_policy(template, "APIHandler")
    for name, policy in template.find_resources("AWS::IAM::Policy").items():
        if name != api_policy:
            assert table not in json.dumps(policy["Properties"]["PolicyDocument"]), name
    assert env(template, "APIHandler")["TEMPLATES_TABLE"] == {"Ref": table}


def test_every_call_on_the_table_is_granted_and_every_grant_is_called(client, calls, template, put_media):
    """Drive every route and send that touches templates (create, read, read a version, list, new version,
    archive, send from one, a personalised batch), record each call against moto (botocore validates each
    one's parameters against the service model first), and hold it to the API's grants both ways."""
    from .test_templates import make, put

    table = os.environ["TEMPLATES_TABLE"]
    start = len(calls)
    made = make(client)
    put(client, made["id"], {"name": "reminder", "body": "v2 ((first name)) ((time))"})
    for path in (f"/templates/{made['id']}", f"/templates/{made['id']}?version=1", "/templates?limit=1",
                 "/templates"):
        assert client.http.get(path).status_code == 200, path
    values = {"first name": "Ada", "time": "10:30"}
    assert post(client, "/sms", {"to": TO, "templateId": made["id"], "templateVersion": 1,
                                 "personalisation": values}).status_code == 202
    assert post(client, "/batches", {"templateId": made["id"], "messages": [
        {"to": TO, "personalisation": values}]}).status_code == 202
    assert client.http.delete(f"/templates/{made['id']}").status_code == 204

    used, index_used = set(), set()
    for prefix, operation, params in item_by_item(calls[start:]):
        if params.get("TableName") == table:
            (index_used if params.get("IndexName") else used).add(f"{prefix}:{operation}")
        elif table in json.dumps(params.get("RequestItems", {})):
            used.add(f"{prefix}:{operation}")
    assert used == TABLE_ACTIONS == granted(template, "APIHandler")[templates_table(template)]
    assert index_used == INDEX_ACTIONS == index_grants(template, "APIHandler", templates_table(template))


def test_the_list_index_is_written_only_when_a_template_is_made(client, calls):
    """The index holds heads only: a version item never has its keys, and no later write to a head (a new
    version, archiving) changes them; keys only, so no other attribute is projected. By DynamoDB's rules, none
    of those writes costs an index write (quoted in tests/aws_docs/dynamodb_gsi_writes.json)."""
    from .test_templates import make, put

    quotes = json.loads((Path(__file__).parent / "aws_docs" / "dynamodb_gsi_writes.json").read_text())
    (writes,) = [s for s in quotes["sources"] if s["topic"] == "index writes"]
    assert "If an item is not present in the index before or after the item is updated, there is no additional " \
           "write cost for the index." in writes["quotes"]
    assert "Note that if a write to a table does not require a global secondary index update, then no write " \
           "capacity is consumed from the index." in writes["quotes"]

    table = os.environ["TEMPLATES_TABLE"]
    index_keys = {schema.TEMPLATES_LIST_PARTITION, schema.TEMPLATES_LIST_SORT}
    start = len(calls)
    made = make(client)
    creation = len(calls)
    put(client, made["id"], {"name": "reminder", "body": "v2 ((first name)) ((time))"})
    put(client, made["id"], {"name": "renamed", "body": "v3 ((first name))"})
    client.http.delete(f"/templates/{made['id']}")
    puts = [(params["Item"], i) for i, (_, op, params) in enumerate(item_by_item(calls[start:]))
            if op == "PutItem" and params.get("TableName") == table]
    heads = [item for item, _ in puts if item[schema.TEMPLATES_SORT]["N"] == str(schema.TEMPLATE_HEAD)]
    versions = [item for item, _ in puts if item[schema.TEMPLATES_SORT]["N"] != str(schema.TEMPLATE_HEAD)]
    assert len(heads) == 1 and index_keys <= set(heads[0])  # the one index write: the template made
    assert [item[schema.TEMPLATES_SORT]["N"] for item in versions] == ["1", "2", "3"]
    assert all(not index_keys & set(item) for item in versions)
    updates = [params for _, op, params in item_by_item(calls[creation:])
               if op == "UpdateItem" and params.get("TableName") == table]
    assert len(updates) == 3  # two new versions, one archive
    for update in updates:
        assert not index_keys & set(update["ExpressionAttributeNames"].values()), update["UpdateExpression"]
    listed = body_of(client.http.get("/templates"))["templates"]
    assert [t["version"] for t in listed if t["id"] == made["id"]] == [3]
