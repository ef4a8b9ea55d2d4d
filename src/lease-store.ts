/**
 * The lease seam: what a store keeps beside the clock so that leases can be judged against
 * global time. Leases (src/leases/) hold all the logic; a store only reads and writes
 * records, each write a compare-and-swap on the record's version.
 *
 * Contract for implementers (checked by test/conformance/leases-suite.ts):
 * - `readLease` returns the stored clock time, the cluster's maxStep and the lease, read
 *   together (in one round trip where the store allows); `undefined` for what is missing.
 * - `writeLease(fields, version)` writes only where the stored record has `version`
 *   (`undefined`: where there is no record), and returns the new version; `undefined` when
 *   the record was not at that version (another write came first). Linearizable: of two
 *   writes from one version, one wins. Versions are opaque, and differ after every write.
 * - `listLeases(prefix)` returns every record whose name starts with `prefix`, by name.
 * - `ensureMaxStep(value)` stores `value` as the cluster's maxStep if none is stored, and
 *   returns the stored one; `swapMaxStep(old, next)` changes it where it is `old`.
 * - A record that does not decode (wrong types, negative times) is a CorruptRecordError;
 *   it is never repaired (a write from its version is refused).
 * - Failures are StoreErrors (retryable flag set); an aborted signal rejects with its reason.
 */

/** A lease as stored. Times are global nanoseconds. */
export interface LeaseFields {
  readonly name: string;
  /** Who holds it; "" once released (the record is kept, so the token is never reused). */
  readonly holder: string;
  /** The fencing token: +1 at every change of holder, never reused. */
  readonly token: bigint;
  /** Global time at which the holder first took it. */
  readonly start: bigint;
  /** Global time from which it is expired (unless pinned). */
  readonly expiry: bigint;
  /** Who pinned it; a pinned lease does not expire. */
  readonly pins: readonly string[];
}

export interface LeaseRecord extends LeaseFields {
  /** The store's version of the record, for compare-and-swap. Opaque. */
  readonly version: bigint;
}

/** What a store read of leases comes with: the clock and the cluster's maxStep. */
export interface LeaseContext {
  /** The stored global time; undefined when there is no clock record. */
  readonly time: bigint | undefined;
  /** The cluster's maxStep; undefined when none is stored. */
  readonly maxStep: bigint | undefined;
}

export interface LeaseStore {
  readLease(
    name: string,
    signal?: AbortSignal,
  ): Promise<LeaseContext & { readonly lease: LeaseRecord | undefined }>;
  listLeases(
    prefix: string,
    signal?: AbortSignal,
  ): Promise<LeaseContext & { readonly leases: readonly LeaseRecord[] }>;
  writeLease(
    lease: LeaseFields,
    version: bigint | undefined,
    signal?: AbortSignal,
  ): Promise<bigint | undefined>;
  ensureMaxStep(value: bigint, signal?: AbortSignal): Promise<bigint>;
  swapMaxStep(old: bigint, next: bigint, signal?: AbortSignal): Promise<boolean>;
  /**
   * Optional push: a notice each time a lease whose name starts with `prefix` is written
   * (changes may be coalesced). Ends when `signal` aborts. Without it, callers poll.
   */
  watchLeases?(prefix: string, signal: AbortSignal): AsyncIterable<void>;
}
