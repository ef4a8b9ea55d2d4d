import { resolve } from "node:path";
import Database from "better-sqlite3";
import { checkIdentifier } from "../../config.js";
import { ConfigError, codeOf, describe, StoreError } from "../../errors.js";
import { readOnWake } from "../../push.js";
import { type ClockStore, DEFAULT_TIMEOUT_MS } from "../../store.js";
import { StoreCalls } from "../call.js";
import { BusyRetry, FATAL, isBusy } from "./busy.js";
import { checkDatabaseFile } from "./file.js";
import { decodeTime, SqliteLeases } from "./leases.js";
import { COMMIT_RETRY_MS, watchCommits } from "./watch.js";

export interface SqliteStoreOptions {
  /** Path of the database file. */
  path: string;
  /** Table holding the clock row. Default "globalclock". */
  table?: string;
  /**
   * PRAGMA synchronous. "full" (default) makes every acknowledged advance survive a power
   * loss; "normal" is faster in WAL mode but may lose the last advances on power loss.
   */
  synchronous?: "full" | "normal";
  /**
   * How long one operation may wait for another process's write lock, in ms (the store's
   * `timeout`). Default 2000 (DEFAULT_TIMEOUT_MS).
   */
  busyTimeoutMs?: number;
  /**
   * Open for reading only (Readers do): the file must exist; nothing is created, no table,
   * no journal mode set; `ensure` and `compareAndSwap` are refused.
   */
  readOnly?: boolean;
}

interface Statements {
  select: Database.Statement<[string], unknown>;
  insert: Database.Statement<[string], unknown>;
  update: Database.Statement<[bigint, string, bigint], unknown>;
}

const KIND = "sqlite";
const ID = "g";

/**
 * The embedded default: one row in a SQLite file, in WAL mode, durable by default.
 * Several processes may share the file. better-sqlite3 is synchronous and its busy
 * timeout would block the event loop, so the busy timeout is 0 and a locked write is
 * retried asynchronously, with short jittered sleeps (./busy.ts). Lease records are kept
 * beside the clock (./leases.ts).
 */
export class SqliteStore implements ClockStore {
  readonly kind = KIND;
  readonly path: string;
  readonly readOnly: boolean;
  readonly #db: Database.Database;
  readonly #table: string;
  readonly #busyTimeoutMs: number;
  readonly #busy: BusyRetry;
  /** Prepared once the table exists (a reader may open a file whose table is not made yet). */
  #statements: Statements | undefined;
  #select: Database.Statement<[string], unknown> | undefined;
  readonly #watches = new Set<() => void>();
  readonly #calls: StoreCalls;
  readonly #readOnce = () => {
    this.#select ??= this.#prepareSelect();
    return this.#select === undefined ? undefined : decodeTime(this.#select.get(ID), "read");
  };
  /** Lease records in the table `<table>_leases`, the cluster's maxStep in `<table>_settings`. */
  readonly leases: SqliteLeases;

  constructor(options: SqliteStoreOptions) {
    const table = checkIdentifier("table", options.table ?? "globalclock");
    const synchronous = options.synchronous ?? "full";
    if (synchronous !== "full" && synchronous !== "normal") {
      throw new ConfigError(
        "synchronous",
        `invalid synchronous "${synchronous}": use "full" or "normal"`,
      );
    }
    if (!options.path)
      throw new ConfigError("path", "missing path: use sqlite:PATH, e.g. sqlite:./globalclock.db");
    this.path = resolve(options.path);
    this.readOnly = options.readOnly ?? false;
    this.#table = table;
    this.#busyTimeoutMs = options.busyTimeoutMs ?? DEFAULT_TIMEOUT_MS;
    if (!(this.#busyTimeoutMs >= 0))
      throw new ConfigError("busyTimeout", "invalid busyTimeout: must be ≥ 0");
    this.#calls = new StoreCalls({
      kind: KIND,
      explain: (err) =>
        isBusy(err)
          ? {
              message: `database stayed locked for ${this.#busyTimeoutMs} ms (another process holds its write lock)`,
              retryable: true,
            }
          : { message: describe(err), retryable: !FATAL.test(String(codeOf(err))) },
    });
    this.#busy = new BusyRetry(this.#calls, this.#busyTimeoutMs);
    const file = checkDatabaseFile(this.path, this.readOnly);
    try {
      this.#db = new Database(file, {
        timeout: 0,
        readonly: this.readOnly,
        fileMustExist: this.readOnly,
      });
    } catch (err) {
      throw new StoreError(KIND, "open", `cannot open ${this.path}: ${describe(err)}`, {
        cause: err,
        retryable: !FATAL.test(String(codeOf(err))),
      });
    }
    this.leases = new SqliteLeases({
      db: this.#db,
      calls: this.#calls,
      busy: this.#busy,
      table,
      readOnly: this.readOnly,
      path: this.path,
      watchCommits: (signal, start) =>
        watchCommits(signal, this.#commitWatch("watchLeases"), start),
    });
    if (this.readOnly) return;
    try {
      this.#busy.runSync(() => {
        this.#db.pragma("journal_mode = WAL");
        this.#db.pragma(`synchronous = ${synchronous.toUpperCase()}`);
        this.#db.exec(
          `CREATE TABLE IF NOT EXISTS "${table}" (id TEXT PRIMARY KEY, time INTEGER NOT NULL)`,
        );
      });
      const select = this.#prepareSelect() as Database.Statement<[string], unknown>;
      this.#select = select;
      this.#statements = {
        select,
        insert: this.#db.prepare<[string]>(
          `INSERT INTO "${table}" (id, time) VALUES (?, 0) ON CONFLICT (id) DO NOTHING`,
        ),
        update: this.#db.prepare<[bigint, string, bigint]>(
          // In SQLite a REAL 5.0 equals the INTEGER 5: the type must match too.
          `UPDATE "${table}" SET time = ? WHERE id = ? AND time = ? AND typeof(time) = 'integer'`,
        ),
      };
    } catch (err) {
      this.#db.close();
      throw new StoreError(KIND, "open", `cannot prepare ${this.path}: ${describe(err)}`, {
        cause: err,
        retryable: isBusy(err) || !FATAL.test(String(codeOf(err))),
      });
    }
  }

  read(signal?: AbortSignal): Promise<bigint | undefined> {
    return this.#calls.run("read", signal, () => this.#busy.run(signal, this.#readOnce));
  }

  ensure(signal?: AbortSignal): Promise<bigint> {
    return this.#calls.run("ensure", signal, () => {
      const { insert, select } = this.#writable("ensure");
      return this.#busy.run(signal, () => {
        insert.run(ID);
        return decodeTime(select.get(ID), "ensure") as bigint;
      });
    });
  }

  compareAndSwap(old: bigint, next: bigint, signal?: AbortSignal): Promise<boolean> {
    return this.#calls.run("compareAndSwap", signal, () => {
      const { update } = this.#writable("compareAndSwap");
      // A negative `old` can only match a corrupt record, which is never overwritten.
      if (old < 0n) return false;
      return this.#busy.run(signal, () => update.run(next, ID, old).changes === 1);
    });
  }

  /** The file watch of ./watch.ts: each wake reads, and pushes a time only when it grew. */
  watch(signal: AbortSignal): AsyncIterable<bigint> {
    this.#calls.checkOpen();
    return watchCommits<bigint>(signal, this.#commitWatch("watch"), (push) =>
      readOnWake(() => this.read(signal), push, { signal, retryMs: COMMIT_RETRY_MS }),
    );
  }

  async close(): Promise<void> {
    if (!this.#calls.close()) return;
    for (const end of this.#watches) end();
    this.#db.close();
  }

  /** The SELECT, or undefined while a reader finds no table (no record yet). */
  #prepareSelect(): Database.Statement<[string], unknown> | undefined {
    try {
      return this.#db
        .prepare<[string]>(`SELECT time FROM "${this.#table}" WHERE id = ?`)
        .pluck()
        .safeIntegers();
    } catch (err) {
      if (this.readOnly && /no such table/i.test(describe(err))) return undefined;
      throw err;
    }
  }

  #writable(operation: string): Statements {
    if (!this.#statements) {
      throw new StoreError(KIND, operation, `${this.path} was opened read-only`, {
        retryable: false,
      });
    }
    return this.#statements;
  }

  #commitWatch(operation: string) {
    return {
      path: this.path,
      watches: this.#watches,
      error: (err: unknown) => this.#calls.error(operation, err),
    };
  }
}
