"""The send console in a real browser, served where it is deployed: under API Gateway's stage path.

Debian's chromium, driven by Playwright for Python (Playwright's own browser download cannot work
here; ``make test`` installs chromium). The app runs on the local stack; ``tests/apigateway.py``
serves it under ``/api/`` on loopback as API Gateway does, with a 403 for any path outside the
stage, so a call that leaves out the stage fails here as it fails deployed.
"""
import base64
import os
import uuid
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import expect, sync_playwright

from devstack import appload
from devstack.server import LocalStack

from .apigateway import StageServer
from .localhttp import Http

CHROMIUM = "/usr/bin/chromium"
TO = "+14255550123"
# A 1x1 PNG.
PNG = base64.b64decode("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==")


@pytest.fixture(scope="module")
def browser():
    if not Path(CHROMIUM).is_file():
        reason = f"no browser at {CHROMIUM}: `make test` installs Debian's chromium (apt-get install chromium)"
        if os.environ.get("CI", "").lower() in ("true", "1"):
            pytest.fail(reason)
        pytest.skip(reason)
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM)
        yield launched
        launched.close()


@pytest.fixture(scope="module")
def stack():
    with LocalStack(app_port=0, aws_port=0, settings={"PROVIDER_MAX_ATTEMPTS": "2"}) as running:
        yield running


@pytest.fixture(scope="module")
def stage(stack):
    with StageServer(appload.load().app) as server:
        yield server


class Tab:
    """A page with a record of every request it made and every error it logged."""

    def __init__(self, page):
        self.page, self.requests, self.errors = page, [], []
        page.set_default_timeout(20_000)
        page.on("request", lambda r: self.requests.append((r.method, r.url)))
        page.on("response", lambda r: r.status >= 400 and self.errors.append(f"{r.status} {r.request.method} {r.url}"))
        page.on("pageerror", lambda err: self.errors.append(str(err)))
        page.on("console", lambda msg: msg.type == "error" and self.errors.append(msg.text))

    def paths(self, origin):
        return [(method, urlsplit(url).path) for method, url in self.requests if url.startswith(origin)]


@pytest.fixture
def tab(browser):
    context = browser.new_context()
    yield Tab(context.new_page())
    context.close()


def outbox(stack):
    return Http(stack.aws_url).call("GET", "/_outbox")[2]


def row_of(page, text):
    return page.locator("#messages tr", has_text=text)


@pytest.mark.parametrize("served, path", [("stage", "/api/"), ("stage", "/api"), ("local", "/")],
                         ids=["stage-slash", "stage-no-slash", "make-dev"])
def test_the_console_sends_an_sms_where_it_is_served(tab, stack, stage, served, path):
    origin = stage.origin if served == "stage" else stack.app_url
    prefix = path.rstrip("/")
    text = f"console {uuid.uuid4().hex[:8]}"
    tab.page.goto(origin + path)
    tab.page.fill("#to", TO)
    tab.page.fill("#body", text)
    tab.page.click("#sendButton")
    expect(tab.page.locator("#result")).to_contain_text("Accepted: ")
    row = row_of(tab.page, text)
    expect(row).to_have_count(1)
    expect(row.locator("td").nth(1)).to_have_text("sms")
    expect(row.locator("td").nth(2)).to_have_text(TO)

    requests = tab.paths(origin)
    assert ("POST", f"{prefix}/sms") in requests and ("GET", f"{prefix}/messages") in requests
    # Every request the page made stayed under the stage (API Gateway has nothing outside it).
    assert all(p == path or p.startswith(f"{prefix}/") for _, p in requests), requests
    assert tab.errors == []
    assert [s["body"] for s in outbox(stack)].count(text) == 1


def test_the_console_sends_an_mms_under_the_stage(tab, stack, stage):
    text = f"picture {uuid.uuid4().hex[:8]}"
    tab.page.goto(f"{stage.url}/")
    tab.page.fill("#to", TO)
    tab.page.fill("#body", text)
    tab.page.set_input_files("#file", files=[{"name": "cat.png", "mimeType": "image/png", "buffer": PNG}])
    tab.page.click("#sendButton")
    expect(tab.page.locator("#result")).to_contain_text("Accepted: ")
    expect(row_of(tab.page, text).locator("td").nth(1)).to_have_text("mms")

    assert [r for r in tab.paths(stage.origin) if r[0] == "POST"] == [("POST", "/api/media"), ("POST", "/api/mms")]
    # The media itself goes straight to the (emulated) S3 with the presigned form, not through the API.
    assert any(method == "POST" and url.startswith(stack.aws_url) for method, url in tab.requests)
    assert tab.errors == []
    sent = [s for s in outbox(stack) if s["body"] == text]
    assert [(s["channel"], s["mediaUrl"].startswith("s3://")) for s in sent] == [("mms", True)]
