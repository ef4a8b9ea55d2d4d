import {
  ConsecutiveBreaker,
  circuitBreaker,
  ExponentialBackoff,
  handleWhen,
  type IBackoff,
  retry,
} from "cockatiel";
import { GRPCDeadlineExceededError, type IOptions, isRecoverableError } from "etcd3";

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
 */
export function etcdFaultHandling(
  hosts: number,
  timeoutMs: number,
): NonNullable<IOptions["faultHandling"]> {
  const retriable = (err: Error) =>
    isRecoverableError(err) && !(err instanceof GRPCDeadlineExceededError);
  return {
    global: retry(handleWhen(retriable), { maxAttempts: hosts }),
    host: () =>
      circuitBreaker(handleWhen(isRecoverableError), {
        halfOpenAfter: timeoutMs,
        breaker: new ConsecutiveBreaker(3),
      }),
    // etcd3 calls next() on this before its first use, so it wants a factory (as its own
    // default is); its type says otherwise.
    watchBackoff: new ExponentialBackoff({
      initialDelay: 50,
      maxDelay: Math.max(timeoutMs, 1000),
    }) as unknown as IBackoff<unknown>,
  };
}
