"""The OpenAPI document (app/chalicelib/openapi.json, served at GET /openapi.json) and the code, held to
each other in both directions: routes and methods, the error codes each status can carry (found in the
source), the message resource's fields, the request limits, the open routes, and the error table of
the documentation (docs/reference/errors.md). tests/test_fuzz.py then checks the running API's answers
against the document."""
from __future__ import annotations

import ast
import inspect
import json
import re
from pathlib import Path

import pytest
from openapi_spec_validator import OpenAPIV31SpecValidator, validate

from tests.conftest import sender
from chalicelib.sending import batches
from chalicelib.core import errors, gateway
from chalicelib.core import inputs
from chalicelib.core import idempotency
from chalicelib.sending import media
from chalicelib import openapi
from chalicelib.keys import scopes
from chalicelib.core import schema
from chalicelib.core import settings
from chalicelib.core import store
from chalicelib.core import text
from chalicelib.sending import validation
from chalicelib.core import web
from chalicelib.templates import manage as templates

ROOT = Path(__file__).resolve().parents[1]
SOURCES = sorted((ROOT / "app" / "chalicelib").rglob("*.py")) + [ROOT / "app" / "app.py"]
DOC = openapi.DOCUMENT
METHODS = {"get", "put", "post", "delete", "patch", "head", "options", "trace"}


def deref(node):
    """Follow a local ``$ref`` (repeatedly)."""
    while isinstance(node, dict) and "$ref" in node:
        ref = node["$ref"]
        assert ref.startswith("#/"), ref
        node = DOC
        for part in ref[2:].split("/"):
            node = node[part]
    return node


def operations():
    """(path, method, operation) for every operation in the document."""
    for path, item in DOC["paths"].items():
        for method, operation in item.items():
            if method in METHODS:
                yield path, method, operation


def codes_in(schema_node) -> set[str]:
    """The error codes a response schema allows: the enum/const of ``error.code`` through $ref, allOf and
    anyOf (API Gateway's own bodies, in anyOf, have none)."""
    found: set[str] = set()
    node = deref(schema_node)
    for key in ("allOf", "anyOf", "oneOf"):
        for part in node.get(key, []):
            found |= codes_in(part)
    code = deref(deref(node.get("properties", {}).get("error", {})).get("properties", {}).get("code", {}))
    found |= set(code.get("enum", [])) | ({code["const"]} if "const" in code else set())
    return found


def document_codes() -> dict[int, set[str]]:
    """Per status, every error code the document's operations allow."""
    per_status: dict[int, set[str]] = {}
    for _path, _method, operation in operations():
        for status, response in operation["responses"].items():
            if int(status) >= 400:
                content = deref(response).get("content", {}).get("application/json")
                assert content, f"{status} of {operation['operationId']} has no JSON body"
                per_status.setdefault(int(status), set()).update(codes_in(content["schema"]))
    # 405 answers a method the document does not have, so no operation lists it: the MethodNotAllowed
    # response under components documents it.
    not_allowed = DOC["components"]["responses"]["MethodNotAllowed"]["content"]["application/json"]
    per_status[405] = codes_in(not_allowed["schema"])
    # Likewise API Gateway's answer for a route the API does not have.
    no_route = DOC["components"]["responses"]["RouteNotFound"]["content"]["application/json"]
    per_status.setdefault(404, set()).update(codes_in(no_route["schema"]))
    return per_status


def _error_classes() -> dict[str, type]:
    found, pending = {}, [errors.MessagingError]
    while pending:
        cls = pending.pop()
        found[cls.__name__] = cls
        pending.extend(cls.__subclasses__())
    return found


def _status_of(cls) -> int:
    return web.status_for(cls.__new__(cls))


# Calls whose code is not a literal: where the codes come from instead.
DYNAMIC_CODES = {
    ("inputs.py", "resource_id"): lambda: {code for code, _noun in web.RESOURCE_IDS.values()},
}


def source_codes() -> dict[int, set[str]]:
    """Per status, every error code the code can answer, read from the source: each construction of a
    MessagingError subclass (its ``code`` argument, or the code its constructor sets, as ``Throttled()``),
    with the status web.STATUS maps the class to; the 500 ``InternalError`` body web.py writes; and the
    codes Chalice's own errors are given (web.CHALICE_ERRORS)."""
    classes = _error_classes()
    per_status: dict[int, set[str]] = {}
    unresolved = []
    for path in SOURCES:
        tree = ast.parse(path.read_text(encoding="utf-8"))
        functions = [n for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))]
        for node in ast.walk(tree):
            if isinstance(node, ast.Call):
                func = node.func
                name = func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else None
                if name in classes:
                    cls = classes[name]
                    parameters = list(inspect.signature(cls.__init__).parameters)[1:]
                    if "code" in parameters:
                        index = parameters.index("code")
                        arg = node.args[index] if len(node.args) > index else next(
                            (k.value for k in node.keywords if k.arg == "code"), None)
                        if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
                            codes = {arg.value}
                        else:
                            where = next(f.name for f in functions
                                         if f.lineno <= node.lineno <= f.end_lineno and
                                         any(n is node for n in ast.walk(f)))
                            key = (path.name, where)
                            if key not in DYNAMIC_CODES:
                                unresolved.append(f"{path.name}:{node.lineno} ({where})")
                                continue
                            codes = DYNAMIC_CODES[key]()
                    else:  # a class that sets its own code, e.g. Throttled(), Unavailable(message)
                        required = [p for p in list(inspect.signature(cls.__init__).parameters.values())[1:]
                                    if p.default is inspect.Parameter.empty
                                    and p.kind is not inspect.Parameter.VAR_KEYWORD]
                        codes = {cls(*["placeholder"] * len(required)).code}
                    per_status.setdefault(_status_of(cls), set()).update(codes)
                if name == "json_response" and node.args and isinstance(node.args[0], ast.Constant):
                    status = node.args[0].value
                    for inner in ast.walk(node):
                        if isinstance(inner, ast.Dict):
                            for key, value in zip(inner.keys, inner.values):
                                if isinstance(key, ast.Constant) and key.value == "code" and \
                                        isinstance(value, ast.Constant):
                                    per_status.setdefault(status, set()).add(value.value)
    assert not unresolved, ("error codes that are not literals; say in DYNAMIC_CODES where they come from: "
                            + ", ".join(unresolved))
    for status, code in web.CHALICE_ERRORS.values():
        per_status.setdefault(status, set()).add(code)
    for answer in gateway.RESPONSES.values():  # API Gateway's own answers (status 0: API Gateway's own status)
        if answer.status:
            per_status.setdefault(answer.status, set()).add(answer.code)
    return per_status


def test_the_document_is_valid_openapi_3_1():
    assert DOC["openapi"].startswith("3.1.")
    validate(DOC, cls=OpenAPIV31SpecValidator)


def test_the_document_is_served_open_at_openapi_json(client):
    response = client.http.get("/openapi.json")
    assert response.status_code == 200 and response.headers["Content-Type"] == "application/json"
    assert json.loads(response.body) == json.loads(openapi.PATH.read_text(encoding="utf-8"))


def test_routes_and_operations_match_in_both_directions():
    """Every route of the Chalice app (the /openapi.json route included) is in the document with the same
    methods, and the document has nothing the app lacks."""
    in_app = {(path, method.lower()) for path, methods in sender.app.routes.items() for method in methods}
    in_document = {(path, method) for path, method, _ in operations()}
    assert in_app == in_document, {"only in the app": in_app - in_document,
                                   "only in the document": in_document - in_app}


def test_every_operation_declares_the_bearer_scheme_with_its_scope():
    """A bearer key on every route but the open ones, with the one scope the route needs: in the document (its
    ``security``), in the app (the authorizer, and the scope the route checks) and in ``keys.scopes``."""
    assert DOC["components"]["securitySchemes"] == {"bearer": {
        **DOC["components"]["securitySchemes"]["bearer"], "type": "http", "scheme": "bearer"}}
    for path, method, operation in operations():
        route = sender.app.routes[path][method.upper()]
        key = (method.upper(), path)
        if key in scopes.OPEN:
            assert operation["security"] == [] and route.authorizer is None, key
            continue
        assert route.authorizer is not None and route.authorizer.name == "bearer", key
        needed = scopes.ROUTES.get(key)
        assert operation["security"] == [{"bearer": [needed] if needed else []}], key
        assert route.view_function.scope == (needed or web.ANY_KEY), key
        assert {"401", "403"} <= set(operation["responses"]), key
    assert set(scopes.ROUTES) | set(scopes.ANY_KEY) | set(scopes.OPEN) == {
        (method.upper(), path) for path, _method, _op in operations() for method in [_method]}


def test_every_list_of_scopes_in_the_document_is_the_scope_table():
    """Wherever the document enumerates scopes (a key's, the request that makes one), it names every scope of
    ``keys.scopes`` in its order, and the bearer scheme's description names each."""
    found = []

    def walk(node):
        if isinstance(node, dict):
            if isinstance(node.get("enum"), list) and scopes.KEYS in node["enum"]:
                found.append(node["enum"])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(DOC)
    assert len(found) >= 3 and all(enum == list(scopes.SCOPES) for enum in found), found
    described = DOC["components"]["securitySchemes"]["bearer"]["description"]
    assert re.findall(r"`([a-z-]+:[a-z]+)`", described) == list(scopes.SCOPES)


def test_every_gateway_answer_is_documented():
    """API Gateway's own answers (``core.gateway``): a status's code among that status's codes (above), and the
    defaults, whose status varies, in the document's description."""
    for answer in gateway.RESPONSES.values():
        if not answer.status:
            assert f"`{answer.code}`" in DOC["info"]["description"], answer.code


def test_error_codes_match_the_code_per_status_in_both_directions():
    in_code, in_document = source_codes(), document_codes()
    assert in_code == in_document, {
        status: {"only in the code": sorted(in_code.get(status, set()) - in_document.get(status, set())),
                 "only in the document": sorted(in_document.get(status, set()) - in_code.get(status, set()))}
        for status in sorted(set(in_code) | set(in_document))
        if in_code.get(status) != in_document.get(status)}
    # The statuses web.STATUS maps the error classes to, plus 500, all have a response in the document.
    assert {status for _kind, status in web.STATUS} | {500} <= set(in_document)


def test_every_error_response_has_the_contract_error_body():
    body = DOC["components"]["schemas"]["ErrorDetail"]
    assert set(body["properties"]) == {"code", "message", "field", "messageId", "requestId"}
    assert body["required"] == ["code", "message"]
    for _path, _method, operation in operations():
        for status, response in operation["responses"].items():
            if int(status) >= 400:
                schema_node = deref(response)["content"]["application/json"]["schema"]
                refs = json.dumps(schema_node) + json.dumps(deref(schema_node))
                assert "#/components/schemas/Error" in refs, (operation["operationId"], status)
    assert DOC["components"]["schemas"]["Error500"]["allOf"][1]["properties"]["error"]["required"] == ["requestId"]


def test_the_message_resource_matches_store_public_fields():
    message = DOC["components"]["schemas"]["Message"]
    assert list(message["properties"]) == list(store.PUBLIC_FIELDS)
    assert message["required"] == list(store.PUBLIC_FIELDS)
    assert message["additionalProperties"] is False
    shown = {store.QUEUED, store.SENT, store.DELIVERED, store.FAILED, store.UNKNOWN, store.VALIDATED, store.RECEIVED,
             store.SCHEDULED, store.CANCELED}
    assert set(message["properties"]["status"]["enum"]) == shown  # ``sending`` shows as ``queued``
    assert message["properties"]["direction"]["enum"] == list(store.LIST_PREFIXES)
    assert store.shown_status(store.SENDING) == store.QUEUED
    # A webhook event's data is the same resource less its body (webhooks/events.py).
    hook = DOC["components"]["schemas"]["WebhookMessage"]
    assert list(hook["properties"]) == hook["required"] == [f for f in store.PUBLIC_FIELDS if f != "body"]
    assert hook["additionalProperties"] is False
    assert all(hook["properties"][f] == message["properties"][f] for f in hook["properties"])


def test_batch_progress_matches_the_counted_statuses():
    progress = DOC["components"]["schemas"]["BatchProgress"]
    fields = ["id", "createdAt", "size", "rejected", *batches.COUNTED, "done"]
    assert sorted(progress["properties"]) == sorted(fields) and sorted(progress["required"]) == sorted(fields)
    assert DOC["components"]["schemas"]["BatchAccepted"]["properties"]["id"]["pattern"] == f"^{schema.BATCH_ID_PREFIX}"


def test_request_constraints_are_the_codes():
    schemas, parameters = DOC["components"]["schemas"], DOC["components"]["parameters"]
    sms, mms = schemas["SmsRequest"]["properties"], schemas["MmsRequest"]["properties"]
    item = schemas["BatchItem"]["properties"]
    for body in (sms["body"], mms["body"], item["body"]):
        assert body["maxLength"] == text.MAX_BODY
    # A send gives its own body (an MMS its own media) or a template's: exactly one of the two forms.
    assert sms["body"]["minLength"] == 1 and schemas["SmsRequest"]["required"] == ["to"]
    assert [form["required"] for form in schemas["SmsRequest"]["oneOf"]] == [["body"], ["templateId"]]
    assert schemas["MmsRequest"]["required"] == ["to"]
    assert [form["required"] for form in schemas["MmsRequest"]["oneOf"]] == [["mediaUrl"], ["templateId"]]
    template = schemas["TemplateRequest"]["properties"]
    assert template["body"]["maxLength"] == text.MAX_BODY and template["body"]["minLength"] == 1
    assert template["body"]["pattern"] == sms["body"]["pattern"]
    assert template["name"]["maxLength"] == templates.MAX_NAME and template["mediaUrl"]["maxLength"] == \
        validation.MEDIA_URL_MAX == templates.MEDIA_URL_MAX
    assert list(schemas["Template"]["properties"]) == list(templates.FIELDS) == schemas["Template"]["required"]
    assert schemas["Template"]["properties"]["id"]["pattern"] == f"^{schema.TEMPLATE_ID_PREFIX}"
    for request in ("SmsRequest", "MmsRequest", "BatchItem", "BatchRequest"):
        version = schemas[request]["properties"]["templateVersion"]
        assert version["minimum"] == 1 and "integer" in version["type"]
    assert schemas["BatchItem"]["properties"]["personalisation"]["additionalProperties"] == {
        "type": ["string", "number"]}
    assert sms["type"]["enum"] == item["type"]["enum"] == list(settings.SMS_TYPES)
    assert item["channel"]["enum"] == ["sms", "mms"]
    assert mms["mediaUrl"]["maxLength"] == validation.MEDIA_URL_MAX
    messages = schemas["BatchRequest"]["properties"]["messages"]
    assert (messages["minItems"], messages["maxItems"]) == (1, batches.MAX_ITEMS)
    limit = inspect.signature(inputs.limit).parameters
    assert parameters["Limit"]["schema"] == {"type": "integer", "minimum": 1, "maximum": limit["maximum"].default,
                                            "default": limit["default"].default}
    key = parameters["IdempotencyKey"]
    assert (key["name"], key["in"], key["schema"]["maxLength"]) == ("Idempotency-Key", "header",
                                                                    idempotency.MAX_KEY_LENGTH)
    media_request = schemas["MediaRequest"]
    assert media_request["required"] == ["contentType", "size"]
    assert media_request["properties"]["size"] == {**media_request["properties"]["size"], "type": "integer",
                                                   "minimum": 1}
    described = media_request["properties"]["contentType"]["description"]
    assert set(re.findall(r"[a-z]+/[a-z0-9.+-]+", described)) == set(media.MAX_BYTES)
    assert f"({media.IMAGE_LIMIT} bytes)" in described and f"({media.OTHER_LIMIT} bytes)" in described


def test_every_post_takes_an_idempotency_key_and_created_resources_have_a_location():
    for path, method, operation in operations():
        names = [deref(p)["name"] for p in operation.get("parameters", [])]
        assert ("Idempotency-Key" in names) == (method == "post"), (method, path)
    for path, status in (("/sms", "202"), ("/mms", "202"), ("/batches", "202")):
        response = deref(DOC["paths"][path]["post"]["responses"][status])
        assert deref(response["headers"]["Location"])["required"] is True
    for _path, _method, operation in operations():
        for status in ("409", "429"):
            if status in operation["responses"]:
                assert "Retry-After" in deref(operation["responses"][status])["headers"]


def test_links_send_then_read_back():
    """The links a stateful run follows point at real operations and parameters."""
    by_id = {operation["operationId"]: (path, operation) for path, _method, operation in operations()}
    expected = {("sendSms", "GetMessage"), ("sendMms", "GetMessage"), ("createBatch", "GetBatch"),
                ("createTemplate", "GetTemplate")}
    found = set()
    for _path, _method, operation in operations():
        for response in operation["responses"].values():
            for name, link in deref(response).get("links", {}).items():
                found.add((operation["operationId"], name))
                _target_path, target = by_id[link["operationId"]]
                names = {deref(p)["name"] for p in target.get("parameters", [])}
                assert set(link["parameters"]) <= names, (name, link)
                assert all(v.startswith("$response.body#/") for v in link["parameters"].values())
    assert expected <= found
    assert DOC["paths"]["/sms"]["post"]["responses"]["202"]["links"]["GetMessage"]["parameters"] == {
        "message_id": "$response.body#/id"}
    assert DOC["paths"]["/batches"]["post"]["responses"]["202"]["links"]["GetBatch"]["parameters"] == {
        "batch_id": "$response.body#/id"}


def docs_error_table() -> dict[int, set[str]]:
    """The error table of the documentation (docs/reference/errors.md): status -> the codes in backticks
    (CamelCase names only: not headers such as `Retry-After` or AWS reasons such as `MESSAGE_TYPE_MISMATCH`)."""
    text = (ROOT / "docs" / "reference" / "errors.md").read_text(encoding="utf-8")
    start = text.index("Errors always look like")
    table = {}
    for line in text[start:].splitlines()[1:]:
        match = re.match(r"\|\s*(\d{3})\s*\|(.*)\|\s*$", line)
        if match:
            table[int(match.group(1))] = set(re.findall(r"`([A-Z][a-z][A-Za-z0-9]*)`", match.group(2)))
        elif table and not line.startswith("|"):
            break
    return table


def test_the_docs_error_table_lists_the_same_codes():
    in_docs, in_document = docs_error_table(), document_codes()
    assert in_docs, "docs/reference/errors.md has no error table after 'Errors always look like'"
    assert in_docs == in_document, {
        status: {"only in the docs": sorted(in_docs.get(status, set()) - in_document.get(status, set())),
                 "only in the document": sorted(in_document.get(status, set()) - in_docs.get(status, set()))}
        for status in sorted(set(in_docs) | set(in_document))
        if in_docs.get(status) != in_document.get(status)}


@pytest.mark.parametrize("status", [400, 404, 405, 415])
def test_errors_chalice_answers_itself_carry_the_contract_body(client, status):
    request = {400: ("POST", "/sms", "application/json", b"{"),
               404: ("GET", "/messages/no-such-message", None, b""),
               405: ("PUT", "/sms", "application/json", b"{}"),
               415: ("POST", "/sms", "multipart/form-data", b"{}")}[status]
    method, path, content_type, body = request
    response = client.http.request(method, path, headers={"Content-Type": content_type} if content_type else {},
                                   body=body)
    assert response.status_code == status
    error = json.loads(response.body)["error"]
    assert set(error) <= {"code", "message", "field"} and error["code"] and error["message"]
    if status == 405:
        assert error["code"] == "MethodNotAllowed" and response.headers["Allow"] == "POST"
    if status == 415:  # the types it takes, named: Chalice's own words name only the one refused
        assert error["code"] == "UnsupportedMediaType"
        assert error["message"] == ("Unsupported media type: multipart/form-data. The body is JSON: send it as "
                                    "application/json, text/plain, application/x-www-form-urlencoded, "
                                    "application/octet-stream.")


@pytest.mark.parametrize("token", [
    "e30",  # {}: DynamoDB refuses an ExclusiveStartKey without the index's keys (a 500 before)
    "eyJpZCI6IngiLCJsaXN0S2V5Ijoib3RoZXIiLCJzb3J0S2V5IjoieSJ9",  # another partition of the list index
    "not base64 at all", "W10",  # []
])
def test_a_next_token_the_api_did_not_return_is_400_invalid_next(client, token):
    response = client.http.get(f"/messages?next={token.replace(' ', '%20')}")
    assert response.status_code == 400 and json.loads(response.body)["error"]["code"] == "InvalidNext"


def test_every_request_body_refuses_what_the_route_does_not_define():
    """The document's request bodies admit no other member (``additionalProperties: false``), and each names
    exactly the fields its route takes (any other is 400 ``UnknownField``); a route without a request body
    takes no member at all. A batch's items likewise."""
    from chalicelib.sending import batches

    for path, method, operation in operations():
        route = sender.app.routes[path][method.upper()]
        body = operation.get("requestBody")
        if body is None:
            assert getattr(route.view_function, "fields", frozenset()) == frozenset(), (method, path)
            continue
        schema = deref(body["content"]["application/json"]["schema"])
        assert schema["additionalProperties"] is False, (method, path)
        assert set(schema["properties"]) == set(route.view_function.fields), (method, path)
    item = deref(DOC["components"]["schemas"]["BatchItem"])
    assert item["additionalProperties"] is False and set(item["properties"]) == set(batches.ITEM_FIELDS)


def test_every_route_takes_exactly_the_query_parameters_the_document_lists():
    """A query parameter the route does not take is 400 ``UnknownField``, as a body field is; the open routes
    (the console, /health, /openapi.json) take any."""
    for path, method, operation in operations():
        route = sender.app.routes[path][method.upper()]
        listed = {deref(p)["name"] for p in operation.get("parameters", []) if deref(p)["in"] == "query"}
        if (method.upper(), path) in scopes.OPEN:
            assert getattr(route.view_function, "params", None) is None, (method, path)
            continue
        assert route.view_function.params == listed, (method, path)


@pytest.mark.parametrize("method, path, unknown", [
    ("GET", "/messages?limt=5", "limt"),  # a typo: the list came back with 20, as if no limit had been asked
    ("GET", "/reports/daily?form=2026-12-01&to=2026-12-02", "form"),  # the last 7 days came back
    ("GET", "/messages/no-such-message?verbose=1", "verbose"),
    ("POST", "/sms?dryRun=true", "dryRun"),  # a POST's members go in its body
])
def test_a_query_parameter_the_route_does_not_take_is_refused_by_name(client, method, path, unknown):
    from .conftest import post

    response = post(client, path, {"to": "+14255550123", "body": "x"}) if method == "POST" else client.http.get(path)
    assert response.status_code == 400, response.body
    error = json.loads(response.body)["error"]
    assert (error["code"], error["field"]) == ("UnknownField", unknown)
    assert error["message"].startswith(f"'{unknown}' is not a query parameter of this request; the query "
                                       "parameters are ")
    assert client.http.get("/messages?limit=5").status_code == 200


@pytest.mark.parametrize("path, body", [
    ("/sms", {"to": "+14255550123", "body": "typo", "dryrun": True}),
    ("/mms", {"to": "+14255550123", "mediaUrl": "s3://b/k.png", "bodyy": "x"}),
    ("/media", {"contentType": "image/png", "size": 10, "name": "cat.png"}),
    ("/batches", {"messages": [{"to": "+14255550123", "body": "x"}], "sendat": "later"}),
    ("/webhooks", {"url": "http://127.0.0.1:9/hooks", "secret": "mine"}),
    ("/keys", {"name": "n", "scopes": ["messages:read"], "admin": True}),
    ("/webhooks/wh_00000000000000000000000000000000/rotate", {"force": True}),
])
def test_a_field_the_route_does_not_define_is_refused_by_name_before_anything_is_done(client, path, body):
    from .conftest import post

    response = post(client, path, body)
    assert response.status_code == 400, response.body
    error = json.loads(response.body)["error"]
    (unknown,) = set(body) - set(getattr(sender.app.routes[
        "/webhooks/{webhook_id}/rotate" if path.endswith("/rotate") else path]["POST"].view_function, "fields", ()))
    assert (error["code"], error["field"]) == ("UnknownField", unknown)


def test_a_batch_item_with_an_unknown_field_is_rejected_alone(client):
    from .conftest import post

    response = post(client, "/batches", {"messages": [{"to": "+14255550123", "body": "ok"},
                                                      {"to": "+14255550123", "body": "x", "sendat": "later"}]})
    answer = json.loads(response.body)
    assert response.status_code == 202 and answer["accepted"] == 1
    assert answer["rejected"] == [{"index": 1, "error": {
        "code": "UnknownField", "field": "sendat", "message": answer["rejected"][0]["error"]["message"]}}]
