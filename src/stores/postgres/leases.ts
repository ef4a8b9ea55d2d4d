import type { LeaseFields, LeaseStore } from "../../lease-store.js";
import { MAX_STEP, parseStoredDecimal } from "../../record.js";
import type { StoreCalls } from "../call.js";
import { leaseRows, type Row, type RowDecoding } from "../lease-rows.js";
import { prefixEnd } from "../prefix.js";
import type { PgResult } from "./client.js";
import { pgCode } from "./errors.js";
import { type PgTables, UNDEFINED_TABLE } from "./tables.js";
import { type ListenOptions, listen } from "./watch.js";

const KIND = "postgres";
const COLUMNS = "l.name, l.holder, l.token, l.start, l.expiry, to_json(l.pins) AS pins, l.version";

export interface PostgresLeasesOptions {
  tables: PgTables;
  calls: StoreCalls;
  /** The leases' NOTIFY channel (payload: the lease's name). */
  channel: string;
  /** The store's LISTEN settings for a watch (./watch.ts). */
  listen: (operation: string) => ListenOptions;
}

/**
 * Lease records in `<table>_leases` beside the clock table, one row per name, and the
 * cluster's maxStep in `<table>_settings` (row `maxStep`): the clock table holds the clock
 * alone. A read is one statement, so one snapshot and one round trip: the clock and maxStep
 * as scalar subqueries, the lease by a LEFT JOIN. Each write is one statement too, a
 * compare-and-swap on `version` that NOTIFYs the lease's name. The settings table is made by
 * ensureMaxStep or the first insert, the lease table by the first insert; a read where a
 * table is missing reads the others.
 */
export class PostgresLeases implements LeaseStore {
  readonly #o: PostgresLeasesOptions;
  readonly #sql: ReturnType<typeof leaseStatements>;

  constructor(options: PostgresLeasesOptions) {
    this.#o = options;
    this.#sql = leaseStatements(options.tables);
  }

  readLease(name: string, signal?: AbortSignal) {
    return this.#o.calls.run("readLease", signal, async () => {
      const rows = await this.#rows("read", [name], "readLease");
      const { leases, ...context } = leaseRows(rows, "readLease", DECODING);
      return { ...context, lease: leases[0] };
    });
  }

  listLeases(prefix: string, signal?: AbortSignal) {
    return this.#o.calls.run("listLeases", signal, async () => {
      // A range of the primary key, never LIKE: `%` and `_` in a prefix are plain characters.
      const end = prefixEnd(prefix);
      const rows =
        end === undefined
          ? await this.#rows("listAll", [prefix])
          : await this.#rows("list", [prefix, end]);
      return leaseRows(rows, "listLeases", DECODING);
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
        // Every table, so that a read of the lease is the one statement.
        await Promise.all([tables.createClock(), tables.createSettings(), tables.createLeases()]);
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
      await tables.createSettings();
      const res = await tables.query(this.#sql.ensureMaxStep, [value.toString()]);
      return parseStoredDecimal(String(res.rows[0]?.value), KIND, "ensureMaxStep", MAX_STEP);
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

  /**
   * The rows of a read. Where a table it reads is missing, the same read of the tables there
   * are (none at all when one went missing meanwhile): the clock alone, say, before any
   * lease was written, or the leases with no clock after its table was dropped.
   */
  async #rows(kind: Read, values: unknown[], prepare?: string): Promise<Row[]> {
    const { tables } = this.#o;
    const res = await missingTable(tables.query(this.#sql[kind], values, prepare));
    if (res) return res.rows;
    const found = (await tables.query(this.#sql.present, this.#sql.relations)).rows[0] ?? {};
    const present = {
      clock: found.clock === "t",
      settings: found.settings === "t",
      leases: found.leases === "t",
    };
    const again = tables.query(readSql(tables, kind, present), present.leases ? values : []);
    return (await missingTable(again))?.rows ?? [];
  }
}

type Read = "read" | "list" | "listAll";

/** Which of the three tables exist, for a read that must do without the others. */
interface Present {
  readonly clock: boolean;
  readonly settings: boolean;
  readonly leases: boolean;
}

const ALL: Present = { clock: true, settings: true, leases: true };

/**
 * A read as one statement: the clock and maxStep as scalar subqueries, the leases by a LEFT
 * JOIN, so that a row comes back even when no lease matches. A table not `present` reads as
 * NULL; without the lease table there are no parameters either.
 */
function readSql({ clock, settings, leases }: Relations, kind: Read, present = ALL): string {
  const time = present.clock ? `(SELECT time FROM ${clock} WHERE id = 'g')` : "NULL";
  const maxStep = present.settings
    ? `(SELECT value FROM ${settings} WHERE name = 'maxStep')`
    : "NULL";
  const context = `SELECT ${time} AS time, ${maxStep} AS max_step`;
  if (!present.leases) return context;
  const join = `${context}, ${COLUMNS} FROM (VALUES (1)) AS one LEFT JOIN ${leases} AS l`;
  const order = `ORDER BY l.name COLLATE "C"`;
  if (kind === "read") return `${join} ON l.name = $1`;
  if (kind === "list")
    return `${join} ON l.name COLLATE "C" >= $1 AND l.name COLLATE "C" < $2 ${order}`;
  return `${join} ON l.name COLLATE "C" >= $1 ${order}`;
}

/** The three tables' relation names, as PgTables holds them. */
type Relations = Pick<PgTables, "clock" | "settings" | "leases">;

/** The statements' text, made once per store (and by the benchmark's raw baseline). */
export function leaseStatements(tables: Relations) {
  const { settings, leases } = tables;
  return {
    read: readSql(tables, "read"),
    list: readSql(tables, "list"),
    listAll: readSql(tables, "listAll"),
    present: `SELECT to_regclass($1) IS NOT NULL AS clock, to_regclass($2) IS NOT NULL AS settings,
      to_regclass($3) IS NOT NULL AS leases`,
    relations: [tables.clock, settings, leases],
    insert: `INSERT INTO ${leases} (name, holder, token, start, expiry, pins, version)
      VALUES ($1, $2, $3, $4, $5, $6, 1) ON CONFLICT (name) DO NOTHING
      RETURNING version, pg_notify($7, name)`,
    update: `UPDATE ${leases} SET holder = $2, token = $3, start = $4, expiry = $5, pins = $6,
      version = version + 1 WHERE name = $1 AND version = $8 RETURNING version, pg_notify($7, name)`,
    ensureMaxStep: `INSERT INTO ${settings} AS s (name, value) VALUES ('maxStep', $1)
      ON CONFLICT (name) DO UPDATE SET value = s.value RETURNING value`,
    swapMaxStep: `UPDATE ${settings} SET value = $2 WHERE name = 'maxStep' AND value = $1`,
  };
}

/** A query's result, or undefined when a table it reads does not exist yet. */
function missingTable(query: Promise<PgResult>): Promise<PgResult | undefined> {
  return query.catch((err: unknown) => {
    if (pgCode(err) === UNDEFINED_TABLE) return undefined;
    throw err;
  });
}

/** How pg hands back the values: int64s and the clock as text, pins as parsed JSON. */
const DECODING: RowDecoding = {
  kind: KIND,
  stored: (value, operation, what) =>
    value === null || value === undefined
      ? undefined
      : parseStoredDecimal(String(value), KIND, operation, what),
  integer,
  pins: (value) => (typeof value === "string" ? JSON.parse(value) : value),
};

/** An int64 as the server's text, parsed exactly; anything else is left for checkLease to refuse. */
function integer(value: unknown): unknown {
  return typeof value === "string" && /^-?\d{1,20}$/.test(value) ? BigInt(value) : value;
}
