import { watch as watchFiles } from "node:fs";
import { basename, dirname, resolve } from "node:path";
import Database from "better-sqlite3";
import { checkIdentifier, durationMs } from "../config.js";
import { ClosedError, ConfigError, describe, StoreError } from "../errors.js";
import { latestValues, readOnWake } from "../push.js";
import { checkStoredTime, wrongType } from "../record.js";
import { sleep } from "../sleep.js";
import type { ClockStore } from "../store.js";

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
  /** How long one operation may wait for another process's write lock. Default 5 s. */
  busyTimeoutMs?: number;
}

const KIND = "sqlite";
/** Delays of the re-reads after a file event, while the commit may not be visible yet. */
const COMMIT_RETRY_MS = [1, 4, 15, 40];
const ID = "g";

type Busy = Error & { code?: string };
const isBusy = (err: unknown): boolean =>
  typeof (err as Busy)?.code === "string" &&
  /^SQLITE_(BUSY|LOCKED)/.test((err as Busy).code as string);

/**
 * The embedded default: one row in a SQLite file, in WAL mode, durable by default.
 * Several processes may share the file. better-sqlite3 is synchronous and its busy
 * timeout would block the event loop, so the busy timeout is 0 and a locked write is
 * retried here, asynchronously, with short jittered sleeps.
 */
export class SqliteStore implements ClockStore {
  readonly kind = KIND;
  readonly path: string;
  readonly #db: Database.Database;
  readonly #busyTimeoutMs: number;
  readonly #select: Database.Statement<[string], unknown>;
  readonly #insert: Database.Statement<[string], unknown>;
  readonly #update: Database.Statement<[bigint, string, bigint], unknown>;
  readonly #watches = new Set<() => void>();
  #closed = false;

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
    this.#busyTimeoutMs = options.busyTimeoutMs ?? 5000;
    if (!(this.#busyTimeoutMs >= 0))
      throw new ConfigError("busyTimeout", "invalid busyTimeout: must be ≥ 0");
    try {
      this.#db = new Database(this.path, { timeout: 0 });
    } catch (err) {
      throw new StoreError(KIND, "open", `cannot open ${this.path}: ${describe(err)}`, {
        cause: err,
      });
    }
    try {
      this.#retrySync(() => {
        this.#db.pragma("journal_mode = WAL");
        this.#db.pragma(`synchronous = ${synchronous.toUpperCase()}`);
        this.#db.exec(
          `CREATE TABLE IF NOT EXISTS "${table}" (id TEXT PRIMARY KEY, time INTEGER NOT NULL)`,
        );
      });
      this.#select = this.#db
        .prepare<[string]>(`SELECT time FROM "${table}" WHERE id = ?`)
        .pluck()
        .safeIntegers();
      this.#insert = this.#db.prepare<[string]>(
        `INSERT INTO "${table}" (id, time) VALUES (?, 0) ON CONFLICT (id) DO NOTHING`,
      );
      this.#update = this.#db.prepare<[bigint, string, bigint]>(
        `UPDATE "${table}" SET time = ? WHERE id = ? AND time = ?`,
      );
    } catch (err) {
      this.#db.close();
      throw new StoreError(KIND, "open", `cannot prepare ${this.path}: ${describe(err)}`, {
        cause: err,
      });
    }
  }

  read(signal?: AbortSignal): Promise<bigint | undefined> {
    return this.#run("read", signal, () => this.#decode("read", this.#select.get(ID)));
  }

  ensure(signal?: AbortSignal): Promise<bigint> {
    return this.#run("ensure", signal, () => {
      this.#insert.run(ID);
      return this.#decode("ensure", this.#select.get(ID)) as bigint;
    });
  }

  compareAndSwap(old: bigint, next: bigint, signal?: AbortSignal): Promise<boolean> {
    return this.#run("compareAndSwap", signal, () => this.#update.run(next, ID, old).changes === 1);
  }

  /**
   * SQLite cannot push, but the operating system can: every commit by any process writes
   * the WAL file, so a directory watch (inotify) wakes the reader, which then reads. The
   * write that wakes us comes before the commit is published (in the shared-memory index,
   * which makes no file event), so a read that still sees the old value is retried a few
   * times over the next ~60 ms.
   */
  watch(signal: AbortSignal): AsyncIterable<bigint> {
    if (this.#closed) throw new ClosedError("sqlite store");
    const names = new Set([basename(this.path), `${basename(this.path)}-wal`]);
    return latestValues<bigint>(signal, (push, fail) => {
      const wake = readOnWake(() => this.read(signal), push, { signal, retryMs: COMMIT_RETRY_MS });
      const check = () =>
        wake().catch((err: unknown) => {
          if (!signal.aborted) fail(err);
        });
      const watchFailed = (err: unknown) =>
        fail(new StoreError(KIND, "watch", describe(err), { cause: err }));
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
    if (this.#closed) return;
    this.#closed = true;
    for (const end of this.#watches) end();
    this.#db.close();
  }

  #decode(operation: string, value: unknown): bigint | undefined {
    if (value === undefined) return undefined;
    if (typeof value !== "bigint") throw wrongType(KIND, operation, value);
    return checkStoredTime(value, KIND, operation);
  }

  /**
   * Runs `fn` at once; only when the database is locked does it go on asynchronously,
   * retrying with short, growing, jittered waits (a write holds the lock for well under
   * a millisecond) until busyTimeout.
   */
  #run<T>(operation: string, signal: AbortSignal | undefined, fn: () => T): Promise<T> {
    try {
      return Promise.resolve(this.#attempt(operation, signal, fn));
    } catch (err) {
      if (!isBusy(err)) return Promise.reject(err);
    }
    return this.#retry(operation, signal, fn);
  }

  async #retry<T>(operation: string, signal: AbortSignal | undefined, fn: () => T): Promise<T> {
    const deadline = performance.now() + this.#busyTimeoutMs;
    for (let attempt = 1; ; attempt++) {
      await sleep(Math.random() * Math.min(attempt, 20));
      try {
        return this.#attempt(operation, signal, fn);
      } catch (err) {
        if (!isBusy(err)) throw err;
        if (performance.now() >= deadline) {
          throw new StoreError(
            KIND,
            operation,
            `database stayed locked for ${this.#busyTimeoutMs} ms`,
            {
              cause: err,
            },
          );
        }
      }
    }
  }

  /** One try. Throws the driver's busy error as it is, anything else as a StoreError. */
  #attempt<T>(operation: string, signal: AbortSignal | undefined, fn: () => T): T {
    if (this.#closed) throw new ClosedError("sqlite store");
    signal?.throwIfAborted();
    try {
      return fn();
    } catch (err) {
      if (isBusy(err) || err instanceof StoreError) throw err;
      throw new StoreError(KIND, operation, describe(err), { cause: err });
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

/** Options from a `sqlite:PATH?table=…&synchronous=…&busyTimeout=…` URL. */
export function sqliteOptionsFromUrl(
  path: string,
  params: Map<string, string>,
): SqliteStoreOptions {
  const options: SqliteStoreOptions = { path };
  const table = params.get("table");
  if (table !== undefined) options.table = table;
  const synchronous = params.get("synchronous");
  if (synchronous !== undefined) options.synchronous = synchronous as "full" | "normal";
  const busy = params.get("busyTimeout");
  if (busy !== undefined) options.busyTimeoutMs = durationMs("busyTimeout", busy);
  return options;
}
