import { createHash } from "node:crypto";
import pg from "pg";
import { checkIdentifier } from "../config.js";
import { ClosedError, ConfigError, StoreError } from "../errors.js";
import { latestValues } from "../push.js";
import { parseStoredDecimal } from "../record.js";
import type { ClockStore } from "../store.js";
import { abortable } from "./deadline.js";
import { describePgError, isFatalPgError, pgSecrets } from "./postgres-errors.js";

export { POSTGRES_URL_OPTIONS, postgresOptionsFromUrl } from "./postgres-url.js";

export interface PostgresStoreOptions {
  /**
   * `postgres://user:password@host:port/database?sslmode=…`. Whatever it leaves out comes
   * from the usual PG* environment (PGHOST, PGUSER, PGPASSWORD, PGDATABASE, PGSSLMODE, …)
   * and ~/.pgpass, as with psql.
   */
  connectionString?: string;
  /** Table holding the clock row, created if missing. Default "globalclock". */
  table?: string;
  /** Schema of the table. Default: none, so the session's search_path decides. */
  schema?: string;
  /** Deadline for connecting and for each statement (client and server side), in ms. Default 5000. */
  timeoutMs?: number;
  /** Most connections the store's pool opens. Default 4. */
  poolSize?: number;
}

const KIND = "postgres";
const ID = "g";
export const DEFAULT_POSTGRES_TABLE = "globalclock";
export const DEFAULT_POSTGRES_TIMEOUT_MS = 5000;

// Every column comes back as the server's text: the store parses the bigint itself, exactly,
// without touching pg's process-wide type parsers (other code may rely on them).
const AS_TEXT = { getTypeParser: () => (text: string) => text } as unknown as pg.CustomTypesConfig;

const UNDEFINED_TABLE = "42P01";
const CACHED_PLAN_CHANGED = "0A000";

/**
 * The clock as one row `(id text primary key, time bigint)` in a PostgreSQL table.
 * CAS is one `UPDATE … WHERE id = $1 AND time = $2`, which also NOTIFYs the new time, so
 * watchers (LISTEN) need no polling. Connections come from a pool, so a restarted server
 * is reconnected to by itself.
 */
export class PostgresStore implements ClockStore {
  readonly kind = KIND;
  readonly table: string;
  readonly schema: string | undefined;
  readonly timeoutMs: number;
  /** The LISTEN/NOTIFY channel, derived from the table's name. */
  readonly channel: string;
  readonly #relation: string;
  readonly #config: pg.PoolConfig;
  readonly #pool: pg.Pool;
  readonly #secrets: string[];
  /** Ends each running watch (its connection is its own), failing it with the reason. */
  readonly #watches = new Set<(err: unknown) => void>();
  readonly #statementPrefix: string;
  #created: Promise<void> | undefined;
  #closed = false;

  constructor(options: PostgresStoreOptions = {}) {
    this.table = checkIdentifier("table", options.table ?? DEFAULT_POSTGRES_TABLE);
    this.schema =
      options.schema === undefined ? undefined : checkIdentifier("schema", options.schema);
    this.timeoutMs = options.timeoutMs ?? DEFAULT_POSTGRES_TIMEOUT_MS;
    if (!(this.timeoutMs > 0)) throw new ConfigError("timeout", "invalid timeout: must be > 0");
    const poolSize = options.poolSize ?? 4;
    if (!Number.isInteger(poolSize) || poolSize < 1)
      throw new ConfigError("poolSize", "invalid poolSize: must be a whole number ≥ 1");
    this.#relation = this.schema ? `"${this.schema}"."${this.table}"` : `"${this.table}"`;
    this.channel = channelName(this.schema ? `${this.schema}.${this.table}` : this.table);
    this.#statementPrefix = `globalclock_${createHash("sha256").update(this.#relation).digest("hex").slice(0, 16)}`;
    const timeout = Math.ceil(this.timeoutMs);
    this.#config = {
      connectionString: options.connectionString,
      connectionTimeoutMillis: timeout,
      query_timeout: timeout,
      statement_timeout: timeout,
      keepAlive: true,
      // A LISTEN connection to a host that vanished is noticed after about the timeout,
      // not after the operating system's default of two hours.
      keepAliveInitialDelayMillis: timeout,
      application_name: "globalclock",
      max: poolSize,
      idleTimeoutMillis: 30_000,
    };
    this.#secrets = pgSecrets(options.connectionString);
    this.#pool = new pg.Pool(this.#config);
    // An idle connection that breaks (server restart) is dropped by the pool; without a
    // listener its 'error' would crash the process.
    this.#pool.on("error", () => {});
  }

  read(signal?: AbortSignal): Promise<bigint | undefined> {
    return this.#run("read", signal, async () => {
      try {
        const res = await this.#query(
          `SELECT time FROM ${this.#relation} WHERE id = $1`,
          [ID],
          "read",
        );
        return this.#decode(res.rows[0], "read");
      } catch (err) {
        if (pgCode(err) === UNDEFINED_TABLE) return undefined; // no table yet: no record yet
        throw err;
      }
    });
  }

  /**
   * One statement once the table exists: insert the row at 0, or lock the existing row and
   * return it unchanged (`SET time = t.time`), so a concurrent insert is never missed.
   */
  ensure(signal?: AbortSignal): Promise<bigint> {
    return this.#run("ensure", signal, async () => {
      await this.#createTable();
      const res = await this.#query(
        `INSERT INTO ${this.#relation} AS t (id, time) VALUES ($1, '0')
         ON CONFLICT (id) DO UPDATE SET time = t.time RETURNING time`,
        [ID],
      );
      return this.#decode(res.rows[0], "ensure") as bigint;
    });
  }

  compareAndSwap(old: bigint, next: bigint, signal?: AbortSignal): Promise<boolean> {
    return this.#run("compareAndSwap", signal, async () => {
      // A negative `old` can only match a corrupt record, which is never overwritten.
      if (old < 0n) return false;
      try {
        const res = await this.#query(
          `UPDATE ${this.#relation} SET time = $3 WHERE id = $1 AND time = $2
           RETURNING pg_notify($4, time::text)`,
          [ID, old.toString(), next.toString(), this.channel],
          "cas",
        );
        return res.rowCount === 1;
      } catch (err) {
        if (pgCode(err) === UNDEFINED_TABLE) return false;
        throw err;
      }
    });
  }

  /**
   * LISTEN on a connection of its own. When that connection breaks (server restart), it
   * reconnects with growing pauses (up to 2 s) until the signal aborts, and reads the time
   * after every (re)subscription so that no change is lost in between. Errors that no
   * retry can mend (authentication, missing database) fail the iterator with a StoreError.
   */
  watch(signal: AbortSignal): AsyncIterable<bigint> {
    if (this.#closed) throw new ClosedError("postgres store");
    return latestValues<bigint>(signal, (pushAny, fail) => {
      // A catch-up read may answer after a newer notification: never yield an older time.
      let highest = -1n;
      const push = (time: bigint) => {
        if (time < highest) return;
        highest = time;
        pushAny(time);
      };
      let stopped = false;
      let current: pg.Client | undefined;
      let timer: NodeJS.Timeout | undefined;
      let failures = 0;
      const catchUp = () =>
        this.read(signal).then(
          (time) => {
            if (time !== undefined) push(time);
          },
          () => {}, // subscribed again; a failed catch-up read is mended by the next change
        );
      const session = (): Promise<void> => {
        const client = new pg.Client(this.#config);
        current = client;
        let over = false;
        const lost = (err?: unknown) => {
          if (over || stopped) return;
          over = true;
          client.end().catch(() => {});
          if (err !== undefined && isFatalPgError(err)) {
            fail(this.#error("watch", err));
            return;
          }
          const pause = Math.min(2000, 50 * 2 ** failures++);
          timer = setTimeout(() => void session(), pause);
        };
        client.on("error", lost);
        client.on("end", () => lost());
        client.on("notification", (msg) => {
          if (msg.channel !== this.channel || msg.payload === undefined) return;
          try {
            push(parseStoredDecimal(msg.payload, KIND, "watch"));
          } catch (err) {
            fail(err);
          }
        });
        return client
          .connect()
          .then(() => client.query(`LISTEN "${this.channel}"`))
          .then(() => {
            failures = 0;
            return catchUp();
          }, lost);
      };
      const first = session();
      const stop = () => {
        stopped = true;
        clearTimeout(timer);
        current?.end().catch(() => {});
        this.#watches.delete(end);
      };
      const end = (err: unknown) => {
        stop();
        fail(err);
      };
      this.#watches.add(end);
      // The first subscription is in place (or being retried) before values are awaited.
      return first.then(() => stop);
    });
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    for (const end of this.#watches) end(new ClosedError("postgres store"));
    await this.#pool.end().catch(() => {});
  }

  /** `CREATE TABLE IF NOT EXISTS`, once per store; retried after a failure. */
  #createTable(): Promise<void> {
    this.#created ??= this.#query(
      `CREATE TABLE IF NOT EXISTS ${this.#relation} (id text PRIMARY KEY, time bigint NOT NULL)`,
    ).then(
      () => {},
      async (err) => {
        // Two processes creating the table at once: one of them loses on the catalog.
        if (pgCode(err) === "42P07" || pgCode(err) === "23505") return;
        // PostgreSQL checks the CREATE privilege before it looks for the table, so a user
        // that may only use an existing table is refused even with IF NOT EXISTS.
        if (pgCode(err) === "42501") {
          const found = await this.#query("SELECT to_regclass($1) IS NOT NULL AS found", [
            this.#relation,
          ]).catch(() => undefined);
          if (found?.rows[0]?.found === "t") return;
        }
        this.#created = undefined;
        throw err;
      },
    );
    return this.#created;
  }

  /**
   * `prepare` names the hot statements (read, CAS): each pooled connection then parses and
   * plans them once, instead of on every call.
   */
  #query(
    text: string,
    values?: unknown[],
    prepare?: "read" | "cas",
  ): Promise<pg.QueryResult<Record<string, string>>> {
    if (!prepare) return this.#pool.query({ text, values, types: AS_TEXT });
    const name = `${this.#statementPrefix}_${prepare}`;
    return this.#pool.query({ text, values, types: AS_TEXT, name }).catch((err: unknown) => {
      // The table's column types changed under a prepared plan: ask again, unprepared.
      if (pgCode(err) !== CACHED_PLAN_CHANGED) throw err;
      return this.#pool.query({ text, values, types: AS_TEXT });
    });
  }

  #decode(row: Record<string, string> | undefined, operation: string): bigint | undefined {
    if (row === undefined) return undefined;
    return parseStoredDecimal(String(row.time), KIND, operation);
  }

  async #run<T>(operation: string, signal: AbortSignal | undefined, fn: () => Promise<T>) {
    if (this.#closed) throw new ClosedError("postgres store");
    signal?.throwIfAborted();
    try {
      return await abortable(fn(), signal);
    } catch (err) {
      if (signal?.aborted && err === signal.reason) throw err;
      throw this.#error(operation, err);
    }
  }

  #error(operation: string, err: unknown): StoreError {
    if (err instanceof StoreError) return err;
    return new StoreError(KIND, operation, describePgError(err, this.timeoutMs, this.#secrets), {
      cause: err,
    });
  }
}

function pgCode(err: unknown): string | undefined {
  const code = (err as { code?: unknown } | undefined)?.code;
  return typeof code === "string" ? code : undefined;
}

/** A channel name is an identifier: at most 63 bytes, so long names end in a hash. */
function channelName(qualified: string): string {
  const name = `globalclock.${qualified}`;
  if (name.length <= 63) return name;
  const hash = createHash("sha256").update(name).digest("hex").slice(0, 16);
  return `${name.slice(0, 46)}_${hash}`;
}
