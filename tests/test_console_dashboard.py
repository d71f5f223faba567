"""The console's delivery dashboard (issue 22 §3), in a real browser against the local stack: the figures come from
the real report (``GET /reports/daily``, counted by the tally from the messages table's stream) and the download
from a real export (``POST /exports``, polled, then the presigned URL on the embedded S3).

Known traffic goes through the API first: SMS to AWS's success simulator (delivered) and to its failure simulator
(failed). What the page shows is held to the API's own report, and the report to that traffic, so the page can
neither invent a figure nor drop one. The stage sets a monthly spend limit here, as a deployed stage does
(``monthlySpendLimitUsd``), so the spend line has something to be measured against.

``UPDATE_SCREENSHOTS=1`` writes the dashboard's picture over ``docs/screenshots/console-dashboard.png`` (shown in
docs/guides/console.md); otherwise it goes to ``.build/screenshots/``. The dashboard holds no phone number; the picture is of it alone.
"""
import csv
import io
import os
import uuid
from datetime import datetime, timedelta, timezone

import pytest
from playwright.sync_api import expect

from chalicelib.keys import scopes
from devstack import appload
from devstack.server import LocalStack

from .apigateway import StageServer
from .localhttp import Http, wait_for
from .test_console import DOC_SHOTS, FAILURE, PHONE, SHOTS, SUCCESS, Tab, browser, make_key, tab  # noqa: F401

LIMIT_USD = 20  # the stage's monthlySpendLimitUsd here
DELIVERED, FAILED = 3, 2


@pytest.fixture(scope="module")
def stack():
    with LocalStack(app_port=0, aws_port=0, receipt_delay=0.3,
                    settings={"PROVIDER_MAX_ATTEMPTS": "2", "MONTHLY_SPEND_LIMIT_USD": str(LIMIT_USD)}) as running:
        yield running


@pytest.fixture(scope="module")
def stage(stack):
    with StageServer(appload.load().app, key_check=stack.key_check) as server:
        yield server


def today() -> str:
    return datetime.now(timezone.utc).date().isoformat()


def days_back(n: int) -> str:
    return (datetime.now(timezone.utc).date() - timedelta(days=n - 1)).isoformat()


@pytest.fixture(scope="module")
def traffic(stack):
    """Five SMS, settled: three delivered, two failed; then the report once the tally has counted them all.
    (The tests take the report's own day: a run that crosses midnight UTC asks again.)"""
    api, tag, made = Http(stack.app_url), uuid.uuid4().hex[:8], []
    for i, to in enumerate([SUCCESS] * DELIVERED + [FAILURE] * FAILED):
        status, _, message = api.call("POST", "/sms", {"to": to, "body": f"dashboard {tag} {i}"})
        assert status == 202, message
        made.append(message["id"])

    def settled():
        found = [api.call("GET", f"/messages/{i}")[2] for i in made]
        return all(m["status"] in ("delivered", "failed") for m in found) and found

    messages = wait_for(settled)
    assert messages and sorted(m["status"] for m in messages) == ["delivered"] * DELIVERED + ["failed"] * FAILED

    def counted():
        report = api.call("GET", "/reports/daily")[2]
        sms = report["totals"]["sms"]
        return sms["delivered"] == DELIVERED and sms["failed"] == FAILED and sms["pending"] == 0 and report

    report = wait_for(counted)
    assert report, api.call("GET", "/reports/daily")[2]
    return {"messages": messages, "report": report}


def both(figures, name):
    return figures["sms"][name] + figures["mms"][name]


def test_the_dashboard_shows_the_reports_figures_and_downloads_the_export(tab, stack, stage, traffic):
    page, api, report = tab.page, Http(stack.app_url), traffic["report"]
    page.goto(f"{stage.url}/")
    body = page.locator("#dashBody")
    expect(body).to_have_attribute("data-state", "ready")
    asked = [r.url.split("/api/", 1)[1] for r in tab.requests if "/api/reports/daily" in r.url]
    assert f"reports/daily?from={days_back(7)}&to={today()}" in asked
    assert f"reports/daily?from={today()[:8]}01&to={today()}" in asked  # the month so far, for the spend

    # The delivery rate: delivered out of those that settled, as the report counts them.
    expect(page.locator("#rate")).to_have_text(f"{100 * DELIVERED / (DELIVERED + FAILED):.1f}% "
                                               f"({DELIVERED} of {DELIVERED + FAILED} that settled)")
    # The commonest failure codes: the report's own, with their counts.
    codes = {**report["totals"]["mms"]["failuresByCode"]}
    for code, n in report["totals"]["sms"]["failuresByCode"].items():
        codes[code] = codes.get(code, 0) + n
    assert sum(codes.values()) == FAILED
    expect(page.locator("#failures li")).to_have_text([f"{c}: {n}" for c, n in sorted(codes.items(),
                                                                                      key=lambda c: (-c[1], c[0]))][:5])
    # The chart: one group a day, the traffic's day stacked delivered and failed (no pending bar: none is pending).
    chart = page.locator("#chart")
    expect(chart.locator("g.day")).to_have_count(7)
    day = chart.locator(f"g.day[data-date='{report['to']}']")
    expect(day.locator("rect")).to_have_count(2)
    assert day.locator("rect[data-series=delivered]").get_attribute("data-count") == str(DELIVERED)
    assert day.locator("rect[data-series=failed]").get_attribute("data-count") == str(FAILED)
    tall = {s: float(day.locator(f"rect[data-series={s}]").get_attribute("height")) for s in ("delivered", "failed")}
    assert tall["delivered"] / tall["failed"] == pytest.approx(DELIVERED / FAILED, rel=0.01)
    expect(page.locator("#chartDesc")).to_contain_text(f"{DELIVERED} delivered, {FAILED} failed, 0 pending in all")
    # Spend this month against the stage's limit, from the report's recorded prices.
    month = api.call("GET", f"/reports/daily?from={today()[:8]}01&to={today()}")[2]
    assert month["spendLimitUsd"] == LIMIT_USD
    spent = both(month["totals"], "costUsd")
    assert spent > 0
    expect(page.locator("#spend")).to_have_text(f"${spent:.5f} of the ${LIMIT_USD} monthly limit "
                                                f"({100 * spent / LIMIT_USD:.1f}%)")
    meter = page.locator("#spendMeter")
    expect(meter).to_be_visible()
    assert float(meter.evaluate("m => m.value")) == pytest.approx(spent) and meter.evaluate("m => m.max") == LIMIT_USD
    shots = DOC_SHOTS if os.environ.get("UPDATE_SCREENSHOTS") == "1" else SHOTS
    shots.mkdir(parents=True, exist_ok=True)
    page.locator("#dashboard").screenshot(path=str(shots / "console-dashboard.png"))

    # The download: an export of the days shown, polled until ready, then the file itself (its presigned URL,
    # opened as a link: the bucket answers a browser's GET, not a script's fetch).
    with page.expect_download() as downloading:
        page.get_by_role("button", name="Download these days as CSV").click()
    assert [r.post_data_json for r in tab.requests if r.method == "POST" and r.url.endswith("/api/exports")] == [
        {"from": days_back(7), "to": today()}]
    download = downloading.value
    assert download.suggested_filename.endswith(".csv")
    rows = list(csv.DictReader(io.StringIO(open(download.path(), encoding="utf-8").read())))
    assert sorted(r["id"] for r in rows) == sorted(m["id"] for m in traffic["messages"])
    by_id = {m["id"]: m for m in traffic["messages"]}
    assert all(r["status"] == by_id[r["id"]]["status"] and r["to"] == by_id[r["id"]]["to"] for r in rows)
    assert "body" not in rows[0]
    status = page.locator("#exportStatus")
    expect(status).to_contain_text(f"CSV ready: {len(rows)} messages.")
    expect(status.get_by_role("link", name="Download it again")).to_have_attribute("href", download.url)
    # Disabled while the export ran, the button has the focus again: the keyboard is not thrown to the top.
    expect(page.get_by_role("button", name="Download these days as CSV")).to_be_focused()
    assert [r for r in tab.requests if r.url == download.url and r.resource_type == "fetch"] == []
    assert tab.errors == []


def test_thirty_days_by_keyboard_and_the_figures_as_a_table(tab, stage, traffic):
    page, report = tab.page, traffic["report"]
    page.goto(f"{stage.url}/")
    expect(page.locator("#dashBody")).to_have_attribute("data-state", "ready")
    page.get_by_role("radio", name="Last 7").focus()
    with page.expect_response(lambda r: f"/api/reports/daily?from={days_back(30)}&to={today()}" in r.url):
        page.keyboard.press("ArrowRight")
    expect(page.get_by_role("radio", name="Last 30")).to_be_checked()
    expect(page.locator("#chart g.day")).to_have_count(30)
    page.get_by_text("The figures as a table").click()
    rows = page.locator("#dashTable tbody tr")
    expect(rows).to_have_count(30)
    sms = next(d for d in report["days"] if d["date"] == report["to"])["sms"]
    expect(rows.last.locator("td").nth(1)).to_have_text(str(sms["delivered"]))
    expect(rows.last.locator("td").nth(2)).to_have_text(str(sms["failed"]))
    assert tab.errors == []


def test_at_phone_width_the_dashboard_fits(browser, stage, traffic):  # noqa: F811
    context = browser.new_context(viewport=PHONE)
    tab = Tab(context.new_page())
    page = tab.page
    page.goto(f"{stage.url}/")
    expect(page.locator("#dashBody")).to_have_attribute("data-state", "ready")
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    for part in ("#chart", "#exportButton", "#failures", "#spend"):
        box = page.locator(part).bounding_box()
        assert box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"], part
    page.screenshot(path=str(SHOTS / "dashboard-phone.png"), full_page=False)
    assert tab.errors == []
    context.close()


def test_a_key_that_cannot_read_is_told_so_and_asks_for_no_figures(tab, stack, stage):
    made = make_key(stack, f"sender {uuid.uuid4().hex[:8]}", [scopes.SEND])
    page = tab.page
    page.goto(f"{stage.url}/")
    page.fill("#apiKey", made["key"])
    expect(page.locator("#dashDenied")).to_have_text(f"This key cannot show the delivery figures: it lacks {scopes.READ}.")
    expect(page.locator("#dashBody")).to_be_hidden()
    keyed = [r for r in tab.requests if "/api/reports/" in r.url and r.headers.get("authorization")]
    assert keyed == []
