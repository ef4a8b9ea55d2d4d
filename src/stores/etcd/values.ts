/** How the etcd store writes its values, and how it checks what it reads. */
import { CorruptRecordError, quote } from "../../errors.js";
import type { LeaseRecord, LeaseWrite } from "../../lease-store.js";
import { checkLease, checkWrite, describeValue, parseStoredDecimal } from "../../record.js";
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

/**
 * Where a lease's `token` is this text, the token is the key's mod_revision: the revision of
 * the txn that gave the record its token, which the value cannot hold (./leases.ts).
 */
export const TOKEN_IS_REVISION = "mod_revision";

/**
 * A lease's value: `{"holder","token","start","expiry","pins"}`, integers as decimal strings;
 * the token TOKEN_IS_REVISION where the write gives the record a new one.
 */
export function encodeLease(write: LeaseWrite, operation: string): string {
  checkWrite(write, KIND, operation);
  return JSON.stringify({
    holder: write.holder,
    token: write.newToken ? TOKEN_IS_REVISION : write.token.toString(),
    start: write.start.toString(),
    expiry: write.expiry.toString(),
    pins: write.pins,
  });
}

/**
 * A lease read back: `name` from its key, the version its mod_revision (and so the token,
 * where it is TOKEN_IS_REVISION). A value that is not a JSON object, or an integer that is
 * not a canonical decimal string, is corrupt.
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
  const revision = BigInt(kv.mod_revision);
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
      token: fields.token === TOKEN_IS_REVISION ? revision : int("token"),
      start: int("start"),
      expiry: int("expiry"),
      pins: fields.pins,
      version: revision,
    },
    KIND,
    operation,
  );
}
