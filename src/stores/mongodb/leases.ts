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
import { ClockRecordMissingError, StoreError } from "../../errors.js";
import type { LeaseRecord, LeaseStore, LeaseWrite } from "../../lease-store.js";
import { checkWrite } from "../../record.js";
import { INT64_MAX } from "../../time.js";
import type { StoreCalls } from "../call.js";
import {
  CLOCK_ID,
  decodeField,
  decodeLease,
  decodeTime,
  INTEGER_TYPES,
  int64,
  LEASE_INTEGERS,
  type NamedDocument,
  prefixRange,
} from "./decode.js";
import { mongoCode } from "./errors.js";
import { allotToken, type TokenCounterOptions } from "./tokens.js";
import { watchChanges } from "./watch.js";

export type { NamedDocument };

const KIND = "mongodb";

/** The clock document's time and maxStep, with the server's names for their stored types. */
const CLOCK_FIELDS = {
  time: 1,
  timeType: { $type: "$time" },
  maxStep: 1,
  maxStepType: { $type: "$maxStep" },
};
const MAX_STEP_FIELDS = { _id: 0, maxStep: 1, maxStepType: { $type: "$maxStep" } };
/** A lease document, with the stored type of each integer (`tokenType`…): see decodeLease. */
const LEASE_FIELDS: Document = { holder: 1, pins: 1 };
for (const f of LEASE_INTEGERS)
  Object.assign(LEASE_FIELDS, { [f]: 1, [`${f}Type`]: { $type: `$${f}` } });

export interface MongoLeasesOptions {
  /** The clock's collection: the clock document holds maxStep and the token counter too. */
  clock: Collection<NamedDocument>;
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
 * `{ _id: name, holder, token, start, expiry, pins, version }`, integers as int64 (Long).
 * The cluster's maxStep and the fencing-token counter are fields of the clock document,
 * `{ _id: "g", time, maxStep, lastToken }` (Juju reads and `$set`s `time` only), because a
 * MongoDB write is atomic within one document: the clock's advance is one updateOne whose
 * filter holds both the old time and the maxStep it was built on. A lease write is a
 * compare-and-swap on `version`: an insert for a new record (a duplicate key loses), else
 * `updateOne({ _id, version }, { $set })` decided by matchedCount; a change of holder first
 * takes a token from the counter (tokens.ts). A retried write whose first attempt committed
 * is answered from the oplog as the success it was.
 *
 * Round trips: readClock one find; readLease and listLeases one aggregate each (the clock
 * document, then the leases through $unionWith: one command in the store's session, which
 * the sessions specification forbids using for two operations at once); advanceClock,
 * swapMaxStep one each; writeLease one, plus one for a new token; ensureMaxStep one where it
 * stores the value, two where one was stored already. watchLeases is one change stream.
 */
export class MongoLeases implements LeaseStore {
  readonly #o: MongoLeasesOptions;
  /** The clock's namespace, for messages. */
  readonly #ns: string;
  readonly #tokens: TokenCounterOptions;

  constructor(options: MongoLeasesOptions) {
    this.#o = options;
    this.#ns = `${options.clock.dbName}.${options.clock.collectionName}`;
    this.#tokens = {
      ...options,
      write: (write, signal) => this.#write(write, signal),
      ns: this.#ns,
    };
  }

  readClock(signal?: AbortSignal) {
    return this.#o.calls.run("readClock", signal, async () => {
      const doc = await this.#findClock({ _id: 0, ...CLOCK_FIELDS }, signal);
      if (doc === null) return { time: undefined, maxStep: undefined };
      return this.#context(doc, "readClock");
    });
  }

  advanceClock(old: bigint, next: bigint, maxStep: bigint, signal?: AbortSignal) {
    return this.#o.calls.run("advanceClock", signal, async () => {
      const time = int64(next, "time", "advanceClock");
      // A negative `old` or maxStep can only match a corrupt record, which is left alone.
      if (old < 0n || old > INT64_MAX || maxStep < 0n || maxStep > INT64_MAX) return false;
      const filter = {
        _id: CLOCK_ID,
        time: { $eq: Long.fromBigInt(old), $type: INTEGER_TYPES },
        maxStep: { $eq: Long.fromBigInt(maxStep), $type: INTEGER_TYPES },
      };
      return this.#updateClock(filter, { time }, signal);
    });
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

  writeLease(write: LeaseWrite, version: bigint | undefined, signal?: AbortSignal) {
    return this.#o.calls.run("writeLease", signal, async () => {
      checkWrite(write, KIND, "writeLease");
      if (version !== undefined && (version < 1n || version >= INT64_MAX)) return undefined;
      const token = write.newToken
        ? await allotToken(this.#tokens, write.token, signal)
        : write.token;
      const fields: Document = {
        holder: write.holder,
        token: Long.fromBigInt(token),
        start: Long.fromBigInt(write.start),
        expiry: Long.fromBigInt(write.expiry),
        pins: [...write.pins],
      };
      const { leases, session, writeConcern } = this.#o;
      if (version === undefined) {
        try {
          // Random (1 to 2^52): a record made anew after an operator deleted one never takes
          // the deleted one's version, which a writer that read it may still hold.
          const first = Long.fromNumber(Math.floor(Math.random() * 2 ** 52) + 1);
          const doc = { _id: write.name, ...fields, version: first };
          await this.#write(() => leases.insertOne(doc, { writeConcern, session }), signal);
          return { version: first.toBigInt(), token };
        } catch (err) {
          if (mongoCode(err) === 11000) return undefined; // another write came first
          throw err;
        }
      }
      const result = await this.#write(
        () =>
          leases.updateOne(
            { _id: write.name, version: { $eq: Long.fromBigInt(version), $type: "long" } },
            { $set: { ...fields, version: Long.fromBigInt(version + 1n) } },
            { writeConcern, session },
          ),
        signal,
      );
      return result.matchedCount === 1 ? { version: version + 1n, token } : undefined;
    });
  }

  /**
   * Sets maxStep in the clock document where it has none (never creating the document), and
   * returns the stored one: read with a find where the update matched nothing.
   */
  ensureMaxStep(value: bigint, signal?: AbortSignal) {
    return this.#o.calls.run("ensureMaxStep", signal, async () => {
      const maxStep = int64(value, "maxStep", "ensureMaxStep");
      const { clock, session, writeConcern } = this.#o;
      let doc: Document | null = await this.#write(
        () =>
          clock.findOneAndUpdate(
            { _id: CLOCK_ID, maxStep: { $exists: false } },
            { $set: { maxStep } },
            { returnDocument: "after", projection: MAX_STEP_FIELDS, writeConcern, session },
          ),
        signal,
      );
      // A retried findAndModify is answered from the oplog without the projection.
      if (doc?.maxStepType === undefined) doc = await this.#findClock(MAX_STEP_FIELDS, signal);
      if (doc === null) throw new ClockRecordMissingError(KIND, "ensureMaxStep");
      const stored = decodeField(doc, "maxStep", "ensureMaxStep", this.#ns);
      if (stored === undefined) {
        throw new StoreError(
          KIND,
          "ensureMaxStep",
          `maxStep was deleted from ${this.#ns} meanwhile`,
        );
      }
      return stored;
    });
  }

  swapMaxStep(old: bigint, next: bigint, signal?: AbortSignal) {
    return this.#o.calls.run("swapMaxStep", signal, async () => {
      const maxStep = int64(next, "maxStep", "swapMaxStep");
      // Only a corrupt value could match a negative `old`, and it is left alone.
      if (old < 0n || old > INT64_MAX) return false;
      const filter = {
        _id: CLOCK_ID,
        maxStep: { $eq: Long.fromBigInt(old), $type: INTEGER_TYPES },
      };
      return this.#updateClock(filter, { maxStep }, signal);
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
   * One aggregate: the clock document, then the leases `filter` selects (a collection that
   * does not exist adds nothing to a union).
   */
  async #read(filter: Document, sorted: boolean, operation: string, signal?: AbortSignal) {
    const { clock, leases, readConcern, session } = this.#o;
    const pipeline: Document[] = [
      { $match: { _id: CLOCK_ID } },
      { $project: CLOCK_FIELDS },
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
    let context: { time: bigint | undefined; maxStep: bigint | undefined } = {
      time: undefined,
      maxStep: undefined,
    };
    const found: LeaseRecord[] = [];
    for (const doc of docs) {
      // A lease may be named "g" too: what tells the clock document is its fields.
      if ("versionType" in doc) found.push(decodeLease(doc, operation));
      else context = this.#context(doc, operation);
    }
    return { ...context, leases: found };
  }

  #context(doc: Document, operation: string) {
    return {
      time: decodeTime(doc, operation, this.#ns),
      maxStep: decodeField(doc, "maxStep", operation, this.#ns),
    };
  }

  #findClock(projection: Document, signal: AbortSignal | undefined): Promise<Document | null> {
    const { clock, readConcern, session } = this.#o;
    return clock.findOne(
      { _id: CLOCK_ID },
      { projection, readConcern, readPreference: ReadPreference.primary, session, signal },
    );
  }

  /** `$set`s `fields` in the clock document where it matches `filter`; whether it did. */
  async #updateClock(filter: Document, fields: Document, signal: AbortSignal | undefined) {
    const { clock, session, writeConcern } = this.#o;
    const result = await this.#write(
      () => clock.updateOne(filter, { $set: fields }, { writeConcern, session }),
      signal,
    );
    return result.matchedCount === 1;
  }

  #write<T>(write: () => Promise<T>, signal: AbortSignal | undefined): Promise<T> {
    return this.#o.exclusive(() => abortable(write(), signal));
  }
}
