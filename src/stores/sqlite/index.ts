/** `globalclock/sqlite`: the embedded default store, a row in a SQLite file. */
import { durationMs, splitOpaqueUrl, urlOptions } from "../../config.js";
import type { OpenOptions } from "../../store.js";
import { SqliteStore, type SqliteStoreOptions } from "./store.js";

export { SqliteStore, type SqliteStoreOptions } from "./store.js";

/** `sqlite:PATH?table=…&synchronous=…&busyTimeout=…` */
export async function open(url: string, options: OpenOptions = {}): Promise<SqliteStore> {
  const { path, params } = splitOpaqueUrl(url, "sqlite:");
  const known = urlOptions("sqlite", params, ["table", "synchronous", "busyTimeout"]);
  const settings: SqliteStoreOptions = { path, readOnly: options.readOnly ?? false };
  const table = known.get("table");
  if (table !== undefined) settings.table = table;
  const synchronous = known.get("synchronous");
  if (synchronous !== undefined) settings.synchronous = synchronous as "full" | "normal";
  const busy = known.get("busyTimeout");
  if (busy !== undefined) settings.busyTimeoutMs = durationMs("busyTimeout", busy);
  return new SqliteStore(settings);
}
