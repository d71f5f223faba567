"""The send console in a real browser, served where it is deployed: under API Gateway's stage path.

Debian's chromium, driven by Playwright for Python (Playwright's own browser download cannot work
here; ``make test`` installs chromium). The app runs on the local stack; ``tests/apigateway.py``
serves it under ``/api/`` on loopback as API Gateway does, with a 403 for any path outside the
stage, so a call that leaves out the stage fails here as it fails deployed.

Every test saves a screenshot of its last state in ``.build/screenshots/`` (ignored by git); the
layout test saves the desktop and phone pictures there too, and writes them over the documentation's
``docs/screenshots/console-desktop.png`` and ``console-phone.png`` when ``UPDATE_SCREENSHOTS=1``
(so a test run leaves the checkout as it found it).

The page asks ``GET keys/current`` what the key in its key field may do. With the field empty, under the local
stack, that is the keyless make-dev caller (every scope); the tests that need another key make it through the
API and enter it, as a person would paste it.
"""
import base64
import json
import os
import re
import uuid
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import expect, sync_playwright

from chalicelib.core import segments
from chalicelib.keys import scopes
from devstack import appload
from devstack.server import LocalStack

from .apigateway import StageServer
from .conftest import hygiene
from .localhttp import HANG_GUARD, Http, wait_for

CHROMIUM = "/usr/bin/chromium"
ROOT = Path(__file__).resolve().parents[1]
SHOTS = ROOT / ".build" / "screenshots"
DOC_SHOTS = ROOT / "docs" / "screenshots"
TO = "+14255550123"
SUCCESS = "+14254147755"  # AWS's success simulator: ends delivered
FAILURE = "+14254147167"  # AWS's failure simulator: ends failed
# A 1x1 PNG.
PNG = base64.b64decode("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==")
DESKTOP = {"width": 1280, "height": 900}
PHONE = {"width": 390, "height": 844}


@pytest.fixture(scope="module")
def browser():
    if not Path(CHROMIUM).is_file():
        reason = f"no browser at {CHROMIUM}: `make test` installs Debian's chromium (apt-get install chromium)"
        if os.environ.get("CI", "").lower() in ("true", "1"):
            pytest.fail(reason)
        pytest.skip(reason)
    # Playwright's waits (5 s for an expect, 30 s for an action by default) are hang guards here: each ends as
    # soon as its condition holds, and a busy machine may take far longer to get there.
    expect.set_options(timeout=HANG_GUARD * 1000)
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM)
        yield launched
        launched.close()
    expect.set_options(timeout=5_000)


@pytest.fixture(scope="module")
def stack():
    with LocalStack(app_port=0, aws_port=0, settings={"PROVIDER_MAX_ATTEMPTS": "2"}) as running:
        yield running


@pytest.fixture(scope="module")
def stage(stack):
    with StageServer(appload.load().app, key_check=stack.key_check) as server:
        yield server


class Tab:
    """A page with a record of every request it made and every error it logged."""

    def __init__(self, page):
        self.page, self.requests, self.errors, self.console = page, [], [], []
        page.set_default_timeout(HANG_GUARD * 1000)  # a hang guard (see ``browser``)
        page.on("console", lambda msg: self.console.append(msg.text))
        page.on("request", lambda r: self.requests.append(r))
        page.on("response", lambda r: r.status >= 400 and self.errors.append(f"{r.status} {r.request.method} {r.url}"))
        page.on("pageerror", lambda err: self.errors.append(str(err)))
        page.on("console", lambda msg: msg.type == "error" and self.errors.append(msg.text))

    def paths(self, origin):
        return [(r.method, urlsplit(r.url).path) for r in self.requests if r.url.startswith(origin)]

    def posts(self, origin):
        return [p for m, p in self.paths(origin) if m == "POST"]


@pytest.fixture
def tab(browser, request):
    context = browser.new_context(viewport=DESKTOP)
    page = context.new_page()
    yield Tab(page)
    SHOTS.mkdir(parents=True, exist_ok=True)
    name = "".join(c if c.isalnum() or c in "-_" else "_" for c in request.node.name)
    try:
        page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)
    finally:
        context.close()


def outbox(stack):
    return Http(stack.aws_url).call("GET", "/_outbox")[2]


def sent_bodies(stack, text):
    return [s for s in outbox(stack) if s["body"] == text]


def row_of(page, text):
    return page.locator("#messages tr", has_text=text)


def idle_poll(page):
    """How long the history waits before it asks again when every message it shows is final (console.js POLL)."""
    return page.evaluate("POLL.idle")


def listed(page, text, *, polls=10):
    """Wait for the history to list ``text`` by itself, on a page whose clock the test moves (``page.clock.install()``):
    a poll at a time, until it comes (the message may be stored a moment after the call that made it)."""
    for _ in range(polls):
        page.clock.run_for(idle_poll(page))
        try:
            expect(row_of(page, text)).to_have_count(1, timeout=2_000)
            return
        except AssertionError:
            continue
    expect(row_of(page, text)).to_have_count(1)


def masked(number):
    return number[:-7] + "•••" + number[-4:]


def make_key(stack, name, scope_list, *, test=False):
    """A key made through the API by the keyless make-dev caller; the log-hygiene check then fails the session
    if any log line ever holds it."""
    status, _, made = Http(stack.app_url).call("POST", "/keys", {"name": name, "scopes": scope_list, "test": test})
    assert status == 201, made
    hygiene.keys.add(made["key"])
    return made


def bearer(key):
    return {"Authorization": f"Bearer {key}"}


def send(page, to, body):
    page.fill("#to", to)
    page.fill("#body", body)
    page.click("#sendButton")


@pytest.mark.parametrize("served, path", [("stage", "/api/"), ("stage", "/api"), ("local", "/")],
                         ids=["stage-slash", "stage-no-slash", "make-dev"])
def test_an_sms_to_the_success_simulator_reaches_delivered_where_it_is_served(tab, stack, stage, served, path):
    origin = stage.origin if served == "stage" else stack.app_url
    prefix = path.rstrip("/")
    text = f"console {uuid.uuid4().hex[:8]}"
    tab.page.goto(origin + path)
    expect(tab.page.locator("#channel")).to_have_text("Will go as SMS")
    send(tab.page, SUCCESS, text)
    result = tab.page.locator("#result")
    expect(result).to_have_attribute("data-status", "delivered")
    expect(result).to_contain_text("delivered")
    expect(result).to_contain_text("1 segment (GSM-7)")
    row = row_of(tab.page, text)
    expect(row).to_have_count(1)
    expect(row.locator("td").nth(1)).to_have_text(masked(SUCCESS))
    expect(row.locator("td").nth(2)).to_have_text("sms")
    expect(row.locator("td").nth(5)).to_have_text("delivered")

    requests = tab.paths(origin)
    assert ("POST", f"{prefix}/sms") in requests and ("GET", f"{prefix}/messages") in requests
    # Every request the page made stayed under the stage (API Gateway has nothing outside it).
    assert all(p == path or p.startswith(f"{prefix}/") for _, p in requests), requests
    assert tab.errors == []
    assert len(sent_bodies(stack, text)) == 1


def test_the_send_form_stays_put_while_the_key_check_and_the_dashboard_load(tab, stack, stage):
    """What the page fills in after it is drawn (the key's name and scopes, the views its scopes open, the
    dashboard's figures) takes room it kept from the start: the Send button does not move under a pointer about
    to click it. (It did: a click on Send while the key check was out once landed above the button.)"""
    page, held, holding = tab.page, [], [True]

    def hold(route):  # until the form has been drawn
        held.append(route) if holding[0] else route.continue_()

    for answer in ("**/keys/current*", "**/reports/daily*"):
        page.route(answer, hold)
    page.goto(f"{stage.url}/")
    button = page.locator("#sendButton")
    expect(button).to_be_visible()
    expect(page.locator("#keyInfo")).to_have_text("Checking the key…")
    before = button.bounding_box()
    holding[0] = False
    for route in held:
        route.continue_()
    expect(page.locator("#keyInfo")).to_contain_text("Key in use")
    expect(page.locator("#dashStatus")).to_contain_text("Figures of")
    expect(page.locator("#failures")).not_to_be_empty()
    assert button.bounding_box() == before


def test_an_sms_to_the_failure_simulator_shows_failed_with_its_reason(tab, stack, stage):
    text = f"doomed {uuid.uuid4().hex[:8]}"
    tab.page.goto(f"{stage.url}/")
    send(tab.page, FAILURE, text)
    result = tab.page.locator("#result")
    expect(result).to_have_attribute("data-status", "failed")
    expect(result).to_contain_text("failed — ")
    row = row_of(tab.page, text)
    expect(row.locator("td").nth(5)).to_have_text("failed")
    expect(row.locator("td").nth(6)).not_to_be_empty()
    # The detail view holds the whole record, the full number included.
    row.get_by_role("button", name="Details").click()
    dialog = tab.page.locator("#detail")
    expect(dialog).to_be_visible()
    expect(dialog).to_contain_text(FAILURE)
    expect(dialog).to_contain_text(text)
    tab.page.keyboard.press("Escape")
    expect(dialog).to_be_hidden()
    assert tab.errors == []


def test_an_open_details_dialog_follows_its_message_to_delivered(tab, stack, stage):
    """The dialog is not a snapshot: a user who opened it while the message was on its way sees it arrive. The
    history's answers show the message still sent until the test lets the real ones through."""
    page, text, held = tab.page, f"followed {uuid.uuid4().hex[:8]}", {"back": True}

    def still_sent(route):
        answer = route.fetch()
        listing = answer.json()
        if held["back"]:
            for m in listing["messages"]:
                if m["body"] == text:
                    m.update(status="sent", priceUsd=None, updatedAt=m["createdAt"])
        route.fulfill(response=answer, json=listing)

    page.route("**/api/messages?limit=20*", still_sent)
    page.goto(f"{stage.url}/")
    send(page, SUCCESS, text)
    expect(page.locator("#result")).to_have_attribute("data-status", "delivered")
    row = row_of(page, text)
    expect(row.locator("td").nth(5)).to_have_text("sent")
    row.get_by_role("button", name="Details").click()
    dialog = page.locator("#detail")
    expect(dialog).to_contain_text("Statussent")
    held["back"] = False
    expect(dialog).to_contain_text("Statusdelivered")
    expect(dialog).to_be_visible()
    expect(row.locator("td").nth(5)).to_have_text("delivered")
    assert tab.errors == []


def test_the_dashboard_counts_a_message_soon_after_it_is_final(tab, stack, stage):
    """The figures are asked again each minute, and a few seconds after a message the page follows has become final
    (the report's tally counts it a moment later): a user who just sent one sees it counted without waiting out the
    minute. The page's clock is the test's, paused: the minute cannot pass unless the test moves it."""
    page, api, text = tab.page, Http(stack.app_url), f"counted {uuid.uuid4().hex[:8]}"
    today = datetime.now(timezone.utc).date()  # the report's days are UTC days
    week = f"/reports/daily?from={today - timedelta(days=6)}&to={today}"

    def delivered():  # what the page's chart adds up: the week's delivered SMS and MMS
        totals = api.call("GET", week)[2]["totals"]
        return totals["sms"]["delivered"] + totals["mms"]["delivered"]

    page.clock.install()
    page.goto(f"{stage.url}/")
    expect(page.locator("#dashBody")).to_have_attribute("data-state", "ready")
    page.clock.pause_at(page.evaluate("Date.now()") / 1000 + 1)  # Python's Playwright takes seconds here
    before = delivered()
    send(page, SUCCESS, text)
    result = page.locator("#result")
    for _ in range(60):  # the page asks for the status after 1 s of its clock, then less and less often
        page.clock.run_for(1000)
        try:
            expect(result).to_have_attribute("data-status", "delivered", timeout=2_000)
            break
        except AssertionError:
            continue
    expect(result).to_have_attribute("data-status", "delivered")
    assert wait_for(lambda: delivered() > before)  # the tally has counted it
    counted = delivered()
    page.clock.run_for(page.evaluate("DASH_AFTER_FINAL"))  # seconds, not the minute
    expect(page.locator("#chartDesc")).to_contain_text(f"stacked: {counted} delivered, ")
    assert page.evaluate("DASH_AFTER_FINAL") < page.evaluate("DASH_EVERY")
    assert tab.errors == []


def test_an_mms_then_a_plain_message_that_goes_as_sms(tab, stack, stage):
    picture, plain = f"picture {uuid.uuid4().hex[:8]}", f"plain {uuid.uuid4().hex[:8]}"
    page = tab.page
    page.goto(f"{stage.url}/")
    page.fill("#to", TO)
    page.fill("#body", picture)
    page.set_input_files("#file", files=[{"name": "cat.png", "mimeType": "image/png", "buffer": PNG}])
    expect(page.locator("#channel")).to_have_text("Will go as MMS, with cat.png")
    expect(page.locator("#mediaInfo")).to_have_text(f"cat.png · image/png · {len(PNG)} bytes")
    expect(page.locator("#preview")).to_be_visible()
    expect(page.locator("#removeMedia")).to_be_visible()
    page.click("#sendButton")
    expect(page.locator("#result")).to_contain_text("MMS to ")
    # The media is gone once the MMS is accepted: the next message is a plain SMS.
    expect(page.locator("#media")).to_be_hidden()
    expect(page.locator("#channel")).to_have_text("Will go as SMS")
    assert page.eval_on_selector("#file", "f => f.files.length") == 0
    page.fill("#body", plain)
    page.click("#sendButton")
    expect(page.locator("#result")).to_contain_text("SMS to ")
    expect(row_of(page, plain).locator("td").nth(2)).to_have_text("sms")
    expect(row_of(page, picture).locator("td").nth(2)).to_have_text("mms")

    assert tab.posts(stage.origin) == ["/api/media", "/api/mms", "/api/sms"]
    # The media itself goes straight to the (emulated) S3 with the presigned form, not through the API.
    assert any(r.method == "POST" and r.url.startswith(stack.aws_url) for r in tab.requests)
    assert tab.errors == []
    assert [(s["channel"], bool(s.get("mediaUrl"))) for s in sent_bodies(stack, picture)] == [("mms", True)]
    assert [(s["channel"], bool(s.get("mediaUrl"))) for s in sent_bodies(stack, plain)] == [("sms", False)]


def test_media_the_mms_cannot_carry_is_refused_before_upload_and_can_be_removed(tab, stage):
    page = tab.page
    page.goto(f"{stage.url}/")
    page.set_input_files("#file", files=[{"name": "notes.txt", "mimeType": "text/plain", "buffer": b"hello"}])
    expect(page.locator("#file-error")).to_contain_text("MMS cannot carry text/plain")
    page.set_input_files("#file", files=[{"name": "big.png", "mimeType": "image/png", "buffer": b"\0" * (2 * 1024 * 1024 + 1)}])
    expect(page.locator("#file-error")).to_contain_text("MMS allows 2.0 MB")
    page.fill("#to", TO)
    page.click("#sendButton")
    expect(page.locator("#file")).to_have_attribute("aria-invalid", "true")
    page.click("#removeMedia")
    expect(page.locator("#media")).to_be_hidden()
    expect(page.locator("#file-error")).to_be_hidden()
    expect(page.locator("#channel")).to_have_text("Will go as SMS")
    assert tab.posts(stage.origin) == []
    assert tab.errors == []


def test_a_double_click_sends_once_with_an_idempotency_key(tab, stack, stage):
    first, second = f"once {uuid.uuid4().hex[:8]}", f"twice-clicked {uuid.uuid4().hex[:8]}"
    page = tab.page
    page.goto(f"{stage.url}/")
    page.fill("#to", TO)
    page.fill("#body", first)
    page.dblclick("#sendButton")
    expect(row_of(page, first)).to_have_count(1)
    # Two clicks in the same task, before any answer could arrive.
    page.fill("#body", second)
    page.evaluate("() => { const b = document.getElementById('sendButton'); b.click(); b.click(); }")
    expect(row_of(page, second)).to_have_count(1)
    sends = [r for r in tab.requests if r.method == "POST" and r.url.endswith("/sms")]
    assert len(sends) == 2
    keys = [r.headers.get("idempotency-key", "") for r in sends]
    assert all(len(k) >= 16 for k in keys) and keys[0] != keys[1]
    assert len(sent_bodies(stack, first)) == 1 and len(sent_bodies(stack, second)) == 1
    assert tab.errors == []


def test_a_retry_after_a_lost_answer_does_not_send_twice(tab, stack, stage):
    text = f"retry {uuid.uuid4().hex[:8]}"
    page = tab.page
    page.goto(f"{stage.url}/")
    lost = []

    def lose_the_answer(route):
        route.fetch()  # the API gets the request and sends the SMS...
        lost.append(route.request.headers.get("idempotency-key"))
        route.abort()  # ...but the answer never reaches the page

    page.route("**/api/sms", lose_the_answer)
    send(page, TO, text)
    expect(page.locator("#result")).to_contain_text("Sending again is safe")
    page.unroute("**/api/sms")
    page.click("#sendButton")
    expect(page.locator("#result")).to_contain_text("SMS to ")
    sends = [r for r in tab.requests if r.method == "POST" and r.url.endswith("/sms")]
    assert len(sends) == 2 and sends[1].headers.get("idempotency-key") == lost[0]
    assert len(sent_bodies(stack, text)) == 1
    assert [e for e in tab.errors if "ERR_FAILED" not in e] == []


@pytest.mark.parametrize("body", [
    "hello", "x" * 160, "x" * 161, "€" * 80, "€" * 81, "{[]}" * 10 + "a" * 120,
    "Привет", "ж" * 70, "ж" * 71, "😀" * 35, "😀" * 36 + "a",
], ids=lambda b: f"{len(b)}:{b[:3]}")
def test_the_counter_follows_the_api_rules(tab, stage, body):
    tab.page.goto(f"{stage.url}/")
    tab.page.fill("#body", body)
    expected = segments.segment(body)
    plural = "" if expected.segments == 1 else "s"
    expect(tab.page.locator("#counter")).to_contain_text(
        f"{len(body)} / 1600 characters · {expected.segments} segment{plural} · {expected.encoding}")
    assert tab.errors == []


def test_the_counter_warns_at_the_limit_and_nothing_is_cut(tab, stage):
    page = tab.page
    page.goto(f"{stage.url}/")
    page.fill("#to", TO)
    page.fill("#body", "a" * 1601)
    expect(page.locator("#counter")).to_contain_text("1 over the limit")
    assert len(page.input_value("#body")) == 1601  # no silent truncation
    page.click("#sendButton")
    expect(page.locator("#body-error")).to_contain_text("the limit is 1600")
    expect(page.locator("#body")).to_be_focused()
    assert tab.posts(stage.origin) == []
    assert tab.errors == []


def test_an_api_error_is_shown_next_to_its_field_for_a_person(tab, stage):
    page = tab.page
    page.goto(f"{stage.url}/")
    send(page, "+1555", "hello")
    error = page.locator("#to-error")
    expect(error).to_be_visible()
    to = page.locator("#to")
    expect(to).to_have_attribute("aria-invalid", "true")
    assert "to-error" in to.get_attribute("aria-describedby").split()
    expect(to).to_be_focused()
    message = error.inner_text()
    assert ":" not in message.split(" ")[0] and "Invalid" not in message.split(" ")[0], message
    expect(page.locator("#result")).to_contain_text("Not sent")
    # Typing a correction clears the error.
    page.fill("#to", TO)
    expect(to).not_to_have_attribute("aria-invalid", "true")
    # The only errors are the 400 itself (the response, and the browser's note of it).
    assert [e for e in tab.errors if not e.startswith("400 POST") and "status of 400" not in e] == []


def test_a_csv_batch_shows_rejected_rows_then_runs_to_done(tab, stack, stage):
    tag = uuid.uuid4().hex[:8]
    page = tab.page
    page.goto(f"{stage.url}/")
    csv = f'to,body\n{SUCCESS},"batch {tag}, one"\n{FAILURE},batch {tag} two\n12345,bad row\n{TO},\n'
    page.set_input_files("#batchFile", files=[{"name": "batch.csv", "mimeType": "text/csv", "buffer": csv.encode()}])
    expect(page.locator("#batchCheck")).to_contain_text("2 messages will be sent; 2 rows will be left out")
    expect(page.locator("#batchRejected")).to_contain_text("Line 4: “12345” is not a number in E.164 form")
    expect(page.locator("#batchRejected")).to_contain_text("Line 5: no message")
    page.click("#batchSend")
    progress = page.locator("#batchProgress")
    expect(progress).to_have_attribute("data-state", "done")
    expect(progress).to_contain_text("Batch done: 2 of 2 final (delivered 1, failed 1)")
    assert tab.errors == []
    assert len(sent_bodies(stack, f"batch {tag}, one")) == 1
    # New rows start a new batch: the finished one's progress goes, and the check speaks of the new rows.
    page.fill("#batchInput", f"{SUCCESS},next {tag}")
    expect(page.locator("#batchCheck")).to_contain_text("1 message will be sent")
    expect(progress).to_be_empty()
    expect(progress).not_to_have_attribute("data-state", "done")


def test_keyboard_only(tab, stack, stage):
    text = f"keys {uuid.uuid4().hex[:8]}"
    page = tab.page
    page.goto(f"{stage.url}/")

    def tab_to(element_id):
        for _ in range(30):
            page.keyboard.press("Tab")
            if page.evaluate("document.activeElement && document.activeElement.id") == element_id:
                return
        raise AssertionError(f"Tab never reached #{element_id}")

    tab_to("to")
    page.keyboard.type(SUCCESS)
    tab_to("body")
    page.keyboard.type(text)
    tab_to("sendButton")
    page.keyboard.press("Enter")
    expect(page.locator("#result")).to_have_attribute("data-status", "delivered")
    # Disabled while the send ran, the button gets the focus back: the keyboard is not thrown to the top.
    expect(page.locator("#sendButton")).to_be_focused()
    expect(row_of(page, text)).to_have_count(1)
    row_of(page, text).get_by_role("button", name="Details").focus()
    page.keyboard.press("Enter")
    expect(page.locator("#detail")).to_be_visible()
    page.keyboard.press("Escape")
    expect(page.locator("#detail")).to_be_hidden()
    assert tab.errors == []


def test_history_pages_and_never_overflows_with_a_1600_character_body(browser, stack, stage):
    api = Http(stack.app_url)
    long_url = "https://example.com/" + "a" * 400
    body = (long_url + " " + "word " * 400)[:1600]
    for i in range(21):
        status, _, _ = api.call("POST", "/sms", {"to": TO, "body": body if i == 20 else f"filler {i}"})
        assert status == 202
    SHOTS.mkdir(parents=True, exist_ok=True)
    shots = DOC_SHOTS if os.environ.get("UPDATE_SCREENSHOTS") == "1" else SHOTS
    shots.mkdir(parents=True, exist_ok=True)
    for name, viewport in (("desktop", DESKTOP), ("phone", PHONE)):
        context = browser.new_context(viewport=viewport)
        tab = Tab(context.new_page())
        page = tab.page
        page.goto(f"{stage.url}/")
        expect(row_of(page, long_url[:60]).first).to_be_visible()
        page.fill("#to", TO)
        page.fill("#body", "Your order has shipped")
        page.evaluate("window.scrollTo(0, 0)")
        widths = page.evaluate("[document.documentElement.scrollWidth, document.documentElement.clientWidth]")
        assert widths[0] <= widths[1], (name, widths)
        assert page.evaluate("document.body.scrollWidth <= innerWidth"), name
        page.screenshot(path=str(shots / f"console-{name}.png"), full_page=False)
        # Paging with the API's `next`: older messages come after the first 20.
        expect(page.locator("#more")).to_be_visible()
        before = page.locator("#messages tr").count()
        assert before == 20
        page.click("#more")
        expect(page.locator("#messages tr")).not_to_have_count(before)
        widths = page.evaluate("[document.documentElement.scrollWidth, document.documentElement.clientWidth]")
        assert widths[0] <= widths[1], (name, widths)
        page.screenshot(path=str(SHOTS / f"history-{name}.png"), full_page=True)
        assert tab.errors == []
        context.close()


def test_the_key_stays_in_session_storage_and_a_lost_service_is_announced(tab, stack, stage):
    made = make_key(stack, f"session {uuid.uuid4().hex[:8]}", [scopes.READ])
    key, page = made["key"], tab.page
    page.clock.install()  # the history's own polls come when the test moves the clock
    page.goto(f"{stage.url}/")
    expect(page.locator("#updated")).to_contain_text("Updated")
    page.fill("#apiKey", key)
    expect(page.locator("#keyInfo")).to_contain_text(made["name"])
    assert page.evaluate("sessionStorage.getItem('sms-console-api-key')") == key
    assert page.evaluate("localStorage.length") == 0
    assert key not in page.request.get(f"{stage.url}/").text() and key not in page.url
    page.reload()
    expect(page.locator("#apiKey")).to_have_value(key)
    expect(page.locator("#keyInfo")).to_contain_text(made["name"])
    # The page sends the key with its calls, as a bearer token.
    with page.expect_request("**/api/messages?*") as sent:
        page.evaluate("refresh()")
    assert sent.value.headers.get("authorization") == f"Bearer {key}"
    assert "x-api-key" not in sent.value.headers
    # The service goes away: the page says so, and that the list is stale.
    page.route("**/api/messages?*", lambda route: route.abort())
    page.clock.run_for(idle_poll(page))  # the next time the history asks by itself
    expect(page.locator("#notice")).to_contain_text("cannot be reached")
    expect(page.locator("#notice")).to_contain_text("stale")
    page.unroute("**/api/messages?*")
    page.clock.run_for(idle_poll(page))
    expect(page.locator("#notice")).to_be_hidden()
    # The only errors are the aborted requests themselves.
    assert [e for e in tab.errors if "ERR_FAILED" not in e] == []
    assert not any(key in line for line in tab.console)


def test_the_favicon_is_answered_under_the_stage(stage):
    status, _, _ = Http(stage.origin).call("GET", "/api/favicon.ico")
    assert status == 204


def test_replies_show_in_the_history_and_a_number_reads_as_a_thread(tab, stack, stage):
    """Replies played as End User Messaging receives them (``POST :4566/_inbound``): the history shows each
    one as from its sender, and the sender's number opens the conversation, oldest first."""
    api, aws, page = Http(stack.app_url), Http(stack.aws_url), tab.page
    number, tag = "+1425555" + f"{uuid.uuid4().int % 10_000:04d}", uuid.uuid4().hex[:8]
    first, second, elsewhere = f"Table for two? {tag}", f"Booked for 7pm {tag}", f"Someone else {tag}"
    answers = [f"Yes please {tag}", f"Thanks, see you {tag}", f"Running late {tag}"]

    def texted(body):
        assert api.call("POST", "/sms", {"to": number, "body": body})[0] == 202

    def replied(body):
        status, _, _ = aws.call("POST", "/_inbound", {"originationNumber": number, "messageBody": body})
        assert status == 202
        listed(page, body)  # stored, and listed by the history's own poll

    page.clock.install()
    page.goto(f"{stage.url}/")
    texted(first)
    replied(answers[0])
    texted(second)
    replied(answers[1])
    assert api.call("POST", "/sms", {"to": TO, "body": elsewhere})[0] == 202

    row = row_of(page, answers[0])
    expect(row).to_have_attribute("data-direction", "inbound")
    expect(row.locator("td").nth(1)).to_have_text("from " + masked(number))
    expect(row.locator("td").nth(5)).to_have_text("received")
    expect(row_of(page, first).locator("td").nth(1)).to_have_text(masked(number))
    row.get_by_role("button", name="Details").click()
    detail = page.locator("#detail")
    expect(detail).to_contain_text(number)
    expect(detail).to_contain_text("In reply to")
    page.keyboard.press("Escape")

    row.get_by_role("button", name="Conversation with").click()
    thread = page.locator("#thread")
    expect(thread).to_be_visible()
    expect(page.locator("#threadTitle")).to_have_text("Conversation with " + masked(number))
    items = page.locator("#threadList li")
    expect(items).to_have_count(4)
    expect(page.locator("#threadNote")).not_to_contain_text("Reading the history")
    expect(page.locator("#closeThread")).to_be_focused()  # in the dialog, after its first read too
    for i, (text, direction) in enumerate(((first, "outbound"), (answers[0], "inbound"), (second, "outbound"),
                                           (answers[1], "inbound"))):
        expect(items.nth(i)).to_contain_text(text)
        expect(items.nth(i)).to_have_attribute("data-direction", direction)
    expect(items.nth(3)).to_contain_text("answers your message of")
    expect(thread).not_to_contain_text(elsewhere)
    # A reply that comes in while the conversation is open joins it, at the end.
    replied(answers[2])
    expect(items).to_have_count(5)
    expect(items.nth(4)).to_contain_text(answers[2])
    shots = DOC_SHOTS if os.environ.get("UPDATE_SCREENSHOTS") == "1" else SHOTS
    shots.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(shots / "console-thread.png"))
    page.click("#threadWrite")
    expect(thread).to_be_hidden()
    expect(page.locator("#to")).to_have_value(number)
    expect(page.locator("#body")).to_be_focused()
    assert tab.errors == []
    assert [s for s in outbox(stack) if any(a in (s["body"] or "") for a in answers)] == []  # nobody answers a reply


# -- keys: what the key in use may do, and the Keys panel ------------------------------------------------------
def cells_of(row):
    return row.locator("td")


def selected_text(page, field):
    return page.eval_on_selector(field, "f => f.value.substring(f.selectionStart, f.selectionEnd)")


def not_in_storage(page, key):
    stored = page.evaluate("JSON.stringify([Object.entries(sessionStorage), Object.entries(localStorage)])")
    return key not in stored and key not in page.url


def test_the_keys_panel_makes_a_key_shown_once_lists_it_and_revokes_it_after_asking(tab, stack, stage):
    """The keyless make-dev caller (every scope): make a key with two scopes, copy it from the one place it is
    shown, find it listed with its last use, and revoke it through the confirmation dialog."""
    page, api = tab.page, Http(stage.url)
    page.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=stage.origin)
    name = f"ci deploy {uuid.uuid4().hex[:8]}"
    page.goto(f"{stage.url}/")
    expect(page.locator("#keyInfo")).to_contain_text("make dev (no key sent)")
    expect(page.locator("#keysView")).to_be_hidden()

    def no_keys(route):  # a stage without keys yet (other tests of this stack may have made some)
        if route.request.method == "GET":
            route.fulfill(json={"keys": []})
        else:
            route.continue_()

    page.route("**/api/keys", no_keys)
    page.click("#showKeys")
    expect(page.locator("#keysView")).to_be_visible()
    expect(page.locator("#keysEmpty")).to_have_text("No keys yet: make one above.")  # not a bare, empty table
    page.unroute("**/api/keys", no_keys)
    expect(page.locator("#messagesView")).to_be_hidden()
    expect(page.locator("#showKeys")).to_have_attribute("aria-pressed", "true")
    # One box per scope of the API's table, each with its label; the make-dev caller has them all.
    boxes = page.locator("#scopeList input[type=checkbox]")
    expect(boxes).to_have_count(len(scopes.SCOPES))
    assert boxes.evaluate_all("bs => bs.map(b => [b.value, b.disabled])") == [[s, False] for s in scopes.SCOPES]
    expect(page.locator("#keyTest")).to_be_enabled()

    page.click("#createKey")  # nothing filled in: said next to the field, and nothing is asked of the API
    expect(page.locator("#keyName-error")).to_be_visible()
    expect(page.locator("#keyName")).to_have_attribute("aria-invalid", "true")
    expect(page.locator("#keyName")).to_be_focused()
    page.fill("#keyName", name)
    expect(page.locator("#keyName")).not_to_have_attribute("aria-invalid", "true")
    page.get_by_label(scopes.SEND).check()
    page.get_by_label(scopes.READ).check()
    with page.expect_response(lambda r: r.request.method == "POST" and r.url.endswith("/api/keys")) as answer:
        page.click("#createKey")
    assert answer.value.status == 201
    made = answer.value.request
    assert len(made.headers.get("idempotency-key", "")) >= 16
    assert "authorization" not in made.headers  # an empty key field sends no key at all
    assert json.loads(made.post_data) == {"name": name, "scopes": [scopes.SEND, scopes.READ], "test": False}

    # Shown once: a read-only field, a warning, a Copy button.
    shown = page.locator("#newKey")
    expect(shown).to_be_visible()
    expect(page.locator("#copyKey")).to_be_focused()  # the next step, for the keyboard too
    expect(page.locator("#keysEmpty")).to_be_hidden()  # the list has the new key
    expect(shown).to_contain_text("Copy this key now: it will not be shown again.")
    field = page.locator("#newKeyValue")
    expect(field).to_have_value(re.compile(r"^sk_live_"))
    expect(field).to_have_attribute("readonly", "")
    secret = field.input_value()
    hygiene.keys.add(secret)
    page.click("#copyKey")
    expect(page.locator("#copyStatus")).to_have_text("Copied to the clipboard.")
    assert page.evaluate("navigator.clipboard.readText()") == secret
    shots = DOC_SHOTS if os.environ.get("UPDATE_SCREENSHOTS") == "1" else SHOTS
    shots.mkdir(parents=True, exist_ok=True)
    # The picture shows the field with a stand-in, never a real key (even a dead local one).
    field.evaluate("(input, shown) => { input.dataset.real = input.value; input.value = shown; }",
                   "sk_live_" + "x" * 16 + "_" + "…")
    page.screenshot(path=str(shots / "console-keys.png"))
    field.evaluate("input => { input.value = input.dataset.real; delete input.dataset.real; }")
    # The copied key is the key made: it works, with exactly the two scopes.
    status, _, current = api.call("GET", "/keys/current", headers=bearer(secret))
    assert status == 200 and (current["name"], current["scopes"], current["test"]) == (name, [scopes.SEND, scopes.READ], False)

    # Listed, newest first, never with its secret; "never" used until the call above, which the list shows on return.
    row = page.locator("#keyRows tr", has_text=name)
    expect(page.locator("#keyRows tr").first).to_contain_text(name)
    expect(cells_of(row).nth(1)).to_have_text(current["prefix"])
    assert secret.startswith(current["prefix"].rstrip("…")) and len(current["prefix"]) < len(secret) // 2
    expect(cells_of(row).nth(2)).to_have_text(f"{scopes.SEND}, {scopes.READ}")
    expect(cells_of(row).nth(3)).to_have_text("live")
    expect(cells_of(row).nth(6)).to_have_text("never")  # expires
    expect(cells_of(row).nth(7)).to_have_text("active")
    # Leaving the panel takes the key off the page; back on it, the list shows the key's last use.
    page.click("#showMessages")
    expect(page.locator("#messagesView")).to_be_visible()
    page.click("#showKeys")
    expect(shown).to_be_hidden()
    expect(field).to_have_value("")
    assert secret not in page.content()
    expect(cells_of(row).nth(5)).not_to_have_text("never")
    expect(cells_of(row).nth(5)).not_to_be_empty()

    # Revoke asks first, naming the key; Cancel changes nothing.
    row.get_by_role("button", name=f"Revoke the key {name}").click()
    dialog = page.locator("#revokeDialog")
    expect(dialog).to_be_visible()
    expect(dialog).to_contain_text(f"“{name}”")
    expect(dialog).to_contain_text(current["prefix"])
    page.click("#cancelRevoke")
    expect(dialog).to_be_hidden()
    expect(cells_of(row).nth(7)).to_have_text("active")
    row.get_by_role("button", name=f"Revoke the key {name}").click()
    expect(dialog).to_be_visible()
    with page.expect_response(lambda r: r.request.method == "DELETE") as revoked:
        page.click("#confirmRevoke")
    assert revoked.value.status == 204
    expect(dialog).to_be_hidden()
    expect(row).to_have_attribute("data-state", "revoked")
    expect(cells_of(row).nth(7)).to_contain_text("revoked")
    expect(row.get_by_role("button", name=f"Revoke the key {name}")).to_have_count(0)
    expect(page.locator("#keyStatus")).to_contain_text(f"Key “{name}” revoked")
    assert [p for m, p in tab.paths(stage.origin) if m == "DELETE"] == [f"/api/keys/{current['id']}"]
    # Revoked for real: once API Gateway's cached answer for it is gone, the key is refused.
    stack.key_check.forget()
    assert api.call("GET", "/keys/current", headers=bearer(secret))[0] == 401

    assert not any(secret in line for line in tab.console)
    assert not_in_storage(page, secret)
    assert tab.errors == []


def test_a_read_only_key_reads_the_history_and_is_offered_nothing_else(tab, stack, stage):
    tag = uuid.uuid4().hex[:8]
    text = f"read only {tag}"
    assert Http(stack.app_url).call("POST", "/sms", {"to": SUCCESS, "body": text})[0] == 202
    made = make_key(stack, f"dashboard {tag}", [scopes.READ])
    page = tab.page
    page.goto(f"{stage.url}/")
    expect(page.locator("#views")).to_be_visible()  # the keyless make-dev caller may manage keys
    page.fill("#apiKey", made["key"])
    info = page.locator("#keyInfo")
    expect(info).to_contain_text(f"Key in use: dashboard {tag} · {made['prefix']} · live · scopes: {scopes.READ}")
    expect(page.locator("#sendDenied")).to_have_text("This key cannot send: it lacks messages:send.")
    expect(page.locator("#send")).to_be_hidden()
    expect(page.locator("#batchDenied")).to_have_text("This key cannot send a batch: it lacks messages:send.")
    expect(page.locator("#batch")).to_be_hidden()
    expect(page.locator("#views")).to_be_hidden()
    expect(page.locator("#showKeys")).to_be_hidden()
    expect(page.locator("#keysView")).to_be_hidden()
    expect(page.locator("#testBadge")).to_be_hidden()
    expect(page.locator("#historyDenied")).to_be_hidden()
    row = row_of(page, text)
    expect(row).to_have_count(1)
    expect(row.locator("td").nth(5)).to_have_text("delivered")
    # The conversation opens, without "Write to this number".
    row.get_by_role("button", name="Conversation with").click()
    expect(page.locator("#thread")).to_be_visible()
    expect(page.locator("#threadList")).to_contain_text(text)
    expect(page.locator("#threadWrite")).to_be_hidden()
    page.keyboard.press("Escape")
    # The page goes on reading the history with the key.
    with page.expect_request(lambda r: "/api/messages?" in r.url) as polled:
        pass
    assert polled.value.headers.get("authorization") == f"Bearer {made['key']}"

    used = [p for _, p in tab.paths(stage.origin)]
    asked_more = [p for p in used if p.endswith(("/sms", "/mms", "/media")) or p.startswith("/api/batches")
                  or (p.startswith("/api/keys") and p != "/api/keys/current")]
    assert asked_more == [] and "/api/keys/current" in used
    assert not any("x-api-key" in r.headers for r in tab.requests)
    assert tab.errors == []


def test_a_test_key_says_nothing_is_sent_and_makes_only_test_keys(tab, stack, stage):
    tag = uuid.uuid4().hex[:8]
    made = make_key(stack, f"ci {tag}", [scopes.SEND, scopes.READ, scopes.KEYS], test=True)
    page = tab.page
    # No clipboard here (as on a page served over plain http from another host): Copy selects the key instead.
    page.add_init_script("Object.defineProperty(navigator, 'clipboard', {value: undefined})")
    page.goto(f"{stage.url}/")
    page.fill("#apiKey", made["key"])
    expect(page.locator("#testBadge")).to_be_visible()
    expect(page.locator("#testBadge")).to_have_text("test key: nothing is sent")
    expect(page.locator("#keyInfo")).to_contain_text(f"ci {tag} · {made['prefix']} · test")
    assert made["prefix"].startswith("sk_test_")

    # A send through the form settles as AWS's simulator would, and reaches no provider.
    text = f"test key {tag}"
    send(page, SUCCESS, text)
    expect(page.locator("#result")).to_have_attribute("data-status", "delivered")
    expect(row_of(page, text)).to_have_count(1)
    assert sent_bodies(stack, text) == []

    # The Keys panel: only its own scopes may be ticked, and "test key" is forced on.
    page.click("#showKeys")
    boxes = page.locator("#scopeList input[type=checkbox]")
    allowed = {scopes.SEND, scopes.READ, scopes.KEYS}
    assert boxes.evaluate_all("bs => bs.map(b => [b.value, b.disabled])") == \
        [[s, s not in allowed] for s in scopes.SCOPES]
    expect(page.get_by_label(scopes.WEBHOOKS)).to_be_disabled()
    expect(page.locator("#scopeList label", has_text=scopes.WEBHOOKS)).to_contain_text("the key in use lacks it")
    expect(page.locator("#keyTest")).to_be_checked()
    expect(page.locator("#keyTest")).to_be_disabled()
    expect(page.locator("#keyTest-note")).to_be_visible()
    page.fill("#keyName", f"ci child {tag}")
    page.get_by_label(scopes.READ).check()
    expires = date.today() + timedelta(days=365)
    page.fill("#keyExpires", expires.isoformat())
    with page.expect_request(lambda r: r.method == "POST" and r.url.endswith("/api/keys")) as asked:
        page.click("#createKey")
    assert asked.value.headers.get("authorization") == f"Bearer {made['key']}"
    # The key ends at the start of the chosen day, the browser's own time.
    asked_for = json.loads(asked.value.post_data)
    assert (asked_for["scopes"], asked_for["test"]) == ([scopes.READ], True)
    assert page.evaluate("s => { const d = new Date(s); return [d.getFullYear(), d.getMonth() + 1, d.getDate(), "
                         "d.getHours(), d.getMinutes()]; }", asked_for["expiresAt"]) == \
        [expires.year, expires.month, expires.day, 0, 0]
    field = page.locator("#newKeyValue")
    expect(field).to_have_value(re.compile(r"^sk_test_"))
    child = field.input_value()
    hygiene.keys.add(child)
    page.click("#copyKey")
    expect(page.locator("#copyStatus")).to_contain_text("The key is selected")
    expect(field).to_be_focused()
    assert selected_text(page, "#newKeyValue") == child
    row = page.locator("#keyRows tr", has_text=f"ci child {tag}")
    expect(cells_of(row).nth(3)).to_have_text("test")
    expect(cells_of(row).nth(6)).to_contain_text(str(expires.year))
    # The key in use is marked in the list.
    expect(page.locator("#keyRows tr", has_text=f"ci {tag}").filter(has_text="(in use here)")).to_have_count(1)
    # Entering another key takes the new one off the page.
    page.fill("#apiKey", "")
    expect(page.locator("#newKey")).to_be_hidden()
    expect(page.locator("#testBadge")).to_be_hidden()
    assert not any(child in line or made["key"] in line for line in tab.console)
    assert tab.errors == []


@pytest.fixture
def keys_required(stack):
    """The stage refuses requests without a key (``make dev REQUIRE_KEYS=1``, and every deployed stage), for one
    test; the returned key has every scope."""
    made = make_key(stack, f"console admin {uuid.uuid4().hex[:8]}", list(scopes.SCOPES))
    stack.key_check.require_keys = True
    try:
        yield made
    finally:
        stack.key_check.require_keys = False


def test_where_keys_are_required_the_page_asks_for_one_and_says_when_it_is_refused(tab, stage, keys_required):
    page = tab.page
    page.clock.install()  # the page's timers (its 3-second poll, the key field's pause) run when the test says
    page.goto(f"{stage.url}/")
    error, key = page.locator("#apiKey-error"), page.locator("#apiKey")
    expect(error).to_have_text("This stage needs an API key: enter one.")
    expect(key).to_have_attribute("aria-invalid", "true")
    assert "apiKey-error" in key.get_attribute("aria-describedby").split()
    # No key yet: each panel says a key is needed, not that one was refused.
    needed = "This stage needs an API key to {}: enter one above."
    expect(page.locator("#sendDenied")).to_have_text(needed.format("send"))
    expect(page.locator("#historyDenied")).to_have_text(needed.format("read messages"))
    expect(page.locator("#views")).to_be_hidden()
    page.clock.run_for(10_000)  # three polls' time: a refused key is not tried again and again
    # A key that is no key of the stage: refused, in the key field.
    page.fill("#apiKey", "sk_live_" + "a" * 16 + "_" + "b" * 49)
    page.clock.run_for(1_000)
    expect(error).to_have_text("This key was refused: it is not a key of this stage, or it was revoked or has expired.")
    refused = "The key was refused, so this page cannot {}. Enter a valid key for this stage."
    expect(page.locator("#sendDenied")).to_have_text(refused.format("send"))
    expect(page.locator("#historyDenied")).to_have_text(refused.format("read messages"))
    page.clock.run_for(10_000)
    # The stage's key: the page opens up.
    page.fill("#apiKey", keys_required["key"])
    page.clock.run_for(1_000)
    expect(page.locator("#keyInfo")).to_contain_text(keys_required["name"])
    expect(error).to_be_hidden()
    expect(key).not_to_have_attribute("aria-invalid", "true")
    expect(page.locator("#send")).to_be_visible()
    expect(page.locator("#sendDenied")).to_be_hidden()
    expect(page.locator("#views")).to_be_visible()
    expect(page.locator("#updated")).to_contain_text("Updated")
    # Until a key was accepted the page asked only what a key may do: nothing it knew would be refused.
    refused_calls = [r for r in tab.requests if "/api/" in r.url and not r.url.endswith("/api/")
                     and r.headers.get("authorization") != f"Bearer {keys_required['key']}"]
    assert {urlsplit(r.url).path for r in refused_calls} == {"/api/keys/current"}
    assert [e for e in tab.errors if "401" not in e] == []
