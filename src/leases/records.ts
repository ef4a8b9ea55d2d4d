/**
 * What each lease operation writes, decided from the record read and the global time read
 * with it (DESIGN §7). Pure: Leases reads, calls one of these, and writes the result by
 * compare-and-swap on the version it read. `undefined`: nothing to write.
 */
import { LeaseHeldError, LeaseLostError, type LeaseState } from "../errors.js";
import type { LeaseFields, LeaseRecord } from "../lease-store.js";
import { earlier, later } from "../time.js";
import { isFree } from "./info.js";

/**
 * A claim: a new holder gets the previous token + 1 and starts now; the same holder keeps
 * its token and its start, and its expiry never shrinks. LeaseHeldError while another
 * holds it.
 */
export function claimed(
  r: LeaseRecord | undefined,
  name: string,
  holder: string,
  time: bigint,
  duration: bigint,
): LeaseFields {
  if (r && r.holder !== holder && !isFree(r, time)) throw new LeaseHeldError(stateOf(r), time);
  if (r && r.holder === holder) return { ...fieldsOf(r), expiry: later(r.expiry, time + duration) };
  return {
    name,
    holder,
    token: r ? r.token + 1n : 1n,
    start: time,
    expiry: time + duration,
    pins: r?.pins ?? [],
  };
}

/** An extend by the holder of `token`: the expiry becomes the later of the two. */
export function extended(
  r: LeaseRecord | undefined,
  name: string,
  holder: string,
  token: bigint,
  time: bigint,
  duration: bigint,
): LeaseFields {
  const held = mustHold(r, name, holder, token);
  return { ...fieldsOf(held), expiry: later(held.expiry, time + duration) };
}

/** A release by the holder of `token`: holder "", the token kept. Twice is once. */
export function released(
  r: LeaseRecord | undefined,
  name: string,
  holder: string,
  token: bigint,
  time: bigint,
): LeaseFields | undefined {
  if (r && r.holder === "" && r.token === token) return undefined;
  const held = mustHold(r, name, holder, token);
  const expiry = earlier(time, held.expiry);
  return { ...fieldsOf(held), holder: "", start: earlier(held.start, expiry), expiry };
}

/** A pin by `entity` (a record with no holder is made if there is none). */
export function pinned(
  r: LeaseRecord | undefined,
  name: string,
  entity: string,
  time: bigint,
): LeaseFields | undefined {
  if (r?.pins.includes(entity)) return undefined;
  const base = r
    ? fieldsOf(r)
    : { name, holder: "", token: 0n, start: time, expiry: time, pins: [] };
  return { ...base, pins: [...base.pins, entity] };
}

/** `entity`'s pin removed. */
export function unpinned(r: LeaseRecord | undefined, entity: string): LeaseFields | undefined {
  if (!r?.pins.includes(entity)) return undefined;
  return { ...fieldsOf(r), pins: r.pins.filter((p) => p !== entity) };
}

function mustHold(
  r: LeaseRecord | undefined,
  name: string,
  holder: string,
  token: bigint,
): LeaseRecord {
  if (!r || r.holder === "") throw new LeaseLostError(name, "it was released", r && stateOf(r));
  if (r.holder !== holder || r.token !== token) {
    throw new LeaseLostError(
      name,
      `it is held by ${JSON.stringify(r.holder)} with token ${r.token} now`,
      stateOf(r),
    );
  }
  return r;
}

function fieldsOf(r: LeaseRecord): LeaseFields {
  return {
    name: r.name,
    holder: r.holder,
    token: r.token,
    start: r.start,
    expiry: r.expiry,
    pins: r.pins,
  };
}

function stateOf(r: LeaseRecord): LeaseState {
  return {
    name: r.name,
    holder: r.holder,
    token: r.token,
    expiry: r.expiry,
    pinned: r.pins.length > 0,
  };
}
