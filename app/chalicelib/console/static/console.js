"use strict";
// The API is wherever this page is: "/" under `make dev`, "/api/" on the execute-api domain (the
// stage), a base path on a custom domain. So every call is a path relative to the page's folder,
// never one that starts with "/". A page opened as ".../api" (no trailing slash) is that folder too.
const BASE = new URL(location.href);
BASE.search = BASE.hash = "";
if (!BASE.pathname.endsWith("/")) BASE.pathname += "/";
function apiUrl(path) {
  if (path.startsWith("/")) throw new Error("API paths are relative to the page: " + path);
  return new URL(path, BASE);
}

const $ = (id) => document.getElementById(id);
const FINAL = new Set(["delivered", "failed", "unknown", "validated"]);
const MAX_BODY = 1600;
// The same limits as app/chalicelib/media.py MAX_BYTES.
const KB = 1024, MB = 1024 * 1024;
const MEDIA_LIMITS = {"image/gif": 2 * MB, "image/jpeg": 2 * MB, "image/png": 2 * MB};
const OTHER_LIMIT = 600 * KB;
const OTHER_TYPES = ["image/tiff", "video/mp4", "video/3gpp", "video/quicktime", "audio/mpeg", "audio/mp4",
  "audio/amr", "audio/3gpp", "text/vcard", "text/x-vcard", "application/pdf"];
for (const t of OTHER_TYPES) MEDIA_LIMITS[t] = MEDIA_LIMITS[t] || OTHER_LIMIT;

// ---- the API key: in this tab's sessionStorage only -------------------------------------------
// The key goes out only in `Authorization: Bearer <key>`, and only when one was entered (under `make dev`
// a request without a key acts with every scope). It is never written to localStorage, the URL or the log.
const KEY_STORE = "sms-console-api-key";
$("apiKey").value = sessionStorage.getItem(KEY_STORE) || "";
let keyTimer = null;
$("apiKey").addEventListener("input", () => {
  if ($("apiKey").value) sessionStorage.setItem(KEY_STORE, $("apiKey").value);
  else sessionStorage.removeItem(KEY_STORE);
  clearError("apiKey");
  clearNewKey();
  clearTimeout(keyTimer);
  keyTimer = setTimeout(checkKey, 300);  // once typing pauses, not per character
});

function newKey() {
  if (window.crypto && crypto.randomUUID) return crypto.randomUUID();
  return Date.now().toString(36) + "-" + Math.random().toString(36).slice(2) + Math.random().toString(36).slice(2);
}

class ApiError extends Error {
  constructor(status, error) {
    super(error.message || ("The service answered " + status + "."));
    this.status = status; this.code = error.code; this.field = error.field;
  }
}
class Unreachable extends Error {}

async function call(method, path, body, idempotencyKey) {
  const h = {};
  if (body) h["Content-Type"] = "application/json";
  if ($("apiKey").value) h["Authorization"] = "Bearer " + $("apiKey").value;
  if (idempotencyKey) h["Idempotency-Key"] = idempotencyKey;
  let response;
  try {
    response = await fetch(apiUrl(path), {method, headers: h, body: body ? JSON.stringify(body) : undefined});
  } catch (err) {
    throw new Unreachable("The service cannot be reached. Check your connection and try again.");
  }
  let data = {};
  try { data = await response.json(); } catch (err) { data = {}; }
  if (!response.ok) {
    if (response.status === 401) {  // no key, or one that is unknown, revoked or expired: the key field's error
      throw new ApiError(401, {code: "Unauthorized", field: "apiKey", message: $("apiKey").value ?
        "This key was refused: it is not a key of this stage, or it was revoked or has expired." :
        "This stage needs an API key: enter one."});
    }
    if (data.error) throw new ApiError(response.status, data.error);
    if (response.status === 403) {
      throw new ApiError(403, {code: "InsufficientScope", message: "This key may not do this."});
    }
    if (response.status >= 500) throw new Unreachable("The service is not answering properly (" + response.status + "). Try again shortly.");
    throw new ApiError(response.status, {message: data.message || ("The service answered " + response.status + ".")});
  }
  return data;
}

// ---- what the key may do: GET keys/current ---------------------------------------------------------
// The same scopes as app/chalicelib/keys/scopes.py SCOPES, in its order.
const SEND = "messages:send", READ = "messages:read", KEYS = "keys:manage";
const SCOPES = [
  [SEND, "send SMS, MMS, media and batches"],
  [READ, "read messages and batches"],
  ["templates:manage", "create, change and archive templates"],
  ["opt-outs:read", "read the opt-out list"],
  ["opt-outs:write", "add numbers to the opt-out list and remove them"],
  ["webhooks:manage", "create, read, rotate and delete webhooks"],
  [KEYS, "create, list and revoke keys"],
];
const SCOPE_ORDER = SCOPES.map(([scope]) => scope);
// state: "checking" (GET keys/current on its way), "known" (its answer), "refused" (401), "unknown" (the
// service did not answer: the page offers everything and lets the API decide).
let who = {state: "checking", scopes: []};
let checks = 0, listedFor = null;
function known(scope) { return who.state === "known" && who.scopes.includes(scope); }
function may(scope) { return who.state === "unknown" || known(scope); }
function reading() { return (who.state === "known" || who.state === "unknown") && may(READ); }
function ordered(scopes) { return SCOPE_ORDER.filter((s) => scopes.includes(s)); }
async function checkKey() {
  const mine = ++checks;
  who = {state: "checking", scopes: []};
  $("keyInfo").textContent = "Checking the key…";
  let state;
  try {
    const key = await call("GET", "keys/current");
    state = {state: "known", id: key.id, name: key.name, prefix: key.prefix, test: !!key.test,
             scopes: ordered(key.scopes || [])};
  } catch (err) {
    if (mine !== checks) return;
    if (err instanceof ApiError && err.field === "apiKey") {
      state = {state: "refused", scopes: []};
      showError("apiKey", err.message, false);
    } else {
      state = {state: "unknown", scopes: [], why: err.message};
    }
  }
  if (mine !== checks) return;  // the key changed meanwhile: that check decides
  if (state.state !== "refused") clearError("apiKey");
  who = state;
  if (listedFor !== $("apiKey").value) {  // another key sees other messages (a test key only test ones)
    listedFor = $("apiKey").value;
    firstPage = []; older = []; olderNext = null; firstNext = null; byId.clear(); lastOk = null;
    $("updated").textContent = ""; render();
  }
  applyKey();
  if (reading()) refresh();
  if (keysShown()) loadKeys();
}
function refusedKey(err) {  // a 401 after the check: the key was revoked or expired meanwhile
  if (who.state === "refused") return;
  who = {state: "refused", scopes: []};
  showError("apiKey", err.message, false);
  applyKey();
}
function gate(parts, denied, scope, what) {
  const ok = may(scope);
  for (const part of parts) part.hidden = !ok;
  denied.hidden = ok;
  denied.textContent = ok ? "" : who.state === "refused" ?
    "The key was refused, so this page cannot " + what + ". Enter a valid key for this stage." :
    "This key cannot " + what + ": it lacks " + scope + ".";
}
function applyKey() {
  if (who.state === "checking") return;
  if (who.state === "known") {
    $("keyInfo").textContent = "Key in use: " + who.name + (who.prefix ? " · " + who.prefix : "") + " · " +
      (who.test ? "test" : "live") + " · scopes: " + (who.scopes.join(", ") || "none");
  } else if (who.state === "unknown") {
    $("keyInfo").textContent = "The key could not be checked: " + who.why;
  } else {
    $("keyInfo").textContent = "";
  }
  $("testBadge").hidden = !(who.state === "known" && who.test);
  gate([$("send")], $("sendDenied"), SEND, "send");
  gate([$("batch"), $("batchProgress")], $("batchDenied"), SEND, "send a batch");
  gate([$("historyBody")], $("historyDenied"), READ, "read messages");
  $("threadWrite").hidden = !may(SEND);
  $("views").hidden = !known(KEYS);
  if (!known(KEYS) && keysShown()) showView("messages");
  if (keysShown()) applyKeyForm();
  if (!reading()) setNotice("");
}

// ---- field errors --------------------------------------------------------------------------
const FIELD_OF = {to: "to", country: "to", body: "body", type: "type", mediaUrl: "file", contentType: "file",
  size: "file", file: "file", apiKey: "apiKey"};
// A group of checkboxes (a fieldset) is marked on its boxes: aria-invalid belongs to the controls.
function controlsOf(id) {
  const input = $(id);
  return input.tagName === "FIELDSET" ? [...input.querySelectorAll("input")] : [input];
}
function showError(id, message, focus) {
  const box = $(id + "-error");
  box.textContent = message; box.hidden = false;
  for (const input of controlsOf(id)) {
    input.setAttribute("aria-invalid", "true");
    const described = (input.getAttribute("aria-describedby") || "").split(" ").filter(Boolean);
    if (!described.includes(id + "-error")) input.setAttribute("aria-describedby", [...described, id + "-error"].join(" "));
  }
  if (focus) { const first = controlsOf(id).find((c) => !c.disabled); if (first) first.focus(); }
}
function clearError(id) {
  $(id + "-error").hidden = true; $(id + "-error").textContent = "";
  for (const input of controlsOf(id)) input.removeAttribute("aria-invalid");
}
function clearErrors() { for (const id of ["to", "body", "type", "file", "apiKey"]) clearError(id); }
for (const id of ["to", "body", "type"]) $(id).addEventListener("input", () => clearError(id));

// ---- the counter: the same rules as app/chalicelib/segments.py ------------------------------
const GSM7_BASIC = new Set("@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?" +
  "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà");
const GSM7_EXTENSION = new Set("^{}\\[~]|€\f");
function pack(units, single, multi) {
  if (units.reduce((a, b) => a + b, 0) <= single) return 1;
  let parts = 1, used = 0;
  for (const size of units) {
    if (used + size > multi) { parts += 1; used = 0; }
    used += size;
  }
  return parts;
}
function segment(body) {
  const chars = Array.from(body);  // code points, as Python iterates a str
  if (!chars.length) return {encoding: "GSM-7", segments: 1, units: 0};
  if (chars.every((c) => GSM7_BASIC.has(c) || GSM7_EXTENSION.has(c))) {
    const units = chars.map((c) => (GSM7_EXTENSION.has(c) ? 2 : 1));
    return {encoding: "GSM-7", segments: pack(units, 160, 153), units: units.reduce((a, b) => a + b, 0)};
  }
  const units = chars.map((c) => (c.codePointAt(0) > 0xFFFF ? 2 : 1));
  return {encoding: "UCS-2", segments: pack(units, 70, 67), units: units.reduce((a, b) => a + b, 0)};
}
function bodyLength(body) { return Array.from(body).length; }
function updateCounter() {
  const body = $("body").value, length = bodyLength(body), counter = $("counter");
  if (file()) {
    counter.textContent = length + " / " + MAX_BODY + " characters · MMS: one message with the media";
  } else {
    const s = segment(body);
    counter.textContent = length + " / " + MAX_BODY + " characters · " + s.segments + " segment" +
      (s.segments === 1 ? "" : "s") + " · " + s.encoding +
      (s.encoding === "UCS-2" ? " (a character outside GSM-7 makes every part hold 67)" : "") +
      (s.encoding === "GSM-7" && s.units > length ? " (" + (s.units - length) + " extension character" + (s.units - length === 1 ? "" : "s") + " count twice)" : "");
  }
  const over = length > MAX_BODY;
  counter.classList.toggle("over", over);
  if (over) counter.textContent += " — " + (length - MAX_BODY) + " over the limit: shorten the message to send it.";
}
$("body").addEventListener("input", updateCounter);

// ---- media -----------------------------------------------------------------------------------
let previewUrl = null;
function file() { return $("file").files[0] || null; }
function humanSize(bytes) {
  if (bytes < KB) return bytes + " bytes";
  if (bytes < MB) return (bytes / KB).toFixed(bytes < 10 * KB ? 1 : 0) + " KB";
  return (bytes / MB).toFixed(1) + " MB";
}
function mediaProblem(f) {
  const type = (f.type || "").toLowerCase();
  const limit = MEDIA_LIMITS[type];
  if (!limit) return "MMS cannot carry " + (type || "this kind of file") + ". Choose a PNG, JPEG or GIF picture (or another type MMS supports).";
  if (f.size === 0) return "The file is empty.";
  if (f.size > limit) return "This file is " + humanSize(f.size) + "; MMS allows " + humanSize(limit) + " for " + type + ".";
  return null;
}
function updateMedia() {
  const f = file();
  clearError("file");
  if (previewUrl) { URL.revokeObjectURL(previewUrl); previewUrl = null; }
  if (!f) {
    $("media").hidden = true;
    $("preview").removeAttribute("src");
    $("channel").textContent = "Will go as SMS";
  } else {
    $("media").hidden = false;
    $("mediaInfo").textContent = f.name + " · " + (f.type || "unknown type") + " · " + humanSize(f.size);
    if ((f.type || "").startsWith("image/")) { previewUrl = URL.createObjectURL(f); $("preview").src = previewUrl; $("preview").hidden = false; }
    else { $("preview").hidden = true; }
    $("channel").textContent = "Will go as MMS, with " + f.name;
    const problem = mediaProblem(f);
    if (problem) showError("file", problem, false);
  }
  updateCounter();
}
$("file").addEventListener("change", updateMedia);
function removeMedia() { $("file").value = ""; updateMedia(); }
$("removeMedia").addEventListener("click", () => { removeMedia(); $("file").focus(); });

async function upload(f, key) {
  const media = await call("POST", "media", {contentType: f.type, size: f.size}, key + "-media");
  const form = new FormData();
  for (const [k, v] of Object.entries(media.upload.fields)) form.append(k, v);
  form.append("file", f);
  // The presigned upload goes to S3 itself (an absolute URL), not to the API.
  let response;
  try { response = await fetch(media.upload.url, {method: "POST", body: form}); }
  catch (err) { throw new Unreachable("The media upload could not reach storage. Try again."); }
  if (!response.ok) throw new ApiError(response.status, {message: "The media upload was refused (" + response.status + ").", field: "file"});
  return media.mediaUrl;
}

// ---- send exactly once -------------------------------------------------------------------------
let inFlight = false;
let pending = null;  // {fingerprint, key}: a retry of the same message reuses its Idempotency-Key
$("send").addEventListener("submit", async (event) => {
  event.preventDefault();
  if (inFlight) return;
  clearErrors();
  const to = $("to").value.trim(), body = $("body").value, type = $("type").value, f = file();
  if (!to) return showError("to", "Enter the number to send to, in E.164 form like +14255550123.", true);
  if (!f && !body) return showError("body", "Write a message, or attach media to send an MMS.", true);
  if (bodyLength(body) > MAX_BODY) return showError("body", "The message is " + bodyLength(body) + " characters; the limit is " + MAX_BODY + ". Shorten it to send.", true);
  if (f && mediaProblem(f)) return showError("file", mediaProblem(f), true);

  const fingerprint = JSON.stringify([to, body, type, f && [f.name, f.size, f.lastModified]]);
  if (!pending || pending.fingerprint !== fingerprint) pending = {fingerprint, key: newKey()};
  inFlight = true;
  $("sendButton").disabled = true;
  $("result").textContent = f ? "Uploading the media and sending…" : "Sending…";
  try {
    let message;
    if (f) {
      const mediaUrl = await upload(f, pending.key);
      message = await call("POST", "mms", {to, body: body || undefined, mediaUrl}, pending.key);
    } else {
      message = await call("POST", "sms", {to, body, type}, pending.key);
    }
    pending = null;
    $("body").value = "";
    removeMedia();
    follow(message);
  } catch (err) {
    if (err instanceof ApiError) {
      pending = null;  // the API answered: a corrected message is a new send
      if (err.field === "apiKey") refusedKey(err);
      const field = FIELD_OF[err.field];
      if (field) { showError(field, err.message, true); $("result").textContent = "Not sent: see the highlighted field."; }
      else $("result").textContent = "Not sent: " + err.message;
    } else {
      $("result").textContent = "Not sent: " + err.message + " Sending again is safe: it will not send twice.";
    }
  } finally {
    inFlight = false;
    $("sendButton").disabled = false;
  }
  if (reading()) refresh();
});

// ---- live status of the message just sent ------------------------------------------------------
let following = 0;
function describe(m, waiting = true) {
  const parts = [(m.channel || "").toUpperCase() + " to " + m.to + ": " + m.status];
  if (m.status === "failed" || m.status === "unknown") {
    const reason = reasonOf(m);
    if (reason) parts[0] += " — " + reason;
  }
  if (m.segments) parts.push(m.segments + " segment" + (m.segments === 1 ? "" : "s") + (m.encoding ? " (" + m.encoding + ")" : ""));
  if (m.priceUsd != null) parts.push("price $" + Number(m.priceUsd).toFixed(5));
  if (waiting && !FINAL.has(m.status)) parts.push("waiting for the delivery receipt…");
  return parts.join(" · ") + (waiting ? "" : ".");
}
function reasonOf(m) {
  if (m.error && m.error.message) return m.error.message;
  if (m.providerResponse) return m.providerResponse;
  if (m.status === "unknown") return "no delivery receipt came from the carrier";
  return "";
}
async function follow(message) {
  const mine = ++following;
  let m = message, delay = 1000;
  const started = Date.now();
  $("result").dataset.id = m.id;
  $("result").dataset.status = m.status;
  if (!may(READ)) {  // its status is GET messages/{id}, which needs messages:read
    $("result").textContent = "Accepted. " + describe(m, false) + " This key cannot read messages (it lacks " +
      READ + "), so the page cannot follow its status.";
    return;
  }
  $("result").textContent = "Accepted. " + describe(m);
  while (!FINAL.has(m.status) && mine === following && Date.now() - started < 30 * 60 * 1000) {
    await new Promise((r) => setTimeout(r, delay));
    delay = Math.min(delay * 1.5, 15000);
    try { m = await call("GET", "messages/" + encodeURIComponent(m.id)); }
    catch (err) {
      if (err instanceof Unreachable) { setNotice(err.message); continue; }
      if (err.field === "apiKey") refusedKey(err);
      break;
    }
    if (mine !== following) return;
    $("result").dataset.status = m.status;
    $("result").textContent = (FINAL.has(m.status) ? "Final. " : "Accepted. ") + describe(m);
  }
}

// ---- history -----------------------------------------------------------------------------------
let firstPage = [], older = [], olderNext = null, firstNext = null, lastOk = null;
const byId = new Map();
function mask(number) {
  if (!number || number.length < 8) return number || "";
  return number.slice(0, number.length - 7) + "•••" + number.slice(-4);
}
function localTime(iso) {
  const d = new Date(iso);
  return isNaN(d) ? (iso || "") : d.toLocaleString();
}
// A reply is the message a number sent us: the conversation is with its `from`; a sent message's is with its `to`.
function inbound(m) { return m.direction === "inbound"; }
function counterpart(m) { return inbound(m) ? m.from : m.to; }
function whenOf(m) { return (inbound(m) && m.receivedAt) || m.createdAt; }
function cell(text, label, cls) {
  const td = document.createElement("td");
  td.textContent = text ?? "";
  if (label) td.dataset.label = label;
  if (cls) td.className = cls;
  return td;
}
function render() {
  const seen = new Set(), rows = [];
  for (const m of [...firstPage, ...older]) {
    if (seen.has(m.id)) continue;
    seen.add(m.id); byId.set(m.id, m);
    const tr = document.createElement("tr");
    tr.dataset.id = m.id;
    tr.dataset.direction = inbound(m) ? "inbound" : "outbound";
    if (inbound(m)) tr.className = "inbound";
    const button = document.createElement("button");
    button.type = "button"; button.textContent = "Details";
    button.setAttribute("aria-label", "Details of the message " + (inbound(m) ? "from " : "to ") +
      mask(counterpart(m)) + " at " + localTime(whenOf(m)));
    button.addEventListener("click", () => showDetail(m.id));
    const action = document.createElement("td"); action.append(button);
    const number = cell("", "To / from");
    if (counterpart(m)) {
      const open = document.createElement("button");
      open.type = "button"; open.className = "number";
      open.textContent = (inbound(m) ? "from " : "") + mask(counterpart(m));
      open.setAttribute("aria-label", "Conversation with " + mask(counterpart(m)));
      open.addEventListener("click", () => openThread(counterpart(m)));
      number.append(open);
    }
    tr.append(cell(localTime(whenOf(m)), "Time"), number, cell(m.channel, "Channel"),
              cell(m.body, "Message", "body"), cell(m.segments, "Parts"), cell(m.status, "Status", m.status),
              cell(m.status === "failed" || m.status === "unknown" ? reasonOf(m) : "", "Reason"), action);
    rows.push(tr);
  }
  $("messages").replaceChildren(...rows);
  $("more").hidden = !(older.length ? olderNext : firstNext);
  if ($("thread").open) { for (const m of firstPage) keepInThread(m); renderThread(); }
}
function setNotice(text) { $("notice").textContent = text; $("notice").hidden = !text; }
async function refresh() {
  const mine = checks;
  try {
    const data = await call("GET", "messages?limit=20");
    if (mine !== checks) return;  // asked with another key: its check lists the messages again
    firstPage = data.messages; firstNext = data.next || null;
    lastOk = new Date();
    setNotice("");
    $("updated").textContent = "Updated " + lastOk.toLocaleTimeString() + ".";
    render();
  } catch (err) {
    if (mine !== checks) return;
    if (err instanceof ApiError && err.field === "apiKey") {
      refusedKey(err);
    } else if (err instanceof ApiError) {
      setNotice("The messages cannot be shown: " + err.message);
    } else {
      setNotice("The service cannot be reached" + (lastOk ? ". The list below is stale: last updated " + lastOk.toLocaleTimeString() + "." : ". No messages could be loaded yet."));
    }
  }
}
$("more").addEventListener("click", async () => {
  const next = older.length ? olderNext : firstNext;
  if (!next) return;
  $("more").disabled = true;
  try {
    const data = await call("GET", "messages?limit=20&next=" + encodeURIComponent(next));
    older = older.concat(data.messages); olderNext = data.next || null;
    render();
  } catch (err) { setNotice("Older messages could not be loaded: " + err.message); }
  finally { $("more").disabled = false; }
});
function showDetail(id) {
  const m = byId.get(id);
  if (!m) return;
  const list = $("detailList");
  list.replaceChildren();
  const repliedTo = m.inReplyTo && byId.get(m.inReplyTo);
  const fields = [["Id", m.id], ["Direction", inbound(m) ? "reply (inbound)" : "sent (outbound)"], ["From", m.from],
    ["To", m.to], ["Channel", m.channel], ["Status", m.status], ["Received", inbound(m) ? localTime(m.receivedAt) : ""],
    ["In reply to", m.inReplyTo ? (repliedTo ? "the message of " + localTime(repliedTo.createdAt) + " (" + m.inReplyTo + ")" : m.inReplyTo) : ""],
    ["Reason", reasonOf(m)], ["Message", m.body], ["Media", m.mediaUrl], ["Segments", m.segments],
    ["Encoding", m.encoding], ["Price (USD)", m.priceUsd], ["Provider id", m.providerMessageId],
    ["Created", localTime(m.createdAt)], ["Updated", localTime(m.updatedAt)], ["Dry run", m.dryRun ? "yes" : "no"]];
  for (const [name, value] of fields) {
    if (value == null || value === "") continue;
    const dt = document.createElement("dt"), dd = document.createElement("dd");
    dt.textContent = name; dd.textContent = String(value);
    list.append(dt, dd);
  }
  $("detail").showModal();
}

// ---- a number's conversation ------------------------------------------------------------------------
// The API lists every message, newest first: the thread is the messages with one number among the pages
// read so far, oldest first. It reads up to THREAD_PAGES pages of 100 at a time, then offers to read on.
const THREAD_PAGES = 5;
const thread = {number: null, messages: new Map(), next: null, scanned: 0, done: false, loading: false};
function keepInThread(m) {
  if (thread.number && counterpart(m) === thread.number) { thread.messages.set(m.id, m); byId.set(m.id, m); }
}
function renderThread() {
  const items = [...thread.messages.values()].sort((a, b) =>
    (whenOf(a) || "").localeCompare(whenOf(b) || "") || a.id.localeCompare(b.id));
  const list = items.map((m) => {
    const li = document.createElement("li");
    li.className = inbound(m) ? "inbound" : "outbound";
    li.dataset.id = m.id; li.dataset.direction = li.className;
    const text = document.createElement("p"); text.className = "text";
    text.textContent = m.body || (m.mediaUrl ? "(media)" : "");
    const meta = document.createElement("p"); meta.className = "meta";
    const answered = m.inReplyTo && thread.messages.get(m.inReplyTo);
    meta.textContent = (inbound(m) ? "Reply · " : "Sent · ") + localTime(whenOf(m)) + " · " + m.status +
      (answered ? " · answers your message of " + localTime(answered.createdAt) : "");
    li.append(text, meta);
    return li;
  });
  $("threadList").replaceChildren(...list);
  $("threadNote").textContent = (thread.loading ? "Reading the history… " : "") + items.length + " message" +
    (items.length === 1 ? "" : "s") + " with this number, oldest first" +
    (thread.done ? " (the whole history)." : ", in the latest " + thread.scanned + " messages.");
  $("threadMore").hidden = thread.done || thread.loading;
}
async function readThread() {
  if (thread.loading || thread.done) return;
  const number = thread.number;
  thread.loading = true; renderThread();
  try {
    for (let i = 0; i < THREAD_PAGES && !thread.done; i++) {
      const data = await call("GET", "messages?limit=100" + (thread.next ? "&next=" + encodeURIComponent(thread.next) : ""));
      if (thread.number !== number) return;
      for (const m of data.messages) keepInThread(m);
      thread.scanned += data.messages.length; thread.next = data.next || null; thread.done = !thread.next;
    }
  } catch (err) {
    $("threadNote").textContent = "The conversation could not be read: " + err.message;
    return;
  } finally {
    if (thread.number === number) thread.loading = false;
  }
  renderThread();
  const last = $("threadList").lastElementChild;
  if (last) last.scrollIntoView({block: "nearest"});
}
function openThread(number) {
  Object.assign(thread, {number, messages: new Map(), next: null, scanned: 0, done: false, loading: false});
  for (const m of byId.values()) keepInThread(m);
  $("threadTitle").textContent = "Conversation with " + mask(number);
  renderThread();
  $("thread").showModal();
  readThread();
}
$("threadMore").addEventListener("click", readThread);
$("thread").addEventListener("close", () => { thread.number = null; });
$("threadWrite").addEventListener("click", () => {
  $("to").value = thread.number || "";
  clearError("to");
  $("thread").close();
  $("body").focus();
});

// ---- batches -------------------------------------------------------------------------------------
function parseCsv(text) {
  const rows = []; let row = [], field = "", quoted = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (quoted) {
      if (c === '"' && text[i + 1] === '"') { field += '"'; i++; }
      else if (c === '"') quoted = false;
      else field += c;
    } else if (c === '"') quoted = true;
    else if (c === ",") { row.push(field); field = ""; }
    else if (c === "\n" || c === "\r") {
      if (c === "\r" && text[i + 1] === "\n") i++;
      row.push(field); rows.push(row); row = []; field = "";
    } else field += c;
  }
  if (field || row.length) { row.push(field); rows.push(row); }
  return rows.map((r, i) => ({line: i + 1, cells: r.map((x) => x.trim())})).filter((r) => r.cells.some(Boolean));
}
function checkBatch() {
  let rows = parseCsv($("batchInput").value);
  if (rows.length && rows[0].cells[0].toLowerCase() === "to") rows = rows.slice(1);
  const good = [], bad = [];
  for (const {line, cells} of rows) {
    const [to, body = "", mediaUrl = ""] = cells;
    const text = body || (cells.length === 1 ? $("batchBody").value : "");
    let why = null;
    if (!/^\+[1-9][0-9]{1,14}$/.test(to)) why = "“" + to + "” is not a number in E.164 form (like +14255550123)";
    else if (!text && !mediaUrl) why = "no message (give one in the row or in “Message for rows that give only a number”)";
    else if (bodyLength(text) > MAX_BODY) why = "the message is " + bodyLength(text) + " characters; the limit is " + MAX_BODY;
    else if (mediaUrl && !mediaUrl.startsWith("s3://")) why = "the media must be an s3:// address in the media bucket";
    if (why) bad.push({line, why});
    else good.push(mediaUrl ? {to, body: text || undefined, mediaUrl} : {to, body: text});
  }
  const box = $("batchCheck");
  box.replaceChildren();
  if (rows.length) {
    const p = document.createElement("p");
    p.textContent = good.length + " message" + (good.length === 1 ? "" : "s") + " will be sent" +
      (bad.length ? "; " + bad.length + " row" + (bad.length === 1 ? "" : "s") + " will be left out:" : ".");
    box.append(p);
    if (bad.length) {
      const ul = document.createElement("ul"); ul.className = "rejected"; ul.id = "batchRejected";
      for (const b of bad) { const li = document.createElement("li"); li.textContent = "Line " + b.line + ": " + b.why; ul.append(li); }
      box.append(ul);
    }
  }
  $("batchSend").disabled = batchInFlight || !good.length;
  $("batchSend").textContent = good.length ? "Send " + good.length + " message" + (good.length === 1 ? "" : "s") : "Send batch";
  return good;
}
let batchInFlight = false;
$("batchInput").addEventListener("input", checkBatch);
$("batchBody").addEventListener("input", checkBatch);
$("batchFile").addEventListener("change", async () => {
  const f = $("batchFile").files[0];
  if (!f) return;
  $("batchInput").value = await f.text();
  checkBatch();
});
$("batch").addEventListener("submit", async (event) => {
  event.preventDefault();
  if (batchInFlight) return;
  const messages = checkBatch();
  if (!messages.length) return;
  batchInFlight = true; $("batchSend").disabled = true;
  const progress = $("batchProgress");
  progress.textContent = "Submitting " + messages.length + " messages…";
  try {
    const batch = await call("POST", "batches", {messages}, newKey());
    let text = "Batch accepted: " + batch.accepted + " queued";
    if (batch.rejected && batch.rejected.length) {
      text += "; refused by the service: " + batch.rejected.map((r) => "row " + (r.index + 1) + " (" + r.error.message + ")").join(", ");
    }
    progress.textContent = text;
    $("batchInput").value = ""; $("batchFile").value = ""; checkBatch();
    if (may(READ)) await followBatch(batch.id, text);
    else progress.textContent = text + ". This key cannot read batches (it lacks " + READ + "), so the page cannot follow its progress.";
  } catch (err) {
    if (err instanceof ApiError && err.field === "apiKey") refusedKey(err);
    progress.textContent = "Batch not sent: " + err.message;
  } finally {
    batchInFlight = false; checkBatch();
  }
});
async function followBatch(id, intro) {
  const progress = $("batchProgress");
  const started = Date.now();
  while (Date.now() - started < 30 * 60 * 1000) {
    let b;
    try { b = await call("GET", "batches/" + encodeURIComponent(id)); }
    catch (err) { progress.dataset.state = "error"; await new Promise((r) => setTimeout(r, 2000)); continue; }
    const total = b.size - (b.rejected || 0);
    const final = total - (b.queued || 0) - (b.sent || 0);
    const counts = ["queued", "sent", "delivered", "failed", "unknown", "validated"]
      .filter((s) => b[s]).map((s) => s + " " + b[s]).join(", ");
    const bar = document.createElement("progress");
    bar.max = Math.max(total, 1); bar.value = final;
    bar.setAttribute("aria-label", "Batch progress");
    const p = document.createElement("p");
    p.textContent = (b.done ? "Batch done: " : "Batch in progress: ") + final + " of " + total + " final" + (counts ? " (" + counts + ")" : "") + ".";
    progress.dataset.state = b.done ? "done" : "running";
    const head = document.createElement("p"); head.textContent = intro;
    progress.replaceChildren(head, bar, p);
    if (b.done) { if (reading()) refresh(); return; }
    await new Promise((r) => setTimeout(r, 1000));
  }
}

// ---- the Keys panel (keys:manage) -------------------------------------------------------------------
function keysShown() { return !$("keysView").hidden; }
function showView(name) {
  const keys = name === "keys";
  $("keysView").hidden = !keys;
  $("messagesView").hidden = keys;
  $("showKeys").setAttribute("aria-pressed", String(keys));
  $("showMessages").setAttribute("aria-pressed", String(!keys));
  if (keys) { applyKeyForm(); loadKeys(); }
  else { clearNewKey(); $("keyStatus").textContent = ""; if (reading()) refresh(); }
}
$("showKeys").addEventListener("click", () => showView("keys"));
$("showMessages").addEventListener("click", () => showView("messages"));

function buildScopes() {
  const boxes = SCOPES.map(([scope, what]) => {
    const label = document.createElement("label");
    label.className = "check";
    const box = document.createElement("input");
    box.type = "checkbox"; box.value = scope; box.name = "scope";
    box.setAttribute("aria-describedby", "keyScopes-error");
    box.addEventListener("change", () => clearError("keyScopes"));
    const name = document.createElement("span"); name.className = "scope"; name.textContent = scope;
    const hint = document.createElement("span"); hint.className = "hint"; hint.textContent = " — " + what;
    const lacking = document.createElement("span"); lacking.className = "hint lacking"; lacking.hidden = true;
    lacking.textContent = " (the key in use lacks it)";
    const text = document.createElement("span");
    text.append(name, hint, lacking);
    label.append(box, text);
    return label;
  });
  $("scopeList").replaceChildren(...boxes);
}
function scopeBoxes() { return [...$("scopeList").querySelectorAll("input[type=checkbox]")]; }
// Only the scopes the key in use has may be ticked (the API refuses the others with 403); a test key
// makes only test keys.
function applyKeyForm() {
  for (const box of scopeBoxes()) {
    const lacks = !known(box.value);
    box.disabled = lacks;
    if (lacks) box.checked = false;
    box.closest("label").querySelector(".lacking").hidden = !lacks;
  }
  const testOnly = who.state === "known" && who.test;
  if (testOnly) $("keyTest").checked = true;
  $("keyTest").disabled = testOnly;
  $("keyTest-note").hidden = !testOnly;
}
for (const id of ["keyName", "keyTest", "keyExpires"]) $(id).addEventListener("input", () => clearError(id));

// The new key is on the page only until the panel is left, another key is made or the key in use changes.
function clearNewKey() {
  $("newKeyValue").value = "";
  $("newKeyName").textContent = "";
  $("copyStatus").textContent = "";
  $("newKey").hidden = true;
}
$("copyKey").addEventListener("click", async () => {
  const field = $("newKeyValue");
  try {
    if (!navigator.clipboard || !navigator.clipboard.writeText) throw new Error("no clipboard");
    await navigator.clipboard.writeText(field.value);
    $("copyStatus").textContent = "Copied to the clipboard.";
  } catch (err) {  // no clipboard access (an insecure origin, or permission refused): select it to copy by hand
    field.focus();
    field.select();
    $("copyStatus").textContent = "The key is selected: press Ctrl+C (⌘C on a Mac) to copy it.";
  }
});

// The start of the chosen day, the browser's time, as the API takes it (ISO 8601 in UTC).
function startOfDay(value) {
  const [y, m, d] = value.split("-").map(Number);
  const at = new Date(y, m - 1, d);
  return isNaN(at) ? null : at.toISOString().replace(/\.\d{3}Z$/, "Z");
}
const KEY_FIELD_OF = {name: "keyName", scopes: "keyScopes", test: "keyTest", expiresAt: "keyExpires"};
function clearKeyErrors() { for (const id of Object.values(KEY_FIELD_OF)) clearError(id); }
let keyPending = null;  // {fingerprint, key}: a retry after a lost answer reuses its Idempotency-Key
let keyInFlight = false;
$("keyForm").addEventListener("submit", async (event) => {
  event.preventDefault();
  if (keyInFlight) return;
  clearKeyErrors();
  clearNewKey();
  const name = $("keyName").value.trim();
  const scopes = scopeBoxes().filter((b) => b.checked && !b.disabled).map((b) => b.value);
  const test = $("keyTest").checked, expires = $("keyExpires").value;
  if (!name) return showError("keyName", "Give the key a name: say what it is for.", true);
  if (!scopes.length) return showError("keyScopes", "Choose at least one scope.", true);
  const request = {name, scopes, test};
  if (expires) {
    const at = startOfDay(expires);
    if (!at || new Date(at) <= new Date()) return showError("keyExpires", "Choose a day after today, or leave it empty.", true);
    request.expiresAt = at;
  }
  const fingerprint = JSON.stringify(request);
  if (!keyPending || keyPending.fingerprint !== fingerprint) keyPending = {fingerprint, key: newKey()};
  keyInFlight = true;
  $("createKey").disabled = true;
  $("keyStatus").textContent = "Creating the key…";
  try {
    const made = await call("POST", "keys", request, keyPending.key);
    keyPending = null;
    if (made.key) {
      $("newKeyValue").value = made.key;
      $("newKeyName").textContent = "“" + made.name + "” (" + (made.test ? "test" : "live") + ")";
      $("newKey").hidden = false;
      $("keyStatus").textContent = "Key “" + made.name + "” created. Copy it now: it will not be shown again.";
      $("keyForm").reset();
      applyKeyForm();
    } else {  // a replay of a request whose answer was lost: the key was shown to nobody
      $("keyStatus").textContent = "The key “" + made.name + "” was made by an earlier try whose answer was lost, " +
        "so it cannot be shown. Revoke it and make another.";
    }
  } catch (err) {
    if (err instanceof ApiError) {
      keyPending = null;
      if (err.field === "apiKey") refusedKey(err);
      const field = err.field === "apiKey" ? "apiKey" : KEY_FIELD_OF[err.field];
      if (field) { showError(field, err.message, true); $("keyStatus").textContent = "No key made: see the highlighted field."; }
      else $("keyStatus").textContent = "No key made: " + err.message;
    } else {
      $("keyStatus").textContent = "No key made: " + err.message + " Trying again is safe: it will not make two.";
    }
  } finally {
    keyInFlight = false;
    $("createKey").disabled = false;
  }
  loadKeys();
});

let keyList = [];
function keyState(k) {
  if (k.revokedAt) return "revoked";
  if (k.expiresAt && new Date(k.expiresAt) <= new Date()) return "expired";
  return "active";
}
function renderKeys() {
  const rows = keyList.map((k) => {
    const tr = document.createElement("tr");
    const state = keyState(k);
    tr.dataset.id = k.id; tr.dataset.state = state;
    if (state !== "active") tr.className = state;
    const name = cell(k.name, "Name");
    if (who.state === "known" && k.id === who.id) {
      const mark = document.createElement("span"); mark.className = "hint"; mark.textContent = " (in use here)";
      name.append(mark);
    }
    const status = cell(state === "revoked" ? "revoked " + localTime(k.revokedAt) : state, "Status", "key-" + state);
    const action = document.createElement("td");
    if (state !== "revoked") {
      const button = document.createElement("button");
      button.type = "button"; button.className = "revoke"; button.textContent = "Revoke";
      button.setAttribute("aria-label", "Revoke the key " + k.name + " (" + k.prefix + ")");
      button.addEventListener("click", () => askRevoke(k));
      action.append(button);
    }
    tr.append(name, cell(k.prefix, "Prefix", "prefix"), cell(ordered(k.scopes || []).join(", "), "Scopes"),
              cell(k.test ? "test" : "live", "Kind"), cell(localTime(k.createdAt), "Created"),
              cell(k.lastUsedAt ? localTime(k.lastUsedAt) : "never", "Last used"),
              cell(k.expiresAt ? localTime(k.expiresAt) : "never", "Expires"), status, action);
    return tr;
  });
  $("keyRows").replaceChildren(...rows);
}
let keyLoads = 0;
async function loadKeys() {
  if (!known(KEYS)) return;
  const mine = ++keyLoads;
  try {
    const data = await call("GET", "keys");
    if (mine !== keyLoads) return;
    keyList = (data.keys || []).slice().sort((a, b) =>
      (b.createdAt || "").localeCompare(a.createdAt || "") || b.id.localeCompare(a.id));
    renderKeys();
  } catch (err) {
    if (err instanceof ApiError && err.field === "apiKey") refusedKey(err);
    else $("keyStatus").textContent = "The keys cannot be listed: " + err.message;
  }
}

// Revoking asks first, in a dialog that names the key.
let revoking = null;
function askRevoke(k) {
  revoking = k;
  const own = who.state === "known" && k.id === who.id;
  $("revokeText").textContent = "Revoke the key “" + k.name + "” (" + k.prefix + ", " + (k.test ? "test" : "live") +
    ")? Whatever uses it is refused within a minute. This cannot be undone." +
    (own ? " It is the key this page is using: the page will be refused too." : "");
  $("revokeDialog").returnValue = "";
  $("revokeDialog").showModal();
}
$("revokeDialog").addEventListener("close", async () => {
  const k = revoking;
  revoking = null;
  if (!k || $("revokeDialog").returnValue !== "revoke") return;
  $("keyStatus").textContent = "Revoking “" + k.name + "”…";
  try {
    await call("DELETE", "keys/" + encodeURIComponent(k.id));
    $("keyStatus").textContent = "Key “" + k.name + "” revoked: it stops working within a minute.";
  } catch (err) {
    if (err instanceof ApiError && err.field === "apiKey") refusedKey(err);
    $("keyStatus").textContent = "Not revoked: " + err.message;
  }
  loadKeys();
});

updateMedia();
checkBatch();
buildScopes();
checkKey();
setInterval(() => {
  if (who.state === "unknown") { checkKey(); return; }  // the service was away: ask again what the key may do
  if (!reading() || keysShown()) return;
  refresh();
  if (lastOk && Date.now() - lastOk > 15000 && $("notice").hidden) setNotice("The list may be stale: last updated " + lastOk.toLocaleTimeString() + ".");
}, 3000);
