import { clockOrNew } from "../clock-record.js";
import { type DurationInput, toNanoseconds } from "../duration.js";
import { ClosedError, ConfigError, LeaseLostError } from "../errors.js";
import type { LeaseRecord, LeaseStore, LeaseWrite } from "../lease-store.js";
import { openStore } from "../open.js";
import type { ClockStore, OpenOptions } from "../store.js";
import { startUpdater, type UpdaterWorker } from "../worker.js";
import { monotonicClock, type WorkerClock } from "../worker-clock.js";
import { Campaign, type CampaignOptions } from "./election.js";
import {
  checkDuration,
  DEFAULT_MAX_STEP,
  isSessionName,
  type LeaseInfo,
  leaseInfo,
  leaseInfos,
  SESSION_PREFIX,
} from "./info.js";
import { type Grant, Lease, type LeaseOwner } from "./lease.js";
import {
  claimed,
  claimedInSession,
  ended,
  extended,
  pinned,
  released,
  unpinned,
} from "./records.js";
import { Session, type SessionLease, type SessionOptions, type SessionOwner } from "./session.js";
import { checkLeaseText } from "./validate.js";
import { readResolved, SharedWaits, waitUntilFree } from "./wait.js";

export interface LeasesOptions {
  /** Monotonic time and timers; real ones by default. */
  clock?: WorkerClock;
  /**
   * Stored as the cluster's maxStep when none is stored yet (the first holder or worker
   * decides it). Default 1.5 s, the workers' default.
   */
  maxStep?: DurationInput;
  /** How often a wait reads the store when the store cannot push. Default 250 ms. */
  pollInterval?: DurationInput;
  /** Called once by close(), e.g. to close the store the leases were opened on. */
  onClose?: () => void | Promise<void>;
}

export interface CallOptions {
  signal?: AbortSignal;
}

/** Writes lost to a concurrent write before a claim gives up (each re-reads first). */
const ATTEMPTS = 8;

/** One read of a lease with the clock and maxStep, and when it began. */
interface Snapshot {
  readonly t0: bigint;
  readonly time: bigint;
  readonly maxStep: bigint;
  readonly lease: LeaseRecord | undefined;
  /** The record of the session the lease is held through, where it is and was read. */
  readonly session: LeaseRecord | undefined;
}

/** What to write, and what the caller gets once it is written (given the record's token). */
interface Decision<T> {
  readonly write: LeaseWrite;
  readonly grant: ((token: bigint) => T) | undefined;
}

/** A claim's or extend's decision: the grant the holder gets, with the token as written. */
function grantOf(snap: Snapshot, write: LeaseWrite): Decision<Grant> {
  return {
    write,
    grant: (token) => ({
      name: write.name,
      holder: write.holder,
      token,
      start: write.start,
      expiry: write.expiry,
      maxStep: snap.maxStep,
      time: snap.time,
      t0: snap.t0,
    }),
  };
}

/**
 * Leases judged against global time (docs/design.md, "Leases"), kept beside the clock in the same store.
 *
 * What each outcome lets the caller infer:
 * - a Lease: held until at least its `deadline` (this process's monotonic clock), fenced
 *   by its `token`;
 * - LeaseHeldError: not held by the caller; someone else holds it until at least its expiry;
 * - LeaseLostError (extend, revoke): not held by the caller any more;
 * - any other error (StoreError: a timeout, a lost connection): no inference; treat the
 *   lease as not held. A claim by the same holder may be retried safely.
 */
export class Leases {
  readonly clock: WorkerClock;
  readonly #store: ClockStore;
  readonly #leases: LeaseStore;
  readonly #defaultMaxStep: bigint;
  readonly #pollInterval: bigint;
  readonly #onClose: (() => void | Promise<void>) | undefined;
  readonly #owner: LeaseOwner;
  readonly #sessions: SessionOwner;
  /** This process's waits, one loop per lease however many wait on it. */
  readonly #waits = new SharedWaits((name, signal, onChange) =>
    waitUntilFree(this.#store, name, {
      clock: this.clock,
      pollInterval: this.#pollInterval,
      signal,
      onChange,
    }),
  );
  #closed = false;

  constructor(store: ClockStore, options: LeasesOptions = {}) {
    if (!store)
      throw new ConfigError("store", "missing store: pass a ClockStore, e.g. openStore(url)");
    if (!store.leases) {
      throw new ConfigError("store", `the ${store.kind} store keeps no leases`);
    }
    this.#store = store;
    this.#leases = store.leases;
    this.clock = options.clock ?? monotonicClock;
    this.#defaultMaxStep = toNanoseconds(options.maxStep ?? DEFAULT_MAX_STEP, "maxStep");
    if (this.#defaultMaxStep <= 0n) throw new ConfigError("maxStep", "maxStep must be > 0");
    this.#pollInterval = toNanoseconds(options.pollInterval ?? 250, "pollInterval");
    if (this.#pollInterval <= 0n) throw new ConfigError("pollInterval", "pollInterval must be > 0");
    this.#onClose = options.onClose;
    this.#owner = {
      clock: this.clock,
      renew: (grant, duration, signal) =>
        this.#extend(grant.name, grant.holder, grant.token, duration, signal),
      release: (grant, signal) => this.#revoke(grant.name, grant.holder, grant.token, signal),
    };
    this.#sessions = {
      clock: this.clock,
      claim: async (name, holder, ttl, signal) =>
        new Lease(this.#owner, await this.#claim(name, holder, ttl, signal)),
      extend: async (lease, ttl, signal) =>
        new Lease(
          this.#owner,
          await this.#extend(lease.name, lease.holder, lease.token, ttl, signal),
        ),
      claimThrough: (name, session, signal) =>
        this.#write(name, session, "claim", signal, (snap) =>
          grantOf(snap, claimedInSession(snap.lease, name, session, snap.time, snap.session)),
        ),
      release: (name, holder, token, signal) => this.#revoke(name, holder, token, signal),
      campaign: (name, session, signal) =>
        new Campaign<SessionLease>(this, name, {
          holder: session.holder,
          duration: session.ttl,
          session,
          signal,
        }),
      keepTime: (signal) => this.keepTime({ signal }),
    };
  }

  /**
   * Takes the lease `name` for `holder` for `duration` of global time. The same holder
   * claiming again extends it (never shortening it) with the same token; a new holder gets
   * a new token, greater than every token given before on this store. Throws
   * LeaseHeldError while another holds it.
   */
  async claim(
    name: string,
    holder: string,
    duration: DurationInput,
    options: CallOptions = {},
  ): Promise<Lease> {
    checkLeaseText("name", name);
    checkLeaseText("holder", holder);
    return new Lease(this.#owner, await this.#claim(name, holder, duration, options.signal));
  }

  /**
   * Opens a session for `holder` (docs/design.md, "Sessions"): one record with its own
   * expiry, renewed by one write every `renewEvery` however many leases are claimed through
   * it (Session.claim). Its deadline and signal stand for every one of them; closing it
   * releases them all in one write.
   */
  async session(holder: string, options: SessionOptions): Promise<Session> {
    checkLeaseText("holder", holder);
    this.#checkOpen();
    return Session.open(this.#sessions, holder, options);
  }

  /**
   * Extends a lease the caller holds (`token` from its claim): the expiry becomes the
   * greater of the stored one and now + `duration`. LeaseLostError if it is not theirs.
   */
  async extend(
    name: string,
    holder: string,
    token: bigint,
    duration: DurationInput,
    options: CallOptions = {},
  ): Promise<Lease> {
    checkLeaseText("name", name);
    checkLeaseText("holder", holder);
    return new Lease(
      this.#owner,
      await this.#extend(name, holder, token, duration, options.signal),
    );
  }

  /**
   * Releases a lease the caller holds: the holder becomes "" and the token is kept, so the
   * next holder's is greater. Releasing one already released by the caller is a no-op;
   * LeaseLostError if another holds it now.
   */
  async revoke(
    name: string,
    holder: string,
    token: bigint,
    options: CallOptions = {},
  ): Promise<void> {
    checkLeaseText("name", name);
    checkLeaseText("holder", holder);
    await this.#revoke(name, holder, token, options.signal);
  }

  /** Pins the lease for `entity`: a pinned lease does not expire (Juju's pin). */
  async pin(name: string, entity: string, options: CallOptions = {}): Promise<void> {
    checkLeaseText("name", name);
    checkLeaseText("entity", entity);
    await this.#write(name, undefined, "pin", options.signal, (snap) => {
      const write = pinned(snap.lease, name, entity, snap.time);
      return write && { write, grant: undefined };
    });
  }

  /** Removes `entity`'s pin; the lease expires again once no pin is left. */
  async unpin(name: string, entity: string, options: CallOptions = {}): Promise<void> {
    checkLeaseText("name", name);
    checkLeaseText("entity", entity);
    await this.#write(name, undefined, "unpin", options.signal, (snap) => {
      const write = unpinned(snap.lease, entity);
      return write && { write, grant: undefined };
    });
  }

  /** The lease as stored, judged against the stored global time; undefined if never claimed. */
  async get(name: string, options: CallOptions = {}): Promise<LeaseInfo | undefined> {
    checkLeaseText("name", name);
    this.#checkOpen();
    const snap = await readResolved(this.#leases, name, options.signal);
    return snap.lease && leaseInfo(snap.lease, snap.time ?? 0n, snap.session);
  }

  /** Every lease whose name starts with `prefix`, by name. */
  async list(prefix = "", options: CallOptions = {}): Promise<LeaseInfo[]> {
    checkLeaseText("prefix", prefix);
    this.#checkOpen();
    const { time, leases } = await this.#leases.listLeases(prefix, options.signal);
    const through = leases.some((r) => r.holder !== "" && isSessionName(r.holder));
    if (prefix === "" || !through) return leaseInfos(leases, time ?? 0n);
    // Held through sessions: their records, read after the leases (a later time, and a
    // session seen alive then was alive when the leases were read).
    const sessions = await this.#leases.listLeases(SESSION_PREFIX, options.signal);
    return leaseInfos([...sessions.leases, ...leases], time ?? 0n);
  }

  /**
   * Resolves once the lease is free (released, or expired and unpinned) by the stored global
   * time, with the lease as then read. Woken by the store's pushes where it has them.
   * `onChange` is called with the lease each time a read finds a new holder or token (a
   * caller who joins a wait already running is told the holder last seen). The waits of
   * one Leases on the same lease share one loop: one read per change, however many wait.
   */
  async waitUntilExpired(
    name: string,
    options: CallOptions & { onChange?: (lease: LeaseInfo | undefined) => void } = {},
  ): Promise<LeaseInfo | undefined> {
    checkLeaseText("name", name);
    this.#checkOpen();
    return this.#waits.wait(name, options.signal, options.onChange);
  }

  /**
   * A leader election on lease `name` (see Campaign): claims it, renews it, steps down
   * before its deadline when renewals fail, and releases it when stopped.
   */
  campaign(name: string, options: CampaignOptions): Campaign {
    this.#checkOpen();
    return new Campaign(this, name, options);
  }

  /**
   * Starts a stand-by updater worker on this store (docs/design.md, "Who keeps time"): it
   * takes over when nobody else advances the clock, so that a dead holder's lease expires
   * even where no `globalclock run` daemon runs. It fits the cluster's maxStep (a smaller
   * one scales its timing down) and retries store errors by itself; stop it with `signal`
   * (or `worker.stop()`).
   */
  async keepTime(options: CallOptions = {}): Promise<UpdaterWorker> {
    this.#checkOpen();
    return startUpdater(this.#store, {
      fitClusterMaxStep: true,
      signal: options.signal,
      clock: this.clock,
    });
  }

  /**
   * The cluster's maxStep as stored, or, where none is stored yet, the default the first
   * worker or holder will store (`LeasesOptions.maxStep`). A read: it writes nothing.
   */
  async maxStep(options: CallOptions = {}): Promise<bigint> {
    this.#checkOpen();
    const { maxStep } = await this.#leases.readClock(options.signal);
    return maxStep ?? this.#defaultMaxStep;
  }

  /** The cluster's maxStep as stored; undefined where none is stored yet. A read. */
  async storedMaxStep(options: CallOptions = {}): Promise<bigint | undefined> {
    this.#checkOpen();
    return (await this.#leases.readClock(options.signal)).maxStep;
  }

  /**
   * Changes the cluster's maxStep from `old` to `next` (compare-and-swap; false if it was not
   * `old`); `old` undefined stores `next` where none is stored yet. Either way is safe while
   * leases are held: the store refuses every advance built on the old value, so an updater
   * takes its first step under the new one from a read made after the change, and no holder
   * that read the old value can be overtaken (docs/design.md, "Changing maxStep").
   */
  async setMaxStep(
    old: bigint | undefined,
    next: bigint,
    options: CallOptions = {},
  ): Promise<boolean> {
    this.#checkOpen();
    if (next <= 0n) throw new ConfigError("maxStep", "maxStep must be > 0");
    if (old === undefined) {
      // Some stores keep maxStep in the clock's record: made first, on a store that never had one.
      await clockOrNew(this.#store, "setMaxStep", options.signal);
      return (await this.#leases.ensureMaxStep(next, options.signal)) === next;
    }
    return this.#leases.swapMaxStep(old, next, options.signal);
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.#onClose?.();
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  /** A claim, its arguments checked by the caller. */
  #claim(
    name: string,
    holder: string,
    duration: DurationInput,
    signal: AbortSignal | undefined,
  ): Promise<Grant> {
    const d = toNanoseconds(duration, "duration");
    return this.#write(name, holder, "claim", signal, (snap) => {
      checkDuration(d, snap.maxStep);
      return grantOf(snap, claimed(snap.lease, name, holder, snap.time, d, snap.session));
    });
  }

  /** An extend, its arguments checked by the caller. */
  async #extend(
    name: string,
    holder: string,
    token: bigint,
    duration: DurationInput,
    signal: AbortSignal | undefined,
  ): Promise<Grant> {
    const d = toNanoseconds(duration, "duration");
    return this.#write(name, holder, "extend", signal, (snap) => {
      checkDuration(d, snap.maxStep);
      return grantOf(snap, extended(snap.lease, name, holder, token, snap.time, d));
    });
  }

  /** A release, its arguments checked by the caller. */
  async #revoke(
    name: string,
    holder: string,
    token: bigint,
    signal: AbortSignal | undefined,
  ): Promise<void> {
    await this.#write(name, holder, "revoke", signal, (snap) => {
      const write = released(snap.lease, name, holder, token, snap.time);
      return write && { write, grant: undefined };
    });
  }

  /**
   * Reads (t0 first), lets `decide` build the record, and writes it by compare-and-swap on
   * the version read; a lost race re-reads and decides again. `decide` returns undefined
   * when there is nothing to write. A snapshot without a clock or without a maxStep is never
   * decided on: the clock is made (only on a store that never had one, see clockOrNew) or
   * the default maxStep stored, and everything is read again, with a new t0.
   *
   * A lease held through another's session comes with that session's record (`self`, the
   * caller's own holder name, needs none). A session found expired is ended first, by
   * compare-and-swap on its version, and everything read again: its holder's renewal,
   * racing that write, either lands first (the session lives on, and the lease is held) or
   * is refused (docs/design.md, "Sessions").
   */
  async #write<T>(
    name: string,
    self: string | undefined,
    operation: string,
    signal: AbortSignal | undefined,
    decide: (snap: Snapshot) => Decision<T> | undefined,
  ): Promise<T> {
    this.#checkOpen();
    for (let attempt = 1; ; attempt++) {
      const t0 = this.clock.now(); // before anything is read
      const read = await readResolved(this.#leases, name, signal, self);
      const end = read.sessionTime !== undefined && ended(read.session, read.sessionTime);
      if (read.time === undefined) {
        await clockOrNew(this.#store, operation, signal);
      } else if (read.maxStep === undefined) {
        await this.#leases.ensureMaxStep(this.#defaultMaxStep, signal);
      } else if (end) {
        await this.#leases.writeLease(end, read.session?.version, signal);
      } else {
        const snap: Snapshot = {
          t0,
          time: read.time,
          maxStep: read.maxStep,
          lease: read.lease,
          session: read.session,
        };
        const decision = decide(snap);
        if (decision === undefined) return undefined as T;
        const written = await this.#leases.writeLease(decision.write, read.lease?.version, signal);
        if (written !== undefined) return decision.grant?.(written.token) as T;
      }
      if (attempt >= ATTEMPTS) {
        throw new LeaseLostError(
          name,
          `the record changed under ${ATTEMPTS} attempts in a row; another process is writing it`,
        );
      }
    }
  }

  #checkOpen(): void {
    if (this.#closed) throw new ClosedError("leases");
  }
}

/**
 * Opens a store and Leases on it; closing the leases closes the store. With `readOnly`, the
 * store is opened for reading (SQLite then creates no file): get, list, waitUntilExpired and
 * maxStep work, writes are refused.
 */
export async function openLeases(
  url?: string,
  options: Omit<LeasesOptions, "onClose"> & OpenOptions = {},
): Promise<Leases> {
  const { signal, readOnly, ...rest } = options;
  const store = await openStore(url, { signal, readOnly });
  try {
    return new Leases(store, { ...rest, onClose: () => store.close() });
  } catch (err) {
    await store.close();
    throw err;
  }
}
