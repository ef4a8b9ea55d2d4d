import {
  type ClientSession,
  type Collection,
  type Document,
  type Filter,
  Long,
  type MongoClient,
  type ReadConcernLevel,
  ReadPreference,
  type W,
} from "mongodb";
import { abortable } from "../../abort.js";
import { ClosedError, ConfigError, StoreError } from "../../errors.js";
import { type ClockStore, DEFAULT_TIMEOUT_MS } from "../../store.js";
import { INT64_MAX } from "../../time.js";
import { StoreCalls } from "../call.js";
import { CLOCK_ID, decodeTime, type NamedDocument } from "./decode.js";
import { explainMongoError, mongoCode } from "./errors.js";
import { MongoLeases } from "./leases.js";
import { watchClock } from "./watch.js";

const KIND = "mongodb";

export { CLOCK_ID };

export interface MongoStoreOptions {
  /**
   * Write concern of every write. Default "majority": an acknowledged advance survives
   * the loss of the primary. A number n waits for n members (1: the primary alone, which
   * a failover can roll back). 0 (unacknowledged) is refused: a swap needs its answer.
   */
  writeConcern?: "majority" | number;
  /**
   * Read concern of every read. Default "majority": a reader never sees a time that a
   * failover could roll back. "linearizable" also rules out a stale primary; "local" is
   * the fastest and may show an advance that is later rolled back.
   */
  readConcern?: "majority" | "linearizable" | "local";
  /** How often watch() reads where the server has no change streams (standalone). Default 250 ms. */
  pollIntervalMs?: number;
  /** How long a change stream's getMore waits on the server for a change. Default 1 s. */
  maxAwaitTimeMs?: number;
  /** Deadline of each call, in ms. Default 2 s (DEFAULT_TIMEOUT_MS). */
  timeoutMs?: number;
  /**
   * The client `collection` belongs to, on which the store starts its causally consistent
   * session. Left out, the store takes the collection's own client where the driver exposes
   * it (the official driver does), and otherwise works without a session.
   */
  client?: MongoClient;
  /** Called once by close(), e.g. to close the MongoClient the store was opened on. */
  onClose?: () => void | Promise<void>;
}

export const MONGODB_DEFAULTS = Object.freeze({
  writeConcern: "majority",
  readConcern: "majority",
  pollIntervalMs: 250,
  maxAwaitTimeMs: 1000,
  timeoutMs: DEFAULT_TIMEOUT_MS,
});

const READ_CONCERNS: readonly string[] = ["majority", "linearizable", "local"];
/**
 * The BSON types a stored time may have. Juju always $set an int64, but its first upsert
 * ($inc by Go's int 0, which its BSON library encodes as int32) left an Int32 0 until the
 * first advance. Both are exact integers. In a query a Double 5.0 equals a Long 5, so
 * every filter names these types: a corrupt (double, string…) time is never overwritten.
 */
const TIME_TYPES = ["long", "int"];

/** `{ _id: "g", time: { …condition, $type: ["long", "int"] } }` */
function clockFilter(condition: Document = {}): Filter<ClockDocument> {
  // The driver's typings lack $type with a list of types, which servers take since 3.6.
  const filter: Document = { _id: CLOCK_ID, time: { ...condition, $type: TIME_TYPES } };
  return filter as Filter<ClockDocument>;
}

/**
 * The clock document as Juju wrote it; `time` as the server holds it (see TIME_TYPES).
 * Leases add `maxStep` and `lastToken` (see leases.ts).
 */
export interface ClockDocument {
  _id: string;
  time: Long;
  maxStep?: Long;
  lastToken?: Long;
}

/**
 * The server names the stored type (an aggregation expression in the projection, MongoDB
 * 4.4+, as the driver requires anyway), so an Int32 5 and a Double 5.0, both a JS number
 * 5 once decoded, are told apart. Values decode with the driver's defaults: an int64
 * beyond 2^53 stays a Long, one within it becomes an exactly equal number.
 *
 * No per-operation BSON options: they apply to error replies too, where the driver's
 * failover logic needs the defaults (with promoteValues off, error codes arrive as Int32
 * objects and retryable errors go unrecognised; with useBigInt64, a NotWritablePrimary
 * reply's topologyVersion counter arrives as a bigint and crashes the driver's monitor).
 */
const PROJECTION = { _id: 0, time: 1, timeType: { $type: "$time" } };

/** How often ensure tries its upsert when it meets another process's insert of the clock. */
const ENSURE_ATTEMPTS = 3;
const noop = () => {};

/**
 * The clock in a MongoDB collection, in Juju's schema: one document
 * `{ _id: "g", time: <int64 ns> }`. `ensure` is Juju's find-and-modify upsert with
 * `$inc: { time: 0 }` (never $set, which would overwrite an existing clock); a swap is
 * `updateOne({ _id: "g", time: old }, { $set: { time: next } })`, decided by matchedCount.
 * Times are written as BSON int64 (Long) and read without going through a double.
 * Where leases are used, the document also holds the cluster's `maxStep` and the
 * fencing-token counter `lastToken` (int64s, see leases.ts), which Juju's code, reading and
 * `$set`ting `time` alone, leaves be; the lease records are in `<collection>_leases`. The
 * clock alone writes neither.
 *
 * The store takes a driver Collection, so the URL opener (openMongoStore) and the
 * original Config API (newReader/newUpdater) share it. It closes nothing it was given;
 * `onClose` does that.
 *
 * Reads and writes go through one causally consistent session per store (not with a
 * linearizable read concern, which is causally consistent by itself and refuses
 * afterClusterTime). With majority concerns MongoDB then guarantees, inside the session,
 * read-your-writes and monotonic reads even across a failover: a read after a lost swap
 * sees at least what made it lose. Retryable writes in one session take increasing
 * transaction numbers, so the store sends its writes one at a time (the server refuses an
 * older number once a newer one started: TransactionTooOld).
 */
export class MongoStore implements ClockStore {
  readonly kind = KIND;
  readonly #collection: Collection<ClockDocument>;
  readonly #writeConcern: { w: W };
  readonly #readConcern: { level: ReadConcernLevel };
  readonly #pollIntervalMs: number;
  readonly #maxAwaitTimeMs: number;
  readonly #onClose: (() => void | Promise<void>) | undefined;
  readonly #calls: StoreCalls;
  /** Aborted by close(), ending every running watch with a ClosedError. */
  readonly #closing = new AbortController();
  /** The causally consistent session of every call, if there is one. */
  readonly #session: ClientSession | undefined;
  /** The write in flight, which the next write waits for (one transaction number at a time). */
  #writing: Promise<unknown> | undefined;
  /**
   * Lease records (leases.ts), where the store has the collection's client (to reach the
   * leases collection and share the session); undefined otherwise.
   */
  readonly leases: MongoLeases | undefined;

  constructor(collection: Collection<Document>, options: MongoStoreOptions = {}) {
    const w = options.writeConcern ?? MONGODB_DEFAULTS.writeConcern;
    if (w !== "majority" && !(Number.isSafeInteger(w) && (w as number) >= 1)) {
      throw new ConfigError(
        "writeConcern",
        `invalid writeConcern ${JSON.stringify(w)}: use "majority" or a member count of at least 1`,
      );
    }
    const level = options.readConcern ?? MONGODB_DEFAULTS.readConcern;
    if (!READ_CONCERNS.includes(level)) {
      throw new ConfigError(
        "readConcern",
        `invalid readConcern ${JSON.stringify(level)}: use ${READ_CONCERNS.join(", ")}`,
      );
    }
    this.#pollIntervalMs = positive(
      "pollInterval",
      options.pollIntervalMs,
      MONGODB_DEFAULTS.pollIntervalMs,
    );
    this.#maxAwaitTimeMs = positive(
      "maxAwaitTime",
      options.maxAwaitTimeMs,
      MONGODB_DEFAULTS.maxAwaitTimeMs,
    );
    const timeoutMs = positive("timeout", options.timeoutMs, MONGODB_DEFAULTS.timeoutMs);
    this.#calls = new StoreCalls({ kind: KIND, timeoutMs, explain: explainMongoError });
    this.#collection = collection as unknown as Collection<ClockDocument>;
    this.#writeConcern = { w };
    this.#readConcern = { level: level as ReadConcernLevel };
    this.#onClose = options.onClose;
    const client = sessionClient(collection, options.client);
    if (level !== "linearizable") this.#session = client?.startSession({ causalConsistency: true });
    this.leases = client && this.#openLeases(client);
  }

  /** Leases in `<collection>_leases` of the clock's database (maxStep in the clock document). */
  #openLeases(client: MongoClient): MongoLeases {
    const { dbName, collectionName } = this.#collection;
    return new MongoLeases({
      clock: this.#collection as unknown as Collection<NamedDocument>,
      leases: client.db(dbName).collection<NamedDocument>(`${collectionName}_leases`),
      calls: this.#calls,
      session: this.#session,
      readConcern: this.#readConcern,
      writeConcern: this.#writeConcern,
      exclusive: (write) => this.#exclusive(write),
      pollIntervalMs: this.#pollIntervalMs,
      maxAwaitTimeMs: this.#maxAwaitTimeMs,
      closing: this.#closing.signal,
    });
  }

  /** The namespace, "database.collection", for messages. */
  get namespace(): string {
    return `${this.#collection.dbName}.${this.#collection.collectionName}`;
  }

  read(signal?: AbortSignal): Promise<bigint | undefined> {
    return this.#run("read", signal, async () => {
      const doc = await this.#find(signal);
      return doc === null ? undefined : this.#decode("read", doc);
    });
  }

  ensure(signal?: AbortSignal): Promise<bigint> {
    return this.#run("ensure", signal, async () => {
      for (let attempt = 1; ; attempt++) {
        let doc: Document | null;
        try {
          doc = await this.#upsert(signal);
        } catch (err) {
          // The filter missed an existing document: either another process created it a
          // moment ago, or its time is not an integer (then decoding reports it as corrupt).
          if (mongoCode(err) !== 11000) throw err;
          const found = await this.#find(signal);
          if (found !== null) return this.#decode("ensure", found);
          // Not visible to this read yet (another process's insert not yet majority
          // committed, or removed again): upsert again rather than read nothing.
          if (attempt >= ENSURE_ATTEMPTS) throw err;
          continue;
        }
        if (doc === null) throw new StoreError(KIND, "ensure", "the upsert returned no document");
        // A retried findAndModify is answered from the oplog without the projection, so the
        // computed timeType may be missing: then the stored type is read instead.
        if (doc.timeType === undefined) doc = await this.#find(signal);
        if (doc === null) throw new StoreError(KIND, "ensure", "the clock document disappeared");
        return this.#decode("ensure", doc);
      }
    });
  }

  #upsert(signal: AbortSignal | undefined): Promise<Document | null> {
    return this.#exclusive(() =>
      abortable(
        this.#collection.findOneAndUpdate(
          clockFilter(),
          { $inc: { time: Long.ZERO } },
          {
            upsert: true,
            returnDocument: "after",
            projection: PROJECTION,
            writeConcern: this.#writeConcern,
            session: this.#session,
          },
        ),
        signal,
      ),
    );
  }

  compareAndSwap(old: bigint, next: bigint, signal?: AbortSignal): Promise<boolean> {
    return this.#run("compareAndSwap", signal, async () => {
      if (next < 0n || next > INT64_MAX) {
        throw new StoreError(KIND, "compareAndSwap", `${next} is not a non-negative int64`);
      }
      // A negative `old` can only match a corrupt record, which is never overwritten.
      if (old < 0n || old > INT64_MAX) return false;
      const result = await this.#exclusive(() =>
        abortable(
          this.#collection.updateOne(
            clockFilter({ $eq: Long.fromBigInt(old) }),
            { $set: { time: Long.fromBigInt(next) } },
            { writeConcern: this.#writeConcern, session: this.#session },
          ),
          signal,
        ),
      );
      return result.matchedCount === 1;
    });
  }

  /**
   * Pushes the stored time after every change, through a change stream on the clock
   * document (replica sets and sharded clusters). Where the server has no change streams
   * (a standalone mongod) it reads every pollIntervalMs instead. Each change is followed
   * by a read, so what it yields has the store's read concern.
   */
  watch(signal: AbortSignal): AsyncIterable<bigint> {
    this.#calls.checkOpen();
    return watchClock(signal, {
      collection: this.#collection,
      documentId: CLOCK_ID,
      read: (s) => this.read(s),
      pollIntervalMs: this.#pollIntervalMs,
      maxAwaitTimeMs: this.#maxAwaitTimeMs,
      closing: this.#closing.signal,
      wrap: (err) => this.#calls.error("watch", err),
    });
  }

  async close(): Promise<void> {
    if (!this.#calls.close()) return;
    this.#closing.abort(new ClosedError("mongodb store"));
    await this.#session?.endSession().catch(noop);
    await this.#onClose?.();
  }

  /** Runs `write` once the write in flight, if any, has settled. */
  #exclusive<T>(write: () => Promise<T>): Promise<T> {
    const prior = this.#writing;
    const run = prior ? prior.then(write, write) : write();
    const settled = run.then(noop, noop);
    this.#writing = settled;
    void settled.then(() => {
      if (this.#writing === settled) this.#writing = undefined;
    });
    return run;
  }

  #find(signal: AbortSignal | undefined): Promise<Document | null> {
    return this.#collection.findOne(
      { _id: CLOCK_ID },
      {
        projection: PROJECTION,
        readConcern: this.#readConcern,
        readPreference: ReadPreference.primary,
        session: this.#session,
        signal,
      },
    );
  }

  /** The stored time of a document read or returned by the server, checked. */
  #decode(operation: string, doc: Document): bigint {
    return decodeTime(doc, operation, this.namespace);
  }

  #run<T>(operation: string, signal: AbortSignal | undefined, fn: () => Promise<T>): Promise<T> {
    return this.#calls.run(operation, signal, fn);
  }
}

/**
 * The client to start the store's session on: the one given, else the collection's own
 * (`collection.client`, which the official driver sets though its typings leave it out).
 */
function sessionClient(collection: Collection<Document>, client?: MongoClient) {
  const own = (collection as unknown as { client?: unknown }).client;
  const found = client ?? own;
  return typeof (found as MongoClient | undefined)?.startSession === "function"
    ? (found as MongoClient)
    : undefined;
}

function positive(field: string, value: number | undefined, fallback: number): number {
  const v = value ?? fallback;
  if (!(Number.isFinite(v) && v > 0)) {
    throw new ConfigError(field, `invalid ${field} ${v}: must be a duration greater than 0`);
  }
  return v;
}
