import { checkIdentifier } from "../../config.js";
import { ClosedError, ConfigError } from "../../errors.js";
import { catchingUp } from "../../push.js";
import { parseStoredDecimal } from "../../record.js";
import { type ClockStore, DEFAULT_TIMEOUT_MS } from "../../store.js";
import { StoreCalls } from "../call.js";
import type { PgListenClient, PgPool, PgResult } from "./client.js";
import { explainPgError, isFatalPgError, pgCode } from "./errors.js";
import { PostgresLeases } from "./leases.js";
import { channelName, leaseChannelName } from "./names.js";
import { PgTables, UNDEFINED_TABLE } from "./tables.js";
import { type ListenOptions, listen } from "./watch.js";

export interface PostgresStoreOptions {
  /** The pool to run statements on: a `pg.Pool`, the caller's own or one `open` made. */
  pool: PgPool;
  /**
   * Opens the connection a watch LISTENs on. Default: `pool.connect()`, so each running
   * watch holds one of the pool's connections (and destroys it when it ends).
   */
  listen?: () => Promise<PgListenClient>;
  /**
   * Table holding the clock row, created if missing. Default "globalclock". Leases are kept
   * in `<table>_leases` beside it, and the cluster's maxStep in `<table>_settings`.
   */
  table?: string;
  /** Schema of the table. Default: none, so the session's search_path decides. */
  schema?: string;
  /** Deadline of each call, in ms. Default 2000 (DEFAULT_TIMEOUT_MS). */
  timeoutMs?: number;
  /** Passwords to mask in messages, besides those in URLs. */
  secrets?: readonly string[];
  /** Called once by close(), e.g. to end the pool the store was opened with. */
  onClose?: () => void | Promise<void>;
}

const KIND = "postgres";
const ID = "g";
export const DEFAULT_POSTGRES_TABLE = "globalclock";
export const DEFAULT_POSTGRES_TIMEOUT_MS = DEFAULT_TIMEOUT_MS;

/**
 * The clock as one row `(id text primary key, time bigint)` in a PostgreSQL table.
 * CAS is one `UPDATE … WHERE id = $1 AND time = $2`, which also NOTIFYs the new time, so
 * watchers (LISTEN) need no polling. Statements run on a pool, so a restarted server is
 * reconnected to by itself.
 */
export class PostgresStore implements ClockStore {
  readonly kind = KIND;
  readonly table: string;
  readonly schema: string | undefined;
  readonly timeoutMs: number;
  /** The LISTEN/NOTIFY channel, derived from the table's name. */
  readonly channel: string;
  /** Lease records (./leases.ts) beside the clock. */
  readonly leases: PostgresLeases;
  readonly #relation: string;
  readonly #readText: string;
  readonly #tables: PgTables;
  readonly #listen: () => Promise<PgListenClient>;
  readonly #calls: StoreCalls;
  readonly #onClose: (() => void | Promise<void>) | undefined;
  /** Ends each running watch (its connection is its own), failing it with the reason. */
  readonly #watches = new Set<(err: unknown) => void>();

  constructor(options: PostgresStoreOptions) {
    if (!options?.pool)
      throw new ConfigError("pool", "missing pool: pass a pg.Pool, or open a postgres:// URL");
    this.table = checkIdentifier("table", options.table ?? DEFAULT_POSTGRES_TABLE);
    this.schema =
      options.schema === undefined ? undefined : checkIdentifier("schema", options.schema);
    this.timeoutMs = options.timeoutMs ?? DEFAULT_POSTGRES_TIMEOUT_MS;
    if (!(this.timeoutMs > 0)) throw new ConfigError("timeout", "invalid timeout: must be > 0");
    const qualified = this.schema ? `${this.schema}.${this.table}` : this.table;
    this.channel = channelName(qualified);
    this.#tables = new PgTables(options.pool, this.table, this.schema);
    this.#relation = this.#tables.clock;
    this.#readText = `SELECT time FROM ${this.#relation} WHERE id = $1`;
    const pool = options.pool;
    this.#listen = options.listen ?? (() => pool.connect());
    this.#onClose = options.onClose;
    const secrets = options.secrets ?? [];
    this.#calls = new StoreCalls({
      kind: KIND,
      timeoutMs: this.timeoutMs,
      explain: (err) => explainPgError(err, this.timeoutMs, secrets),
    });
    this.leases = new PostgresLeases({
      tables: this.#tables,
      calls: this.#calls,
      channel: leaseChannelName(qualified),
      clockChannel: this.channel,
      listen: (operation) => this.#listenOptions(operation, leaseChannelName(qualified)),
    });
  }

  read(signal?: AbortSignal): Promise<bigint | undefined> {
    return this.#calls.run("read", signal, this.#readOnce);
  }

  // The read is the hot path (every Reader.now): its statement, values and handlers are made
  // once, and a stale plan's retry is folded into the one error handler.
  readonly #readValues = [ID];
  readonly #readDecode = (res: PgResult) => this.#decode(res.rows[0], "read");
  readonly #readFailed = (err: unknown): Promise<bigint | undefined> | undefined => {
    if (pgCode(err) === UNDEFINED_TABLE) return undefined; // no table yet: no record yet
    return this.#tables
      .unprepared(err, this.#readText, this.#readValues)
      .then(this.#readDecode, (again: unknown) => {
        if (pgCode(again) === UNDEFINED_TABLE) return undefined;
        throw again;
      });
  };
  readonly #readOnce = () =>
    this.#tables
      .prepared(this.#readText, this.#readValues, "read")
      .then(this.#readDecode, this.#readFailed);

  /**
   * One statement once the table exists: insert the row at 0, or lock the existing row and
   * return it unchanged (`SET time = t.time`), so a concurrent insert is never missed.
   */
  ensure(signal?: AbortSignal): Promise<bigint> {
    return this.#calls.run("ensure", signal, async () => {
      await this.#tables.createClock();
      const res = await this.#query(
        `INSERT INTO ${this.#relation} AS t (id, time) VALUES ($1, '0')
         ON CONFLICT (id) DO UPDATE SET time = t.time RETURNING time`,
        [ID],
      );
      return this.#decode(res.rows[0], "ensure") as bigint;
    });
  }

  compareAndSwap(old: bigint, next: bigint, signal?: AbortSignal): Promise<boolean> {
    return this.#calls.run("compareAndSwap", signal, () => {
      // A negative `old` can only match a corrupt record, which is never overwritten.
      if (old < 0n) return false;
      return this.#query(
        `UPDATE ${this.#relation} SET time = $3 WHERE id = $1 AND time = $2
         RETURNING pg_notify($4, time::text)`,
        [ID, old.toString(), next.toString(), this.channel],
        "cas",
      ).then(
        (res) => res.rowCount === 1,
        (err: unknown) => {
          if (pgCode(err) === UNDEFINED_TABLE) return false;
          throw err;
        },
      );
    });
  }

  /**
   * LISTEN on a connection of its own; see `listen` in ./watch.ts. Errors that no retry
   * can mend (authentication, missing database) fail the iterator with a StoreError.
   */
  watch(signal: AbortSignal): AsyncIterable<bigint> {
    this.#calls.checkOpen();
    return listen<bigint>(signal, this.#listenOptions("watch", this.channel), (push) => {
      const { offer, catchUp } = catchingUp(() => this.read(signal), push);
      return {
        notice: (payload) => offer(parseStoredDecimal(payload, KIND, "watch")),
        subscribed: catchUp,
      };
    });
  }

  async close(): Promise<void> {
    if (!this.#calls.close()) return;
    for (const end of this.#watches) end(new ClosedError("postgres store"));
    await this.#onClose?.();
  }

  #listenOptions(operation: string, channel: string): ListenOptions {
    return {
      connect: this.#listen,
      channel,
      isFatal: isFatalPgError,
      error: (err) => this.#calls.error(operation, err),
      watches: this.#watches,
    };
  }

  #query(text: string, values?: unknown[], prepare?: "read" | "cas") {
    return this.#tables.query(text, values, prepare);
  }

  #decode(row: Record<string, unknown> | undefined, operation: string): bigint | undefined {
    if (row === undefined) return undefined;
    return parseStoredDecimal(String(row.time), KIND, operation);
  }
}
