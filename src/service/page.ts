import { createHash } from "node:crypto";

/*
 * The live page that `globalclock run --listen` serves at GET /: one self-contained HTML
 * document (no file, CDN or font from elsewhere), kept here as a string so that the build
 * ships it inside dist/ as it ships the code. It reads GET /api/events (server-sent
 * events; GET /api/state every few seconds only where EventSource is missing) and draws
 * everything from that state with textContent: no lease name or holder is ever parsed as
 * HTML. The script keeps to ES2020 and plain DOM calls.
 */

// biome-ignore lint/complexity/noUselessStringRaw: kept as written, a backslash included
const CSS = String.raw`
:root{color-scheme:light dark;--bg:#f7f7f5;--fg:#1d1d1b;--muted:#6b6b66;--card:#fff;--line:#deded8;
--ok:#1f7a3a;--okbg:#e3f4e7;--bad:#b3261e;--badbg:#fde4e1;--warn:#8a5a00;--warnbg:#fff1cc;--accent:#2457a6}
@media (prefers-color-scheme:dark){:root{--bg:#161615;--fg:#ececea;--muted:#a0a09a;--card:#20201f;--line:#363633;
--ok:#7ed69a;--okbg:#173322;--bad:#ff8a80;--badbg:#3d1714;--warn:#ffd36b;--warnbg:#3a2e0c;--accent:#8fb4ff}}
*{box-sizing:border-box}
body{margin:0;font:15px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;background:var(--bg);color:var(--fg)}
header,main{max-width:980px;margin:0 auto;padding:12px 16px}
header{display:flex;flex-wrap:wrap;align-items:baseline;gap:4px 12px}
h1{font-size:18px;margin:0}
h2{font-size:14px;text-transform:uppercase;letter-spacing:.06em;color:var(--muted);margin:0 0 8px}
.muted{color:var(--muted)}
.mono{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;font-variant-numeric:tabular-nums}
#banner{margin:0 0 12px;padding:10px 14px;border-radius:8px;font-weight:600;border:1px solid transparent}
#banner.ok{background:var(--okbg);color:var(--ok);border-color:var(--ok)}
#banner.bad{background:var(--badbg);color:var(--bad);border-color:var(--bad)}
#banner.wait{background:var(--warnbg);color:var(--warn);border-color:var(--warn)}
#banner .why{display:block;font-weight:400;font-size:13px;overflow-wrap:anywhere}
.grid{display:grid;grid-template-columns:minmax(0,3fr) minmax(0,2fr);gap:12px}
@media (max-width:760px){.grid{grid-template-columns:minmax(0,1fr)}}
section{background:var(--card);border:1px solid var(--line);border-radius:8px;padding:12px 14px;margin-bottom:12px;min-width:0}
#time{font-size:min(24px,4.5vw);font-weight:600;overflow-wrap:anywhere}
dl{display:grid;grid-template-columns:max-content 1fr;gap:3px 12px;margin:8px 0 0}
dt{color:var(--muted)}
dd{margin:0;overflow-wrap:anywhere}
svg{display:block;width:100%;height:120px;margin-top:6px}
svg .axis{stroke:var(--line);stroke-width:1}
svg .one{stroke:var(--muted);stroke-dasharray:4 4;stroke-width:1}
svg .rate{fill:none;stroke:var(--accent);stroke-width:2;vector-effect:non-scaling-stroke}
svg text{fill:var(--muted);font-size:11px}
table{width:100%;border-collapse:collapse}
th,td{text-align:left;padding:6px 8px;border-bottom:1px solid var(--line);vertical-align:top}
th{font-size:12px;color:var(--muted);font-weight:600}
td.countdown{font-weight:600;white-space:nowrap}
tr.free td{color:var(--muted)}
.tag{display:inline-block;padding:0 6px;border-radius:4px;font-size:12px;background:var(--line)}
.tag.held{background:var(--okbg);color:var(--ok)}
.tag.soon{background:var(--warnbg);color:var(--warn)}
ol{list-style:none;margin:0;padding:0}
ol li{padding:6px 0;border-bottom:1px solid var(--line)}
ol li:last-child{border-bottom:0}
.empty{color:var(--muted);font-style:italic}
footer{max-width:980px;margin:0 auto;padding:0 16px 24px;color:var(--muted);font-size:12px}
@media (max-width:640px){
  header,main{padding:10px}
  thead{display:none}
  table,tbody,tr,td{display:block;width:100%}
  tr{border-bottom:1px solid var(--line);padding:6px 0}
  td{border:0;padding:2px 0}
  td[data-label]::before{content:attr(data-label) ": ";color:var(--muted);font-weight:400}
}
`;

// biome-ignore lint/complexity/noUselessStringRaw: kept as written, a backslash included
const SCRIPT = String.raw`
(function () {
  "use strict";
  var $ = function (id) { return document.getElementById(id); };
  var state = null;
  var receivedAt = 0;
  var connected = false;
  var lostAt = performance.now();
  var NS = 1000000000n;

  function el(tag, text, cls) {
    var e = document.createElement(tag);
    if (text !== undefined && text !== null) e.textContent = String(text);
    if (cls) e.className = cls;
    return e;
  }
  function globalIso(ns) {
    if (ns === null || ns === undefined) return "—";
    var t = typeof ns === "bigint" ? ns : BigInt(ns);
    if (t < 0n) t = 0n;
    var d = new Date(Number(t / 1000000n));
    if (isNaN(d.getTime())) return String(t) + " ns";
    return d.toISOString().slice(0, 19) + "." + String(t % NS).padStart(9, "0") + "Z";
  }
  function dur(ns) {
    if (ns === null || ns === undefined) return "—";
    var n = Number(ns);
    var neg = n < 0 ? "-" : "";
    n = Math.abs(n);
    if (n < 1e3) return neg + n + " ns";
    if (n < 1e6) return neg + (n / 1e3).toFixed(n < 1e4 ? 1 : 0) + " µs";
    if (n < 1e9) return neg + (n / 1e6).toFixed(n < 1e7 ? 1 : 0) + " ms";
    var s = n / 1e9;
    if (s < 60) return neg + s.toFixed(s < 10 ? 2 : 1) + " s";
    var m = Math.floor(s / 60);
    if (m < 60) return neg + m + " min " + String(Math.floor(s % 60)).padStart(2, "0") + " s";
    var h = Math.floor(m / 60);
    if (h < 48) return neg + h + " h " + String(m % 60).padStart(2, "0") + " min";
    return neg + Math.floor(h / 24) + " d " + (h % 24) + " h";
  }
  function wall(iso) {
    var d = new Date(iso);
    return isNaN(d.getTime()) ? "—" : d.toLocaleTimeString();
  }
  function wallFull(iso) {
    var d = new Date(iso);
    return isNaN(d.getTime()) ? "—" : d.toLocaleString();
  }
  function boundMs() {
    return state ? Number(state.worker.failoverBound) / 1e6 : 0;
  }
  function sinceMs() {
    return performance.now() - receivedAt;
  }
  // Global time now, estimated from the last time seen and the last sample's rate; it
  // stops at the failover bound (past it the daemon reports a stall) and when not "ok".
  function estimate() {
    if (!state || state.clock.time === null) return null;
    var t = BigInt(state.clock.time);
    if (state.clock.state !== "ok" || !connected) return t;
    var ms = (state.clock.lastChangeAgoSeconds || 0) * 1000 + sinceMs();
    ms = Math.min(ms, boundMs());
    var rate = state.clock.rate === null ? 1 : Math.max(0, Math.min(state.clock.rate, 2));
    return t + BigInt(Math.round(ms * 1e6 * rate));
  }

  var LABELS = {
    ok: "Global time is advancing",
    starting: "Starting: no global time seen yet",
    stalled: "Clock stalled",
    "record-missing": "Clock record missing",
    "store-unreachable": "Store unreachable",
    stopped: "Worker stopped"
  };
  var ROLES = { active: "active", standby: "stand-by", starting: "starting", error: "error", stopped: "stopped" };

  function banner() {
    var b = $("banner");
    var kind, title, name, why = "";
    if (!connected && performance.now() - lostAt > 2500) {
      kind = "bad"; name = "disconnected"; title = "Daemon unreachable";
      why = "this page lost its connection to the daemon; retrying";
    } else if (!state) {
      kind = "wait"; name = "connecting"; title = "Connecting…";
    } else {
      name = state.clock.state;
      kind = name === "ok" ? "ok" : name === "starting" ? "wait" : "bad";
      title = LABELS[name] || name;
      why = state.clock.reason || "";
    }
    var key = [kind, name, title, why].join("|");
    if (b.getAttribute("data-key") === key) return;
    b.setAttribute("data-key", key);
    b.className = kind;
    b.setAttribute("data-state", name);
    b.textContent = title;
    if (why) b.appendChild(el("span", why, "why"));
  }

  function settings() {
    var w = state.worker;
    $("role").textContent = ROLES[w.role] || w.role;
    $("role").setAttribute("data-role", w.role);
    $("interval").textContent = dur(w.interval);
    $("takeover").textContent = dur(w.takeoverAfter);
    $("bound").textContent = dur(w.failoverBound);
    $("maxstep").textContent = w.maxStep === null ? "— (not stored yet)" : dur(w.maxStep);
    $("ownmaxstep").textContent = dur(w.ownMaxStep);
    $("counts").textContent = w.advances + " advances, " + w.conflicts + " conflicts, " + w.takeovers +
      " takeovers, " + w.errors + " errors" + (w.regressions ? ", " + w.regressions + " regressions" : "");
    $("store").textContent = state.store.url ? state.store.url : state.store.kind;
    var shown = w.lastError !== null && (state.clock.reason || "").indexOf(w.lastError) >= 0;
    $("lasterror").textContent = w.lastError === null ? "none" : shown ? "(in the banner above)" : w.lastError;
  }

  function chart() {
    var svg = $("chart");
    var samples = state.rate.samples.filter(function (s) { return s.rate !== null; });
    while (svg.lastChild) svg.removeChild(svg.lastChild);
    var W = Math.max(200, Math.round(svg.getBoundingClientRect().width) || 600), H = 120, top = 8, bottom = 104;
    svg.setAttribute("viewBox", "0 0 " + W + " " + H);
    var max = 1.25;
    samples.forEach(function (s) { if (s.rate > max) max = Math.min(4, Math.ceil(s.rate * 4) / 4); });
    var y = function (r) { return bottom - (Math.max(0, Math.min(r, max)) / max) * (bottom - top); };
    var ns = "http://www.w3.org/2000/svg";
    function add(tag, attrs, text) {
      var e = document.createElementNS(ns, tag);
      for (var k in attrs) e.setAttribute(k, attrs[k]);
      if (text !== undefined) e.textContent = text;
      svg.appendChild(e);
      return e;
    }
    add("line", { x1: 0, x2: W, y1: bottom, y2: bottom, class: "axis" });
    add("line", { x1: 0, x2: W, y1: y(1), y2: y(1), class: "one" });
    add("text", { x: 2, y: y(1) - 3 }, "1× wall time");
    var avg = state.rate.average;
    $("rate").textContent = avg === null ? "—" : avg.toFixed(4) + "× over " + dur(state.rate.windowSeconds * 1e9);
    if (samples.length < 2) {
      add("text", { x: W / 2, y: 60, "text-anchor": "middle" }, "collecting samples (one every " + state.rate.sampleSeconds + " s)…");
      return;
    }
    var t0 = Date.parse(samples[0].wall), t1 = Date.parse(samples[samples.length - 1].wall);
    var span = Math.max(1, t1 - t0);
    var pts = samples.map(function (s) {
      return ((Date.parse(s.wall) - t0) / span * W).toFixed(1) + "," + y(s.rate).toFixed(1);
    });
    add("polyline", { points: pts.join(" "), class: "rate" });
    add("text", { x: 2, y: H - 2 }, wall(samples[0].wall));
    add("text", { x: W - 2, y: H - 2, "text-anchor": "end" }, wall(samples[samples.length - 1].wall));
    add("text", { x: W - 2, y: top + 4, "text-anchor": "end" }, max + "×");
  }

  function leases() {
    var body = $("leases");
    while (body.lastChild) body.removeChild(body.lastChild);
    var L = state.leases;
    $("leases-note").textContent = !L.available ? "this store keeps no leases" :
      (L.error ? "last read failed: " + L.error + " — " : "") +
      (L.pushed ? "changes pushed by the store" : "read every few seconds (the store pushes no lease changes)") +
      (L.readAt ? "; read " + wall(L.readAt) : "");
    if (L.items.length === 0) {
      var tr = el("tr"); var td = el("td", "no leases", "empty"); td.colSpan = 5; tr.appendChild(td); body.appendChild(tr);
      return;
    }
    L.items.forEach(function (l) {
      var tr = el("tr", null, l.free ? "free" : "held");
      tr.setAttribute("data-lease", l.name);
      var name = el("td", l.name, "mono"); name.setAttribute("data-label", "lease");
      var holder = el("td", null, "holder"); holder.setAttribute("data-label", "holder");
      holder.appendChild(el("span", l.released ? "— (released)" : l.holder, "mono"));
      var token = el("td", l.token, "mono token"); token.setAttribute("data-label", "token");
      var left = el("td", "", "countdown mono"); left.setAttribute("data-label", "expires in");
      left.setAttribute("data-expiry", l.expiry);
      left.setAttribute("data-pinned", l.pins.length ? "1" : "");
      left.setAttribute("data-released", l.released ? "1" : "");
      left.title = "expiry (global time) " + (l.expiryIso || l.expiry);
      var pins = el("td", l.pins.length ? l.pins.join(", ") : "—", "pins mono"); pins.setAttribute("data-label", "pins");
      [name, holder, token, left, pins].forEach(function (c) { tr.appendChild(c); });
      body.appendChild(tr);
    });
    countdowns();
  }

  function countdowns() {
    var now = estimate();
    var cells = document.querySelectorAll("td.countdown");
    for (var i = 0; i < cells.length; i++) {
      var c = cells[i];
      var tag;
      if (c.getAttribute("data-released")) { c.textContent = "released"; continue; }
      if (c.getAttribute("data-pinned")) { c.textContent = "pinned (no expiry)"; continue; }
      if (now === null) { c.textContent = "—"; continue; }
      var left = BigInt(c.getAttribute("data-expiry")) - now;
      if (left <= 0n) { c.textContent = "expired"; c.parentNode.className = "free"; continue; }
      c.textContent = dur(left);
      c.setAttribute("data-left-ns", String(left));
      c.parentNode.className = left < BigInt(Math.round(boundMs() * 1e6)) ? "held soon" : "held";
    }
  }

  function handovers() {
    var list = $("handovers");
    while (list.lastChild) list.removeChild(list.lastChild);
    if (state.handovers.length === 0) {
      list.appendChild(el("li", "none seen since this daemon started", "empty"));
      return;
    }
    state.handovers.forEach(function (h) {
      var li = el("li");
      li.setAttribute("data-lease", h.lease);
      li.setAttribute("data-token", h.token);
      li.appendChild(el("span", wall(h.seenAt) + "  ", "muted mono"));
      li.appendChild(el("strong", h.lease, "mono"));
      li.appendChild(el("span", ": "));
      li.appendChild(el("span", h.from === null ? (h.newLease ? "(new lease)" : "(none seen)") : h.from, "mono from"));
      li.appendChild(el("span", " → "));
      li.appendChild(el("span", h.to, "mono to"));
      var gap = h.gap !== null ? "gap " + dur(h.gap) : h.newLease ? "first holder" :
        h.gapAtMost !== null ? "gap ≤ " + dur(h.gapAtMost) + " (released between two reads)" : "gap unknown";
      li.appendChild(el("span", "  token " + h.token + ", " + gap, "muted"));
      li.title = "seen " + wallFull(h.seenAt) + "; new holder's start (global) " + (h.startIso || h.start);
      list.appendChild(li);
    });
  }

  function tick() {
    banner();
    if (!state) return;
    var t = estimate();
    $("time").textContent = globalIso(state.clock.time);
    var moving = state.clock.state === "ok" && connected;
    $("estimate").textContent = t === null || !moving ? "" : "≈ " + globalIso(t).slice(0, 23) + "Z now";
    var ago = state.clock.lastChangeAgoSeconds;
    $("seen").textContent = ago === null ? "not seen yet" :
      "last moved " + dur((ago * 1000 + sinceMs()) * 1e6) + " ago (" + new Date(Date.now() - ago * 1000 - sinceMs()).toLocaleTimeString() + " your time)";
    countdowns();
  }

  function apply(json) {
    state = JSON.parse(json);
    receivedAt = performance.now();
    settings();
    chart();
    leases();
    handovers();
    tick();
    document.body.setAttribute("data-updated", state.generatedAt);
  }

  function start() {
    if (typeof EventSource === "function") {
      var es = new EventSource("api/events");
      es.addEventListener("state", function (e) { connected = true; apply(e.data); });
      es.onopen = function () { connected = true; };
      es.onerror = function () { if (connected) lostAt = performance.now(); connected = false; banner(); };
    } else {
      var poll = function () {
        fetch("api/state", { cache: "no-store" }).then(function (r) { return r.text(); })
          .then(function (t) { connected = true; apply(t); }, function () { if (connected) lostAt = performance.now(); connected = false; });
      };
      poll();
      setInterval(poll, 3000);
    }
    setInterval(tick, 100);
    window.addEventListener("resize", function () { if (state) chart(); });
  }
  start();
})();
`;

// biome-ignore lint/complexity/noUselessStringRaw: kept as written, a backslash included
const BODY = String.raw`
<header><h1>globalclock</h1><span class="muted">live view of this daemon — read-only</span></header>
<main>
<div id="banner" class="wait" role="status" aria-live="polite" data-state="connecting">Connecting…</div>
<div class="grid">
<section aria-labelledby="h-time"><h2 id="h-time">Global time</h2>
<div id="time" class="mono">—</div>
<div id="estimate" class="mono muted"></div>
<div id="seen" class="muted"></div>
<dl><dt>rate vs wall time</dt><dd id="rate" class="mono">—</dd></dl>
<svg id="chart" viewBox="0 0 600 120" role="img" aria-label="rate of global time against wall time"></svg>
</section>
<section aria-labelledby="h-worker"><h2 id="h-worker">This daemon's worker</h2>
<dl>
<dt>role</dt><dd id="role" class="mono">—</dd>
<dt>cluster maxStep</dt><dd id="maxstep" class="mono">—</dd>
<dt>own maxStep</dt><dd id="ownmaxstep" class="mono">—</dd>
<dt>interval</dt><dd id="interval" class="mono">—</dd>
<dt>takeover after</dt><dd id="takeover" class="mono">—</dd>
<dt>failover bound</dt><dd id="bound" class="mono">—</dd>
<dt>counts</dt><dd id="counts">—</dd>
<dt>last error</dt><dd id="lasterror">—</dd>
<dt>store</dt><dd id="store" class="mono">—</dd>
</dl>
</section>
</div>
<section aria-labelledby="h-leases"><h2 id="h-leases">Leases</h2>
<table><thead><tr><th>lease</th><th>holder</th><th>token</th><th>expires in (global time)</th><th>pins</th></tr></thead>
<tbody id="leases"><tr><td class="empty" colspan="5">—</td></tr></tbody></table>
<p id="leases-note" class="muted"></p>
</section>
<section aria-labelledby="h-handovers"><h2 id="h-handovers">Handovers seen</h2>
<ol id="handovers"><li class="empty">—</li></ol>
</section>
</main>
<footer>Wall times are in your time zone; global time is UTC (ISO 8601, nanoseconds).
Countdowns tick between updates at the rate last measured. Handovers are those this daemon saw
between its reads of the leases since it started. Waiters and other daemons (stand-bys on other
machines) are not recorded in the store, so they are not shown. JSON: <a href="api/state">api/state</a>.</footer>
`;

const hash = (text: string) => `'sha256-${createHash("sha256").update(text).digest("base64")}'`;

/** The page as served. */
export const PAGE_HTML = `<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<link rel="icon" href="data:,">
<title>globalclock</title>
<style>${CSS}</style>
</head><body>${BODY}<script>${SCRIPT}</script>
</body></html>
`;

/**
 * The page's headers: a Content-Security-Policy that lets only its own inline script and
 * style run (by hash), and only reach this daemon.
 */
export const PAGE_HEADERS: Readonly<Record<string, string>> = Object.freeze({
  "content-type": "text/html; charset=utf-8",
  "cache-control": "no-store",
  "x-content-type-options": "nosniff",
  "referrer-policy": "no-referrer",
  "x-frame-options": "DENY",
  "content-security-policy": [
    "default-src 'none'",
    `script-src ${hash(SCRIPT)}`,
    `style-src ${hash(CSS)}`,
    "connect-src 'self'",
    "img-src 'self' data:",
    "base-uri 'none'",
    "form-action 'none'",
    "frame-ancestors 'none'",
  ].join("; "),
});
