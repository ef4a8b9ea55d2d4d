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
  /**
   * The session it is held through, where it is (Session): `holder` and `expiry` are then
   * the session's.
   */
  readonly session?: string;
}

/**
 * Session records are lease records whose names begin with this (docs/design.md,
 * "Sessions"). No lease name can: control characters are refused in names.
 */
export const SESSION_PREFIX = "\u0001session/";

/** Whether `name` (a record's name, or a lease's holder) is a session's. */
export function isSessionName(name: string): boolean {
  return name.startsWith(SESSION_PREFIX);
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

/**
 * Whether a record leaves the lease free at global time `time`. A lease held through a
 * session (its holder is the session's record name) is free once that session is:
 * `session` is its record as read (undefined where it is missing, as after an operator
 * deleted it). A session expired but not yet ended counts as free here; a claim ends it
 * before it writes (Leases).
 */
export function isFree(
  record: LeaseRecord | undefined,
  time: bigint,
  session?: LeaseRecord,
): boolean {
  if (!record || record.holder === "") return true;
  if (record.pins.length > 0) return false;
  if (isSessionName(record.holder)) return isFree(session, time);
  return time >= record.expiry;
}

/** The lease as callers see it; one held through a session shows the session's holder and expiry. */
export function leaseInfo(record: LeaseRecord, time: bigint, session?: LeaseRecord): LeaseInfo {
  const through = record.holder !== "" && isSessionName(record.holder);
  const fields = {
    name: record.name,
    holder: through ? (session?.holder ?? "") : record.holder,
    token: record.token,
    start: record.start,
    expiry: through && session ? session.expiry : record.expiry,
    pins: record.pins,
    time,
    free: isFree(record, time, session),
  };
  return Object.freeze(through ? { ...fields, session: record.holder } : fields);
}

/**
 * Every lease among `records` (a list that also holds the session records, as
 * `listLeases("")` returns them) as callers see it; the session records themselves left out.
 */
export function leaseInfos(records: readonly LeaseRecord[], time: bigint): LeaseInfo[] {
  const sessions = new Map<string, LeaseRecord>();
  for (const r of records) if (isSessionName(r.name)) sessions.set(r.name, r);
  const infos: LeaseInfo[] = [];
  for (const r of records) {
    if (!isSessionName(r.name)) infos.push(leaseInfo(r, time, sessions.get(r.holder)));
  }
  return infos;
}
