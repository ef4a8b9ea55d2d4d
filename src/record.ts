import { CorruptRecordError } from "./errors.js";
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
  const shown = typeof value === "string" ? JSON.stringify(value.slice(0, 40)) : String(value);
  return new CorruptRecordError(
    kind,
    operation,
    `time is a ${typeof value} (${shown}), not an integer`,
  );
}

/** Parses a decimal int64 string (etcd values, PostgreSQL text results) strictly. */
export function parseStoredDecimal(text: string, kind: string, operation: string): bigint {
  if (!/^-?\d{1,20}$/.test(text)) throw wrongType(kind, operation, text);
  return checkStoredTime(BigInt(text), kind, operation);
}
