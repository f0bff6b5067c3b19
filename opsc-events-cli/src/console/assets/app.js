// The opsc console page: a client of the JSON API under /api (docs/OPERATIONS.md).
// Everything that came from Redis is put in the page as text (textContent), never as HTML.
"use strict";

const state = { session: null, timer: null };

function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k === "class") e.className = v;
    else if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
    else e.setAttribute(k, v === true ? "" : String(v));
  }
  for (const c of children.flat()) {
    if (c === null || c === undefined) continue;
    e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return e;
}

// Replaces what `view` shows; absent parts (null: a control the session does not allow) are
// left out, not shown as the text "null".
function show(view, ...children) {
  view.replaceChildren(...children.filter(c => c !== null && c !== undefined));
}

function token() { return sessionStorage.getItem("opsc-token"); }

async function api(path, body) {
  const headers = { "Accept": "application/json" };
  const t = token();
  if (t) headers["Authorization"] = "Bearer " + t;
  const opts = { headers, credentials: "same-origin" };
  if (body !== undefined) {
    opts.method = "POST";
    headers["Content-Type"] = "application/json";
    headers["x-opsc-csrf"] = state.session ? state.session.csrf : "";
    opts.body = JSON.stringify(body);
  }
  const resp = await fetch(path, opts);
  let json = null;
  try { json = await resp.json(); } catch (_) { json = null; }
  if (resp.status === 401) { showLogin(); throw new Error("a token is required"); }
  if (!resp.ok) throw new Error((json && json.error) || ("HTTP " + resp.status));
  return json;
}

function showError(e) {
  const p = document.getElementById("error");
  if (e) { p.textContent = String(e.message || e); p.hidden = false; } else { p.hidden = true; }
}

function showLogin() {
  document.getElementById("login").hidden = false;
}

function age(ms) {
  if (ms === null || ms === undefined) return "";
  const s = Math.floor(ms / 1000);
  if (s < 120) return s + "s";
  if (s < 7200) return Math.floor(s / 60) + "m";
  if (s < 172800) return Math.floor(s / 3600) + "h";
  return Math.floor(s / 86400) + "d";
}

function when(ms) { return ms ? new Date(ms).toISOString() : ""; }

// A small SVG line chart of `values` (plain SVG, no library).
function spark(values, cls, title) {
  const w = 120, h = 28;
  const svg = document.createElementNS("http://www.w3.org/2000/svg", "svg");
  svg.setAttribute("width", w); svg.setAttribute("height", h);
  svg.setAttribute("class", "spark " + cls);
  const t = document.createElementNS("http://www.w3.org/2000/svg", "title");
  t.textContent = title; svg.append(t);
  if (values.length < 2) return svg;
  const max = Math.max(1, ...values);
  const pts = values.map((v, i) => (i * w / (values.length - 1)).toFixed(1) + "," + (h - 2 - v * (h - 4) / max).toFixed(1));
  const line = document.createElementNS("http://www.w3.org/2000/svg", "polyline");
  line.setAttribute("points", pts.join(" "));
  svg.append(line);
  return svg;
}

function rates(history) {
  const out = [];
  for (let i = 1; i < history.length; i++) {
    const dt = (history[i].at_ms - history[i - 1].at_ms) / 1000;
    out.push(dt > 0 ? Math.max(0, history[i].length - history[i - 1].length) / dt : 0);
  }
  return out;
}

// ---- Overview ----

// The overview and the groups are paged (`#overview?offset=N`): a page of streams is looked at
// per refresh.
const PAGE = 100;

function pageOffset() {
  const params = new URLSearchParams(location.hash.split("?")[1] || "");
  return Math.max(0, Number(params.get("offset")) || 0);
}

// "Streams 101–200 of 1000 ← previous next →" when there is more than one page; else null.
function pager(id, view, data, offset) {
  if (!(data.total > data.limit || offset > 0)) return null;
  const shown = data.streams.length;
  return el("p", { id: id + "-pager", class: "pager" },
    "Streams " + (shown ? offset + 1 : 0) + "\u2013" + (offset + shown) + " of " + data.total + " ",
    offset > 0 ? el("a", { id: id + "-prev", href: "#" + view + "?offset=" + Math.max(0, offset - data.limit) }, "\u2190 previous") : null,
    " ",
    offset + shown < data.total ? el("a", { id: id + "-next", href: "#" + view + "?offset=" + (offset + data.limit) }, "next \u2192") : null);
}

async function overview(view) {
  const offset = pageOffset();
  const data = await api("/api/overview?offset=" + offset + "&limit=" + PAGE);
  const table = el("table", { id: "overview-table" },
    el("thead", {}, el("tr", {},
      el("th", {}, "Stream / group"), el("th", {}, "Length"), el("th", {}, "Throughput/s"),
      el("th", {}, "Dead letters"), el("th", {}, "Lag"), el("th", {}, "Pending"),
      el("th", {}, "Consumers"), el("th", {}, "Oldest pending"), el("th", {}, "Retrying"),
      el("th", {}, "Throughput"), el("th", {}, "Lag over time"))));
  const body = el("tbody", {});
  for (const s of data.streams) {
    body.append(el("tr", { class: "stream", "data-stream": s.stream },
      el("td", { class: "name" }, el("a", { href: "#stream/" + s.stream }, s.stream)),
      el("td", { class: "length" }, s.length),
      el("td", { class: "throughput" }, s.throughput_per_s === null ? "" : s.throughput_per_s.toFixed(1)),
      el("td", { class: "dead-letters" }, el("a", { href: "#dead-letters/" + s.stream }, s.dead_letters)),
      el("td", {}), el("td", {}), el("td", {}), el("td", {}), el("td", {}),
      el("td", {}, spark(rates(s.history), "throughput", "entries per second")),
      el("td", {}, spark(s.history.map(p => p.lag), "lag", "total lag"))));
    for (const g of s.groups) {
      body.append(el("tr", { class: "group" + (g.stale ? " stale" : ""), "data-stream": s.stream, "data-group": g.group },
        el("td", { class: "name" }, "\u2003" + g.group, g.stale ? el("span", { class: "flag" }, " stale") : null),
        el("td", {}), el("td", {}), el("td", {}),
        el("td", { class: "lag" }, g.lag === null ? "?" : g.lag),
        el("td", { class: "pending" }, g.pending),
        el("td", { class: "consumers" }, g.consumers),
        el("td", { class: "oldest" }, age(g.oldest_pending_age_ms)),
        el("td", { class: "scheduled" }, g.scheduled),
        el("td", {}), el("td", {})));
    }
  }
  table.append(body);
  show(view, el("h2", {}, "Overview"), pager("overview", "overview", data, offset),
    data.total ? table : el("p", {}, "No streams under prefix " + state.session.prefix + "."));
}

// ---- Stream and correlation ----

function entryRows(entries, withStream) {
  const table = el("table", { id: "entries-table" }, el("thead", {}, el("tr", {},
    withStream ? el("th", {}, "Stream") : null,
    el("th", {}, "Id"), el("th", {}, "Event"), el("th", {}, "Event id"),
    el("th", {}, "Correlation id"), el("th", {}, "Time"), el("th", {}, "Headers"), el("th", {}, "Payload"))));
  const body = el("tbody", {});
  for (const e of entries) {
    if (e.error) {
      body.append(el("tr", { class: "entry undecodable", "data-id": e.id },
        withStream ? el("td", {}, e.stream) : null,
        el("td", {}, e.id), el("td", { colspan: 6 }, "undecodable: " + e.error)));
      continue;
    }
    body.append(el("tr", { class: "entry", "data-id": e.id, "data-event-id": e.event_id },
      withStream ? el("td", {}, el("a", { href: "#stream/" + e.stream }, e.stream)) : null,
      el("td", {}, e.id),
      el("td", { class: "event-type" }, e.event_type + " v" + e.version),
      el("td", { class: "event-id" }, e.event_id),
      el("td", {}, el("a", { href: "#correlation/" + e.correlation_id }, e.correlation_id)),
      el("td", {}, when(e.timestamp)),
      el("td", {}, el("pre", {}, JSON.stringify(e.headers))),
      el("td", {}, el("pre", { class: "payload" }, JSON.stringify(e.data, null, 1)))));
  }
  table.append(body);
  return table;
}

async function stream(view, name) {
  const names = (await api("/api/streams")).streams;
  if (!name && names.length) name = names[0];
  const params = new URLSearchParams(location.hash.split("?")[1] || "");
  const select = el("select", { id: "stream-select", onchange: () => { location.hash = "#stream/" + select.value; } },
    names.map(n => el("option", { value: n, selected: n === name }, n)));
  const eventId = el("input", { id: "search-event-id", placeholder: "event id", value: params.get("event_id") || "" });
  const corr = el("input", { id: "search-correlation-id", placeholder: "correlation id", value: params.get("correlation_id") || "" });
  const form = el("form", { id: "search-form", onsubmit: (ev) => {
    ev.preventDefault();
    const q = new URLSearchParams();
    if (eventId.value.trim()) q.set("event_id", eventId.value.trim());
    if (corr.value.trim()) q.set("correlation_id", corr.value.trim());
    location.hash = "#stream/" + select.value + (q.toString() ? "?" + q : "");
  } }, select, eventId, corr, el("button", { type: "submit" }, "Search"));
  if (!name) { show(view, el("h2", {}, "Stream"), el("p", {}, "No streams.")); return; }
  const q = new URLSearchParams({ limit: "50" });
  for (const k of ["event_id", "correlation_id"]) if (params.get(k)) q.set(k, params.get(k));
  const data = await api("/api/streams/" + encodeURIComponent(name) + "/entries?" + q);
  show(view, el("h2", {}, "Stream " + name), form,
    el("p", {}, data.entries.length + " newest entries" + (params.toString() ? " matching" : "")),
    entryRows(data.entries, false));
}

async function correlation(view, id) {
  const data = await api("/api/correlation/" + encodeURIComponent(id));
  show(view, el("h2", {}, "Conversation " + data.correlation_id),
    el("p", {}, data.events.length + " events, oldest first, across every stream"),
    entryRows(data.events, true));
}

// ---- Dead letters ----

// A write in two steps: a dry run whose answer the confirmation shows, then the write itself.
function confirmWrite(path, body, question, sample, enabled, done, after) {
  return (async () => {
    const dry = await api(path, Object.assign({}, body, { dry_run: true }));
    const modal = document.getElementById("confirm");
    document.getElementById("confirm-text").textContent = question(dry);
    document.getElementById("confirm-sample").replaceChildren(...sample(dry));
    modal.hidden = false;
    const yes = document.getElementById("confirm-yes"), no = document.getElementById("confirm-no");
    yes.disabled = !enabled(dry);
    return new Promise((resolve) => {
      yes.onclick = async () => {
        modal.hidden = true;
        try {
          const result = await api(path, Object.assign({}, body, { dry_run: false }));
          flash(done(result));
          if (after) after();
        } catch (e) { showError(e); }
        resolve();
      };
      no.onclick = () => { modal.hidden = true; resolve(); };
    });
  })().catch(showError);
}

function confirmChange(action, selection, after) {
  return confirmWrite("/api/dead-letters/" + action, selection,
    (dry) => (action === "replay" ? "Replay " : "Purge ") + dry.count + " dead letter" + (dry.count === 1 ? "" : "s") + "?",
    (dry) => dry.letters.map(l => el("li", {}, l.stream + " " + l.id + " " + l.event_type + " [" + l.reason + "]")),
    (dry) => dry.count > 0,
    (done) => action + "ed " + done.count,
    after);
}

function confirmRemoveGroup(stream, group, after) {
  return confirmWrite("/api/groups/remove", { stream, group },
    (dry) => "Remove group " + group + " of stream " + stream + "?",
    (dry) => [el("li", {}, "pending " + dry.pending + ", lag " + (dry.lag === null ? "?" : dry.lag) +
      ", retrying " + dry.scheduled + ", " + dry.attempt_records + " attempt records")],
    () => true,
    () => "removed group " + group,
    after);
}

function flash(text) {
  const p = el("p", { id: "flash", class: "flash" }, text);
  const old = document.getElementById("flash");
  if (old) old.remove();
  document.querySelector("main").prepend(p);
}

async function deadLetters(view, only) {
  const params = new URLSearchParams(location.hash.split("?")[1] || "");
  const streamName = only || params.get("stream") || "";
  const names = (await api("/api/streams")).streams;
  const f = {
    stream: el("select", { id: "filter-stream" }, el("option", { value: "" }, "every stream"),
      names.map(s => el("option", { value: s, selected: s === streamName }, s))),
    group: el("input", { id: "filter-group", placeholder: "group", value: params.get("group") || "" }),
    reason: el("input", { id: "filter-reason", placeholder: "reason", value: params.get("reason") || "" }),
    older: el("input", { id: "filter-older", placeholder: "older than (min)", type: "number", min: 0, value: params.get("older") || "" }),
    newer: el("input", { id: "filter-newer", placeholder: "newer than (min)", type: "number", min: 0, value: params.get("newer") || "" }),
  };
  const criteria = () => {
    const c = {};
    if (f.stream.value) c.stream = f.stream.value;
    if (f.group.value.trim()) c.group = f.group.value.trim();
    if (f.reason.value.trim()) c.reason = f.reason.value.trim();
    const now = Date.now();
    if (f.older.value) c.until = now - Number(f.older.value) * 60000;
    if (f.newer.value) c.since = now - Number(f.newer.value) * 60000;
    return c;
  };
  const form = el("form", { id: "letters-filter", onsubmit: (ev) => {
    ev.preventDefault();
    const q = new URLSearchParams();
    for (const k of ["stream", "group", "reason", "older", "newer"]) if (f[k].value) q.set(k, f[k].value.trim());
    const next = "#dead-letters?" + q;
    if (location.hash === next) route(); else location.hash = next;
  } }, f.stream, f.group, f.reason, f.older, f.newer, el("button", { type: "submit" }, "Filter"));
  const c = criteria();
  const data = await api("/api/dead-letters?" + new URLSearchParams(c));
  const table = el("table", { id: "letters-table" }, el("thead", {}, el("tr", {},
    el("th", {}, ""), el("th", {}, "Stream"), el("th", {}, "Id"), el("th", {}, "Event"), el("th", {}, "Group"),
    el("th", {}, "Reason"), el("th", {}, "Attempts"), el("th", {}, "Failed"), el("th", {}, "Error"))));
  const body = el("tbody", {});
  for (const l of data.letters) {
    body.append(el("tr", { class: "letter", "data-stream": l.stream, "data-id": l.id },
      el("td", {}, el("input", { type: "checkbox", class: "pick", "aria-label": "select " + l.id })),
      el("td", {}, l.stream),
      el("td", {}, el("a", { class: "open", href: "#letter/" + l.stream + "/" + l.id }, l.id)),
      el("td", {}, l.event_type + " v" + l.version),
      el("td", {}, l.group), el("td", { class: "reason" }, l.reason), el("td", {}, l.attempts),
      el("td", {}, age(Date.now() - l.failed_at) + " ago"), el("td", { class: "err" }, l.error)));
  }
  table.append(body);
  const reload = () => route();
  const picked = () => [...body.querySelectorAll("tr.letter")].filter(r => r.querySelector(".pick").checked);
  const bySelection = (action) => () => {
    const rows = picked();
    if (!rows.length) { showError("select letters first"); return; }
    const streams = new Set(rows.map(r => r.dataset.stream));
    if (streams.size !== 1) { showError("select letters of one stream (or filter by stream)"); return; }
    confirmChange(action, { stream: rows[0].dataset.stream, ids: rows.map(r => r.dataset.id) }, reload);
  };
  const writes = state.session.writes ? el("div", { class: "actions" },
    el("button", { id: "replay-selected", type: "button", onclick: bySelection("replay") }, "Replay selected"),
    el("button", { id: "purge-selected", type: "button", onclick: bySelection("purge") }, "Purge selected"),
    el("button", { id: "replay-matching", type: "button", onclick: () => confirmChange("replay", criteria(), reload) }, "Replay all matching"),
    el("button", { id: "purge-matching", type: "button", onclick: () => confirmChange("purge", criteria(), reload) }, "Purge all matching")) : null;
  show(view, el("h2", {}, "Dead letters"), form, writes,
    el("p", { id: "letters-count" }, data.letters.length + " letters" + (data.letters.length >= data.limit ? " (first " + data.limit + ")" : "")),
    table);
}

async function letter(view, streamName, id) {
  const l = await api("/api/dead-letters/" + encodeURIComponent(streamName) + "/" + encodeURIComponent(id));
  const back = () => { location.hash = "#dead-letters?stream=" + streamName; };
  const row = (k, v, cls) => el("tr", {}, el("th", {}, k), el("td", { class: cls }, v));
  const writes = state.session.writes ? el("div", { class: "actions" },
    el("button", { id: "replay-one", type: "button", onclick: () => confirmChange("replay", { stream: streamName, ids: [id] }, back) }, "Replay"),
    el("button", { id: "purge-one", type: "button", onclick: () => confirmChange("purge", { stream: streamName, ids: [id] }, back) }, "Purge")) : null;
  show(view, el("h2", {}, "Dead letter " + l.id),
    el("table", { id: "letter-detail", "data-id": l.id },
      row("Stream", l.stream), row("Original entry", l.original_id), row("Event", l.event_type + " v" + l.version),
      row("Group", l.group), row("Handler", l.handler), row("Reason", l.reason, "reason"),
      row("Error", l.error, "err"), row("Attempts", l.attempts), row("Replays", l.replays),
      row("First failure", when(l.first_failed_at)), row("Last failure", when(l.failed_at)),
      row("Payload", el("pre", { class: "payload" }, JSON.stringify(l.data, null, 2)))),
    writes);
}

// ---- Groups ----

function confirmResetGroup(stream, group, after) {
  return confirmWrite("/api/groups/reset", { stream, group, to: "latest" },
    (dry) => "Skip group " + group + " of stream " + stream + " to the latest entry?",
    (dry) => [el("li", {}, "lag " + (dry.lag === null ? "?" : dry.lag) + " entries are skipped; " +
      dry.pending + " pending stay pending")],
    () => true,
    () => "reset group " + group + " to latest",
    after);
}

async function groups(view) {
  const offset = pageOffset();
  const data = await api("/api/groups?offset=" + offset + "&limit=" + PAGE);
  const table = el("table", { id: "groups-table" }, el("thead", {}, el("tr", {},
    el("th", {}, "Stream"), el("th", {}, "Group / consumer"), el("th", {}, "Lag"), el("th", {}, "Pending"),
    el("th", {}, "Idle"), el("th", {}, "Flags"), el("th", {}, ""))));
  const body = el("tbody", {});
  for (const s of data.streams) for (const g of s.groups) {
    const flags = [g.stale ? "stale" : null, g.never_active ? "never active" : null, g.holds_trim ? "holds trimming" : null].filter(Boolean).join(", ");
    body.append(el("tr", { class: "group" + (g.stale ? " stale" : ""), "data-stream": s.stream, "data-group": g.group },
      el("td", {}, s.stream), el("td", {}, g.group), el("td", {}, g.lag === null ? "?" : g.lag),
      el("td", {}, g.pending), el("td", {}, g.idle_ms === null ? "" : age(g.idle_ms)), el("td", { class: "flags" }, flags),
      el("td", { class: "group-actions" }, state.session.writes
        ? [el("button", { type: "button", class: "reset-group", onclick: () => confirmResetGroup(s.stream, g.group, () => route()) }, "Skip to latest"),
           el("button", { type: "button", class: "remove-group", onclick: () => confirmRemoveGroup(s.stream, g.group, () => route()) }, "Remove")]
        : null)));
    for (const c of g.consumer_list) {
      body.append(el("tr", { class: "consumer", "data-consumer": c.name },
        el("td", {}), el("td", {}, "\u2003" + c.name), el("td", {}), el("td", {}, c.pending),
        el("td", {}, c.idle_ms === null ? "" : age(c.idle_ms)), el("td", {}), el("td", {})));
    }
  }
  table.append(body);
  show(view, el("h2", {}, "Groups"),
    el("p", {}, "Stale: no consumer active for " + age(state.session.stale_after_ms) + "." +
      (state.session.writes ? " Removing a group also deletes its retry schedule and attempt records." : "")),
    pager("groups", "groups", data, offset), table);
}

// ---- Routing ----

async function route() {
  clearInterval(state.timer);
  showError(null);
  const view = document.getElementById("view");
  const hash = location.hash.replace(/^#/, "");
  const [path] = hash.split("?");
  const parts = path.split("/").map(decodeURIComponent);
  try {
    if (!state.session) state.session = await api("/api/session");
    document.getElementById("login").hidden = true;
    document.getElementById("mode").textContent =
      state.session.transport + " \u00b7 " + state.session.prefix + " \u00b7 " + (state.session.writes ? "writes allowed" : "read-only");
    switch (parts[0]) {
      case "stream": await stream(view, parts[1]); break;
      case "correlation": await correlation(view, parts[1]); break;
      case "dead-letters": await deadLetters(view, parts[1]); break;
      case "letter": await letter(view, parts[1], parts[2]); break;
      case "groups": await groups(view); break;
      default:
        await overview(view);
        state.timer = setInterval(() => overview(view).catch(showError), 2000);
    }
    document.body.dataset.view = parts[0] || "overview";
  } catch (e) { showError(e); }
}

document.addEventListener("DOMContentLoaded", () => {
  document.getElementById("login-form").addEventListener("submit", (ev) => {
    ev.preventDefault();
    sessionStorage.setItem("opsc-token", document.getElementById("token-input").value);
    route();
  });
  window.addEventListener("hashchange", route);
  route();
});
