import { checkTimer, type DurationInput, formatDuration, toNanoseconds } from "./duration.js";
import { ConfigError } from "./errors.js";

/** Options of an UpdaterWorker. Every duration: ms (number), ns (bigint) or "1s"-style text. */
export interface UpdaterWorkerOptions {
  /** How often the active worker advances the clock. Default 1 s. */
  interval?: DurationInput;
  /** How long a stand-by waits without seeing an advance before it takes over. Default 2 × interval. */
  takeoverAfter?: DurationInput;
  /** The largest single advance; a longer stall is never made up. Default 1.5 × interval. */
  maxStep?: DurationInput;
  /** First wait after a store error; doubles up to maxRetryDelay, with jitter. Default interval. */
  retryDelay?: DurationInput;
  /** Longest wait after store errors. Default 10 × interval. */
  maxRetryDelay?: DurationInput;
  /** How often a stand-by reads the clock when the store cannot push changes. Default interval. */
  pollInterval?: DurationInput;
}

/** Validated, frozen settings in nanoseconds, with the bounds they imply. */
export interface WorkerSettings {
  readonly interval: bigint;
  readonly takeoverAfter: bigint;
  readonly maxStep: bigint;
  readonly retryDelay: bigint;
  readonly maxRetryDelay: bigint;
  readonly pollInterval: bigint;
  /**
   * Worst-case stall after the active worker dies, not counting store latency, where the
   * store cannot push: a stand-by sees the last advance up to one poll late, then takes
   * over at the first poll at least takeoverAfter later.
   */
  readonly failoverBound: bigint;
  /** The same where the store pushes changes (watch): takeoverAfter. */
  readonly pushedFailoverBound: bigint;
}

export const WORKER_DEFAULTS = Object.freeze({
  interval: "1s",
  takeoverAfter: "2 × interval",
  maxStep: "1.5 × interval",
  retryDelay: "interval",
  maxRetryDelay: "10 × interval",
  pollInterval: "interval",
});

/** Validates options once; a ConfigError names the offending field. */
export function workerSettings(options: UpdaterWorkerOptions = {}): WorkerSettings {
  const interval = toNanoseconds(options.interval ?? 1000, "interval");
  if (interval <= 0n) throw new ConfigError("interval", "interval must be greater than 0");
  const get = (field: keyof UpdaterWorkerOptions, fallback: bigint): bigint => {
    const value = options[field];
    return checkTimer(field, value === undefined ? fallback : toNanoseconds(value, field));
  };
  checkTimer("interval", interval);
  const takeoverAfter = get("takeoverAfter", 2n * interval);
  const maxStep = get("maxStep", (3n * interval) / 2n);
  const retryDelay = get("retryDelay", interval);
  const maxRetryDelay = get("maxRetryDelay", 10n * interval);
  const pollInterval = get("pollInterval", interval);
  if (takeoverAfter <= interval) {
    throw new ConfigError(
      "takeoverAfter",
      `takeoverAfter (${formatDuration(takeoverAfter)}) must be longer than interval (${formatDuration(interval)}), or stand-bys would fight a healthy active worker`,
    );
  }
  if (maxStep < interval) {
    throw new ConfigError(
      "maxStep",
      `maxStep (${formatDuration(maxStep)}) must be at least interval (${formatDuration(interval)}), or global time would fall behind at every step`,
    );
  }
  if (retryDelay <= 0n) throw new ConfigError("retryDelay", "retryDelay must be greater than 0");
  if (maxRetryDelay < retryDelay) {
    throw new ConfigError("maxRetryDelay", "maxRetryDelay must be at least retryDelay");
  }
  if (pollInterval <= 0n)
    throw new ConfigError("pollInterval", "pollInterval must be greater than 0");
  return Object.freeze({
    interval,
    takeoverAfter,
    maxStep,
    retryDelay,
    maxRetryDelay,
    pollInterval,
    failoverBound: pollInterval + ceilTo(takeoverAfter, pollInterval),
    pushedFailoverBound: takeoverAfter,
  });
}

/** One line for logs: the settings and the bounds they imply. */
export function describeSettings(s: WorkerSettings): string {
  const f = formatDuration;
  return `interval ${f(s.interval)}, takeover after ${f(s.takeoverAfter)}, max step ${f(s.maxStep)}, worst-case failover ${f(s.pushedFailoverBound)} (pushed) or ${f(s.failoverBound)} (polled) + store latency`;
}

const ceilTo = (value: bigint, unit: bigint): bigint => ((value + unit - 1n) / unit) * unit;
