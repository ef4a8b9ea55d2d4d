import { CorruptRecordError, quote, StoreError } from "./errors.js";
import type { LeaseFields, LeaseRecord } from "./lease-store.js";
import { INT64_MAX } from "./time.js";

/** Which stored integer a message is about: the clock's time, or the cluster's maxStep. */
export interface StoredInteger {
  readonly field: string;
  readonly record: string;
}
export const CLOCK_TIME: StoredInteger = { field: "time", record: "clock record" };
export const MAX_STEP: StoredInteger = { field: "maxStep", record: "maxStep record" };

/**
 * Checks a stored value that a store decoded as an integer. Shared by every store so
 * that "corrupt" means the same thing everywhere.
 */
export function checkStoredTime(
  value: bigint,
  kind: string,
  operation: string,
  what = CLOCK_TIME,
): bigint {
  const { field, record } = what;
  if (value < 0n)
    throw new CorruptRecordError(kind, operation, `${field} is negative (${value})`, record);
  if (value > INT64_MAX)
    throw new CorruptRecordError(kind, operation, `${field} ${value} is beyond int64`, record);
  return value;
}

/** A stored value of a type that cannot be a nanosecond count. */
export function wrongType(
  kind: string,
  operation: string,
  value: unknown,
  what = CLOCK_TIME,
): CorruptRecordError {
  const detail = `${what.field} is ${describeValue(value)}, not an integer`;
  return new CorruptRecordError(kind, operation, detail, what.record);
}

/** Parses a decimal int64 string (etcd values, PostgreSQL text results) strictly. */
export function parseStoredDecimal(
  text: string,
  kind: string,
  operation: string,
  what = CLOCK_TIME,
): bigint {
  if (!/^-?\d{1,20}$/.test(text)) throw wrongType(kind, operation, text, what);
  return checkStoredTime(BigInt(text), kind, operation, what);
}

/** A stored value for a message: its type, and a short, escaped glimpse of it. */
export function describeValue(value: unknown): string {
  if (value instanceof Uint8Array) {
    const hex = Buffer.from(value.subarray(0, 16)).toString("hex");
    return `a blob of ${value.length} bytes (${hex}${value.length > 16 ? "…" : ""})`;
  }
  if (typeof value === "string") return `a string (${quote(value, 40)})`;
  return `a ${typeof value} (${quote(String(value), 40)})`;
}

/** A lease record as a store decoded it, before checking: any field may be of any type. */
export interface RawLease {
  name: unknown;
  holder: unknown;
  token: unknown;
  start: unknown;
  expiry: unknown;
  pins: unknown;
  version: unknown;
}

/**
 * Checks a lease record a store decoded. Integers may come as bigint or as a safe integer
 * number; anything else (a negative time, a holder that is not a string, pins that are not
 * a list of strings) is a CorruptRecordError naming the lease.
 */
export function checkLease(raw: RawLease, kind: string, operation: string): LeaseRecord {
  const corrupt = (detail: string) =>
    new CorruptRecordError(kind, operation, detail, `lease record ${quote(String(raw.name), 60)}`);
  if (typeof raw.name !== "string") throw corrupt(`name is ${describeValue(raw.name)}`);
  if (typeof raw.holder !== "string") throw corrupt(`holder is ${describeValue(raw.holder)}`);
  const int = (field: string, value: unknown): bigint => {
    const v =
      typeof value === "bigint"
        ? value
        : typeof value === "number" && Number.isSafeInteger(value)
          ? BigInt(value)
          : undefined;
    if (v === undefined) throw corrupt(`${field} is ${describeValue(value)}, not an integer`);
    if (v < 0n || v > INT64_MAX) throw corrupt(`${field} ${v} is not a non-negative int64`);
    return v;
  };
  const pins = raw.pins;
  if (!Array.isArray(pins) || !pins.every((p) => typeof p === "string"))
    throw corrupt(`pins are ${describeValue(pins)}, not a list of names`);
  const record: LeaseRecord = {
    name: raw.name,
    holder: raw.holder,
    token: int("token", raw.token),
    start: int("start", raw.start),
    expiry: int("expiry", raw.expiry),
    pins: Object.freeze([...pins]),
    version: int("version", raw.version),
  };
  if (record.start > record.expiry)
    throw corrupt(`start ${record.start} is after expiry ${record.expiry}`);
  return Object.freeze(record);
}

/**
 * Refuses to write a lease whose integers are not non-negative int64s (Leases never makes
 * one; a caller of the seam might): a StoreError that no retry mends, and nothing written.
 */
export function checkWrite(lease: LeaseFields, kind: string, operation: string): void {
  for (const field of ["token", "start", "expiry"] as const) {
    const v = lease[field];
    if (v < 0n || v > INT64_MAX)
      throw new StoreError(kind, operation, `${field} ${v} is not a non-negative int64`, {
        retryable: false,
      });
  }
}
