import parse from "parse-duration";
import { InvalidDurationError, quote } from "./errors.js";
import { formatDuration, INT64_MAX } from "./time.js";

export { formatDuration };

/**
 * A duration as the API accepts it: milliseconds (number), nanoseconds (bigint),
 * or a string with units such as "1.5s", "250ms", "1s1ns", "2m30s".
 */
export type DurationInput = number | bigint | string;

/** The units accepted in strings (a subset of what parse-duration knows, on purpose). */
const UNITS = new Set(["ns", "us", "µs", "μs", "ms", "s", "m", "h", "d"]);

// parse-duration computes in floating point: below 2^40 ns (about 18 minutes) a result
// off an integer by more than float noise means the text asked for a fraction of a ns.
const FRACTION_CHECK_BELOW = 2 ** 40;

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
    // Milliseconds with nanosecond resolution. Rounding drops float noise (0.1 + 0.2 is
    // 300000.00000000006 ns); anything more than noise asked for a fraction of a ns.
    const exact = input * 1e6;
    const scaled = Math.round(exact);
    if (Math.abs(scaled) >= 2 ** 63)
      throw invalid(field, input, "beyond the int64 nanosecond range");
    if (Math.abs(exact - scaled) > Math.max(1e-6, Math.abs(exact) * 1e-15))
      throw invalid(field, input, "finer than a nanosecond");
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
 * One or more <decimal><unit> groups. The grammar and the units are checked here, so that
 * "5", "1s junk" or "1y" is an error rather than a guess; parse-duration does the sum.
 * It works in floating point: exact to the nanosecond up to about 13 days (2^50 ns), and within a
 * few microseconds up to int64's limit. Pass a bigint for exact nanoseconds beyond that.
 */
function parseDuration(input: string, field: string): bigint {
  const text = input.trim();
  if (text === "0") return 0n;
  if (text.startsWith("-")) throw invalid(field, input, "negative");
  if (/^(\d+(\.\d*)?|\.\d+)e[+-]?\d/i.test(text)) {
    throw invalid(field, input, 'exponents are not read; write the unit, e.g. "100ns" or "1.5s"');
  }
  const single = singleGroup(text, field, input);
  if (single !== undefined) return single;
  const group = /(\d+(?:\.\d+)?|\.\d+)?\s*([^\d\s.]*)\s*/y;
  for (let at = 0; at < text.length || at === 0; ) {
    group.lastIndex = at;
    const [all = "", number, unit = ""] = group.exec(text) ?? [];
    if (number === undefined || unit === "") {
      throw invalid(field, input, 'expected a number with a unit, e.g. "1.5s" or "250ms"');
    }
    if (!UNITS.has(unit)) {
      throw invalid(field, input, `unknown unit ${quote(unit, 20)}; use ns, us, ms, s, m, h, d`);
    }
    at += all.length;
  }
  const ns = parse(text.replaceAll("μ", "µ"), "ns"); // Greek mu → micro sign
  if (ns === null || Number.isNaN(ns)) throw invalid(field, input, "not a duration");
  if (ns >= 2 ** 63) throw invalid(field, input, "beyond the int64 nanosecond range");
  const whole = Math.round(ns);
  if (ns < FRACTION_CHECK_BELOW && Math.abs(ns - whole) > 1e-3) {
    throw invalid(field, input, "finer than a nanosecond");
  }
  return BigInt(whole);
}

const UNIT_NS: Record<string, bigint> = {
  ns: 1n,
  us: 1_000n,
  µs: 1_000n,
  μs: 1_000n,
  ms: 1_000_000n,
  s: 1_000_000_000n,
  m: 60_000_000_000n,
  h: 3_600_000_000_000n,
  d: 86_400_000_000_000n,
};

/**
 * One `<decimal><unit>` group ("9223372036854775807ns", "1.5s"), computed exactly, with
 * no floating point; undefined for anything else, which parse-duration sums.
 */
function singleGroup(text: string, field: string, input: string): bigint | undefined {
  const m = /^(\d*)(?:\.(\d+))?\s*([a-zµμ]+)$/.exec(text);
  const unit = m && Object.hasOwn(UNIT_NS, m[3] as string) ? UNIT_NS[m[3] as string] : undefined;
  if (!m || unit === undefined || (m[1] === "" && m[2] === undefined)) return undefined;
  const whole = BigInt(m[1] || "0") * unit;
  const digits = m[2] ?? "";
  const scale = 10n ** BigInt(digits.length);
  const fraction = BigInt(digits || "0") * unit;
  if (fraction % scale !== 0n) throw invalid(field, input, "finer than a nanosecond");
  return whole + fraction / scale;
}

function invalid(field: string, input: unknown, why: string): InvalidDurationError {
  const shown =
    typeof input === "string"
      ? quote(input)
      : typeof input === "bigint"
        ? `${input}n`
        : String(input);
  return new InvalidDurationError(field, `invalid ${field} ${shown}: ${why}`);
}

/** Node's timers hold at most 2^31 − 1 ms; a longer wait would fire at once. */
export const MAX_TIMER_MS = 2_147_483_647;
export const MAX_TIMER_NS = BigInt(MAX_TIMER_MS) * 1_000_000n;

/**
 * Refuses a duration too long for a timer (InvalidDurationError naming the field), shown as
 * the caller wrote it when `input` is given ("25d", not its canonical "600h").
 */
export function checkTimer(field: string, ns: bigint, input?: string): bigint {
  if (ns > MAX_TIMER_NS) {
    const shown = input === undefined ? formatDuration(ns) : quote(input);
    throw new InvalidDurationError(
      field,
      `${field} ${shown} is longer than Node's timers allow (about 24.8 days)`,
    );
  }
  return ns;
}
