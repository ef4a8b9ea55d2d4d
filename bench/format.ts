/** Number formats, targets and the side-by-side table rows every report part shares. */
import type { Comparison, SideResult } from "./measure.js";

export const TARGETS = Object.freeze({
  ratio: 0.9,
  stallMs: 3000,
  rateLow: 0.999,
  rateHigh: 1,
  rssMb: 60,
  overheadMb: 15,
});

export const num = (n: number, digits = 0) =>
  Number.isFinite(n)
    ? n.toLocaleString("en-US", { minimumFractionDigits: digits, maximumFractionDigits: digits })
    : "—";
export const ops = (n: number) => (n >= 1e6 ? `${num(n / 1e6, 2)} M` : num(n));
export const us = (n: number) => (n < 1 ? `${num(n, 2)}` : n < 100 ? num(n, 1) : num(n));
export const pct = (n: number) => `${num(n * 100)}%`;
export const mark = (ok: boolean) => (ok ? "✓" : "✗ misses target");
export const side = (row: { sides: SideResult[] }, name: string) =>
  row.sides.find((s) => s.name === name);

/** The header of a side-by-side table; `what` names the operation column. */
export function comparisonHeader(what = "op"): string[] {
  return [
    `| store | ${what} | raw ops/s | globalclock ops/s | globalclock ÷ raw (target ≥ 0.9) | raw p50 / p99 µs | globalclock p50 / p99 µs | raw awaited ops/s | globalclock ÷ raw awaited |`,
    "|---|---|--:|--:|--:|--:|--:|--:|--:|",
  ];
}

/** One row of a side-by-side table: raw, globalclock and (if measured) raw awaited. */
export function comparisonLine(label: string, op: string, cmp: Comparison): string {
  const raw = side(cmp, "raw");
  const gc = side(cmp, "globalclock");
  const awaited = side(cmp, "raw, awaited");
  const ratio = cmp.ratios.globalclock ?? Number.NaN;
  const vsAwaited = awaited && gc ? num(gc.opsPerSec / awaited.opsPerSec, 2) : "—";
  return `| ${label} | ${op} | ${ops(raw?.opsPerSec ?? Number.NaN)} | ${ops(gc?.opsPerSec ?? Number.NaN)} | ${num(ratio, 2)} ${mark(ratio >= TARGETS.ratio)} | ${us(raw?.p50Us ?? Number.NaN)} / ${us(raw?.p99Us ?? Number.NaN)} | ${us(gc?.p50Us ?? Number.NaN)} / ${us(gc?.p99Us ?? Number.NaN)} | ${awaited ? ops(awaited.opsPerSec) : "—"} | ${vsAwaited} |`;
}
