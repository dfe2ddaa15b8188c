"use strict";
const $ = (sel) => document.querySelector(sel);
let current = null;   // movie id on screen
let timer = null;

async function api(path, options) {
  const res = await fetch(path, options);
  const body = await res.json().catch(() => ({}));
  if (!res.ok) throw new Error(body.error || `HTTP ${res.status}`);
  return body;
}

function fill(dl, row, other) {
  dl.replaceChildren();
  if (!row) { dl.append(Object.assign(document.createElement("dd"), { textContent: "not there (yet)" })); return; }
  for (const [key, value] of Object.entries(row)) {
    const dt = document.createElement("dt"); dt.textContent = key;
    const dd = document.createElement("dd"); dd.textContent = value === null ? "—" : String(value);
    dd.dataset.field = key;
    if (other && key in other && String(other[key]) !== String(value)) dd.classList.add("changed");
    dl.append(dt, dd);
  }
}

function showEdits(edits) {
  const body = $("#edits tbody");
  body.replaceChildren();
  for (const e of edits) {
    const tr = document.createElement("tr");
    const cells = [e.id, e.what];
    let status, cls;
    if (e.visible_after_s !== null) { status = `${e.visible_after_s.toFixed(1)} s`; cls = "ok"; }
    else if (e.gave_up) { status = "not seen after 10 min"; cls = "error"; }
    else { status = `waiting… ${e.waiting_s.toFixed(0)} s`; cls = "waiting"; }
    for (const c of cells) tr.append(Object.assign(document.createElement("td"), { textContent: c }));
    tr.append(Object.assign(document.createElement("td"), { textContent: status, className: cls }));
    body.append(tr);
    if (e.timeline) body.append(timeline(e));
  }
}

const HOP_NAMES = { postgres: "Postgres commit", kafka: "Kafka", bronze: "bronze (MinIO)", silver: "silver",
                    base: "compacted into the base", trino: "visible in Trino" };

// one edit's hops, in order, each with its time since the commit; the slowest step marked
function timeline(e) {
  const tr = Object.assign(document.createElement("tr"), { className: "timeline" });
  const td = document.createElement("td");
  td.colSpan = 3;
  const ol = Object.assign(document.createElement("ol"), { className: "hops" });
  for (const h of e.timeline) {
    const li = document.createElement("li");
    li.dataset.hop = h.hop;
    const done = h.after_s !== null;
    if (done) li.dataset.after = h.after_s;
    li.className = (done ? "done" : "pending") + (h.hop === e.slowest ? " slowest" : "");
    const name = Object.assign(document.createElement("span"), { className: "hop", textContent: HOP_NAMES[h.hop] || h.hop });
    const when = Object.assign(document.createElement("span"), {
      className: "after", textContent: done ? `+${h.after_s.toFixed(2)} s` : "…" });
    li.append(name, when);
    if (h.where) li.title = h.where;
    ol.append(li);
  }
  td.append(ol);
  if (e.slowest) {
    td.append(Object.assign(document.createElement("p"), {
      className: "slowest-note", textContent: `slowest step: into ${HOP_NAMES[e.slowest] || e.slowest}` }));
  }
  tr.append(td);
  return tr;
}

// the movie's rows in the source and in silver (a few Trino queries) and its edits
async function refresh() {
  if (current === null) return;
  try {
    const m = await api(`/api/movies/${current}`);
    fill($("#source"), m.source, m.silver);
    fill($("#silver"), m.silver, m.source);
    $("#silver-error").textContent = m.silver_error || "";
    showEdits(m.edits);
    rowsAt = Date.now();
  } catch (err) {
    $("#silver-error").textContent = err.message;
  }
}

// every second, the edits only (kept by the page's server: no query); the rows again when an
// edit has just become visible, and every ROWS_MS. One request at a time: Trino shares the
// machine's cores with silver, and queries piling up would slow the very edits they watch.
const ROWS_MS = 15000;
let rowsAt = 0;
let seen = new Set();     // edits already shown as visible
let loop = 0;             // the poll loop of the movie on screen (a new one per `open`)

async function poll(mine) {
  if (mine !== loop) return;
  try {
    const { edits } = await api(`/api/movies/${current}/edits`);
    const visible = edits.filter((e) => e.visible_after_s !== null).map((e) => e.id);
    const fresh = visible.some((id) => !seen.has(id));
    seen = new Set(visible);
    if (fresh || Date.now() - rowsAt >= ROWS_MS) await refresh();
    else showEdits(edits);
  } catch (err) {
    $("#silver-error").textContent = err.message;
  }
  if (mine === loop) timer = setTimeout(() => poll(mine), 1000);
}

async function open(id) {
  current = id;
  const mine = ++loop;
  clearTimeout(timer);
  $("#movie").hidden = false;
  $("#movie-id").textContent = id;
  const m = await api(`/api/movies/${id}`);
  if (m.source) { $("#title").value = m.source.title; $("#genres").value = m.source.genres; }
  await refresh();
  seen = new Set(m.edits.filter((e) => e.visible_after_s !== null).map((e) => e.id));
  timer = setTimeout(() => poll(mine), 1000);
  $("#title").focus();
}

$("#search-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const rows = await api(`/api/movies?q=${encodeURIComponent($("#q").value)}`);
  const list = $("#results");
  list.replaceChildren();
  if (!rows.length) list.append(Object.assign(document.createElement("li"), { textContent: "no match" }));
  for (const r of rows) {
    const b = Object.assign(document.createElement("button"), { type: "button", textContent: `${r.title} — ${r.genres}` });
    b.dataset.movieId = r.movie_id;
    b.addEventListener("click", () => open(r.movie_id));
    const li = document.createElement("li"); li.append(b); list.append(li);
  }
});

async function submit(form, path) {
  const data = Object.fromEntries(new FormData(form).entries());
  try {
    const e = await api(path, { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(data) });
    $("#form-status").textContent = `Committed to Postgres: ${e.what}. Watching silver…`;
    await refresh();
  } catch (err) {
    $("#form-status").textContent = `Not saved: ${err.message}`;
  }
}
async function showRecommendations(userId) {
  $("#recs").hidden = false;
  $("#recs-user").textContent = userId;
  const list = $("#recs-list");
  list.replaceChildren();
  try {
    const r = await api(`/api/users/${encodeURIComponent(userId)}/recommendations`);
    $("#recs-note").textContent = r.note || "from the recommender's last run (ml.user_recommendations)";
    for (const item of r.items) {
      const text = `${item.title || `movie ${item.movie_id}`} — predicted ${item.predicted_rating}`;
      list.append(Object.assign(document.createElement("li"), { textContent: text }));
    }
  } catch (err) {
    $("#recs-note").textContent = err.message;
  }
}

$("#edit-form").addEventListener("submit", (ev) => { ev.preventDefault(); submit(ev.target, `/api/movies/${current}/edit`); });
$("#rate-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  await submit(ev.target, `/api/movies/${current}/ratings`);
  await showRecommendations($("#user").value);
});

// the "pipeline now" strip: per hop, the median over the last minute (Prometheus), every 5 s
const PULSE_NAMES = { kafka: "in Kafka", silver: "in silver (and to Trino)" };
async function pulse() {
  const list = $("#pulse-hops");
  try {
    const p = await api("/api/pipeline");
    if (p.error) throw new Error(p.error);
    list.replaceChildren(Object.assign(document.createElement("li"), { className: "done", textContent: "Postgres commit" }));
    for (const h of p.hops) {
      const li = Object.assign(document.createElement("li"), { className: h.median_s === null ? "pending" : "done" });
      li.dataset.hop = h.hop;
      if (h.median_s !== null) li.dataset.median = h.median_s;
      li.append(
        Object.assign(document.createElement("span"), { className: "hop", textContent: PULSE_NAMES[h.hop] || h.hop }),
        Object.assign(document.createElement("span"), {
          className: "after", textContent: h.median_s === null ? "no changes" : `+${h.median_s.toFixed(2)} s` }));
      list.append(li);
    }
    const rate = p.changes_per_s === null ? "—" : p.changes_per_s.toFixed(1);
    list.append(Object.assign(document.createElement("li"), { className: "rate", textContent: `${rate} changes/s into silver` }));
  } catch (err) {
    list.replaceChildren(Object.assign(document.createElement("li"), { className: "error", textContent: err.message }));
  }
}
pulse();
setInterval(pulse, 5000);

api("/api/links").then((links) => {
  const nav = $("#links");
  for (const [name, url] of Object.entries(links)) {
    nav.append(Object.assign(document.createElement("a"), { href: url, textContent: name, target: "_blank", rel: "noopener" }));
  }
}).catch(() => {});
