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
// A button disabled while its request runs loses the focus to the page's body, and a keyboard or screen reader
// user is thrown back to the top. busy() disables it; the function it answers enables it again and gives the
// focus back, if it had it and nothing else (a field with an error, the next step) has taken it meanwhile.
function busy(button) {
  const had = document.activeElement === button;
  button.disabled = true;
  return () => {
    button.disabled = false;
    if (had && (!document.activeElement || document.activeElement === document.body)) button.focus();
  };
}
// Statuses that do not change again (app/chalicelib/core/store.py FINAL); "scheduled" waits for its time.
const FINAL = new Set(["delivered", "failed", "unknown", "validated", "received", "canceled"]);
const SCHEDULED = "scheduled";
const MAX_BODY = 1600;
// The media MMS carries and the bytes each may have: app/chalicelib/sending/media.py MAX_BYTES (from the End
// User Messaging SMS user guide, "MMS file types, size and character limits").
const KB = 1024, MB = 1024 * 1024;
const MEDIA_LIMITS = {"image/gif": 2 * MB, "image/jpeg": 2 * MB, "image/png": 2 * MB};
const OTHER_TYPES = ["image/tiff", "audio/3gpp", "video/3gpp", "audio/3gpp2", "video/3gpp2", "audio/amr",
  "audio/mp4", "video/mp4", "audio/mpeg", "audio/ogg", "video/quicktime", "video/webm", "text/calendar",
  "text/vcard", "text/x-vcard", "application/pdf"];
for (const t of OTHER_TYPES) MEDIA_LIMITS[t] = 600 * KB;
// What a message body may not hold, and what makes one show (app/chalicelib/core/text.py).
const BODY_CONTROL = /[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]/;
const SHOWS = /[^\s\p{Z}\p{Cc}\p{Cf}\p{Cs}\u115f\u1160\u3164\uffa0\u2800]/u;

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
const pause = (ms) => new Promise((r) => setTimeout(r, ms));

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
    if (data.error) throw new ApiError(response.status, readable(data.error));
    if (response.status === 403) {
      throw new ApiError(403, {code: "InsufficientScope", message: "This key may not do this."});
    }
    if (response.status >= 500) throw new Unreachable("The service is not answering properly (" + response.status + "). Try again shortly.");
    throw new ApiError(response.status, {message: data.message || ("The service answered " + response.status + ".")});
  }
  return data;
}

// ---- countries: ISO codes a number may belong to, named in the reader's language ---------------------
// The regions the API's phone-number library knows (phonenumbers.SUPPORTED_REGIONS); the API takes `country`
// as one of these two-letter codes.
const REGIONS = ("AC AD AE AF AG AI AL AM AO AR AS AT AU AW AX AZ BA BB BD BE BF BG BH BI BJ BL BM BN BO BQ BR BS " +
  "BT BW BY BZ CA CC CD CF CG CH CI CK CL CM CN CO CR CU CV CW CX CY CZ DE DJ DK DM DO DZ EC EE EG EH ER ES ET FI " +
  "FJ FK FM FO FR GA GB GD GE GF GG GH GI GL GM GN GP GQ GR GT GU GW GY HK HN HR HT HU ID IE IL IM IN IO IQ IR IS " +
  "IT JE JM JO JP KE KG KH KI KM KN KP KR KW KY KZ LA LB LC LI LK LR LS LT LU LV LY MA MC MD ME MF MG MH MK ML MM " +
  "MN MO MP MQ MR MS MT MU MV MW MX MY MZ NA NC NE NF NG NI NL NO NP NR NU NZ OM PA PE PF PG PH PK PL PM PR PS PT " +
  "PW PY QA RE RO RS RU RW SA SB SC SD SE SG SH SI SJ SK SL SM SN SO SR SS ST SV SX SY SZ TA TC TD TG TH TJ TK TL " +
  "TM TN TO TR TT TV TW TZ UA UG US UY UZ VA VC VE VG VI VN VU WF WS XK YE YT ZA ZM ZW").split(" ");
let regionNames = null;
try { regionNames = new Intl.DisplayNames([navigator.language || "en", "en"], {type: "region"}); } catch (err) { regionNames = null; }
function countryName(code) {
  let name = null;
  try { name = regionNames && regionNames.of(code); } catch (err) { name = null; }
  return name && name !== code ? name : code;
}
function buildCountries() {
  const options = REGIONS.map((code) => [countryName(code), code]).sort((a, b) => a[0].localeCompare(b[0]));
  for (const [name, code] of options) {
    const option = document.createElement("option");
    option.value = code; option.textContent = name + " (" + code + ")";
    $("country").append(option);
  }
}
// The API's sentences name its own members and units: 'validityPeriod' in seconds, times in UTC, a price as a JSON
// string, a country by its ISO code. The page says them in its own terms: the labels and units of its form, times
// in the reader's zone ("“Send at” must lie in the future: 06/12/2026, 09:30:00 has passed"), a country by its
// name too ("Sending to Guernsey (GG) is not allowed on this stage."). The code and the field stay the API's.
const IN_FORM_TERMS = {
  InvalidValidityPeriod: "Give a time from 1 minute to 72 hours.",
  InvalidMaxPrice: "Give a price in US dollars above 0 and at most 9.99999, with a decimal point and at most 5 " +
    "decimals: 0.05, not 5.",
};
const FORM_LABELS = {sendAt: "“Send at”", validityPeriod: "“Give up if not sent within”",
  maxPriceUsd: "“Most to pay per message part”"};
const API_TIME = /\b\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?(?:Z|[+-]\d\d:\d\d)/g;
function readable(error) {
  if (!error.message) return error;
  let message = IN_FORM_TERMS[error.code] || error.message;
  if (error.code === "CountryNotAllowed") {
    message = message.replace(/\b([A-Z]{2})\b/, (code) => {
      const name = countryName(code);
      return name === code ? code : name + " (" + code + ")";
    });
  }
  message = message.replace(/'(sendAt|validityPeriod|maxPriceUsd)'/g, (quoted, name) => FORM_LABELS[name])
    .replace(API_TIME, (iso) => localTime(iso));
  return {...error, message};
}

// ---- what the key may do: GET keys/current ---------------------------------------------------------
// The same scopes as app/chalicelib/keys/scopes.py SCOPES, in its order.
const SEND = "messages:send", READ = "messages:read", TEMPLATES = "templates:manage", KEYS = "keys:manage";
const SCOPES = [
  [SEND, "send SMS, MMS, media and batches"],
  [READ, "read messages and batches"],
  [TEMPLATES, "create, change and archive templates"],
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
// What each panel does once the key is known (the panels' files add theirs).
const onKey = [];
// What each panel does when a message or batch the page follows has become final (the dashboard counts it).
const onFinal = [];
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
    $("updated").textContent = ""; $("outcome").textContent = ""; render();
  }
  applyKey();
  if (reading()) refresh();
  if (shown("keys")) loadKeys();
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
  denied.textContent = ok ? "" : who.state !== "refused" ? "This key cannot " + what + ": it lacks " + scope + "." :
    !$("apiKey").value.trim() ? "This stage needs an API key to " + what + ": enter one above." :
    "The key was refused, so this page cannot " + what + ". Enter a valid key for this stage.";
}
// The views, and the scope that opens each (the Keys view only for a key known to have keys:manage).
const VIEWS = {messages: "messagesView", templates: "templatesView", keys: "keysView"};
function viewOpen(name) {
  if (name === "keys") return known(KEYS);
  if (name === "templates") return who.state !== "refused" && who.state !== "checking" && may(SEND);
  return true;
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
  for (const name of Object.keys(VIEWS)) $("show" + name[0].toUpperCase() + name.slice(1)).hidden = !viewOpen(name);
  $("views").hidden = Object.keys(VIEWS).filter(viewOpen).length < 2;
  if (!viewOpen(current)) showView("messages");
  if (shown("keys")) applyKeyForm();
  for (const hook of onKey) hook();
  if (!reading()) { setNotice(""); schedulePoll(); }
}

// ---- views ------------------------------------------------------------------------------------------
let current = "messages";
function shown(name) { return current === name; }
function showView(name) {
  const before = current;
  current = name;
  for (const [view, id] of Object.entries(VIEWS)) {
    $(id).hidden = view !== name;
    $("show" + view[0].toUpperCase() + view.slice(1)).setAttribute("aria-pressed", String(view === name));
  }
  if (before === "keys" && name !== "keys") { clearNewKey(); $("keyStatus").textContent = ""; }
  if (name === "keys") { applyKeyForm(); loadKeys(); }
  if (name === "templates") loadTemplates();
  if (name === "messages" && reading()) { refresh(); loadDashboard(); }
  schedulePoll();
  scheduleDashboard();
}
for (const name of Object.keys(VIEWS)) {
  $("show" + name[0].toUpperCase() + name.slice(1)).addEventListener("click", () => showView(name));
}

// ---- field errors --------------------------------------------------------------------------------
// The send form's field for each field the API names in an error.
const FIELD_OF = {to: "to", country: "country", body: "body", type: "type", mediaUrl: "file", contentType: "file",
  size: "file", file: "file", apiKey: "apiKey", templateId: "template", templateVersion: "template",
  personalisation: "placeholders", sendAt: "sendAt", validityPeriod: "validity", maxPriceUsd: "maxPrice"};
// A group of checkboxes or inputs (a fieldset) is marked on its controls: aria-invalid belongs to them.
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
  const folded = $(id).closest("details");  // a field under a closed "Options" is opened to show its error
  if (folded) folded.open = true;
  if (focus) {
    const first = controlsOf(id).find((c) => !c.disabled) || $(id);
    if (first) first.focus();
  }
}
function clearError(id) {
  $(id + "-error").hidden = true; $(id + "-error").textContent = "";
  for (const input of controlsOf(id)) input.removeAttribute("aria-invalid");
}
function hasError(ids) { return ids.some((id) => !$(id + "-error").hidden); }

// ---- the options of a send or a batch: sendAt, validityPeriod, maxPriceUsd ----------------------------
// One copy of #limitsTemplate in each form, its ids given the form's prefix: "sendAt", "batchSendAt", ...
function idFor(prefix, name) { return prefix ? prefix + name : name[0].toLowerCase() + name.slice(1); }
function mountLimits(box) {
  const prefix = box.dataset.prefix;
  const copy = $("limitsTemplate").content.cloneNode(true);
  for (const el of copy.querySelectorAll("[data-id]")) { el.id = idFor(prefix, el.dataset.id); delete el.dataset.id; }
  for (const el of copy.querySelectorAll("[data-for]")) { el.htmlFor = idFor(prefix, el.dataset.for); delete el.dataset.for; }
  for (const el of copy.querySelectorAll("[data-describedby]")) {
    el.setAttribute("aria-describedby", idFor(prefix, el.dataset.describedby)); delete el.dataset.describedby;
  }
  for (const el of copy.querySelectorAll("[data-label]")) { el.setAttribute("aria-label", el.dataset.label); delete el.dataset.label; }
  for (const el of copy.querySelectorAll(".zone")) el.textContent = Intl.DateTimeFormat().resolvedOptions().timeZone || "this browser's time zone";
  box.append(copy);
  const ids = ["SendAt", "Validity", "MaxPrice"].map((n) => idFor(prefix, n));
  const update = () => { $(idFor(prefix, "OptionsSummary")).textContent = limitsSummary(prefix); };
  for (const id of [...ids, idFor(prefix, "ValidityUnit")]) {
    $(id).addEventListener("input", () => {
      clearError(ids.includes(id) ? id : idFor(prefix, "Validity"));
      update();
      settleResult();
    });
  }
  return ids;
}
// A local date and time ("2026-12-05T09:30", as a datetime-local input gives it) as ISO 8601 with this
// browser's offset for that moment: "2026-12-05T09:30:00+01:00".
function isoWithOffset(value) {
  const m = /^(\d{4})-(\d\d)-(\d\d)T(\d\d):(\d\d)(?::(\d\d))?$/.exec(value || "");
  if (!m) return null;
  const at = new Date(+m[1], +m[2] - 1, +m[3], +m[4], +m[5], +(m[6] || 0));
  if (isNaN(at)) return null;
  const offset = -at.getTimezoneOffset(), sign = offset >= 0 ? "+" : "-", abs = Math.abs(offset);
  const two = (n) => String(n).padStart(2, "0");
  return at.getFullYear() + "-" + two(at.getMonth() + 1) + "-" + two(at.getDate()) + "T" + two(at.getHours()) + ":" +
    two(at.getMinutes()) + ":" + two(at.getSeconds()) + sign + two(Math.floor(abs / 60)) + ":" + two(abs % 60);
}
// The request members of a form's options, as the API takes them. Nothing is judged here: the API's own answer
// (InvalidSendAt, InvalidValidityPeriod, InvalidMaxPrice, MaxPriceNotSupported) shows on the field. Only what
// cannot be put in the request at all is said at once (a time the browser cannot read).
function limitsOf(prefix) {
  const limits = {};
  const sendAt = $(idFor(prefix, "SendAt")).value;
  if (sendAt) {
    const at = isoWithOffset(sendAt);
    if (!at) throw new FieldProblem(idFor(prefix, "SendAt"), "Give a date and a time, or leave it empty to send now.");
    limits.sendAt = at;
  }
  const validity = $(idFor(prefix, "Validity")).value.trim();
  if (validity) {
    const amount = Number(validity);
    if (!isFinite(amount)) throw new FieldProblem(idFor(prefix, "Validity"), "Give a number of minutes or hours.");
    limits.validityPeriod = Math.round(amount * Number($(idFor(prefix, "ValidityUnit")).value) * 1000) / 1000;
  }
  const price = $(idFor(prefix, "MaxPrice")).value.trim();
  if (price) limits.maxPriceUsd = price;
  return limits;
}
class FieldProblem extends Error {
  constructor(field, message) { super(message); this.field = field; }
}
function limitsSummary(prefix) {
  const parts = [];
  const sendAt = $(idFor(prefix, "SendAt")).value, validity = $(idFor(prefix, "Validity")).value.trim();
  if (sendAt) { const at = new Date(sendAt); parts.push("send at " + (isNaN(at) ? sendAt : at.toLocaleString())); }
  if (validity) parts.push("give up after " + validity + " " + $(idFor(prefix, "ValidityUnit")).selectedOptions[0].textContent);
  if ($(idFor(prefix, "MaxPrice")).value.trim()) parts.push("at most $" + $(idFor(prefix, "MaxPrice")).value.trim() + " a part");
  return parts.length ? "(" + parts.join(", ") + ")" : "";
}
function resetLimits(prefix) {
  for (const n of ["SendAt", "Validity", "MaxPrice"]) { $(idFor(prefix, n)).value = ""; clearError(idFor(prefix, n)); }
  $(idFor(prefix, "OptionsSummary")).textContent = "";
}

// ---- the counter: the same rules as app/chalicelib/core/segments.py ------------------------------
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
function plural(n, word) { return n + " " + word + (n === 1 ? "" : "s"); }
// The text of the message the form would send: the body as written, or the chosen template rendered.
function bodyOfForm() { return sendTemplate() ? renderedBody() : $("body").value; }
function goesAsMms() { return !!file() || (sendTemplate() && sendTemplate().channel === "mms"); }
function updateCounter() {
  const body = bodyOfForm(), length = bodyLength(body), counter = $("counter");
  if (goesAsMms()) {
    counter.textContent = length + " / " + MAX_BODY + " characters · MMS: one message with the media";
  } else {
    const s = segment(body);
    counter.textContent = length + " / " + MAX_BODY + " characters · " + plural(s.segments, "segment") +
      " · " + s.encoding +
      (s.encoding === "UCS-2" ? " (a character outside GSM-7 makes every part hold 67)" : "") +
      (s.encoding === "GSM-7" && s.units > length ? " (" + plural(s.units - length, "extension character") + " count twice)" : "");
  }
  const over = length > MAX_BODY;
  counter.classList.toggle("over", over);
  if (over) counter.textContent += " — " + (length - MAX_BODY) + " over the limit: shorten the message to send it.";
}
$("body").addEventListener("input", updateCounter);

// ---- media -----------------------------------------------------------------------------------
let previewUrl = null;
function file() { return $("fileBox").hidden ? null : $("file").files[0] || null; }
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
  return contentProblems.get(f) || null;
}
// A picture's first bytes say what it is: PNG, JPEG and GIF each begin their own way. The browser names a file's
// type from its name, and the API sees only that type, so a file named .png that holds text or another format
// would go out as a PNG; it is refused here, before anything is uploaded.
const SIGNATURES = {"image/png": [[0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]], "image/jpeg": [[0xff, 0xd8, 0xff]],
  "image/gif": [[0x47, 0x49, 0x46, 0x38, 0x37, 0x61], [0x47, 0x49, 0x46, 0x38, 0x39, 0x61]]};
const FORMATS = {"image/png": "PNG", "image/jpeg": "JPEG", "image/gif": "GIF"};
const sniffed = new WeakMap(), contentProblems = new WeakMap();  // a file -> its check's promise, and what it found
function checkContent(f) {
  if (!sniffed.has(f)) {
    const type = (f.type || "").toLowerCase(), starts = SIGNATURES[type];
    sniffed.set(f, !starts ? Promise.resolve(null) : f.slice(0, 8).arrayBuffer().then((buffer) => {
      const head = new Uint8Array(buffer);
      if (starts.some((bytes) => bytes.every((b, i) => head[i] === b))) return null;
      const problem = f.name + " does not hold a " + FORMATS[type] + " picture (its content does not begin as a " +
        FORMATS[type] + " file's does): choose the picture itself.";
      contentProblems.set(f, problem);
      return problem;
    }, () => null));  // unreadable here: the upload will say so
  }
  return sniffed.get(f);
}
// One verdict on what the form would send, never two that disagree: a file MMS cannot carry is not "going".
function updateChannel() {
  const f = file(), template = sendTemplate();
  let verdict;
  if (f && mediaProblem(f)) verdict = "Cannot send " + f.name + " by MMS: remove it or choose another file.";
  else if (f) verdict = "Will go as MMS, with " + f.name;
  else if (template && template.channel === "mms") verdict = "Will go as MMS, with the template's media";
  else verdict = "Will go as SMS";
  const sendAt = $("sendAt") && $("sendAt").value;
  $("channel").textContent = verdict;
  $("channel").classList.toggle("blocked", !!(f && mediaProblem(f)));
  $("channel").dataset.when = sendAt ? "later" : "now";
}
function updateMedia() {
  const f = file();
  clearError("file");
  if (previewUrl) { URL.revokeObjectURL(previewUrl); previewUrl = null; }
  if (!f) {
    $("media").hidden = true;
    $("preview").removeAttribute("src");
  } else {
    $("media").hidden = false;
    $("mediaInfo").textContent = f.name + " · " + (f.type || "unknown type") + " · " + humanSize(f.size);
    const picture = (f.type || "").startsWith("image/") && MEDIA_LIMITS[f.type];
    if (picture) { previewUrl = URL.createObjectURL(f); $("preview").src = previewUrl; $("preview").hidden = false; }
    else { $("preview").hidden = true; }
    const problem = mediaProblem(f);
    if (problem) showError("file", problem, false);
    else checkContent(f).then((found) => { if (found && file() === f) { showError("file", found, false); updateChannel(); } });
  }
  updateChannel();
  updateCounter();
  settleResult();
}
$("file").setAttribute("accept", Object.keys(MEDIA_LIMITS).join(","));
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
const SEND_FIELDS = ["to", "country", "template", "placeholders", "body", "type", "file", "apiKey"];
let limitFields = [];
function clearErrors() { for (const id of [...SEND_FIELDS, ...limitFields]) clearError(id); }
const NOT_SENT_FIELD = "Not sent: see the highlighted field.";
// "Not sent: see the highlighted field" stays only while a field is still marked.
function settleResult() {
  if ($("result").textContent === NOT_SENT_FIELD && !hasError([...SEND_FIELDS, ...limitFields])) {
    $("result").textContent = "";
    delete $("result").dataset.status;
  }
}
for (const id of ["to", "country", "body", "type"]) {
  $(id).addEventListener("input", () => { clearError(id); settleResult(); });
}
function fieldFailed(err, fieldOf, status) {
  const field = fieldOf[err.field];
  if (field) { showError(field, err.message, true); status.textContent = NOT_SENT_FIELD; }
  else status.textContent = "Not sent: " + err.message;
}
let inFlight = false;
let pending = null;  // {fingerprint, key}: a retry of the same message reuses its Idempotency-Key
$("send").addEventListener("submit", async (event) => {
  event.preventDefault();
  if (inFlight) return;
  clearErrors();
  following++;  // the last message's "Final…" line is not this attempt's
  $("result").textContent = ""; delete $("result").dataset.status; delete $("result").dataset.id;
  const to = $("to").value.trim(), country = $("country").value, body = $("body").value, type = $("type").value;
  const f = file(), template = sendTemplate();
  const need = (id, message) => { showError(id, message, true); $("result").textContent = NOT_SENT_FIELD; };
  if (!to) return need("to", "Enter the number to send to, in E.164 form like +14255550123.");
  if (!to.startsWith("+") && !country) return need("country", "This number has no +country code: choose its country, or write it with + and its country code.");
  let request;
  try { request = {to, ...(country ? {country} : {}), ...limitsOf("")}; }
  catch (err) { return need(err.field, err.message); }
  if (template) {
    const missing = missingPlaceholders();
    if (missing.length) return need("placeholders", "Fill in " + missing.map((n) => "“" + n + "”").join(", ") + ".");
    Object.assign(request, {templateId: template.id, templateVersion: template.version, personalisation: personalisation()});
  } else {
    if (!f && !body) return need("body", "Write a message, or attach media to send an MMS.");
    if (bodyLength(body) > MAX_BODY) return need("body", "The message is " + bodyLength(body) + " characters; the limit is " + MAX_BODY + ". Shorten it to send.");
    if (body) request.body = body;
  }
  if (f) await checkContent(f);
  if (f && mediaProblem(f)) return need("file", mediaProblem(f));
  const mms = goesAsMms();
  if (!mms) request.type = type;

  const fingerprint = JSON.stringify([request, f && [f.name, f.size, f.lastModified]]);
  if (!pending || pending.fingerprint !== fingerprint) pending = {fingerprint, key: newKey()};
  inFlight = true;
  const ready = busy($("sendButton"));
  $("outcome").textContent = "";  // an earlier cancel's outcome: a new send is the news now
  $("result").textContent = f ? "Uploading the media and sending…" : "Sending…";
  try {
    if (f) request.mediaUrl = await upload(f, pending.key);
    const message = await call("POST", mms ? "mms" : "sms", request, pending.key);
    pending = null;
    $("body").value = "";
    clearPlaceholders();
    resetLimits("");
    removeMedia();
    follow(message);
  } catch (err) {
    if (err instanceof ApiError) {
      pending = null;  // the API answered: a corrected message is a new send
      if (err.field === "apiKey") refusedKey(err);
      fieldFailed(err, FIELD_OF, $("result"));
    } else {
      $("result").textContent = "Not sent: " + err.message + " Sending again is safe: it will not send twice.";
    }
  } finally {
    inFlight = false;
    ready();
  }
  if (reading()) refresh();
});

// ---- live status of the message just sent ------------------------------------------------------
let following = 0;
function describe(m, waiting = true) {
  const parts = [(m.channel || "").toUpperCase() + " to " + m.to + ": " + m.status];
  if (m.status === SCHEDULED && m.sendAt) parts[0] += " for " + localTime(m.sendAt);
  if (m.status === "failed" || m.status === "unknown") {
    const reason = reasonOf(m);
    if (reason) parts[0] += " — " + reason;
  }
  if (m.segments) parts.push(plural(m.segments, "segment") + (m.encoding ? " (" + m.encoding + ")" : ""));
  if (m.priceUsd != null) parts.push("price $" + Number(m.priceUsd).toFixed(5));
  if (waiting && m.status === SCHEDULED) parts.push("it can be canceled in the list below until then");
  else if (waiting && !FINAL.has(m.status)) parts.push("waiting for the delivery receipt…");
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
  $("result").textContent = (m.status === SCHEDULED ? "Scheduled. " : "Accepted. ") + describe(m);
  // A scheduled message is followed in the history (which polls for it when it is due), not here.
  while (!FINAL.has(m.status) && m.status !== SCHEDULED && mine === following && Date.now() - started < 30 * 60 * 1000) {
    await pause(delay);
    delay = Math.min(delay * 1.5, 15000);
    if (document.hidden) { await visible(); delay = 1000; }  // nothing is asked while the tab is hidden
    if (mine !== following) return;
    try { m = await call("GET", "messages/" + encodeURIComponent(m.id)); }
    catch (err) {
      if (err instanceof Unreachable) { setNotice(err.message); continue; }
      if (err.field === "apiKey") refusedKey(err);
      break;
    }
    if (mine !== following) return;
    $("result").dataset.status = m.status;
    $("result").textContent = (FINAL.has(m.status) ? "Final. " : "Accepted. ") + describe(m);
    if (FINAL.has(m.status)) for (const hook of onFinal) hook();
  }
}
// Resolves once the tab is shown again.
function visible() {
  return new Promise((resolve) => {
    if (!document.hidden) return resolve();
    const shownAgain = () => { if (!document.hidden) { document.removeEventListener("visibilitychange", shownAgain); resolve(); } };
    document.addEventListener("visibilitychange", shownAgain);
  });
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
// A number of seconds in the unit the form took it in: "30 minutes", "2 hours", "90 seconds".
function duration(seconds) {
  const [size, unit] = seconds % 3600 === 0 ? [seconds / 3600, "hour"] : seconds % 60 === 0 ? [seconds / 60, "minute"] : [seconds, "second"];
  return plural(size, unit);
}
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
// A long body is clamped to a few lines in its row, on the desktop as on a phone; Details shows all of it.
function bodyCell(m) {
  const td = cell("", "Message", "body");
  const text = document.createElement("div");
  text.className = "clamp";
  text.textContent = m.body || (m.mediaUrl ? "(media)" : "");
  td.append(text);
  return td;
}
function reasonText(m) {
  if (m.status === SCHEDULED) return m.sendAt ? "sends at " + localTime(m.sendAt) : "waiting for its time";
  return m.status === "failed" || m.status === "unknown" || m.status === "canceled" ? reasonOf(m) : "";
}
// A reason may join words with "/" ("unreachable/unavailable"): a line may break after it, not inside a word.
function reasonCell(m) {
  const td = cell("", "Reason", "reason"), text = reasonText(m);
  if (text) text.split("/").forEach((part, i) => {
    if (i) td.append("/", document.createElement("wbr"));
    td.append(part);
  });
  return td;
}
function statusFilter() { return $("statusFilter").value; }
function render() {
  // The rows are drawn anew on every refresh: the control that had the focus gets it back in its row's new
  // drawing, so a refresh never takes a keyboard user's place (nor the Enter they were about to press).
  const focused = document.activeElement, within = focused && focused.closest("#messages tr");
  const kept = within ? { id: within.dataset.id, label: focused.getAttribute("aria-label") } : null;
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
    const action = document.createElement("td"); action.className = "actions"; action.append(button);
    if (m.status === SCHEDULED && may(SEND)) {
      const cancel = document.createElement("button");
      cancel.type = "button"; cancel.className = "cancel"; cancel.textContent = "Cancel";
      cancel.setAttribute("aria-label", "Cancel the message to " + mask(counterpart(m)) + " scheduled for " + localTime(m.sendAt));
      cancel.addEventListener("click", () => cancelMessage(m, cancel));
      action.append(cancel);
    }
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
              bodyCell(m), cell(m.segments, "Parts"), cell(m.status, "Status", m.status),
              reasonCell(m), action);
    rows.push(tr);
  }
  $("messages").replaceChildren(...rows);
  const again = kept && rows.find((tr) => tr.dataset.id === kept.id);
  const control = again && [...again.querySelectorAll("button")].find((b) => b.getAttribute("aria-label") === kept.label);
  if (control) control.focus();
  $("historyEmpty").hidden = rows.length > 0 || !lastOk;
  $("historyEmpty").textContent = statusFilter() === SCHEDULED ? "Nothing is scheduled." : "No messages yet.";
  $("more").hidden = !(older.length ? olderNext : firstNext);
  if ($("thread").open) { for (const m of firstPage) keepInThread(m); renderThread(); }
  const now = detailOf && byId.get(detailOf.id);
  if ($("detail").open && now && now !== detailOf && now.updatedAt !== detailOf.updatedAt) fillDetail(now);
}
// What became of the user's own cancel has its own status line, which the history's polls never write: a refresh
// that answers a moment later must not take the outcome away before it is read.
async function cancelMessage(m, button) {
  button.disabled = true;
  $("outcome").textContent = "";
  try {
    const after = await call("POST", "messages/" + encodeURIComponent(m.id) + "/cancel", undefined, newKey());
    setNotice("");
    $("outcome").textContent = "Canceled the message to " + mask(counterpart(m)) + " that was to go at " + localTime(m.sendAt) + ".";
    byId.set(after.id, after);
    firstPage = firstPage.map((x) => (x.id === after.id ? after : x));
    older = older.map((x) => (x.id === after.id ? after : x));
    render();
  } catch (err) {
    if (err instanceof ApiError && err.field === "apiKey") refusedKey(err);
    $("outcome").textContent = "Not canceled: " + err.message;
    button.disabled = false;
  }
  refresh();
}
function setNotice(text) { $("notice").textContent = text; $("notice").hidden = !text; }
let refreshing = 0;
async function refresh() {
  const mine = checks, asked = ++refreshing, filter = statusFilter();
  try {
    const data = await call("GET", "messages?limit=20" + (filter ? "&status=" + encodeURIComponent(filter) : ""));
    if (mine !== checks || asked !== refreshing) return;  // asked with another key or filter: that answer decides
    firstPage = data.messages; firstNext = data.next || null;
    lastOk = new Date();
    setNotice("");
    $("updated").textContent = "Updated " + lastOk.toLocaleTimeString() + ".";
    render();
  } catch (err) {
    if (mine !== checks || asked !== refreshing) return;
    if (err instanceof ApiError && err.field === "apiKey") {
      refusedKey(err);
    } else if (err instanceof ApiError) {
      setNotice("The messages cannot be shown: " + err.message);
    } else {
      setNotice("The service cannot be reached" + (lastOk ? ". The list below is stale: last updated " + lastOk.toLocaleTimeString() + "." : ". No messages could be loaded yet."));
    }
  } finally {
    if (asked === refreshing) schedulePoll();
  }
}
// The history asks again by itself: every few seconds while a message it shows is on its way, at its time for
// one that is scheduled, and now and then for new messages and replies. Never while the tab is hidden or
// another view is shown (it asks at once when the tab comes back), and never two polls at once.
const POLL = {moving: 3000, idle: 10000, dueAfter: 2000, stale: 15000};
let pollTimer = null;
function pollDelay() {
  const messages = [...firstPage, ...older];
  if (messages.some((m) => !FINAL.has(m.status) && m.status !== SCHEDULED)) return POLL.moving;
  const due = messages.filter((m) => m.status === SCHEDULED && m.sendAt).map((m) => Date.parse(m.sendAt) - Date.now());
  const soonest = due.length ? Math.min(...due) + POLL.dueAfter : Infinity;
  return Math.max(POLL.moving, Math.min(soonest, POLL.idle));
}
function schedulePoll() {
  clearTimeout(pollTimer);
  pollTimer = null;
  if (document.hidden || !shown("messages") || !reading()) return;
  pollTimer = setTimeout(() => {
    pollTimer = null;
    if (lastOk && Date.now() - lastOk > POLL.stale && $("notice").hidden) setNotice("The list may be stale: last updated " + lastOk.toLocaleTimeString() + ".");
    refresh();
  }, pollDelay());
}
document.addEventListener("visibilitychange", () => {
  if (document.hidden) { clearTimeout(pollTimer); pollTimer = null; }
  else if (reading() && shown("messages")) refresh();
});
$("statusFilter").addEventListener("change", () => {
  firstPage = []; older = []; olderNext = null; firstNext = null; lastOk = null;
  render(); refresh();
});
$("refreshNow").addEventListener("click", () => refresh());
$("more").addEventListener("click", async () => {
  const next = older.length ? olderNext : firstNext;
  if (!next) return;
  $("more").disabled = true;
  const filter = statusFilter();
  try {
    const data = await call("GET", "messages?limit=20&next=" + encodeURIComponent(next) + (filter ? "&status=" + encodeURIComponent(filter) : ""));
    older = older.concat(data.messages); olderNext = data.next || null;
    render();
  } catch (err) { setNotice("Older messages could not be loaded: " + err.message); }
  finally { $("more").disabled = false; }
});
// An open Details dialog follows its message: each refresh of the history draws it again if the record changed.
let detailOf = null;
function showDetail(id) {
  const m = byId.get(id);
  if (!m) return;
  fillDetail(m);
  $("detail").showModal();
}
function fillDetail(m) {
  detailOf = m;
  const list = $("detailList");
  list.replaceChildren();
  const repliedTo = m.inReplyTo && byId.get(m.inReplyTo);
  const fields = [["Id", m.id], ["Direction", inbound(m) ? "reply (inbound)" : "sent (outbound)"], ["From", m.from],
    ["To", m.to], ["Channel", m.channel], ["Status", m.status], ["Received", inbound(m) ? localTime(m.receivedAt) : ""],
    ["Send at", m.sendAt ? localTime(m.sendAt) : ""],
    ["In reply to", m.inReplyTo ? (repliedTo ? "the message of " + localTime(repliedTo.createdAt) + " (" + m.inReplyTo + ")" : m.inReplyTo) : ""],
    ["Reason", reasonOf(m)], ["Message", m.body], ["Media", m.mediaUrl],
    ["Template", m.templateId ? m.templateId + (m.templateVersion ? " (version " + m.templateVersion + ")" : "") : ""],
    ["Segments", m.segments], ["Encoding", m.encoding], ["Price (USD)", m.priceUsd],
    ["Give up after", m.validityPeriod ? duration(m.validityPeriod) + (m.validUntil ? " (until " + localTime(m.validUntil) + ")" : "") : ""],
    ["Most per part (USD)", m.maxPriceUsd], ["Provider id", m.providerMessageId],
    ["Created", localTime(m.createdAt)], ["Updated", localTime(m.updatedAt)], ["Dry run", m.dryRun ? "yes" : "no"]];
  for (const [name, value] of fields) {
    if (value == null || value === "") continue;
    const dt = document.createElement("dt"), dd = document.createElement("dd");
    dt.textContent = name; dd.textContent = String(value);
    list.append(dt, dd);
  }
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

// ---- the Keys panel (keys:manage) -------------------------------------------------------------------
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
  const ready = busy($("createKey"));
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
      $("copyKey").focus();  // what to do next: copy it
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
    ready();
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
  $("keysEmpty").hidden = rows.length > 0;
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

// A change that asks first, in a dialog that names what it changes (``text``): ``act`` runs only when the dialog
// closes with its confirming button (value ``yes``); Escape or the other button changes nothing.
function askFirst(dialogId, textId, text, yes, act) {
  const dialog = $(dialogId);
  $(textId).textContent = text;
  dialog.returnValue = "";
  dialog.addEventListener("close", () => { if (dialog.returnValue === yes) act(); }, {once: true});
  dialog.showModal();
}
// A change's progress in its status line: ``doing`` while it runs, then what ``work`` answers, or ``failed`` and
// the reason (a refused key is the key field's error too).
async function changeShown(statusId, doing, failed, work) {
  $(statusId).textContent = doing;
  try { $(statusId).textContent = await work(); }
  catch (err) {
    if (err instanceof ApiError && err.field === "apiKey") refusedKey(err);
    $(statusId).textContent = failed + err.message;
  }
}
// Revoking asks first, in a dialog that names the key.
function askRevoke(k) {
  const own = who.state === "known" && k.id === who.id;
  askFirst("revokeDialog", "revokeText", "Revoke the key “" + k.name + "” (" + k.prefix + ", " + (k.test ? "test" : "live") +
    ")? Whatever uses it is refused within a minute. This cannot be undone." +
    (own ? " It is the key this page is using: the page will be refused too." : ""), "revoke", async () => {
    await changeShown("keyStatus", "Revoking “" + k.name + "”…", "Not revoked: ", async () => {
      await call("DELETE", "keys/" + encodeURIComponent(k.id));
      return "Key “" + k.name + "” revoked: it stops working within a minute.";
    });
    loadKeys();
  });
}

