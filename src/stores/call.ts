/**
 * The one way every store calls its database: closed and aborted checks, one deadline per
 * call, and the mapping of a driver's failure to a StoreError that names the store and the
 * operation and says whether a retry may help.
 */
import { ClosedError, GlobalClockError, StoreError } from "../errors.js";

/** A driver's failure as the store explains it: one safe line, and whether a retry may help. */
export type Explain = (err: unknown) => { message: string; retryable: boolean };

export interface StoreCallOptions {
  /** The store kind, as in StoreError.store: "sqlite", "postgres", … */
  kind: string;
  explain: Explain;
  /** Every call fails after this many ms (retryable; the outcome is unknown). None if left out. */
  timeoutMs?: number;
}

const ignore = () => {};

export class StoreCalls {
  readonly kind: string;
  readonly timeoutMs: number | undefined;
  readonly #explain: Explain;
  readonly #deadlines: Deadlines | undefined;
  #closed = false;

  constructor(options: StoreCallOptions) {
    this.kind = options.kind;
    this.#explain = options.explain;
    this.timeoutMs = options.timeoutMs;
    this.#deadlines =
      options.timeoutMs === undefined ? undefined : new Deadlines(options.timeoutMs);
  }

  get closed(): boolean {
    return this.#closed;
  }

  /** Marks the store closed; true only the first time, so close() does its work once. */
  close(): boolean {
    if (this.#closed) return false;
    this.#closed = true;
    return true;
  }

  /** Throws ClosedError once the store is closed. */
  checkOpen(): void {
    if (this.#closed) throw new ClosedError(`${this.kind} store`);
  }

  /**
   * Runs one operation. `fn` may answer synchronously (an embedded store): then no promise
   * is added but the one returned. A call that the signal aborts rejects with the signal's
   * reason; one that outlives the deadline rejects with a retryable StoreError.
   */
  run<T>(operation: string, signal: AbortSignal | undefined, fn: () => T | Promise<T>): Promise<T> {
    if (this.#closed) return Promise.reject(new ClosedError(`${this.kind} store`));
    if (signal?.aborted) return Promise.reject(signal.reason);
    let result: T | Promise<T>;
    try {
      result = fn();
    } catch (err) {
      return Promise.reject(this.error(operation, err, signal));
    }
    if (!(result instanceof Promise)) return Promise.resolve(result);
    return this.#settle(operation, signal, result);
  }

  /** The error to report for a failure of `operation` (also for failures outside run, e.g. a watch). */
  error(operation: string, err: unknown, signal?: AbortSignal): unknown {
    if (signal?.aborted) return signal.reason;
    if (err instanceof GlobalClockError) return err;
    if (this.#closed) return new ClosedError(`${this.kind} store`);
    const { message, retryable } = this.#explain(err);
    return new StoreError(this.kind, operation, message, { cause: err, retryable });
  }

  #settle<T>(operation: string, signal: AbortSignal | undefined, work: Promise<T>): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      let done = false;
      let deadline: Pending | undefined;
      const finish = (): boolean => {
        if (done) return false;
        done = true;
        if (deadline) this.#deadlines?.settle(deadline);
        signal?.removeEventListener("abort", onAbort);
        return true;
      };
      const onAbort = () => {
        if (!finish()) return;
        work.catch(ignore);
        reject(signal?.reason);
      };
      deadline = this.#deadlines?.track(() => {
        if (!finish()) return;
        work.catch(ignore);
        reject(
          new StoreError(
            this.kind,
            operation,
            `no answer within ${this.timeoutMs} ms; the outcome is unknown`,
            { retryable: true },
          ),
        );
      });
      signal?.addEventListener("abort", onAbort, { once: true });
      work.then(
        (value) => {
          if (finish()) resolve(value);
        },
        (err: unknown) => {
          if (finish()) reject(this.error(operation, err, signal));
        },
      );
    });
  }
}

interface Pending {
  readonly at: number;
  readonly expire: () => void;
  settled: boolean;
}

/**
 * Deadlines of one store's calls. They all have the same length, so the calls in flight,
 * kept in the order they began (a Set iterates in insertion order), fall due in that order:
 * one timer, armed for the oldest, serves them all, and a settled call leaves the set at
 * once, so nothing it holds outlives it.
 */
class Deadlines {
  readonly #ms: number;
  readonly #inFlight = new Set<Pending>();
  #timer: NodeJS.Timeout | undefined;

  constructor(ms: number) {
    this.#ms = ms;
  }

  track(expire: () => void): Pending {
    const pending: Pending = { at: performance.now() + this.#ms, expire, settled: false };
    this.#inFlight.add(pending);
    if (!this.#timer) this.#arm(pending.at);
    return pending;
  }

  settle(pending: Pending): void {
    pending.settled = true;
    this.#inFlight.delete(pending);
  }

  #arm(at: number): void {
    this.#timer = setTimeout(() => this.#fire(), Math.max(0, at - performance.now()));
    this.#timer.unref(); // a call in flight keeps the process alive by its socket, not by this
  }

  #fire(): void {
    this.#timer = undefined;
    const now = performance.now();
    for (const pending of this.#inFlight) {
      if (pending.at > now) {
        this.#arm(pending.at);
        return;
      }
      this.#inFlight.delete(pending);
      pending.settled = true;
      pending.expire();
    }
  }
}
