"""The Python client (clients/python) against the API's own description, app/chalicelib/openapi.json.

Every operation of the document has a method, and every method names an operation of the document. Each method's HTTP method, route, path, query and body
members, and the model it answers, match the document; each model has exactly its schema's members; each error
status has its exception family. ``contract_problems`` says exactly what is wrong, operation by operation; the
tests at the end show it does fail when the document and the client disagree.
"""
from __future__ import annotations

import copy
import dataclasses
import json
import re
import typing

import pytest

from . import clientlib  # noqa: F401  (puts this checkout's client first on the path)
from .clientlib import ROOT

import sms_sender  # noqa: E402
from sms_sender import _core, errors, models  # noqa: E402
from sms_sender._operations import OPERATIONS, Api, Operation  # noqa: E402

DOCUMENT = json.loads((ROOT / "app" / "chalicelib" / "openapi.json").read_text())
METHODS = ("get", "put", "post", "delete", "patch")


def _resolve(document: dict, node: dict) -> dict:
    while isinstance(node, dict) and "$ref" in node:
        target = document
        for part in node["$ref"].lstrip("#/").split("/"):
            target = target[part]
        node = target
    return node


def _properties(document: dict, schema: dict) -> tuple[set[str], set[str]]:
    """(properties, required) of an object schema, through $ref and allOf."""
    schema = _resolve(document, schema)
    props, required = set(schema.get("properties", {})), set(schema.get("required", []))
    for part in schema.get("allOf", []):
        more, needed = _properties(document, part)
        props, required = props | more, required | needed
    return props, required


def _route(path: str) -> str:
    return re.sub(r"{[^}]+}", "{}", path)


def document_operations(document: dict) -> dict[str, tuple[str, str, dict]]:
    """operationId -> (METHOD, path, operation)."""
    found = {}
    for path, item in document["paths"].items():
        for method, op in item.items():
            if method in METHODS:
                found[op["operationId"]] = (method.upper(), path, op)
    return found


def _success_schema(document: dict, op: dict) -> dict | None:
    for status, answer in op["responses"].items():
        if status.startswith("2"):
            answer = _resolve(document, answer)
            content = answer.get("content", {}).get("application/json")
            if content:
                return content["schema"]
    return None


def _schema_name(node: dict | None) -> str | None:
    return node["$ref"].rsplit("/", 1)[1] if isinstance(node, dict) and "$ref" in node else None


def _expected_schema(document: dict, returns) -> tuple[str, str | None]:
    """What the document should answer for a method's return annotation: ("model", schema name),
    ("page", item schema), ("list", item schema), ("json", None), ("none", None)."""
    origin = typing.get_origin(returns)
    if returns is type(None) or returns is None:
        return "none", None
    if returns is str:
        return "text", None
    if origin is typing.Union or str(origin) == "<class 'types.UnionType'>":
        arms = [a for a in typing.get_args(returns) if a is not type(None)]
        return _expected_schema(document, arms[0])
    if origin is models.Page:
        return "page", typing.get_args(returns)[0].SCHEMA
    if origin is list:
        return "list", typing.get_args(returns)[0].SCHEMA
    if origin is dict:
        return "json", None
    return "model", returns.SCHEMA


def _check_returns(document: dict, operation_id: str, method: Operation, op: dict) -> list[str]:
    kind, name = _expected_schema(document, method.returns)
    schema = _success_schema(document, op)
    statuses = [s for s in op["responses"] if s.startswith("2")]
    if kind == "none":
        return [] if schema is None else [f"{operation_id}: the document answers JSON, the method returns None"]
    if kind in ("text", "json"):
        return []
    if schema is None:
        return [f"{operation_id}: the method decodes a {name}, the document answers no JSON ({statuses})"]
    if kind == "model":
        got = _schema_name(schema)
        return [] if got == name else [f"{operation_id}: the method decodes {name}, the document answers {got}"]
    # a page or a list: an object with one array member whose items are the model's schema
    resolved = _resolve(document, schema)
    arrays = {k: v for k, v in resolved.get("properties", {}).items() if v.get("type") == "array"}
    items = {_schema_name(v.get("items")) for v in arrays.values()}
    problems = [] if items == {name} else [f"{operation_id}: the method reads {name} items, the document {items}"]
    if kind == "page" and "next" not in resolved.get("properties", {}):
        problems.append(f"{operation_id}: paged in the client, but the document's answer has no next")
    return problems


def contract_problems(document: dict) -> list[str]:
    """Every disagreement between the document and the client's methods, one line each."""
    documented = document_operations(document)
    problems = []
    for operation_id in sorted(set(documented) - set(OPERATIONS)):
        method, path, _ = documented[operation_id]
        problems.append(f"{operation_id} ({method} {path}): in the document, and no method of the client has it")
    for operation_id, method in sorted(OPERATIONS.items()):
        if operation_id not in documented:
            problems.append(f"{operation_id} ({method.fn.__name__}): a method names it, and the document has "
                            "no such operation")
            continue
        verb, path, op = documented[operation_id]
        if (verb, _route(path)) != (method.method, _route(method.route)):
            problems.append(f"{operation_id}: the method calls {method.method} {method.route}, the document has "
                            f"{verb} {path}")
        parameters = [_resolve(document, p) for p in op.get("parameters", [])]
        query = {p["name"] for p in parameters if p["in"] == "query"}
        for name in sorted(set(method.query_fields) - query):
            problems.append(f"{operation_id}: the method sends ?{name}=, the document has no such parameter")
        for name in sorted(query - set(method.query_fields)):
            problems.append(f"{operation_id}: the document takes ?{name}=, the method cannot send it")
        body = op.get("requestBody")
        fields = set(method.body_fields)
        if body:
            props, required = _properties(document, body["content"]["application/json"]["schema"])
            for name in sorted(fields - props):
                problems.append(f"{operation_id}: the method sends {name!r}, the document's request has no such "
                                "member")
            for name in sorted(props - fields):
                problems.append(f"{operation_id}: the document's request takes {name!r}, the method cannot send it")
            for name in sorted(required - fields):
                problems.append(f"{operation_id}: the document requires {name!r}, the method cannot send it")
        elif fields:
            problems.append(f"{operation_id}: the method sends a body {sorted(fields)}, the document takes none")
        problems += _check_returns(document, operation_id, method, op)
    return problems


def test_every_operation_has_a_method_and_every_method_an_operation():
    assert contract_problems(DOCUMENT) == []


def test_the_contract_check_names_an_operation_without_a_method():
    changed = copy.deepcopy(DOCUMENT)
    changed["paths"]["/fax"] = {"post": {"operationId": "sendFax", "responses": {"202": {"description": "ok"}}}}
    assert contract_problems(changed) == [
        "sendFax (POST /fax): in the document, and no method of the client has it"]


def test_the_contract_check_names_a_method_without_an_operation():
    changed = copy.deepcopy(DOCUMENT)
    del changed["paths"]["/batches/{batch_id}"]["get"]
    assert contract_problems(changed) == [
        "getBatch (get_batch): a method names it, and the document has no such operation"]


def test_the_contract_check_names_a_request_member_the_method_lacks():
    changed = copy.deepcopy(DOCUMENT)
    changed["components"]["schemas"]["SmsRequest"]["properties"]["priority"] = {"type": "string"}
    assert contract_problems(changed) == [
        "sendSms: the document's request takes 'priority', the method cannot send it"]


def test_the_contract_check_names_a_request_member_the_document_lacks():
    changed = copy.deepcopy(DOCUMENT)
    del changed["components"]["schemas"]["SmsRequest"]["properties"]["sendAt"]
    assert contract_problems(changed) == [
        "sendSms: the method sends 'sendAt', the document's request has no such member"]


def test_every_post_carries_an_idempotency_key():
    for operation_id, method in OPERATIONS.items():
        if method.method == "POST":
            assert "idempotency_key" in method.signature.parameters, operation_id
            call = method.call(None, *_minimal_arguments(method))
            assert call.idempotency_key, operation_id
        else:
            assert "idempotency_key" not in method.signature.parameters, operation_id


def _minimal_arguments(method: Operation):
    args, kwargs = [], {}
    for name, parameter in method.signature.parameters.items():
        if name == "self" or parameter.default is not parameter.empty:
            continue
        value = ["messages:read"] if name == "scopes" else ([{"to": "+1", "body": "x"}] if name == "messages" else "x")
        if parameter.kind is parameter.KEYWORD_ONLY:
            kwargs[name] = value
        else:
            args.append(value)
    return args, kwargs


# -- models --------------------------------------------------------------------------------------------------------

def _models():
    return [cls for cls in vars(models).values() if isinstance(cls, type) and issubclass(cls, models.Model)
            and cls is not models.Model and dataclasses.is_dataclass(cls) and cls.SCHEMA]


@pytest.mark.parametrize("model", _models(), ids=lambda cls: cls.__name__)
def test_each_model_has_exactly_its_schemas_members(model):
    schemas = DOCUMENT["components"]["schemas"]
    assert model.SCHEMA in schemas, f"{model.__name__}: no schema {model.SCHEMA} in the document"
    props, _ = _properties(DOCUMENT, schemas[model.SCHEMA])
    assert set(models.model_fields(model)) == props


def test_webhook_events_decode_into_messages():
    """A webhook's ``data`` is the message less ``body``: every member has a Message field."""
    props, _ = _properties(DOCUMENT, DOCUMENT["components"]["schemas"]["WebhookMessage"])
    assert props <= set(models.model_fields(models.Message))
    assert set(models.model_fields(models.WebhookEvent)) == _properties(
        DOCUMENT, DOCUMENT["components"]["schemas"]["WebhookEvent"])[0]


def test_every_resource_the_api_answers_has_a_model():
    answered = set()
    for operation_id, (_, _, op) in document_operations(DOCUMENT).items():
        schema = _success_schema(DOCUMENT, op)
        name = _schema_name(schema)
        if name and name not in ("Error",):
            answered.add(name)
    modelled = {cls.SCHEMA for cls in _models()}
    containers = {"MessagePage", "OptOutPage", "TemplatePage", "WebhookList", "WebhookDeliveries", "KeyList"}  # Page / list
    assert answered - containers <= modelled


def test_final_statuses_are_the_documents():
    status = DOCUMENT["components"]["schemas"]["Message"]["properties"]["status"]
    documented = set(status["enum"])
    assert models.FINAL_STATUSES == documented - {"queued", "sent", "scheduled"}


# -- errors --------------------------------------------------------------------------------------------------------

def test_each_error_status_has_its_exception_family():
    statuses = {int(s) for op in document_operations(DOCUMENT).values() for s in op[2]["responses"] if s[0] in "45"}
    expected = {400: sms_sender.BadRequestError, 401: sms_sender.AuthenticationError,
                403: sms_sender.PermissionDeniedError, 404: sms_sender.NotFoundError, 409: sms_sender.ConflictError,
                422: sms_sender.UnprocessableError, 429: sms_sender.RateLimitError}
    for status in statuses:
        cls = errors.error_class(status)
        if status in expected:
            assert cls is expected[status]
        elif status >= 500:
            assert cls is sms_sender.ServerError
        else:
            assert cls is sms_sender.ApiError  # 415: no family of its own
        assert issubclass(cls, sms_sender.ApiError)


def test_the_codes_the_client_treats_apart_are_the_documents():
    schemas = DOCUMENT["components"]["schemas"]

    def codes(name):
        error = schemas[name]["allOf"][1]["properties"]["error"]["properties"]["code"]
        return set(error.get("enum", [error.get("const")]))

    assert _core.NOT_RETRIED <= codes("Error503")
    assert _core.RETRIED_CONFLICTS <= codes("Error409")
