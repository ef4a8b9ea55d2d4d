import { sleep } from "./sleep.js";

/**
 * The worker's sense of time: a monotonic clock and a way to wait on it. Real time by
 * default; tests pass a fake to step time by hand.
 */
export interface WorkerClock {
  /** Monotonic nanoseconds; only differences matter. Never the wall clock. */
  now(): bigint;
  /** Waits `ns`; resolves false at once if `signal` aborts. */
  sleep(ns: bigint, signal: AbortSignal, options?: { unref?: boolean }): Promise<boolean>;
}

export const monotonicClock: WorkerClock = {
  now: () => process.hrtime.bigint(),
  sleep: (ns, signal, options) => sleep(Number(ns) / 1e6, signal, options?.unref),
};
