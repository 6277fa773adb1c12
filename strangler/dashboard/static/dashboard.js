// The migration dashboard page: polls /api/state every second and draws it; no build step.
"use strict";

const POLL_MS = 1000;
const SVG = "http://www.w3.org/2000/svg";
const COLORS = ["#1f6feb", "#d97706"]; // monolith, service: blue and amber (colour-blind safe)
const $ = (id) => document.getElementById(id);

let csrf = "";
let lastHistoryVersion = null;
let lastOk = 0;
let polling = false;

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (name === "text") node.textContent = value;
    else node.setAttribute(name, value);
  }
  for (const child of children) node.append(child);
  return node;
}

function fmt(value, digits = 1, unit = "") {
  return value === null || value === undefined ? "–" : `${Number(value).toFixed(digits)}${unit}`;
}

function pct(share) {
  return share === null || share === undefined ? "–" : `${(share * 100).toFixed(1)}%`;
}

function ago(unixSeconds, now) {
  if (!unixSeconds) return "never";
  const s = Math.max(0, Math.round(now - unixSeconds));
  return s < 90 ? `${s} s ago` : `${Math.round(s / 60)} min ago`;
}

function banner(text) {
  const node = $("banner");
  node.hidden = !text;
  node.textContent = text || "";
}

// A small line chart: one polyline per series, gaps where a value is null.
function chart(title, t, lines, unit) {
  const w = 260, h = 70, pad = 2;
  const values = lines.flatMap((l) => l.values.filter((v) => v !== null));
  const top = Math.max(...values, 0) || 1;
  const svg = document.createElementNS(SVG, "svg");
  svg.setAttribute("viewBox", `0 0 ${w} ${h}`);
  svg.setAttribute("class", "chart");
  svg.setAttribute("role", "img");
  svg.setAttribute("aria-label", title);
  const axis = document.createElementNS(SVG, "line");
  for (const [k, v] of Object.entries({ x1: 0, y1: h - pad, x2: w, y2: h - pad, class: "axis" })) axis.setAttribute(k, v);
  svg.append(axis);
  lines.forEach((line, index) => {
    let d = "";
    let pen = false;
    line.values.forEach((v, i) => {
      if (v === null) { pen = false; return; }
      const x = (i / Math.max(1, t.length - 1)) * w;
      const y = h - pad - (v / top) * (h - 2 * pad - 10);
      // A segment starts with a dot, so a lone point (one busy bin) still shows.
      d += pen ? `L${x.toFixed(1)},${y.toFixed(1)} ` : `M${x.toFixed(1)},${y.toFixed(1)} l0.01,0 `;
      pen = true;
    });
    const path = document.createElementNS(SVG, "path");
    path.setAttribute("d", d.trim() || "M0,0");
    path.setAttribute("fill", "none");
    path.setAttribute("stroke", COLORS[index % COLORS.length]);
    path.setAttribute("stroke-width", "1.6");
    path.setAttribute("stroke-linecap", "round");
    svg.append(path);
  });
  const label = document.createElementNS(SVG, "text");
  label.setAttribute("x", 2);
  label.setAttribute("y", 10);
  label.setAttribute("class", "chart-label");
  label.textContent = `${title} (max ${fmt(top, top < 10 ? 2 : 0)}${unit})`;
  svg.append(label);
  return svg;
}

async function api(method, path, body) {
  const headers = { "X-CSRF-Token": csrf };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const response = await fetch(path, {
    method, headers, credentials: "same-origin",
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  let data = {};
  try { data = await response.json(); } catch (_) { /* not JSON: keep {} */ }
  return { status: response.status, data };
}

function explain(data) {
  const lines = [data.error || "failed"];
  for (const m of data.errors || []) lines.push(`${m.id} ${m.field}: ${m.message}${m.hint ? ` (hint: ${m.hint})` : ""}`);
  if (data.hint) lines.push(data.hint);
  return lines.join("\n");
}

// The confirmation for anything that changes the table: says what moves, asks why.
function confirmChange(title, text, perform) {
  const dialog = $("confirm");
  $("confirm-title").textContent = title;
  $("confirm-text").textContent = text;
  $("confirm-why").value = "";
  $("confirm-error").textContent = "";
  $("confirm-ok").onclick = async () => {
    const why = $("confirm-why").value.trim();
    if (!why) { $("confirm-error").textContent = "Say why: the reason is recorded in the audit log."; return; }
    $("confirm-ok").disabled = true;
    try {
      const { status, data } = await perform(why);
      if (status === 200) { dialog.close(); $("notice").textContent = `Route table version ${data.version} accepted: ${data.why}`; poll(); }
      else if (status === 401) { dialog.close(); showSignIn(`Your session ended, so nothing was changed: ${data.error}.`); }
      else $("confirm-error").textContent = explain(data);
    } catch (error) {
      $("confirm-error").textContent = `The dashboard did not answer, nothing known to have changed: ${error}`;
    } finally {
      $("confirm-ok").disabled = false;
    }
  };
  $("confirm-cancel").onclick = () => dialog.close();
  dialog.showModal();
  $("confirm-why").focus();
}

function routeCard(route) {
  const card = el("article", { class: "route", id: `route-${route.id}` });
  const weight = el("input", { type: "number", min: "0", max: "100", step: "0.01", class: "weight-input", "aria-label": `new weight for ${route.id}` });
  const form = el("form", { class: "weight-form" }, el("label", { text: "set weight " }, weight), el("button", { type: "submit", text: "Change…" }));
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const card = $(`route-${route.id}`);
    const now = card.dataset;
    const target = weight.value.trim();
    if (target === "") return;
    const seen = Number(now.version); // the table this user decides on: refused if it moves
    confirmChange(
      `Change the weight of ${route.id}`,
      `This moves traffic: ${route.id} goes from ${now.weight}% to ${target}% on ${now.service} ` +
        `(the rest on ${now.monolith}). Raising it moves users to the service; lowering it sends them back.`,
      (why) => api("POST", `/api/routes/${encodeURIComponent(route.id)}/weight`, { weight: target, why, seen_version: seen }),
    );
  });
  card.append(
    el("div", { class: "route-head" },
      el("h3", { text: route.id }),
      el("span", { class: "match" }),
      el("span", { class: "state" }),
      el("span", { class: "weight" }),
      form),
    el("div", { class: "split" }),
    el("table", { class: "backends" }),
    el("div", { class: "fallbacks muted small" }),
    el("div", { class: "charts" }),
  );
  return card;
}

function drawRoute(card, route) {
  Object.assign(card.dataset, { weight: route.weight, service: route.service, monolith: route.monolith });
  const q = (sel) => card.querySelector(sel);
  const methods = route.methods.length ? ` [${route.methods.join(",")}]` : "";
  q(".match").textContent = `${route.host ? route.host + " " : ""}${route.match}${methods}`;
  q(".state").textContent = route.state;
  q(".state").className = `state state-${route.state}`;
  q(".weight").textContent = `weight ${route.weight}% to ${route.service}` +
    (route.shadow ? ` · shadow ${route.shadow}% to parity` : "");
  const [mono, svc] = route.backends;
  const total = mono.rps + svc.rps;
  const split = q(".split");
  split.replaceChildren();
  if (total > 0) {
    const bar = el("div", { class: "bar" });
    for (const [index, b] of [mono, svc].entries()) {
      const part = el("div", { class: `part part-${index}`, title: `${b.backend}: ${pct(b.share)}` });
      part.style.flexGrow = String(b.rps);
      part.textContent = b.share >= 0.08 ? `${b.backend} ${pct(b.share)}` : "";
      bar.append(part);
    }
    split.append(bar, el("span", { class: "split-text", text: `live split: ${mono.backend} ${pct(mono.share)} · ${svc.backend} ${pct(svc.share)} · ${fmt(total, 1)} req/s` }));
  } else {
    split.append(el("span", { class: "empty", text: `No traffic on ${route.id} in the last 10 s: send requests through the proxy (or check that the proxy replicas above are up).` }));
  }
  const rows = [el("tr", {}, ...["backend", "req/s", "share", "requests 60 s", "5xx", "p50", "p99", "breaker"].map((h) => el("th", { text: h })))];
  [mono, svc].forEach((b, index) => {
    rows.push(el("tr", { class: `backend-${index}` },
      el("td", {}, el("span", { class: `swatch part-${index}` }), ` ${b.backend}`),
      el("td", { text: fmt(b.rps, 1) }),
      el("td", { text: pct(b.share) }),
      el("td", { text: String(b.requests) }),
      el("td", { class: b.error_rate > 0.01 ? "bad" : "", text: b.requests ? `${pct(b.error_rate)} (${b.errors})` : "–" }),
      el("td", { text: fmt(b.p50_ms, 1, " ms") }),
      el("td", { text: fmt(b.p99_ms, 1, " ms") }),
      el("td", { class: b.breaker === "closed" ? "" : "bad", text: b.breaker })));
  });
  q(".backends").replaceChildren(...rows);
  const fb = Object.entries(route.fallbacks);
  q(".fallbacks").textContent = fb.length
    ? `fallbacks to ${route.monolith} (60 s): ${fb.map(([reason, n]) => `${reason} ${n}`).join(", ")}`
    : "no fallbacks to the monolith in the last 60 s";
  const shadowed = Object.entries(route.shadow_outcomes);
  if (shadowed.length) q(".fallbacks").textContent += ` · shadow copies (60 s): ${shadowed.map(([outcome, n]) => `${outcome} ${n}`).join(", ")}`;
  const s = route.series;
  const pick = (key, scale = 1) => [mono, svc].map((b) => ({ values: s[b.backend][key].map((v) => (v === null ? null : v * scale)) }));
  q(".charts").replaceChildren(
    chart("req/s", s.t, pick("rps"), ""),
    chart("5xx %", s.t, pick("error_rate", 100), "%"),
    chart("p99 ms", s.t, pick("p99_ms"), " ms"),
  );
}

function drawRoutes(table, now) {
  const box = $("routes");
  if (table.error) {
    box.replaceChildren(el("p", { class: "error", text: `${table.error}. Check the dashboard's --config / --database-url.` }));
    return;
  }
  $("table-line").textContent = `route table v${table.version} · ${table.who} · ${table.at}${table.why ? ` · “${table.why}”` : ""}`;
  const wanted = table.routes.map((r) => `route-${r.id}`);
  for (const child of [...box.children]) if (!wanted.includes(child.id)) child.remove();
  table.routes.forEach((route, index) => {
    let card = $(`route-${route.id}`);
    if (!card) card = routeCard(route);
    if (box.children[index] !== card) box.insertBefore(card, box.children[index] || null);
    card.dataset.version = table.version;
    drawRoute(card, route);
  });
  if (!table.routes.length) {
    box.replaceChildren(el("p", { class: "empty", text: `No routes yet: every path goes to ${table.default_backend}. Add one with \`strangler route set FILE\`.` }));
  }
  const u = table.unmatched;
  $("unmatched").textContent = `paths no route matches go to ${table.default_backend}: ${fmt(u.rps, 1)} req/s, ${u.requests} in 60 s, 5xx ${pct(u.error_rate)}`;
}

function drawHistory(table) {
  if (table.error || table.version === lastHistoryVersion) return;
  lastHistoryVersion = table.version;
  const rows = table.history.map((v) => {
    const details = el("details", {}, el("summary", { text: "before / after" }),
      el("pre", { text: `before:\n${JSON.stringify(v.before, null, 1)}\n\nafter:\n${JSON.stringify(v.after, null, 1)}` }));
    const action = el("td");
    if (v.version !== table.version) {
      const button = el("button", { type: "button", class: "rollback", text: `Roll back to v${v.version}` });
      button.addEventListener("click", () => confirmChange(
        `Roll back to version ${v.version}`,
        `This moves traffic: the whole table of version ${v.version} (${v.at}, by ${v.who}) becomes current again as a new version.`,
        (why) => api("POST", "/api/rollback", { version: v.version, why, seen_version: table.version }),
      ));
      action.append(button);
    } else {
      action.append(el("span", { class: "muted", text: "current" }));
    }
    return el("tr", { "data-version": v.version },
      el("td", { text: `v${v.version}` }), el("td", { text: v.at.replace("T", " ").slice(0, 19) }),
      el("td", { text: v.who }), el("td", { class: "why", text: v.why }),
      el("td", {}, el("div", { text: v.changes.join("; ") }), details), action);
  });
  $("history").querySelector("tbody").replaceChildren(...rows);
}

function drawReplicas(replicas, now) {
  const box = $("replicas");
  if (!replicas.length) {
    box.replaceChildren(el("span", { class: "empty", text: "no proxy replicas: start the dashboard with --proxy-admin URL" }));
    return;
  }
  box.replaceChildren(...replicas.map((r) => el("span", {
    class: `replica ${r.up ? (r.store_healthy ? "up" : "stale") : "down"}`,
    title: r.up ? `table v${r.config_version}` : `not answering: ${r.error}`,
    text: `${r.url.replace("http://", "")} ${r.up ? `up · v${r.config_version}${r.store_healthy ? "" : " · store unreadable"}` : `down (${ago(r.last_ok, now)})`}`,
  })));
  const down = replicas.filter((r) => !r.up);
  const stale = replicas.filter((r) => r.up && !r.store_healthy);
  if (down.length) banner(`Proxy ${down.map((r) => r.url).join(", ")} not answering (${down[0].error}); its traffic is missing from the figures until it is back.`);
  else if (stale.length) banner(`Proxy ${stale.map((r) => r.url).join(", ")} cannot read the route store: it keeps serving table v${stale[0].config_version}, and changes made here do not reach it until it can.`);
}

function drawCdc(cdc, now) {
  const box = $("cdc");
  const parts = [];
  if (!cdc.projects.length) {
    parts.push(el("p", { class: "empty", text: "No CDC projects: start the dashboard with --cdc-settings monolith.settings (the capturing project) and --cdc-settings for each receiving service, to see outbox backlog, lag and dead letters." }));
  }
  for (const p of cdc.projects) {
    const s = p.status;
    const rows = []; // [label, value, alarming]
    if ("outbox_backlog" in s) {
      rows.push(["outbox backlog", `${s.outbox_backlog} rows`, false],
        ["lag (oldest unpublished)", fmt(s.oldest_unpublished_seconds, 1, " s"), false]);
    }
    if ("oldest_unapplied_seconds" in s) {
      // End to end: changes the receiving projects on this page have not applied yet.
      rows.push(["not yet applied", `${s.unapplied} changes`, false],
        ["lag end to end (oldest unapplied)", fmt(s.oldest_unapplied_seconds, 1, " s"), false]);
    }
    if ("dead_letters" in s) {
      rows.push(["dead letters pending", String(s.dead_letters), s.dead_letters > 0],
        ["keys parked", String(s.parked_keys), s.parked_keys > 0],
        ["rows tracked", String(s.rows_tracked), false]);
    }
    const body = p.error
      ? el("p", { class: "error", text: `cannot read: ${p.error}` })
      : !p.at ? el("p", { class: "muted", text: "reading…" })
      : el("table", { class: "kv" }, ...rows.map(([k, v, bad]) => el("tr", {}, el("th", { text: k }), el("td", { class: bad ? "bad" : "", text: v }))));
    const project = el("div", { class: "cdc-project" }, el("h3", { text: p.settings }));
    if (p.stale) {
      project.append(el("p", { class: "bad stale", text: `read ${ago(p.at, now)}, no newer reading: \`strangler cdc status\` has not answered since, so what follows is from then` }));
    }
    project.append(body);
    if (s.dead_letters) {
      const show = el("button", { type: "button", class: "show-parked", text: "Show what is parked" });
      show.addEventListener("click", () => showParked(p.settings));
      project.append(el("p", { class: "small" }, show, ` or \`strangler cdc --settings ${p.settings} dead-letters list\``));
    }
    parts.push(project);
  }
  const r = cdc.reconcile;
  if (!r) parts.push(el("p", { class: "empty", text: "No reconcile recorded: run `strangler cdc --settings SERVICE reconcile --json > reconcile.json` and start the dashboard with --reconcile-report reconcile.json." }));
  else if (r.error) parts.push(el("p", { class: "error", text: `reconcile report ${r.file}: ${r.error}` }));
  else parts.push(el("p", { class: r.drifted ? "bad" : "" , text: `last reconcile ${ago(r.at, now)}: ${r.drifted} rows drifted` + (r.tables.length ? ` (${r.tables.map((t) => `${t.table} ${t.drifted}`).join(", ")})` : "") }));
  box.replaceChildren(...parts);
}

function statusText(statuses) {
  return statuses.map(([p, c, n]) => `${p}/${c}: ${n}`).join(", ");
}

async function showExample(route, endpoint, field) {
  const box = $("example");
  box.hidden = false;
  box.replaceChildren(el("p", { class: "muted", text: `loading the example of ${field}…` }));
  const query = new URLSearchParams({ route, endpoint, field });
  const { status, data } = await api("GET", `/api/parity/example?${query}`);
  if (status !== 200) { box.replaceChildren(el("p", { class: "error", text: explain(data) })); return; }
  const side = (name, reply) => el("div", { class: "side" },
    el("h4", { text: `${name}: ${reply.status || reply.error} · ${fmt(reply.latency_ms, 1, " ms")}` }),
    el("pre", { text: prettyBody(reply.body) }));
  const close = el("button", { type: "button", text: "Close" });
  close.addEventListener("click", () => { box.hidden = true; });
  box.replaceChildren(
    el("div", { class: "example-head" }, el("h3", { text: `${data.method} ${data.path} · ${field}` }), close),
    el("div", { class: "sides" }, side("monolith (primary)", data.primary), side("service (candidate)", data.candidate)));
}

function prettyBody(body) {
  try { return JSON.stringify(JSON.parse(body), null, 1); } catch (_) { return body; }
}

function parityRoute(summary, windowS) {
  const card = el("article", { class: "parity-route", id: `parity-${summary.route}` });
  const head = `${summary.route}: ${summary.samples} samples in the last ${Math.round(windowS / 60)} min`;
  if (!summary.samples) {
    card.append(el("h3", { text: summary.route }), el("p", { class: "empty", text: `No parity samples for ${summary.route} in the last hour: set a shadow share with \`strangler route shadow ${summary.route} 10\` (or replay a HAR with \`strangler parity replay\`).` }));
    return card;
  }
  card.append(el("h3", {},
    el("span", { class: summary.parity < 99 ? "bad" : "", text: `parity ${fmt(summary.parity, 2, "%")}` }),
    ` · raw ${fmt(summary.raw_parity, 2, "%")} · ${head}`));
  if (summary.data) card.append(el("p", { class: summary.data.drifted ? "bad small" : "small", text: `data: ${summary.data.rows_compared} rows compared, ${summary.data.drifted} drifted (${summary.data.tables.join(", ")})` }));
  const rows = [el("tr", {}, ...["endpoint", "samples", "parity", "raw", "statuses monolith/service: count", "p99 monolith / service", "top differing fields"].map((h) => el("th", { text: h })))];
  for (const e of summary.endpoints) {
    const fields = el("td", { class: "fields" });
    for (const f of e.fields) {
      const button = el("button", { type: "button", class: `field ${f.regression ? "regression" : "noise"}`, title: `${f.kind}: ${f.raw} differing, ${fmt(f.noise, 1)} expected from noise`, text: `${f.path} ${f.raw}${f.regression ? " ✗" : ""}` });
      button.addEventListener("click", () => showExample(summary.route, e.endpoint, f.path));
      fields.append(button, " ");
    }
    if (!e.fields.length) fields.append(el("span", { class: "muted", text: "none" }));
    rows.push(el("tr", { "data-endpoint": e.endpoint },
      el("td", { class: "match", text: e.endpoint }), el("td", { text: String(e.samples) }),
      el("td", { class: e.parity < 99 ? "bad" : "", text: fmt(e.parity, 2, "%") }),
      el("td", { text: fmt(e.raw_parity, 2, "%") }), el("td", { text: statusText(e.statuses) }),
      el("td", { text: `${fmt(e.primary_latency.p99_ms, 1)} / ${fmt(e.candidate_latency.p99_ms, 1)} ms` }),
      fields));
  }
  card.append(el("table", { class: "endpoints" }, ...rows));
  return card;
}

function drawParity(reading, now) {
  const box = $("parity");
  if (!reading) {
    box.replaceChildren(el("p", { class: "empty", text: "No parity store: start the dashboard with --parity-store parity.sqlite3 (where shadow traffic and `strangler parity replay` record comparisons) to see parity per route and endpoint." }));
  } else if (reading.error) {
    box.replaceChildren(el("p", { class: "error", text: reading.error }));
  } else if (!reading.at) {
    box.replaceChildren(el("p", { class: "muted", text: "reading…" }));
  } else {
    box.replaceChildren(...staleNote(reading, "the parity store", now), ...reading.routes.map((r) => parityRoute(r, reading.window_s)));
  }
}

// A reading the watcher has not renewed (its store hangs): say so above the old figures.
function staleNote(reading, source, now) {
  return reading.stale ? [el("p", { class: "bad stale", text: `read ${ago(reading.at, now)}, no newer reading: ${source} has not answered since, so what follows is from then` })] : [];
}

const MARKS = { passed: "ok", failed: "FAIL", paused: "PAUSE", current: ">>", pending: "··" };

function gateRow(gate) {
  const readings = el("details", {}, el("summary", { text: "readings" }),
    el("pre", { text: JSON.stringify({ readings: gate.readings, samples: gate.samples }, null, 1) }));
  const samples = Object.entries(gate.samples || {}).map(([k, v]) => `${k} ${v}`).join(", ");
  return el("tr", { class: `gate gate-${gate.outcome}` },
    el("td", { class: `outcome outcome-${gate.outcome}`, text: gate.outcome }),
    el("td", { text: gate.gate }),
    el("td", { class: "reason", text: gate.reason }),
    el("td", { text: gate.threshold || "" }),
    el("td", { text: samples || "–" }),
    el("td", {}, readings));
}

function runCard(run) {
  const active = run.state === "running" || run.state === "paused";
  const current = run.steps.find((s) => s.id === run.step);
  const head = el("div", { class: "run-head" },
    el("h3", { text: `${run.runbook} · ${run.id}` }),
    el("span", { class: `state state-run-${run.state}`, text: run.state }),
    el("span", { class: "muted small", text: Object.entries(run.params).map(([k, v]) => `${k}=${v}`).join(" ") }));
  const act = (action, label, text, body = {}) => {
    const button = el("button", { type: "button", class: `run-${action}`, text: label });
    button.addEventListener("click", () => confirmChange(`${label} run ${run.id}`, text,
      (why) => api("POST", `/api/runs/${encodeURIComponent(run.id)}/${action}`, { why, ...body })));
    head.append(button);
  };
  if (active && current && current.action === "approve") {
    // the step shown, not whichever one the run waits at when this is confirmed
    act("approve", "Approve", `Approving step ${current.id} ("${current.title}") lets the run go on to its next steps, which may move traffic.`, { step: current.id });
  }
  if (active) act("abort", "Abort", `Aborting stops run ${run.id} for good where it is; the route table stays as it is now.`);
  const card = el("article", { class: "run", id: `run-${run.id}` }, head);
  if (run.reason) card.append(el("p", { class: run.state === "paused" ? "bad" : "muted", text: run.reason }));
  for (const [index, step] of run.steps.entries()) {
    const tries = step.attempts > 1 ? ` (attempt ${step.attempts})` : "";
    card.append(el("div", { class: `step step-${step.state}`, "data-step": step.id },
      el("span", { class: "mark", text: MARKS[step.state] || step.state }),
      ` ${index + 1}. ${step.id} · ${step.title}${tries}`));
    if (step.gates.length) {
      card.append(el("table", { class: "gates", "data-step": step.id },
        el("tr", {}, ...["verdict", "gate", "why", "threshold", "samples", ""].map((h) => el("th", { text: h }))),
        ...step.gates.map(gateRow)));
    }
  }
  const shown = ["rolled_back", "paused", "approved", "aborted", "manual_rollback"];
  for (const d of run.decisions.filter((d) => shown.includes(d.kind))) {
    card.append(el("p", { class: "small decision", text: `${d.at.replace("T", " ").slice(0, 19)} ${d.kind} ${d.step} by ${d.who}: ${d.why}` }));
  }
  return card;
}

function drawRunbooks(reading, now) {
  const box = $("runbooks");
  if (!reading) {
    box.replaceChildren(el("p", { class: "empty", text: "No run store: start the dashboard with --runbook-store strangler-runs.sqlite3 (where `strangler runbook run` keeps its runs) to follow runs and their gate readings, and approve or abort them." }));
  } else if (reading.error) {
    box.replaceChildren(el("p", { class: "error", text: reading.error }));
  } else if (!reading.runs.length) {
    box.replaceChildren(el("p", { class: "empty", text: reading.at ? "No runbook runs yet: start one with `strangler runbook run extract-context -p route=ROUTE ...` (see docs/runbook.md)." : "reading…" }));
  } else {
    // Redrawn every poll: keep the "readings" a person opened open.
    const open = new Set([...box.querySelectorAll("details[open]")].map(keyOf));
    box.replaceChildren(...staleNote(reading, "the run store", now), ...reading.runs.map(runCard));
    for (const d of box.querySelectorAll("details")) if (open.has(keyOf(d))) d.open = true;
  }
}

function keyOf(details) {
  const row = details.closest("tr");
  return `${details.closest(".run")?.id}/${details.closest("table")?.dataset.step}/${row ? row.rowIndex : ""}`;
}

async function showParked(settings) {
  const box = $("parked");
  box.hidden = false;
  box.replaceChildren(el("p", { class: "muted", text: `listing the dead letters of ${settings}…` }));
  const { status, data } = await api("GET", `/api/cdc/dead-letters?${new URLSearchParams({ settings })}`);
  if (status !== 200) { box.replaceChildren(el("p", { class: "error", text: explain(data) })); return; }
  const close = el("button", { type: "button", text: "Close" });
  close.addEventListener("click", () => { box.hidden = true; });
  const rows = data.dead_letters.map((d) => el("tr", {},
    ...[d.table, d.key, String(d.attempts), d.error, `${d.topic}[${d.partition}]@${d.offset}`, d.created_at.replace("T", " ").slice(0, 19)].map((v) => el("td", { text: v }))));
  box.replaceChildren(
    el("div", { class: "example-head" }, el("h3", { text: `parked in ${settings}: ${data.dead_letters.length}` }), close),
    el("table", { class: "parked" },
      el("tr", {}, ...["table", "key", "attempts", "error", "where", "parked at (UTC)"].map((h) => el("th", { text: h }))),
      ...rows),
    el("p", { class: "small muted", text: `replay after a fix: strangler cdc --settings ${settings} dead-letters replay --key KEY` }));
}

function drawReport(hasReport) {
  $("report").replaceChildren(hasReport
    ? el("a", { href: "/report", target: "_blank", rel: "noopener", text: "Open the analyzer's context map (HTML report)" })
    : el("p", { class: "empty", text: "No analyzer report: run `strangler analyze PATH --format html -o report.html` and start the dashboard with --report report.html." }));
}

function showSignIn(why) {
  $("board").hidden = true;
  $("sign-out").hidden = true;
  $("actor").textContent = "";
  $("sign-in").hidden = false;
  if (why) $("sign-in-why").textContent = why;
}

async function poll() {
  if (polling || document.hidden) return; // a tab nobody looks at asks for nothing
  polling = true;
  let result;
  try {
    result = await api("GET", "/api/state");
  } catch (error) {
    banner(`The dashboard is not answering (last update ${ago(lastOk, Date.now() / 1000)}); retrying.`);
    return;
  } finally {
    polling = false;
  }
  const { status, data } = result;
  if (status === 401 || data.signed_in === false) { showSignIn(); return; }
  if (status !== 200) { banner(`The dashboard answered ${status}: ${explain(data)}`); return; }
  lastOk = data.now;
  csrf = data.csrf;
  banner("");
  $("sign-in").hidden = true;
  $("board").hidden = false;
  $("sign-out").hidden = false;
  $("actor").textContent = `signed in as ${data.actor}`;
  drawReplicas(data.replicas, data.now);
  drawRoutes(data.table, data.now);
  drawHistory(data.table);
  drawCdc(data.cdc, data.now);
  drawReport(data.report);
  drawRunbooks(data.runbooks, data.now);
  drawParity(data.parity, data.now);
}

async function signIn(event) {
  event.preventDefault();
  $("sign-in-error").textContent = "";
  try {
    const { status, data } = await api("POST", "/api/session", { token: $("token").value, actor: $("name").value });
    if (status !== 200) { $("sign-in-error").textContent = explain(data); return; }
  } catch (error) {
    $("sign-in-error").textContent = `The dashboard did not answer: ${error}`;
    return;
  }
  $("token").value = "";
  lastHistoryVersion = null;
  poll();
}

async function signOut() {
  await api("DELETE", "/api/session");
  showSignIn("Signed out. Sign in with the admin token to see and change the migration.");
}

document.addEventListener("DOMContentLoaded", () => {
  $("sign-in-form").addEventListener("submit", signIn);
  // Enter in the reason field confirms; without this the dialog form would just close.
  $("confirm").querySelector("form").addEventListener("submit", (event) => {
    event.preventDefault();
    $("confirm-ok").click();
  });
  $("sign-out").addEventListener("click", signOut);
  document.addEventListener("visibilitychange", poll);
  poll();
  setInterval(poll, POLL_MS);
});
