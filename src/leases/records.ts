/**
 * What each lease operation writes, decided from the record read and the global time read
 * with it (docs/design.md, "Leases"). Pure: Leases reads, calls one of these, and writes
 * the result by compare-and-swap on the version it read. `undefined`: nothing to write.
 */
import {
  InvalidDurationError,
  LeaseHeldError,
  LeaseLostError,
  type LeaseState,
} from "../errors.js";
import type { LeaseRecord, LeaseWrite } from "../lease-store.js";
import { earlier, formatDuration, INT64_MAX, later } from "../time.js";
import { isFree } from "./info.js";

/**
 * A claim: a new holder gets a new token (the store's, greater than any before) and starts
 * now; the same holder keeps its token and its start, and its expiry never shrinks.
 * LeaseHeldError while another holds it.
 */
export function claimed(
  r: LeaseRecord | undefined,
  name: string,
  holder: string,
  time: bigint,
  duration: bigint,
  session?: LeaseRecord,
): LeaseWrite {
  const expiry = expiryOf(time, duration);
  if (r && r.holder !== holder && !isFree(r, time, session)) {
    throw new LeaseHeldError(stateOf(r, session), time);
  }
  if (r && r.holder === holder) return { ...kept(r), expiry: later(r.expiry, expiry) };
  return {
    name,
    holder,
    token: r ? r.token : 0n,
    newToken: true,
    start: time,
    expiry,
    pins: r?.pins ?? [],
  };
}

/**
 * A claim through session `holder` (a session record's name): as `claimed`, but the lease's
 * own expiry is the largest time there is, since the session's expiry is the one that
 * counts. A process that knows nothing of sessions sees the lease held for good, never free
 * too early.
 */
export function claimedInSession(
  r: LeaseRecord | undefined,
  name: string,
  holder: string,
  time: bigint,
  session?: LeaseRecord,
): LeaseWrite {
  return claimed(r, name, holder, time, INT64_MAX - time, session);
}

/**
 * The end of a session found expired (`time` at or past its expiry, unpinned) by someone
 * else: its holder becomes "" and the token is kept, as for a release. Ended is for good:
 * its holder's renewals are refused from then on, and every lease held through it is free.
 * `undefined` when it is not expired (or already ended): nothing to write.
 */
export function ended(r: LeaseRecord | undefined, time: bigint): LeaseWrite | undefined {
  if (!r || r.holder === "" || !isFree(r, time)) return undefined;
  return { ...kept(r), holder: "" };
}

/** An extend by the holder of `token`: the expiry becomes the later of the two. */
export function extended(
  r: LeaseRecord | undefined,
  name: string,
  holder: string,
  token: bigint,
  time: bigint,
  duration: bigint,
): LeaseWrite {
  const expiry = expiryOf(time, duration);
  const held = mustHold(r, name, holder, token);
  return { ...kept(held), expiry: later(held.expiry, expiry) };
}

/**
 * `time + duration`, which must stay an int64 (every store keeps times as int64): a longer
 * lease is refused before anything is written.
 */
export function expiryOf(time: bigint, duration: bigint): bigint {
  const expiry = time + duration;
  if (expiry > INT64_MAX) {
    throw new InvalidDurationError(
      "duration",
      `a lease of ${formatDuration(duration)} would expire beyond the largest global time (int64 nanoseconds, the year 2262): use a shorter one`,
    );
  }
  return expiry;
}

/** A release by the holder of `token`: holder "", the token kept. Twice is once. */
export function released(
  r: LeaseRecord | undefined,
  name: string,
  holder: string,
  token: bigint,
  time: bigint,
): LeaseWrite | undefined {
  if (r && r.holder === "" && r.token === token) return undefined;
  const held = mustHold(r, name, holder, token);
  const expiry = earlier(time, held.expiry);
  return { ...kept(held), holder: "", start: earlier(held.start, expiry), expiry };
}

/** A pin by `entity` (a record with no holder is made if there is none). */
export function pinned(
  r: LeaseRecord | undefined,
  name: string,
  entity: string,
  time: bigint,
): LeaseWrite | undefined {
  if (r?.pins.includes(entity)) return undefined;
  const base = r
    ? kept(r)
    : { name, holder: "", token: 0n, newToken: false, start: time, expiry: time, pins: [] };
  return { ...base, pins: [...base.pins, entity] };
}

/** `entity`'s pin removed. */
export function unpinned(r: LeaseRecord | undefined, entity: string): LeaseWrite | undefined {
  if (!r?.pins.includes(entity)) return undefined;
  return { ...kept(r), pins: r.pins.filter((p) => p !== entity) };
}

function mustHold(
  r: LeaseRecord | undefined,
  name: string,
  holder: string,
  token: bigint,
): LeaseRecord {
  if (!r || r.holder === "") throw new LeaseLostError(name, "it was released", r && stateOf(r));
  if (r.holder === holder && r.token !== token) {
    throw new LeaseLostError(
      name,
      `token ${token} is not ${JSON.stringify(holder)}'s current grant: it holds the lease with token ${r.token} (a later claim of its own)`,
      stateOf(r),
    );
  }
  if (r.holder !== holder) {
    throw new LeaseLostError(
      name,
      `it is held by ${JSON.stringify(r.holder)} with token ${r.token} now`,
      stateOf(r),
    );
  }
  return r;
}

/** The record's fields, written back with its token kept. */
function kept(r: LeaseRecord): LeaseWrite {
  return {
    name: r.name,
    holder: r.holder,
    token: r.token,
    newToken: false,
    start: r.start,
    expiry: r.expiry,
    pins: r.pins,
  };
}

/** What errors show of a record; one held through a session shows the session's holder and expiry. */
function stateOf(r: LeaseRecord, session?: LeaseRecord): LeaseState {
  const through = session !== undefined && r.holder === session.name;
  return {
    name: r.name,
    holder: through ? session.holder : r.holder,
    token: r.token,
    expiry: through ? session.expiry : r.expiry,
    pinned: r.pins.length > 0,
  };
}
