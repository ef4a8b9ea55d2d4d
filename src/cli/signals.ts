/** Aborted by the first SIGINT or SIGTERM; disposing it removes both handlers. */
export interface SignalStop extends Disposable {
  readonly signal: AbortSignal;
}

/**
 * Stops a long-running command on SIGINT or SIGTERM, or when `also` aborts (stdout gone):
 * `using stop = stopOnSignals(io.closed)`.
 */
export function stopOnSignals(also?: AbortSignal): SignalStop {
  const stop = new AbortController();
  const onSignal = () => stop.abort();
  process.once("SIGINT", onSignal);
  process.once("SIGTERM", onSignal);
  if (also?.aborted) onSignal();
  else also?.addEventListener("abort", onSignal, { once: true });
  return {
    signal: stop.signal,
    [Symbol.dispose]() {
      process.off("SIGINT", onSignal);
      process.off("SIGTERM", onSignal);
      also?.removeEventListener("abort", onSignal);
    },
  };
}
