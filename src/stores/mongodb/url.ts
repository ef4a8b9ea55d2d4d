import { checkIdentifier, durationMs, safeUrl, urlOptions } from "../../config.js";
import { ConfigError } from "../../errors.js";
import { DEFAULT_TIMEOUT_MS } from "../../store.js";
import { MONGODB_DEFAULTS, type MongoStoreOptions } from "./store.js";

/** Defaults of a `mongodb://` store URL. */
export const MONGODB_URL_DEFAULTS = Object.freeze({
  database: "globalclock",
  collection: "globalclock",
  timeout: `${DEFAULT_TIMEOUT_MS}ms`,
  pollInterval: "250ms",
});

/** Our own options in a store URL. */
const OWN = ["collection", "writeConcern", "readConcern", "timeout", "pollInterval"];

/** Driver options passed through unchanged: how to reach and authenticate to the servers. */
const DRIVER = [
  "replicaSet",
  "directConnection",
  "loadBalanced",
  "authSource",
  "authMechanism",
  "authMechanismProperties",
  "tls",
  "ssl",
  "tlsCAFile",
  "tlsCertificateKeyFile",
  "tlsCertificateKeyFilePassword",
  "tlsAllowInvalidCertificates",
  "tlsAllowInvalidHostnames",
  "tlsInsecure",
  "appName",
  "compressors",
  "zlibCompressionLevel",
  "maxPoolSize",
  "minPoolSize",
  "maxIdleTimeMS",
  "heartbeatFrequencyMS",
  "localThresholdMS",
  "retryWrites",
  "retryReads",
  "srvMaxHosts",
  "srvServiceName",
];

/** The driver's names for two of ours, taken as ours (connection strings often carry w=majority). */
const ALIASES: Record<string, string> = { w: "writeConcern", readConcernLevel: "readConcern" };

/** Driver options that would change a guarantee or a bound; ours replace them. */
const REPLACED: Record<string, string> = {
  journal: "writeConcern",
  wtimeoutMS: "timeout",
  readPreference: "nothing: the clock is always read from the primary",
  readPreferenceTags: "nothing: the clock is always read from the primary",
  maxStalenessSeconds: "nothing: the clock is always read from the primary",
  timeoutMS: "timeout",
  serverSelectionTimeoutMS: "timeout",
  connectTimeoutMS: "timeout",
  socketTimeoutMS: "timeout",
};

export interface MongoUrl {
  /** The URL handed to the driver: ours with only the driver's own options. */
  driverUrl: string;
  database: string;
  collection: string;
  /** Bound on server selection, connecting, and each wait for an answer (ms). */
  timeoutMs: number;
  store: MongoStoreOptions;
}

/**
 * Reads `mongodb://[user:pass@]host[:port][,…]/[database][?options]` (or `mongodb+srv://`).
 * The database defaults to "globalclock" (a Juju controller keeps its clock in "juju").
 * Options: collection (default "globalclock"), writeConcern (majority | n), readConcern
 * (majority | linearizable | local), timeout (default 2s, as every store's), pollInterval (default 250ms),
 * and the driver's connection options (replicaSet, tls, authSource, …), passed through.
 * The driver's `w` and `readConcernLevel` are read as writeConcern and readConcern; its
 * journal, read preference and timeout options are refused, as ours replace them.
 */
export function parseMongoUrl(url: string): MongoUrl {
  const shown = JSON.stringify(safeUrl(url));
  const scheme = /^(mongodb(?:\+srv)?):\/\//i.exec(url)?.[1];
  if (!scheme || url.includes("#")) {
    throw new ConfigError(
      "store",
      `malformed MongoDB URL ${shown}: expected mongodb://host[:port]/[database][?options]`,
    );
  }
  const q = url.indexOf("?");
  const base = q < 0 ? url : url.slice(0, q);
  const slash = base.indexOf("/", scheme.length + 3);
  let database: string;
  let params: URLSearchParams;
  try {
    database = slash < 0 ? "" : decodeURIComponent(base.slice(slash + 1));
    params = new URLSearchParams(q < 0 ? "" : url.slice(q + 1));
  } catch {
    throw new ConfigError("store", `malformed MongoDB URL ${shown}`);
  }
  database ||= MONGODB_URL_DEFAULTS.database;
  if (!/^[^/\\. "$*<>:|?]{1,63}$/.test(database)) {
    throw new ConfigError(
      "database",
      `invalid database name ${JSON.stringify(database)} in ${shown}`,
    );
  }
  for (const key of params.keys()) {
    const instead = REPLACED[key];
    if (instead) {
      throw new ConfigError(
        "store",
        `MongoDB URL option "${key}" is not accepted here; use ${instead}`,
      );
    }
  }
  for (const [alias, ours] of Object.entries(ALIASES)) {
    const value = params.get(alias);
    if (value === null) continue;
    if (params.has(ours)) {
      throw new ConfigError(ours, `MongoDB URL has both ${alias} and ${ours}: give one`);
    }
    params.delete(alias);
    params.set(ours, value);
  }
  const known = urlOptions("mongodb", params, [...OWN, ...DRIVER]);
  const passed = new URLSearchParams();
  for (const [key, value] of params) if (DRIVER.includes(key)) passed.append(key, value);
  const collection = checkIdentifier(
    "collection",
    known.get("collection") ?? MONGODB_URL_DEFAULTS.collection,
  );
  const timeoutMs = durationMs("timeout", known.get("timeout") ?? MONGODB_URL_DEFAULTS.timeout);
  if (timeoutMs <= 0) throw new ConfigError("timeout", "invalid timeout: must be greater than 0");
  const store: MongoStoreOptions = {
    timeoutMs,
    pollIntervalMs: durationMs(
      "pollInterval",
      known.get("pollInterval") ?? MONGODB_URL_DEFAULTS.pollInterval,
    ),
    // A change stream's server-side wait must end well before the client gives up.
    maxAwaitTimeMs: Math.min(MONGODB_DEFAULTS.maxAwaitTimeMs, timeoutMs / 2),
  };
  const w = known.get("writeConcern");
  if (w !== undefined)
    store.writeConcern = w === "majority" ? w : /^\d+$/.test(w) ? Number(w) : (w as "majority");
  const level = known.get("readConcern");
  if (level !== undefined) store.readConcern = level as MongoStoreOptions["readConcern"];
  const driverUrl = passed.size ? `${base}?${passed}` : base;
  return { driverUrl, database, collection, timeoutMs, store };
}
