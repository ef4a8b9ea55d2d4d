/**
 * Resolves true after `ms`, or false at once when `signal` aborts. Never rejects.
 * `unref`: the wait alone does not keep the process alive.
 */
export function sleep(ms: number, signal?: AbortSignal, unref = false): Promise<boolean> {
  if (signal?.aborted) return Promise.resolve(false);
  return new Promise((resolve) => {
    const onAbort = () => {
      clearTimeout(timer);
      resolve(false);
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve(true);
    }, ms);
    if (unref) timer.unref();
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}
