import { existsSync } from "node:fs";
import { basename, dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { ConfigError, quote, safeUrl } from "./errors.js";
import { Reader } from "./reader.js";
import type { ClockStore, OpenOptions, StoreModule } from "./store.js";
import { Updater } from "./updater.js";

export type { OpenOptions } from "./store.js";

/** The embedded default store: a SQLite file in the working directory. */
export const DEFAULT_STORE_URL = "sqlite:./globalclock.db";

interface StoreEntry {
  /** URL schemes, without the colon. */
  schemes: readonly string[];
  /** The npm package the store needs, named when it is missing. */
  driver?: string;
  load: () => Promise<StoreModule>;
}

// Each store is loaded only when its URL is used, so `globalclock now` on SQLite never
// loads a network client, and a driver that is not installed matters only to its URLs.
const STORES: readonly StoreEntry[] = [
  { schemes: ["memory"], load: () => import("./stores/memory/index.js") },
  {
    schemes: ["sqlite"],
    driver: "better-sqlite3",
    load: () => import("./stores/sqlite/index.js"),
  },
  {
    schemes: ["postgres", "postgresql"],
    driver: "pg",
    load: () => import("./stores/postgres/index.js"),
  },
  { schemes: ["etcd"], driver: "etcd3", load: () => import("./stores/etcd/index.js") },
  {
    schemes: ["mongodb", "mongodb+srv"],
    driver: "mongodb",
    load: () => import("./stores/mongodb/index.js"),
  },
];

const BY_SCHEME = new Map(STORES.flatMap((entry) => entry.schemes.map((s) => [s, entry])));

/**
 * Opens the store a URL names: `memory:[NAME]`, `sqlite:PATH` (the default,
 * `sqlite:./globalclock.db`), `postgres://…`, `etcd://host:port[,…]`, `mongodb://…`.
 * A malformed or unknown URL, or one whose driver package is not installed, is a
 * ConfigError (field "store"); passwords never appear in it.
 */
export async function openStore(
  url: string = DEFAULT_STORE_URL,
  options: OpenOptions = {},
): Promise<ClockStore> {
  if (typeof url !== "string" || url.trim() === "") {
    throw new ConfigError("store", "missing store URL: e.g. sqlite:./globalclock.db");
  }
  const scheme = /^([a-z][a-z0-9+.-]*):/i.exec(url)?.[1]?.toLowerCase();
  const entry = scheme === undefined ? undefined : BY_SCHEME.get(scheme);
  if (!entry) {
    const known = [...BY_SCHEME.keys()].map((s) => `${s}:`).join(", ");
    throw new ConfigError(
      "store",
      `unknown store URL ${quote(safeUrl(url))}: it should start with one of ${known}`,
    );
  }
  options.signal?.throwIfAborted();
  try {
    const store = await entry.load();
    return await store.open(url, options);
  } catch (err) {
    throw missingDriver(err, entry) ?? err;
  }
}

/** This package's own directory (above `dist/` or `src/`). */
const PACKAGE_ROOT = fileURLToPath(new URL("..", import.meta.url));

/** A ConfigError naming the package to install, when `err` says the store's driver is missing. */
function missingDriver(err: unknown, entry: StoreEntry): ConfigError | undefined {
  const { code, message } = (err ?? {}) as { code?: unknown; message?: unknown };
  if (!entry.driver || (code !== "ERR_MODULE_NOT_FOUND" && code !== "MODULE_NOT_FOUND"))
    return undefined;
  if (typeof message !== "string" || !message.includes(`'${entry.driver}'`)) return undefined;
  const scheme = entry.schemes[0];
  return new ConfigError(
    "store",
    `the ${scheme} store needs the npm package "${entry.driver}", which is not installed: ${installCommand(entry.driver)}`,
  );
}

/**
 * How to install `driver` beside this copy of globalclock: `npm install -g` when it sits in
 * a node_modules that no project owns (a global install: `<prefix>/lib/node_modules`),
 * else `npm install`.
 */
export function installCommand(driver: string, packageRoot = PACKAGE_ROOT): string {
  const modules = dirname(packageRoot);
  const global =
    basename(modules) === "node_modules" && !existsSync(join(dirname(modules), "package.json"));
  return `npm install ${global ? "-g " : ""}${driver}`;
}

/**
 * Opens a store for reading only and a Reader on it; closing the reader closes the store.
 * A reader never writes: on SQLite it creates no file and no table.
 */
export async function openReader(url?: string, options: OpenOptions = {}): Promise<Reader> {
  const store = await openStore(url, { ...options, readOnly: true });
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
