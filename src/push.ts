import { sleep } from "./sleep.js";

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

/**
 * For stores whose change notices carry no value to trust (a file event, a change-stream
 * event): each call of the returned `wake` reads the clock and pushes a time greater than
 * the last one pushed; wakes during a read make one more read, not one each.
 * `retryMs`: while a read finds nothing new, read again after each of these delays, for
 * notices that can come before the change is visible. The promise `wake` returns rejects
 * with a failed read; it resolves at once when the signal aborts.
 */
export function readOnWake(
  read: () => Promise<bigint | undefined>,
  push: (time: bigint) => void,
  options: { signal: AbortSignal; retryMs?: readonly number[] },
): () => Promise<void> {
  const { signal, retryMs = [] } = options;
  let last: bigint | undefined;
  let running: Promise<void> | undefined;
  let again = false;
  const run = async () => {
    for (let attempt = 0; !signal.aborted; attempt++) {
      if (again) {
        again = false;
        attempt = 0;
      } else if (attempt > retryMs.length) {
        return;
      }
      if (attempt > 0 && !(await sleep(retryMs[attempt - 1] as number, signal))) return;
      const time = await read();
      if (time !== undefined && (last === undefined || time > last)) {
        last = time;
        push(time);
        if (!again) return;
      }
    }
  };
  return () => {
    if (running) {
      again = true;
      return running;
    }
    running = run().finally(() => {
      running = undefined;
    });
    return running;
  };
}

/**
 * A watch fed by two sources, the store's notices and a catch-up read made at each
 * (re)subscription (so that a change made while it was being set up, or while it was
 * disconnected, is not lost). `offer` passes on a time unless it is older than one already
 * passed on: a catch-up read may answer after a newer notice. A failed catch-up read is
 * left to the next change to mend.
 */
export function catchingUp(
  read: () => Promise<bigint | undefined>,
  push: (time: bigint) => void,
): { offer: (time: bigint) => void; catchUp: () => Promise<void> } {
  let highest = -1n;
  const offer = (time: bigint) => {
    if (time < highest) return;
    highest = time;
    push(time);
  };
  const catchUp = () =>
    read().then(
      (time) => {
        if (time !== undefined) offer(time);
      },
      () => {},
    );
  return { offer, catchUp };
}
