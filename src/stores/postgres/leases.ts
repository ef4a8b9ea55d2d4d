import type { LeaseStore, LeaseWrite, LeaseWritten } from "../../lease-store.js";
import { checkWrite, MAX_STEP, parseStoredDecimal } from "../../record.js";
import type { StoreCalls } from "../call.js";
import { leaseRows, type Row, type RowDecoding } from "../lease-rows.js";
import { prefixEnd } from "../prefix.js";
import type { PgResult } from "./client.js";
import { pgCode } from "./errors.js";
import { leaseStatements, type Read, readSql } from "./lease-sql.js";
import { type PgTables, UNDEFINED_TABLE } from "./tables.js";
import { type ListenOptions, listen } from "./watch.js";

const KIND = "postgres";

export interface PostgresLeasesOptions {
  tables: PgTables;
  calls: StoreCalls;
  /** The leases' NOTIFY channel (payload: the lease's name). */
  channel: string;
  /** The clock's NOTIFY channel (payload: the new time), as the clock's own CAS notifies it. */
  clockChannel: string;
  /** The store's LISTEN settings for a watch (./watch.ts). */
  listen: (operation: string) => ListenOptions;
}

/**
 * Lease records in `<table>_leases` beside the clock table, one row per name, and the
 * cluster's maxStep in `<table>_settings` (row `maxStep`): the clock table holds the clock
 * alone. A read is one statement, so one snapshot and one round trip: the clock and maxStep
 * as scalar subqueries, the lease by a LEFT JOIN. Each write is one statement too, a
 * compare-and-swap on `version` that NOTIFYs the lease's name; new fencing tokens come from
 * the sequence `<table>_tokens`. The settings table is made by ensureMaxStep or the first
 * insert, the lease table and the sequence by the first insert, and any of them again by the
 * next write after it was dropped; a read where a table is missing reads the others.
 */
export class PostgresLeases implements LeaseStore {
  readonly #o: PostgresLeasesOptions;
  readonly #sql: ReturnType<typeof leaseStatements>;

  constructor(options: PostgresLeasesOptions) {
    this.#o = options;
    this.#sql = leaseStatements(options.tables);
  }

  readClock(signal?: AbortSignal) {
    return this.#o.calls.run("readClock", signal, async () => {
      const rows = await this.#rows("clock", [], "readClock");
      const { leases: _none, ...context } = leaseRows(rows, "readClock", DECODING);
      return context;
    });
  }

  /** One statement: the clock's CAS, on the maxStep row locked for its duration (./lease-sql.ts). */
  advanceClock(old: bigint, next: bigint, maxStep: bigint, signal?: AbortSignal) {
    const { calls, tables, clockChannel } = this.#o;
    return calls.run("advanceClock", signal, async () => {
      // A negative `old` can only match a corrupt record, which is never overwritten.
      if (old < 0n) return false;
      const values = [old.toString(), next.toString(), maxStep.toString(), clockChannel];
      const res = await missingTable(tables.query(this.#sql.advance, values, "advance"));
      return res?.rowCount === 1;
    });
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

  writeLease(write: LeaseWrite, version: bigint | undefined, signal?: AbortSignal) {
    const { calls, tables, channel } = this.#o;
    return calls.run("writeLease", signal, async (): Promise<LeaseWritten | undefined> => {
      checkWrite(write, KIND, "writeLease");
      const values = [
        write.name,
        write.holder,
        write.token.toString(),
        write.start.toString(),
        write.expiry.toString(),
        [...write.pins],
        channel,
        write.newToken,
      ];
      const res = await this.#remade(async (again) => {
        if (version === undefined || again) await tables.createAll();
        if (version === undefined) return tables.query(this.#sql.insert, values, "insertLease");
        return tables.query(this.#sql.update, [...values, version.toString()], "updateLease");
      });
      const row = res.rows[0];
      if (!row) return undefined;
      return {
        version: parseStoredDecimal(String(row.version), KIND, "writeLease"),
        token: parseStoredDecimal(String(row.token), KIND, "writeLease"),
      };
    });
  }

  /** One statement once the table exists: inserts the row, or locks it and returns it as is. */
  ensureMaxStep(value: bigint, signal?: AbortSignal) {
    const { calls, tables } = this.#o;
    return calls.run("ensureMaxStep", signal, async () => {
      const res = await this.#remade(async () => {
        await tables.createSettings();
        return tables.query(this.#sql.ensureMaxStep, [value.toString()]);
      });
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
   * `write`, and once more where a relation it needs was dropped under the running store
   * (42P01): `again`, after the store forgot what it had made, so that it is made anew.
   */
  async #remade(write: (again: boolean) => Promise<PgResult>): Promise<PgResult> {
    try {
      return await write(false);
    } catch (err) {
      if (pgCode(err) !== UNDEFINED_TABLE) throw err;
      this.#o.tables.forget();
      return write(true);
    }
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
