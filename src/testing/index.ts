/**
 * `globalclock/testing`: test code built on leases under virtual time, in milliseconds.
 *
 * In one process, `virtualTime()` runs a real updater worker, and every Leases, Lease,
 * Campaign and keeper the test makes, on a virtual clock over an in-memory store. Global
 * time moves only when the test advances it, and then exactly as in a cluster (steps of at
 * most maxStep, never faster than the clock), so holders stop at their deadlines as they
 * would in production. `process()` gives a holder a clock of its own that the test can
 * pause, as SIGSTOP pauses a process.
 *
 * Across processes, `manualClock()` gives a store URL that no worker advances: the test
 * moves global time by hand with `advance()`, in steps of at most maxStep. The other
 * processes' own clocks run in real time, so a holder there cannot stop at its deadline
 * when global time runs ahead of it: use it to test what expiry does (a job taken over,
 * a TTL that ends), and virtual time to test a holder's own timing.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type DurationInput, toNanoseconds } from "../duration.js";
import { GlobalClockError } from "../errors.js";
import type { LeaseInfo } from "../leases/info.js";
import { Leases, type LeasesOptions, openLeases } from "../leases/leases.js";
import { openUpdater } from "../open.js";
import { MemoryStore } from "../stores/memory/index.js";
import { formatDuration } from "../time.js";
import type { Updater } from "../updater.js";
import { type StartUpdaterOptions, startUpdater, type UpdaterWorker } from "../worker.js";
import { PausableClock, settle, VirtualClock } from "./virtual-clock.js";

export { PausableClock, VirtualClock } from "./virtual-clock.js";

const min = (a: bigint, b: bigint) => (a < b ? a : b);

export interface VirtualTimeOptions {
  /** The worker's settings (interval, maxStep, …); the production defaults otherwise. */
  worker?: Omit<StartUpdaterOptions, "clock" | "signal" | "settings">;
}

export interface UntilExpiredOptions {
  /** Gives up (a GlobalClockError) after this much time. Default 1 h. */
  within?: DurationInput;
}

/** Starts virtual time: a memory store, a virtual clock and a worker that keeps time on it. */
export async function virtualTime(options: VirtualTimeOptions = {}): Promise<VirtualTime> {
  const clock = new VirtualClock();
  const store = new MemoryStore();
  const worker = startUpdater(store, { ...options.worker, clock });
  const time = new VirtualTime(clock, store, worker);
  // The worker makes the clock's record on its first turn.
  for (let i = 0; i < 100 && (await store.read()) === undefined; i++) await settle();
  if ((await store.read()) === undefined) {
    await time.close();
    throw new GlobalClockError("virtual time: the worker made no clock record");
  }
  return time;
}

/** Global time on a virtual clock (see `virtualTime`). */
export class VirtualTime {
  /** The clock every part of the test shares (processes see it through their own). */
  readonly clock: VirtualClock;
  /** The store, in this process's memory. */
  readonly store: MemoryStore;
  /** The worker that keeps global time. */
  readonly worker: UpdaterWorker;
  readonly #observer: Leases;
  readonly #opened: Leases[] = [];

  constructor(clock: VirtualClock, store: MemoryStore, worker: UpdaterWorker) {
    this.clock = clock;
    this.store = store;
    this.worker = worker;
    this.#observer = new Leases(store, { clock });
  }

  /** Leases on this store and the shared clock, never paused. */
  leases(options: Omit<LeasesOptions, "clock" | "onClose"> = {}): Leases {
    const leases = new Leases(this.store, { ...options, clock: this.clock });
    this.#opened.push(leases);
    return leases;
  }

  /** A process of its own: its Leases run on a clock the test can pause and resume. */
  process(): VirtualProcess {
    return new VirtualProcess(this, new PausableClock(this.clock));
  }

  /** Global time, as stored. */
  async now(): Promise<bigint> {
    return (await this.store.read()) ?? 0n;
  }

  /** Moves virtual time forward; the worker steps global time along with it. */
  advance(duration: DurationInput): Promise<void> {
    return this.clock.advance(duration);
  }

  /**
   * Advances until the grant of lease `name` held now ends: the lease is free (released, or
   * expired and not pinned) or held under another grant (a new token: a rival won it).
   * Returns the lease as read then (undefined if never claimed). A holder that keeps
   * renewing keeps its grant: this gives up after `within`.
   */
  async advanceUntilExpired(
    name: string,
    options: UntilExpiredOptions = {},
  ): Promise<LeaseInfo | undefined> {
    const within = toNanoseconds(options.within ?? "1h", "within");
    const end = this.clock.now() + within;
    let first: bigint | undefined;
    for (;;) {
      const info = await this.#observer.get(name);
      if (!info || info.free || (first !== undefined && info.token !== first)) return info;
      first ??= info.token;
      checkNotPinned(info);
      const left = end - this.clock.now();
      if (left <= 0n) {
        throw new GlobalClockError(
          `lease ${name} is still held by ${info.holder} (token ${info.token}) after ${formatDuration(within)} of virtual time`,
        );
      }
      // Global time moves with the clock: one maxStep past the expiry is enough.
      const wait = info.expiry - info.time + this.worker.settings.maxStep;
      await this.clock.advance(min(wait, left));
    }
  }

  /** Stops the worker and closes every Leases made here. */
  async close(): Promise<void> {
    for (const leases of this.#opened) await leases.close();
    await this.#observer.close();
    await this.worker.stop();
    await this.store.close();
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}

/** A pinned lease does not expire: waiting for it would never end. */
function checkNotPinned(info: LeaseInfo): void {
  if (info.pins.length === 0) return;
  throw new GlobalClockError(
    `lease ${info.name} is pinned by ${info.pins.join(", ")}: it does not expire until unpinned`,
  );
}

/** A holder's process under virtual time: pause it to see what its peers do meanwhile. */
export class VirtualProcess {
  readonly clock: PausableClock;
  readonly #time: VirtualTime;

  constructor(time: VirtualTime, clock: PausableClock) {
    this.#time = time;
    this.clock = clock;
  }

  /** Leases on the shared store, on this process's clock. */
  leases(options: Omit<LeasesOptions, "clock" | "onClose"> = {}): Leases {
    const leases = new Leases(this.#time.store, { ...options, clock: this.clock });
    return leases;
  }

  get paused(): boolean {
    return this.clock.paused;
  }

  /** None of this process's timers wakes until `resume()`: renewals, deadlines, retries. */
  pause(): void {
    this.clock.pause();
  }

  resume(): void {
    this.clock.resume();
  }
}

/**
 * A store that no worker advances, for tests that span processes: hand `url` to them (e.g.
 * as GLOBALCLOCK_STORE) and move global time with `advance()`. By default a SQLite file in
 * a folder of its own, removed by `close()`.
 */
export async function manualClock(url?: string): Promise<ManualClock> {
  const dir = url === undefined ? mkdtempSync(join(tmpdir(), "globalclock-manual-")) : undefined;
  const at = url ?? `sqlite:${join(dir as string, "clock.db")}`;
  try {
    const updater = await openUpdater(at);
    try {
      return new ManualClock(at, updater, await openLeases(at), dir);
    } catch (err) {
      await updater.close();
      throw err;
    }
  } catch (err) {
    if (dir) rmSync(dir, { recursive: true, force: true });
    throw err;
  }
}

/** Global time moved by hand (see `manualClock`). */
export class ManualClock {
  /** The store's URL, for the other processes of the test. */
  readonly url: string;
  readonly #updater: Updater;
  readonly #leases: Leases;
  readonly #dir: string | undefined;

  constructor(url: string, updater: Updater, leases: Leases, dir: string | undefined) {
    this.url = url;
    this.#updater = updater;
    this.#leases = leases;
    this.#dir = dir;
  }

  /** Global time, as stored. */
  async now(): Promise<bigint> {
    return this.#updater.refresh();
  }

  /**
   * Moves global time forward by `duration`, in steps of at most the cluster's maxStep, as a
   * worker would (only faster). An updater advancing the store meanwhile is an
   * OutOfSyncUpdateError.
   */
  async advance(duration: DurationInput): Promise<bigint> {
    let left = toNanoseconds(duration, "advance duration");
    let time = await this.#updater.refresh();
    while (left > 0n) {
      const maxStep = await this.#leases.maxStep();
      const step = min(left, maxStep);
      time = await this.#updater.advance(step);
      left -= step;
    }
    return time;
  }

  /**
   * Advances until the grant of lease `name` held now ends (free, or a new token); returns
   * the lease as read then (undefined if never claimed).
   */
  async advanceUntilExpired(
    name: string,
    options: UntilExpiredOptions = {},
  ): Promise<LeaseInfo | undefined> {
    const within = toNanoseconds(options.within ?? "1h", "within");
    let spent = 0n;
    let first: bigint | undefined;
    for (;;) {
      const info = await this.#leases.get(name);
      if (!info || info.free || (first !== undefined && info.token !== first)) return info;
      first ??= info.token;
      checkNotPinned(info);
      if (spent >= within) {
        throw new GlobalClockError(
          `lease ${name} is still held by ${info.holder} (token ${info.token}) after ${formatDuration(within)} of global time`,
        );
      }
      const wait = info.expiry - info.time;
      const step = min(wait, within - spent);
      await this.advance(step);
      spent += step;
    }
  }

  /** Closes the store; removes the SQLite file it made. */
  async close(): Promise<void> {
    await this.#leases.close();
    await this.#updater.close();
    if (this.#dir) rmSync(this.#dir, { recursive: true, force: true });
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}
