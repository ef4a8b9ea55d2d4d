import parse from "parse-duration";
import { InvalidDurationError } from "./errors.js";
import { INT64_MAX } from "./time.js";

/**
 * A duration as the API accepts it: milliseconds (number), nanoseconds (bigint),
 * or a string with units such as "1.5s", "250ms", "1s1ns", "2m30s".
 */
export type DurationInput = number | bigint | string;

// One or more <number><unit> groups and nothing else. parse-duration does the
// arithmetic; this only refuses what it would silently accept ("5", "1s junk").
const STRICT = /^\s*(?:(?:\d+(?:\.\d*)?|\.\d+)(?:e[-+]?\d+)?\s*[a-zµμ]+\s*)+$/i;

/**
 * Converts a duration to exact nanoseconds. Throws InvalidDurationError for a negative,
 * NaN, infinite or beyond-int64 value, or a string that is not a duration.
 * `field` names the option in the message.
 */
export function toNanoseconds(input: DurationInput, field = "duration"): bigint {
  let ns: bigint;
  if (typeof input === "bigint") {
    ns = input;
  } else if (typeof input === "number") {
    if (!Number.isFinite(input)) throw invalid(field, input, "not a finite number");
    // Milliseconds with nanosecond resolution; rounding drops float noise (0.1 + 0.2).
    const scaled = Math.round(input * 1e6);
    if (Math.abs(scaled) >= 2 ** 63)
      throw invalid(field, input, "beyond the int64 nanosecond range");
    ns = BigInt(scaled);
  } else if (typeof input === "string") {
    if (input.trim() === "0") return 0n;
    if (input.trim().startsWith("-")) throw invalid(field, input, "negative");
    if (!STRICT.test(input))
      throw invalid(field, input, 'expected a number with a unit, e.g. "1.5s" or "250ms"');
    const parsed = parse(input, "ns");
    if (parsed === null || !Number.isFinite(parsed)) {
      throw invalid(field, input, "unknown unit; use ns, us, ms, s, m, h, d");
    }
    if (parsed >= 2 ** 63) throw invalid(field, input, "beyond the int64 nanosecond range");
    ns = BigInt(Math.round(parsed));
  } else {
    throw invalid(field, input, "expected milliseconds (number), nanoseconds (bigint) or a string");
  }
  if (ns < 0n) throw invalid(field, input, "negative");
  if (ns > INT64_MAX) throw invalid(field, input, "beyond the int64 nanosecond range");
  return ns;
}

function invalid(field: string, input: unknown, why: string): InvalidDurationError {
  const shown =
    typeof input === "string"
      ? JSON.stringify(input)
      : typeof input === "bigint"
        ? `${input}n`
        : String(input);
  return new InvalidDurationError(field, `invalid ${field} ${shown}: ${why}`);
}

/** A nanosecond count as a short human string: "1.5s", "250ms", "17ns". */
export function formatDuration(ns: bigint): string {
  const neg = ns < 0n;
  const abs = neg ? -ns : ns;
  const units: Array<[bigint, string]> = [
    [3_600_000_000_000n, "h"],
    [60_000_000_000n, "m"],
    [1_000_000_000n, "s"],
    [1_000_000n, "ms"],
    [1_000n, "µs"],
  ];
  for (const [size, name] of units) {
    if (abs >= size) {
      const whole = abs / size;
      const frac = ((abs % size) * 1000n) / size;
      const text =
        frac === 0n
          ? `${whole}`
          : `${whole}.${frac.toString().padStart(3, "0").replace(/0+$/, "")}`;
      return `${neg ? "-" : ""}${text}${name}`;
    }
  }
  return `${neg ? "-" : ""}${abs}ns`;
}
