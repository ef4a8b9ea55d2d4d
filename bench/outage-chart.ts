/**
 * The outage chart: per store and kind of outage, left the share of leases whose holder
 * changed through it, right the seconds from its end until every lease was held again;
 * globalclock's bar above the wall-clock baseline's. Same look as the failover chart.
 */
import type { OutageRow } from "./outage.js";

const esc = (s: string) => s.replace(/&/g, "&amp;").replace(/</g, "&lt;");
const f = (n: number) => n.toFixed(1);

const BAR = 14;
const GAP = 4;
const GROUP = 2 * BAR + GAP + 18;
const TOP = 60;
const LABEL_W = 210;
const PANEL_W = 330;
const LEFT_X = LABEL_W + 20;
const RIGHT_X = LEFT_X + PANEL_W + 70;

function niceMax(v: number): number {
  for (const m of [1, 2, 5, 10, 15, 20, 30, 45, 60, 90, 120, 180, 300]) if (v <= m) return m;
  return Math.ceil(v / 100) * 100;
}

function ticks(x: number, y: number, h: number, max: number, unit: string): string {
  const out: string[] = [];
  const step = max / 5;
  for (let i = 0; i <= 5; i++) {
    const v = step * i;
    const px = f(x + (v / max) * PANEL_W);
    out.push(`<line x1="${px}" y1="${y}" x2="${px}" y2="${y + h}" class="grid"/>`);
    out.push(
      `<text x="${px}" y="${y + h + 16}" class="tick" text-anchor="middle">${+v.toFixed(1)}${unit}</text>`,
    );
  }
  out.push(`<rect x="${x}" y="${y}" width="${PANEL_W}" height="${h}" class="frame"/>`);
  return out.join("\n");
}

function bar(x: number, y: number, value: number | null, max: number, cls: string, text: string) {
  if (value === null) {
    return `<text x="${x + 4}" y="${y + BAR - 3}" class="value">${esc(text)}</text>`;
  }
  const w = Math.max(value > 0 ? 1.5 : 0, (Math.min(value, max) / max) * PANEL_W);
  const label =
    w > PANEL_W * 0.45
      ? `<text x="${f(x + w - 4)}" y="${y + BAR - 3}" class="value in" text-anchor="end">${esc(text)}</text>`
      : `<text x="${f(x + w + 4)}" y="${y + BAR - 3}" class="value">${esc(text)}</text>`;
  return `<rect x="${x}" y="${y}" width="${f(w)}" height="${BAR}" class="${cls}"/>${label}`;
}

export function outageChart(rows: readonly OutageRow[]): string {
  const h = Math.max(1, rows.length) * GROUP;
  const height = TOP + h + 70;
  const width = RIGHT_X + PANEL_W + 80;
  const seconds = rows.flatMap((r) => [r.secondsUntilAllHeld, r.baselineSecondsUntilAllHeld]);
  const sMax = niceMax(Math.max(1, ...seconds.map((s) => s ?? 0)));
  const out: string[] = [];
  out.push(ticks(LEFT_X, TOP, h, 100, "%"));
  out.push(ticks(RIGHT_X, TOP, h, sMax, " s"));
  out.push(
    `<text x="${LEFT_X + PANEL_W / 2}" y="${TOP - 12}" class="title" text-anchor="middle">leases whose holder changed through the outage</text>`,
  );
  out.push(
    `<text x="${RIGHT_X + PANEL_W / 2}" y="${TOP - 12}" class="title" text-anchor="middle">seconds until every lease was held again</text>`,
  );
  rows.forEach((r, i) => {
    const y = TOP + i * GROUP + 9;
    out.push(
      `<text x="${LABEL_W}" y="${y + BAR}" class="label" text-anchor="end">${esc(r.store)}</text>`,
      `<text x="${LABEL_W}" y="${y + 2 * BAR + 2}" class="sub" text-anchor="end">${esc(r.kind)}, ${+r.outageSeconds.toFixed(0)} s</text>`,
    );
    const pc = (n: number) => (100 * n) / Math.max(1, r.leases);
    out.push(
      bar(
        LEFT_X,
        y,
        pc(r.changedHolder),
        100,
        "gc",
        `${r.changedHolder} of ${r.leases}; ${r.sameTokens} kept their token`,
      ),
      bar(
        LEFT_X,
        y + BAR + GAP,
        pc(r.baselineChangedHolder),
        100,
        "wall",
        `${r.baselineChangedHolder} of ${r.leases}; ${r.baselineSameTokens} kept their token`,
      ),
    );
    const s = (v: number | null) => (v === null ? "never" : `${v.toFixed(2)} s`);
    out.push(
      bar(RIGHT_X, y, r.secondsUntilAllHeld, sMax, "gc", s(r.secondsUntilAllHeld)),
      bar(
        RIGHT_X,
        y + BAR + GAP,
        r.baselineSecondsUntilAllHeld,
        sMax,
        "wall",
        s(r.baselineSecondsUntilAllHeld),
      ),
    );
  });
  const ly = TOP + h + 48;
  const first = rows[0];
  const what = first
    ? `${first.leases} leases, TTL ${first.ttlSeconds} s, outage 3 × TTL, ${first.rivals} rival${first.rivals === 1 ? "" : "s"} claiming every lease`
    : "no rows";
  return `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 ${width} ${height}" width="${width}" height="${height}" font-family="sans-serif" role="img" aria-labelledby="t">
<title id="t">globalclock: leases through an outage of 3 × TTL, against a wall-clock lease table</title>
<style>
.grid{stroke:#e5e5e5;stroke-width:1}.frame{fill:none;stroke:#888}.tick{font-size:11px;fill:#555}
.label{font-size:12px;fill:#222;font-weight:bold}.sub{font-size:11px;fill:#555}.title{font-size:13px;font-weight:bold;fill:#222}
.gc{fill:#1f6feb}.wall{fill:#d1242f}.value{font-size:11px;fill:#333}.in{fill:#fff}.legend{font-size:11px;fill:#333}
</style>
<rect width="${width}" height="${height}" fill="#fff"/>
<text x="${LEFT_X}" y="20" class="title">${esc(what)}</text>
${out.join("\n")}
<rect x="${LEFT_X}" y="${ly - 10}" width="20" height="${BAR - 2}" class="gc"/><text x="${LEFT_X + 26}" y="${ly}" class="legend">globalclock (sessions, judged by global time)</text>
<rect x="${RIGHT_X}" y="${ly - 10}" width="20" height="${BAR - 2}" class="wall"/><text x="${RIGHT_X + 26}" y="${ly}" class="legend">wall-clock lease table (expiry &lt; now() by the server's clock)</text>
</svg>
`;
}
