/**
 * Global time: an exact int64 count of nanoseconds since the global epoch,
 * which is the Unix epoch. A bigint everywhere; `Date` would lose the nanoseconds.
 */

export type GlobalTime = bigint;

export const INT64_MAX = (1n << 63n) - 1n;

const NS_PER_MS = 1_000_000n;

/** The global epoch: 0 ns, the Unix epoch. A missing clock record reads as this. */
export function globalEpoch(): GlobalTime {
  return 0n;
}

/** The millisecond-precision `Date` of a global time (nanoseconds are truncated). */
export function toDate(time: GlobalTime): Date {
  return new Date(Number(time / NS_PER_MS));
}

/** RFC 3339 with all nine fractional digits, e.g. `1970-01-01T00:00:02.000000002Z`. */
export function formatGlobalTime(time: GlobalTime): string {
  if (time < 0n || time > INT64_MAX) {
    throw new RangeError(`${time} is not a global time (0 to ${INT64_MAX} ns)`);
  }
  const iso = toDate(time).toISOString(); // yyyy-mm-ddThh:mm:ss.mmmZ
  const fraction = (time % 1_000_000_000n).toString().padStart(9, "0");
  return `${iso.slice(0, 19)}.${fraction}Z`;
}

/** The later of two global times (Math.max takes no bigints). */
export function later(a: GlobalTime, b: GlobalTime): GlobalTime {
  if (a > b) return a;
  return b;
}

/** The earlier of two global times. */
export function earlier(a: GlobalTime, b: GlobalTime): GlobalTime {
  if (a < b) return a;
  return b;
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
