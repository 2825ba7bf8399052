// Sluice console: one page, no framework. Data comes from the admin API with the token kept
// in this tab's session storage (never in a URL).
"use strict";

const $ = (id) => document.getElementById(id);
const REFRESH_MS = 2000;
let timer = null;
// When this page last asked for a snapshot (a finished one after it is shown at 100 %).
let askedAt = {};

function token() { return sessionStorage.getItem("sluice-token") || ""; }

async function api(method, path, body) {
  const headers = {};
  if (token()) headers["Authorization"] = "Bearer " + token();
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const res = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  if (res.status === 401) { showLogin(); throw new Error("the API needs the token"); }
  const text = await res.text();
  let data = null;
  try { data = text ? JSON.parse(text) : null; } catch (_) { data = text; }
  return { status: res.status, data };
}

function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === "class") e.className = v; else e.setAttribute(k, v);
  }
  for (const c of children) e.append(c instanceof Node ? c : document.createTextNode(c ?? ""));
  return e;
}

function show(id) {
  for (const s of ["login", "overview", "connector"]) $(s).hidden = s !== id;
}

function showLogin() {
  clearInterval(timer);
  show("login");
  $("logout").hidden = true;
  $("token").focus();
}

function fmtBytes(n) {
  if (n === null || n === undefined) return "–";
  const u = ["B", "KiB", "MiB", "GiB", "TiB"];
  let i = 0;
  while (n >= 1024 && i < u.length - 1) { n /= 1024; i++; }
  return (i ? n.toFixed(1) : n) + " " + u[i];
}

function fmtMs(ms) {
  if (ms === null || ms === undefined) return "–";
  if (ms < 1000) return ms + " ms";
  const s = ms / 1000;
  if (s < 120) return s.toFixed(1) + " s";
  return Math.round(s / 60) + " min";
}

// A sparkline of `values` (numbers), as an SVG with the count in data-points.
function sparkline(values, label) {
  const w = 120, h = 28;
  const svg = document.createElementNS("http://www.w3.org/2000/svg", "svg");
  svg.setAttribute("class", "spark");
  svg.setAttribute("width", w);
  svg.setAttribute("height", h);
  svg.setAttribute("role", "img");
  svg.setAttribute("aria-label", label);
  svg.setAttribute("data-points", values.length);
  svg.setAttribute("data-last", values.length ? values[values.length - 1] : "");
  const max = Math.max(1, ...values);
  const pts = values.map((v, i) => {
    const x = values.length < 2 ? w : (i * (w - 2)) / (values.length - 1) + 1;
    const y = h - 2 - (v / max) * (h - 4);
    return x.toFixed(1) + "," + y.toFixed(1);
  });
  const line = document.createElementNS("http://www.w3.org/2000/svg", "polyline");
  line.setAttribute("points", pts.join(" "));
  svg.append(line);
  return svg;
}

// Records per second between samples, and a live point from the current status.
function rates(samples, status) {
  const pts = samples.map((s) => ({ t: s.t, r: s.records }));
  pts.push({ t: Date.now(), r: status.records_published });
  const out = [];
  for (let i = 1; i < pts.length; i++) {
    const dt = (pts[i].t - pts[i - 1].t) / 1000;
    if (dt > 0) out.push(Math.max(0, (pts[i].r - pts[i - 1].r) / dt));
  }
  return out;
}

function stateBadge(state) {
  return el("span", { class: "state " + state }, state);
}

async function overview() {
  const [list, hist] = await Promise.all([api("GET", "/sluice/connectors"), api("GET", "/sluice/history")]);
  const rows = $("rows");
  rows.replaceChildren();
  for (const c of list.data.connectors) {
    const samples = (hist.data.connectors || {})[c.name] || [];
    const r = rates(samples, c);
    const lags = samples.map((s) => s.lag_ms || 0).concat([c.lag_ms || 0]);
    const lastBytes = samples.length ? samples[samples.length - 1].lag_bytes : null;
    const tr = el("tr", { "data-connector": c.name },
      el("td", {}, el("a", { href: "#/c/" + encodeURIComponent(c.name) }, c.name)),
      el("td", {}, stateBadge(c.state)),
      el("td", { class: "num" }, sparkline(r, "records per second of " + c.name), " ",
        (r.length ? Math.round(r[r.length - 1]) : 0).toLocaleString()),
      el("td", { class: "num" }, sparkline(lags, "lag of " + c.name), " ",
        fmtMs(c.lag_ms), " / ", fmtBytes(lastBytes)),
      el("td", {}, el("code", {}, c.committed_offset || "–")),
      el("td", {}, c.owner || "this daemon"));
    rows.append(tr);
  }
  const errs = $("file-errors");
  errs.replaceChildren();
  for (const f of list.data.file_errors || []) {
    errs.append(el("p", { class: "error" }, f.file + ": " + f.error));
  }
}

function progress(snap, finished) {
  const box = $("c-snapshot");
  box.replaceChildren();
  if (!snap) { box.append(el("p", { class: "muted" }, "No snapshot running.")); return; }
  // A running snapshot is never shown at 100 % (the estimate is the planner's statistic and
  // may be behind the table).
  const pct = finished ? 100 : (snap.rows_estimated > 0 ? Math.min(99, Math.floor((100 * snap.rows_done) / snap.rows_estimated)) : 0);
  const behind = !finished && snap.rows_estimated > 0 && snap.rows_done > snap.rows_estimated ? " (more rows than the statistics estimate)" : "";
  const label = finished ? `${snap.kind} snapshot ${snap.aborted ? "stopped" : "finished"} at ${new Date(snap.finished_ms).toLocaleTimeString()}` :
    `${snap.kind} snapshot of ${snap.table}: ${snap.rows_done.toLocaleString()} of about ${Math.max(0, snap.rows_estimated).toLocaleString()} rows` +
    behind + (snap.chunks !== undefined ? `, ${snap.chunks} chunks` : "") +
    (snap.eta_ms ? `, about ${fmtMs(snap.eta_ms)} left` : "") + (snap.paused ? " (paused)" : "");
  const bar = el("div", { class: "bar", role: "progressbar", "aria-valuemin": "0", "aria-valuemax": "100", "aria-valuenow": String(pct), "aria-label": label },
    el("span", { style: "width:" + pct + "%" }));
  box.append(el("p", {}, label + " — " + pct + " %"), bar);
  if (snap.tables_left && snap.tables_left.length) box.append(el("p", { class: "muted" }, "Then: " + snap.tables_left.join(", ")));
}

async function connectorPage(name, full) {
  const st = await api("GET", "/sluice/connectors/" + encodeURIComponent(name));
  if (st.status !== 200) { $("connector-title").textContent = name + ": not found"; return; }
  const s = st.data;
  $("connector-title").textContent = s.name;
  $("c-state").replaceWith(Object.assign(stateBadge(s.state), { id: "c-state" }));
  $("c-paused").textContent = s.retry ? `attempt ${s.retry.attempt}, retrying` : "";
  const err = s.error || (s.retry && s.retry.last_error);
  $("c-error").hidden = !err;
  $("c-error").textContent = err || "";
  const done = s.snapshot_finished;
  if (s.snapshot) progress(s.snapshot, false);
  else if (done && done.finished_ms >= (askedAt[name] || 0)) progress({ kind: done.kind, aborted: done.aborted, finished_ms: done.finished_ms }, true);
  else progress(null, false);
  const pos = $("c-positions");
  pos.replaceChildren(
    el("dt", {}, "Read"), el("dd", {}, el("code", {}, s.source_position || "–")),
    el("dt", {}, "Committed"), el("dd", {}, el("code", {}, s.committed_offset || "–")),
    el("dt", {}, "Events read"), el("dd", {}, s.events_read.toLocaleString()),
    el("dt", {}, "Records published"), el("dd", {}, s.records_published.toLocaleString()),
    el("dt", {}, "Lag"), el("dd", {}, fmtMs(s.lag_ms)));
  const t = await api("GET", "/sluice/connectors/" + encodeURIComponent(name) + "/tables");
  const tb = $("c-tables");
  tb.replaceChildren();
  for (const row of (t.data && t.data.tables) || []) {
    tb.append(el("tr", {}, el("td", {}, row.table), el("td", { class: "num" }, row.events_read.toLocaleString()), el("td", { class: "num" }, row.records_published.toLocaleString())));
  }
  if (!full) return;
  const cfg = await api("GET", "/connectors/" + encodeURIComponent(name) + "/config");
  const cb = $("c-config");
  cb.replaceChildren();
  for (const [k, v] of Object.entries(cfg.data || {})) cb.append(el("tr", {}, el("th", { scope: "row" }, k), el("td", {}, el("code", {}, String(v)))));
  const off = await api("GET", "/connectors/" + encodeURIComponent(name) + "/offsets");
  $("c-offsets").textContent = JSON.stringify(off.data, null, 2);
}

async function act(name, action) {
  if (!confirm(`${action} connector ${name}?`)) return;
  const paths = {
    pause: ["PUT", "/pause"], resume: ["PUT", "/resume"],
    restart: ["POST", "/restart"], stop: ["PUT", "/stop"],
  };
  const [method, suffix] = paths[action];
  const r = await api(method, "/connectors/" + encodeURIComponent(name) + suffix);
  $("c-result").textContent = `${action}: ${r.status}` + (r.data && r.data.message ? " — " + r.data.message : "");
  await connectorPage(name, false);
}

async function signal(name, body, what) {
  if (!confirm(`${what} on ${name}?`)) return;
  const r = await api("POST", "/connectors/" + encodeURIComponent(name) + "/signals", body);
  $("c-result").textContent = `${what}: ${r.status}` + (r.data && (r.data.message || r.data.error) ? " — " + (r.data.message || r.data.error) : (r.data && r.data.recorded ? " — recorded" : ""));
}

function route() {
  clearInterval(timer);
  const hash = location.hash || "#/";
  const m = hash.match(/^#\/c\/(.+)$/);
  const tick = async (first) => {
    try {
      if (m) await connectorPage(decodeURIComponent(m[1]), first);
      else await overview();
    } catch (e) { console.warn(e); }
  };
  show(m ? "connector" : "overview");
  $("logout").hidden = !token();
  tick(true);
  timer = setInterval(() => tick(false), REFRESH_MS);
}

$("login-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  sessionStorage.setItem("sluice-token", $("token").value);
  $("token").value = "";
  const r = await fetch("/sluice/connectors", { headers: { Authorization: "Bearer " + token() } });
  if (r.status === 401) { $("login-error").textContent = "That token is not this daemon's."; sessionStorage.removeItem("sluice-token"); return; }
  $("login-error").textContent = "";
  route();
});
$("logout").addEventListener("click", () => { sessionStorage.removeItem("sluice-token"); showLogin(); });
for (const b of document.querySelectorAll("#c-actions button")) {
  b.addEventListener("click", () => act(decodeURIComponent(location.hash.slice(4)), b.dataset.action));
}
$("snapshot-form").addEventListener("submit", (ev) => {
  ev.preventDefault();
  const name = decodeURIComponent(location.hash.slice(4));
  const tables = $("snapshot-tables").value.split(",").map((t) => t.trim()).filter(Boolean);
  askedAt[name] = Date.now();
  signal(name, { type: "execute-snapshot", data: { "data-collections": tables, type: "incremental" } }, "snapshot " + tables.join(", "));
});
$("stop-snapshot").addEventListener("click", () => {
  const name = decodeURIComponent(location.hash.slice(4));
  signal(name, { type: "stop-snapshot", data: { type: "incremental" } }, "stop the snapshot");
});
window.addEventListener("hashchange", route);
fetch("/sluice/connectors", { headers: token() ? { Authorization: "Bearer " + token() } : {} })
  .then((r) => (r.status === 401 ? showLogin() : route()));
