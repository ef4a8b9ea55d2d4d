import { safeUrl, urlOptions } from "./config.js";
import { ConfigError } from "./errors.js";
import { Reader } from "./reader.js";
import type { ClockStore } from "./store.js";
import { Updater } from "./updater.js";

/** The embedded default store: a SQLite file in the working directory. */
export const DEFAULT_STORE_URL = "sqlite:./globalclock.db";

export interface OpenOptions {
  signal?: AbortSignal;
}

type Opener = (url: string, options: OpenOptions) => Promise<ClockStore>;

// Each store is loaded only when its URL is used, so `globalclock now` on SQLite never
// loads a network client.
const OPENERS: Record<string, Opener> = {
  "memory:": async (url) => {
    const { MemoryStore } = await import("./stores/memory.js");
    const { path, params } = splitOpaque(url, "memory:");
    urlOptions("memory", params, []);
    return new MemoryStore(path || undefined);
  },
  "sqlite:": async (url) => {
    const { SqliteStore, sqliteOptionsFromUrl } = await import("./stores/sqlite.js");
    const { path, params } = splitOpaque(url, "sqlite:");
    const known = urlOptions("sqlite", params, ["table", "synchronous", "busyTimeout"]);
    return new SqliteStore(sqliteOptionsFromUrl(path, known));
  },
  "mongodb:": async (url, options) => {
    const { openMongoStore } = await import("./stores/mongodb-url.js");
    return openMongoStore(url, options);
  },
  "mongodb+srv:": async (url, options) => {
    const { openMongoStore } = await import("./stores/mongodb-url.js");
    return openMongoStore(url, options);
  },
  "postgres:": async (url) => {
    const pg = await import("./stores/postgres.js");
    const { params } = splitOpaque(url, "postgres:");
    const known = urlOptions("postgres", params, pg.POSTGRES_URL_OPTIONS);
    return new pg.PostgresStore(pg.postgresOptionsFromUrl(url, known));
  },
  "postgresql:": async (url) => {
    const pg = await import("./stores/postgres.js");
    const { params } = splitOpaque(url, "postgresql:");
    const known = urlOptions("postgres", params, pg.POSTGRES_URL_OPTIONS);
    return new pg.PostgresStore(pg.postgresOptionsFromUrl(url, known));
  },
  "etcd:": async (url) => {
    const { EtcdStore, etcdOptionsFromUrl } = await import("./stores/etcd.js");
    const { params } = splitOpaque(url, "etcd:");
    const known = urlOptions("etcd", params, ["key", "timeout"]);
    return new EtcdStore(etcdOptionsFromUrl(url, known));
  },
};

/**
 * Opens the store a URL names: `memory:[NAME]`, `sqlite:PATH` (the default,
 * `sqlite:./globalclock.db`), `postgres://…`, `etcd://host:port[,…]`, `mongodb://…`.
 * A malformed or unknown URL is a ConfigError (field "store"); passwords never appear in it.
 */
export async function openStore(
  url: string = DEFAULT_STORE_URL,
  options: OpenOptions = {},
): Promise<ClockStore> {
  if (typeof url !== "string" || url.trim() === "") {
    throw new ConfigError("store", "missing store URL: e.g. sqlite:./globalclock.db");
  }
  const scheme = /^([a-z][a-z0-9+.-]*):/i.exec(url)?.[1]?.toLowerCase();
  const opener = scheme ? OPENERS[`${scheme}:`] : undefined;
  if (!opener) {
    const known = Object.keys(OPENERS).join(", ");
    throw new ConfigError(
      "store",
      `unknown store URL ${JSON.stringify(safeUrl(url))}: it should start with one of ${known}`,
    );
  }
  options.signal?.throwIfAborted();
  return opener(url, options);
}

/** Opens a store and a Reader on it; closing the reader closes the store. */
export async function openReader(url?: string, options: OpenOptions = {}): Promise<Reader> {
  const store = await openStore(url, options);
  return new Reader(store, { onClose: () => store.close() });
}

/** Opens a store and an Updater on it; closing the updater closes the store. */
export async function openUpdater(url?: string, options: OpenOptions = {}): Promise<Updater> {
  const store = await openStore(url, options);
  try {
    return await Updater.create(store, { ...options, onClose: () => store.close() });
  } catch (err) {
    await store.close();
    throw err;
  }
}

/** `scheme:PATH?query` for URLs with no authority (memory:, sqlite:). */
function splitOpaque(url: string, prefix: string): { path: string; params: URLSearchParams } {
  const rest = url.slice(prefix.length);
  const q = rest.indexOf("?");
  const path = q < 0 ? rest : rest.slice(0, q);
  try {
    return {
      path: decodeURIComponent(path),
      params: new URLSearchParams(q < 0 ? "" : rest.slice(q + 1)),
    };
  } catch {
    throw new ConfigError("store", `malformed store URL ${JSON.stringify(safeUrl(url))}`);
  }
}
