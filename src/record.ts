import { CorruptRecordError, quote } from "./errors.js";
import { INT64_MAX } from "./time.js";

/**
 * Checks a stored value that a store decoded as an integer. Shared by every store so
 * that "corrupt" means the same thing everywhere.
 */
export function checkStoredTime(value: bigint, kind: string, operation: string): bigint {
  if (value < 0n) throw new CorruptRecordError(kind, operation, `time is negative (${value})`);
  if (value > INT64_MAX)
    throw new CorruptRecordError(kind, operation, `time ${value} is beyond int64`);
  return value;
}

/** A stored value of a type that cannot be a nanosecond count. */
export function wrongType(kind: string, operation: string, value: unknown): CorruptRecordError {
  return new CorruptRecordError(kind, operation, `time is ${describeValue(value)}, not an integer`);
}

/** Parses a decimal int64 string (etcd values, PostgreSQL text results) strictly. */
export function parseStoredDecimal(text: string, kind: string, operation: string): bigint {
  if (!/^-?\d{1,20}$/.test(text)) throw wrongType(kind, operation, text);
  return checkStoredTime(BigInt(text), kind, operation);
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
