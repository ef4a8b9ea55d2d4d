/**
 * The failover chart: global time against wall time, as an observer saw it. Left, the
 * whole run with every kill; right, a close-up of one failover. A flat stretch is a stall;
 * a slope parallel to the dashed line is a rate of 1.
 */
import type { Trace } from "./failover.js";

interface Panel {
  x: number;
  y: number;
  w: number;
  h: number;
  x0: number;
  x1: number;
  y0: number;
  y1: number;
}

const esc = (s: string) => s.replace(/&/g, "&amp;").replace(/</g, "&lt;");
const f = (n: number) => n.toFixed(1);

function tickStep(span: number): number {
  for (const step of [0.5, 1, 2, 5, 10, 20, 50, 100]) if (span / step <= 8) return step;
  return 200;
}

function sx(p: Panel, v: number): number {
  return p.x + ((v - p.x0) / (p.x1 - p.x0)) * p.w;
}

function sy(p: Panel, v: number): number {
  return p.y + p.h - ((v - p.y0) / (p.y1 - p.y0)) * p.h;
}

function axes(p: Panel, title: string): string {
  const out: string[] = [];
  const xs = tickStep(p.x1 - p.x0);
  for (let v = Math.ceil(p.x0 / xs) * xs; v <= p.x1 + 1e-9; v += xs) {
    const x = f(sx(p, v));
    out.push(`<line x1="${x}" y1="${p.y}" x2="${x}" y2="${p.y + p.h}" class="grid"/>`);
    out.push(
      `<text x="${x}" y="${p.y + p.h + 16}" class="tick" text-anchor="middle">${+v.toFixed(1)}</text>`,
    );
  }
  const ys = tickStep(p.y1 - p.y0);
  for (let v = Math.ceil(p.y0 / ys) * ys; v <= p.y1 + 1e-9; v += ys) {
    const y = f(sy(p, v));
    out.push(`<line x1="${p.x}" y1="${y}" x2="${p.x + p.w}" y2="${y}" class="grid"/>`);
    out.push(
      `<text x="${p.x - 6}" y="${y}" class="tick" text-anchor="end" dominant-baseline="middle">${+v.toFixed(1)}</text>`,
    );
  }
  out.push(`<rect x="${p.x}" y="${p.y}" width="${p.w}" height="${p.h}" class="frame"/>`);
  out.push(
    `<text x="${p.x + p.w / 2}" y="${p.y - 10}" class="title" text-anchor="middle">${esc(title)}</text>`,
  );
  out.push(
    `<text x="${p.x + p.w / 2}" y="${p.y + p.h + 34}" class="label" text-anchor="middle">wall time (s)</text>`,
  );
  const ly = p.y + p.h / 2;
  out.push(
    `<text x="${p.x - 38}" y="${ly}" class="label" text-anchor="middle" transform="rotate(-90 ${p.x - 38} ${ly})">global time (s)</text>`,
  );
  return out.join("\n");
}

/** Global time as a step line: it holds its value until the next change. */
function steps(p: Panel, points: ReadonlyArray<[number, number]>, endX: number): string {
  const inside = points.filter(([x]) => x >= p.x0 && x <= p.x1);
  const before = points.filter(([x]) => x < p.x0).at(-1);
  const start = before ? [[p.x0, before[1]] as [number, number], ...inside] : inside;
  if (start.length === 0) return "";
  const d: string[] = [];
  start.forEach(([x, y], i) => {
    const px = f(sx(p, x));
    const py = f(sy(p, y));
    d.push(i === 0 ? `M${px},${py}` : `H${px} V${py}`);
  });
  d.push(`H${f(sx(p, Math.min(endX, p.x1)))}`);
  return `<path d="${d.join(" ")}" class="global" clip-path="url(#${clipId(p)})"/>`;
}

const clipId = (p: Panel) => `clip${p.x}`;

function clip(p: Panel): string {
  return `<clipPath id="${clipId(p)}"><rect x="${p.x}" y="${p.y}" width="${p.w}" height="${p.h}"/></clipPath>`;
}

/** A dashed line of slope 1 through (x, y): where global time would be at a rate of 1. */
function reference(p: Panel, x: number, y: number): string {
  const xEnd = Math.min(p.x1, x + (p.y1 - y));
  return `<line x1="${f(sx(p, x))}" y1="${f(sy(p, y))}" x2="${f(sx(p, xEnd))}" y2="${f(sy(p, y + xEnd - x))}" class="ref"/>`;
}

function kill(p: Panel, x: number, label: boolean): string {
  const px = f(sx(p, x));
  const text = label
    ? `<text x="${Number(px) + 4}" y="${p.y + 14}" class="kill-label">SIGKILL active</text>`
    : "";
  return `<line x1="${px}" y1="${p.y}" x2="${px}" y2="${p.y + p.h}" class="kill"/>${text}`;
}

export function failoverChart(trace: Trace, store: string, stallMs: number[]): string {
  const sec = trace.changes.map(([x, y]) => [x / 1000, y / 1000] as [number, number]);
  const end = trace.endMs / 1000;
  const kills = trace.kills.map((k) => k / 1000);
  const whole: Panel = { x: 70, y: 40, w: 380, h: 300, x0: 0, x1: end, y0: 0, y1: end };
  // Close-up on the failover with the median stall.
  const order = stallMs.map((s, i) => [s, i] as const).sort((a, b) => a[0] - b[0]);
  const pick = order[Math.floor(order.length / 2)]?.[1] ?? 0;
  const k = kills[pick] ?? 0;
  const lastBefore = sec.filter(([x]) => x <= k).at(-1) ?? [k, 0];
  const zoom: Panel = {
    x: 560,
    y: 40,
    w: 380,
    h: 300,
    x0: k - 2.5,
    x1: k + 4.5,
    y0: lastBefore[1] - 2.5,
    y1: lastBefore[1] + 4.5,
  };
  const stall = (stallMs[pick] ?? 0) / 1000;
  const resumed = sec.find(([x]) => x > k + 0.05);
  const arrow = resumed
    ? `<line x1="${f(sx(zoom, lastBefore[0]))}" y1="${f(sy(zoom, lastBefore[1]) - 14)}" x2="${f(sx(zoom, resumed[0]))}" y2="${f(sy(zoom, lastBefore[1]) - 14)}" class="stall" marker-start="url(#a)" marker-end="url(#a)"/>
<text x="${f((sx(zoom, lastBefore[0]) + sx(zoom, resumed[0])) / 2)}" y="${f(sy(zoom, lastBefore[1]) - 22)}" class="stall-label" text-anchor="middle">stall ${stall.toFixed(2)} s</text>`
    : "";
  return `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 980 400" width="980" height="400" font-family="sans-serif" role="img" aria-labelledby="t">
<title id="t">globalclock: global time against wall time through failovers (${esc(store)})</title>
<style>
.grid{stroke:#e5e5e5;stroke-width:1}.frame{fill:none;stroke:#888}.tick{font-size:11px;fill:#555}
.label{font-size:12px;fill:#333}.title{font-size:13px;font-weight:bold;fill:#222}
.global{fill:none;stroke:#1f6feb;stroke-width:2}.ref{stroke:#888;stroke-width:1.2;stroke-dasharray:5 4}
.kill{stroke:#d1242f;stroke-width:1.2;stroke-dasharray:3 3}.kill-label{font-size:11px;fill:#d1242f}
.stall{stroke:#d1242f;stroke-width:1.5}.stall-label{font-size:12px;fill:#d1242f;font-weight:bold}
.legend{font-size:11px;fill:#333}
</style>
<defs>${clip(whole)}${clip(zoom)}<marker id="a" viewBox="0 0 10 10" refX="5" refY="5" markerWidth="6" markerHeight="6" orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" fill="#d1242f"/></marker></defs>
<rect width="980" height="400" fill="#fff"/>
${axes(whole, `${store}: ${kills.length} kills of the active daemon`)}
${reference(whole, 0, 0)}
${kills.map((x) => kill(whole, x, false)).join("\n")}
${steps(whole, sec, end)}
${axes(zoom, `close-up of kill ${pick + 1} (the median stall)`)}
${reference(zoom, lastBefore[0], lastBefore[1])}
${kill(zoom, k, true)}
${steps(zoom, sec, end)}
${arrow}
<line x1="70" y1="388" x2="95" y2="388" class="global"/><text x="100" y="392" class="legend">global time seen by an observer reading every 5 ms</text>
<line x1="420" y1="388" x2="445" y2="388" class="ref"/><text x="450" y="392" class="legend">rate 1 (wall time)</text>
<line x1="580" y1="388" x2="605" y2="388" class="kill"/><text x="610" y="392" class="legend">SIGKILL of the active daemon</text>
</svg>
`;
}
