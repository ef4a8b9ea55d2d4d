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

/** An exact multiple of the interval in use: `numerator / denominator × interval`. */
export interface IntervalMultiple {
  readonly numerator: bigint;
  readonly denominator: bigint;
}

/** The defaults workerSettings() fills in: interval in ns, the other durations scaled to it. */
export interface WorkerDefaults {
  readonly interval: bigint;
  readonly takeoverAfter: IntervalMultiple;
  readonly maxStep: IntervalMultiple;
  readonly retryDelay: IntervalMultiple;
  readonly maxRetryDelay: IntervalMultiple;
  readonly pollInterval: IntervalMultiple;
}

type ScaledOption = Exclude<keyof WorkerDefaults, "interval">;

const times = (numerator: bigint, denominator = 1n): IntervalMultiple =>
  Object.freeze({ numerator, denominator });

/** The source of every worker default; help texts and the README are built from it. */
export const WORKER_DEFAULTS: WorkerDefaults = Object.freeze({
  interval: 1_000_000_000n,
  takeoverAfter: times(2n),
  maxStep: times(3n, 2n),
  retryDelay: times(1n),
  maxRetryDelay: times(10n),
  pollInterval: times(1n),
});

/**
 * The cluster's maxStep when none is stored yet: the workers' default step, 1.5 × 1 s. The
 * first worker, updater or lease holder on a store stores it.
 */
export const DEFAULT_MAX_STEP =
  (WORKER_DEFAULTS.interval * WORKER_DEFAULTS.maxStep.numerator) /
  WORKER_DEFAULTS.maxStep.denominator;

/**
 * The shortest interval a worker accepts: each step is a durable write to the store (an
 * fsync, a Raft commit, a majority write), and a worker writing faster than this only
 * loads the store without making the clock any finer.
 */
export const MIN_INTERVAL = 10_000_000n;

/** A default as help texts and the README put it: "1s", "2 × interval", "interval". */
export function describeDefault(field: keyof WorkerDefaults): string {
  if (field === "interval") return formatDuration(WORKER_DEFAULTS.interval);
  const { numerator, denominator } = WORKER_DEFAULTS[field];
  if (numerator === denominator) return "interval";
  return `${Number(numerator) / Number(denominator)} × interval`;
}

/** Settings made by workerSettings(): a worker given one of these uses it as it is. */
const VALIDATED = new WeakSet<WorkerSettings>();

/** Validates options once; a ConfigError names the offending field. */
export function workerSettings(options: UpdaterWorkerOptions = {}): WorkerSettings {
  const interval = toNanoseconds(options.interval ?? WORKER_DEFAULTS.interval, "interval");
  if (interval < MIN_INTERVAL) {
    throw new ConfigError(
      "interval",
      `interval ${formatDuration(interval)} is below the minimum of ${formatDuration(MIN_INTERVAL)}: each step is a durable write to the store`,
    );
  }
  const get = (field: ScaledOption): bigint => {
    const value = options[field];
    if (value !== undefined) return checkTimer(field, toNanoseconds(value, field));
    const { numerator, denominator } = WORKER_DEFAULTS[field];
    return checkTimer(field, (interval * numerator) / denominator);
  };
  checkTimer("interval", interval);
  const takeoverAfter = get("takeoverAfter");
  const maxStep = get("maxStep");
  const retryDelay = get("retryDelay");
  const maxRetryDelay = get("maxRetryDelay");
  const pollInterval = get("pollInterval");
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
  const settings: WorkerSettings = Object.freeze({
    interval,
    takeoverAfter,
    maxStep,
    retryDelay,
    maxRetryDelay,
    pollInterval,
    failoverBound: pollInterval + ceilTo(takeoverAfter, pollInterval),
    pushedFailoverBound: takeoverAfter,
  });
  VALIDATED.add(settings);
  return settings;
}

/**
 * The settings a worker runs with: `settings` as it is when workerSettings() made it, else
 * validated (a hand-built object), else the individual options validated.
 */
export function validatedSettings(
  options: UpdaterWorkerOptions & { readonly settings?: WorkerSettings | undefined },
): WorkerSettings {
  const { settings } = options;
  if (settings === undefined) return workerSettings(options);
  const twice = (Object.keys(WORKER_DEFAULTS) as (keyof WorkerDefaults)[]).find(
    (f) => options[f] !== undefined,
  );
  if (twice !== undefined) {
    throw new ConfigError(
      "settings",
      `pass ${twice} inside settings or without settings, not both`,
    );
  }
  return VALIDATED.has(settings) ? settings : workerSettings(settings);
}

/** The durations a worker runs by: its settings, or those scaled to a smaller cluster maxStep. */
export interface WorkerTiming {
  readonly interval: bigint;
  readonly takeoverAfter: bigint;
  readonly pollInterval: bigint;
  readonly maxStep: bigint;
}

/**
 * The settings' timing where the cluster's maxStep is at least the worker's own; else every
 * duration scaled by cluster ÷ own, so that steps fit the cluster's maxStep at the same pace
 * (the interval no shorter than MIN_INTERVAL, and the takeover still longer than it).
 */
export function scaledTiming(s: WorkerSettings, cluster: bigint | undefined): WorkerTiming {
  if (cluster === undefined || cluster >= s.maxStep) return s;
  const scale = (ns: bigint) => (ns * cluster) / s.maxStep;
  const interval = scale(s.interval) > MIN_INTERVAL ? scale(s.interval) : MIN_INTERVAL;
  const takeoverAfter = scale(s.takeoverAfter);
  const pollInterval = scale(s.pollInterval);
  return Object.freeze({
    interval,
    takeoverAfter: takeoverAfter > interval ? takeoverAfter : interval * 2n,
    pollInterval: pollInterval > 0n ? pollInterval : interval,
    maxStep: cluster,
  });
}

/** One line for logs: the settings and the bounds they imply. */
export function describeSettings(s: WorkerSettings): string {
  const f = formatDuration;
  return `interval ${f(s.interval)}, takeover after ${f(s.takeoverAfter)}, max step ${f(s.maxStep)}, worst-case failover ${f(s.pushedFailoverBound)} (pushed) or ${f(s.failoverBound)} (polled) + store latency`;
}

const ceilTo = (value: bigint, unit: bigint): bigint => ((value + unit - 1n) / unit) * unit;
