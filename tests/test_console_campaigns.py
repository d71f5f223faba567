"""The console's templates, personalised batches and send options (issue 21), and the fixes issue 22 asked for while
in the console, in a real browser against the local stack, served under API Gateway's stage path as
``tests/test_console.py`` serves it (its fixtures: Debian's chromium, a local stack of this module's own).

What the page shows is held to the API's own rules where the page repeats them: the rendered message and its
segments to ``chalicelib.templates.render`` and ``chalicelib.core.segments``, the media it offers to
``chalicelib.sending.media.MAX_BYTES``, the countries it offers to the phone-number library the API parses with.
"""
import json
import re
import uuid

import phonenumbers
import pytest
from playwright.sync_api import expect

from chalicelib.core import segments
from chalicelib.sending import media
from chalicelib.templates import render
from devstack.receipts import SMS_PRICE_USD

from .localhttp import Http, wait_for
from .test_console import (DESKTOP, FAILURE, PHONE, PNG, SHOTS, SUCCESS, TO, Tab, browser, masked, row_of,  # noqa: F401
                           sent_bodies, stack, stage, tab)

NOT_ALLOWED = "+33612345678"  # a valid French mobile number: the dev stage allows US and CA only
NOT_A_NUMBER = "+15551234"  # E.164 in form, no number in the plan: only the API can tell


def posted(tab, path):
    """The JSON bodies the page posted to ``path`` (under the stage), in order."""
    return [json.loads(r.post_data) for r in tab.requests if r.method == "POST" and r.url.endswith("/api/" + path)]


def refused_errors(tab, *expected):
    """The page's errors other than the refusals a test provoked on purpose (``expected``: "400 POST", ...)."""
    return [e for e in tab.errors if not any(e.startswith(x) for x in expected) and "status of 4" not in e]


def make_template(stack, name, body, **more):
    status, _, made = Http(stack.app_url).call("POST", "/templates", {"name": name, "body": body, **more})
    assert status == 201, made
    return made


def delivered_to(stack, to, body):
    """Send ``body`` to ``to`` through the API and wait for its receipt: the stage then has a recorded price."""
    api = Http(stack.app_url)
    status, _, message = api.call("POST", "/sms", {"to": to, "body": body})
    assert status == 202
    assert wait_for(lambda: api.call("GET", f"/messages/{message['id']}")[2]["status"] == "delivered", seconds=60)
    return api.call("GET", f"/messages/{message['id']}")[2]


# -- templates ---------------------------------------------------------------------------------------------------
def test_a_template_is_made_changed_into_a_new_version_sent_from_and_archived(tab, stack, stage):
    tag = uuid.uuid4().hex[:8]
    name, page, api = f"table {tag}", tab.page, Http(stack.app_url)
    first = "Hi ((first name)), your table is at ((time))."
    second = "Hi ((First Name)), your table for ((party)) is at ((time)). Reply STOP to stop."
    page.goto(f"{stage.url}/")
    page.get_by_role("button", name="Templates").click()
    expect(page.locator("#templatesView")).to_be_visible()
    expect(page.locator("#messagesView")).to_be_hidden()
    view = page.locator("#templatesView")
    name_field, body_field = view.get_by_label(re.compile(r"^Name")), view.get_by_label(re.compile(r"^Message"))

    # A bad placeholder: the form says so as it is typed, and the API's refusal lands on the field.
    name_field.fill(name)
    body_field.fill("Hi ((na!me))")
    expect(page.locator("#templateFound")).to_contain_text("holds a character other than letters")
    page.get_by_role("button", name="Create template").click()
    expect(page.locator("#templateBody-error")).to_contain_text("((na!me))")
    expect(page.locator("#templateBody")).to_have_attribute("aria-invalid", "true")
    expect(page.locator("#templateBody")).to_be_focused()
    # Made: the placeholders found are the API's, in order of first use.
    body_field.fill(first)
    expect(page.locator("#templateFound")).to_contain_text("2 placeholders: ((first name)), ((time))")
    page.get_by_role("button", name="Create template").click()
    status = page.locator("#templateStatus")
    expect(status).to_contain_text(f"Template “{name}” saved: version 1 (placeholders: first name, time)")
    made = posted(tab, "templates")[-1]
    assert made == {"name": name, "body": first, "channel": "sms"}
    row = page.locator("#templateRows tr", has_text=name)
    expect(row.locator("td").nth(2)).to_have_text("1")
    expect(row.locator("td").nth(3)).to_have_text(", ".join(render.names(first)))
    template_id = row.get_attribute("data-id")

    # Edited: saving makes version 2; version 1 is kept as it was.
    row.get_by_role("button", name=f"Edit the template {name}").click()
    expect(page.locator("#templateChannel")).to_be_disabled()
    expect(page.locator("#saveTemplate")).to_have_text("Save as version 2")
    body_field.fill(second)
    page.locator("#saveTemplate").focus()
    page.keyboard.press("Enter")
    expect(status).to_contain_text("version 2 (placeholders: First Name, party, time)")
    # Disabled while the save ran, the button has the focus again: the keyboard is not thrown to the top.
    expect(page.locator("#saveTemplate")).to_be_focused()
    expect(row.locator("td").nth(2)).to_have_text("2")
    assert [p for m, p in tab.paths(stage.origin) if m == "PUT"] == [f"/api/templates/{template_id}"]
    assert api.call("GET", f"/templates/{template_id}?version=1")[2]["body"] == first

    # Sent from: one labelled input per placeholder, the message as it will go, and nothing asked of the API
    # while a placeholder is empty.
    row.get_by_role("button", name=f"Send from the template {name}").click()
    expect(page.locator("#messagesView")).to_be_visible()
    expect(page.locator("#template")).to_have_value(template_id)
    expect(page.locator("#body")).to_be_hidden()
    for placeholder in render.names(second):
        expect(page.get_by_label(placeholder, exact=True)).to_be_visible()
    page.fill("#to", SUCCESS)
    page.get_by_label("First Name", exact=True).fill("Zoë")
    page.get_by_label("time", exact=True).fill("19:30")
    page.click("#sendButton")
    expect(page.locator("#placeholders-error")).to_have_text("Fill in “party”.")
    assert posted(tab, "sms") == []
    page.get_by_label("party", exact=True).fill("4")
    expect(page.locator("#placeholders-error")).to_be_hidden()
    expect(page.locator("#result")).to_have_text("")  # "see the highlighted field" went with the fix
    values = {"First Name": "Zoë", "party": "4", "time": "19:30"}
    text = render.render(second, values)
    expect(page.locator("#rendered")).to_have_text(text)
    expected = segments.segment(text)
    expect(page.locator("#counter")).to_contain_text(
        f"{len(text)} / 1600 characters · {expected.segments} segment{'s' if expected.segments > 1 else ''} · {expected.encoding}")
    page.click("#sendButton")
    expect(page.locator("#result")).to_have_attribute("data-status", "delivered")
    assert posted(tab, "sms") == [{"to": SUCCESS, "templateId": template_id, "templateVersion": 2,
                                   "personalisation": values, "type": "transactional"}]
    assert len(sent_bodies(stack, text)) == 1
    # The history shows what went; Details names the template and its version.
    sent = row_of(page, text)
    expect(sent).to_have_count(1)
    sent.get_by_role("button", name="Details").click()
    expect(page.locator("#detail")).to_contain_text(f"{template_id} (version 2)")
    page.keyboard.press("Escape")

    # Archived, after asking: it still lists, and no form offers it any more.
    page.get_by_role("button", name="Templates").click()
    row.get_by_role("button", name=f"Archive the template {name}").click()
    expect(page.locator("#archiveDialog")).to_contain_text(f"“{name}”")
    page.click("#confirmArchive")
    expect(row).to_have_attribute("data-state", "archived")
    expect(row.get_by_role("button")).to_have_count(0)
    expect(page.locator(f"#template option[value='{template_id}']")).to_have_count(0)
    expect(page.locator(f"#batchTemplate option[value='{template_id}']")).to_have_count(0)
    assert [p for m, p in tab.paths(stage.origin) if m == "DELETE"] == [f"/api/templates/{template_id}"]
    assert refused_errors(tab, "400 POST") == []


def test_a_key_without_templates_manage_sends_from_templates_but_is_offered_no_changes(tab, stack, stage):
    tag = uuid.uuid4().hex[:8]
    template = make_template(stack, f"sender only {tag}", "Code ((code))")
    status, _, made = Http(stack.app_url).call("POST", "/keys", {"name": f"sender {tag}",
                                                                "scopes": ["messages:send", "messages:read"]})
    assert status == 201
    from .conftest import hygiene
    hygiene.keys.add(made["key"])
    page = tab.page
    page.goto(f"{stage.url}/")
    page.fill("#apiKey", made["key"])
    expect(page.locator("#keyInfo")).to_contain_text(f"sender {tag}")
    page.get_by_role("button", name="Templates").click()
    expect(page.locator("#templatesDenied")).to_contain_text("it lacks templates:manage")
    expect(page.locator("#templateForm")).to_be_hidden()
    row = page.locator("#templateRows tr", has_text=template["name"])
    expect(row.get_by_role("button")).to_have_count(1)  # Use, and nothing else
    expect(row.get_by_role("button", name=f"Send from the template {template['name']}")).to_be_visible()
    assert tab.errors == []


# -- a personalised batch from a CSV -----------------------------------------------------------------------------
def test_a_personalised_batch_from_a_csv_shows_its_preview_and_cost_then_the_refused_rows_by_line(tab, stack, stage):
    tag = uuid.uuid4().hex[:8]
    body = "Hello ((name)), your code is ((code)). " + tag
    template = make_template(stack, f"codes {tag}", body)
    priced = delivered_to(stack, TO, f"priced {tag}")  # a +1 SMS with the price AWS recorded for it
    assert priced["priceUsd"] == pytest.approx(SMS_PRICE_USD * priced["segments"])
    page = tab.page
    page.goto(f"{stage.url}/")
    page.get_by_label("Template (optional: without one").select_option(template["id"])
    expect(page.locator("#batchColumns")).to_contain_text("to (or phone number), country (optional, for national numbers), name, code")
    rows = [("Phone number", "Name", "code", "country"),
            (SUCCESS, "Ana", "1234", ""),           # line 2
            (FAILURE, "Bo", "5678", ""),            # line 3
            ("12345", "Cy", "1", ""),               # line 4: no country for a national number
            (TO, "", "9", ""),                      # line 5: no name
            ("(425) 555-0123", "Dee", "жжж", "US"),  # line 6: a national number with its country; UCS-2
            (NOT_ALLOWED, "Eve", "42", ""),         # line 7: only the API knows France is not allowed
            (NOT_A_NUMBER, "Fay", "7", ""),         # line 8: only the API knows it is no number
            ]
    csv = "\n".join(",".join(f'"{c}"' if "," in c else c for c in r) for r in rows) + "\n"
    page.set_input_files("#batchFile", files=[{"name": "codes.csv", "mimeType": "text/csv", "buffer": csv.encode()}])
    check = page.locator("#batchCheck")
    expect(check).to_contain_text("5 messages will be sent; 2 rows will be left out")
    rejected = page.locator("#batchRejected li")
    expect(rejected).to_have_text(["Line 4: “12345” is not a number in E.164 form (like +14255550123), and the row gives "
                                   "no country for it", "Line 5: no value for “name”"])
    # The first three, rendered by the API's rules.
    going = [r for r in rows[1:] if r[0] not in ("12345",) and r[1]]
    texts = [render.render(body, {"name": r[1], "code": r[2]}) for r in going]
    preview = page.locator("#batchPreview li")
    expect(preview).to_have_count(3)
    for i in range(3):
        expect(preview.nth(i).locator(".text")).to_have_text(texts[i])
    expect(preview.nth(0).locator(".to")).to_contain_text(f"Line 2 · {masked(SUCCESS)} · 1 segment, GSM-7")
    parts = [segments.segment(t) for t in texts]
    total = sum(p.segments for p in parts)
    ucs2 = sum(1 for p in parts if p.encoding == "UCS-2")
    assert ucs2 == 1
    expect(page.locator("#batchTotals")).to_have_text(f"In all: {total} segments for 5 SMS ({ucs2} in UCS-2, whose "
                                                      "parts hold 67 characters).")
    # Cost: priced from the recorded price of the stage's own +1 SMS, per part; the French row's price is unknown
    # (the national number's too: its calling code is not written).
    per_part = priced["priceUsd"] / priced["segments"]
    known = sum(p.segments for r, p in zip(going, parts) if r[0].startswith("+1"))
    cost = page.locator("#batchCost")
    expect(cost).to_contain_text(f"about ${per_part * known:.5f} for the rows whose price is known, and price unknown "
                                 "for 2 rows (national numbers, SMS to +33)")
    expect(cost).to_contain_text(f"Source: the price AWS recorded for this stage's latest SMS to +1 numbers, "
                                 f"${per_part:.5f} a part (message {priced['id']}). An estimate, not a quote.")

    with page.expect_response(lambda r: r.url.endswith("/api/batches") and r.request.method == "POST") as answer:
        page.click("#batchSend")
    assert answer.value.status == 202
    sent = posted(tab, "batches")[0]
    assert sent == {"templateId": template["id"], "templateVersion": 1, "messages": [
        {"to": SUCCESS, "personalisation": {"name": "Ana", "code": "1234"}},
        {"to": FAILURE, "personalisation": {"name": "Bo", "code": "5678"}},
        {"to": "(425) 555-0123", "country": "US", "personalisation": {"name": "Dee", "code": "жжж"}},
        {"to": NOT_ALLOWED, "personalisation": {"name": "Eve", "code": "42"}},
        {"to": NOT_A_NUMBER, "personalisation": {"name": "Fay", "code": "7"}}]}
    progress = page.locator("#batchProgress")
    # The rows the API refused, shown against their CSV line, France by its name.
    expect(progress).to_contain_text("Batch accepted: 3 queued; refused by the service: line 7 (Sending to France (FR) "
                                      "is not allowed on this stage.), line 8 ('to' is not a valid phone number.)")
    expect(progress).to_have_attribute("data-state", "done")
    expect(progress).to_contain_text("3 of 3 final (delivered 2, failed 1)")
    assert len(sent_bodies(stack, texts[2])) == 1  # the national number went, rendered
    assert tab.errors == []


def test_without_a_known_price_the_preview_says_price_unknown(tab, stack, stage):
    tag = uuid.uuid4().hex[:8]
    template = make_template(stack, f"far {tag}", "Bonjour ((nom))")
    page = tab.page
    page.goto(f"{stage.url}/")
    page.select_option("#batchTemplate", template["id"])
    page.fill("#batchInput", f"to,nom\n{NOT_ALLOWED},Zoé\n")
    expect(page.locator("#batchCost")).to_have_text("Cost: unknown, since no earlier message of this stage has a "
                                                    "recorded price for SMS to +33.")
    assert tab.errors == []


# -- send options, the country, and the fixes issue 22 asked for --------------------------------------------------
def test_options_go_in_the_request_and_the_api_refusals_land_on_their_fields(tab, stack, stage):
    text = f"options {uuid.uuid4().hex[:8]}"
    page = tab.page
    page.goto(f"{stage.url}/")
    form = page.locator("#send")
    options = page.locator("#sendLimits details")
    expect(options).not_to_have_attribute("open", "")
    page.fill("#to", SUCCESS)
    page.fill("#body", text)
    # Opened from the keyboard, as any control on the page.
    page.locator("#sendLimits summary").focus()
    page.keyboard.press("Enter")
    expect(form.get_by_label("Give up if not sent within")).to_be_visible()
    form.get_by_label("Give up if not sent within").fill("0.5")  # 30 seconds: under the API's floor of 60
    form.get_by_label("Most to pay per message part").fill("0.05")  # SMS through SNS: no price cap
    page.click("#sendButton")
    # The API names one field at a time: the time limit first, on its field, opened and focused.
    validity = page.locator("#validity-error")
    # In the form's terms: its units (the API's sentence speaks of 'validityPeriod' in seconds).
    expect(validity).to_have_text("Give a time from 1 minute to 72 hours.")
    expect(page.locator("#validity")).to_be_focused()
    expect(page.locator("#result")).to_have_text("Not sent: see the highlighted field.")
    form.get_by_label("Unit of the time limit").select_option("3600")  # 0.5 hours
    expect(validity).to_be_hidden()
    expect(page.locator("#result")).to_have_text("")
    expect(page.locator("#sendLimits summary")).to_contain_text("give up after 0.5 hours")
    page.click("#sendButton")
    price = page.locator("#maxPrice-error")
    expect(price).to_contain_text("Amazon SNS, which has no price cap per message. Leave “Most to pay per message "
                                  "part” out")
    expect(page.locator("#maxPrice")).to_be_focused()
    form.get_by_label("Most to pay per message part").fill("")
    expect(price).to_be_hidden()
    expect(page.locator("#result")).to_have_text("")
    page.click("#sendButton")
    expect(page.locator("#result")).to_have_attribute("data-status", "delivered")
    assert [b.get("validityPeriod") for b in posted(tab, "sms")] == [30, 1800, 1800]
    assert [b.get("maxPriceUsd") for b in posted(tab, "sms")] == ["0.05", "0.05", None]
    row_of(page, text).get_by_role("button", name="Details").click()
    expect(page.locator("#detail")).to_contain_text("Give up after30 minutes (until ")
    page.keyboard.press("Escape")
    # An MMS takes a price cap on every stage.
    page.fill("#body", text + " mms")
    page.set_input_files("#file", files=[{"name": "cat.png", "mimeType": "image/png", "buffer": PNG}])
    form.get_by_label("Most to pay per message part").fill("0.05")
    page.click("#sendButton")
    expect(page.locator("#result")).to_contain_text("MMS to ")
    assert posted(tab, "mms")[-1]["maxPriceUsd"] == "0.05"
    assert refused_errors(tab, "400 POST") == []


def test_a_national_number_takes_its_country_and_a_refused_country_is_named(tab, stack, stage):
    text = f"national {uuid.uuid4().hex[:8]}"
    page = tab.page
    page.goto(f"{stage.url}/")
    # Every region the API's phone-number library knows is offered, by name.
    codes = page.eval_on_selector_all("#country option", "os => os.map(o => o.value).filter(Boolean)")
    assert sorted(codes) == sorted(phonenumbers.SUPPORTED_REGIONS)
    page.fill("#to", "(425) 555-0123")
    page.fill("#body", text)
    page.click("#sendButton")
    expect(page.locator("#country-error")).to_contain_text("choose its country")
    expect(page.locator("#country")).to_be_focused()
    assert posted(tab, "sms") == []
    page.get_by_label(re.compile("^Country")).select_option("US")
    expect(page.locator("#country-error")).to_be_hidden()
    expect(page.locator("#result")).to_have_text("")
    page.click("#sendButton")
    expect(page.locator("#result")).to_contain_text("SMS to +14255550123")
    assert posted(tab, "sms")[-1]["country"] == "US"
    assert [s["to"] for s in sent_bodies(stack, text)] == ["+14255550123"]
    # A country the stage does not allow: the API's refusal, naming the country as well as its code.
    page.select_option("#country", "")
    page.fill("#to", NOT_ALLOWED)
    page.fill("#body", text)
    page.click("#sendButton")
    expect(page.locator("#to-error")).to_have_text("Sending to France (FR) is not allowed on this stage.")
    assert refused_errors(tab, "403 POST") == []


def test_media_the_mms_cannot_carry_gets_one_verdict_and_the_picker_offers_only_what_it_can(tab, stage):
    page = tab.page
    page.goto(f"{stage.url}/")
    # The picker offers exactly the types the API takes, and the page's limits are the API's.
    accept = page.get_attribute("#file", "accept").split(",")
    assert sorted(accept) == sorted(media.MAX_BYTES)
    assert page.evaluate("MEDIA_LIMITS") == media.MAX_BYTES
    page.set_input_files("#file", files=[{"name": "notes.txt", "mimeType": "text/plain", "buffer": b"hello"}])
    expect(page.locator("#file-error")).to_contain_text("MMS cannot carry text/plain")
    channel = page.locator("#channel")
    expect(channel).to_have_text("Cannot send notes.txt by MMS: remove it or choose another file.")
    expect(channel).not_to_contain_text("Will go")
    page.set_input_files("#file", files=[{"name": "cat.png", "mimeType": "image/png", "buffer": PNG}])
    expect(channel).to_have_text("Will go as MMS, with cat.png")
    expect(page.locator("#file-error")).to_be_hidden()
    # A file named as a picture whose content is not that picture: refused on what it holds, before any upload
    # (the browser names the type from the name, and the API sees only the type). It went out as MMS before.
    for name, kind, content in [("notes.png", "PNG", b"just some text\n"), ("photo.jpg", "JPEG", PNG),
                                ("anim.gif", "GIF", b"GIF90a not quite")]:
        mime = {"PNG": "image/png", "JPEG": "image/jpeg", "GIF": "image/gif"}[kind]
        page.set_input_files("#file", files=[{"name": name, "mimeType": mime, "buffer": content}])
        expect(page.locator("#file-error")).to_have_text(
            f"{name} does not hold a {kind} picture (its content does not begin as a {kind} file's does): choose "
            "the picture itself.")
        expect(channel).to_have_text(f"Cannot send {name} by MMS: remove it or choose another file.")
    page.fill("#to", SUCCESS)
    page.click("#sendButton")
    expect(page.locator("#result")).to_have_text("Not sent: see the highlighted field.")
    assert posted(tab, "media") == [] and posted(tab, "mms") == []
    page.set_input_files("#file", files=[{"name": "cat.png", "mimeType": "image/png", "buffer": PNG}])
    expect(channel).to_have_text("Will go as MMS, with cat.png")
    assert tab.errors == []


def test_a_new_attempt_leaves_no_final_line_of_the_last_one(tab, stage):
    page = tab.page
    page.goto(f"{stage.url}/")
    page.fill("#to", SUCCESS)
    page.fill("#body", f"first {uuid.uuid4().hex[:8]}")
    page.click("#sendButton")
    result = page.locator("#result")
    expect(result).to_contain_text("Final. ")
    page.click("#sendButton")  # no message this time: refused on the spot
    expect(page.locator("#body-error")).to_be_visible()
    expect(result).to_have_text("Not sent: see the highlighted field.")
    expect(result).not_to_have_attribute("data-status", "delivered")
    page.fill("#body", "fixed")
    expect(result).to_have_text("")
    assert tab.errors == []


@pytest.mark.parametrize("viewport", [DESKTOP, PHONE], ids=["desktop", "phone"])
def test_long_bodies_are_clamped_reasons_break_between_words_and_cards_show_no_empty_labels(browser, stack, stage, viewport):
    api = Http(stack.app_url)
    tag = uuid.uuid4().hex[:8]
    long = (f"long {tag} " + "word " * 400)[:1600]
    assert api.call("POST", "/sms", {"to": TO, "body": long})[0] == 202
    status, _, failed = api.call("POST", "/sms", {"to": FAILURE, "body": f"doomed {tag}"})
    assert status == 202 and wait_for(lambda: api.call("GET", f"/messages/{failed['id']}")[2]["status"] == "failed",
                                      seconds=60)
    context = browser.new_context(viewport=viewport)
    tab = Tab(context.new_page())
    page = tab.page
    page.goto(f"{stage.url}/")
    row, doomed = row_of(page, f"long {tag}"), row_of(page, f"doomed {tag}")
    expect(row).to_have_count(1)
    expect(doomed.locator("td.reason")).not_to_be_empty()
    line = page.evaluate("parseFloat(getComputedStyle(document.body).lineHeight)")
    text = row.locator(".clamp")
    # Four lines of the body show, the row stays short, and nothing of it is lost: Details has all of it.
    assert text.evaluate("e => e.scrollHeight > e.clientHeight")
    assert text.bounding_box()["height"] <= 4 * line + 1
    assert row.bounding_box()["height"] < (30 if viewport is PHONE else 8) * line
    # Each word of a reason on one line (a line may break after "/", never inside a word).
    broken = doomed.locator("td.reason").evaluate("""td => {
      const text = td.textContent, words = [], range = document.createRange(), walker = [];
      let node, at = 0; const nodes = [];
      const it = document.createNodeIterator(td, NodeFilter.SHOW_TEXT);
      while ((node = it.nextNode())) nodes.push(node);
      for (const n of nodes) for (const m of n.data.matchAll(/[^\\s/]+/g)) {
        range.setStart(n, m.index); range.setEnd(n, m.index + m[0].length);
        const tops = new Set([...range.getClientRects()].map(r => Math.round(r.top)));
        if (tops.size > 1) words.push(m[0]);
      }
      return words;
    }""")
    assert broken == []
    # A phone card shows a label only where there is something after it.
    empty = page.eval_on_selector_all("#messages td[data-label]", """tds => tds.filter(td =>
      td.getClientRects().length && getComputedStyle(td, '::before').content !== 'none' && !td.textContent.trim())
      .map(td => td.dataset.label)""")
    labels = page.eval_on_selector_all("#messages td[data-label]", """tds => tds.filter(td =>
      td.getClientRects().length && getComputedStyle(td, '::before').content !== 'none').length""")
    assert labels > 0 if viewport is PHONE else labels == 0  # the cards label their lines; the table does not
    assert empty == []
    page.screenshot(path=str(SHOTS / f"clamp-{'phone' if viewport is PHONE else 'desktop'}.png"), full_page=True)
    assert tab.errors == []
    context.close()


def test_the_history_polls_while_a_message_moves_slowly_when_all_are_final_and_not_at_all_when_hidden(tab, stage):
    """The history's own requests, counted inside the page as they are made (a wrapped ``fetch``), on a paused
    clock: every 3 s while a shown message is on its way, every 10 s once all are final, none while the tab is
    hidden, and one at once when it is shown again. The list's answers are the test's, so a message stays
    ``sent`` until the test says it settled."""
    page = tab.page
    status = {"now": "sent"}

    def answer(route):
        message = {"id": "m1", "direction": "outbound", "channel": "sms", "to": TO, "body": "moving", "status": status["now"],
                   "segments": 1, "createdAt": "2026-12-05T10:00:00.000Z", "updatedAt": "2026-12-05T10:00:00.000Z"}
        route.fulfill(json={"messages": [message], "next": None})

    page.route("**/api/messages?limit=20*", answer)
    page.add_init_script("""(() => { const real = window.fetch; window.asked = [];
      window.fetch = (url, init) => { window.asked.push(String(url)); return real(url, init); }; })()""")
    page.clock.install()
    page.goto(f"{stage.url}/")
    expect(row_of(page, "moving")).to_have_count(1)
    page.clock.pause_at(page.evaluate("Date.now()") / 1000 + 1)  # Python's Playwright takes seconds here

    def listings():
        return len([u for u in page.evaluate("asked") if "messages?limit=20" in u])

    def poll_after(ms):
        """Move the clock ``ms`` and return how many listings that made, once the page has asked and planned its
        next poll (``pollTimer`` set again)."""
        before = listings()
        page.wait_for_function("pollTimer !== null", polling=50)
        page.clock.run_for(ms)
        made = listings() - before
        if made:
            page.wait_for_function("pollTimer !== null", polling=50)
        return made

    page.clock.run_for(3_000)  # the poll planned at load comes; the next is planned from its answer
    assert poll_after(2_999) == 0
    assert poll_after(1) == 1
    assert poll_after(3_000) == 1
    status["now"] = "delivered"
    assert poll_after(3_000) == 1  # the answer that says it settled
    expect(row_of(page, "moving").locator("td").nth(5)).to_have_text("delivered")
    assert poll_after(9_999) == 0
    assert poll_after(1) == 1
    # Hidden: nothing at all for minutes (history and dashboard alike); shown again: asked at once.
    page.evaluate("""() => { Object.defineProperty(document, 'hidden', {configurable: true, get: () => true});
                             document.dispatchEvent(new Event('visibilitychange')); }""")
    before = len(page.evaluate("asked"))
    page.clock.run_for(5 * 60_000)
    assert len(page.evaluate("asked")) == before
    before = listings()
    page.evaluate("""() => { Object.defineProperty(document, 'hidden', {configurable: true, get: () => false});
                             document.dispatchEvent(new Event('visibilitychange')); }""")
    assert listings() == before + 1  # asked in the event itself, before any timer
    assert tab.errors == []


# Every control a person can use, named and in the tab order (the new ones included: options, templates, dashboard).
CONTROLS = """() => [...document.querySelectorAll('input, select, textarea, button, summary, a[href]')]
  .filter(el => el.getClientRects().length && !el.disabled && getComputedStyle(el).visibility !== 'hidden')
  .map(el => {
    const text = (ids) => ids.split(/\\s+/).map(id => document.getElementById(id)).filter(Boolean)
      .map(e => e.textContent).join(' ');
    const name = (el.getAttribute('aria-label') || '') || (el.getAttribute('aria-labelledby') ?
      text(el.getAttribute('aria-labelledby')) : '') || [...(el.labels || [])].map(l => l.textContent).join(' ') ||
      (['BUTTON', 'SUMMARY', 'A'].includes(el.tagName) ? el.textContent : '');
    return {key: el.id || (el.name ? el.name + '=' + el.value : el.tagName + ':' + el.textContent.trim().slice(0, 30)),
            group: el.type === 'radio' ? el.name : null, name: name.trim()};
  })"""
FOCUSED = """() => { const el = document.activeElement; if (!el || el === document.body) return null;
  return {key: el.id || (el.name ? el.name + '=' + el.value : el.tagName + ':' + el.textContent.trim().slice(0, 30)),
          group: el.type === 'radio' ? el.name : null}; }"""


def tab_order(page):
    """Every element Tab reaches, once round the page."""
    page.evaluate("document.activeElement && document.activeElement.blur()")
    seen, first = [], None
    for _ in range(400):
        page.keyboard.press("Tab")
        now = page.evaluate(FOCUSED)
        if now is None:
            continue
        if now == first:
            return seen
        first = first or now
        seen.append(now)
    return seen


@pytest.mark.parametrize("viewport", [DESKTOP, PHONE], ids=["desktop", "phone"])
def test_every_control_is_labelled_and_reached_by_tab(browser, stack, stage, viewport):
    context = browser.new_context(viewport=viewport)
    tab = Tab(context.new_page())
    page = tab.page
    page.goto(f"{stage.url}/")
    expect(page.locator("#dashBody")).to_have_attribute("data-state", "ready")
    for summary in ("#sendLimits summary", "#batchLimits summary", ".chart-table summary"):
        page.locator(summary).click()
    for view in ("Messages", "Templates"):
        page.get_by_role("button", name=view, exact=True).click()
        controls = page.evaluate(CONTROLS)
        assert len(controls) > (20 if view == "Messages" else 5)
        assert [c["key"] for c in controls if not c["name"]] == [], view
        reached = tab_order(page)
        keys, groups = {r["key"] for r in reached}, {r["group"] for r in reached}
        missed = [c["key"] for c in controls if c["key"] not in keys and not (c["group"] and c["group"] in groups)]
        assert missed == [], view
    assert tab.errors == []
    context.close()
