import {
  type ClientSession,
  type Collection,
  type Document,
  Long,
  type ReadConcernLevel,
  ReadPreference,
  type W,
} from "mongodb";
import { abortable } from "../../abort.js";
import { StoreError } from "../../errors.js";
import type { LeaseFields, LeaseRecord, LeaseStore } from "../../lease-store.js";
import { INT64_MAX } from "../../time.js";
import type { StoreCalls } from "../call.js";
import {
  CLOCK_ID,
  decodeLease,
  decodeTime,
  INTEGER_TYPES,
  LEASE_INTEGERS,
  prefixRange,
} from "./decode.js";
import { mongoCode } from "./errors.js";
import { watchChanges } from "./watch.js";

const KIND = "mongodb";
/** The `_id` of the cluster's maxStep in the settings, `{ _id: "maxStep", value: <int64 ns> }`. */
export const MAX_STEP_ID = "maxStep";

/** The clock document, with the server's name for the stored type of `time`. */
const CLOCK_FIELDS = { time: 1, timeType: { $type: "$time" } };
/** A setting, with the server's name for the stored type of `value`. */
const SETTING_FIELDS = { value: 1, valueType: { $type: "$value" } };
/** A lease document, with the stored type of each integer (`tokenType`…): see decodeLease. */
const LEASE_FIELDS: Document = { holder: 1, pins: 1 };
for (const f of LEASE_INTEGERS)
  Object.assign(LEASE_FIELDS, { [f]: 1, [`${f}Type`]: { $type: `$${f}` } });

/** A document of the clock's, the settings' or the leases' collection: every `_id` is a string. */
export interface NamedDocument extends Document {
  _id: string;
}

export interface MongoLeasesOptions {
  /** The clock's collection, which holds the clock document alone. */
  clock: Collection<NamedDocument>;
  /** `<clock collection>_settings`, in the clock's database: the maxStep document. */
  settings: Collection<NamedDocument>;
  /** `<clock collection>_leases`, in the clock's database. */
  leases: Collection<NamedDocument>;
  calls: StoreCalls;
  /** The store's causally consistent session, if it has one. */
  session: ClientSession | undefined;
  readConcern: { level: ReadConcernLevel };
  writeConcern: { w: W };
  /** Runs a write once the store's write in flight has settled (one transaction number at a time). */
  exclusive: <T>(write: () => Promise<T>) => Promise<T>;
  pollIntervalMs: number;
  maxAwaitTimeMs: number;
  /** Aborted when the store closes. */
  closing: AbortSignal;
}

/**
 * Leases in the collection `<clock collection>_leases`, one document per lease:
 * `{ _id: name, holder, token, start, expiry, pins, version }`, integers as int64 (Long);
 * the cluster's maxStep in `<clock collection>_settings`, `{ _id: "maxStep", value }`, so
 * that the clock's collection holds the clock alone, as Juju's does. A write is a
 * compare-and-swap on `version`: an insert for a new record (a duplicate key loses), else
 * `updateOne({ _id, version }, { $set })` decided by matchedCount. A retried write whose
 * first attempt committed is answered from the oplog as the success it was.
 *
 * Round trips: readLease and listLeases one each (one aggregate reading the clock document
 * and, through $unionWith, the maxStep document and the leases, so that it is one command in
 * the store's session, which the sessions specification forbids using for two operations
 * at once); writeLease, ensureMaxStep and swapMaxStep one each (ensureMaxStep two when a
 * retried upsert is answered without its projection). watchLeases is one change stream.
 */
export class MongoLeases implements LeaseStore {
  readonly #o: MongoLeasesOptions;
  /** The clock's and the settings' namespaces, for messages. */
  readonly #ns: string;
  readonly #settingsNs: string;

  constructor(options: MongoLeasesOptions) {
    this.#o = options;
    this.#ns = `${options.clock.dbName}.${options.clock.collectionName}`;
    this.#settingsNs = `${options.settings.dbName}.${options.settings.collectionName}`;
  }

  readLease(name: string, signal?: AbortSignal) {
    return this.#o.calls.run("readLease", signal, async () => {
      const { leases, ...context } = await this.#read({ _id: name }, false, "readLease", signal);
      return { ...context, lease: leases[0] };
    });
  }

  listLeases(prefix: string, signal?: AbortSignal) {
    return this.#o.calls.run("listLeases", signal, () =>
      this.#read({ _id: prefixRange(prefix) }, true, "listLeases", signal),
    );
  }

  writeLease(lease: LeaseFields, version: bigint | undefined, signal?: AbortSignal) {
    return this.#o.calls.run("writeLease", signal, async () => {
      const fields: Document = { holder: lease.holder, pins: [...lease.pins] };
      for (const f of ["token", "start", "expiry"] as const)
        fields[f] = int64(lease[f], f, "writeLease");
      const { leases, session, writeConcern } = this.#o;
      if (version === undefined) {
        try {
          const doc = { _id: lease.name, ...fields, version: Long.ONE };
          await this.#write(() => leases.insertOne(doc, { writeConcern, session }), signal);
          return 1n;
        } catch (err) {
          if (mongoCode(err) === 11000) return undefined; // another write came first
          throw err;
        }
      }
      if (version < 1n || version >= INT64_MAX) return undefined;
      const result = await this.#write(
        () =>
          leases.updateOne(
            { _id: lease.name, version: { $eq: Long.fromBigInt(version), $type: "long" } },
            { $set: { ...fields, version: Long.fromBigInt(version + 1n) } },
            { writeConcern, session },
          ),
        signal,
      );
      return result.matchedCount === 1 ? version + 1n : undefined;
    });
  }

  /** An upsert that sets `value` only when it inserts, returning the stored document. */
  ensureMaxStep(value: bigint, signal?: AbortSignal) {
    return this.#o.calls.run("ensureMaxStep", signal, async () => {
      const { settings, session, writeConcern } = this.#o;
      let doc: Document | null = null;
      try {
        doc = await this.#write(
          () =>
            settings.findOneAndUpdate(
              { _id: MAX_STEP_ID },
              { $setOnInsert: { value: int64(value, "maxStep", "ensureMaxStep") } },
              {
                upsert: true,
                returnDocument: "after",
                projection: SETTING_FIELDS,
                writeConcern,
                session,
              },
            ),
          signal,
        );
      } catch (err) {
        // Another process inserted it between this upsert's look and its insert.
        if (mongoCode(err) !== 11000) throw err;
      }
      // A retried findAndModify is answered from the oplog without the projection.
      if (doc?.valueType === undefined) doc = await this.#findMaxStep(signal);
      if (doc === null)
        throw new StoreError(KIND, "ensureMaxStep", "the maxStep document disappeared");
      return decodeTime(doc, "ensureMaxStep", this.#settingsNs, "maxStep");
    });
  }

  swapMaxStep(old: bigint, next: bigint, signal?: AbortSignal) {
    return this.#o.calls.run("swapMaxStep", signal, async () => {
      const value = int64(next, "maxStep", "swapMaxStep");
      // Only a corrupt value could match a negative `old`, and it is left alone.
      if (old < 0n || old > INT64_MAX) return false;
      const { settings, session, writeConcern } = this.#o;
      const result = await this.#write(
        () =>
          settings.updateOne(
            { _id: MAX_STEP_ID, value: { $eq: Long.fromBigInt(old), $type: INTEGER_TYPES } },
            { $set: { value } },
            { writeConcern, session },
          ),
        signal,
      );
      return result.matchedCount === 1;
    });
  }

  /**
   * A change stream on the leases collection, filtered on the `_id` prefix: a notice per
   * change. A standalone server has no change streams: there it notices every
   * pollIntervalMs, so that a caller waiting on it re-reads at the pace it would poll.
   */
  watchLeases(prefix: string, signal: AbortSignal): AsyncIterable<void> {
    const { calls, leases, pollIntervalMs, maxAwaitTimeMs, closing } = this.#o;
    calls.checkOpen();
    return watchChanges(signal, {
      collection: leases,
      match: { "documentKey._id": prefixRange(prefix) },
      pollIntervalMs,
      maxAwaitTimeMs,
      closing,
      wrap: (err) => calls.error("watchLeases", err),
    });
  }

  /**
   * One aggregate: the clock document, then the maxStep document and the leases `filter`
   * selects (a collection that does not exist adds nothing to a union).
   */
  async #read(filter: Document, sorted: boolean, operation: string, signal?: AbortSignal) {
    const { clock, settings, leases, readConcern, session } = this.#o;
    const pipeline: Document[] = [
      { $match: { _id: CLOCK_ID } },
      { $project: CLOCK_FIELDS },
      {
        $unionWith: {
          coll: settings.collectionName,
          pipeline: [{ $match: { _id: MAX_STEP_ID } }, { $project: SETTING_FIELDS }],
        },
      },
      {
        $unionWith: {
          coll: leases.collectionName,
          pipeline: [{ $match: filter }, { $project: LEASE_FIELDS }],
        },
      },
    ];
    // The order of a union's output is unspecified: sorted after it. Strings sort bytewise
    // in UTF-8 (the default collation), as etcd's keys do.
    if (sorted) pipeline.push({ $sort: { _id: 1 } });
    const docs = await clock
      .aggregate(pipeline, {
        readConcern,
        readPreference: ReadPreference.primary,
        session,
        signal,
      })
      .toArray();
    let time: bigint | undefined;
    let maxStep: bigint | undefined;
    const found: LeaseRecord[] = [];
    for (const doc of docs) {
      if ("versionType" in doc) found.push(decodeLease(doc, operation));
      else if ("valueType" in doc)
        maxStep = decodeTime(doc, operation, this.#settingsNs, "maxStep");
      else time = decodeTime(doc, operation, this.#ns);
    }
    return { time, maxStep, leases: found };
  }

  #findMaxStep(signal: AbortSignal | undefined): Promise<Document | null> {
    const { settings, readConcern, session } = this.#o;
    return settings.findOne(
      { _id: MAX_STEP_ID },
      {
        projection: SETTING_FIELDS,
        readConcern,
        readPreference: ReadPreference.primary,
        session,
        signal,
      },
    );
  }

  #write<T>(write: () => Promise<T>, signal: AbortSignal | undefined): Promise<T> {
    return this.#o.exclusive(() => abortable(write(), signal));
  }
}

function int64(value: bigint, field: string, operation: string): Long {
  if (value < 0n || value > INT64_MAX) {
    throw new StoreError(KIND, operation, `${field} ${value} is not a non-negative int64`, {
      retryable: false,
    });
  }
  return Long.fromBigInt(value);
}
