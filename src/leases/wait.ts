import type { LeaseContext, LeaseRecord, LeaseStore } from "../lease-store.js";
import type { ClockStore } from "../store.js";
import type { WorkerClock } from "../worker-clock.js";
import { isFree, isSessionName, type LeaseInfo, leaseInfo } from "./info.js";

/** A lease read with the clock, and the record of the session it is held through, if any. */
export type ResolvedRead = LeaseContext & {
  readonly lease: LeaseRecord | undefined;
  readonly session: LeaseRecord | undefined;
};

/**
 * Lease `name` with the clock, and the record of the session it is held through, where it
 * is: read after the lease, in a second read (a session seen alive then was alive when the
 * lease was read).
 */
export async function readResolved(
  leases: LeaseStore,
  name: string,
  signal: AbortSignal | undefined,
): Promise<ResolvedRead> {
  const read = await leases.readLease(name, signal);
  const holder = read.lease?.holder;
  if (!holder || !isSessionName(holder)) return { ...read, session: undefined };
  return { ...read, session: (await leases.readLease(holder, signal)).lease };
}

/**
 * The shortest a wait sleeps between reads, however close the expiry: a clock that stands
 * still would otherwise be read in a tight loop.
 */
const MIN_SLEEP = 5_000_000n;

/**
 * Resolves once lease `name` is free by the stored global time. Between reads it sleeps
 * until the soonest of: a pushed change of the lease (a release) or of the clock, and the
 * real time global time needs at least to reach the expiry (it never runs faster than real
 * time). Where the store pushes nothing it also reads every `pollInterval`. A lease held
 * through a session is free once the session is: the session's record is watched too.
 */
export async function waitUntilFree(
  store: ClockStore,
  name: string,
  options: {
    clock: WorkerClock;
    pollInterval: bigint;
    signal: AbortSignal | undefined;
    onChange?: ((lease: LeaseInfo | undefined) => void) | undefined;
  },
): Promise<LeaseInfo | undefined> {
  const leases = store.leases;
  if (!leases) throw new Error(`the ${store.kind} store keeps no leases`);
  const { clock, pollInterval } = options;
  const stop = new AbortController();
  const outer = options.signal;
  // Stryker disable next-line OptionalChaining: onAbort runs only where there is an `outer` (aborted, or its listener)
  const onAbort = () => stop.abort(outer?.reason);
  if (outer?.aborted) onAbort();
  else outer?.addEventListener("abort", onAbort, { once: true });
  const wakeup = new Wakeup();
  // Subscribed before the first read, so that no change between the two goes unseen.
  const sources = [
    leases.watchLeases && follow(leases.watchLeases(name, stop.signal), wakeup),
    store.watch && follow(store.watch(stop.signal), wakeup),
  ];
  let seen: LeaseRecord | undefined;
  // The session the lease is held through, watched from when a read first names it.
  let through: { name: string; stop: AbortController; source: { live: boolean } } | undefined;
  try {
    for (;;) {
      stop.signal.throwIfAborted();
      const snap = await readResolved(leases, name, stop.signal);
      const time = snap.time ?? 0n;
      if (isFree(snap.lease, time, snap.session)) {
        return snap.lease && leaseInfo(snap.lease, time, snap.session);
      }
      const lease = snap.lease as LeaseRecord;
      // A new holder (or a new tenure of the same one) while waiting: say so.
      if (lease.holder !== seen?.holder || lease.token !== seen.token) {
        seen = lease;
        options.onChange?.(leaseInfo(lease, time, snap.session));
      }
      const session = isSessionName(lease.holder) ? snap.session : undefined;
      if (session && through?.name !== session.name) {
        through?.stop.abort();
        const ac = new AbortController();
        const source = leases.watchLeases?.(
          session.name,
          AbortSignal.any([ac.signal, stop.signal]),
        );
        through = {
          name: session.name,
          stop: ac,
          source: source ? follow(source, wakeup) : { live: false },
        };
      }
      const expiry = (session ?? lease).expiry;
      let wait = lease.pins.length > 0 ? pollInterval * 40n : expiry - time;
      // The pushes alive: the lease's release (or its session's end) and the clock reaching
      // the expiry wake it.
      const pushed =
        sources.every((source) => source?.live) && (session === undefined || through?.source.live);
      // Stryker disable next-line EqualityOperator: at wait == pollInterval, ">=" sets the value wait already has
      if (!pushed && wait > pollInterval) wait = pollInterval;
      // Stryker disable next-line EqualityOperator: at wait == MIN_SLEEP, "<=" sets the value wait already has
      if (wait < MIN_SLEEP) wait = MIN_SLEEP;
      const timer = new AbortController();
      const woken = wakeup.next(timer.signal);
      await Promise.race([clock.sleep(wait, AbortSignal.any([timer.signal, stop.signal])), woken]);
      timer.abort();
    }
  } finally {
    outer?.removeEventListener("abort", onAbort);
    through?.stop.abort();
    stop.abort();
  }
}

/**
 * Wakes `wakeup` at every value of `source`. `live` turns false once the source ends or
 * fails: the waiter then reads on its own.
 */
function follow(source: AsyncIterable<unknown>, wakeup: Wakeup): { live: boolean } {
  const state = { live: true };
  void (async () => {
    for await (const _ of source) wakeup.notify();
  })()
    .catch(() => {})
    .finally(() => {
      state.live = false;
      wakeup.notify();
    });
  return state;
}

/** A latch that remembers a notice given while nobody waited. */
class Wakeup {
  #pending = false;
  #resolve: (() => void) | undefined;

  notify(): void {
    const resolve = this.#resolve;
    this.#resolve = undefined;
    if (resolve) resolve();
    else this.#pending = true;
  }

  next(signal: AbortSignal): Promise<void> {
    if (this.#pending) {
      this.#pending = false;
      return Promise.resolve();
    }
    return new Promise<void>((resolve) => {
      this.#resolve = resolve;
      // Ended by the timer (or a stop): forget this resolver, so that the next notice is
      // remembered as pending rather than spent on a promise nobody waits on.
      signal.addEventListener(
        "abort",
        () => {
          if (this.#resolve === resolve) this.#resolve = undefined;
          resolve();
        },
        { once: true },
      );
    });
  }
}
