/**
 * The MongoDB store, on a collection of the caller's (`new MongoStore(collection)`) or on a
 * client made from a URL (`open`). `mongodb` is an optional peer dependency, loaded only
 * here. Juju's original API on top of it is `globalclock/mongodb` (src/juju/mongodb.ts).
 */
import { MongoClient, type MongoClientOptions } from "mongodb";
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
    await abortable(client.connect(), options.signal);
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
