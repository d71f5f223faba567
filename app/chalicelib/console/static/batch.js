// ---- batches: CSV rows, each with its own message or filling in a template ----------------------------------
// Before anything is sent the panel shows what the batch would be, checked here by the API's own rules for what
// it can tell without asking: a number's form (E.164, or a national number with a country), each placeholder's
// value, and the rendered message (app/chalicelib/templates/render.py, core/text.py, core/segments.py). The API
// has no dry run of a batch, so what only it can tell (a number's validity in its country's plan, the stage's
// allowed countries, the opt-out list) comes back when the batch is sent: those rows are listed then, by line.

// Records of a CSV text, each with the line it starts on; cells trimmed, blank records left out.
function parseCsv(text) {
  const rows = []; let row = [], field = "", quoted = false, line = 1, startedOn = 1;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (c === "\n" || (c === "\r" && text[i + 1] !== "\n")) line++;
    if (quoted) {
      if (c === '"' && text[i + 1] === '"') { field += '"'; i++; }
      else if (c === '"') quoted = false;
      else field += c;
    } else if (c === '"') quoted = true;
    else if (c === ",") { row.push(field); field = ""; }
    else if (c === "\n" || c === "\r") {
      if (c === "\r" && text[i + 1] === "\n") { i++; line++; }
      row.push(field); rows.push({line: startedOn, cells: row}); row = []; field = ""; startedOn = line;
    } else field += c;
  }
  if (field || row.length) { row.push(field); rows.push({line: startedOn, cells: row}); }
  return rows.map((r) => ({line: r.line, cells: r.cells.map((x) => x.trim())})).filter((r) => r.cells.some(Boolean));
}
const E164 = /^\+[1-9][0-9]{1,14}$/;
const TO_COLUMNS = ["to", "phone number"];
function batchTemplate() { return $("batchTemplate").value ? templateById($("batchTemplate").value) : null; }

// What one row's number is, or why it cannot go: {to, country} or {why}.
function numberOf(to, country) {
  if (!to) return {why: "no number"};
  if (country && !/^[A-Za-z]{2}$/.test(country)) return {why: "“" + country + "” is not a two-letter country code such as US"};
  if (to.startsWith("+")) return E164.test(to) ? {to} : {why: "“" + to + "” is not a number in E.164 form (like +14255550123)"};
  if (!country) return {why: "“" + to + "” is not a number in E.164 form (like +14255550123), and the row gives no country for it"};
  return /^[0-9 ()\-.]{2,20}$/.test(to) ? {to, country: country.toUpperCase()} : {why: "“" + to + "” is not a phone number"};
}
// Why a rendered body cannot go, or null (app/chalicelib/sending/validation.py's rules for a body).
function bodyProblem(text, rendered) {
  if (BODY_CONTROL.test(text)) return (rendered ? "the message renders with" : "the message holds") + " control characters";
  if (!SHOWS.test(text)) return rendered ? "the message renders to nothing visible" : "no message";
  if (bodyLength(text) > MAX_BODY) return (rendered ? "the message renders to " : "the message is ") + bodyLength(text) + " characters; the limit is " + MAX_BODY;
  return null;
}
function checkPlainRows(rows) {
  if (rows.length && TO_COLUMNS.includes(keyOf(rows[0].cells[0]))) rows = rows.slice(1);
  const good = [], bad = [];
  for (const {line, cells} of rows) {
    const [to, body = "", mediaUrl = ""] = cells;
    const text = body || (cells.length === 1 ? $("batchBody").value : "");
    const number = numberOf(to, "");
    let why = number.why || null;
    if (!why && !text && !mediaUrl) why = "no message (give one in the row or in “Message for rows that give only a number”)";
    else if (!why && text) why = bodyProblem(text, false);
    if (!why && mediaUrl && !mediaUrl.startsWith("s3://")) why = "the media must be an s3:// address in the media bucket";
    if (why) bad.push({line, why});
    else good.push({line, text, mms: !!mediaUrl, item: mediaUrl ? {to, body: text || undefined, mediaUrl} : {to, body: text}});
  }
  return {good, bad, problems: []};
}
// A CSV for a template: its first line names the columns, `to` (or `phone number`), an optional `country`, and
// one per placeholder (matched as the API matches names: without regard to case or to spaces at the ends).
function checkTemplateRows(rows, t) {
  const problems = [];
  if (!rows.length) return {good: [], bad: [], problems};
  const header = rows[0].cells.map(keyOf), column = (name) => header.indexOf(name);
  const toAt = TO_COLUMNS.map(column).find((i) => i >= 0);
  const placeholderNames = t.placeholders.map(keyOf);
  const countryAt = placeholderNames.includes("country") ? -1 : column("country");
  if (toAt === undefined) problems.push("The first line names no “to” (or “phone number”) column: it must name the columns.");
  const lacking = t.placeholders.filter((name) => column(keyOf(name)) < 0);
  if (lacking.length) problems.push("The first line names no column for " + lacking.map((n) => "((" + n + "))").join(", ") + ".");
  if (toAt === undefined) return {good: [], bad: [], problems};
  const good = [], bad = [];
  for (const {line, cells} of rows.slice(1)) {
    const number = numberOf(cells[toAt] || "", countryAt >= 0 ? cells[countryAt] || "" : "");
    const values = new Map();
    for (const name of placeholderNames) {
      const at = column(name);
      if (at >= 0 && (cells[at] || "") !== "") values.set(name, cells[at]);
    }
    const {text, missing} = fill(t.body, values);
    let why = number.why || null;
    if (!why && missing.length) why = "no value for " + missing.map((n) => "“" + n + "”").join(", ");
    if (!why) why = bodyProblem(text, true);
    if (why) { bad.push({line, why}); continue; }
    const personalisation = {};
    t.placeholders.forEach((name, i) => { if (values.has(placeholderNames[i])) personalisation[name] = values.get(placeholderNames[i]); });
    const item = {to: number.to, personalisation};
    if (number.country) item.country = number.country;
    good.push({line, text, mms: t.channel === "mms", item});
  }
  return {good, bad, problems};
}

// ---- what the batch would cost, where a price is known -------------------------------------------------
// The only prices this page knows are those AWS recorded for the stage's own messages (the receipt's priceInUSD
// on SNS, totalMessagePrice plus totalCarrierFee on End User Messaging). A row is priced by the latest message
// with a recorded price on the same channel to a number of the same country calling code; any other row's price
// is unknown, and the page says so instead of guessing.
// The two-digit country calling codes (ITU-T E.164); 1 and 7 are one digit, every other code three.
const TWO_DIGIT_CODES = new Set(("20 27 30 31 32 33 34 36 39 40 41 43 44 45 46 47 48 49 51 52 53 54 55 56 57 58 60 " +
  "61 62 63 64 65 66 81 82 84 86 90 91 92 93 94 95 98").split(" "));
function callingCode(e164) {
  const digits = e164.slice(1);
  if (digits[0] === "1" || digits[0] === "7") return digits[0];
  return TWO_DIGIT_CODES.has(digits.slice(0, 2)) ? digits.slice(0, 2) : digits.slice(0, 3);
}
let priced = null;  // Map "channel +code" -> {perPart, at, id}, from the stage's latest messages
let pricedFor = null;
async function loadPrices() {
  if (!reading() || pricedFor === $("apiKey").value) return;
  pricedFor = $("apiKey").value;
  let messages = [...byId.values()];
  try { messages = messages.concat((await call("GET", "messages?limit=100")).messages || []); }
  catch (err) { /* the history's messages are all there is to go on */ }
  priced = new Map();
  for (const m of messages) {
    if (inbound(m) || m.priceUsd == null || !m.to || !E164.test(m.to) || m.test) continue;
    const key = m.channel + " +" + callingCode(m.to);
    const perPart = m.channel === "mms" ? Number(m.priceUsd) : Number(m.priceUsd) / Math.max(m.segments || 1, 1);
    const known = priced.get(key);
    if (!known || (m.updatedAt || "") > known.at) priced.set(key, {perPart, at: m.updatedAt || "", id: m.id});
  }
  checkBatch();
}
function money(amount) { return "$" + amount.toFixed(amount >= 1 ? 2 : 5); }
function costOf(good) {
  if (who.state === "known" && who.test) return "nothing: a test key sends nothing, so nothing is charged.";
  if (!priced) return "price unknown (this key cannot read the stage's messages, whose recorded prices are the only ones this page knows).";
  let total = 0, unknownRows = 0;
  const used = new Map(), unknownCodes = new Set();
  for (const row of good) {
    const code = row.item.to.startsWith("+") ? "+" + callingCode(row.item.to) : null;
    const price = code && priced.get((row.mms ? "mms" : "sms") + " " + code);
    if (!price) { unknownRows++; unknownCodes.add(code ? (row.mms ? "MMS to " : "SMS to ") + code : "national numbers"); continue; }
    total += price.perPart * (row.mms ? 1 : row.parts);
    used.set((row.mms ? "MMS to " : "SMS to ") + code, price);
  }
  const sources = [...used].map(([what, p]) => what + " numbers, " + money(p.perPart) +
    (what.startsWith("MMS") ? " a message" : " a part") + " (message " + p.id + ")").join("; ");
  if (!used.size) return "unknown, since no earlier message of this stage has a recorded price for " +
    [...unknownCodes].join(" or ") + ".";
  return "about " + money(total) + (unknownRows ? " for the rows whose price is known, and price unknown for " +
    plural(unknownRows, "row") + " (" + [...unknownCodes].join(", ") + ")" : "") +
    ". Source: the price AWS recorded for this stage's latest " + sources + ". An estimate, not a quote.";
}

function li(text) { const item = document.createElement("li"); item.textContent = text; return item; }
function para(text, id) { const p = document.createElement("p"); p.textContent = text; if (id) p.id = id; return p; }
let batchRows = [];  // the rows that will be sent, in the order of the request's `messages`
function checkBatch() {
  const t = batchTemplate();
  const rows = parseCsv($("batchInput").value);
  const {good, bad, problems} = t ? checkTemplateRows(rows, t) : checkPlainRows(rows);
  for (const row of good) {
    const s = segment(row.text || "");
    row.parts = row.mms ? 1 : s.segments; row.encoding = row.mms ? "MMS" : s.encoding;
  }
  const box = $("batchCheck");
  box.replaceChildren();
  for (const problem of problems) box.append(Object.assign(para(problem), {className: "field-error"}));
  if (rows.length) {
    box.append(para(plural(good.length, "message") + " will be sent" +
      (bad.length ? "; " + plural(bad.length, "row") + " will be left out:" : ".")));
    if (bad.length) {
      const ul = document.createElement("ul"); ul.className = "rejected"; ul.id = "batchRejected";
      for (const b of bad) ul.append(li("Line " + b.line + ": " + b.why));
      box.append(ul);
    }
  }
  if (good.length) {
    const heading = para(good.length > 3 ? "The first three, as they will go:" : "As they will go:", "batchPreviewTitle");
    const ol = document.createElement("ol"); ol.id = "batchPreview"; ol.className = "preview";
    ol.setAttribute("aria-labelledby", "batchPreviewTitle");
    for (const row of good.slice(0, 3)) {
      const item = li("");
      const to = document.createElement("span"); to.className = "to";
      to.textContent = "Line " + row.line + " · " + mask(row.item.to) + (row.item.country ? " (" + row.item.country + ")" : "") +
        " · " + (row.mms ? "MMS" : plural(row.parts, "segment") + ", " + row.encoding);
      const text = document.createElement("span"); text.className = "text"; text.textContent = row.text || "(media only)";
      item.append(to, text);
      ol.append(item);
    }
    const sms = good.filter((r) => !r.mms);
    const parts = sms.reduce((sum, r) => sum + r.parts, 0);
    const ucs2 = sms.filter((r) => r.encoding === "UCS-2").length;
    box.append(heading, ol,
      para("In all: " + plural(parts, "segment") + " for " + sms.length + " SMS" +
        (ucs2 ? " (" + ucs2 + " in UCS-2, whose parts hold 67 characters)" : "") +
        (good.length > sms.length ? ", and " + (good.length - sms.length) + " MMS" : "") + ".", "batchTotals"),
      para("Cost: " + costOf(good), "batchCost"),
      Object.assign(para("The service checks each number against its country's numbering plan, the stage's allowed " +
        "countries and its opt-out list when the batch is sent; a row it refuses is listed then, by line."), {className: "hint"}));
  }
  batchRows = good;
  const ready = good.length && !problems.length;
  $("batchSend").disabled = batchInFlight || !ready;
  $("batchSend").textContent = ready ? "Send " + plural(good.length, "message") : "Send batch";
  return ready ? good : [];
}
function chooseBatchTemplate() {
  const t = batchTemplate();
  clearError("batchTemplate");
  $("batchBodyBox").hidden = !!t;
  $("batchColumns").textContent = t ? "The first line names the columns: to (or phone number), country (optional, for " +
    "national numbers)" + t.placeholders.map((n) => ", " + n).join("") + "." : "Columns: to,body[,mediaUrl]";
  $("batchInput").placeholder = t ? ["to", ...t.placeholders].join(",") : "+14255550123,Your order has shipped";
  checkBatch();
}
let batchInFlight = false, batchFollowing = 0;
$("batchTemplate").addEventListener("change", chooseBatchTemplate);
// New rows start a new batch: what the last one came to goes once it is over. A batch still on its way, or waiting
// for its time, keeps its progress in view.
function newBatchInput() {
  const progress = $("batchProgress");
  if (batchInFlight || ["running", "scheduled", "error"].includes(progress.dataset.state)) return;
  progress.replaceChildren();
  delete progress.dataset.state; delete progress.dataset.batch;
  $("batchOutcome").textContent = "";
}
$("batchInput").addEventListener("input", () => { clearError("batchInput"); newBatchInput(); checkBatch(); });
$("batchBody").addEventListener("input", checkBatch);
$("batchFile").addEventListener("change", async () => {
  const f = $("batchFile").files[0];
  if (!f) return;
  $("batchInput").value = await f.text();
  clearError("batchInput");
  newBatchInput();
  checkBatch();
});
const BATCH_FIELD_OF = {templateId: "batchTemplate", templateVersion: "batchTemplate", messages: "batchInput",
  sendAt: "batchSendAt", validityPeriod: "batchValidity", maxPriceUsd: "batchMaxPrice", apiKey: "apiKey"};
let batchLimitFields = [];
$("batch").addEventListener("submit", async (event) => {
  event.preventDefault();
  if (batchInFlight) return;
  for (const id of ["batchTemplate", "batchInput", ...batchLimitFields]) clearError(id);
  const rows = checkBatch();
  if (!rows.length) return;
  const progress = $("batchProgress");
  const t = batchTemplate();
  let request;
  try { request = {messages: rows.map((r) => r.item), ...limitsOf("batch")}; }
  catch (err) { showError(err.field, err.message, true); progress.textContent = "Batch not sent: see the highlighted field."; return; }
  if (t) Object.assign(request, {templateId: t.id, templateVersion: t.version});
  batchInFlight = true; $("batchSend").disabled = true; $("batchCancel").hidden = true;
  batchFollowing++;
  $("batchOutcome").textContent = "";
  progress.textContent = "Submitting " + plural(rows.length, "message") + "…";
  try {
    const batch = await call("POST", "batches", request, newKey());
    const refused = (batch.rejected || []).map((r) => "line " + (rows[r.index] ? rows[r.index].line : "?") + " (" + readable(r.error).message + ")");
    let text = (request.sendAt ? "Batch scheduled for " + localTime(request.sendAt) + ": " : "Batch accepted: ") +
      batch.accepted + (request.sendAt ? " to go" : " queued");
    if (refused.length) text += "; refused by the service: " + refused.join(", ");
    progress.textContent = text;
    progress.dataset.batch = batch.id;
    $("batchInput").value = ""; $("batchFile").value = ""; resetLimits("batch"); checkBatch();
    if (may(READ)) followBatch(batch.id, text, request.sendAt || null);
    else progress.textContent = text + ". This key cannot read batches (it lacks " + READ + "), so the page cannot follow its progress.";
  } catch (err) {
    if (err instanceof ApiError && BATCH_FIELD_OF[err.field]) {
      if (err.field === "apiKey") refusedKey(err);
      showError(BATCH_FIELD_OF[err.field], err.message, true);
      progress.textContent = "Batch not sent: see the highlighted field.";
    } else {
      progress.textContent = "Batch not sent: " + err.message;
    }
  } finally {
    batchInFlight = false; checkBatch();
  }
});
// Follows a batch to done: each second while it is on its way, then at its time while it waits for it; never
// while the tab is hidden.
let followed = null;  // the batch followed last: {id, intro, sendAt}
async function followBatch(id, intro, sendAt) {
  const mine = ++batchFollowing;
  followed = {id, intro, sendAt};
  const progress = $("batchProgress");
  const started = Date.now();
  while (mine === batchFollowing && Date.now() - started < 30 * 60 * 1000) {
    if (document.hidden) await visible();
    let b;
    try { b = await call("GET", "batches/" + encodeURIComponent(id)); }
    catch (err) { progress.dataset.state = "error"; await pause(2000); continue; }
    if (mine !== batchFollowing) return;
    showBatch(b, intro);
    if (b.done) { if (reading()) refresh(); for (const hook of onFinal) hook(); return; }
    const waiting = b.scheduled && !b.queued && !b.sent;
    await pause(waiting && sendAt ? Math.max(1000, Math.min(Date.parse(sendAt) - Date.now() + 2000, 30000)) : 1000);
  }
}
function showBatch(b, intro) {
  const progress = $("batchProgress");
  const total = b.size - (b.rejected || 0);
  const final = total - (b.queued || 0) - (b.sent || 0) - (b.scheduled || 0);
  const counts = ["scheduled", "queued", "sent", "delivered", "failed", "unknown", "canceled", "validated"]
    .filter((s) => b[s]).map((s) => s + " " + b[s]).join(", ");
  const bar = document.createElement("progress");
  bar.max = Math.max(total, 1); bar.value = final;
  bar.setAttribute("aria-label", "Batch progress");
  const p = para((b.done ? "Batch done: " : b.scheduled && !b.queued && !b.sent ? "Batch waiting for its time: " :
    "Batch in progress: ") + final + " of " + total + " final" + (counts ? " (" + counts + ")" : "") + ".");
  progress.dataset.state = b.done ? "done" : b.scheduled && !b.queued && !b.sent ? "scheduled" : "running";
  progress.replaceChildren(para(intro), bar, p);
  $("batchCancel").hidden = !(b.scheduled && may(SEND));
  $("batchCancel").dataset.batch = b.id;
}
// A refused cancel says why on a line of its own (the batch's progress is drawn anew on every poll, which would
// take the reason away), and the progress is read again at once: it shows what became of the batch.
$("batchCancel").addEventListener("click", async () => {
  const id = $("batchCancel").dataset.batch;
  $("batchCancel").disabled = true;
  $("batchOutcome").textContent = "";
  try {
    const b = await call("POST", "batches/" + encodeURIComponent(id) + "/cancel", undefined, newKey());
    batchFollowing++;
    showBatch(b, "Batch canceled: " + plural(b.canceled || 0, "message") + " will not be sent.");
    if (reading()) refresh();
  } catch (err) {
    if (err instanceof ApiError && err.field === "apiKey") refusedKey(err);
    $("batchOutcome").textContent = "Not canceled: " + err.message;
    if (followed && followed.id === id && may(READ)) followBatch(id, followed.intro, followed.sendAt);
    if (reading()) refresh();
  } finally {
    $("batchCancel").disabled = false;
  }
});
onKey.push(() => { if (reading()) { pricedFor = null; loadPrices(); } else { priced = null; checkBatch(); } });
