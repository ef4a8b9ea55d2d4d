/**
 * `globalclock/postgres`: the clock in a PostgreSQL table, on a pool of the caller's
 * (`new PostgresStore({ pool })`) or one made from a URL (`open`), with lease records beside
 * it and `checkFence` for data kept in the same database. `pg` is an optional peer
 * dependency, loaded only here.
 */
import type { OpenOptions } from "../../store.js";
import type { PgListenClient } from "./client.js";
import { pgSecrets } from "./errors.js";
import { DEFAULT_POSTGRES_TIMEOUT_MS, PostgresStore } from "./store.js";
import { parsePostgresUrl } from "./url.js";

export type { PgListenClient, PgPool, PgQuery, PgResult } from "./client.js";
export { checkFence, type PgFence, type PgFenceClient } from "./fence.js";
export type { PostgresLeases } from "./leases.js";
export {
  DEFAULT_POSTGRES_TABLE,
  DEFAULT_POSTGRES_TIMEOUT_MS,
  PostgresStore,
  type PostgresStoreOptions,
} from "./store.js";
export { type PostgresUrl, parsePostgresUrl } from "./url.js";

/** Most connections the pool of a URL-opened store holds for statements. */
const POOL_SIZE = 4;

/**
 * Opens `postgres://…` (or `postgresql://…`) on a pool of its own, which closing the store
 * ends. Whatever the URL leaves out comes from the PG* environment and ~/.pgpass, as with
 * psql. Each watch LISTENs on a connection of its own, outside the pool.
 */
export async function open(url: string, _options: OpenOptions = {}): Promise<PostgresStore> {
  const parsed = parsePostgresUrl(url);
  const { default: pg } = await import("pg");
  const timeout = Math.ceil(parsed.timeoutMs ?? DEFAULT_POSTGRES_TIMEOUT_MS);
  const config = {
    connectionString: parsed.connectionString,
    connectionTimeoutMillis: timeout,
    query_timeout: timeout,
    statement_timeout: timeout,
    keepAlive: true,
    // A LISTEN connection to a host that vanished is noticed after about the timeout,
    // not after the operating system's default of two hours.
    keepAliveInitialDelayMillis: timeout,
    application_name: "globalclock",
    max: POOL_SIZE,
    idleTimeoutMillis: 30_000,
  };
  const pool = new pg.Pool(config);
  // An idle connection that breaks (server restart) is dropped by the pool; without a
  // listener its 'error' would crash the process.
  pool.on("error", () => {});
  const listen = async (): Promise<PgListenClient> => {
    const client = new pg.Client(config);
    client.on("error", () => {}); // until the watch listens itself
    try {
      await client.connect();
    } catch (err) {
      client.end().catch(() => {});
      throw err;
    }
    return Object.assign(client, { release: () => void client.end().catch(() => {}) });
  };
  try {
    return new PostgresStore({
      pool,
      listen,
      table: parsed.table,
      schema: parsed.schema,
      timeoutMs: parsed.timeoutMs,
      secrets: pgSecrets(parsed.connectionString),
      onClose: () => pool.end().catch(() => {}),
    });
  } catch (err) {
    await pool.end().catch(() => {});
    throw err;
  }
}
