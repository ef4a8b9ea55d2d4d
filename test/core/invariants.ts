/**
 * The invariants of docs/design.md ("The invariants"), checked on a history recorded in real
 * time: the store's record of every clock write, reads of the clock (each with the maxStep of
 * its snapshot), and the spans in which a worker was ready to keep the clock moving. Pure
 * functions; each returns its violations, one line each (an empty list: the history is fine).
 *
 * Drift (docs/design.md, "Drift"): every machine's clock may run fast by ρ = MAX_DRIFT_PPM,
 * so global time may run fast by as much. Bounds of the form (1 + ρ) × real are compared
 * exactly, in millionths: 10⁶ × global ≤ (10⁶ + ppm) × real.
 */
import { checkHistory, type Sample } from "../../src/history.js";
import { MAX_DRIFT_PPM } from "../../src/leases/info.js";
import { earlier, INT64_MAX } from "../../src/time.js";

/** A clock write the store applied, at real time `at`: the value before and after. */
export interface Write {
  readonly at: bigint;
  readonly from: bigint;
  readonly to: bigint;
  readonly by: string;
  /** The cluster's maxStep stored when the write was applied. */
  readonly maxStep: bigint | undefined;
}

/** A read of the clock: sent at `before`, answered at `after` (real time). */
export interface Read extends Sample {
  /** The cluster's maxStep in the read's snapshot; undefined when none was stored. */
  maxStep: bigint | undefined;
}

/**
 * A stretch of real time [from, to] in which worker `who` was ready to move the clock, from
 * the end of its warm-up (see checkLiveness).
 */
export interface Span {
  readonly from: bigint;
  readonly to: bigint;
  readonly who: string;
}

const MILLION = 1_000_000n;
const FAST = MILLION + MAX_DRIFT_PPM;
const MAX_LISTED = 5;

/** (1 + ρ) × `real`, rounded down. */
const drifted = (real: bigint): bigint => (real * FAST) / MILLION;
const ms = (ns: bigint): string => `${Number(ns) / 1e6} ms`;

/** Collects at most MAX_LISTED lines, then counts the rest. */
class Report {
  readonly #lines: string[] = [];
  #hidden = 0;

  add(line: string): void {
    if (this.#lines.length < MAX_LISTED) this.#lines.push(line);
    else this.#hidden++;
  }

  get lines(): string[] {
    const last = this.#lines[this.#lines.length - 1];
    if (this.#hidden === 0 || last === undefined) return this.#lines;
    return [...this.#lines, `${last.slice(0, last.indexOf(":") + 1)} … and ${this.#hidden} more`];
  }
}

/**
 * Invariant 1. On the store's own record (`writes` in the order the store applied them):
 * every write is from the value stored before it, and never to a smaller one. On reads: a
 * read that began after another ended never sees a smaller time (src/history.ts's sweep; its
 * own jump check, for one fixed maxStep and no drift, is switched off here: see checkJumps).
 */
export function checkMonotonic(writes: readonly Write[], reads: readonly Read[]): string[] {
  const report = new Report();
  let previous: bigint | undefined;
  for (const w of writes) {
    if (previous !== undefined && w.from !== previous)
      report.add(`invariant 1: ${w.by}'s write at ${w.at} is from ${w.from}, not ${previous}`);
    if (w.to < w.from)
      report.add(`invariant 1: ${w.by} set the clock back by ${w.from - w.to} ns at ${w.at}`);
    previous = w.to;
  }
  for (const line of checkHistory(reads, INT64_MAX)) report.add(`invariant 1: ${line}`);
  return report.lines;
}

/**
 * Invariant 2 on the store's own record: write i, from v(i−1) to v(i), adds
 *
 *     v(i) − v(i−1) ≤ (1 + ρ)(at(i) − at(i−1))
 *
 * its updater measured the step from a view it confirmed no earlier than v(i−1) was written
 * (rule 1), on a clock fast by at most ρ. The value before the first write was in place from
 * real time `since`. `slack` ns per write: each reading of a simulated clock is rounded to a
 * whole ns.
 */
export function checkRate(writes: readonly Write[], since = 0n, slack = 1n): string[] {
  const report = new Report();
  let previousAt = since;
  for (const w of writes) {
    const step = w.to - w.from;
    const real = w.at - previousAt;
    if (MILLION * step > FAST * real + MILLION * slack) {
      report.add(
        `invariant 2: ${w.by} stepped ${ms(step)} at ${w.at}, ${ms(real)} after the value it ` +
          `built on was written: more than (1 + ρ) × that (${ms(drifted(real))})`,
      );
    }
    previousAt = w.at;
  }
  return report.lines;
}

/**
 * Rule 2 of "The rules every updater keeps", on the store's own record: no step is larger than
 * the cluster's maxStep stored when it was applied (the one its advance compared), nor than
 * the worker's own `maxStep`. Invariant 3 rests on it.
 */
export function checkSteps(writes: readonly Write[], maxStep: bigint): string[] {
  const report = new Report();
  for (const w of writes) {
    const step = w.to - w.from;
    if (step > earlier(w.maxStep ?? maxStep, maxStep)) {
      report.add(
        `rule 2: ${w.by} stepped ${ms(step)} at ${w.at}, where the cluster's maxStep was ` +
          `${w.maxStep === undefined ? "deleted" : ms(w.maxStep)} and its own ${ms(maxStep)}`,
      );
    }
  }
  return report.lines;
}

/**
 * Invariant 3 on reads: for reads a and b with g(a) < g(b), where M(a) is the maxStep stored
 * at a's snapshot,
 *
 *     g(b) − g(a) ≤ M(a) + (1 + ρ)(after(b) − before(a)) + slack
 *
 * (a's snapshot lies in [before(a), after(a)], so this is the design's bound, loosened only
 * by a's own latency). An operator's change of maxStep after a's snapshot changes nothing:
 * the first write after it compared M(a), or built on a view confirmed after the change, so
 * after the snapshot ("Changing maxStep"). A read without a stored maxStep bounds nothing (no
 * holder decides on it). `slack`: the ns of clock rounding over the chain of writes between
 * the two reads (one per write).
 *
 * b violates it iff g(b) − (1 + ρ)after(b) > g(a) + M(a) − (1 + ρ)before(a) for some a below
 * it: one sweep in order of g, keeping the smallest right-hand side among smaller times.
 */
export function checkJumps(reads: readonly Read[], slack: bigint): string[] {
  const report = new Report();
  const sorted = [...reads].sort((x, y) =>
    x.global < y.global ? -1 : x.global > y.global ? 1 : 0,
  );
  const floor = (a: Read) => MILLION * (a.global + (a.maxStep as bigint) + slack) - FAST * a.before;
  const reach = (b: Read) => MILLION * b.global - FAST * b.after;
  let best: Read | undefined; // among reads with a smaller time: the smallest floor
  let group: Read | undefined; // the same among reads of the current time
  for (let i = 0; i < sorted.length; i++) {
    const b = sorted[i] as Read;
    if (i > 0 && b.global !== (sorted[i - 1] as Read).global) {
      if (group && (!best || floor(group) < floor(best))) best = group;
      group = undefined;
    }
    if (best && reach(b) > floor(best)) {
      const real = b.after - best.before;
      const m = best.maxStep as bigint;
      report.add(
        `invariant 3: global time moved ${ms(b.global - best.global)} from a read ` +
          `[${best.before}, ${best.after}] by ${best.source} (maxStep ${ms(m)}) to one ` +
          `[${b.before}, ${b.after}] by ${b.source}, ${ms(real)} later: more than ` +
          `maxStep + (1 + ρ) × that (${ms(m + drifted(real))})`,
      );
    }
    if (b.maxStep !== undefined && (!group || floor(b) < floor(group))) group = b;
  }
  return report.lines;
}

/**
 * Invariant 5, with slack. While a worker is ready (it runs unfrozen, nothing stops it from
 * stepping, and the store answers promptly), and once it has had time to come back from what
 * came before (a call hung in the store, a backoff), global time moves at least every `bound`
 * (the failover bound and round trips, with room to spare). Each span of `ready` is judged
 * from its `from`, after that warm-up.
 *
 * `writes`: the real times of the clock writes, in order. A violation: a stretch longer than
 * `bound` inside a span with no write.
 */
export function checkLiveness(
  writes: readonly bigint[],
  ready: readonly Span[],
  bound: bigint,
): string[] {
  const report = new Report();
  for (const span of ready) {
    if (span.to - span.from <= bound) continue;
    // The first write at or after the span's start, by binary search.
    let lo = 0;
    let hi = writes.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if ((writes[mid] as bigint) < span.from) lo = mid + 1;
      else hi = mid;
    }
    let last = span.from;
    for (let i = lo; last < span.to; i++) {
      const at = i < writes.length ? (writes[i] as bigint) : span.to;
      const next = earlier(at, span.to);
      if (next - last > bound) {
        report.add(
          `invariant 5: no clock write for ${ms(next - last)} (from ${last} to ${next}) while ` +
            `${span.who} was ready: the bound is ${ms(bound)}`,
        );
        break;
      }
      last = next;
    }
  }
  return report.lines;
}
