"""Deployed, the API lives under its stage path (``/api/``): the ``Location`` headers and the console
page work there. The Chalice test client's requests arrive as API Gateway delivers them (see
``tests/apigateway.py``): addressed to ``/api/...``, routed on the app's own path, with
``requestContext.stage`` and ``requestContext.path`` set."""
import re

import pytest
from chalice.local import LambdaEventConverter

from chalicelib.console import page as console

from .apigateway import route_of, through_stage
from .conftest import body_of, post

TO = "+14255550123"

# Where a caller reaches the API, and the stage behind it: the execute-api domain puts the stage in
# the path; a custom domain has no stage in the path, with or without a base path mapping.
EXECUTE_API = ("/api", "api")
CUSTOM_DOMAIN_BASE_PATH = ("/v1", "api")
CUSTOM_DOMAIN = ("", "api")


@pytest.fixture
def gateway(monkeypatch):
    """Route the test client's requests as API Gateway does. ``gateway["prefix"]`` and
    ``gateway["stage"]`` say where the caller is; the execute-api domain to start with."""
    where = {"prefix": EXECUTE_API[0], "stage": EXECUTE_API[1]}
    create = LambdaEventConverter.create_lambda_event

    def create_as_api_gateway(self, method, path, headers, body=None):
        used, _, query = path.partition("?")
        route = route_of(used, where["prefix"])  # ValueError: no route, as API Gateway finds none
        event = create(self, method, route + (f"?{query}" if query else ""), headers, body)
        return through_stage(event, used=used, stage=where["stage"])

    monkeypatch.setattr(LambdaEventConverter, "create_lambda_event", create_as_api_gateway)
    return where


def test_sms_location_has_the_stage_path_and_can_be_fetched(client, gateway):
    response = post(client, "/api/sms", {"to": TO, "body": "Hello from the stage"})
    assert response.status_code == 202
    message = body_of(response)
    assert response.headers["Location"] == f"/api/messages/{message['id']}"
    fetched = client.http.get(response.headers["Location"])
    assert fetched.status_code == 200 and body_of(fetched) == message


def test_outside_the_stage_path_is_refused_as_api_gateway_does(client, gateway):
    # What the console's absolute paths got when deployed: API Gateway finds no route (its 403 "Missing
    # Authentication Token", which the stack's gateway response makes the contract's 404).
    response = post(client, "/sms", {"to": TO, "body": "lost"})
    assert response.status_code == 404 and body_of(response)["error"]["code"] == "RouteNotFound"


def test_batch_location_has_the_stage_path_and_can_be_fetched(client, gateway):
    response = post(client, "/api/batches", {"messages": [{"to": TO, "body": "one"}]})
    assert response.status_code == 202
    accepted = body_of(response)
    assert response.headers["Location"] == f"/api/batches/{accepted['id']}"
    progress = client.http.get(response.headers["Location"])
    assert progress.status_code == 200 and body_of(progress)["id"] == accepted["id"]


@pytest.mark.parametrize("prefix, stage", [EXECUTE_API, CUSTOM_DOMAIN_BASE_PATH, CUSTOM_DOMAIN],
                         ids=["execute-api", "custom-domain-base-path", "custom-domain"])
def test_location_follows_the_path_the_caller_used_not_the_stage_name(client, gateway, prefix, stage):
    gateway.update(prefix=prefix, stage=stage)
    response = post(client, f"{prefix}/mms", {"to": TO, "mediaUrl": "s3://not-ours/x.png"})
    assert response.status_code == 400  # no Location on an error
    assert "Location" not in response.headers
    response = post(client, f"{prefix}/sms", {"to": TO, "body": "where am I"})
    assert response.headers["Location"] == f"{prefix}/messages/{body_of(response)['id']}"
    assert client.http.get(response.headers["Location"]).status_code == 200


def test_a_replayed_send_points_where_the_replaying_caller_is(client, gateway):
    headers = {"Idempotency-Key": "stage-replay"}
    first = post(client, "/api/sms", {"to": TO, "body": "once"}, headers)
    gateway.update(prefix=CUSTOM_DOMAIN_BASE_PATH[0])
    again = post(client, "/v1/sms", {"to": TO, "body": "once"}, headers)
    assert body_of(again) == body_of(first)
    message_id = body_of(first)["id"]
    assert (first.headers["Location"], again.headers["Location"]) == (
        f"/api/messages/{message_id}", f"/v1/messages/{message_id}")


@pytest.mark.parametrize("path", ["/api/", "/api"])
def test_the_console_is_served_at_the_stage_root_with_or_without_the_slash(client, gateway, path):
    response = client.http.get(path)
    assert response.status_code == 200 and response.headers["Content-Type"].startswith("text/html")
    assert response.body.decode() == console.PAGE


def test_the_console_page_is_one_file_with_no_absolute_links_or_calls():
    # Stylesheet and script are inlined, so nothing on the page is fetched by a path that would
    # miss the stage; the script's API calls are relative (the browser test proves them).
    page = console.PAGE
    assert "<style>" in page and "<script>" in page
    assert not re.search(r"""<(link|script)\b[^>]*\b(href|src)="(?!data:)""", page)
    script = (console.STATIC / "console.js").read_text()
    assert not re.search(r"""["'`]/(sms|mms|media|messages|batches|health)\b""", script)


@pytest.mark.parametrize("html, css, js", [
    ("<p>no links</p>", "", ""),
    (f"{console.STYLESHEET}{console.SCRIPT}", "p {}", "let x = '</script>';"),
])
def test_a_page_that_cannot_be_inlined_is_refused_at_import(html, css, js):
    with pytest.raises(ValueError):
        console.inline(html, css, js)
