import { durationMs, urlOptions, validPort } from "../../config.js";
import { ConfigError, quote, safeUrl } from "../../errors.js";

/** The store's own URL options; they are taken out before the URL goes to pg. */
const OWN = ["table", "schema", "timeout"] as const;

/** Connection and TLS settings passed on to pg. */
const DRIVER = [
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

export interface PostgresUrl {
  /** The URL for pg: the caller's, without the store's own options. */
  connectionString: string;
  table?: string;
  schema?: string;
  timeoutMs?: number;
}

/** Reads `postgres://user:password@host:port/database?table=…&schema=…&timeout=…&sslmode=…`. */
export function parsePostgresUrl(url: string): PostgresUrl {
  // pg accepts an empty host (`postgres://user@/db?host=/run/postgresql`, or PGHOST).
  const emptyHost = /^postgres(?:ql)?:\/\/(?:[^/?#@]*@)?(?=[/?#]|$)/i.test(url);
  if (!emptyHost && !URL.canParse(url)) {
    throw new ConfigError(
      "store",
      `malformed PostgreSQL URL ${quote(safeUrl(url))}: use postgres://user:password@host:port/database`,
    );
  }
  // An empty or impossible port would otherwise silently become 5432.
  const hostPort = /^postgres(?:ql)?:\/\/(?:[^/?#]*@)?([^/?#@]*)/i.exec(url)?.[1] ?? "";
  const port = /^(?:\[[^\]]*\]|[^:]*):(.*)$/.exec(hostPort)?.[1];
  if (port !== undefined && !validPort(port)) {
    throw new ConfigError(
      "store",
      `malformed PostgreSQL URL ${quote(safeUrl(url))}: the port must be a number from 1 to 65535`,
    );
  }
  const q = url.indexOf("?");
  const base = q < 0 ? url : url.slice(0, q);
  const params = new URLSearchParams(q < 0 ? "" : url.slice(q + 1));
  const known = urlOptions("postgres", params, [...OWN, ...DRIVER]);
  for (const key of OWN) params.delete(key);
  const parsed: PostgresUrl = { connectionString: params.size ? `${base}?${params}` : base };
  const table = known.get("table");
  if (table !== undefined) parsed.table = table;
  const schema = known.get("schema");
  if (schema !== undefined) parsed.schema = schema;
  const timeout = known.get("timeout");
  if (timeout !== undefined) parsed.timeoutMs = durationMs("timeout", timeout);
  return parsed;
}
