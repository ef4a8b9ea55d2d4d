/**
 * Rate: three `globalclock run` daemons (default options) for a steady run; global
 * elapsed ÷ wall elapsed between the first and last change an observer saw. Each change
 * is bracketed by the reads around it, so the rate comes with bounds, and every single
 * step is checked against the wall time that can have passed (docs/design.md, "The invariants", 2).
 */
import { type Context, type SharedStore, sharedUrl } from "./context.js";
import { Fleet } from "./fleet.js";
import { type Change, changesOf, mid, Observer, violations } from "./observer.js";

const WORKERS = 3;
const DEFAULT_MAX_STEP_NS = 1_500_000_000n;

export interface RateResult {
  store: SharedStore;
  workers: number;
  wallSeconds: number;
  globalSeconds: number;
  /** Global elapsed ÷ wall elapsed, with the wall span taken from the middle of each bracket. */
  rate: number;
  /** The same, with the widest and the narrowest wall span the brackets allow. */
  rateLow: number;
  rateHigh: number;
  steps: number;
  /** Steps larger than the most wall time that can have passed since the step before. */
  stepsFasterThanWall: number;
  meanStepMs: number;
  /** Wall time minus global time, per step: what each interval loses (about one write's round trip). */
  lostPerStepMs: number;
  advances: number;
  conflicts: number;
  takeovers: number;
  errors: number;
  reads: number;
  violations: string[];
}

const sec = (ns: bigint) => Number(ns) / 1e9;

async function runStore(ctx: Context, store: SharedStore, url: string): Promise<RateResult> {
  const fleet = new Fleet(url);
  const observer = await Observer.start(url);
  let samples: Awaited<ReturnType<Observer["stop"]>>;
  let stops: Awaited<ReturnType<Fleet["stop"]>>;
  let from: bigint;
  try {
    for (let i = 0; i < WORKERS; i++) await fleet.add();
    await fleet.active();
    await observer.changes(2); // past the start-up, when newcomers contend once
    from = observer.latest()?.global ?? 0n;
    await new Promise((r) => setTimeout(r, ctx.mode.steadyMs));
    await observer.changes(1);
  } finally {
    samples = await observer.stop();
    stops = await fleet.stop();
  }
  const changes = changesOf(samples).filter((c) => c.global > from);
  const first = changes[0] as Change;
  const last = changes.at(-1) as Change;
  const globalNs = last.global - first.global;
  let fast = 0;
  for (let i = 1; i < changes.length; i++) {
    const prev = changes[i - 1] as Change;
    const cur = changes[i] as Change;
    if (cur.global - prev.global > cur.hi - prev.lo) fast++;
  }
  const sum = (key: string) =>
    stops.reduce((n, line) => n + (typeof line[key] === "number" ? (line[key] as number) : 0), 0);
  return {
    store,
    workers: WORKERS,
    wallSeconds: sec(mid(last) - mid(first)),
    globalSeconds: sec(globalNs),
    rate: Number(globalNs) / Number(mid(last) - mid(first)),
    rateLow: Number(globalNs) / Number(last.hi - first.lo),
    rateHigh: Number(globalNs) / Number(last.lo - first.hi),
    steps: changes.length - 1,
    stepsFasterThanWall: fast,
    meanStepMs: Number(globalNs) / 1e6 / Math.max(1, changes.length - 1),
    lostPerStepMs:
      Number(mid(last) - mid(first) - globalNs) / 1e6 / Math.max(1, changes.length - 1),
    advances: sum("advances"),
    conflicts: sum("conflicts"),
    takeovers: fleet.lines("takeover").length,
    errors: sum("errors"),
    reads: samples.length,
    violations: violations(samples, DEFAULT_MAX_STEP_NS),
  };
}

export async function rateSection(ctx: Context): Promise<RateResult[]> {
  const out: RateResult[] = [];
  for (const store of ctx.mode.rateStores) {
    const url = sharedUrl(ctx, store, "rate");
    if (!url) continue;
    ctx.log(`  ${store}: ${ctx.mode.steadyMs / 1000} s steady`);
    out.push(await runStore(ctx, store, url));
  }
  return out;
}
