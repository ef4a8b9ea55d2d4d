/** Reading the MongoDB driver's errors, and bounding its calls by an AbortSignal. */
import { describe, redact } from "../errors.js";

/** A driver error as one line that says what to do, with any password masked. */
export function explain(err: unknown): string {
  const name = err instanceof Error ? err.name : "";
  const text = redact(describe(err));
  if (name === "MongoServerSelectionError") {
    return `no MongoDB server answered in time (${text}); check the URL, the network and that mongod runs, or raise the timeout option`;
  }
  if (name === "MongoNetworkTimeoutError") {
    return `no answer in time (${text}); the outcome is unknown`;
  }
  const code = codeOf(err);
  return code === undefined ? text : `${text} (code ${code})`;
}

export function codeOf(err: unknown): number | undefined {
  const code = (err as { code?: unknown })?.code;
  return typeof code === "number" ? code : undefined;
}

/**
 * Settles with `work`, or rejects with the signal's reason once `signal` aborts. The
 * driver cannot cancel a write in flight: it may still be applied, which is why an
 * Updater treats an aborted advance as an outcome it cannot know.
 */
export function raceAbort<T>(work: Promise<T>, signal: AbortSignal | undefined): Promise<T> {
  if (!signal) return work;
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(signal.reason);
    signal.addEventListener("abort", onAbort, { once: true });
    work.then(resolve, reject).finally(() => signal.removeEventListener("abort", onAbort));
  });
}
