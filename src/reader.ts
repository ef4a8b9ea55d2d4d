import { MAX_TIMER_MS } from "./duration.js";
import { ClosedError, ConfigError } from "./errors.js";
import { sleep } from "./sleep.js";
import type { ClockStore } from "./store.js";
import { type GlobalTime, globalEpoch } from "./time.js";

export interface ReaderOptions {
  /** Called once by close(), e.g. to close the store the reader was opened on. */
  onClose?: () => void | Promise<void>;
}

export interface WatchOptions {
  signal?: AbortSignal;
  /** How often to read when the store cannot push changes. Default 250 ms. */
  pollIntervalMs?: number;
}

/**
 * Reads global time. No cache: every now() asks the store. It never returns less than it
 * has returned before (now() or watch()): a read that comes back lower (a store that lost
 * its newest writes in a failover, a stale primary, a record removed and made anew) answers
 * the highest time this reader has returned.
 */
export class Reader {
  readonly #store: ClockStore;
  readonly #onClose: (() => void | Promise<void>) | undefined;
  #closed = false;
  /** The highest time returned so far: the floor of every later answer. */
  #highest = globalEpoch();
  /** A stored time (the epoch for a missing record), raised to the floor. */
  readonly #floor = (time: GlobalTime | undefined): GlobalTime => {
    const t = time ?? globalEpoch();
    if (t < this.#highest) return this.#highest;
    this.#highest = t;
    return t;
  };

  constructor(store: ClockStore, options: ReaderOptions = {}) {
    if (!store)
      throw new ConfigError("store", "missing store: pass a ClockStore, e.g. openStore(url)");
    this.#store = store;
    this.#onClose = options.onClose;
  }

  /**
   * The stored global time; the epoch when there is no record yet. Never less than a time
   * this reader returned before: a lower read answers that time instead.
   */
  now(signal?: AbortSignal): Promise<GlobalTime> {
    if (this.#closed) return Promise.reject(new ClosedError("reader"));
    // No async function here: on in-process stores its extra promise costs as much as the read.
    return this.#store.read(signal).then(this.#floor);
  }

  /**
   * Yields the current time, then each later, greater time. Pushed by the store where it
   * can (PostgreSQL LISTEN, etcd watch, change streams), else polled. Ends on abort. What
   * it yields counts for the floor of now(), and the reverse.
   */
  async *watch(options: WatchOptions = {}): AsyncGenerator<GlobalTime, void, undefined> {
    if (this.#closed) throw new ClosedError("reader");
    const interval = options.pollIntervalMs ?? 250;
    if (!(interval > 0 && interval <= MAX_TIMER_MS)) {
      throw new ConfigError(
        "pollIntervalMs",
        `invalid pollIntervalMs ${interval}: use a number of ms > 0`,
      );
    }
    // A signal of our own, so that a consumer leaving the loop early also ends the
    // store's subscription, which would otherwise wait for the next change to notice.
    const outer = options.signal;
    const stop = new AbortController();
    // Stryker disable next-line OptionalChaining: onAbort runs only when `outer` is set (its abort, or already aborted)
    const onAbort = () => stop.abort(outer?.reason);
    if (outer?.aborted) onAbort();
    else outer?.addEventListener("abort", onAbort, { once: true });
    const signal = stop.signal;
    const store = this.#store;
    let source: AsyncIterator<bigint> | undefined;
    let pending: Promise<IteratorResult<bigint>> | undefined;
    try {
      // Subscribe first, then read, so that no change between the two is missed.
      source = store.watch ? store.watch(signal)[Symbol.asyncIterator]() : undefined;
      pending = source?.next(); // starts the subscription
      // If the subscription fails while the first read is still running, the rejection is
      // seen when `pending` is awaited; until then it must not count as unhandled.
      pending?.catch(() => {});
      let last = await this.now(signal);
      yield last;
      // Stryker disable next-line LogicalOperator: `pending` is set exactly when `source` is (next() throwing at once leaves the try)
      if (source && pending) {
        while (!signal.aborted) {
          const next = await pending;
          if (next.done) return;
          if (next.value > last) {
            last = this.#floor(next.value);
            yield last;
          }
          pending = source.next();
        }
        return;
      }
      while (!signal.aborted) {
        if (!(await sleep(interval, signal))) return;
        const now = await this.now(signal);
        if (now > last) {
          last = now;
          yield last;
        }
      }
    } catch (err) {
      // A read cut short by the abort is how a watch ends, not an error.
      if (outer?.aborted) return;
      throw err;
    } finally {
      outer?.removeEventListener("abort", onAbort);
      stop.abort();
      if (source) {
        pending?.catch(() => {}); // its outcome no longer matters
        await source.return?.();
      }
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
}
