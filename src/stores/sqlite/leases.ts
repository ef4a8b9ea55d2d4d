import type Database from "better-sqlite3";
import { describe, StoreError } from "../../errors.js";
import type { LeaseStore, LeaseWrite, LeaseWritten } from "../../lease-store.js";
import { readOnWake } from "../../push.js";
import { CLOCK_TIME, checkStoredTime, checkWrite, MAX_STEP, wrongType } from "../../record.js";
import type { StoreCalls } from "../call.js";
import { leaseRows, type Row, type RowDecoding } from "../lease-rows.js";
import { prefixEnd } from "../prefix.js";
import type { BusyRetry } from "./busy.js";
import { leaseSql, type Read, readSql } from "./lease-sql.js";
import { COMMIT_RETRY_MS } from "./watch.js";

const KIND = "sqlite";
const NO_TABLE = /no such table/i;
type Statement = Database.Statement<unknown[], unknown>;

export interface SqliteLeasesOptions {
  db: Database.Database;
  calls: StoreCalls;
  busy: BusyRetry;
  /** The clock's table; leases are kept in `<table>_leases`, maxStep in `<table>_settings`. */
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
export function decodeTime(
  value: unknown,
  operation: string,
  what = CLOCK_TIME,
): bigint | undefined {
  if (value === undefined || value === null) return undefined;
  if (typeof value !== "bigint") throw wrongType(KIND, operation, value, what);
  return checkStoredTime(value, KIND, operation, what);
}

/**
 * Lease records in `<table>_leases`, and the cluster's maxStep in `<table>_settings`, beside
 * the clock's table, which holds the clock alone (./lease-sql.ts). Every read is one
 * statement, so one snapshot: the clock, maxStep and the leases agree. The settings table is
 * made by ensureMaxStep or the first lease write, the lease table by the first lease write;
 * a read of a file where a table is missing reads the others.
 */
export class SqliteLeases implements LeaseStore {
  readonly #o: SqliteLeasesOptions;
  readonly #sql: ReturnType<typeof leaseSql>;
  /** Statements by their text, prepared once the tables they use exist. */
  readonly #statements = new Map<string, Statement>();
  #settingsMade = false;
  #leasesMade = false;
  #dataVersion: unknown;
  /** Grows at every commit this store makes or sees made by another connection. */
  #changes = 0n;

  /** A lease write's transaction (better-sqlite3's BEGIN … COMMIT), made once. */
  readonly #write: Database.Transaction<
    (write: LeaseWrite, version: bigint | undefined, pins: string) => LeaseWritten | undefined
  >;

  constructor(options: SqliteLeasesOptions) {
    this.#o = options;
    this.#sql = leaseSql(options.table);
    this.#write = options.db.transaction((write, version, pins) =>
      this.#writeOnce(write, version, pins),
    );
  }

  readClock(signal?: AbortSignal) {
    return this.#read("readClock", signal, () => {
      const { leases: _none, ...context } = leaseRows(
        this.#rows("clock", []),
        "readClock",
        DECODING,
      );
      return context;
    });
  }

  /**
   * One UPDATE of the clock row whose condition reads the stored maxStep: SQLite runs it in
   * one write transaction, so no change of maxStep can come between the two.
   */
  advanceClock(old: bigint, next: bigint, maxStep: bigint, signal?: AbortSignal) {
    const { calls, busy } = this.#o;
    return calls.run("advanceClock", signal, () => {
      this.#writable("advanceClock");
      // A negative `old` can only match a corrupt record, which is never overwritten.
      if (old < 0n) return false;
      return busy.run(
        signal,
        () =>
          this.#tolerant(this.#sql.advance, (s) => s.run(next, old, maxStep).changes === 1) ??
          false,
      );
    });
  }

  readLease(name: string, signal?: AbortSignal) {
    return this.#read("readLease", signal, () => {
      const { leases, ...context } = leaseRows(this.#rows("read", [name]), "readLease", DECODING);
      return { ...context, lease: leases[0] };
    });
  }

  listLeases(prefix: string, signal?: AbortSignal) {
    return this.#read("listLeases", signal, () => {
      // A range of the primary key, never LIKE: `%` and `_` in a prefix are plain characters.
      const end = prefixEnd(prefix);
      const rows =
        end === undefined ? this.#rows("listAll", [prefix]) : this.#rows("list", [prefix, end]);
      return leaseRows(rows, "listLeases", DECODING);
    });
  }

  /**
   * One IMMEDIATE transaction: a new token (where the holder changes) from the settings' row
   * `token`, then the compare-and-swap of the lease's row. A table dropped under a running
   * store is made again here, the token counter re-seeded above every token still stored.
   */
  writeLease(write: LeaseWrite, version: bigint | undefined, signal?: AbortSignal) {
    const { calls, busy } = this.#o;
    return calls.run("writeLease", signal, () => {
      this.#writable("writeLease");
      checkWrite(write, KIND, "writeLease");
      const pins = JSON.stringify(write.pins);
      // A new token and the write in one transaction; any other write is one statement.
      const apply = () =>
        write.newToken
          ? this.#write.immediate(write, version, pins)
          : this.#writeOnce(write, version, pins);
      return busy.run(signal, () => {
        let written: LeaseWritten | undefined;
        try {
          written = apply();
        } catch (err) {
          if (!NO_TABLE.test(describe(err))) throw err;
          this.#forgetTables(); // dropped under this store: made again, once
          written = apply();
        }
        if (written) this.#changes++;
        return written;
      });
    });
  }

  /** The write's body, which #write runs in one transaction. */
  #writeOnce(
    write: LeaseWrite,
    version: bigint | undefined,
    pins: string,
  ): LeaseWritten | undefined {
    // The settings table too, so that a read of the lease is the one statement.
    this.#createTables(true);
    const token = write.newToken ? this.#nextToken(write.token) : write.token;
    const values = [write.holder, token, write.start, write.expiry, pins, write.name];
    const written =
      version === undefined
        ? this.#statement(this.#sql.insertLease).get(...values)
        : this.#statement(this.#sql.updateLease).get(...values, version);
    return written === undefined ? undefined : { version: written as bigint, token };
  }

  /** The next token above `floor` and every token handed out before. */
  #nextToken(floor: bigint): bigint {
    const next = this.#statement(this.#sql.nextToken).get(floor);
    return (next ?? this.#statement(this.#sql.seedToken).get(floor)) as bigint;
  }

  ensureMaxStep(value: bigint, signal?: AbortSignal) {
    const { calls, busy } = this.#o;
    return calls.run("ensureMaxStep", signal, () => {
      this.#writable("ensureMaxStep");
      return busy.run(signal, () => {
        this.#createTables(false);
        const select = this.#statement(this.#sql.maxStep);
        let stored = select.get();
        if (stored === undefined) {
          this.#statement(this.#sql.insertMaxStep).run(value);
          stored = select.get();
        }
        return decodeTime(stored, "ensureMaxStep", MAX_STEP) as bigint;
      });
    });
  }

  swapMaxStep(old: bigint, next: bigint, signal?: AbortSignal) {
    const { calls, busy } = this.#o;
    return calls.run("swapMaxStep", signal, () => {
      this.#writable("swapMaxStep");
      if (old < 0n) return false; // only a corrupt row could match
      return busy.run(
        signal,
        () => this.#tolerant(this.#sql.swapMaxStep, (s) => s.run(next, old).changes === 1) ?? false,
      );
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
    const version = this.#statement(this.#sql.dataVersion).get();
    if (version !== this.#dataVersion) {
      this.#dataVersion = version;
      this.#changes++;
    }
    return this.#changes;
  };

  #read<T>(operation: string, signal: AbortSignal | undefined, fn: () => T): Promise<T> {
    return this.#o.calls.run(operation, signal, () => this.#o.busy.run(signal, fn));
  }

  /**
   * The rows of a read. Where a table it reads is missing, the same read of the tables there
   * are (none at all when one went missing meanwhile): the clock alone, say, before any
   * lease was written, or the leases with no clock after its table was dropped.
   */
  #rows(kind: Read, params: unknown[]): Row[] {
    const all = (s: Statement) => s.all(...params) as Row[];
    const rows = this.#tolerant(this.#sql[kind], all);
    if (rows) return rows;
    const found = this.#statement(this.#sql.present).get() as Row;
    const present = { clock: !!found.clock, settings: !!found.settings, leases: !!found.leases };
    const text = readSql(this.#sql.tables, kind, present);
    return this.#tolerant(text, present.leases ? all : (s) => s.all() as Row[]) ?? [];
  }

  /** What `use` makes of the statement, or undefined while a table it uses does not exist. */
  #tolerant<T>(text: string, use: (s: Statement) => T): T | undefined {
    try {
      return use(this.#statement(text));
    } catch (err) {
      if (!NO_TABLE.test(describe(err))) throw err;
      this.#statements.delete(text); // a table dropped under it: prepare it again next time
      return undefined;
    }
  }

  #statement(text: string): Statement {
    let statement = this.#statements.get(text);
    if (!statement) {
      statement = this.#o.db.prepare(text);
      if (statement.reader) {
        statement.safeIntegers();
        if (statement.columns().length === 1) statement.pluck();
      }
      this.#statements.set(text, statement);
    }
    return statement;
  }

  /** After a table was dropped under the store: made again, and every statement prepared anew. */
  #forgetTables(): void {
    this.#settingsMade = false;
    this.#leasesMade = false;
    this.#statements.clear();
  }

  /** The settings table, and the lease table too when `leases`; once each per store. */
  #createTables(leases: boolean): void {
    if (!this.#settingsMade) {
      this.#o.db.exec(this.#sql.createSettings);
      this.#settingsMade = true;
    }
    if (leases && !this.#leasesMade) {
      this.#o.db.exec(this.#sql.createLeases);
      this.#leasesMade = true;
    }
  }

  #writable(operation: string): void {
    if (this.#o.readOnly) {
      throw new StoreError(KIND, operation, `${this.#o.path} was opened read-only`, {
        retryable: false,
      });
    }
  }
}

/** How better-sqlite3 hands back the values (safeIntegers): bigints, pins as JSON text. */
const DECODING: RowDecoding = {
  kind: KIND,
  stored: decodeTime,
  integer: (value) => value,
  pins: parsePins,
};

/** Pins as stored, a JSON array; anything else is passed on as it is, for checkLease to refuse. */
function parsePins(value: unknown): unknown {
  if (typeof value !== "string") return value;
  try {
    return JSON.parse(value);
  } catch {
    return value;
  }
}
