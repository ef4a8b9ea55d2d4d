/**
 * Turns a callback source into an async iterator that keeps only the latest value:
 * a slow consumer sees the newest time, never a backlog. Used by every store's watch.
 *
 * `subscribe` starts the source and returns its stop function. The iterator ends when
 * `signal` aborts (cleanly, no error) or when the source calls `fail`.
 */
export async function* latestValues<T>(
  signal: AbortSignal,
  subscribe: (
    push: (value: T) => void,
    fail: (err: unknown) => void,
  ) => (() => void) | Promise<() => void>,
): AsyncGenerator<T, void, undefined> {
  let pending: { value: T } | undefined;
  let failure: { err: unknown } | undefined;
  let wake: (() => void) | undefined;
  const notify = () => {
    const w = wake;
    wake = undefined;
    w?.();
  };
  const onAbort = () => notify();
  signal.addEventListener("abort", onAbort, { once: true });
  let stop: (() => void) | undefined;
  try {
    if (signal.aborted) return;
    stop = await subscribe(
      (value) => {
        pending = { value };
        notify();
      },
      (err) => {
        failure ??= { err };
        notify();
      },
    );
    for (;;) {
      // A value that arrived before the abort is still delivered (e.g. a final status).
      if (pending) {
        const { value } = pending;
        pending = undefined;
        yield value;
        continue;
      }
      if (signal.aborted) return;
      if (failure) throw failure.err;
      await new Promise<void>((resolve) => {
        wake = resolve;
      });
    }
  } finally {
    signal.removeEventListener("abort", onAbort);
    stop?.();
  }
}
