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
        if (deadline) deadline.settled = true;
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
  next: Pending | undefined;
}

/**
 * Deadlines of one store's calls. They all have the same length, so the order they were
 * set in is the order they fall due: a queue and one timer serve every call in flight,
 * where a timer per call would cost a timer's setup and teardown on every read.
 */
class Deadlines {
  readonly #ms: number;
  #head: Pending | undefined;
  #tail: Pending | undefined;
  #timer: NodeJS.Timeout | undefined;

  constructor(ms: number) {
    this.#ms = ms;
  }

  track(expire: () => void): Pending {
    const pending: Pending = {
      at: performance.now() + this.#ms,
      expire,
      settled: false,
      next: undefined,
    };
    if (this.#tail) this.#tail.next = pending;
    else this.#head = pending;
    this.#tail = pending;
    if (!this.#timer) this.#arm();
    return pending;
  }

  #arm(): void {
    const head = this.#head;
    if (!head) return;
    this.#timer = setTimeout(() => this.#fire(), Math.max(0, head.at - performance.now()));
    this.#timer.unref(); // a call in flight keeps the process alive by its socket, not by this
  }

  #fire(): void {
    this.#timer = undefined;
    const now = performance.now();
    let head = this.#head;
    while (head && (head.settled || head.at <= now)) {
      if (!head.settled) {
        head.settled = true;
        head.expire();
      }
      head = head.next;
    }
    this.#head = head;
    if (!head) this.#tail = undefined;
    this.#arm();
  }
}
