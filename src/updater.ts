import { clockOrNew } from "./clock-record.js";
import { type DurationInput, toNanoseconds } from "./duration.js";
import {
  ClockRecordMissingError,
  ClosedError,
  ConcurrentUseError,
  ConfigError,
  InvalidDurationError,
  InvalidUpdaterError,
  MaxStepChangedError,
  OutOfSyncUpdateError,
} from "./errors.js";
import type { ClockStore } from "./store.js";
import { type GlobalTime, INT64_MAX } from "./time.js";
import { DEFAULT_MAX_STEP } from "./worker-settings.js";

export interface UpdaterOptions {
  signal?: AbortSignal;
  /** Called once by close(), e.g. to close the store the updater was opened on. */
  onClose?: () => void | Promise<void>;
  /**
   * Stored as the cluster's maxStep where the store keeps leases and none is stored (nor is
   * found deleted later). Default 1.5 s, the workers' default.
   */
  maxStep?: DurationInput;
}

/** The clock as an updater last confirmed it, and the cluster's maxStep read with it. */
interface View {
  readonly time: GlobalTime;
  /** Undefined on a store that keeps no leases (and so no maxStep). */
  readonly maxStep: bigint | undefined;
}

/**
 * Advances global time by compare-and-swap on the exact time it last saw.
 *
 * - a won swap moves the view forward;
 * - a lost swap re-reads, takes the stored time as the new view and throws
 *   OutOfSyncUpdateError (retry later);
 * - any other failure leaves the outcome unknown, so the updater turns invalid and
 *   every later call throws InvalidUpdaterError with the cause.
 *
 * Where the store keeps leases, every advance is also conditioned on the cluster's maxStep
 * being the one the updater read with its view (the store checks it in the same atomic
 * write): a changed maxStep refuses the advance with MaxStepChangedError, and the updater
 * reads both again, so that no step is ever built on a view older than the maxStep a lease
 * holder may have read since (docs/design.md).
 *
 * Not for concurrent use: an overlapping call is refused with ConcurrentUseError.
 */
export class Updater {
  readonly #store: ClockStore;
  readonly #onClose: (() => void | Promise<void>) | undefined;
  readonly #defaultMaxStep: bigint;
  #view: View;
  #busy = false;
  #closed = false;
  #failure: { cause: unknown } | undefined;

  private constructor(
    store: ClockStore,
    view: View,
    defaultMaxStep: bigint,
    onClose: UpdaterOptions["onClose"],
  ) {
    this.#store = store;
    this.#view = view;
    this.#defaultMaxStep = defaultMaxStep;
    this.#onClose = onClose;
  }

  /**
   * Makes the clock record if it is missing (at the epoch), never overwriting one, and only
   * on a store that never had a clock (no maxStep, no lease stored): a deleted record is a
   * ClockRecordMissingError. That is right for a clock nobody has seen yet; a process that
   * has seen a time uses `resume`.
   */
  static async create(store: ClockStore, options: UpdaterOptions = {}): Promise<Updater> {
    const maxStep = checkStore(store, options);
    await clockOrNew(store, "create", options.signal);
    const view = await readView(store, maxStep, "create", options.signal);
    return new Updater(store, view, maxStep, options.onClose);
  }

  /**
   * An updater on the existing clock record, never creating one: for a process that has
   * seen a time (`lastSeen`) and must not restart the clock from the epoch if the record
   * was deleted. Throws ClockRecordMissingError when there is no record.
   */
  static async resume(
    store: ClockStore,
    options: UpdaterOptions & { lastSeen?: bigint } = {},
  ): Promise<Updater> {
    const maxStep = checkStore(store, options);
    const view = await readView(store, maxStep, "resume", options.signal, options.lastSeen);
    return new Updater(store, view, maxStep, options.onClose);
  }

  /** The global time this updater last confirmed (by a read or its own write). */
  get time(): GlobalTime {
    return this.#view.time;
  }

  /**
   * The cluster's maxStep, read with `time`; every advance is conditioned on it still being
   * stored. Undefined on a store that keeps no leases.
   */
  get maxStep(): bigint | undefined {
    return this.#view.maxStep;
  }

  /** True until a failure of unknown outcome; then every call throws InvalidUpdaterError. */
  get valid(): boolean {
    return this.#failure === undefined && !this.#closed;
  }

  /** Adds `duration` to global time; resolves to the new time. */
  async advance(duration: DurationInput, signal?: AbortSignal): Promise<GlobalTime> {
    this.#check("advance");
    const step = toNanoseconds(duration, "advance duration");
    const { time: old, maxStep } = this.#view;
    const next = old + step;
    if (next > INT64_MAX) {
      throw new InvalidDurationError(
        "advance duration",
        `advancing ${old}ns by ${step}ns would pass int64`,
      );
    }
    signal?.throwIfAborted(); // nothing sent yet: the outcome is known, stay valid
    this.#busy = true;
    try {
      let swapped: boolean;
      try {
        const leases = this.#store.leases;
        swapped =
          leases && maxStep !== undefined
            ? await leases.advanceClock(old, next, maxStep, signal)
            : await this.#store.compareAndSwap(old, next, signal);
      } catch (err) {
        throw this.#invalidate(err);
      }
      if (swapped) {
        this.#view = { time: next, maxStep };
        return next;
      }
      let view: View;
      try {
        view = await readView(this.#store, this.#defaultMaxStep, "advance", signal, old);
      } catch (err) {
        throw this.#invalidate(err);
      }
      this.#view = view;
      if (view.time === old && maxStep !== undefined && view.maxStep !== undefined) {
        throw new MaxStepChangedError(old, maxStep, view.maxStep);
      }
      throw new OutOfSyncUpdateError(old, view.time);
    } finally {
      this.#busy = false;
    }
  }

  /**
   * Re-reads the stored time (and the cluster's maxStep) and takes it as the view, e.g.
   * after seeing another updater advance the clock. A failed read leaves the updater valid.
   */
  async refresh(signal?: AbortSignal): Promise<GlobalTime> {
    this.#check("refresh");
    this.#busy = true;
    try {
      this.#view = await readView(
        this.#store,
        this.#defaultMaxStep,
        "refresh",
        signal,
        this.#view.time,
      );
      return this.#view.time;
    } finally {
      this.#busy = false;
    }
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.#onClose?.();
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  #check(what: string): void {
    if (this.#closed) throw new ClosedError("updater");
    if (this.#failure) throw new InvalidUpdaterError(this.#failure.cause);
    if (this.#busy) throw new ConcurrentUseError(what);
  }

  #invalidate(cause: unknown): InvalidUpdaterError {
    this.#failure = { cause };
    return new InvalidUpdaterError(cause);
  }
}

function checkStore(store: ClockStore, options: UpdaterOptions): bigint {
  if (!store)
    throw new ConfigError("store", "missing store: pass a ClockStore, e.g. openStore(url)");
  const maxStep = toNanoseconds(options.maxStep ?? DEFAULT_MAX_STEP, "maxStep");
  if (maxStep <= 0n) throw new ConfigError("maxStep", "maxStep must be > 0");
  return maxStep;
}

/**
 * The clock and the cluster's maxStep, read together. Where the store keeps leases and holds
 * no maxStep (none stored yet, or deleted), `maxStep` is stored first and both are read
 * again: an advance is only ever conditioned on a stored maxStep.
 */
async function readView(
  store: ClockStore,
  maxStep: bigint,
  operation: string,
  signal: AbortSignal | undefined,
  lastSeen?: bigint,
): Promise<View> {
  const leases = store.leases;
  let view: View;
  if (!leases) {
    view = { time: await store.read(signal), maxStep: undefined } as View;
  } else {
    view = (await leases.readClock(signal)) as View;
    if (view.time !== undefined && view.maxStep === undefined) {
      await leases.ensureMaxStep(maxStep, signal);
      view = (await leases.readClock(signal)) as View;
    }
  }
  if (view.time === undefined) throw new ClockRecordMissingError(store.kind, operation, lastSeen);
  return view;
}
