import { ConfigError } from "../errors.js";
import type { LeaseFields, LeaseRecord } from "../lease-store.js";
import { formatDuration } from "../time.js";

export { DEFAULT_MAX_STEP } from "../worker-settings.js";

/** A lease as read, judged against the global time read with it. */
export interface LeaseInfo extends LeaseFields {
  /** The stored global time it was judged against. */
  readonly time: bigint;
  /** Whether nobody holds it at `time`: released, or expired and not pinned. */
  readonly free: boolean;
}

/** A lease shorter than this many maxSteps is refused: the holder would have almost no time. */
export const MIN_DURATION_STEPS = 3n;

/**
 * Refuses a lease shorter than MIN_DURATION_STEPS × maxStep (ConfigError naming `field`, the
 * caller's name for the duration: "duration", or a CLI flag such as "--ttl").
 */
export function checkDuration(duration: bigint, maxStep: bigint, field = "duration"): void {
  if (duration >= MIN_DURATION_STEPS * maxStep) return;
  const f = formatDuration;
  const what = field === "duration" ? "a lease of" : field;
  throw new ConfigError(
    field,
    `${what} ${f(duration)} is too short: global time may jump up to the cluster's maxStep (${f(maxStep)}) at once, so a lease must last at least ${MIN_DURATION_STEPS} × maxStep (${f(MIN_DURATION_STEPS * maxStep)})`,
  );
}

/**
 * The most any machine's monotonic clock may run fast or slow against real time, in parts
 * per million: 500, the most the NTP daemon will slew a clock. It bounds every machine at
 * once, the updaters' included: global time may run fast by as much, and the holder's own
 * clock slow by as much (docs/design.md, "The holder's deadline").
 */
export const MAX_DRIFT_PPM = 500n;

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
