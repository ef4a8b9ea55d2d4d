import { formatDuration } from "./duration.js";
import {
  ClockRecordMissingError,
  ConfigError,
  describe,
  InvalidUpdaterError,
  isFatal,
  MaxStepChangedError,
  OutOfSyncUpdateError,
} from "./errors.js";
import { latestValues } from "./push.js";
import type { ClockStore } from "./store.js";
import { Updater } from "./updater.js";
import { monotonicClock, type WorkerClock } from "./worker-clock.js";
import { STARTING, type WorkerStatus } from "./worker-status.js";

export type { WorkerRole, WorkerStatus } from "./worker-status.js";

import {
  scaledTiming,
  type UpdaterWorkerOptions,
  validatedSettings,
  type WorkerSettings,
  type WorkerTiming,
} from "./worker-settings.js";

export interface StartUpdaterOptions extends UpdaterWorkerOptions {
  /**
   * Fit the cluster: where the cluster's stored maxStep is smaller than this worker's, step
   * within it (interval, takeover and polls scaled down alike) instead of refusing to start.
   * For stand-bys embedded in lease holders (Leases.keepTime). A worker that is running when
   * the cluster's maxStep is lowered fits it either way.
   */
  fitClusterMaxStep?: boolean;
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
  readonly #fit: boolean;
  /** The settings' timing, scaled down to the cluster's maxStep where it is smaller. */
  #timing: WorkerTiming;
  readonly #abort = new AbortController();
  /** Aborted once the worker has fully stopped, after its last status. */
  readonly #stopped = new AbortController();
  readonly #listeners = new Set<(status: WorkerStatus) => void>();
  readonly #done: Promise<void>;
  #status: WorkerStatus = STARTING;
  #updater: Updater | undefined;
  #failures = 0;
  /** The greatest time seen since the last regression; -1 until a time was seen. */
  #highest = -1n;
  /** The time last seen, and when (worker clock) it was first seen: the takeover timer. */
  #last: bigint | undefined;
  #lastAt = 0n;
  /** Whether any call to the store has succeeded: until then, a fatal error stops the worker. */
  #healthy = false;
  #failure: { err: unknown } | undefined;

  constructor(store: ClockStore, options: StartUpdaterOptions = {}) {
    if (!store)
      throw new ConfigError("store", "missing store: pass a ClockStore, e.g. from openStore(url)");
    this.settings = validatedSettings(options);
    this.#store = store;
    this.#clock = options.clock ?? monotonicClock;
    this.#random = options.random ?? Math.random;
    this.#fit = options.fitClusterMaxStep ?? false;
    this.#timing = scaledTiming(this.settings, undefined);
    const outer = options.signal;
    const onAbort = () => this.#abort.abort();
    if (outer?.aborted) onAbort();
    else outer?.addEventListener("abort", onAbort, { once: true });
    this.#done = this.#run().finally(() => outer?.removeEventListener("abort", onAbort));
  }

  snapshot(): WorkerStatus {
    return this.#status;
  }

  /**
   * The error that stopped the worker, if one did: a failure no retry can mend (wrong
   * credentials, a missing database or privilege, a corrupt record) before any call to the
   * store had succeeded. After a healthy start the worker retries everything instead.
   */
  get failure(): unknown {
    return this.#failure?.err;
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
        // An updater's failure carries the store's error as its cause.
        const root = err instanceof InvalidUpdaterError ? err.cause : err;
        const missing = root instanceof ClockRecordMissingError;
        this.#set({
          role: "error",
          errors: this.#status.errors + 1,
          lastError: describe(err),
          lastErrorName: root instanceof Error ? root.name : undefined,
          lastErrorRetryable: !isFatal(err),
          recordMissing:
            this.#status.recordMissing +
            (missing && this.#status.lastErrorName !== "ClockRecordMissingError" ? 1 : 0),
        });
        if (!this.#healthy && isFatal(err)) {
          this.#failure = { err };
          break;
        }
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
    // Only a worker that never saw a time may create the record (at the epoch).
    const maxStep = this.settings.maxStep;
    const updater =
      this.#highest < 0n
        ? await Updater.create(this.#store, { signal, maxStep })
        : await Updater.resume(this.#store, { signal, maxStep, lastSeen: this.#highest });
    this.#updater = updater;
    this.#checkMaxStep(updater);
    this.#healthy = true;
    this.#observe(updater.time);
    if (this.#status.role !== "starting") this.#set({ role: "starting" });
    let base = this.#clock.now(); // the created view was confirmed by a read just now
    for (;;) {
      if (!(await this.#clock.sleep(this.#timing.interval, signal))) return;
      this.#fitTo(updater.maxStep); // a stand-by's reads may have brought a new one
      const step = min(this.#clock.now() - base, this.#timing.maxStep);
      const outcome = await this.#advance(updater, step, signal);
      // A lost race means another worker is active: the elapsed time is discarded.
      if (outcome === "lost" && !(await this.#standBy(updater, signal))) return;
      // Won, taken over, or refused for a changed maxStep (the updater read the clock and
      // the new maxStep again just now): the next step counts from here.
      base = this.#clock.now();
    }
  }

  /**
   * Waits until the stored time has not changed for takeoverAfter, re-reads it, and claims
   * the clock by advancing it by what elapsed since that read: the time the clock stood
   * still is never added. A stored time below what was seen (a restored backup) is, once a
   * read confirms it and it has stayed for takeoverAfter, taken as the truth: the clock
   * goes on from it. Resolves true once this worker is active, false on abort.
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
          const wait = this.#lastAt + this.#timing.takeoverAfter - this.#clock.now();
          if (!(await this.#clock.sleep(wait > 0n ? wait : 0n, signal))) return false;
          if (pushed.failed) pushed = undefined; // fall back to reading
        } else {
          if (!(await this.#clock.sleep(this.#timing.pollInterval, signal))) return false;
          const time = await this.#store.read(signal);
          if (time === undefined)
            throw new ClockRecordMissingError(this.#store.kind, "read", this.#highest);
          this.#observe(time);
        }
        if (this.#clock.now() - this.#lastAt < this.#timing.takeoverAfter) continue;
        const stored = await updater.refresh(signal);
        const confirmedAt = this.#clock.now();
        if (stored !== this.#last) {
          this.#observe(stored); // it moved after all (or went back): wait again
          continue;
        }
        // Elapsed runs from the read that just confirmed the stored time, so the takeover
        // adds none of the stall (at least 1 ns, so that other stand-bys see a change).
        const elapsed = this.#clock.now() - confirmedAt;
        this.#fitTo(updater.maxStep); // the read that confirmed the time brought maxStep too
        const step = min(elapsed > 0n ? elapsed : 1n, this.#timing.maxStep);
        if ((await this.#advance(updater, step, signal)) !== "won") continue;
        this.#set({ takeovers: this.#status.takeovers + 1 });
        return true;
      }
    } finally {
      signal.removeEventListener("abort", stopWatching);
      watching.abort();
    }
  }

  /**
   * The cluster's maxStep is a fact every lease holder relies on (docs/design.md): it is
   * stored beside the clock (by the first worker or lease holder), and a worker that could
   * step further refuses to run, unless told to fit the cluster. Steps are kept within it
   * either way, and the store refuses any step built on a maxStep that has changed since.
   */
  #checkMaxStep(updater: Updater): void {
    const mine = this.settings.maxStep;
    const cluster = updater.maxStep;
    if (cluster !== undefined && mine > cluster && !this.#fit) {
      throw new ConfigError(
        "maxStep",
        `this worker's maxStep (${formatDuration(mine)}) is larger than the cluster's (${formatDuration(cluster)}), which lease holders count on: run it with --max-step ${formatDuration(cluster)} or less (a shorter --interval), or raise the cluster's maxStep first (globalclock max-step --set)`,
      );
    }
    this.#fitTo(cluster);
  }

  /** Scales the timing to the cluster's maxStep, where it is smaller than this worker's. */
  #fitTo(cluster: bigint | undefined): void {
    if (cluster === this.#status.clusterMaxStep) return;
    this.#timing = scaledTiming(this.settings, cluster);
    this.#set({ clusterMaxStep: cluster });
  }

  /** Follows the store's pushed changes; `failed` turns true if the watch breaks. */
  #follow(signal: AbortSignal): { failed: boolean } {
    // Stryker disable next-line ObjectLiteral: `failed` undefined reads as false, the only way it is read
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

  /**
   * Advances. "lost": another updater won the race (recorded as a conflict); "changed": the
   * cluster's maxStep changed under the updater, which has read it again (nothing written).
   */
  async #advance(
    updater: Updater,
    step: bigint,
    signal: AbortSignal,
  ): Promise<"won" | "lost" | "changed"> {
    let time: bigint;
    try {
      time = await updater.advance(step, signal);
    } catch (err) {
      if (err instanceof MaxStepChangedError) {
        this.#set({ maxStepChanges: this.#status.maxStepChanges + 1 });
        this.#fitTo(updater.maxStep);
        // Stryker disable next-line StringLiteral: callers only test for "won" and "lost"
        return "changed";
      }
      if (!(err instanceof OutOfSyncUpdateError)) throw err;
      this.#set({ conflicts: this.#status.conflicts + 1 });
      this.#observe(err.actual);
      return "lost";
    }
    this.#failures = 0;
    this.#highest = time;
    this.#last = time;
    this.#lastAt = this.#clock.now();
    this.#set({
      role: "active",
      advances: this.#status.advances + 1,
      time,
      lastStep: step,
      lastChangeAt: this.#lastAt,
    });
    return "won";
  }

  /**
   * Takes note of a stored time, read or pushed. Any change restarts the takeover timer;
   * a time below the highest seen is a regression (a restored backup, a rollback, a manual
   * edit), recorded once, after which the lower time is the one to compare with.
   */
  #observe(time: bigint): void {
    if (time === this.#last) return;
    this.#last = time;
    this.#lastAt = this.#clock.now();
    const patch: { -readonly [K in keyof WorkerStatus]?: WorkerStatus[K] } = {
      time,
      lastChangeAt: this.#lastAt,
    };
    if (time < this.#highest) {
      patch.regressions = this.#status.regressions + 1;
      patch.lastRegression = Object.freeze({ from: this.#highest, to: time });
    }
    if (time > this.#highest || patch.regressions !== undefined) this.#highest = time;
    this.#set(patch);
  }

  #backoff(): bigint {
    const { retryDelay, maxRetryDelay } = this.settings;
    const exp = retryDelay << BigInt(Math.min(this.#failures++, 30));
    const capped = min(exp, maxRetryDelay);
    // Full jitter over the upper half, so restarted workers spread out.
    return capped / 2n + BigInt(Math.floor(Number(capped / 2n) * this.#random()));
  }

  // Stryker disable next-line BlockStatement: the worker's updaters have no onClose and are never used again once dropped
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
