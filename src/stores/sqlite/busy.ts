import { codeOf } from "../../errors.js";
import { sleep } from "../../sleep.js";
import type { StoreCalls } from "../call.js";

export const isBusy = (err: unknown): boolean => /^SQLITE_(BUSY|LOCKED)/.test(String(codeOf(err)));
/** What no retry mends: a damaged or foreign file, or one this process may not write. */
export const FATAL = /^SQLITE_(CORRUPT|NOTADB|READONLY|CANTOPEN|PERM|AUTH|FORMAT)/;

/**
 * better-sqlite3 is synchronous and its busy timeout would block the event loop, so the
 * store's busy timeout is 0 and a locked statement is retried here, asynchronously.
 */
export class BusyRetry {
  readonly #calls: StoreCalls;
  readonly #timeoutMs: number;

  constructor(calls: StoreCalls, timeoutMs: number) {
    this.#calls = calls;
    this.#timeoutMs = timeoutMs;
  }

  /**
   * Runs `fn` at once; only when the database is locked does it go on asynchronously,
   * retrying with short, growing, jittered waits (a write holds the lock for well under
   * a millisecond) until the timeout, then throws the driver's busy error.
   */
  run<T>(signal: AbortSignal | undefined, fn: () => T): T | Promise<T> {
    try {
      return fn();
    } catch (err) {
      if (!isBusy(err)) throw err;
    }
    return this.#retry(signal, fn);
  }

  /** The same, blocking: only for opening, where there is no caller to wait for. */
  runSync(fn: () => void): void {
    const deadline = performance.now() + this.#timeoutMs;
    for (;;) {
      try {
        fn();
        return;
      } catch (err) {
        if (!isBusy(err) || performance.now() >= deadline) throw err;
        Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 2);
      }
    }
  }

  async #retry<T>(signal: AbortSignal | undefined, fn: () => T): Promise<T> {
    const deadline = performance.now() + this.#timeoutMs;
    for (let attempt = 1; ; attempt++) {
      await sleep(Math.random() * Math.min(attempt, 20));
      this.#calls.checkOpen();
      signal?.throwIfAborted();
      try {
        return fn();
      } catch (err) {
        if (!isBusy(err) || performance.now() >= deadline) throw err;
      }
    }
  }
}
