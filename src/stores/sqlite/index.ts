/**
 * `globalclock/sqlite`: the embedded default store, a row in a SQLite file, with lease
 * records beside it and `checkFence` for data kept in the same file.
 */
import { durationMs, splitOpaqueUrl, urlOptions } from "../../config.js";
import { ConfigError } from "../../errors.js";
import type { OpenOptions } from "../../store.js";
import { SqliteStore, type SqliteStoreOptions } from "./store.js";

export { checkFence, type SqliteFence, type SqliteFenceDatabase } from "./fence.js";
export type { SqliteLeases } from "./leases.js";
export { SqliteStore, type SqliteStoreOptions } from "./store.js";

/**
 * `sqlite:PATH?table=…&synchronous=…&timeout=…`. `timeout` is how long a call may wait for
 * another process's write lock; `busyTimeout` is its older name.
 */
export async function open(url: string, options: OpenOptions = {}): Promise<SqliteStore> {
  const { path, params } = splitOpaqueUrl(url, "sqlite:");
  const known = urlOptions("sqlite", params, ["table", "synchronous", "timeout", "busyTimeout"]);
  if (known.has("timeout") && known.has("busyTimeout"))
    throw new ConfigError("timeout", "sqlite URL has both timeout and busyTimeout: give one");
  const settings: SqliteStoreOptions = { path, readOnly: options.readOnly ?? false };
  const table = known.get("table");
  if (table !== undefined) settings.table = table;
  const synchronous = known.get("synchronous");
  if (synchronous !== undefined) settings.synchronous = synchronous as "full" | "normal";
  const timeout = known.get("timeout") ?? known.get("busyTimeout");
  if (timeout !== undefined) settings.busyTimeoutMs = durationMs("timeout", timeout);
  return new SqliteStore(settings);
}
