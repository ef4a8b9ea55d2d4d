import { checkIdentifier } from "../../config.js";
import { ConfigError, describe, LeaseLostError } from "../../errors.js";
import { checkLeaseText } from "../../leases/validate.js";

/** What checkFence needs of a better-sqlite3 `Database`. */
export interface SqliteFenceDatabase {
  readonly inTransaction: boolean;
  prepare(source: string): { get(...params: unknown[]): unknown };
}

export interface SqliteFence {
  /** The lease's name. */
  name: string;
  /** Its holder, as claimed. */
  holder: string;
  /** The fencing token of the holder's grant (`lease.token`). */
  token: bigint;
  /** The store's clock table (its `table` option); the leases are in `<table>_leases`. Default "globalclock". */
  table?: string;
}

type Check = { get(...params: unknown[]): unknown };
const prepared = new WeakMap<object, Map<string, Check>>();

/**
 * For data kept in the clock's own SQLite file: throws LeaseLostError unless lease `name`
 * is still held by `holder` with `token`. Call it inside the transaction that writes the
 * guarded data, and let the error roll that transaction back. SQLite has one writer at a
 * time, so no claim can commit between the check and the transaction's commit: either the
 * transaction already holds the write lock (BEGIN IMMEDIATE, or a write before the check),
 * or, in WAL mode, its first write fails with SQLITE_BUSY_SNAPSHOT when a claim committed
 * after the check read. The check judges holder and token, not time: an expired lease that
 * nobody has taken over still passes, and writes with it are still ordered before the next
 * holder's.
 */
export function checkFence(db: SqliteFenceDatabase, fence: SqliteFence): void {
  if (!db?.inTransaction) {
    throw new ConfigError(
      "db",
      "checkFence must run inside the transaction that writes the guarded data (db.transaction(…) or BEGIN IMMEDIATE)",
    );
  }
  checkLeaseText("name", fence.name);
  checkLeaseText("holder", fence.holder);
  if (typeof fence.token !== "bigint" || fence.token < 0n)
    throw new ConfigError("token", "invalid fencing token: use the lease's token, a bigint ≥ 0");
  const table = `${checkIdentifier("table", fence.table ?? "globalclock")}_leases`;
  let held: unknown;
  try {
    held = statement(db, table).get(fence.name, fence.holder, fence.token);
  } catch (err) {
    if (!/no such table/i.test(describe(err))) throw err;
  }
  if (held === undefined) {
    throw new LeaseLostError(
      fence.name,
      `it is not held by ${JSON.stringify(fence.holder)} with token ${fence.token} any more`,
    );
  }
}

function statement(db: SqliteFenceDatabase, table: string): Check {
  let byTable = prepared.get(db);
  if (!byTable) {
    byTable = new Map();
    prepared.set(db, byTable);
  }
  let check = byTable.get(table);
  if (!check) {
    check = db.prepare(
      `SELECT 1 AS held FROM "${table}" WHERE name = ? AND holder = ? AND token = ?`,
    );
    byTable.set(table, check);
  }
  return check;
}
