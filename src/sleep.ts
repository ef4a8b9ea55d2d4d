import { MAX_TIMER_MS } from "./duration.js";

/**
 * Resolves true after `ms`, or false at once when `signal` aborts. Never rejects.
 * `unref`: the wait alone does not keep the process alive. A wait longer than Node's
 * timers hold (about 24.8 days, which a single timer would end after 1 ms) is slept in
 * parts.
 */
export function sleep(ms: number, signal?: AbortSignal, unref = false): Promise<boolean> {
  if (signal?.aborted) return Promise.resolve(false);
  return new Promise((resolve) => {
    let timer: NodeJS.Timeout | undefined;
    const onAbort = () => {
      clearTimeout(timer);
      resolve(false);
    };
    const wait = (left: number) => {
      const part = Math.min(left, MAX_TIMER_MS);
      timer = setTimeout(() => {
        if (left > part) return wait(left - part);
        signal?.removeEventListener("abort", onAbort);
        resolve(true);
      }, part);
      if (unref) timer.unref();
    };
    wait(Math.max(ms, 0) || 0);
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}
