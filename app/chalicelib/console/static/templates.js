// ---- templates: the placeholder rules, the Templates view, and sends from a template ----------------------
// The placeholder rules of app/chalicelib/templates/render.py: ((name)), the first "))" closing the first "((";
// a name is letters, digits, spaces, "_" and "-", matched without regard to case or to spaces at its ends.
const PLACEHOLDER = /\(\((?!\()([\s\S]*?)\)\)/g;
const PLACEHOLDER_NAME = /^[\p{L}\p{N}_ -]+$/u;
// Python's str.casefold() as near as JavaScript comes: upper then lower case folds "ß" and "ss" together too.
function keyOf(name) { return name.trim().toUpperCase().toLowerCase(); }
class BadPlaceholder extends Error {}
// Each placeholder of `body` once, in order of first use: [{name, key}]; BadPlaceholder for the first bad one.
function placeholdersOf(body) {
  const found = new Map();
  for (const match of body.matchAll(PLACEHOLDER)) {
    const name = match[1];
    if (!name.trim() || !PLACEHOLDER_NAME.test(name)) {
      throw new BadPlaceholder("The placeholder " + match[0].slice(0, 44) + " " + (name.trim() ? "holds a character " +
        "other than letters, digits, spaces, _ and -" : "is empty") + ".");
    }
    if (!found.has(keyOf(name))) found.set(keyOf(name), {name: name.trim(), key: keyOf(name)});
  }
  return [...found.values()];
}
// `body` with each placeholder replaced by its value in `values` (a Map from key to text); those without one
// stay as written, and are named in `missing`.
function fill(body, values) {
  const missing = [];
  const text = body.replace(PLACEHOLDER, (whole, name) => {
    if (values.has(keyOf(name))) return values.get(keyOf(name));
    if (!missing.includes(name.trim())) missing.push(name.trim());
    return whole;
  });
  return {text, missing};
}

// ---- the stage's templates ---------------------------------------------------------------------------
let templates = [], templatesNext = null, templatesFor = null;
const TEMPLATE_PAGES = 10;  // the choosers offer the newest 1,000 templates
function usable(t) { return !t.archivedAt; }
function templateById(id) { return templates.find((t) => t.id === id) || null; }
async function loadTemplates() {
  if (!may(SEND)) return;
  const asked = $("apiKey").value;
  try {
    let next = null, found = [];
    for (let i = 0; i < TEMPLATE_PAGES; i++) {
      const data = await call("GET", "templates?limit=100" + (next ? "&next=" + encodeURIComponent(next) : ""));
      found = found.concat(data.templates || []);
      next = data.next || null;
      if (!next) break;
    }
    if (asked !== $("apiKey").value) return;
    templates = found; templatesNext = next; templatesFor = asked;
    renderTemplates();
  } catch (err) {
    if (err instanceof ApiError && err.field === "apiKey") refusedKey(err);
    else $("templateStatus").textContent = "The templates cannot be listed: " + err.message;
  }
}
function fillChooser(select, emptyText) {
  const chosen = select.value;
  const options = [new Option(emptyText, "")];
  for (const t of templates.filter(usable)) {
    options.push(new Option(t.name + " (" + t.channel.toUpperCase() + ", version " + t.version + ")", t.id));
  }
  select.replaceChildren(...options);
  select.value = templateById(chosen) && usable(templateById(chosen)) ? chosen : "";
  if (select.value !== chosen) select.dispatchEvent(new Event("change"));
}
function renderTemplates() {
  fillChooser($("template"), "None: write the message here");
  fillChooser($("batchTemplate"), "None: each row gives its message");
  const manage = may(TEMPLATES);
  const rows = templates.map((t) => {
    const tr = document.createElement("tr");
    tr.dataset.id = t.id; tr.dataset.state = t.archivedAt ? "archived" : "active";
    if (t.archivedAt) tr.className = "archived";
    const message = cell("", "Message", "body");
    const text = document.createElement("div"); text.className = "clamp"; text.textContent = t.body;
    message.append(text);
    const actions = document.createElement("td"); actions.className = "actions";
    const button = (label, text, handler) => {
      const b = document.createElement("button");
      b.type = "button"; b.textContent = text; b.setAttribute("aria-label", label + " " + t.name);
      b.addEventListener("click", handler);
      actions.append(b);
    };
    if (!t.archivedAt) {
      button("Send from the template", "Use", () => useTemplate(t));
      if (manage) {
        button("Edit the template", "Edit", () => editTemplate(t));
        button("Archive the template", "Archive", () => askArchive(t));
      }
    }
    tr.append(cell(t.name, "Name"), cell(t.channel.toUpperCase(), "Channel"), cell(t.version, "Version"),
              cell(t.placeholders.join(", ") || "none", "Placeholders"), message,
              cell(localTime(t.updatedAt || t.createdAt), "Changed"),
              cell(t.archivedAt ? "archived " + localTime(t.archivedAt) : "active", "Status", t.archivedAt ? "archived" : ""),
              actions);
    return tr;
  });
  $("templateRows").replaceChildren(...rows);
  $("templatesMore").hidden = true;
  if (templatesNext) {
    $("templateStatus").textContent = "The newest " + templates.length + " templates are shown.";
  }
}

// ---- the Templates view's form: create, or edit (a new version) ------------------------------------------
const TEMPLATE_FIELD_OF = {name: "templateName", body: "templateBody", channel: "templateChannel",
  mediaUrl: "templateFile", contentType: "templateFile", size: "templateFile"};
const TEMPLATE_FIELDS = Object.values(TEMPLATE_FIELD_OF).filter((v, i, a) => a.indexOf(v) === i);
let editing = null;  // the template being edited (its latest version), or null for a new one
let templateInFlight = false, templatePending = null;
function applyTemplateForm() {
  const manage = may(TEMPLATES);
  $("templateForm").hidden = !manage;
  $("templatesDenied").hidden = manage;
  $("templatesDenied").textContent = manage ? "" : "This key cannot create, change or archive templates: it lacks " +
    TEMPLATES + ". It can send from them.";
}
function templateChannelChanged() {
  const mms = $("templateChannel").value === "mms";
  $("templateMediaBox").hidden = !mms;
  $("templateMediaUrl").textContent = mms && editing && editing.mediaUrl ? "Now: " + editing.mediaUrl +
    " (choose a file to replace it)" : "";
  clearError("templateChannel");
}
function describeTemplateBody() {
  const body = $("templateBody").value, found = $("templateFound");
  clearError("templateBody");
  found.classList.remove("over");
  try {
    const names = placeholdersOf(body).map((p) => "((" + p.name + "))");
    found.textContent = bodyLength(body) + " / " + MAX_BODY + " characters · " +
      (names.length ? plural(names.length, "placeholder") + ": " + names.join(", ") : "no placeholders");
  } catch (err) {
    if (!(err instanceof BadPlaceholder)) throw err;
    found.textContent = err.message + " A placeholder is ((name)), the name made of letters, digits, spaces, _ and -.";
    found.classList.add("over");
  }
}
function resetTemplateForm() {
  editing = null; templatePending = null;
  $("templateForm").reset();
  for (const id of TEMPLATE_FIELDS) clearError(id);
  $("templateFormTitle").textContent = "New template";
  $("saveTemplate").textContent = "Create template";
  $("templateChannel").disabled = false;
  $("newTemplate").hidden = true;
  templateChannelChanged();
  describeTemplateBody();
}
function editTemplate(t) {
  resetTemplateForm();
  editing = t;
  $("templateName").value = t.name;
  $("templateChannel").value = t.channel;
  $("templateChannel").disabled = true;  // a template keeps its channel
  $("templateBody").value = t.body;
  $("templateFormTitle").textContent = "Edit “" + t.name + "” (saving makes version " + (t.version + 1) + ")";
  $("saveTemplate").textContent = "Save as version " + (t.version + 1);
  $("newTemplate").hidden = false;
  templateChannelChanged();
  describeTemplateBody();
  $("templateName").focus();
}
$("templateChannel").addEventListener("change", templateChannelChanged);
$("templateBody").addEventListener("input", describeTemplateBody);
$("templateName").addEventListener("input", () => clearError("templateName"));
$("templateFile").addEventListener("change", () => {
  clearError("templateFile");
  const f = $("templateFile").files[0];
  if (f && mediaProblem(f)) showError("templateFile", mediaProblem(f), false);
  else if (f) checkContent(f).then((found) => { if (found && $("templateFile").files[0] === f) showError("templateFile", found, false); });
});
$("templateFile").setAttribute("accept", Object.keys(MEDIA_LIMITS).join(","));
$("newTemplate").addEventListener("click", () => { resetTemplateForm(); $("templateStatus").textContent = ""; $("templateName").focus(); });
$("templateForm").addEventListener("submit", async (event) => {
  event.preventDefault();
  if (templateInFlight) return;
  for (const id of TEMPLATE_FIELDS) clearError(id);
  const status = $("templateStatus");
  const name = $("templateName").value.trim(), body = $("templateBody").value;
  const channel = editing ? editing.channel : $("templateChannel").value;
  const f = channel === "mms" ? $("templateFile").files[0] || null : null;
  const stop = (id, message) => { showError(id, message, true); status.textContent = "Not saved: see the highlighted field."; };
  if (!name) return stop("templateName", "Give the template a name: say what it is for.");
  if (!body.trim()) return stop("templateBody", "Write the message, with ((placeholders)) where each send fills something in.");
  if (f) await checkContent(f);
  if (f && mediaProblem(f)) return stop("templateFile", mediaProblem(f));
  if (channel === "mms" && !f && !(editing && editing.mediaUrl)) return stop("templateFile", "Choose the picture or file the MMS carries.");
  const request = {name, body, channel};
  const fingerprint = JSON.stringify([editing && editing.id, request, f && [f.name, f.size, f.lastModified]]);
  if (!templatePending || templatePending.fingerprint !== fingerprint) templatePending = {fingerprint, key: newKey()};
  templateInFlight = true;
  const ready = busy($("saveTemplate"));
  status.textContent = editing ? "Saving a new version…" : "Creating the template…";
  try {
    if (channel === "mms") request.mediaUrl = f ? await upload(f, templatePending.key) : editing.mediaUrl;
    const saved = editing ? await call("PUT", "templates/" + encodeURIComponent(editing.id), request)
      : await call("POST", "templates", request, templatePending.key);
    const same = editing && saved.version === editing.version;
    resetTemplateForm();
    status.textContent = same ? "Nothing changed: “" + saved.name + "” stays at version " + saved.version + "." :
      "Template “" + saved.name + "” saved: version " + saved.version + " (placeholders: " +
      (saved.placeholders.join(", ") || "none") + ").";
    await loadTemplates();
  } catch (err) {
    if (err instanceof ApiError) {
      templatePending = null;
      if (err.field === "apiKey") refusedKey(err);
      const field = TEMPLATE_FIELD_OF[err.field];
      if (field) { showError(field, err.message, true); status.textContent = "Not saved: see the highlighted field."; }
      else status.textContent = "Not saved: " + err.message;
    } else {
      status.textContent = "Not saved: " + err.message + " Trying again is safe: it will not make two.";
    }
  } finally {
    templateInFlight = false;
    ready();
  }
});

// Archiving asks first, naming the template.
function askArchive(t) {
  askFirst("archiveDialog", "archiveText", "Archive “" + t.name + "” (" + t.channel.toUpperCase() + ", version " +
    t.version + ")? No new message can be sent from it, and it cannot be changed again; messages already sent keep " +
    "what they were sent with. Scheduled messages made from it still go.", "archive", async () => {
    await changeShown("templateStatus", "Archiving “" + t.name + "”…", "Not archived: ", async () => {
      await call("DELETE", "templates/" + encodeURIComponent(t.id));
      if (editing && editing.id === t.id) resetTemplateForm();
      return "Template “" + t.name + "” archived: it can no longer be sent.";
    });
    loadTemplates();
  });
}

// ---- sending from a template: one input per placeholder -------------------------------------------------
function sendTemplate() { return $("template").value ? templateById($("template").value) : null; }
function placeholderInputs() { return [...$("placeholderInputs").querySelectorAll("input")]; }
function valuesOf(inputs) {
  const values = new Map();
  for (const input of inputs) if (input.value !== "") values.set(input.dataset.key, input.value);
  return values;
}
function renderedBody() {
  const t = sendTemplate();
  return t ? fill(t.body, valuesOf(placeholderInputs())).text : "";
}
function missingPlaceholders() {
  const t = sendTemplate();
  return t ? fill(t.body, valuesOf(placeholderInputs())).missing : [];
}
// The personalisation the API takes: each placeholder given a value, by the template's own name for it.
function personalisation() {
  const values = {};
  for (const input of placeholderInputs()) if (input.value !== "") values[input.dataset.name] = input.value;
  return values;
}
function clearPlaceholders() { for (const input of placeholderInputs()) input.value = ""; updateRendered(); }
function updateRendered() {
  const t = sendTemplate();
  $("rendered").textContent = t ? renderedBody() : "";
  updateCounter();
}
function chooseSendTemplate() {
  const t = sendTemplate();
  clearError("template"); clearError("placeholders");
  $("ownBody").hidden = !!t;
  $("renderedBox").hidden = !t;
  $("placeholders").hidden = !t || !t.placeholders.length;
  $("fileBox").hidden = !!t;  // a template brings its own media, or none
  const inputs = (t ? t.placeholders : []).map((name, i) => {
    const id = "placeholder-" + i;
    const label = document.createElement("label"); label.htmlFor = id; label.textContent = name;
    const input = document.createElement("input");
    input.id = id; input.dataset.name = name; input.dataset.key = keyOf(name); input.autocomplete = "off";
    input.setAttribute("aria-describedby", "placeholders-error");
    input.addEventListener("input", () => { clearError("placeholders"); updateRendered(); settleResult(); });
    return [label, input];
  }).flat();
  $("placeholderInputs").replaceChildren(...inputs);
  $("placeholders").querySelector("legend").textContent = t ? "Fill in “" + t.name + "”" : "Fill in the template";
  $("type").closest("form").querySelector("label[for=type]").hidden = !!(t && t.channel === "mms");
  $("type").hidden = !!(t && t.channel === "mms");
  updateRendered();
  updateMedia();
  settleResult();
}
$("template").addEventListener("change", chooseSendTemplate);
// "Use" in the Templates view: back to the send form with the template chosen.
function useTemplate(t) {
  showView("messages");
  $("template").value = t.id;
  chooseSendTemplate();
  (placeholderInputs()[0] || $("to")).focus();
}

onKey.push(() => {
  applyTemplateForm();
  if (templatesFor !== $("apiKey").value || !templates.length) {
    if (may(SEND)) loadTemplates();
    else { templates = []; renderTemplates(); }
  } else {
    renderTemplates();
  }
});
