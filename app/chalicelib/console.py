"""The send console served at GET /: a single page that calls the same JSON API."""

PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>SMS / MMS sender</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
 body { font: 15px/1.4 system-ui, sans-serif; margin: 2rem auto; max-width: 60rem; padding: 0 1rem; color: #222; }
 h1 { font-size: 1.4rem; } fieldset { border: 1px solid #ccc; border-radius: 6px; margin-bottom: 1rem; }
 label { display: block; margin: .4rem 0; } input, textarea, select { font: inherit; width: 100%; box-sizing: border-box; }
 button { font: inherit; padding: .4rem 1rem; margin-top: .5rem; }
 table { border-collapse: collapse; width: 100%; } td, th { border-bottom: 1px solid #ddd; padding: .3rem; text-align: left; }
 .delivered { color: #176117; } .failed { color: #a11; } #result { white-space: pre-wrap; background: #f6f6f6; padding: .5rem; }
</style>
</head>
<body>
<h1>SMS / MMS sender</h1>
<form id="send">
 <fieldset>
  <legend>Send a message</legend>
  <label>API key (only needed when deployed) <input id="apiKey" autocomplete="off"></label>
  <label>To (E.164) <input id="to" name="to" placeholder="+14255550100" required></label>
  <label>Body <textarea id="body" name="body" rows="3" maxlength="1600"></textarea></label>
  <label>Media for MMS (optional) <input id="file" type="file"></label>
  <button id="sendButton" type="submit">Send</button>
 </fieldset>
</form>
<div id="result" role="status"></div>
<h2>Messages</h2>
<table><thead><tr><th>Created</th><th>Channel</th><th>To</th><th>Body</th><th>Status</th><th>Error</th></tr></thead>
<tbody id="messages"></tbody></table>
<script>
const $ = (id) => document.getElementById(id);
function headers() {
  const h = {"Content-Type": "application/json"};
  if ($("apiKey").value) h["x-api-key"] = $("apiKey").value;
  return h;
}
async function call(method, path, body) {
  const response = await fetch(path, {method, headers: headers(), body: body ? JSON.stringify(body) : undefined});
  const data = await response.json();
  if (!response.ok) throw new Error(data.error ? data.error.code + ": " + data.error.message : response.status);
  return data;
}
async function upload(file) {
  const media = await call("POST", "/media", {contentType: file.type || "application/octet-stream", size: file.size});
  const form = new FormData();
  for (const [k, v] of Object.entries(media.upload.fields)) form.append(k, v);
  form.append("file", file);
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
      message = await call("POST", "/mms", {to: $("to").value, body: body || undefined, mediaUrl: await upload(file)});
    } else {
      message = await call("POST", "/sms", {to: $("to").value, body});
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
    const data = await call("GET", "/messages?limit=20");
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
</script>
</body>
</html>
"""
