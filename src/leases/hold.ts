/**
 * Holding a lease over time: the one claim-and-wait loop and the one renewal loop that
 * leader election (election.ts) and `globalclock lock` share, with one schedule, validated
 * against the cluster's maxStep before it is used.
 */
import { type DurationInput, formatDuration, toNanoseconds } from "../duration.js";
import { ConfigError, LeaseHeldError, LeaseLostError, StoreError } from "../errors.js";
import type { WorkerClock } from "../worker-clock.js";
import { checkDuration, type LeaseInfo, MAX_DRIFT_PPM } from "./info.js";
import type { Lease } from "./lease.js";

/** How a holder renews its lease: every duration in nanoseconds. */
export interface HoldSchedule {
  /** The lease's duration, in global time. */
  readonly duration: bigint;
  /** How long after a claim or renewal the next renewal is made (the holder's clock). */
  readonly renewEvery: bigint;
  /** The first pause after a failed renewal; it doubles, up to half of renewEvery. */
  readonly retryDelay: bigint;
  /** How long before the deadline the holder starts stopping (`lock`'s SIGTERM); 0 for none. */
  readonly grace: bigint;
  /** The least time from a claim's start to its deadline: what a holder can count on. */
  readonly usable: bigint;
}

export interface HoldOptions {
  /** The lease's duration, in global time; at least 3 × the cluster's maxStep. */
  duration: DurationInput;
  /**
   * How often to renew. Default a third of the time a claim can count on (the deadline,
   * less maxStep and drift), at most a third of `duration`; it must leave room for a second
   * attempt before the deadline (less `grace`).
   */
  renewEvery?: DurationInput;
  /** First pause after a failed renewal; doubles up to half of renewEvery. Default 100 ms. */
  retryDelay?: DurationInput;
  /** How long before the deadline to start stopping. Default `defaultGrace(usable)`, else 0. */
  grace?: DurationInput;
}

/** The names a caller gives these fields (a CLI's flags), for messages. */
export interface ScheduleNames {
  readonly duration: string;
  readonly renewEvery: string;
  readonly retryDelay: string;
  readonly grace: string;
}

const API_NAMES: ScheduleNames = {
  duration: "duration",
  renewEvery: "renewEvery",
  retryDelay: "retryDelay",
  grace: "grace",
};
const MILLION = 1_000_000n;
const DEFAULT_RETRY_DELAY = 100_000_000n;

/** The least time from a claim's start (t0) to its deadline, for a lease of `duration`. */
export function usableTime(duration: bigint, maxStep: bigint): bigint {
  return ((duration - maxStep) * (MILLION - MAX_DRIFT_PPM)) / (MILLION + MAX_DRIFT_PPM);
}

/**
 * The schedule, checked as a whole against the cluster's `maxStep` (ConfigError naming the
 * caller's field): the lease long enough to hold at all, and a renewal early enough that a
 * failed one can be tried again before the deadline, less `grace`.
 */
export function holdSchedule(
  options: HoldOptions,
  maxStep: bigint,
  defaultGrace: (usable: bigint) => bigint = () => 0n,
  names: ScheduleNames = API_NAMES,
): HoldSchedule {
  const f = formatDuration;
  const duration = toNanoseconds(options.duration, names.duration);
  checkDuration(duration, maxStep, names.duration);
  const usable = usableTime(duration, maxStep);
  const grace =
    options.grace === undefined ? defaultGrace(usable) : toNanoseconds(options.grace, names.grace);
  if (grace >= usable) {
    throw new ConfigError(
      names.grace,
      `${names.grace} ${f(grace)} is not shorter than the ${f(usable)} a claim of ${f(duration)} can count on (${names.duration} less the cluster's maxStep, ${f(maxStep)}, and clock drift): the holder would stop before it started`,
    );
  }
  // A third of what is left before the stop (less than a third of the duration).
  const renewEvery =
    options.renewEvery === undefined
      ? (usable - grace) / 3n
      : toNanoseconds(options.renewEvery, names.renewEvery);
  if (renewEvery <= 0n)
    throw new ConfigError(names.renewEvery, `${names.renewEvery} must be greater than 0`);
  if (2n * renewEvery > usable - grace) {
    const most = (usable - grace) / 2n;
    throw new ConfigError(
      names.renewEvery,
      `${names.renewEvery} ${f(renewEvery)} leaves no time to renew twice: a claim of ${f(duration)} can count on ${f(usable)} (less maxStep ${f(maxStep)} and clock drift)${grace > 0n ? `, and ${names.grace} ${f(grace)} before that the holder stops` : ""}; use ${names.renewEvery} ${f(most)} or less, or a longer ${names.duration}`,
    );
  }
  const retryDelay =
    options.retryDelay === undefined
      ? earliest(DEFAULT_RETRY_DELAY, renewEvery / 4n)
      : toNanoseconds(options.retryDelay, names.retryDelay);
  if (retryDelay <= 0n)
    throw new ConfigError(names.retryDelay, `${names.retryDelay} must be greater than 0`);
  return Object.freeze({ duration, renewEvery, retryDelay, grace, usable });
}

/** The pause before retry number `failures` + 1: retryDelay, doubling, at most `most`. */
export function retryPause(retryDelay: bigint, most: bigint, failures: number): bigint {
  return earliest(retryDelay << BigInt(Math.min(failures, 30)), most);
}

/** What the claim loop needs of Leases (or of a session, whose claims give `L`). */
export interface Claimer<L = Lease> {
  readonly clock: WorkerClock;
  claim(
    name: string,
    holder: string,
    duration: DurationInput,
    options?: { signal?: AbortSignal },
  ): Promise<L>;
  waitUntilExpired(
    name: string,
    options?: { signal?: AbortSignal; onChange?: (lease: LeaseInfo | undefined) => void },
  ): Promise<unknown>;
}

export interface AcquireOptions {
  /** Wait until the lease is free when another holds it, instead of throwing LeaseHeldError. */
  wait: boolean;
  /** Ends the attempt: the claim loop rejects with the signal's reason. */
  signal?: AbortSignal;
  /** Called with the holder seen whenever it changes while waiting (undefined: none). */
  onWaiting?: (lease: LeaseInfo | undefined) => void;
  /** Whether to try again after an error other than LeaseHeldError. Default: retryable StoreErrors, while waiting. */
  retry?: (err: unknown) => boolean;
  /** First pause after such an error; doubles up to `maxRetryDelay`. */
  retryDelay: bigint;
  maxRetryDelay: bigint;
}

/**
 * Claims the lease; when another holds it and `wait`, waits until it is free (woken by the
 * store's pushes where it has them) and claims again. Errors that may mend (a restarting
 * server, a database locked for a while) are tried again after a growing pause.
 */
export async function acquire<L = Lease>(
  leases: Claimer<L>,
  name: string,
  holder: string,
  duration: bigint,
  options: AcquireOptions,
): Promise<L> {
  const { signal, wait } = options;
  const retry =
    options.retry ?? ((err: unknown) => wait && err instanceof StoreError && err.retryable);
  let failures = 0;
  for (;;) {
    signal?.throwIfAborted();
    try {
      return await leases.claim(name, holder, duration, { signal });
    } catch (err) {
      signal?.throwIfAborted();
      if (err instanceof LeaseHeldError) {
        if (!wait) throw err;
        failures = 0;
        options.onWaiting?.(heldBy(err));
        await leases
          .waitUntilExpired(name, { signal, onChange: options.onWaiting })
          .catch((e: unknown) => {
            signal?.throwIfAborted();
            if (!retry(e)) throw e;
          });
      } else if (retry(err)) {
        const pause = retryPause(options.retryDelay, options.maxRetryDelay, failures++);
        // Stryker disable next-line BooleanLiteral,OptionalChaining: sleep resolves false only once `signal` (so defined) aborted, and the loop's first line throws its reason then anyway
        if (!(await leases.clock.sleep(pause, signal ?? NEVER))) signal?.throwIfAborted();
      } else {
        throw err;
      }
    }
  }
}

export interface KeepOptions {
  readonly clock: WorkerClock;
  /** Ends the renewals (the lease is left as it is: release it yourself). */
  readonly signal?: AbortSignal;
  /** Called after each renewal, with the lease and its new deadline. */
  readonly onRenewed?: (lease: Lease) => void;
}

/**
 * Renews `lease` every renewEvery; a failed renewal is tried again after growing pauses
 * (never more than half of renewEvery apart) until the deadline. Resolves once the renewals
 * end: undefined when `signal` aborted, else the LeaseLostError that ended them (the lease
 * was taken or released, or its deadline passed: its signal has fired).
 */
export async function keep(
  lease: Lease,
  schedule: HoldSchedule,
  options: KeepOptions,
): Promise<LeaseLostError | undefined> {
  const { clock, signal } = options;
  const ended = signal ? AbortSignal.any([lease.signal, signal]) : lease.signal;
  let wait = schedule.renewEvery;
  let failures = 0;
  while (!ended.aborted) {
    if (!(await clock.sleep(wait, ended))) break;
    try {
      await lease.extend(schedule.duration, ended);
      failures = 0;
      wait = schedule.renewEvery;
      options.onRenewed?.(lease);
    } catch (err) {
      if (err instanceof LeaseLostError) return err;
      // Stryker disable next-line ConditionalExpression: the loop's own test `!ended.aborted` ends it just as well (the pause computed is unused)
      if (ended.aborted) break;
      wait = retryPause(schedule.retryDelay, schedule.renewEvery / 2n, failures++);
    }
  }
  if (signal?.aborted) return undefined;
  return lease.signal.reason as LeaseLostError; // a Lease's signal fires with one
}

/** The holder a LeaseHeldError names, as a LeaseInfo. */
export function heldBy(err: LeaseHeldError): LeaseInfo {
  return Object.freeze({
    name: err.lease.name,
    holder: err.lease.holder,
    token: err.lease.token,
    start: 0n,
    expiry: err.lease.expiry,
    pins: [],
    time: err.time,
    free: false,
  });
}

const NEVER = new AbortController().signal;
// Stryker disable next-line EqualityOperator: `<=` picks `a` when a === b, the same value
const earliest = (a: bigint, b: bigint) => (a < b ? a : b);
