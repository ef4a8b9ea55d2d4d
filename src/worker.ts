import { ConfigError, describe, OutOfSyncUpdateError } from "./errors.js";
import { latestValues } from "./push.js";
import type { ClockStore } from "./store.js";
import { Updater } from "./updater.js";
import { monotonicClock, type WorkerClock } from "./worker-clock.js";
import {
  type UpdaterWorkerOptions,
  validatedSettings,
  type WorkerSettings,
} from "./worker-settings.js";

export type WorkerRole = "starting" | "active" | "standby" | "error" | "stopped";

/** What a worker knows and has done; a new frozen object at every change. */
export interface WorkerStatus {
  readonly role: WorkerRole;
  /** The latest global time this worker wrote or saw (ns since the epoch). */
  readonly time: bigint | undefined;
  readonly advances: number;
  readonly conflicts: number;
  readonly errors: number;
  readonly takeovers: number;
  /** The size of this worker's last advance, in ns. */
  readonly lastStep: bigint | undefined;
  /** When (worker clock, ns) this worker last saw global time move, by its hand or another's. */
  readonly lastChangeAt: bigint | undefined;
  readonly lastError: string | undefined;
}

export interface StartUpdaterOptions extends UpdaterWorkerOptions {
  /** Settings from workerSettings(), used as they are, instead of the options above. */
  settings?: WorkerSettings;
  /** Stops the worker when aborted. */
  signal?: AbortSignal;
  /** Monotonic time and timers; real ones by default. */
  clock?: WorkerClock;
  /** Jitter source in [0, 1). */
  random?: () => number;
}

const min = (a: bigint, b: bigint) => (a < b ? a : b);

/**
 * Keeps global time moving: the active worker advances it every interval by the
 * monotonic time elapsed since it last confirmed the stored value, never more than
 * maxStep; stand-bys watch and take over after takeoverAfter without an advance, adding
 * none of the time the clock stood still.
 * It never throws: store errors drop the updater, wait (jittered backoff), and rebuild it.
 */
export class UpdaterWorker {
  readonly settings: WorkerSettings;
  readonly #store: ClockStore;
  readonly #clock: WorkerClock;
  readonly #random: () => number;
  readonly #abort = new AbortController();
  /** Aborted once the worker has fully stopped, after its last status. */
  readonly #stopped = new AbortController();
  readonly #listeners = new Set<(status: WorkerStatus) => void>();
  readonly #done: Promise<void>;
  #status: WorkerStatus = Object.freeze({
    role: "starting",
    time: undefined,
    advances: 0,
    conflicts: 0,
    errors: 0,
    takeovers: 0,
    lastStep: undefined,
    lastChangeAt: undefined,
    lastError: undefined,
  });
  #updater: Updater | undefined;
  #failures = 0;
  /** The greatest time seen, and when (worker clock) it was first seen: the takeover timer. */
  #seen = -1n;
  #seenAt = 0n;

  constructor(store: ClockStore, options: StartUpdaterOptions = {}) {
    if (!store)
      throw new ConfigError("store", "missing store: pass a ClockStore, e.g. from openStore(url)");
    this.settings = validatedSettings(options);
    this.#store = store;
    this.#clock = options.clock ?? monotonicClock;
    this.#random = options.random ?? Math.random;
    const outer = options.signal;
    const onAbort = () => this.#abort.abort();
    if (outer?.aborted) onAbort();
    else outer?.addEventListener("abort", onAbort, { once: true });
    this.#done = this.#run().finally(() => outer?.removeEventListener("abort", onAbort));
  }

  snapshot(): WorkerStatus {
    return this.#status;
  }

  /** The current status, then each change, until `signal` aborts or the worker stops. */
  events(signal?: AbortSignal): AsyncIterable<WorkerStatus> {
    const until = signal ? AbortSignal.any([signal, this.#stopped.signal]) : this.#stopped.signal;
    return latestValues<WorkerStatus>(until, (push) => {
      this.#listeners.add(push);
      push(this.#status);
      return () => this.#listeners.delete(push);
    });
  }

  /** Stops the worker and waits for it; the store is left open for its owner to close. */
  async stop(): Promise<void> {
    this.#abort.abort();
    await this.#done;
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.stop();
  }

  async #run(): Promise<void> {
    const signal = this.#abort.signal;
    while (!signal.aborted) {
      try {
        await this.#serve(signal);
      } catch (err) {
        if (signal.aborted) break;
        // The outcome of the failed call is unknown: drop the updater, never re-add its time.
        await this.#dropUpdater();
        this.#set({ role: "error", errors: this.#status.errors + 1, lastError: describe(err) });
        await this.#clock.sleep(this.#backoff(), signal);
      }
    }
    await this.#dropUpdater();
    this.#set({ role: "stopped" });
    this.#stopped.abort();
  }

  /**
   * Builds an updater, then alternates active and stand-by turns until an error or abort.
   * A new updater is a candidate ("starting"): it becomes active with its first advance.
   */
  async #serve(signal: AbortSignal): Promise<void> {
    const updater = await Updater.create(this.#store, { signal });
    this.#updater = updater;
    this.#observe(updater.time);
    if (this.#status.role !== "starting") this.#set({ role: "starting" });
    let base = this.#clock.now(); // the created view was confirmed by a read just now
    for (;;) {
      if (!(await this.#clock.sleep(this.settings.interval, signal))) return;
      const step = min(this.#clock.now() - base, this.settings.maxStep);
      // A lost race means another worker is active: the elapsed time is discarded.
      if (
        !(await this.#advance(updater, step, signal)) &&
        !(await this.#standBy(updater, signal))
      ) {
        return;
      }
      base = this.#clock.now();
    }
  }

  /**
   * Waits until no advance has been seen for takeoverAfter, re-reads the stored time, and
   * claims the clock by advancing it by what elapsed since that read: the time the clock
   * stood still is never added. Resolves true once this worker is active, false on abort.
   */
  async #standBy(updater: Updater, signal: AbortSignal): Promise<boolean> {
    this.#set({ role: "standby" });
    // Its own controller, tied to `signal` by hand: AbortSignal.any would leave a
    // dependant on the long-lived signal at every stand-by turn.
    const watching = new AbortController();
    const stopWatching = () => watching.abort();
    signal.addEventListener("abort", stopWatching, { once: true });
    let pushed = this.#store.watch ? this.#follow(watching.signal) : undefined;
    try {
      for (;;) {
        if (pushed) {
          const wait = this.#seenAt + this.settings.takeoverAfter - this.#clock.now();
          if (!(await this.#clock.sleep(wait > 0n ? wait : 0n, signal))) return false;
          if (pushed.failed) pushed = undefined; // fall back to reading
        } else {
          if (!(await this.#clock.sleep(this.settings.pollInterval, signal))) return false;
          const time = await this.#store.read(signal);
          if (time !== undefined) this.#observe(time);
        }
        if (this.#clock.now() - this.#seenAt < this.settings.takeoverAfter) continue;
        const stored = await updater.refresh(signal);
        const confirmedAt = this.#clock.now();
        if (stored !== this.#seen) {
          this.#observe(stored);
          // A read behind what was seen (a store read that is not linearizable): wait
          // for it to catch up rather than asking again at once.
          if (
            stored < this.#seen &&
            !(await this.#clock.sleep(this.settings.pollInterval, signal))
          ) {
            return false;
          }
          continue;
        }
        // Elapsed runs from the read that just confirmed the stored time, so the takeover
        // adds none of the stall (at least 1 ns, so that other stand-bys see a change).
        const elapsed = this.#clock.now() - confirmedAt;
        const step = min(elapsed > 0n ? elapsed : 1n, this.settings.maxStep);
        if (!(await this.#advance(updater, step, signal))) continue;
        this.#set({ takeovers: this.#status.takeovers + 1 });
        return true;
      }
    } finally {
      signal.removeEventListener("abort", stopWatching);
      watching.abort();
    }
  }

  /** Follows the store's pushed changes; `failed` turns true if the watch breaks. */
  #follow(signal: AbortSignal): { failed: boolean } {
    const state = { failed: false };
    const watch = this.#store.watch;
    if (!watch) return state;
    const run = (async () => {
      for await (const time of watch.call(this.#store, signal)) this.#observe(time);
    })();
    run.catch((err: unknown) => {
      if (signal.aborted) return;
      state.failed = true;
      this.#set({ lastError: `watch failed, reading instead: ${describe(err)}` });
    });
    return state;
  }

  /** Advances; false when another updater won the race (recorded as a conflict). */
  async #advance(updater: Updater, step: bigint, signal: AbortSignal): Promise<boolean> {
    let time: bigint;
    try {
      time = await updater.advance(step, signal);
    } catch (err) {
      if (!(err instanceof OutOfSyncUpdateError)) throw err;
      this.#set({ conflicts: this.#status.conflicts + 1 });
      this.#observe(err.actual);
      return false;
    }
    this.#failures = 0;
    this.#seen = time;
    this.#seenAt = this.#clock.now();
    this.#set({
      role: "active",
      advances: this.#status.advances + 1,
      time,
      lastStep: step,
      lastChangeAt: this.#seenAt,
    });
    return true;
  }

  #observe(time: bigint): void {
    if (time <= this.#seen) return;
    this.#seen = time;
    this.#seenAt = this.#clock.now();
    this.#set({ time, lastChangeAt: this.#seenAt });
  }

  #backoff(): bigint {
    const { retryDelay, maxRetryDelay } = this.settings;
    const exp = retryDelay << BigInt(Math.min(this.#failures++, 30));
    const capped = min(exp, maxRetryDelay);
    // Full jitter over the upper half, so restarted workers spread out.
    return capped / 2n + BigInt(Math.floor(Number(capped / 2n) * this.#random()));
  }

  async #dropUpdater(): Promise<void> {
    const updater = this.#updater;
    this.#updater = undefined;
    await updater?.close();
  }

  #set(patch: Partial<WorkerStatus>): void {
    this.#status = Object.freeze({ ...this.#status, ...patch });
    for (const listener of this.#listeners) listener(this.#status);
  }
}

/** Starts an UpdaterWorker on `store`. Options are validated here (ConfigError). */
export function startUpdater(store: ClockStore, options: StartUpdaterOptions = {}): UpdaterWorker {
  return new UpdaterWorker(store, options);
}
