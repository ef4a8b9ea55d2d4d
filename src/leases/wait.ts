import type { LeaseContext, LeaseRecord, LeaseStore } from "../lease-store.js";
import type { ClockStore } from "../store.js";
import type { WorkerClock } from "../worker-clock.js";
import { isFree, isSessionName, type LeaseInfo, leaseInfo } from "./info.js";

/** A lease read with the clock, and the record of the session it is held through, if any. */
export type ResolvedRead = LeaseContext & {
  readonly lease: LeaseRecord | undefined;
  readonly session: LeaseRecord | undefined;
  /** The stored time read with the session's record; undefined where none was read. */
  readonly sessionTime: bigint | undefined;
};

/**
 * Lease `name` with the clock, and the record of the session it is held through, where it
 * is: read after the lease, in a second read (a session seen alive then was alive when the
 * lease was read). A lease held through session `self` (the caller's own) needs none.
 */
export async function readResolved(
  leases: LeaseStore,
  name: string,
  signal: AbortSignal | undefined,
  self?: string,
): Promise<ResolvedRead> {
  const read = await leases.readLease(name, signal);
  const holder = read.lease?.holder;
  if (!holder || holder === self || !isSessionName(holder)) {
    return { ...read, session: undefined, sessionTime: undefined };
  }
  const session = await leases.readLease(holder, signal);
  return { ...read, session: session.lease, sessionTime: session.time };
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

type OnChange = (lease: LeaseInfo | undefined) => void;

/** One wait loop, and the callers it serves. */
interface Shared {
  readonly stop: AbortController;
  readonly listeners: Set<OnChange>;
  readonly done: Promise<LeaseInfo | undefined>;
  /** What the loop told its listeners last, for a caller who joins later. */
  last: { lease: LeaseInfo | undefined } | undefined;
  users: number;
}

/**
 * Waits of one process on the same lease share one loop (waitUntilFree): one read per
 * change of the lease or the clock, however many callers wait. A caller that gives up (its
 * signal) leaves; the loop stops when the last one has.
 */
export class SharedWaits {
  readonly #loops = new Map<string, Shared>();
  readonly #start: (
    name: string,
    signal: AbortSignal,
    onChange: OnChange,
  ) => Promise<LeaseInfo | undefined>;

  constructor(
    start: (
      name: string,
      signal: AbortSignal,
      onChange: OnChange,
    ) => Promise<LeaseInfo | undefined>,
  ) {
    this.#start = start;
  }

  /** Loops running: one per lease waited on. */
  get size(): number {
    return this.#loops.size;
  }

  wait(
    name: string,
    signal: AbortSignal | undefined,
    onChange: OnChange | undefined,
  ): Promise<LeaseInfo | undefined> {
    if (signal?.aborted) return Promise.reject(signal.reason);
    const shared = this.#loops.get(name) ?? this.#loop(name);
    shared.users++;
    if (onChange) {
      shared.listeners.add(onChange);
      const last = shared.last;
      if (last) queueMicrotask(() => onChange(last.lease));
    }
    return new Promise((resolve, reject) => {
      const leave = () => {
        signal?.removeEventListener("abort", onAbort);
        if (onChange) shared.listeners.delete(onChange);
        if (--shared.users === 0) shared.stop.abort();
      };
      const onAbort = () => {
        leave();
        reject(signal?.reason);
      };
      signal?.addEventListener("abort", onAbort, { once: true });
      shared.done.then(
        (lease) => {
          leave();
          resolve(lease);
        },
        (err: unknown) => {
          leave();
          reject(err);
        },
      );
    });
  }

  #loop(name: string): Shared {
    const stop = new AbortController();
    const listeners = new Set<OnChange>();
    const shared: Shared = {
      stop,
      listeners,
      last: undefined,
      users: 0,
      done: this.#start(name, stop.signal, (lease) => {
        shared.last = { lease };
        for (const listener of listeners) listener(lease);
      }).finally(() => {
        if (this.#loops.get(name) === shared) this.#loops.delete(name);
      }),
    };
    shared.done.catch(() => {}); // its callers see the failure; one that left does not
    this.#loops.set(name, shared);
    return shared;
  }
}
