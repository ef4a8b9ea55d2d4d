import { createRequire } from "node:module";
import type * as Cockatiel from "cockatiel";
import type * as Etcd3 from "etcd3";

/**
 * The etcd3 client's fault handling, tuned for short per-call deadlines.
 *
 * The client's defaults retry a failed call three times and open a host's circuit breaker
 * for 5 s after three consecutive failures. With one absolute deadline per call, every
 * retry after the deadline fails at once, and those instant failures are charged to the
 * healthy members: after a leader kill all breakers opened and calls stalled for ~6 s.
 * So: retry only errors that leave time (a refused connection: try the next member, each
 * member once), never a passed deadline; and let an open breaker try again after one
 * deadline's worth of time.
 *
 * The policies come from the copy of `cockatiel` that `etcd3` itself loads, so the only
 * package to install is `etcd3`.
 */
export function etcdFaultHandling(
  etcd3: typeof Etcd3,
  hosts: number,
  timeoutMs: number,
): NonNullable<Etcd3.IOptions["faultHandling"]> {
  const c = createRequire(import.meta.resolve("etcd3"))("cockatiel") as typeof Cockatiel;
  const retriable = (err: Error) =>
    etcd3.isRecoverableError(err) && !(err instanceof etcd3.GRPCDeadlineExceededError);
  return {
    global: c.retry(c.handleWhen(retriable), { maxAttempts: hosts }),
    host: () =>
      c.circuitBreaker(c.handleWhen(etcd3.isRecoverableError), {
        halfOpenAfter: timeoutMs,
        breaker: new c.ConsecutiveBreaker(3),
      }),
    // etcd3 calls next() on this before its first use, so it wants a factory (as its own
    // default is); its type says otherwise.
    watchBackoff: new c.ExponentialBackoff({
      initialDelay: 50,
      maxDelay: Math.max(timeoutMs, 1000),
    }) as unknown as Cockatiel.IBackoff<unknown>,
  };
}
