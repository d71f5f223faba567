// ---- the dashboard: GET reports/daily, drawn; POST exports, downloaded ------------------------------------
// The figures are the API's (issue 22): per UTC day and channel, accepted, delivered, failed, unknown, pending,
// received, segments, costUsd and failuresByCode. The chart shows delivered, failed and pending per day; the
// delivery rate is delivered out of those that settled (delivered, failed or unknown); spend is the month's
// costUsd so far (UTC), against the stage's monthlySpendLimitUsd (the report's spendLimitUsd).
const SVG = "http://www.w3.org/2000/svg";
const SERIES = [["delivered", "delivered-fill"], ["failed", "failed-fill"], ["pending", "pending-fill"]];
const DASH_EVERY = 60000;  // the figures are asked again each minute while the dashboard is in view
// ... and this long after a message or batch the page follows has become final: the report's tally is a stream
// function, which counts a change a moment after it (its batches gather for up to a second: infra/reports.py).
const DASH_AFTER_FINAL = 5000;
let dashTimer = null, dashLoads = 0, dashLast = null, chartDays = null;
function utcDay(d) { return d.toISOString().slice(0, 10); }
function daysBack(n) { const d = new Date(); d.setUTCDate(d.getUTCDate() - (n - 1)); return utcDay(d); }
function dashDays() { return Number(document.querySelector("input[name=dashDays]:checked").value); }
function both(day, name) { return (day.sms ? day.sms[name] || 0 : 0) + (day.mms ? day.mms[name] || 0 : 0); }
function svg(name, attrs, text) {
  const el = document.createElementNS(SVG, name);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, v);
  if (text != null) el.textContent = text;
  return el;
}
function dayLabel(iso) {
  const [y, m, d] = iso.split("-").map(Number);
  return new Date(Date.UTC(y, m - 1, d)).toLocaleDateString(undefined, {month: "short", day: "numeric", timeZone: "UTC"});
}
function drawChart(days) {
  const chart = $("chart");
  for (const el of [...chart.children]) if (el.tagName !== "title" && el.tagName !== "desc") el.remove();
  // Drawn at the size it is shown (one unit a CSS pixel), so its text is never stretched; drawn again when resized.
  const box = chart.getBoundingClientRect();
  const W = Math.round(box.width) || 700, H = Math.round(box.height) || 220, left = 40, bottom = 24, top = 8;
  const plot = H - bottom - top;
  chart.setAttribute("viewBox", "0 0 " + W + " " + H);
  chartDays = days;
  const totals = days.map((d) => SERIES.reduce((sum, [name]) => sum + both(d, name), 0));
  const most = Math.max(1, ...totals);
  const step = (W - left) / Math.max(days.length, 1), width = Math.max(2, step * 0.7);
  chart.append(svg("line", {x1: left, y1: top + plot, x2: W, y2: top + plot, class: "axis"}));
  chart.append(svg("text", {x: left - 6, y: top + 10, "text-anchor": "end", class: "tick"}, String(most)));
  chart.append(svg("text", {x: left - 6, y: top + plot, "text-anchor": "end", class: "tick"}, "0"));
  const labelEvery = days.length > 10 ? 5 : 1;
  days.forEach((day, i) => {
    const x = left + i * step + (step - width) / 2;
    const group = svg("g", {class: "day", "data-date": day.date});
    let y = top + plot;
    const said = [];
    for (const [name, cls] of SERIES) {
      const n = both(day, name);
      said.push(n + " " + name);
      if (!n) continue;
      const h = plot * n / most;
      y -= h;
      group.append(svg("rect", {x: x.toFixed(1), y: y.toFixed(1), width: width.toFixed(1), height: h.toFixed(1), class: cls, "data-series": name, "data-count": n}));
    }
    group.append(svg("title", {}, dayLabel(day.date) + ": " + said.join(", ")));
    chart.append(group);
    if (i % labelEvery === 0 || i === days.length - 1) {
      chart.append(svg("text", {x: (x + width / 2).toFixed(1), y: H - 6, "text-anchor": "middle", class: "tick"}, dayLabel(day.date)));
    }
  });
  const sums = SERIES.map(([name]) => days.reduce((s, d) => s + both(d, name), 0) + " " + name);
  $("chartDesc").textContent = "Messages per UTC day from " + dayLabel(days[0].date) + " to " +
    dayLabel(days[days.length - 1].date) + ", stacked: " + sums.join(", ") + " in all. The table under the chart has each day.";
  const rows = days.map((day) => {
    const tr = document.createElement("tr");
    tr.append(cell(dayLabel(day.date), "Day"), ...["delivered", "failed", "pending", "unknown"].map((n) => cell(both(day, n), n)),
              cell((both(day, "costUsd")).toFixed(5), "Cost (USD)"));
    return tr;
  });
  $("dashTable").tBodies[0].replaceChildren(...rows);
}
function showFigures(report, month) {
  const totals = {};
  for (const name of ["delivered", "failed", "unknown", "pending", "accepted"]) totals[name] = both(report.totals, name);
  const settled = totals.delivered + totals.failed + totals.unknown;
  $("rate").textContent = settled ? (100 * totals.delivered / settled).toFixed(1) + "% (" + totals.delivered + " of " +
    settled + " that settled" + (totals.pending ? "; " + totals.pending + " pending" : "") + ")" : "no message settled in these days";
  const codes = {};
  for (const channel of ["sms", "mms"]) {
    for (const [code, n] of Object.entries((report.totals[channel] || {}).failuresByCode || {})) codes[code] = (codes[code] || 0) + n;
  }
  const top = Object.entries(codes).sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0])).slice(0, 5);
  $("failures").replaceChildren(...(top.length ? top.map(([code, n]) => li(code + ": " + n)) : [li("No failures in these days.")]));
  $("failures").classList.toggle("none", !top.length);
  drawChart(report.days);
  const spent = both(month.totals, "costUsd"), limit = month.spendLimitUsd ?? report.spendLimitUsd ?? null;
  const meter = $("spendMeter");
  if (limit) {
    $("spend").textContent = money(spent) + " of the $" + limit + " monthly limit (" + (100 * spent / limit).toFixed(1) + "%)";
    meter.max = limit; meter.value = Math.min(spent, limit); meter.high = limit * 0.8; meter.optimum = 0; meter.hidden = false;
  } else {
    $("spend").textContent = money(spent) + " (this stage sets no monthly spend limit)";
    meter.hidden = true;
  }
}
async function loadDashboard() {
  clearTimeout(dashTimer); dashTimer = null;
  if (dashSoon && Date.now() >= dashSoon) dashSoon = 0;  // this load is the one it wanted
  if (!reading()) return;
  const mine = ++dashLoads, days = dashDays(), today = utcDay(new Date());
  try {
    const [report, month] = await Promise.all([
      call("GET", "reports/daily?from=" + daysBack(days) + "&to=" + today),
      call("GET", "reports/daily?from=" + today.slice(0, 8) + "01&to=" + today)]);
    if (mine !== dashLoads) return;
    dashLast = {from: report.from, to: report.to};
    showFigures(report, month);
    $("dashBody").dataset.state = "ready";
    $("dashStatus").textContent = "Figures of " + dayLabel(report.from) + " to " + dayLabel(report.to) + " (UTC), as of " +
      new Date().toLocaleTimeString() + ". Test-key messages and dry runs are not counted.";
  } catch (err) {
    if (mine !== dashLoads) return;
    if (err instanceof ApiError && err.field === "apiKey") refusedKey(err);
    $("dashBody").dataset.state = "error";
    $("dashStatus").textContent = "The figures cannot be shown: " + err.message;
  } finally {
    if (mine === dashLoads) scheduleDashboard();
  }
}
let dashSoon = 0;  // when a final message or batch wants the figures asked again (0: none does)
function scheduleDashboard() {
  clearTimeout(dashTimer); dashTimer = null;
  if (document.hidden || !shown("messages") || !reading()) return;
  dashTimer = setTimeout(loadDashboard, dashSoon ? Math.min(Math.max(dashSoon - Date.now(), 0), DASH_EVERY) : DASH_EVERY);
}
onFinal.push(() => { dashSoon = Date.now() + DASH_AFTER_FINAL; scheduleDashboard(); });
for (const radio of document.querySelectorAll("input[name=dashDays]")) radio.addEventListener("change", loadDashboard);
let resizing = null;
window.addEventListener("resize", () => {
  clearTimeout(resizing);
  resizing = setTimeout(() => { if (chartDays && !$("dashBody").hidden) drawChart(chartDays); }, 150);
});
document.addEventListener("visibilitychange", () => { if (document.hidden) clearTimeout(dashTimer); else if (shown("messages")) loadDashboard(); });

// ---- the download: an export of the days shown, fetched when it is ready ---------------------------------
let exporting = false;
async function runExport() {
  if (exporting) return;
  exporting = true;
  const ready = busy($("exportButton"));
  const status = $("exportStatus");
  const days = dashDays(), range = {from: daysBack(days), to: utcDay(new Date())};
  status.textContent = "Preparing the CSV of " + dayLabel(range.from) + " to " + dayLabel(range.to) + "…";
  try {
    let job = await call("POST", "exports", range, newKey());
    for (let wait = 500; job.status === "running"; wait = Math.min(wait * 1.5, 5000)) {
      await pause(wait);
      if (document.hidden) await visible();
      job = await call("GET", "exports/" + encodeURIComponent(job.id));
      if (job.status === "running") status.textContent = "Preparing the CSV… " + plural(job.rows || 0, "row") + " so far.";
    }
    if (job.status !== "ready") { status.textContent = "The export failed: " + (job.reason || "no reason given") + "."; return; }
    const link = document.createElement("a");
    link.href = job.url; link.download = ""; link.id = "exportLink";
    link.textContent = "Download it again";
    status.replaceChildren(document.createTextNode("CSV ready: " + plural(job.rows, "message") + ". "), link,
      document.createTextNode(" (the link works for " + Math.round((job.urlExpiresIn || 900) / 60) + " minutes)."));
    link.click();
  } catch (err) {
    if (err instanceof ApiError && err.field === "apiKey") refusedKey(err);
    status.textContent = "No CSV: " + err.message;
  } finally {
    exporting = false;
    ready();
  }
}
$("exportButton").addEventListener("click", runExport);
onKey.push(() => {
  gate([$("dashBody")], $("dashDenied"), READ, "show the delivery figures");
  if (reading()) loadDashboard(); else clearTimeout(dashTimer);
});
