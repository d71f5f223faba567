"""Scheduled sends in the console (issue 21 §4), in a real browser against the local stack and its real schedule
backend: ``sendAt`` from the form's local date and time (ISO 8601 with the browser's offset), ``scheduled`` and
``canceled`` in the history, Cancel on a scheduled message and on a scheduled batch (``POST /messages/{id}/cancel``,
``POST /batches/{id}/cancel``), the ``?status=scheduled`` filter, and a message due in a few seconds that leaves at
its time while the history follows it by itself.

The page's fixtures are ``tests/test_console.py``'s (Debian's chromium; the app served under API Gateway's stage
path); this module's stack is its own. The browser runs in a named time zone, so "your time" in the form is a
known offset from UTC, and the instant the API stores is checked against the one the test meant.
"""
import re
import uuid
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from playwright.sync_api import expect

from .localhttp import Http
from .test_console import (DESKTOP, PHONE, SUCCESS, TO, Tab, browser, masked, outbox, row_of, stack, stage,  # noqa: F401
                           tab)
from .test_console_campaigns import posted, refused_errors

ZONE = "America/Los_Angeles"  # the browser's time zone: 8 hours behind UTC in December, 7 in summer


def local_input(moment: datetime, *, seconds: bool = False) -> str:
    """``moment`` as a person types it into the form's "Send at" (a datetime-local input) in ``ZONE``."""
    return moment.astimezone(ZoneInfo(ZONE)).strftime("%Y-%m-%dT%H:%M" + (":%S" if seconds else ""))


def instant(iso: str) -> datetime:
    return datetime.fromisoformat(iso.replace("Z", "+00:00"))


def ahead(**delta) -> datetime:
    """A moment ``delta`` from now, to the second (the form's precision)."""
    return (datetime.now(timezone.utc) + timedelta(**delta)).replace(microsecond=0)


@pytest.fixture
def zoned(browser, request):  # noqa: F811
    """A tab in ``ZONE`` at the viewport the test asks for (``viewport`` parameter; the desktop otherwise)."""
    viewport = getattr(request, "param", DESKTOP)
    context = browser.new_context(viewport=viewport, timezone_id=ZONE)
    yield Tab(context.new_page())
    context.close()


def open_options(page, form="#send"):
    page.locator(f"{form} details.options summary").click()


def in_browser_zone(page, when: datetime, *, seconds: bool = False) -> str:
    """``when`` as a "Send at" field takes it: the browser's own zone, to the minute (or the second)."""
    return page.evaluate("""([iso, seconds]) => { const d = new Date(iso), two = n => String(n).padStart(2, '0');
      return d.getFullYear() + '-' + two(d.getMonth() + 1) + '-' + two(d.getDate()) + 'T' + two(d.getHours()) + ':' +
             two(d.getMinutes()) + (seconds ? ':' + two(d.getSeconds()) : ''); }""", [when.isoformat(), seconds])


def schedule_batch(page, rows: str, checked: str, when: datetime):
    """Send the batch ``rows`` (CSV) from the page for ``when``, once its check says ``checked``; its progress."""
    page.fill("#batchInput", rows)
    expect(page.locator("#batchCheck")).to_contain_text(checked)
    open_options(page, "#batch")
    page.locator("#batch").get_by_label("Send at").fill(in_browser_zone(page, when))
    page.click("#batchSend")
    return page.locator("#batchProgress")


def status_cell(row):
    return row.locator("td").nth(5)


@pytest.mark.parametrize("zoned", [DESKTOP, PHONE], ids=["desktop", "phone"], indirect=True)
def test_a_message_scheduled_in_local_time_waits_in_the_history_until_canceled(zoned, stack, stage):
    tab, page, api = zoned, zoned.page, Http(stack.app_url)
    text = f"reminder {uuid.uuid4().hex[:8]}"
    page.goto(f"{stage.url}/")
    page.fill("#to", SUCCESS)
    page.fill("#body", text)
    open_options(page)
    # A time already gone: the API's InvalidSendAt, on the field.
    gone = ahead(hours=-1).replace(second=0)  # the form's precision: the minute
    page.locator("#send").get_by_label("Send at").fill(local_input(gone))
    page.click("#sendButton")
    # In the form's terms: its label, and times in the browser's zone, not the API's member name and UTC.
    expect(page.locator("#sendAt-error")).to_contain_text("“Send at” must lie in the future: ")
    said = page.locator("#sendAt-error").inner_text()
    assert "sendAt" not in said and not re.search(r"\d{4}-\d\d-\d\dT", said), said
    assert page.evaluate("(iso) => new Date(iso).toLocaleString()", gone.isoformat()) in said, said
    expect(page.locator("#sendAt")).to_have_attribute("aria-invalid", "true")
    expect(page.locator("#sendAt")).to_be_focused()
    assert [m for m in outbox(stack) if m["body"] == text] == []
    # Tomorrow at this time, in the browser's zone: sent with the zone's offset, stored as that instant.
    when = ahead(days=1).replace(second=0)
    page.locator("#send").get_by_label("Send at").fill(local_input(when))
    expect(page.locator("#sendAt-error")).to_be_hidden()
    expect(page.locator("#result")).to_have_text("")
    page.click("#sendButton")
    result = page.locator("#result")
    expect(result).to_have_attribute("data-status", "scheduled")
    expect(result).to_contain_text(f"Scheduled. SMS to {SUCCESS}: scheduled for ")
    expect(result).to_contain_text("it can be canceled in the list below until then")
    request = posted(tab, "sms")[-1]
    offset = when.astimezone(ZoneInfo(ZONE)).strftime("%z")
    assert request["sendAt"] == local_input(when, seconds=True) + offset[:3] + ":" + offset[3:]
    message = api.call("GET", f"/messages/{result.get_attribute('data-id')}")[2]
    assert message["status"] == "scheduled" and instant(message["sendAt"]) == when
    assert page.locator("#sendAt").input_value() == ""  # the form is ready for the next message

    # The history lists it as scheduled, its time as the reason, with a labelled Cancel reachable by keyboard.
    row = row_of(page, text)
    expect(status_cell(row)).to_have_text("scheduled")
    expect(row.locator("td.reason")).to_contain_text("sends at ")
    cancel = row.get_by_role("button", name=f"Cancel the message to {masked(SUCCESS)} scheduled for ")
    expect(cancel).to_be_visible()
    # Only what waits, soonest first, through the API's own filter.
    page.locator("#statusFilter").select_option("scheduled")
    expect(page.locator("#messages tr")).to_have_count(1)
    expect(row).to_have_count(1)
    assert any(r.url.endswith("/api/messages?limit=20&status=scheduled") for r in tab.requests)
    # Canceled: final, gone from what waits, and the API agrees.
    cancel.focus()
    page.keyboard.press("Enter")
    expect(page.locator("#outcome")).to_contain_text(f"Canceled the message to {masked(SUCCESS)} that was to go at ")
    assert [p for p in tab.posts(stage.origin) if p.endswith("/cancel")] == [f"/api/messages/{message['id']}/cancel"]
    assert api.call("GET", f"/messages/{message['id']}")[2]["status"] == "canceled"
    expect(page.locator("#messages tr")).to_have_count(0)
    expect(page.locator("#historyEmpty")).to_have_text("Nothing is scheduled.")
    page.locator("#statusFilter").select_option("")
    expect(status_cell(row)).to_have_text("canceled")
    expect(row.get_by_role("button", name="Cancel")).to_have_count(0)
    assert refused_errors(tab, "400 POST") == []
    # A new send is the news: the cancel's outcome does not stay above the history beside it.
    page.locator("#send").get_by_label("Send at").fill("")
    page.fill("#to", SUCCESS)
    page.fill("#body", f"{text} and now")
    page.click("#sendButton")
    expect(page.locator("#result")).to_contain_text("SMS to")
    expect(page.locator("#outcome")).to_be_empty()


def test_a_refresh_of_the_history_leaves_the_focus_where_it_was(tab, stack, stage):
    """The history is drawn anew on every refresh: a keyboard user on a row's Cancel stays on that Cancel (it was
    lost to the page's body, and the Enter that followed canceled nothing)."""
    api, page = Http(stack.app_url), tab.page
    text = f"kept focus {uuid.uuid4().hex[:8]}"
    at = ahead(days=2).isoformat().replace("+00:00", "Z")
    assert api.call("POST", "/sms", {"to": TO, "body": text, "sendAt": at})[0] == 202
    page.goto(f"{stage.url}/")
    cancel = row_of(page, text).get_by_role("button", name="Cancel")
    cancel.focus()
    drawn = cancel.element_handle()
    page.evaluate("refresh()")
    page.wait_for_function("(old) => !old.isConnected", arg=drawn)  # the row was drawn anew
    expect(cancel).to_be_focused()


def test_a_cancel_that_comes_too_late_says_why(tab, stack, stage):
    """The page offered Cancel while the message was scheduled; by the click it no longer is (here another client
    canceled it): the API's 409 NotCancelable is shown, and the history then shows what became of it. The refusal
    stays on its own status line while the history refreshes."""
    api, page = Http(stack.app_url), tab.page
    text = f"too late {uuid.uuid4().hex[:8]}"
    at = ahead(days=2).isoformat().replace("+00:00", "Z")
    status, _, message = api.call("POST", "/sms", {"to": TO, "body": text, "sendAt": at})
    assert status == 202 and message["status"] == "scheduled", message
    page.goto(f"{stage.url}/")
    row = row_of(page, text)
    cancel = row.get_by_role("button", name="Cancel")
    expect(cancel).to_be_visible()
    assert api.call("POST", f"/messages/{message['id']}/cancel")[0] == 200
    cancel.click()
    refusal = "Not canceled: Only a scheduled message can be canceled; this message is canceled."
    expect(page.locator("#outcome")).to_have_text(refusal)
    expect(status_cell(row)).to_have_text("canceled")
    # A refresh that answers afterwards (a poll, or the Refresh button) does not take the refusal away unread.
    with page.expect_response(lambda r: "/api/messages?limit=20" in r.url):
        page.click("#refreshNow")
    expect(page.locator("#updated")).to_contain_text("Updated")
    expect(page.locator("#outcome")).to_have_text(refusal)
    assert refused_errors(tab, "409 POST") == []


def test_a_batch_cancel_that_comes_too_late_says_why(tab, stack, stage):
    """The page offered the batch's Cancel while its messages waited; by the click another client has canceled
    them: the API's 409 NotCancelable is shown, and stays while the batch's progress is drawn anew."""
    page, api = tab.page, Http(stack.app_url)
    tag = uuid.uuid4().hex[:8]
    page.goto(f"{stage.url}/")
    progress = schedule_batch(page, f"to,body\n{SUCCESS},late {tag}\n", "1 message will be sent", ahead(days=3))
    expect(progress).to_have_attribute("data-state", "scheduled")
    batch_id = progress.get_attribute("data-batch")
    assert api.call("POST", f"/batches/{batch_id}/cancel")[0] == 200
    page.get_by_role("button", name="Cancel the scheduled batch").click()
    refusal = "Not canceled: No message of this batch is still scheduled: there is nothing to cancel."
    expect(page.locator("#batchOutcome")).to_have_text(refusal)
    # The page goes on following the batch: its progress, drawn anew, shows it canceled; the reason stays.
    expect(progress).to_contain_text("Batch done: 1 of 1 final (canceled 1).")
    expect(page.locator("#batchOutcome")).to_have_text(refusal)
    assert refused_errors(tab, "409 POST") == []


def test_a_message_due_in_seconds_leaves_at_its_time_and_the_history_follows_it(tab, stack, stage):
    """Queued by the API with SQS's DelaySeconds (it is due within ``SCHEDULE_DIRECT_SECONDS``), taken by the batch
    worker at its time. The page is not reloaded: the history asks again by itself when the message is due."""
    page, text = tab.page, f"soon {uuid.uuid4().hex[:8]}"
    page.goto(f"{stage.url}/")
    page.fill("#to", SUCCESS)
    page.fill("#body", text)
    open_options(page)
    # The browser's own zone here; a few seconds ahead, to the second. Should the machine be so slow that the time
    # has passed before the click, the API refuses it (InvalidSendAt) and the test asks again with more lead.
    for lead in (10, 30, 90):
        when = ahead(seconds=lead)
        local = in_browser_zone(page, when, seconds=True)
        page.locator("#send").get_by_label("Send at").fill(local)
        page.click("#sendButton")
        expect(page.locator("#result[data-status='scheduled'], #sendAt-error:visible")).to_have_count(1)
        if page.locator("#result").get_attribute("data-status") == "scheduled":
            break
    expect(page.locator("#result")).to_have_attribute("data-status", "scheduled")
    row = row_of(page, text)
    expect(status_cell(row)).to_have_text("delivered")  # the history's own polls, no reload
    expect(row.get_by_role("button", name="Cancel")).to_have_count(0)
    sent = [m for m in outbox(stack) if m["body"] == text]
    assert len(sent) == 1 and instant(sent[0]["at"]) >= when  # never before its time
    assert refused_errors(tab, "400 POST") == []


def test_a_scheduled_batch_waits_and_is_canceled_whole(tab, stack, stage):
    page, api = tab.page, Http(stack.app_url)
    tag = uuid.uuid4().hex[:8]
    page.goto(f"{stage.url}/")
    when = ahead(days=3).replace(second=0)
    progress = schedule_batch(page, f"to,body\n{SUCCESS},first {tag}\n{TO},second {tag}\n",
                              "2 messages will be sent", when)
    expect(progress).to_contain_text("Batch scheduled for ")
    expect(progress).to_contain_text(": 2 to go")
    expect(progress).to_have_attribute("data-state", "scheduled")
    expect(progress).to_contain_text("Batch waiting for its time: 0 of 2 final (scheduled 2).")
    sent = posted(tab, "batches")[-1]
    assert instant(sent["sendAt"]) == when and [m["to"] for m in sent["messages"]] == [SUCCESS, TO]
    batch_id = progress.get_attribute("data-batch")
    # Both wait in the history, each with its own Cancel.
    for body in (f"first {tag}", f"second {tag}"):
        expect(status_cell(row_of(page, body))).to_have_text("scheduled")
    page.get_by_role("button", name="Cancel the scheduled batch").click()
    expect(progress).to_contain_text("Batch canceled: 2 messages will not be sent.")
    expect(progress).to_contain_text("Batch done: 2 of 2 final (canceled 2).")
    expect(page.get_by_role("button", name="Cancel the scheduled batch")).to_be_hidden()
    assert [p for p in tab.posts(stage.origin) if p.endswith("/cancel")] == [f"/api/batches/{batch_id}/cancel"]
    assert api.call("GET", f"/batches/{batch_id}")[2]["canceled"] == 2
    for body in (f"first {tag}", f"second {tag}"):
        expect(status_cell(row_of(page, body))).to_have_text("canceled")
    assert tab.errors == []
