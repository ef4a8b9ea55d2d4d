import { checkTimer, toNanoseconds } from "../duration.js";
import { InvalidDurationError, quote } from "../errors.js";

/**
 * A duration option in nanoseconds, validated with the flag's own name in every message
 * (`--poll`, `--window`): greater than 0, and short enough for Node's timers when `timer`.
 */
export function durationFlag(flag: string, text: string, { timer = true } = {}): bigint {
  const ns = toNanoseconds(text, flag);
  if (ns <= 0n)
    throw new InvalidDurationError(flag, `invalid ${flag} ${quote(text)}: must be greater than 0`);
  return timer ? checkTimer(flag, ns, text) : ns;
}
