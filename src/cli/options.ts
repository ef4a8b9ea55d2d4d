import { checkTimer, toNanoseconds } from "../duration.js";
import { ConfigError, InvalidDurationError, quote } from "../errors.js";

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

/** A count option (`--lease-series-soonest`): a whole number of `what`, named by its flag. */
export function countFlag(flag: string, text: string, what: string): number {
  if (/^\d{1,9}$/.test(text)) return Number(text);
  throw new ConfigError(flag, `${flag} must be a whole number of ${what}, not ${quote(text)}`);
}
