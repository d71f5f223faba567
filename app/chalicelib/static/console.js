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
function headers() {
  const h = {"Content-Type": "application/json"};
  if ($("apiKey").value) h["x-api-key"] = $("apiKey").value;
  return h;
}
async function call(method, path, body) {
  const response = await fetch(apiUrl(path), {method, headers: headers(), body: body ? JSON.stringify(body) : undefined});
  const data = await response.json();
  if (!response.ok) throw new Error(data.error ? data.error.code + ": " + data.error.message : response.status);
  return data;
}
async function upload(file) {
  const media = await call("POST", "media", {contentType: file.type || "application/octet-stream", size: file.size});
  const form = new FormData();
  for (const [k, v] of Object.entries(media.upload.fields)) form.append(k, v);
  form.append("file", file);
  // The presigned upload goes to S3 itself (an absolute URL), not to the API.
  const response = await fetch(media.upload.url, {method: "POST", body: form});
  if (!response.ok) throw new Error("upload failed: " + response.status);
  return media.mediaUrl;
}
$("send").addEventListener("submit", async (event) => {
  event.preventDefault();
  $("result").textContent = "Sending…";
  try {
    const file = $("file").files[0];
    const body = $("body").value;
    let message;
    if (file) {
      message = await call("POST", "mms", {to: $("to").value, body: body || undefined, mediaUrl: await upload(file)});
    } else {
      message = await call("POST", "sms", {to: $("to").value, body});
    }
    $("result").textContent = "Accepted: " + message.id + " (" + message.status + ")";
  } catch (err) {
    $("result").textContent = "Error: " + err.message;
  }
  refresh();
});
function cell(text, cls) { const td = document.createElement("td"); td.textContent = text ?? ""; if (cls) td.className = cls; return td; }
async function refresh() {
  try {
    const data = await call("GET", "messages?limit=20");
    const rows = data.messages.map((m) => {
      const tr = document.createElement("tr");
      tr.append(cell(m.createdAt), cell(m.channel), cell(m.to), cell(m.body), cell(m.status, m.status),
                cell(m.error ? m.error.code : ""));
      return tr;
    });
    $("messages").replaceChildren(...rows);
  } catch (err) { /* not authorised yet, or the service is down: keep the last list */ }
}
refresh();
setInterval(refresh, 3000);
