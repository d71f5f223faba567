"""Every JSON answer ends in a newline, so that ``curl`` leaves the prompt on a line of its own, and stays
``application/json`` and compact: each route of the app (read from the app's own route table, so a new route is
covered the day it lands), each kind of answer (200, 201, 202; the app's 4xx; Chalice's own 405 and 415; the
gateway layer's 401, 403 and 404, and the local server's own refusals), over real HTTP to the local stack as
curl sees it under ``make dev``. Deployed, API Gateway hands the Lambda's body over as it is; its own answers are
the gateway responses' templates, which get simple variable substitution only (AWS's words, kept in
tests/aws_docs/api-gateway-gateway-response-templates.json), so their final newline stays too."""
from __future__ import annotations

import http.client
import json
from pathlib import Path

import pytest

from devstack.server import LocalStack

from chalicelib.core import gateway  # importable once tests/conftest.py has loaded the app
from chalicelib.keys import scopes
from tests.conftest import sender
from tests.localhttp import HANG_GUARD

DOCS = json.loads((Path(__file__).parent / "aws_docs" / "api-gateway-gateway-response-templates.json").read_text())
US = "+14254147755"  # AWS's success simulator number
# A value for each path parameter: well-formed where the app screens ids, so each route runs as far as its look-up.
PATH_VALUES = {"message_id": "msg_0123456789abcdef0123456789abcdef", "batch_id": "bat_0123456789abcdef0123456789abcdef",
               "webhook_id": "wh_0123456789abcdef0123456789abcdef", "key_id": "key_0123456789abcdef0123456789abcdef",
               "number": "%2B14255550123", "template_id": "tpl_0123456789abcdef0123456789abcdef",
               "export_id": "exp_abcdefghijklmnopqrstuvwxyz"}


@pytest.fixture(scope="module")
def stack():
    with LocalStack(app_port=0, aws_port=0, require_keys=True) as running:
        yield running


def call(stack, method: str, path: str, body: bytes | None = None, headers: dict | None = None):
    """(status, headers with names in lower case, the exact body bytes)."""
    host, port = stack.app_url.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=HANG_GUARD)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        response = conn.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
    finally:
        conn.close()


def admin(stack) -> dict:
    return {"Authorization": f"Bearer {stack.admin_key}", "Content-Type": "application/json"}


def assert_json_line(status, headers, raw) -> dict | list:
    """A JSON answer as curl shows it: ``application/json``, compact JSON and then one final newline."""
    assert headers["content-type"].split(";")[0] == "application/json", (status, headers)
    assert raw.endswith(b"\n") and not raw.endswith(b"\n\n"), (status, raw[-80:])
    text = raw.decode()
    parsed = json.loads(text)
    compact = {json.dumps(parsed, separators=(",", ":"), ensure_ascii=ascii) for ascii in (True, False)}
    assert text[:-1] in compact, (status, text[:300])  # no other whitespace: one line, as compact as before
    return parsed


def test_every_route_answers_json_ending_in_a_newline(stack):
    """Each (method, route) of the app, called with a key that has every scope: an empty JSON object for a body,
    a well-formed id that names nothing in the path. Whatever each answers (200, 400, 404, ...), a JSON answer
    ends in a newline."""
    seen = {}
    for route, methods in sender.app.routes.items():
        path = route
        for name, value in PATH_VALUES.items():
            path = path.replace("{" + name + "}", value)
        assert "{" not in path, f"a path parameter this test has no value for: {route}"
        for method in methods:
            body = b"{}" if method in ("POST", "PUT", "PATCH") else None
            status, headers, raw = call(stack, method, path, body, admin(stack))
            seen[(method, route)] = status
            if status == 204 or headers.get("content-type", "").startswith("text/html"):
                assert not raw or status != 204
                continue
            assert_json_line(status, headers, raw)
    assert {("GET", "/health"), ("GET", "/messages"), ("POST", "/sms"), ("GET", "/openapi.json")} <= set(seen)
    assert {status // 100 for status in seen.values()} >= {2, 4}, seen
    assert set(scopes.ROUTES) <= set(seen), set(scopes.ROUTES) - set(seen)


def test_each_kind_of_json_answer_ends_in_a_newline(stack):
    key = admin(stack)
    plain = {"Content-Type": "application/json"}
    kinds = {
        # The app's successes.
        200: call(stack, "GET", "/health"),
        201: call(stack, "POST", "/webhooks", json.dumps({"url": "http://127.0.0.1:9/hooks"}).encode(), key),
        202: call(stack, "POST", "/sms", json.dumps({"to": US, "body": "newline check"}).encode(), key),
        # The app's refusals, and Chalice's own (given the contract's body by the app's middleware).
        400: call(stack, "POST", "/sms", b"{not json", key),
        404: call(stack, "GET", f"/messages/{PATH_VALUES['message_id']}", None, key),
        405: call(stack, "PATCH", "/health", None, key),
        415: call(stack, "POST", "/sms", b"{}", {**key, "Content-Type": "multipart/form-data"}),
        # The gateway layer's: no key, a key without the route's scope, no such route.
        401: call(stack, "GET", "/messages", None, plain),
    }
    reader = json.loads(call(stack, "POST", "/keys", json.dumps({"name": "reader", "scopes": [scopes.READ]}).encode(),
                             key)[2])["key"]
    kinds[403] = call(stack, "POST", "/sms", json.dumps({"to": US, "body": "x"}).encode(),
                      {"Authorization": f"Bearer {reader}", "Content-Type": "application/json"})
    gateway_404 = call(stack, "GET", "/no-such-route", None, key)
    # The local server's own refusals, before the app (as API Gateway refuses a payload over its quota).
    refused = [call(stack, "POST", "/sms", b"{}", {**key, "Content-Length": "x"}),
               call(stack, "POST", "/sms", None, {**key, "Transfer-Encoding": "chunked"})]
    for status, (got, headers, raw) in kinds.items():
        assert got == status, (status, got, raw[:300])
        assert_json_line(got, headers, raw)
    assert kinds[200][2] == b'{"status":"ok"}\n'
    assert json.loads(kinds[401][2])["error"]["code"] == gateway.UNAUTHORIZED.code
    assert json.loads(kinds[403][2])["error"]["code"] == gateway.ACCESS_DENIED.code
    assert gateway_404[0] == 404 and assert_json_line(*gateway_404)["error"]["code"] == gateway.ROUTE_NOT_FOUND.code
    assert [status for status, _headers, _raw in refused] == [400, 411]
    for answer in refused:
        assert_json_line(*answer)


def test_api_gateways_own_answers_end_in_a_newline_and_its_templates_keep_it():
    """The gateway responses' templates (``core.gateway``: the stack's ``responseTemplates`` and what the local
    stack answers) end in a newline. API Gateway does not run them through VTL, only simple variable
    substitution, so the newline is sent as written (tests/test_infra.py checks the synthesized templates)."""
    assert "isn't processed by the Velocity Template Language (VTL) engine" in DOCS["quote"]
    assert "only simple variable substitution" in DOCS["quote"]
    for answer in gateway.RESPONSES.values():
        body = answer.body()
        assert body.endswith("}\n") and body.count("\n") == 1, body
        assert set(json.loads(body.replace("$context.", "context."))["error"]) == {"code", "message"}


def test_a_route_that_builds_its_own_answer_gets_the_newline_from_the_middleware():
    """The app's HTTP middleware (``web.contract_errors``, on every route's answer) ends any JSON body a route made
    without ``json_response``: a dict left to Chalice to serialize (Decimal as Chalice writes it), a JSON string.
    It leaves every other body, and a body that has its newline, as it is."""
    from decimal import Decimal

    from chalice import Response

    from chalicelib.core import web

    assert web.contract_errors(Response({"n": Decimal("1.5"), "ok": True})).body == '{"n":1.5,"ok":true}\n'
    assert web.contract_errors(Response('{"a":1}', headers={"content-type": "application/json"})).body == '{"a":1}\n'
    assert web.contract_errors(Response('{"a":1}\n', headers={"Content-Type": "application/json"})).body == \
        '{"a":1}\n'
    assert web.contract_errors(Response("<p>hi</p>", headers={"Content-Type": "text/html"})).body == "<p>hi</p>"
    assert web.contract_errors(Response(b"\x89PNG", headers={"Content-Type": "application/json"})).body == b"\x89PNG"
    assert web.contract_errors(Response("", status_code=204)).body == ""


def test_the_local_stacks_own_endpoints_answer_json_lines_too(stack):
    """The embedded AWS's own endpoints, which the guides have you curl (``/_outbox``, ``/_faults``, ``/_limits``,
    ``/_inbound``), write their JSON as the app does: compact, one line, a final newline."""
    aws = type("AWS", (), {"app_url": stack.aws_url})  # call() reaches the embedded AWS by the same code
    json_body = {"Content-Type": "application/json"}
    status, headers, raw = call(aws, "POST", "/_inbound", json.dumps(
        {"originationNumber": "+14255550123", "messageBody": "Merci 👍"}).encode(), json_body)
    assert status == 202 and assert_json_line(status, headers, raw)["inboundMessageId"]
    outbox = assert_json_line(*call(aws, "GET", "/_outbox"))
    assert isinstance(outbox, list)
    assert assert_json_line(*call(aws, "GET", "/_inbound"))["error"].startswith("POST a reply")
    assert assert_json_line(*call(aws, "POST", "/_inbound", b"\xff", json_body))["error"]
    assert "bad fault" in assert_json_line(*call(aws, "POST", "/_faults", b'{"operation": ""}', json_body))["error"]
    fault = assert_json_line(*call(aws, "POST", "/_faults", b'{"operation": "GetItem", "count": 0}', json_body))
    assert fault["operation"] == "GetItem"
    assert assert_json_line(*call(aws, "GET", "/_faults")) == [fault]
    assert call(aws, "DELETE", "/_faults")[0] == 204
    assert assert_json_line(*call(aws, "GET", "/_limits")) == {"mps": None, "throttled": 0}
