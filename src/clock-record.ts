import { ClockRecordMissingError } from "./errors.js";
import type { ClockStore } from "./store.js";

/**
 * The clock record's time, making the record at the epoch only on a store that never had a
 * clock. A store that keeps leases shows that it had one when it holds a maxStep or any lease
 * record (both are written only once a clock exists): then a missing record was deleted,
 * and making it again at the epoch would move every lease's expiry decades ahead, so that
 * restoring the real record later would jump global time forward and end leases before
 * their holders' deadlines. That is a ClockRecordMissingError instead.
 */
export async function clockOrNew(
  store: ClockStore,
  operation: string,
  signal?: AbortSignal,
): Promise<bigint> {
  const leases = store.leases;
  if (leases) {
    const { time, maxStep } = await leases.readClock(signal);
    if (time !== undefined) return time;
    // Only here, on a store without a clock, is every lease read: a new store has none.
    const used = maxStep !== undefined || (await leases.listLeases("", signal)).leases.length > 0;
    if (used) throw new ClockRecordMissingError(store.kind, operation);
  }
  return store.ensure(signal);
}
