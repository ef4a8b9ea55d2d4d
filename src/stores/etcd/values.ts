/** How the etcd store writes its values, and how it checks what it reads. */
import { CorruptRecordError, quote, StoreError } from "../../errors.js";
import type { LeaseFields, LeaseRecord } from "../../lease-store.js";
import { checkLease, describeValue, parseStoredDecimal } from "../../record.js";
import { INT64_MAX } from "../../time.js";
import type { EtcdKeyValue } from "./client.js";

const KIND = "etcd";
/** The canonical decimal of a non-negative int64 has no sign and no leading zero. */
const CANONICAL = /^(?:0|[1-9]\d{0,18})$/;

/** An etcd value must be the canonical decimal of a non-negative int64 ("7", never "007"). */
export function decodeTime(value: Buffer, operation: string): bigint {
  const text = value.toString("utf8");
  const time = parseStoredDecimal(text, KIND, operation);
  if (time.toString() !== text) {
    throw new CorruptRecordError(
      KIND,
      operation,
      `value ${quote(text, 40)} is not a canonical decimal integer`,
    );
  }
  return time;
}

/** The stored maxStep, as canonical as the clock's value. */
export function decodeMaxStep(value: Buffer, operation: string): bigint {
  const text = value.toString("utf8");
  if (CANONICAL.test(text) && BigInt(text) <= INT64_MAX) return BigInt(text);
  throw new CorruptRecordError(
    KIND,
    operation,
    `value ${quote(text, 40)} is not the canonical decimal of a non-negative int64`,
    "maxStep record",
  );
}

/** A lease's value: `{"holder","token","start","expiry","pins"}`, integers as decimal strings. */
export function encodeLease(lease: LeaseFields, operation: string): string {
  for (const field of ["token", "start", "expiry"] as const) {
    const v = lease[field];
    if (v < 0n || v > INT64_MAX)
      throw new StoreError(KIND, operation, `${field} ${v} is not a non-negative int64`, {
        retryable: false,
      });
  }
  return JSON.stringify({
    holder: lease.holder,
    token: lease.token.toString(),
    start: lease.start.toString(),
    expiry: lease.expiry.toString(),
    pins: lease.pins,
  });
}

/**
 * A lease read back: `name` from its key, the version its mod_revision. A value that is not
 * a JSON object, or an integer that is not a canonical decimal string, is corrupt.
 */
export function decodeLease(name: string, kv: EtcdKeyValue, operation: string): LeaseRecord {
  const corrupt = (detail: string) =>
    new CorruptRecordError(KIND, operation, detail, `lease record ${quote(name, 60)}`);
  const text = kv.value.toString("utf8");
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch {
    throw corrupt(`value ${quote(text, 40)} is not JSON`);
  }
  if (raw === null || typeof raw !== "object" || Array.isArray(raw))
    throw corrupt(`value ${quote(text, 40)} is not a JSON object`);
  const fields = raw as Record<string, unknown>;
  const int = (field: string): unknown => {
    const v = fields[field];
    if (typeof v !== "string")
      throw corrupt(`${field} is ${describeValue(v)}, not a decimal string`);
    // Anything else stays a string, which checkLease reports as not an integer.
    return CANONICAL.test(v) ? BigInt(v) : v;
  };
  return checkLease(
    {
      name,
      holder: fields.holder,
      token: int("token"),
      start: int("start"),
      expiry: int("expiry"),
      pins: fields.pins,
      version: BigInt(kv.mod_revision),
    },
    KIND,
    operation,
  );
}
