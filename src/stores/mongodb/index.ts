/**
 * The MongoDB store, on a collection of the caller's (`new MongoStore(collection)`) or on a
 * client made from a URL (`open`). `mongodb` is an optional peer dependency, loaded only
 * here. Juju's original API on top of it is `globalclock/mongodb` (src/juju/mongodb.ts).
 */
import { MongoClient, type MongoClientOptions, type ServerDescriptionChangedEvent } from "mongodb";
import { abortable } from "../../abort.js";
import { safeUrl } from "../../config.js";
import { ConfigError, describe, redact, StoreError } from "../../errors.js";
import type { OpenOptions } from "../../store.js";
import { explainMongoError } from "./errors.js";
import { MongoStore } from "./store.js";
import { parseMongoUrl } from "./url.js";

export {
  CLOCK_ID,
  type ClockDocument,
  MONGODB_DEFAULTS,
  MongoStore,
  type MongoStoreOptions,
} from "./store.js";
export { MONGODB_URL_DEFAULTS, type MongoUrl, parseMongoUrl } from "./url.js";

/**
 * Opens a MongoStore on its own MongoClient, connected before it returns, so that an
 * unreachable server is a StoreError here, after at most `timeout`. Closing the store
 * closes the client.
 */
export async function open(url: string, options: OpenOptions = {}): Promise<MongoStore> {
  const parsed = parseMongoUrl(url);
  const settings: MongoClientOptions = {
    serverSelectionTimeoutMS: parsed.timeoutMs,
    connectTimeoutMS: parsed.timeoutMs,
    socketTimeoutMS: parsed.timeoutMs,
  };
  if (!/[?&]appName=/.test(parsed.driverUrl)) settings.appName = "globalclock";
  let client: MongoClient;
  try {
    client = new MongoClient(parsed.driverUrl, settings);
  } catch (err) {
    throw new ConfigError(
      "store",
      `invalid MongoDB URL ${JSON.stringify(safeUrl(url))}: ${redact(describe(err))}`,
    );
  }
  try {
    options.signal?.throwIfAborted();
    const store = new MongoStore(client.db(parsed.database).collection(parsed.collection), {
      ...parsed.store,
      client,
      onClose: () => client.close(),
    });
    const connected = new AbortController();
    try {
      const refused = refusedEverywhere(client, parsed.driverUrl, connected.signal);
      await abortable(Promise.race([client.connect(), refused]), options.signal);
    } finally {
      connected.abort(); // from now on the driver's own retries take over
    }
    return store;
  } catch (err) {
    await client.close().catch(() => {});
    if (options.signal?.aborted) throw options.signal.reason;
    if (err instanceof ConfigError) throw err;
    const { message, retryable } = explainMongoError(err);
    throw new StoreError("mongodb", "open", `cannot connect to ${safeUrl(url)}: ${message}`, {
      cause: err,
      retryable,
    });
  }
}

/** Errors that say a host is not there at all, now: no retry within the timeout helps. */
const UNREACHABLE = /ECONNREFUSED|ENOTFOUND/;

/**
 * Rejects as soon as every seed host has refused the connection (or has no address),
 * where the driver would go on trying until its server selection timeout: a store whose
 * server is down says so at once, as the other stores do. Never settles otherwise; stops
 * listening when `until` aborts.
 */
function refusedEverywhere(client: MongoClient, url: string, until: AbortSignal): Promise<never> {
  const seeds = /^mongodb:\/\/(?:[^@/]*@)?([^/?]*)/i.exec(url)?.[1]?.split(",") ?? [];
  return new Promise((_resolve, reject) => {
    if (seeds.length === 0) return; // mongodb+srv: the hosts come from DNS
    const failed = new Map<string, Error>();
    const onChange = (event: ServerDescriptionChangedEvent) => {
      const error = event.newDescription.error;
      if (error && UNREACHABLE.test(error.message)) failed.set(event.address, error);
      else failed.delete(event.address);
      if (failed.size >= seeds.length) {
        client.off("serverDescriptionChanged", onChange);
        reject(failed.values().next().value);
      }
    };
    client.on("serverDescriptionChanged", onChange);
    until.addEventListener("abort", () => client.off("serverDescriptionChanged", onChange), {
      once: true,
    });
  });
}
