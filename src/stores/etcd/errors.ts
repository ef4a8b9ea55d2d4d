/** Turning the etcd3 client's errors into messages that say what to do. */
import { safeMessage } from "../../errors.js";

/** One line for an etcd error, with a hint where one helps, and whether a retry may help. */
export function explainEtcdError(
  err: unknown,
  where: string,
  timeoutMs: number,
  secrets: readonly string[],
): { message: string; retryable: boolean } {
  const text = safeMessage(err, secrets);
  if (/DEADLINE_EXCEEDED|deadline exceeded/i.test(text))
    return { message: `no answer from ${where} within ${timeoutMs} ms (${text})`, retryable: true };
  if (/UNAVAILABLE|ECONNREFUSED|No connection established|circuit breaker is open/i.test(text))
    return {
      message: `cannot reach ${where} (${text}); is it running, and does it have a leader?`,
      retryable: true,
    };
  if (/authentication failed|invalid user ID or password|user name is empty/i.test(text))
    return { message: `${text}: check the user and password in the etcd URL`, retryable: false };
  if (/permission denied/i.test(text))
    return {
      message: `${text}: the etcd user needs read and write access to the clock key`,
      retryable: false,
    };
  return { message: text, retryable: true };
}
