import type { LeaseContext, LeaseFields, LeaseRecord, LeaseStore } from "../../lease-store.js";
import { checkLease, parseStoredDecimal } from "../../record.js";
import type { StoreCalls } from "../call.js";
import { prefixEnd } from "../prefix.js";
import type { PgResult } from "./client.js";
import { pgCode } from "./errors.js";
import { type PgTables, UNDEFINED_TABLE } from "./tables.js";
import { type ListenOptions, listen } from "./watch.js";

const KIND = "postgres";
const COLUMNS = "l.name, l.holder, l.token, l.start, l.expiry, to_json(l.pins) AS pins, l.version";

type Row = Record<string, unknown>;

export interface PostgresLeasesOptions {
  tables: PgTables;
  calls: StoreCalls;
  /** The leases' NOTIFY channel (payload: the lease's name). */
  channel: string;
  /** The store's LISTEN settings for a watch (./watch.ts). */
  listen: (operation: string) => ListenOptions;
}

/**
 * Lease records in `<table>_leases` beside the clock table, one row per name; the cluster's
 * maxStep is the clock table's row `maxStep`. A read is one statement, so one snapshot and
 * one round trip: the clock and maxStep as scalar subqueries, the lease by a LEFT JOIN.
 * Each write is one statement too, a compare-and-swap on `version` that NOTIFYs the lease's
 * name. The lease table is made by the first insert; until then reads find no leases.
 */
export class PostgresLeases implements LeaseStore {
  readonly #o: PostgresLeasesOptions;
  readonly #sql: ReturnType<typeof statements>;

  constructor(options: PostgresLeasesOptions) {
    this.#o = options;
    this.#sql = statements(options.tables);
  }

  readLease(name: string, signal?: AbortSignal) {
    const { calls, tables } = this.#o;
    return calls.run("readLease", signal, async () => {
      const res = await missingTable(tables.query(this.#sql.read, [name], "readLease"));
      const row = res?.rows[0];
      if (row) return { ...context(row, "readLease"), lease: lease(row, "readLease") };
      return { ...(await this.#contextOnly("readLease")), lease: undefined };
    });
  }

  listLeases(prefix: string, signal?: AbortSignal) {
    const { calls, tables } = this.#o;
    return calls.run("listLeases", signal, async () => {
      // A range of the primary key, never LIKE: `%` and `_` in a prefix are plain characters.
      const end = prefixEnd(prefix);
      const res = await missingTable(
        end === undefined
          ? tables.query(this.#sql.listAll, [prefix])
          : tables.query(this.#sql.list, [prefix, end]),
      );
      const first = res?.rows[0];
      if (!res || !first) return { ...(await this.#contextOnly("listLeases")), leases: [] };
      const leases: LeaseRecord[] = [];
      for (const row of res.rows) {
        const record = lease(row, "listLeases");
        if (record) leases.push(record);
      }
      return { ...context(first, "listLeases"), leases };
    });
  }

  writeLease(lease: LeaseFields, version: bigint | undefined, signal?: AbortSignal) {
    const { calls, tables, channel } = this.#o;
    return calls.run("writeLease", signal, async () => {
      const values = [
        lease.name,
        lease.holder,
        lease.token.toString(),
        lease.start.toString(),
        lease.expiry.toString(),
        [...lease.pins],
        channel,
      ];
      let res: PgResult | undefined;
      if (version === undefined) {
        // Both tables: a read of the lease needs the clock's too.
        await Promise.all([tables.createClock(), tables.createLeases()]);
        res = await tables.query(this.#sql.insert, values, "insertLease");
      } else {
        res = await missingTable(
          tables.query(this.#sql.update, [...values, version.toString()], "updateLease"),
        );
      }
      const row = res?.rows[0];
      return row && parseStoredDecimal(String(row.version), KIND, "writeLease");
    });
  }

  /** One statement once the table exists: inserts the row, or locks it and returns it as is. */
  ensureMaxStep(value: bigint, signal?: AbortSignal) {
    const { calls, tables } = this.#o;
    return calls.run("ensureMaxStep", signal, async () => {
      await tables.createClock();
      const res = await tables.query(this.#sql.ensureMaxStep, [value.toString()]);
      return parseStoredDecimal(String(res.rows[0]?.time), KIND, "ensureMaxStep");
    });
  }

  swapMaxStep(old: bigint, next: bigint, signal?: AbortSignal) {
    const { calls, tables } = this.#o;
    return calls.run("swapMaxStep", signal, async () => {
      if (old < 0n) return false; // only a corrupt row could match
      const res = await missingTable(
        tables.query(this.#sql.swapMaxStep, [old.toString(), next.toString()]),
      );
      return res?.rowCount === 1;
    });
  }

  /**
   * LISTEN on the leases' channel, on a connection of its own (./watch.ts). Each
   * (re)subscription gives a notice too, for what changed while the watch was not listening.
   */
  watchLeases(prefix: string, signal: AbortSignal): AsyncIterable<void> {
    this.#o.calls.checkOpen();
    return listen<void>(signal, this.#o.listen("watchLeases"), (push) => ({
      notice: (name) => {
        if (name.startsWith(prefix)) push();
      },
      subscribed: () => push(),
    }));
  }

  /** The clock and maxStep alone, while there is no lease table (or no clock table either). */
  async #contextOnly(operation: string): Promise<LeaseContext> {
    const res = await missingTable(this.#o.tables.query(this.#sql.context));
    const row = res?.rows[0];
    return row ? context(row, operation) : { time: undefined, maxStep: undefined };
  }
}

/** The statements' text, made once per store. */
function statements({ clock, leases }: PgTables) {
  const context = `SELECT (SELECT time FROM ${clock} WHERE id = 'g') AS time,
    (SELECT time FROM ${clock} WHERE id = 'maxStep') AS max_step`;
  const join = `${context}, ${COLUMNS} FROM (VALUES (1)) AS one LEFT JOIN ${leases} AS l`;
  const order = `ORDER BY l.name COLLATE "C"`;
  return {
    context,
    read: `${join} ON l.name = $1`,
    list: `${join} ON l.name COLLATE "C" >= $1 AND l.name COLLATE "C" < $2 ${order}`,
    listAll: `${join} ON l.name COLLATE "C" >= $1 ${order}`,
    insert: `INSERT INTO ${leases} (name, holder, token, start, expiry, pins, version)
      VALUES ($1, $2, $3, $4, $5, $6, 1) ON CONFLICT (name) DO NOTHING
      RETURNING version, pg_notify($7, name)`,
    update: `UPDATE ${leases} SET holder = $2, token = $3, start = $4, expiry = $5, pins = $6,
      version = version + 1 WHERE name = $1 AND version = $8 RETURNING version, pg_notify($7, name)`,
    ensureMaxStep: `INSERT INTO ${clock} AS t (id, time) VALUES ('maxStep', $1)
      ON CONFLICT (id) DO UPDATE SET time = t.time RETURNING time`,
    swapMaxStep: `UPDATE ${clock} SET time = $2 WHERE id = 'maxStep' AND time = $1`,
  };
}

/** A query's result, or undefined when a table it reads does not exist yet. */
function missingTable(query: Promise<PgResult>): Promise<PgResult | undefined> {
  return query.catch((err: unknown) => {
    if (pgCode(err) === UNDEFINED_TABLE) return undefined;
    throw err;
  });
}

function context(row: Row, operation: string): LeaseContext {
  return { time: time(row.time, operation), maxStep: time(row.max_step, operation) };
}

function time(value: unknown, operation: string): bigint | undefined {
  return value === null || value === undefined
    ? undefined
    : parseStoredDecimal(String(value), KIND, operation);
}

/** The lease of a row of the LEFT JOIN: none where no lease row matched. */
function lease(row: Row, operation: string): LeaseRecord | undefined {
  if (row.name === null || row.name === undefined) return undefined;
  return checkLease(
    {
      name: row.name,
      holder: row.holder,
      token: integer(row.token),
      start: integer(row.start),
      expiry: integer(row.expiry),
      pins: typeof row.pins === "string" ? JSON.parse(row.pins) : row.pins,
      version: integer(row.version),
    },
    KIND,
    operation,
  );
}

/** An int64 as the server's text, parsed exactly; anything else is left for checkLease to refuse. */
function integer(value: unknown): unknown {
  return typeof value === "string" && /^-?\d{1,20}$/.test(value) ? BigInt(value) : value;
}
