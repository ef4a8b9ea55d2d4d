import type { LeaseStore } from "./lease-store.js";

/**
 * The seam. A ClockStore keeps one record, the global time in nanoseconds, and offers
 * exactly the operations the clock needs. Stores translate; all clock logic lives above.
 *
 * Contract for implementers (checked by test/conformance):
 * - `read` returns the stored time, or `undefined` when there is no record.
 * - `ensure` creates the record at 0 (the epoch) if missing, never overwrites one, and
 *   returns the time stored afterwards.
 * - `compareAndSwap(old, next)` sets the time to `next` only where it equals `old`, and
 *   says whether it did. It is linearizable: of concurrent swaps from one value, one wins.
 * - A record that is not a non-negative int64 is a CorruptRecordError; it is never repaired
 *   (a swap from a corrupt value is refused).
 * - Failures are StoreErrors naming the store and the operation, with `retryable` set;
 *   an aborted signal rejects with the signal's reason; after `close` calls reject with
 *   ClosedError.
 * - `close` is idempotent.
 */
export interface ClockStore {
  /** The store kind, as used in errors and metrics: "memory", "sqlite", "postgres", … */
  readonly kind: string;
  read(signal?: AbortSignal): Promise<bigint | undefined>;
  ensure(signal?: AbortSignal): Promise<bigint>;
  compareAndSwap(old: bigint, next: bigint, signal?: AbortSignal): Promise<boolean>;
  /**
   * Optional push: yields the stored time each time the store reports a change (it may
   * coalesce changes, and may yield a value more than once). Ends when `signal` aborts.
   * Stores that cannot push leave it out; callers then poll `read`.
   */
  watch?(signal: AbortSignal): AsyncIterable<bigint>;
  /** Lease records beside the clock (src/lease-store.ts), on the same connection. */
  readonly leases?: LeaseStore;
  close(): Promise<void>;
}

/**
 * The one default of every store's `timeout`: how long one call may take (connecting,
 * waiting for a lock or a leader, and the answer, retries included) before it fails with
 * a retryable StoreError whose outcome is unknown.
 */
export const DEFAULT_TIMEOUT_MS = 2000;

export interface OpenOptions {
  /** Aborts opening (connecting); the store is not returned. */
  signal?: AbortSignal;
  /**
   * For readers: the store will only be read. A store that can honour it (SQLite) then
   * creates nothing (no file, no table) and changes no setting of the database; writes are
   * refused.
   */
  readOnly?: boolean;
}

/** What each store's folder exports for `openStore`: opening the store its URL names. */
export interface StoreModule {
  open(url: string, options: OpenOptions): Promise<ClockStore>;
}
