/** Aborted by the first SIGINT or SIGTERM; disposing it removes both handlers. */
export interface SignalStop extends Disposable {
  readonly signal: AbortSignal;
}

/** Stops a long-running command on SIGINT or SIGTERM: `using stop = stopOnSignals()`. */
export function stopOnSignals(): SignalStop {
  const stop = new AbortController();
  const onSignal = () => stop.abort();
  process.once("SIGINT", onSignal);
  process.once("SIGTERM", onSignal);
  return {
    signal: stop.signal,
    [Symbol.dispose]() {
      process.off("SIGINT", onSignal);
      process.off("SIGTERM", onSignal);
    },
  };
}
