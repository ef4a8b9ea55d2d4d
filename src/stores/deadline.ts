/**
 * Helpers shared by the network stores (postgres, etcd): bounding a call by a caller's
 * AbortSignal, and making a driver's error message safe to show.
 */
import { describe, redact } from "../errors.js";

/**
 * Settles with `work`, or rejects with the signal's reason as soon as `signal` aborts.
 * The work itself may go on; callers treat an abort like any failure of unknown outcome.
 */
export function abortable<T>(work: Promise<T>, signal: AbortSignal | undefined): Promise<T> {
  if (!signal) return work;
  if (signal.aborted) {
    work.catch(() => {});
    return Promise.reject(signal.reason);
  }
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(signal.reason);
    signal.addEventListener("abort", onAbort, { once: true });
    work.then(
      (value) => {
        signal.removeEventListener("abort", onAbort);
        resolve(value);
      },
      (err) => {
        signal.removeEventListener("abort", onAbort);
        reject(err);
      },
    );
  });
}

/**
 * One line for an error from a driver, with any URL password masked and any known
 * secret (a password given apart from a URL) replaced too.
 */
export function safeMessage(err: unknown, secrets: readonly string[] = []): string {
  let text = redact(describe(err));
  for (const secret of secrets) {
    if (secret.length >= 3) text = text.split(secret).join("***");
  }
  return text;
}
