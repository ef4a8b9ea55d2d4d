/**
 * Recording what happens around a store fault (server restart, leader kill) while an
 * updater worker runs: reads by an observer, the advances the worker had acknowledged,
 * and what a Reader's watch delivered. The invariants are checked on the records.
 */
import assert from "node:assert/strict";
import type { TestContext } from "node:test";
import { openStore } from "../../src/open.js";
import { Reader } from "../../src/reader.js";
import type { ClockStore } from "../../src/store.js";
import type { UpdaterWorker, WorkerStatus } from "../../src/worker.js";
import { startUpdater } from "../../src/worker.js";
import type { Sample } from "./history.js";
import { checkHistory } from "./history.js";

const now = () => process.hrtime.bigint();

/**
 * Reads the clock every `intervalMs` until `signal` aborts, timing each successful read
 * on the monotonic clock. A failed read (the store is down) is skipped, not recorded.
 */
export async function observeReads(
  store: ClockStore,
  signal: AbortSignal,
  intervalMs = 10,
): Promise<{ samples: Sample[]; failures: number }> {
  const samples: Sample[] = [];
  let failures = 0;
  while (!signal.aborted) {
    const before = now();
    try {
      const global = await store.read(signal);
      if (global !== undefined) samples.push({ before, after: now(), global, source: "observer" });
    } catch {
      if (signal.aborted) break;
      failures++;
    }
    await new Promise((r) => setTimeout(r, intervalMs));
  }
  return { samples, failures };
}

/** An advance the worker reported done: `time` was acknowledged no later than `at`. */
export interface Ack {
  at: bigint;
  time: bigint;
}

/** Follows a worker's status: its acknowledged advances, and waiting for more of them. */
export class WorkerLog {
  readonly acks: Ack[] = [];
  last: WorkerStatus;
  readonly #worker: UpdaterWorker;
  readonly #waiters = new Set<() => void>();
  readonly #done: Promise<void>;

  constructor(worker: UpdaterWorker, signal: AbortSignal) {
    this.#worker = worker;
    this.last = worker.snapshot();
    this.#done = this.#follow(signal);
  }

  async #follow(signal: AbortSignal): Promise<void> {
    for await (const s of this.#worker.events(signal)) {
      if (s.advances > this.last.advances && s.time !== undefined)
        this.acks.push({ at: now(), time: s.time });
      this.last = s;
      for (const wake of this.#waiters) wake();
    }
  }

  /** Waits until the worker has made `count` advances in all; rejects after `timeoutMs`. */
  async advances(count: number, timeoutMs: number): Promise<bigint> {
    const deadline = Date.now() + timeoutMs;
    while (this.last.advances < count) {
      const left = deadline - Date.now();
      if (left <= 0) {
        const s = this.#worker.snapshot();
        throw new Error(
          `worker made ${s.advances} of ${count} advances in time: role ${s.role}, ` +
            `${s.errors} errors, last error: ${s.lastError ?? "none"}`,
        );
      }
      await new Promise<void>((resolve) => {
        const wake = () => {
          clearTimeout(timer);
          this.#waiters.delete(wake);
          resolve();
        };
        const timer = setTimeout(wake, Math.min(left, 200));
        this.#waiters.add(wake);
      });
    }
    return now();
  }

  /** The first acknowledged advance after monotonic time `t`. */
  firstAckAfter(t: bigint): Ack | undefined {
    return this.acks.find((a) => a.at > t);
  }

  /** The last acknowledged advance before monotonic time `t`. */
  lastAckBefore(t: bigint): Ack | undefined {
    return this.acks.findLast((a) => a.at < t);
  }

  finished(): Promise<void> {
    return this.#done;
  }
}

/**
 * Every acknowledged advance is still there afterwards: a read that began after an
 * advance was acknowledged never returns less than it.
 */
export function checkAcks(acks: readonly Ack[], samples: readonly Sample[]): string[] {
  const out: string[] = [];
  const byAt = [...acks].sort((x, y) => (x.at < y.at ? -1 : x.at > y.at ? 1 : 0));
  const byBefore = [...samples].sort((x, y) =>
    x.before < y.before ? -1 : x.before > y.before ? 1 : 0,
  );
  let i = 0;
  let top: Ack | undefined;
  for (const s of byBefore) {
    while (i < byAt.length && (byAt[i] as Ack).at < s.before) {
      const a = byAt[i] as Ack;
      if (!top || a.time > top.time) top = a;
      i++;
    }
    if (top && s.global < top.time && out.length < 20) {
      out.push(
        `lost advance: read at ${s.before} saw ${s.global} after ${top.time} was acknowledged`,
      );
    }
  }
  return out;
}

/** A Reader's watch that only a push can feed (it would poll once an hour). */
export function watchPushes(
  store: ClockStore,
  signal: AbortSignal,
): { seen: Ack[]; done: Promise<void> } {
  const seen: Ack[] = [];
  const done = (async () => {
    for await (const time of new Reader(store).watch({ signal, pollIntervalMs: 3_600_000 })) {
      seen.push({ at: now(), time });
    }
  })();
  return { seen, done };
}

/** Milliseconds between two monotonic times, for diagnostics. */
export const ms = (from: bigint, to: bigint): string => `${Number(to - from) / 1e6} ms`;

/** What a fault scenario gets to work with while a worker runs on the store. */
export interface FaultRun {
  readonly log: WorkerLog;
  readonly observer: ClockStore;
  /** Waits for `more` further advances (generous bound: a liveness check, not timing). */
  advance(more: number): Promise<void>;
  /**
   * After a fault injected at monotonic `at`, when the clock stood at `stored`: waits for
   * the worker to advance again and the watch to see it, and reports the stall.
   */
  recovered(label: string, at: bigint, stored: bigint): Promise<void>;
}

/**
 * Runs `scenario` while a fast worker advances the clock at `url` and an observer and a
 * push-only watch follow it; then checks what the fault tests promise: no decrease, no
 * jump beyond maxStep, every acknowledged advance still read afterwards, global time no
 * faster than wall time over the run, and a watch that only ever moved forward.
 * Resolves to the worker's final status for scenario-specific checks.
 */
export async function underFaults(
  t: TestContext,
  url: string,
  scenario: (run: FaultRun) => Promise<void>,
): Promise<WorkerStatus> {
  const [store, observer, watcher] = [
    await openStore(url),
    await openStore(url),
    await openStore(url),
  ];
  const stop = new AbortController();
  const worker = startUpdater(store, {
    interval: "100ms",
    takeoverAfter: "200ms",
    retryDelay: "100ms",
    maxRetryDelay: "400ms",
  });
  const log = new WorkerLog(worker, stop.signal);
  let observing: ReturnType<typeof observeReads> | undefined;
  let watching: ReturnType<typeof watchPushes> | undefined;
  let wallStart = 0n;
  let globalStart = 0n;
  try {
    await log.advances(3, 30_000);
    observing = observeReads(observer, stop.signal);
    const pushes = watchPushes(watcher, stop.signal);
    watching = pushes;
    wallStart = now();
    globalStart = (await observer.read()) ?? 0n;
    await scenario({
      log,
      observer,
      advance: async (more) => {
        await log.advances(log.last.advances + more, 60_000);
      },
      recovered: async (label, at, stored) => {
        await log.advances(log.last.advances + 5, 60_000);
        const last = log.lastAckBefore(at);
        const first = log.firstAckAfter(at);
        assert.ok(last && first);
        t.diagnostic(
          `${label}: clock stood still ${ms(last.at, first.at)}, first advance ${ms(at, first.at)} after the fault`,
        );
        // The watch resubscribed by itself: a later time reaches it through a push alone.
        const deadline = Date.now() + 30_000;
        while (!pushes.seen.some((w) => w.at > at && w.time > stored)) {
          assert.ok(Date.now() < deadline, `the watch saw nothing after ${label}`);
          await new Promise((r) => setTimeout(r, 50));
        }
      },
    });
  } finally {
    await worker.stop();
    stop.abort();
  }
  const wallEnd = now();
  const globalEnd = (await observer.read()) ?? 0n;
  const { samples, failures } = await (observing as ReturnType<typeof observeReads>);
  await watching?.done.catch(() => {});
  await log.finished();
  await Promise.all([store.close(), observer.close(), watcher.close()]);

  const status = worker.snapshot();
  const maxStep = worker.settings.maxStep;
  t.diagnostic(
    `${status.advances} advances, ${status.conflicts} conflicts, ${status.errors} store errors, ` +
      `${samples.length} reads (${failures} failed); global ${ms(globalStart, globalEnd)} over wall ${ms(wallStart, wallEnd)}`,
  );
  assert.deepEqual(checkHistory(samples, maxStep), []);
  assert.deepEqual(checkAcks(log.acks, samples), []);
  // No double counting: over the whole run global time moved no more than wall time did.
  assert.ok(
    globalEnd - globalStart <= wallEnd - wallStart + maxStep,
    `global ${globalEnd - globalStart}ns > wall ${wallEnd - wallStart}ns + maxStep`,
  );
  const seen = (watching as ReturnType<typeof watchPushes>).seen.map((w) => w.time);
  for (let i = 1; i < seen.length; i++) assert.ok((seen[i] as bigint) > (seen[i - 1] as bigint));
  return status;
}
