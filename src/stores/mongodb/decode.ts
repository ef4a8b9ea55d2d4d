/**
 * Reading what the server returned: integers with the stored BSON type it computed for
 * them, lease documents, and the range of names under a prefix; and int64s to write.
 */
import { type Document, Long } from "mongodb";
import { CorruptRecordError, quote, StoreError } from "../../errors.js";
import type { LeaseRecord } from "../../lease-store.js";
import { CLOCK_TIME, checkLease, checkStoredTime, MAX_STEP } from "../../record.js";
import { INT64_MAX } from "../../time.js";

const KIND = "mongodb";
/** The clock document's `_id`, as Juju wrote it. */
export const CLOCK_ID = "g";

/** A document of the clock's or the leases' collection: every `_id` is a string. */
export interface NamedDocument extends Document {
  _id: string;
}

/** The integer fields of a lease document, each read with its stored type (`tokenType`…). */
export const LEASE_INTEGERS = ["token", "start", "expiry", "version"] as const;

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

/** The integer fields of the clock document: Juju's `time`, and ours beside it. */
export type ClockField = "time" | "maxStep" | "lastToken";

/** What a corrupt field makes corrupt, for messages; `time` alone must be there. */
const RECORDS: Record<ClockField, string> = {
  time: CLOCK_TIME.record,
  maxStep: MAX_STEP.record,
  lastToken: "token counter",
};

/**
 * An integer field of the clock document, with its stored type (`timeType`…) computed by
 * the server, checked; `ns` is the clock's namespace, for messages. A missing `maxStep` or
 * `lastToken` is undefined (none stored); a missing `time` is a corrupt clock record.
 */
export function decodeField(
  doc: Document,
  field: ClockField,
  operation: string,
  ns: string,
): bigint | undefined {
  const value = doc[field];
  const type = doc[`${field}Type`];
  const record = RECORDS[field];
  if (type === undefined) {
    throw new StoreError(
      KIND,
      operation,
      `the server answered without the projected field ${field}Type, so the stored type of ${field} in ${ns} is unknown`,
      { retryable: false },
    );
  }
  if (INTEGER_TYPES.includes(type)) {
    const exact = exactInteger(value);
    if (exact !== undefined) return checkStoredTime(exact, KIND, operation, { field, record });
  }
  if (type === "missing" || value === undefined) {
    if (field !== "time") return undefined;
    throw new CorruptRecordError(
      KIND,
      operation,
      `the clock document in ${ns} has no time field`,
      record,
    );
  }
  throw new CorruptRecordError(
    KIND,
    operation,
    `${field} in ${ns} is a BSON ${String(type)} (${shown(value)}), not an int64`,
    record,
  );
}

/** The clock document's `time`, checked (see decodeField). */
export function decodeTime(doc: Document, operation: string, ns: string): bigint {
  return decodeField(doc, "time", operation, ns) as bigint;
}

/**
 * A lease document the server returned with the stored type of each integer. Only an int64
 * (or an int32, as exact) is an integer here: a double 5.0 decodes to the number 5, which
 * checkLease alone could not tell from a Long 5.
 */
export function decodeLease(doc: Document, operation: string): LeaseRecord {
  const int = (field: (typeof LEASE_INTEGERS)[number]) => {
    const type = doc[`${field}Type`];
    if (type === undefined) {
      throw new StoreError(
        KIND,
        operation,
        `the server answered without the projected field ${field}Type`,
        { retryable: false },
      );
    }
    if (INTEGER_TYPES.includes(type)) return exactInteger(doc[field]);
    const detail =
      type === "missing"
        ? `${field} is missing`
        : `${field} is a BSON ${type} (${shown(doc[field])}), not an int64`;
    throw new CorruptRecordError(
      KIND,
      operation,
      detail,
      `lease record ${quote(String(doc._id), 60)}`,
    );
  };
  return checkLease(
    {
      name: doc._id,
      holder: doc.holder,
      token: int("token"),
      start: int("start"),
      expiry: int("expiry"),
      pins: doc.pins,
      version: int("version"),
    },
    KIND,
    operation,
  );
}

/**
 * The strings that start with `prefix`, as a range: from the prefix to the prefix with its
 * last code point one higher (UTF-8's byte order is code point order, and the default
 * collation compares bytes). An empty prefix is every string (type bracketing).
 */
export function prefixRange(prefix: string): Document {
  const points = [...prefix];
  while (points.length > 0) {
    const last = (points.pop() as string).codePointAt(0) as number;
    if (last >= 0x10ffff) continue;
    const next = last + 1 === 0xd800 ? 0xe000 : last + 1; // surrogates are not code points
    return { $gte: prefix, $lt: points.join("") + String.fromCodePoint(next) };
  }
  return { $gte: prefix };
}

/** A value to write as an int64, refused (nothing written) where it is not a non-negative one. */
export function int64(value: bigint, field: string, operation: string): Long {
  if (value < 0n || value > INT64_MAX) {
    throw new StoreError(KIND, operation, `${field} ${value} is not a non-negative int64`, {
      retryable: false,
    });
  }
  return Long.fromBigInt(value);
}
