/**
 * The lease seam: what a store keeps beside the clock so that leases can be judged against
 * global time. Leases (src/leases/) hold all the logic; a store only reads and writes
 * records, each write a compare-and-swap on the record's version. The safety argument these
 * calls serve is in docs/design.md.
 *
 * Contract for implementers (checked by test/conformance/leases-suite.ts):
 * - `readLease` returns the stored clock time, the cluster's maxStep and the lease, read
 *   together (one snapshot, in one round trip where the store allows); `undefined` for what
 *   is missing. `readClock` is the same without a lease.
 * - `advanceClock(old, next, maxStep)` is the clock's compare-and-swap for updaters: it sets
 *   the time to `next` only where it is `old` AND the stored maxStep is `maxStep`, in one
 *   atomic step (a statement, a txn, a single-document update). It is false when the clock
 *   record or the maxStep setting is missing. A change of maxStep (or its deletion) that
 *   commits before the advance makes the advance fail; one that commits after it cannot
 *   have been overtaken by it (on PostgreSQL the advance locks the setting's row).
 * - `writeLease(write, version)` writes only where the stored record has `version`
 *   (`undefined`: where there is no record), and returns the new version and the record's
 *   token; `undefined` when the record was not at that version (another write came first).
 *   With `newToken` the store replaces `write.token` with a token greater than it and than
 *   every token the store handed out to writes that committed before this one began, for any
 *   name, even if records or the lease table were deleted since; where the store's own
 *   counter is gone, it is re-seeded above every token still stored. (A token a caller wrote
 *   by hand, without `newToken`, is honoured for its own record only.) Linearizable: of two writes from one
 *   version, one wins. Versions are opaque, and differ after every write; a record made anew
 *   after one was deleted never takes (but by a chance of 2^-52) a version the deleted one
 *   had, so a writer that read the deleted record cannot overwrite the new one.
 * - `listLeases(prefix)` returns every record whose name starts with `prefix`, by name.
 * - `ensureMaxStep(value)` stores `value` as the cluster's maxStep if none is stored, and
 *   returns the stored one; `swapMaxStep(old, next)` changes it where it is `old`. Neither
 *   creates the clock record; a store that keeps maxStep in the clock's own record (MongoDB)
 *   throws ClockRecordMissingError without one, as it does for a write with `newToken`.
 * - A record that does not decode (wrong types, negative times) is a CorruptRecordError;
 *   it is never repaired (a write from its version is refused).
 * - Failures are StoreErrors (retryable flag set); an aborted signal rejects with its reason.
 */

/** A lease as stored. Times are global nanoseconds. */
export interface LeaseFields {
  readonly name: string;
  /** Who holds it; "" once released (the record is kept, so the token is never reused). */
  readonly holder: string;
  /** The fencing token: greater at every change of holder, never reused on the store. */
  readonly token: bigint;
  /** Global time at which the holder first took it. */
  readonly start: bigint;
  /** Global time from which it is expired (unless pinned). */
  readonly expiry: bigint;
  /** Who pinned it; a pinned lease does not expire. */
  readonly pins: readonly string[];
}

/** What a lease operation writes: the fields, and whether the holder changes. */
export interface LeaseWrite extends LeaseFields {
  /**
   * A change of holder: the store gives the record a new token, greater than `token` (the
   * record's old one) and than every token it handed out before.
   */
  readonly newToken: boolean;
}

export interface LeaseRecord extends LeaseFields {
  /** The store's version of the record, for compare-and-swap. Opaque. */
  readonly version: bigint;
}

/** What a written lease came back with. */
export interface LeaseWritten {
  readonly version: bigint;
  /** The record's token as written: the new one the store gave it, where `newToken`. */
  readonly token: bigint;
}

/** What a store read of leases comes with: the clock and the cluster's maxStep. */
export interface LeaseContext {
  /** The stored global time; undefined when there is no clock record. */
  readonly time: bigint | undefined;
  /** The cluster's maxStep; undefined when none is stored. */
  readonly maxStep: bigint | undefined;
}

export interface LeaseStore {
  readClock(signal?: AbortSignal): Promise<LeaseContext>;
  advanceClock(old: bigint, next: bigint, maxStep: bigint, signal?: AbortSignal): Promise<boolean>;
  readLease(
    name: string,
    signal?: AbortSignal,
  ): Promise<LeaseContext & { readonly lease: LeaseRecord | undefined }>;
  listLeases(
    prefix: string,
    signal?: AbortSignal,
  ): Promise<LeaseContext & { readonly leases: readonly LeaseRecord[] }>;
  writeLease(
    write: LeaseWrite,
    version: bigint | undefined,
    signal?: AbortSignal,
  ): Promise<LeaseWritten | undefined>;
  ensureMaxStep(value: bigint, signal?: AbortSignal): Promise<bigint>;
  swapMaxStep(old: bigint, next: bigint, signal?: AbortSignal): Promise<boolean>;
  /**
   * Optional push: a notice each time a lease whose name starts with `prefix` is written
   * (changes may be coalesced). Ends when `signal` aborts. Without it, callers poll.
   */
  watchLeases?(prefix: string, signal: AbortSignal): AsyncIterable<void>;
}
