/**
 * Failover: three `globalclock run` daemons with default options; SIGKILL the active one
 * at a random moment of its interval, and measure how long global time stood still
 * until a stand-by moved it again, as an observer reading every few ms saw it.
 */
import type { Daemon } from "../test/helpers/daemon.js";
import { type Context, type SharedStore, sharedUrl } from "./context.js";
import { Fleet } from "./fleet.js";
import { median } from "./measure.js";
import { type Change, changesOf, mid, Observer, violations } from "./observer.js";

/** The default maxStep (1.5 × the default 1 s interval), for the history check. */
const DEFAULT_MAX_STEP_NS = 1_500_000_000n;
const WORKERS = 3;

export interface Kill {
  /** The longest time global time stood still around the kill (between two changes). */
  stallMs: number;
  /** From the kill to the first advance by another daemon. */
  killToResumeMs: number;
  /** How far the taking-over daemon advanced the clock (never more than maxStep). */
  takeoverStepMs: number;
}

/** Global time against wall time, for the chart: ms since the first read. */
export interface Trace {
  changes: Array<[wallMs: number, globalMs: number]>;
  kills: number[];
  endMs: number;
}

export interface FailoverResult {
  store: SharedStore;
  workers: number;
  /** The daemons' own statement of their worst case (takeoverAfter + pollInterval). */
  configuredBound: string;
  kills: Kill[];
  medianStallMs: number;
  maxStallMs: number;
  medianKillToResumeMs: number;
  maxKillToResumeMs: number;
  /** Takeovers that no kill caused. */
  spuriousTakeovers: number;
  reads: number;
  violations: string[];
  trace: Trace;
}

const ms = (ns: bigint) => Number(ns) / 1e6;
const sleep = (t: number) => new Promise((r) => setTimeout(r, t));

async function waitForTakeover(fleet: Fleet, seen: Map<Daemon, number>): Promise<bigint> {
  const deadline = Date.now() + 60_000;
  for (;;) {
    for (const d of fleet.alive) {
      const line = d.lines.slice(seen.get(d) ?? 0).find((l) => l.event === "takeover");
      if (line && typeof line.global === "string") return BigInt(line.global);
    }
    if (Date.now() > deadline) throw new Error("no daemon took over within 60 s of the kill");
    await sleep(5);
  }
}

async function killOnce(fleet: Fleet, observer: Observer): Promise<Kill & { at: bigint }> {
  await fleet.active();
  await observer.changes(2); // steady: the active daemon has advanced twice since we looked
  await sleep(Math.random() * 1000); // a random moment of its 1 s interval
  const victim = await fleet.active();
  const seen = new Map(fleet.alive.map((d) => [d, d.lines.length] as const));
  seen.delete(victim);
  const at = process.hrtime.bigint();
  victim.kill("SIGKILL");
  await victim.exited;
  const resumed = await waitForTakeover(fleet, seen);
  await observer.greaterThan(resumed - 1n);
  const changes = changesOf(observer.samples);
  const r = changes.findIndex((c) => c.global >= resumed);
  // The dead daemon's last write may still land just after the kill: start the window at
  // the last change that may have been committed before it.
  let p = r;
  while (p > 0 && (changes[p] as Change).lo >= at) p--;
  let stall = 0n;
  for (let i = p + 1; i <= r; i++) {
    const gap = mid(changes[i] as Change) - mid(changes[i - 1] as Change);
    if (gap > stall) stall = gap;
  }
  const after = changes[r] as Change;
  const before = changes[r - 1] as Change;
  return {
    at,
    stallMs: ms(stall),
    killToResumeMs: ms(mid(after) - at),
    takeoverStepMs: ms(after.global - before.global),
  };
}

async function runStore(ctx: Context, store: SharedStore, url: string): Promise<FailoverResult> {
  const fleet = new Fleet(url);
  const observer = await Observer.start(url);
  try {
    for (let i = 0; i < WORKERS; i++) await fleet.add();
    const start = fleet.lines("start")[0];
    const kills: Array<Kill & { at: bigint }> = [];
    for (let k = 0; k < ctx.mode.kills; k++) {
      kills.push(await killOnce(fleet, observer));
      const last = kills.at(-1) as Kill;
      ctx.log(`    kill ${k + 1}: stall ${last.stallMs.toFixed(0)} ms`);
      const replacement = await fleet.add(); // back to three before the next kill
      const deadline = Date.now() + 30_000;
      while (replacement.role === "starting" && Date.now() < deadline) await sleep(10);
    }
    await observer.changes(1);
    const samples = await observer.stop();
    const t0 = (samples[0]?.before ?? 0n) as bigint;
    const g0 = samples[0]?.global ?? 0n;
    const stalls = kills.map((k) => k.stallMs);
    const resumes = kills.map((k) => k.killToResumeMs);
    return {
      store,
      workers: WORKERS,
      configuredBound: String(start?.failoverBound ?? "?"),
      kills: kills.map(({ at: _, ...k }) => k),
      medianStallMs: median(stalls),
      maxStallMs: Math.max(...stalls),
      medianKillToResumeMs: median(resumes),
      maxKillToResumeMs: Math.max(...resumes),
      spuriousTakeovers: fleet.lines("takeover").length - kills.length,
      reads: samples.length,
      violations: violations(samples, DEFAULT_MAX_STEP_NS),
      trace: {
        changes: changesOf(samples).map((c) => [ms(mid(c) - t0), ms(c.global - g0)]),
        kills: kills.map((k) => ms(k.at - t0)),
        endMs: ms((samples.at(-1)?.after ?? t0) - t0),
      },
    };
  } finally {
    await observer.stop().catch(() => {});
    await fleet.stop();
  }
}

export async function failoverSection(ctx: Context): Promise<FailoverResult[]> {
  const out: FailoverResult[] = [];
  for (const store of ctx.mode.failoverStores) {
    const url = sharedUrl(ctx, store, "failover");
    if (!url) continue;
    ctx.log(`  ${store}: ${ctx.mode.kills} kills`);
    out.push(await runStore(ctx, store, url));
  }
  return out;
}
