/**
 * The answer to a lease read in the SQL stores (SQLite, PostgreSQL): one statement whose
 * rows each carry the clock and maxStep (scalar subqueries), and a lease's columns where
 * the LEFT JOIN matched one. Each store says how its driver hands back the values.
 */
import type { LeaseContext, LeaseRecord } from "../lease-store.js";
import { CLOCK_TIME, checkLease, MAX_STEP, type StoredInteger } from "../record.js";

export type Row = Record<string, unknown>;

export interface RowDecoding {
  /** The store kind, for errors. */
  readonly kind: string;
  /** The clock's time or maxStep as stored; undefined for NULL; `what` names it in errors. */
  stored(value: unknown, operation: string, what: StoredInteger): bigint | undefined;
  /** A lease's integer column, a bigint where it is one; anything else left for checkLease. */
  integer(value: unknown): unknown;
  /** The pins column; anything that is not a list left for checkLease. */
  pins(value: unknown): unknown;
}

/** The clock and maxStep (of the first row: every row has the same), and the rows' leases. */
export function leaseRows(
  rows: readonly Row[],
  operation: string,
  d: RowDecoding,
): LeaseContext & { leases: LeaseRecord[] } {
  const first = rows[0];
  const leases: LeaseRecord[] = [];
  for (const row of rows) {
    if (row.name === null || row.name === undefined) continue; // no lease matched
    leases.push(
      checkLease(
        {
          name: row.name,
          holder: row.holder,
          token: d.integer(row.token),
          start: d.integer(row.start),
          expiry: d.integer(row.expiry),
          pins: d.pins(row.pins),
          version: d.integer(row.version),
        },
        d.kind,
        operation,
      ),
    );
  }
  return {
    time: d.stored(first?.time, operation, CLOCK_TIME),
    maxStep: d.stored(first?.max_step, operation, MAX_STEP),
    leases,
  };
}
