// The controller's web page: the network drawn from GET /api/v1/layout, its links coloured from
// GET /api/v1/links every second, candidate paths (GET /api/v1/paths), flows and why each took
// its path (GET /api/v1/decisions), and the policy switched with PUT /api/v1/policy. Plain SVG
// built here; every text from the API goes in as text (textContent), never as markup. The token
// is typed by the user and kept in this tab's sessionStorage; the server never puts it in the page.
"use strict";

const API = "/api/v1/";
const POLL_MS = 1000;
const HISTORY_S = 300;                 // what a link's charts show: the last 5 minutes
const TOKEN_KEY = "sdn-lb-api-token";
const SVG = "http://www.w3.org/2000/svg";
const W = 1000, H = 700, PAD_X = 60, PAD_Y = 40;

const state = {
  nodes: new Map(),          // name -> {name, kind, x, y (pixels)}
  lines: new Map(),          // "a>b" -> the <line> of that direction of a switch link
  history: new Map(),        // "a>b" -> [{t, utilisation, loss, latency_ms}], the last HISTORY_S seconds
  latest: new Map(),         // "a>b" -> the link's last GET /links entry
  up: new Set(),             // "a>b" discovered now (GET /topology)
  drawnNodes: "",            // the node names the picture was drawn for
  selected: null,            // "a>b" of the clicked link
  picked: [],                // hosts clicked on the map, for the pair
  policy: null,              // the policy the server said last
  decisionFlow: null,        // the flow whose decision is shown
};

const $ = (id) => document.getElementById(id);

function svg(tag, attrs, parent) {
  const e = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
  if (parent) parent.appendChild(e);
  return e;
}

function html(tag, text, attrs) {
  const e = document.createElement(tag);
  if (text !== undefined && text !== null) e.textContent = text;
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
  return e;
}

async function get(resource) {
  const response = await fetch(API + resource, {cache: "no-store"});
  const body = await response.json();
  if (!response.ok) throw new Error(body.error || `${resource}: HTTP ${response.status}`);
  return body;
}

function say(text, isError, where = "status") {
  const s = $(where);
  s.textContent = text;
  s.classList.toggle("error", !!isError);
}

// -- numbers ----------------------------------------------------------------------------------
const pct = (x) => (x === null || x === undefined ? "n/a" : `${(100 * x).toFixed(1)}%`);
const num = (x, digits = 2) => (x === null || x === undefined ? "n/a" : Number(x).toFixed(digits));

function colour(utilisation) {
  const u = Math.max(0, Math.min(1, utilisation || 0));
  return `hsl(${Math.round(120 * (1 - u))}, 70%, 40%)`;
}

// -- the picture ------------------------------------------------------------------------------
function place(node) {
  return {...node, x: PAD_X + node.x * (W - 2 * PAD_X), y: PAD_Y + node.y * (H - 2 * PAD_Y)};
}

function draw(layout) {
  const root = $("net");
  root.replaceChildren();
  state.nodes = new Map(layout.nodes.map((n) => [n.name, place(n)]));
  state.lines = new Map();
  state.drawnNodes = layout.nodes.map((n) => n.name).sort().join(",");
  $("spec").textContent = layout.spec ? `spec ${layout.spec}` : "no spec: discovered only";
  const switchCaps = layout.links.filter((l) => l.kind === "switch").map((l) => l.capacity_mbps);
  const maxCap = Math.max(1, ...switchCaps);
  svg("g", {id: "highlight"}, root);      // under the links: a halo around the chosen path
  const links = svg("g", {id: "links"}, root);
  for (const link of layout.links) {
    const a = state.nodes.get(link.a), b = state.nodes.get(link.b);
    if (link.kind === "host") {
      const line = svg("line", {x1: a.x, y1: a.y, x2: b.x, y2: b.y, class: "link host-link", "stroke-width": 2,
                                "data-a": link.a, "data-b": link.b}, links);
      svg("title", {}, line).textContent = `${link.a} - ${link.b}: host link, ${link.capacity_mbps} Mbit/s`;
      continue;
    }
    const width = 2 + 6 * link.capacity_mbps / maxCap;
    for (const [from, to] of [[a, b], [b, a]]) {
      const len = Math.hypot(to.x - from.x, to.y - from.y) || 1;
      const off = width / 2 + 1;            // each direction on its right-hand side
      const nx = -(to.y - from.y) / len * off, ny = (to.x - from.x) / len * off;
      const key = `${from.name}>${to.name}`;
      const line = svg("line", {x1: from.x + nx, y1: from.y + ny, x2: to.x + nx, y2: to.y + ny,
                                class: "link", stroke: "#9aa4ae", "stroke-width": width,
                                "data-src": from.name, "data-dst": to.name,
                                "data-capacity-mbps": link.capacity_mbps}, links);
      svg("title", {}, line);
      line.addEventListener("click", () => selectLink(key));
      state.lines.set(key, line);
    }
  }
  const nodes = svg("g", {id: "nodes"}, root);
  for (const n of state.nodes.values()) {
    const g = svg("g", {class: `node ${n.kind}`, "data-name": n.name, transform: `translate(${n.x},${n.y})`}, nodes);
    if (n.kind === "switch") svg("circle", {r: 17}, g);
    else svg("rect", {x: -19, y: -11, width: 38, height: 22, rx: 4}, g);
    svg("text", {}, g).textContent = n.name;
    svg("title", {}, g).textContent = n.kind === "host" ? `${n.name} ${n.ip || ""}: click two hosts for their paths`
                                                           : `switch ${n.name}`;
    if (n.kind === "host") g.addEventListener("click", () => pickHost(n.name));
  }
  fillHostSelects(layout.nodes.filter((n) => n.kind === "host").map((n) => n.name));
}

function paint() {
  for (const [key, line] of state.lines) {
    const m = state.latest.get(key);
    const up = state.up.has(key);
    const known = up && m && m.known;
    line.classList.toggle("down", !up);
    line.classList.toggle("unknown", up && !known);
    line.classList.toggle("selected", key === state.selected);
    line.setAttribute("stroke", !up ? "#3a3f45" : known ? colour(m.utilisation) : "#9aa4ae");
    line.setAttribute("data-state", !up ? "down" : known ? "measured" : "unknown");
    line.setAttribute("data-utilisation", known ? m.utilisation : "");
    const [src, dst] = key.split(">");
    line.firstChild.textContent = !up ? `${src} -> ${dst}: down (not discovered)`
      : !known ? `${src} -> ${dst}: no recent statistics`
      : `${src} -> ${dst}: ${pct(m.utilisation)} of ${m.capacity_mbps} Mbit/s, loss ${pct(m.loss)}, `
        + `latency ${num(m.latency_ms)} ms`;
  }
}

// -- a link's history -------------------------------------------------------------------------
function remember(links, now) {
  for (const m of links) {
    const key = `${m.src}>${m.dst}`;
    state.latest.set(key, m);
    const series = state.history.get(key) || [];
    series.push({t: now, utilisation: m.known ? m.utilisation : null, loss: m.known ? m.loss : null,
                 latency_ms: m.latency_ms});
    while (series.length && series[0].t < now - HISTORY_S * 1000) series.shift();
    state.history.set(key, series);
  }
}

function selectLink(key) {
  state.selected = key;
  paint();
  showLink();
}

function chart(series, field, label, fixedMax, format, now) {
  const w = 360, h = 64, top = 12, bottom = 4;
  const box = svg("svg", {class: "chart", viewBox: `0 0 ${w} ${h}`, preserveAspectRatio: "none",
                          "data-field": field});
  const values = series.map((s) => s[field]).filter((v) => v !== null && v !== undefined);
  const max = fixedMax || Math.max(...values, 1e-9) * 1.1;
  svg("line", {x1: 0, y1: h - bottom, x2: w, y2: h - bottom, class: "axis"}, box);
  let d = "", pen = "M";
  for (const s of series) {
    const v = s[field];
    if (v === null || v === undefined) { pen = "M"; continue; }
    const x = w - (now - s.t) / (HISTORY_S * 1000) * w;
    const y = h - bottom - (h - top - bottom) * Math.min(v / max, 1);
    d += `${pen}${x.toFixed(1)},${y.toFixed(1)} `;
    pen = "L";
  }
  svg("path", {d: d || "M0,0", class: "line"}, box);
  const last = values.length ? values[values.length - 1] : null;
  svg("text", {x: 2, y: 10}, box).textContent =
    `${label}: ${format(last)} now, ${format(values.length ? Math.max(...values) : null)} max over ${HISTORY_S / 60} min`;
  return box;
}

function showLink() {
  const key = state.selected;
  const detail = $("link-detail");
  if (!key) return;
  const m = state.latest.get(key);
  const [src, dst] = key.split(">");
  $("link-hint").textContent = `${src} -> ${dst} (this direction; the other is the line beside it)`;
  const dl = html("dl");
  const rows = m ? [["capacity", `${m.capacity_mbps} Mbit/s`], ["rate", `${num(m.rate_mbps)} Mbit/s`],
                    ["utilisation", pct(m.utilisation)], ["loss", pct(m.loss)],
                    ["latency", `${num(m.latency_ms)} ms`], ["statistics age", `${num(m.age_s, 1)} s`],
                    ["booked", `${num(m.booked_mbps)} Mbit/s`], ["state", state.up.has(key) ? (m.known ? "measured" : "no recent statistics") : "down"]]
                 : [["state", "down (not discovered)"]];
  for (const [k, v] of rows) { dl.append(html("dt", k), html("dd", v)); }
  const series = state.history.get(key) || [];
  const now = Date.now();
  detail.replaceChildren(dl,
    chart(series, "utilisation", "utilisation", 1, pct, now),
    chart(series, "loss", "loss", 0, pct, now),
    chart(series, "latency_ms", "latency", 0, (v) => `${num(v)} ms`, now));
}

// -- a host pair's candidates -----------------------------------------------------------------
function fillHostSelects(hosts) {
  for (const id of ["src", "dst"]) {
    const select = $(id), was = select.value;
    select.replaceChildren(html("option", "host", {value: ""}), ...hosts.map((h) => html("option", h, {value: h})));
    select.value = hosts.includes(was) ? was : "";
  }
}

function pickHost(name) {
  state.picked = [...state.picked, name].slice(-2);
  if (state.picked.length === 2) {
    $("src").value = state.picked[0];
    $("dst").value = state.picked[1];
    state.picked = [];
    showPaths();
  }
  for (const g of document.querySelectorAll(".node.host")) {
    g.classList.toggle("picked", state.picked.includes(g.dataset.name));
  }
}

function highlight(path) {
  const layer = $("highlight");
  layer.replaceChildren();
  const points = (path || []).map((n) => state.nodes.get(n)).filter(Boolean);
  if (points.length > 1) {
    svg("polyline", {points: points.map((p) => `${p.x},${p.y}`).join(" "), class: "chosen-path",
                     "data-path": path.join(">")}, layer);
  }
}

// feature, column heading, format (the API's names are in each heading's tooltip)
const FEATURES = [["utilisation", "util", pct], ["loss", "loss", pct], ["latency_ms", "ms", (v) => num(v)],
                  ["unknown", "stale", (v) => v], ["headroom_mbps", "room Mb/s", (v) => num(v, 1)]];

function candidateTable(table, candidates, measured) {
  const cols = measured ? FEATURES : [];
  const head = html("tr");
  for (const [key, name] of [["", ""], ["path", "path"], ["hops", "hops"], ...cols, ["score", "score"]]) {
    head.append(html("th", name, {title: key === "unknown" ? "links without recent statistics" : key}));
  }
  const rows = candidates.map((c, i) => {
    const tr = html("tr", null, {class: c.chosen ? "candidate chosen" : "candidate", "data-path": c.path.join(">")});
    tr.append(html("td", c.chosen ? "chosen" : `${i + 1}`), html("td", c.path.join(" > "), {class: "path"}),
              html("td", c.hops, {class: "num"}),
              ...cols.map(([k, , f]) => html("td", f(c[k]), {class: "num"})),
              html("td", c.score === null ? "n/a" : num(c.score, 3), {class: "num"}));
    return tr;
  });
  table.replaceChildren(head, ...rows);
}

async function showPaths() {
  const src = $("src").value, dst = $("dst").value, note = $("pair-note"), table = $("candidates");
  if (!src || !dst || src === dst) {
    note.textContent = src && src === dst ? "pick two different hosts" : "";
    table.replaceChildren();
    highlight(null);
    return;
  }
  try {
    const paths = await get(`paths?src=${encodeURIComponent(src)}&dst=${encodeURIComponent(dst)}`);
    if (src !== $("src").value || dst !== $("dst").value) return;      // changed meanwhile
    const chosen = paths.candidates.find((c) => c.chosen);
    note.textContent = `${paths.candidates.length} candidates; a new ${src} -> ${dst} flow would take the `
      + `highlighted one under ${paths.policy} (lower score is better)`;
    note.classList.remove("error");
    candidateTable(table, paths.candidates, true);
    highlight(chosen ? [src, ...chosen.path, dst] : null);
  } catch (err) {
    note.textContent = err.message;
    note.classList.add("error");
    table.replaceChildren();
    highlight(null);
  }
}

// -- flows and why they went where they went --------------------------------------------------
function showFlows(flows) {
  $("flow-count").textContent = `(${flows.length})`;
  const shown = flows.slice().sort((a, b) => a.age_s - b.age_s).slice(0, 100);
  const head = html("tr");
  for (const name of ["flow", "path", "age s", "booked", ""]) head.append(html("th", name));
  const rows = shown.map((f) => {
    const tr = html("tr", null, {class: "flow"});
    const why = html("a", "why?", {href: `${API}decisions?flow=${encodeURIComponent(f.flow)}`, class: "why"});
    why.addEventListener("click", (ev) => { ev.preventDefault(); state.decisionFlow = f.flow; showDecision(); });
    const whyCell = html("td");
    whyCell.append(why);
    tr.append(html("td", f.flow), html("td", f.path.join(" > "), {class: "path"}), html("td", num(f.age_s, 0), {class: "num"}),
              html("td", f.booked_mbps ? `${num(f.booked_mbps, 1)} Mbit/s` : "", {class: "num"}), whyCell);
    return tr;
  });
  $("flows").replaceChildren(head, ...rows);
}

async function showDecision() {
  const box = $("decision"), flow = state.decisionFlow;
  try {
    const found = await get(`decisions?flow=${encodeURIComponent(flow)}&limit=1`);
    const d = found.decisions[0];
    if (!d) {
      box.replaceChildren(html("p", `${flow}: no decision kept (it took the reverse of its connection's path, `
        + `or it is older than the last ${found.max_kept} decisions)`, {class: "muted"}));
      return;
    }
    const table = html("table", null, {id: "decision-candidates"});
    candidateTable(table, d.candidates, d.measured);
    box.replaceChildren(
      html("h2", `Why ${d.flow} took ${d.candidates[d.chosen].path.join(" > ")}`),
      html("p", `${d.policy}, ${num(d.age_s, 1)} s ago, chose among ${d.candidates.length} candidates `
        + (d.measured ? "by their measured features" : "by hops alone (this policy is not load-aware)")
        + (d.candidates.every((c) => c.score === null) ? "; it does not choose by score" : "; lower score is better")),
      table);
    highlight([d.src, ...d.candidates[d.chosen].path, d.dst]);
  } catch (err) {
    box.replaceChildren(html("p", err.message, {class: "error"}));
  }
}

// -- the policy -------------------------------------------------------------------------------
function showPolicy(policy) {
  $("policy-name").textContent = policy.policy;
  const detail = Object.entries(policy).filter(([k, v]) => !["policy", "available"].includes(k) && v !== null)
    .map(([k, v]) => `${k} ${v}`).join(", ");
  $("policy-detail").textContent = detail ? `(${detail})` : "";
  const select = $("policy-select");
  if (select.options.length !== policy.available.length) {
    select.replaceChildren(...policy.available.map((p) => html("option", p, {value: p})));
  }
  if (state.policy !== policy.policy) select.value = policy.policy;     // not while the user chooses
  state.policy = policy.policy;
}

async function switchPolicy() {
  const token = $("token").value.trim();
  sessionStorage.setItem(TOKEN_KEY, token);
  const response = await fetch(API + "policy", {
    method: "PUT", cache: "no-store",
    headers: {"Authorization": `Bearer ${token}`, "Content-Type": "application/json"},
    body: JSON.stringify({policy: $("policy-select").value}),
  });
  const body = await response.json();
  if (response.ok) {
    showPolicy(body);
    say(`switched to ${body.policy}`, false, "action");
  } else {
    say(`not switched: ${body.error}`, true, "action");
  }
}

// -- every second -----------------------------------------------------------------------------
async function update() {
  const [links, topology, policy, flows] = await Promise.all(
    [get("links"), get("topology"), get("policy"), get("flows")]);
  const drawnIps = new Set([...state.nodes.values()].map((n) => n.ip).filter(Boolean));
  if (!state.drawnNodes || topology.switches.some((s) => !state.nodes.has(s.name))
      || topology.hosts.some((h) => !drawnIps.has(h.ip))) {
    draw(await get("layout"));            // something new to place (the layout is kept server-side)
  }
  state.up = new Set(topology.links.map((l) => `${l.src}>${l.dst}`));
  remember(links, Date.now());
  paint();
  showLink();
  showPolicy(policy);
  showFlows(flows);
  say(`${topology.switches.length} switches, ${topology.hosts.length} hosts seen, `
      + `${topology.complete === false ? "links missing" : "links complete"}; updated ${new Date().toLocaleTimeString()}`);
}

async function loop() {
  try {
    await update();
    if ($("src").value && $("dst").value) await showPaths();
  } catch (err) {
    say(`cannot reach the controller: ${err.message}`, true);
  } finally {
    setTimeout(loop, POLL_MS);
  }
}

document.addEventListener("DOMContentLoaded", () => {
  $("token").value = sessionStorage.getItem(TOKEN_KEY) || "";
  $("token").addEventListener("change", () => sessionStorage.setItem(TOKEN_KEY, $("token").value.trim()));
  $("policy-apply").addEventListener("click", () => switchPolicy().catch((err) => say(err.message, true, "action")));
  $("src").addEventListener("change", showPaths);
  $("dst").addEventListener("change", showPaths);
  loop();
});
