/**
 * `globalclock/mongodb`: the MongoDB store, and the original API of Juju's Go package
 * `globalclock` in TypeScript form, on the same schema, so a database that Juju kept its
 * clock in can be read and advanced, and Go code can still read what is written here.
 *
 *   Go                              TypeScript
 *   Config{Collection, Mongo}       Config { collection, mongo }
 *   Mongo.GetCollection(name)       mongo.getCollection(name) → { collection, closer }
 *   ReaderConfig, UpdaterConfig     ReaderConfig, UpdaterConfig
 *   NewReader(config)               newReader(config)            → Reader
 *   NewUpdater(config)              await newUpdater(config)     → Updater
 *   Reader.Now()                    await reader.now()           → bigint ns
 *   Updater.Advance(d)              await updater.advance(d)
 *   ErrOutOfSyncUpdate              OutOfSyncUpdateError (instanceof)
 *   GlobalEpoch()                   globalEpoch()                → 0n
 *
 * Go called GetCollection and its closer around every operation; here the collection is
 * taken once, and `closer` is called when the reader or updater is closed.
 */
import type { Collection, Db, Document } from "mongodb";
import { ConfigError } from "../errors.js";
import { Reader } from "../reader.js";
import { MongoStore, type MongoStoreOptions } from "../stores/mongodb/index.js";
import { Updater } from "../updater.js";

export { OutOfSyncUpdateError } from "../errors.js";
export type { Reader } from "../reader.js";
export {
  MONGODB_DEFAULTS,
  MONGODB_URL_DEFAULTS,
  MongoStore,
  type MongoStoreOptions,
  type MongoUrl,
  open,
  parseMongoUrl,
} from "../stores/mongodb/index.js";
export { globalEpoch } from "../time.js";
export type { Updater } from "../updater.js";

/** What the clock needs from a MongoDB connection. */
export interface Mongo {
  /**
   * The named collection, and a function releasing whatever getting it took (a session,
   * a pooled client), called once when the reader or updater is closed.
   */
  getCollection(name: string): {
    collection: Collection<Document>;
    closer: () => void | Promise<void>;
  };
}

export interface Config {
  /** The collection holding the clock document; Juju used "globalclock". */
  collection: string;
  mongo: Mongo;
}

export type ReaderConfig = Config;
export type UpdaterConfig = Config;

/** Durability and watch settings; MONGODB_DEFAULTS when left out. */
export type MongoClockOptions = Omit<MongoStoreOptions, "onClose">;

/** A Reader of the clock in `config.collection`. Throws ConfigError for a bad config. */
export function newReader(config: ReaderConfig, options: MongoClockOptions = {}): Reader {
  const { store, close } = openConfig(config, options);
  return new Reader(store, { onClose: close });
}

/**
 * An Updater of the clock in `config.collection`, creating the clock document at the
 * epoch if it is missing (never overwriting one), as Juju's NewUpdater did.
 */
export async function newUpdater(
  config: UpdaterConfig,
  options: MongoClockOptions & { signal?: AbortSignal } = {},
): Promise<Updater> {
  const { signal, ...storeOptions } = options;
  const { store, close } = openConfig(config, storeOptions);
  try {
    return await Updater.create(store, { signal, onClose: close });
  } catch (err) {
    await close();
    throw err;
  }
}

/** A Mongo on a driver Db whose client the caller owns (closing a reader leaves it open). */
export function mongoFromDb(db: Db): Mongo {
  return { getCollection: (name) => ({ collection: db.collection(name), closer: () => {} }) };
}

/** Juju's validation, with its messages. */
function validate(config: Config): void {
  if (!config?.collection) throw new ConfigError("collection", "missing collection");
  if (!config.mongo) throw new ConfigError("mongo", "missing mongo client");
}

function openConfig(
  config: Config,
  options: MongoClockOptions,
): { store: MongoStore; close: () => Promise<void> } {
  validate(config);
  const { collection, closer } = config.mongo.getCollection(config.collection);
  let store: MongoStore;
  try {
    if (!collection) {
      throw new ConfigError(
        "mongo",
        `mongo.getCollection("${config.collection}") gave no collection`,
      );
    }
    store = new MongoStore(collection, options);
  } catch (err) {
    Promise.resolve()
      .then(closer)
      .catch(() => {});
    throw err;
  }
  return {
    store,
    close: async () => {
      await store.close();
      await closer();
    },
  };
}
