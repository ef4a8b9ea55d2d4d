/**
 * Fencing tokens from a counter in the clock document, `lastToken` (int64): the last token
 * handed out. Every token handed out is the counter's new value after a write that only
 * raises it, so none is ever handed out twice while the counter lives.
 */
import {
  type ClientSession,
  type Collection,
  type Document,
  Long,
  type ReadConcernLevel,
  ReadPreference,
  type W,
} from "mongodb";
import { ClockRecordMissingError, StoreError } from "../../errors.js";
import { INT64_MAX } from "../../time.js";
import {
  CLOCK_ID,
  decodeField,
  exactInteger,
  INTEGER_TYPES,
  type NamedDocument,
} from "./decode.js";

const KIND = "mongodb";
const OPERATION = "writeLease";
/** The counter, with the server's name for its stored type. */
const COUNTER_FIELDS = { _id: 0, lastToken: 1, lastTokenType: { $type: "$lastToken" } };
/** How often an allotment tries again when another one changed the counter under it. */
const ATTEMPTS = 5;

export interface TokenCounterOptions {
  clock: Collection<NamedDocument>;
  leases: Collection<NamedDocument>;
  session: ClientSession | undefined;
  readConcern: { level: ReadConcernLevel };
  writeConcern: { w: W };
  /** Runs a write as the store runs its writes (one at a time, abortable). */
  write: <T>(write: () => Promise<T>, signal: AbortSignal | undefined) => Promise<T>;
  /** The clock's namespace, for messages. */
  ns: string;
}

/**
 * A new token, above `floor` (the record's old token) and every token handed out before:
 * - the counter at or above `floor`: `$inc` by one (one findAndModify, the usual case);
 * - the counter below it (a record written with a token of its own): set to `floor + 1`
 *   where it is still below;
 * - no counter (never made, or the clock document restored from before it): made where it
 *   is still missing, above every token stored in the leases collection.
 * A write that lost its condition tries the others again. An allotted token whose lease
 * write then loses leaves a gap, never a repeat. No clock document: ClockRecordMissingError.
 */
export async function allotToken(
  o: TokenCounterOptions,
  floor: bigint,
  signal: AbortSignal | undefined,
): Promise<bigint> {
  if (floor >= INT64_MAX) throw noneAbove(floor);
  const { clock, session, writeConcern } = o;
  const integer = { $type: INTEGER_TYPES };
  for (let attempt = 1; attempt <= ATTEMPTS; attempt++) {
    const counted = await o.write(
      () =>
        clock.findOneAndUpdate(
          { _id: CLOCK_ID, lastToken: { $gte: Long.fromBigInt(floor), ...integer } },
          { $inc: { lastToken: Long.ONE } },
          { returnDocument: "after", projection: COUNTER_FIELDS, writeConcern, session },
        ),
      signal,
    );
    if (counted !== null) return countedToken(counted, o.ns);
    const next = Long.fromBigInt(floor + 1n);
    const below = { $gte: Long.ZERO, $lt: next, ...integer };
    if (await setCounter(o, below, next, signal)) return floor + 1n;
    const found = await o.clock.findOne(
      { _id: CLOCK_ID },
      { projection: COUNTER_FIELDS, ...reading(o), signal },
    );
    if (found === null) throw new ClockRecordMissingError(KIND, OPERATION);
    if (decodeField(found, "lastToken", OPERATION, o.ns) !== undefined) continue; // moved meanwhile
    const stored = await highestStoredToken(o, signal);
    const top = stored > floor ? stored : floor;
    if (top >= INT64_MAX) throw noneAbove(top);
    if (await setCounter(o, { $exists: false }, Long.fromBigInt(top + 1n), signal)) return top + 1n;
  }
  throw new StoreError(
    KIND,
    OPERATION,
    `the token counter in ${o.ns} changed under ${ATTEMPTS} attempts in a row; another process is taking tokens`,
  );
}

function noneAbove(token: bigint): StoreError {
  return new StoreError(KIND, OPERATION, `no int64 token is above ${token}`, { retryable: false });
}

/**
 * The counter's new value. A retried findAndModify is answered from the oplog without the
 * projection: then the type is known anyway, as the filter matched an int32 or an int64 and
 * `$inc` by an int64 leaves an int64.
 */
function countedToken(doc: Document, ns: string): bigint {
  const typed = doc.lastTokenType === undefined ? { ...doc, lastTokenType: "long" } : doc;
  const token = decodeField(typed, "lastToken", OPERATION, ns);
  if (token === undefined)
    throw new StoreError(KIND, OPERATION, `the token counter in ${ns} vanished as it was counted`);
  return token;
}

/** Sets the counter to `value` where it matches `condition`; whether it did. */
async function setCounter(
  o: TokenCounterOptions,
  condition: Document,
  value: Long,
  signal: AbortSignal | undefined,
): Promise<boolean> {
  const { clock, session, writeConcern } = o;
  const result = await o.write(
    () =>
      clock.updateOne(
        { _id: CLOCK_ID, lastToken: condition },
        { $set: { lastToken: value } },
        { writeConcern, session },
      ),
    signal,
  );
  return result.matchedCount === 1;
}

/** The greatest integer token in the leases collection; 0 when there is none. */
async function highestStoredToken(
  o: TokenCounterOptions,
  signal: AbortSignal | undefined,
): Promise<bigint> {
  const [top] = await o.leases
    .aggregate(
      [
        { $match: { token: { $type: INTEGER_TYPES } } },
        { $sort: { token: -1 } },
        { $limit: 1 },
        { $project: { _id: 0, token: 1 } },
      ],
      { ...reading(o), signal },
    )
    .toArray();
  return exactInteger(top?.token) ?? 0n;
}

function reading(o: TokenCounterOptions) {
  return { readConcern: o.readConcern, readPreference: ReadPreference.primary, session: o.session };
}
