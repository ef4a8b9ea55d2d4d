import { type DurationInput, toNanoseconds } from "./duration.js";
import {
  ClockRecordMissingError,
  ClosedError,
  ConcurrentUseError,
  ConfigError,
  InvalidDurationError,
  InvalidUpdaterError,
  OutOfSyncUpdateError,
} from "./errors.js";
import type { ClockStore } from "./store.js";
import { type GlobalTime, INT64_MAX } from "./time.js";

export interface UpdaterOptions {
  signal?: AbortSignal;
  /** Called once by close(), e.g. to close the store the updater was opened on. */
  onClose?: () => void | Promise<void>;
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
 * Not for concurrent use: an overlapping call is refused with ConcurrentUseError.
 */
export class Updater {
  readonly #store: ClockStore;
  readonly #onClose: (() => void | Promise<void>) | undefined;
  #view: GlobalTime;
  #busy = false;
  #closed = false;
  #failure: { cause: unknown } | undefined;

  private constructor(store: ClockStore, view: GlobalTime, onClose: UpdaterOptions["onClose"]) {
    this.#store = store;
    this.#view = view;
    this.#onClose = onClose;
  }

  /**
   * Makes the clock record if it is missing (at the epoch), never overwriting one. That is
   * right for a clock nobody has seen yet; a process that has seen a time uses `resume`.
   */
  static async create(store: ClockStore, options: UpdaterOptions = {}): Promise<Updater> {
    if (!store)
      throw new ConfigError("store", "missing store: pass a ClockStore, e.g. openStore(url)");
    const view = await store.ensure(options.signal);
    return new Updater(store, view, options.onClose);
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
    if (!store)
      throw new ConfigError("store", "missing store: pass a ClockStore, e.g. openStore(url)");
    const view = await store.read(options.signal);
    if (view === undefined)
      throw new ClockRecordMissingError(store.kind, "resume", options.lastSeen);
    return new Updater(store, view, options.onClose);
  }

  /** The global time this updater last confirmed (by a read or its own write). */
  get time(): GlobalTime {
    return this.#view;
  }

  /** True until a failure of unknown outcome; then every call throws InvalidUpdaterError. */
  get valid(): boolean {
    return this.#failure === undefined && !this.#closed;
  }

  /** Adds `duration` to global time; resolves to the new time. */
  async advance(duration: DurationInput, signal?: AbortSignal): Promise<GlobalTime> {
    this.#check("advance");
    const step = toNanoseconds(duration, "advance duration");
    const old = this.#view;
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
        swapped = await this.#store.compareAndSwap(old, next, signal);
      } catch (err) {
        throw this.#invalidate(err);
      }
      if (swapped) {
        this.#view = next;
        return next;
      }
      let actual: bigint | undefined;
      try {
        actual = await this.#store.read(signal);
      } catch (err) {
        throw this.#invalidate(err);
      }
      if (actual === undefined) {
        throw this.#invalidate(new ClockRecordMissingError(this.#store.kind, "advance", old));
      }
      this.#view = actual;
      throw new OutOfSyncUpdateError(old, actual);
    } finally {
      this.#busy = false;
    }
  }

  /**
   * Re-reads the stored time and takes it as the view, e.g. after seeing another updater
   * advance the clock. A failed read writes nothing, so it leaves the updater valid.
   */
  async refresh(signal?: AbortSignal): Promise<GlobalTime> {
    this.#check("refresh");
    this.#busy = true;
    try {
      const time = await this.#store.read(signal);
      if (time === undefined) {
        throw new ClockRecordMissingError(this.#store.kind, "refresh", this.#view);
      }
      this.#view = time;
      return time;
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
