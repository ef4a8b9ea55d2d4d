import { durationMs, safeUrl } from "../config.js";
import { ConfigError } from "../errors.js";
import type { PostgresStoreOptions } from "./postgres.js";

/** URL query options: the store's own, then connection and TLS settings passed on to pg. */
export const POSTGRES_URL_OPTIONS = [
  "table",
  "schema",
  "timeout",
  "host",
  "port",
  "user",
  "password",
  "ssl",
  "sslmode",
  "sslcert",
  "sslkey",
  "sslrootcert",
  "sslnegotiation",
  "uselibpqcompat",
  "application_name",
  "options",
] as const;

/**
 * Options from a `postgres://…?table=…&schema=…&timeout=…` URL. The whole URL goes to pg,
 * which ignores the store's own options.
 */
export function postgresOptionsFromUrl(
  url: string,
  params: Map<string, string>,
): PostgresStoreOptions {
  // pg accepts an empty host (`postgres://user@/db?host=/run/postgresql`, or PGHOST).
  const emptyHost = /^postgres(?:ql)?:\/\/(?:[^/?#@]*@)?(?=[/?#]|$)/i.test(url);
  if (!emptyHost && !URL.canParse(url)) {
    throw new ConfigError(
      "store",
      `malformed PostgreSQL URL ${JSON.stringify(safeUrl(url))}: use postgres://user:password@host:port/database`,
    );
  }
  const options: PostgresStoreOptions = { connectionString: url };
  const table = params.get("table");
  if (table !== undefined) options.table = table;
  const schema = params.get("schema");
  if (schema !== undefined) options.schema = schema;
  const timeout = params.get("timeout");
  if (timeout !== undefined) options.timeoutMs = durationMs("timeout", timeout);
  return options;
}
