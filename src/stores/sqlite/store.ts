import { watch as watchFiles } from "node:fs";
import { basename, dirname, resolve } from "node:path";
import Database from "better-sqlite3";
import { checkIdentifier } from "../../config.js";
import { ClosedError, ConfigError, codeOf, describe, StoreError } from "../../errors.js";
import { latestValues, readOnWake } from "../../push.js";
import { checkStoredTime, wrongType } from "../../record.js";
import { sleep } from "../../sleep.js";
import { type ClockStore, DEFAULT_TIMEOUT_MS } from "../../store.js";
import { StoreCalls } from "../call.js";
import { checkDatabaseFile } from "./file.js";

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
/** Delays of the re-reads after a file event, while the commit may not be visible yet. */
const COMMIT_RETRY_MS = [1, 4, 15, 40];
const ID = "g";

const isBusy = (err: unknown): boolean => /^SQLITE_(BUSY|LOCKED)/.test(String(codeOf(err)));
// What no retry mends: a damaged or foreign file, or one this process may not write.
const FATAL = /^SQLITE_(CORRUPT|NOTADB|READONLY|CANTOPEN|PERM|AUTH|FORMAT)/;

/**
 * The embedded default: one row in a SQLite file, in WAL mode, durable by default.
 * Several processes may share the file. better-sqlite3 is synchronous and its busy
 * timeout would block the event loop, so the busy timeout is 0 and a locked write is
 * retried here, asynchronously, with short jittered sleeps.
 */
export class SqliteStore implements ClockStore {
  readonly kind = KIND;
  readonly path: string;
  readonly readOnly: boolean;
  readonly #db: Database.Database;
  readonly #table: string;
  readonly #busyTimeoutMs: number;
  /** Prepared once the table exists (a reader may open a file whose table is not made yet). */
  #statements: Statements | undefined;
  #select: Database.Statement<[string], unknown> | undefined;
  readonly #watches = new Set<() => void>();
  readonly #calls: StoreCalls;
  readonly #readOnce = () => {
    this.#select ??= this.#prepareSelect();
    return this.#select === undefined ? undefined : this.#decode("read", this.#select.get(ID));
  };

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
    if (this.readOnly) return;
    try {
      this.#retrySync(() => {
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
    return this.#calls.run("read", signal, () => this.#whenUnlocked(signal, this.#readOnce));
  }

  ensure(signal?: AbortSignal): Promise<bigint> {
    return this.#calls.run("ensure", signal, () => {
      const { insert, select } = this.#writable("ensure");
      return this.#whenUnlocked(signal, () => {
        insert.run(ID);
        return this.#decode("ensure", select.get(ID)) as bigint;
      });
    });
  }

  compareAndSwap(old: bigint, next: bigint, signal?: AbortSignal): Promise<boolean> {
    return this.#calls.run("compareAndSwap", signal, () => {
      const { update } = this.#writable("compareAndSwap");
      // A negative `old` can only match a corrupt record, which is never overwritten.
      if (old < 0n) return false;
      return this.#whenUnlocked(signal, () => update.run(next, ID, old).changes === 1);
    });
  }

  /**
   * SQLite cannot push, but the operating system can: every commit by any process writes
   * the WAL file, so a directory watch (inotify) wakes the reader, which then reads. The
   * write that wakes us comes before the commit is published (in the shared-memory index,
   * which makes no file event), so a read that still sees the old value is retried a few
   * times over the next ~60 ms.
   */
  watch(signal: AbortSignal): AsyncIterable<bigint> {
    this.#calls.checkOpen();
    const names = new Set([basename(this.path), `${basename(this.path)}-wal`]);
    return latestValues<bigint>(signal, (push, fail) => {
      const wake = readOnWake(() => this.read(signal), push, { signal, retryMs: COMMIT_RETRY_MS });
      const check = () =>
        wake().catch((err: unknown) => {
          if (!signal.aborted) fail(err);
        });
      const watchFailed = (err: unknown) => fail(this.#calls.error("watch", err));
      let watcher: ReturnType<typeof watchFiles>;
      try {
        watcher = watchFiles(dirname(this.path), (_event, file) => {
          if (file !== null && names.has(file)) void check();
        });
      } catch (err) {
        watchFailed(err); // e.g. ENOSPC: the inotify watch limit is reached
        return () => {};
      }
      watcher.on("error", watchFailed);
      // close() ends the watch: the file watch would otherwise keep the process alive.
      const end = () => {
        watcher.close();
        fail(new ClosedError("sqlite store"));
      };
      this.#watches.add(end);
      void check();
      return () => {
        this.#watches.delete(end);
        watcher.close();
      };
    });
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

  #decode(operation: string, value: unknown): bigint | undefined {
    if (value === undefined) return undefined;
    if (typeof value !== "bigint") throw wrongType(KIND, operation, value);
    return checkStoredTime(value, KIND, operation);
  }

  /**
   * Runs `fn` at once; only when the database is locked does it go on asynchronously,
   * retrying with short, growing, jittered waits (a write holds the lock for well under
   * a millisecond) until busyTimeout, then throws the driver's busy error.
   */
  #whenUnlocked<T>(signal: AbortSignal | undefined, fn: () => T): T | Promise<T> {
    try {
      return fn();
    } catch (err) {
      if (!isBusy(err)) throw err;
    }
    return this.#retry(signal, fn);
  }

  async #retry<T>(signal: AbortSignal | undefined, fn: () => T): Promise<T> {
    const deadline = performance.now() + this.#busyTimeoutMs;
    for (let attempt = 1; ; attempt++) {
      await sleep(Math.random() * Math.min(attempt, 20));
      this.#calls.checkOpen();
      signal?.throwIfAborted();
      try {
        return fn();
      } catch (err) {
        if (!isBusy(err) || performance.now() >= deadline) throw err;
      }
    }
  }

  #retrySync(fn: () => void): void {
    const deadline = performance.now() + this.#busyTimeoutMs;
    for (;;) {
      try {
        fn();
        return;
      } catch (err) {
        if (!isBusy(err) || performance.now() >= deadline) throw err;
        Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 2);
      }
    }
  }
}
