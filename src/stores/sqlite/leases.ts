import type Database from "better-sqlite3";
import { describe, StoreError } from "../../errors.js";
import type { LeaseContext, LeaseFields, LeaseRecord, LeaseStore } from "../../lease-store.js";
import { readOnWake } from "../../push.js";
import { checkLease, checkStoredTime, wrongType } from "../../record.js";
import type { StoreCalls } from "../call.js";
import { prefixEnd } from "../prefix.js";
import type { BusyRetry } from "./busy.js";
import { COMMIT_RETRY_MS } from "./watch.js";

const KIND = "sqlite";
const NO_TABLE = /no such table/i;
const COLUMNS = "l.name, l.holder, l.token, l.start, l.expiry, l.pins, l.version";

type Row = Record<string, unknown>;
type Statement = Database.Statement<unknown[], unknown>;

export interface SqliteLeasesOptions {
  db: Database.Database;
  calls: StoreCalls;
  busy: BusyRetry;
  /** The clock's table; leases are kept in `<table>_leases`. */
  table: string;
  readOnly: boolean;
  path: string;
  /** The store's file watch (./watch.ts), which close() ends. */
  watchCommits: (
    signal: AbortSignal,
    start: (push: () => void) => () => Promise<void>,
  ) => AsyncIterable<void>;
}

/** A stored clock time (or maxStep) as better-sqlite3 returns it with safeIntegers. */
export function decodeTime(value: unknown, operation: string): bigint | undefined {
  if (value === undefined || value === null) return undefined;
  if (typeof value !== "bigint") throw wrongType(KIND, operation, value);
  return checkStoredTime(value, KIND, operation);
}

/**
 * Lease records in `<table>_leases`, one row per name (pins as a JSON array of strings),
 * beside the clock; the cluster's maxStep is the clock table's row `maxStep`. Every read is
 * one statement, so one snapshot: the clock, maxStep and the leases agree. The lease table
 * is made by the first lease write; until then reads find no leases.
 */
export class SqliteLeases implements LeaseStore {
  readonly #o: SqliteLeasesOptions;
  readonly #leases: string;
  readonly #sql: Record<StatementName, string>;
  /** Statements on tables that may not exist yet, prepared once they do. */
  readonly #statements = new Map<StatementName, Statement>();
  #created = false;
  #dataVersion: unknown;
  /** Grows at every commit this store makes or sees made by another connection. */
  #changes = 0n;

  constructor(options: SqliteLeasesOptions) {
    this.#o = options;
    this.#leases = `"${options.table}_leases"`;
    this.#sql = statements(`"${options.table}"`, this.#leases);
  }

  readLease(name: string, signal?: AbortSignal) {
    return this.#read("readLease", signal, () => {
      const row = this.#tolerant("readLease", (s) => s.get(name) as Row);
      if (row) return { ...context(row, "readLease"), lease: lease(row, "readLease") };
      return { ...this.#contextOnly("readLease"), lease: undefined };
    });
  }

  listLeases(prefix: string, signal?: AbortSignal) {
    return this.#read("listLeases", signal, () => {
      // A range of the primary key, never LIKE: `%` and `_` in a prefix are plain characters.
      const end = prefixEnd(prefix);
      const rows =
        end === undefined
          ? this.#tolerant("listAll", (s) => s.all(prefix) as Row[])
          : this.#tolerant("list", (s) => s.all(prefix, end) as Row[]);
      const first = rows?.[0];
      if (!first) return { ...this.#contextOnly("listLeases"), leases: [] };
      const leases: LeaseRecord[] = [];
      for (const row of rows) {
        const record = lease(row, "listLeases");
        if (record) leases.push(record);
      }
      return { ...context(first, "listLeases"), leases };
    });
  }

  writeLease(lease: LeaseFields, version: bigint | undefined, signal?: AbortSignal) {
    const { calls, busy } = this.#o;
    return calls.run("writeLease", signal, () => {
      this.#writable("writeLease");
      const values = [
        lease.holder,
        lease.token,
        lease.start,
        lease.expiry,
        JSON.stringify(lease.pins),
        lease.name,
      ];
      return busy.run(signal, () => {
        this.#createTable();
        const written =
          version === undefined
            ? this.#statement("insertLease").get(...values)
            : this.#statement("updateLease").get(...values, version);
        if (written === undefined) return undefined;
        this.#changes++;
        return written as bigint;
      });
    });
  }

  ensureMaxStep(value: bigint, signal?: AbortSignal) {
    const { calls, busy } = this.#o;
    return calls.run("ensureMaxStep", signal, () => {
      this.#writable("ensureMaxStep");
      const select = this.#statement("maxStep");
      return busy.run(signal, () => {
        let stored = select.get();
        if (stored === undefined) {
          this.#statement("insertMaxStep").run(value);
          stored = select.get();
        }
        return decodeTime(stored, "ensureMaxStep") as bigint;
      });
    });
  }

  swapMaxStep(old: bigint, next: bigint, signal?: AbortSignal) {
    const { calls, busy } = this.#o;
    return calls.run("swapMaxStep", signal, () => {
      this.#writable("swapMaxStep");
      if (old < 0n) return false; // only a corrupt row could match
      const update = this.#statement("swapMaxStep");
      return busy.run(signal, () => update.run(next, old).changes === 1);
    });
  }

  /**
   * Wakes at every commit to the file (./watch.ts), the clock's included: a notice may be
   * spurious. A wake that finds no new commit (PRAGMA data_version counts other
   * connections' commits, #changes this store's own) looks again a few times, as the
   * clock's watch does, since the event can come before the commit is visible.
   */
  watchLeases(_prefix: string, signal: AbortSignal): AsyncIterable<void> {
    const { calls, busy } = this.#o;
    calls.checkOpen();
    const changes = () => calls.run("watchLeases", signal, () => busy.run(signal, this.#marker));
    return this.#o.watchCommits(signal, (push) => {
      let seeded = false; // the first look, at the start, only sets the mark
      return readOnWake(
        changes,
        () => {
          if (seeded) push();
          seeded = true;
        },
        { signal, retryMs: COMMIT_RETRY_MS },
      );
    });
  }

  readonly #marker = (): bigint => {
    const version = this.#statement("dataVersion").get();
    if (version !== this.#dataVersion) {
      this.#dataVersion = version;
      this.#changes++;
    }
    return this.#changes;
  };

  #read<T>(operation: string, signal: AbortSignal | undefined, fn: () => T): Promise<T> {
    return this.#o.calls.run(operation, signal, () => this.#o.busy.run(signal, fn));
  }

  /** The clock and maxStep alone, while there is no lease table (or no clock table either). */
  #contextOnly(operation: string): LeaseContext {
    const row = this.#tolerant("context", (s) => s.get() as Row);
    return row ? context(row, operation) : { time: undefined, maxStep: undefined };
  }

  /** What `use` makes of the statement, or undefined while a table it reads does not exist. */
  #tolerant<T>(key: StatementName, use: (s: Statement) => T): T | undefined {
    try {
      return use(this.#statement(key));
    } catch (err) {
      if (!NO_TABLE.test(describe(err))) throw err;
      this.#statements.delete(key); // a table dropped under it: prepare it again next time
      return undefined;
    }
  }

  #statement(key: StatementName): Statement {
    let statement = this.#statements.get(key);
    if (!statement) {
      statement = this.#o.db.prepare(this.#sql[key]);
      if (statement.reader) {
        statement.safeIntegers();
        if (statement.columns().length === 1) statement.pluck();
      }
      this.#statements.set(key, statement);
    }
    return statement;
  }

  #createTable(): void {
    if (this.#created) return;
    this.#o.db.exec(
      `CREATE TABLE IF NOT EXISTS ${this.#leases} (name TEXT NOT NULL PRIMARY KEY,
       holder TEXT NOT NULL, token INTEGER NOT NULL, start INTEGER NOT NULL,
       expiry INTEGER NOT NULL, pins TEXT NOT NULL, version INTEGER NOT NULL)`,
    );
    this.#created = true;
  }

  #writable(operation: string): void {
    if (this.#o.readOnly) {
      throw new StoreError(KIND, operation, `${this.#o.path} was opened read-only`, {
        retryable: false,
      });
    }
  }
}

type StatementName = keyof ReturnType<typeof statements>;

/** The statements' text, made once per store. */
function statements(clock: string, leases: string) {
  const context = `SELECT (SELECT time FROM ${clock} WHERE id = 'g') AS time,
    (SELECT time FROM ${clock} WHERE id = 'maxStep') AS max_step`;
  const join = `${context}, ${COLUMNS} FROM (SELECT 1) LEFT JOIN ${leases} AS l`;
  return {
    context,
    readLease: `${join} ON l.name = ?`,
    list: `${join} ON l.name >= ? AND l.name < ? ORDER BY l.name`,
    listAll: `${join} ON l.name >= ? ORDER BY l.name`,
    insertLease: `INSERT INTO ${leases} (holder, token, start, expiry, pins, name, version)
      VALUES (?, ?, ?, ?, ?, ?, 1) ON CONFLICT (name) DO NOTHING RETURNING version`,
    updateLease: `UPDATE ${leases} SET holder = ?, token = ?, start = ?, expiry = ?, pins = ?,
      version = version + 1 WHERE name = ? AND version = ? RETURNING version`,
    maxStep: `SELECT time FROM ${clock} WHERE id = 'maxStep'`,
    insertMaxStep: `INSERT INTO ${clock} (id, time) VALUES ('maxStep', ?) ON CONFLICT (id) DO NOTHING`,
    // In SQLite a REAL 5.0 equals the INTEGER 5: the type must match too.
    swapMaxStep: `UPDATE ${clock} SET time = ? WHERE id = 'maxStep' AND time = ? AND typeof(time) = 'integer'`,
    dataVersion: "PRAGMA data_version",
  };
}

function context(row: Row, operation: string): LeaseContext {
  return { time: decodeTime(row.time, operation), maxStep: decodeTime(row.max_step, operation) };
}

/** The lease of a row of the LEFT JOIN: none where no lease row matched. */
function lease(row: Row, operation: string): LeaseRecord | undefined {
  if (row.name === null) return undefined;
  return checkLease(
    {
      name: row.name,
      holder: row.holder,
      token: row.token,
      start: row.start,
      expiry: row.expiry,
      pins: parsePins(row.pins),
      version: row.version,
    },
    KIND,
    operation,
  );
}

/** Pins as stored, a JSON array; anything else is passed on as it is, for checkLease to refuse. */
function parsePins(value: unknown): unknown {
  if (typeof value !== "string") return value;
  try {
    return JSON.parse(value);
  } catch {
    return value;
  }
}
