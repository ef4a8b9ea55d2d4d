/** Reading integers the server returned, with the stored BSON type it computed for them. */
import type { Document } from "mongodb";
import { CorruptRecordError, StoreError } from "../../errors.js";
import { checkStoredTime } from "../../record.js";

const KIND = "mongodb";
/** The clock document's `_id`, as Juju wrote it. */
export const CLOCK_ID = "g";

/** The BSON types a stored integer may have: exact either way (see TIME_TYPES in store.ts). */
export const INTEGER_TYPES: readonly string[] = ["long", "int"];

/**
 * An integer as the driver decoded it: a number (defaults), a Long (beyond 2^53, or with
 * promoteLongs off), a bigint (useBigInt64) or an Int32 (promoteValues off), any of which
 * a caller's own client may have set. Undefined for anything else.
 */
export function exactInteger(value: unknown): bigint | undefined {
  if (typeof value === "bigint") return value;
  if (typeof value === "number") return Number.isInteger(value) ? BigInt(value) : undefined;
  const type = (value as { _bsontype?: unknown } | null)?._bsontype;
  return type === "Long" || type === "Int32" ? BigInt(String(value)) : undefined;
}

/** A value for a message: strings quoted and cut short. */
export function shown(value: unknown): string {
  return typeof value === "string" ? JSON.stringify(value.slice(0, 40)) : String(value);
}

/**
 * The `time` of a clock-like document (`{ time }`, with `timeType` computed by the server)
 * in namespace `ns`, checked: the clock record, or the stored maxStep.
 */
export function decodeTime(
  doc: Document,
  operation: string,
  ns: string,
  what: "clock" | "maxStep" = "clock",
): bigint {
  const { time, timeType } = doc;
  const record = what === "clock" ? undefined : "maxStep record";
  if (timeType === undefined) {
    throw new StoreError(
      KIND,
      operation,
      `the server answered without the projected field timeType, so the stored type of time in ${ns} is unknown`,
      { retryable: false },
    );
  }
  if (INTEGER_TYPES.includes(timeType)) {
    const exact = exactInteger(time);
    if (exact !== undefined) {
      if (!record || exact >= 0n) return checkStoredTime(exact, KIND, operation);
      throw new CorruptRecordError(KIND, operation, `time in ${ns} is negative (${exact})`, record);
    }
  }
  if (timeType === "missing" || time === undefined) {
    throw new CorruptRecordError(
      KIND,
      operation,
      `the ${what} document in ${ns} has no time field`,
      record,
    );
  }
  throw new CorruptRecordError(
    KIND,
    operation,
    `time in ${ns} is a BSON ${String(timeType)} (${shown(time)}), not an int64`,
    record,
  );
}
