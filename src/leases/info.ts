import type { LeaseFields, LeaseRecord } from "../lease-store.js";
import { WORKER_DEFAULTS } from "../worker-settings.js";

/** A lease as read, judged against the global time read with it. */
export interface LeaseInfo extends LeaseFields {
  /** The stored global time it was judged against. */
  readonly time: bigint;
  /** Whether nobody holds it at `time`: released, or expired and not pinned. */
  readonly free: boolean;
}

/** The cluster's maxStep when none is stored yet: the workers' default, 1.5 × 1 s. */
export const DEFAULT_MAX_STEP =
  (WORKER_DEFAULTS.interval * WORKER_DEFAULTS.maxStep.numerator) /
  WORKER_DEFAULTS.maxStep.denominator;

/** A lease shorter than this many maxSteps is refused: the holder would have almost no time. */
export const MIN_DURATION_STEPS = 3n;

/**
 * The holder's allowance for its monotonic clock running slow against another machine's
 * (1/1000: a crystal off by 0.1 %, far more than NTP-disciplined clocks drift).
 */
export const DRIFT_DIVISOR = 1000n;

/** Whether a record leaves the lease free at global time `time`. */
export function isFree(record: LeaseRecord | undefined, time: bigint): boolean {
  return !record || record.holder === "" || (record.pins.length === 0 && time >= record.expiry);
}

export function leaseInfo(record: LeaseRecord, time: bigint): LeaseInfo {
  return Object.freeze({
    name: record.name,
    holder: record.holder,
    token: record.token,
    start: record.start,
    expiry: record.expiry,
    pins: record.pins,
    time,
    free: isFree(record, time),
  });
}
