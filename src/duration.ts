import { InvalidDurationError } from "./errors.js";
import { INT64_MAX } from "./time.js";

/**
 * A duration as the API accepts it: milliseconds (number), nanoseconds (bigint),
 * or a string with units such as "1.5s", "250ms", "1s1ns", "2m30s".
 */
export type DurationInput = number | bigint | string;

const UNITS: ReadonlyMap<string, bigint> = new Map([
  ["ns", 1n],
  ["us", 1_000n],
  ["µs", 1_000n], // micro sign
  ["μs", 1_000n], // Greek mu
  ["ms", 1_000_000n],
  ["s", 1_000_000_000n],
  ["m", 60_000_000_000n],
  ["h", 3_600_000_000_000n],
  ["d", 86_400_000_000_000n],
]);

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
    ns = parseDuration(input, field);
  } else {
    throw invalid(field, input, "expected milliseconds (number), nanoseconds (bigint) or a string");
  }
  if (ns < 0n) throw invalid(field, input, "negative");
  if (ns > INT64_MAX) throw invalid(field, input, "beyond the int64 nanosecond range");
  return ns;
}

/**
 * One or more <decimal><unit> groups, in exact integer arithmetic: a float would lose
 * nanoseconds beyond 2^53 ns (about 104 days).
 */
function parseDuration(input: string, field: string): bigint {
  const text = input.trim();
  if (text === "0") return 0n;
  if (text.startsWith("-")) throw invalid(field, input, "negative");
  const group = /(\d*)(?:\.(\d*))?\s*([^\d\s.]*)\s*/y;
  let total = 0n;
  for (let at = 0; at < text.length || at === 0; ) {
    group.lastIndex = at;
    const [all = "", whole = "", fraction = "", unit = ""] = group.exec(text) ?? [];
    if (whole + fraction === "" || unit === "") {
      throw invalid(field, input, 'expected a number with a unit, e.g. "1.5s" or "250ms"');
    }
    const size = UNITS.get(unit);
    if (size === undefined) {
      throw invalid(
        field,
        input,
        `unknown unit ${JSON.stringify(unit)}; use ns, us, ms, s, m, h, d`,
      );
    }
    const scale = 10n ** BigInt(fraction.length);
    const scaled = BigInt(whole + fraction || "0") * size;
    if (scaled % scale !== 0n) throw invalid(field, input, "finer than a nanosecond");
    total += scaled / scale;
    if (total > INT64_MAX) throw invalid(field, input, "beyond the int64 nanosecond range");
    at += all.length;
  }
  return total;
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
