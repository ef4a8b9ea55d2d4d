/**
 * Change streams for the double's replica-set mode: `aggregate` with a leading
 * `$changeStream` stage (optionally followed by `$match`), `getMore` that waits for new
 * events up to maxTimeMS, and `killCursors`. Resume tokens are opaque `{ _data }` strings
 * holding the event's sequence number, so a driver can resume after a dropped connection.
 *
 * A collection's stream is invalidated by a drop or rename of that collection (dropDatabase
 * drops each collection): after the "drop" or "rename" event comes an "invalidate" event,
 * and the batch holding it closes the cursor (id 0). "invalidate events close the change
 * stream cursor" (MongoDB manual, Change Events: invalidate). The stream's own `$match` stages
 * apply to both events, so a stream filtered on `documentKey._id` sees neither, only its
 * cursor closing.
 */
import { type Document, Long, Timestamp } from "bson";
import type { ChangeEvent } from "./collections.js";
import { matches } from "./query.js";
import { badValue, CommandError, clone, toNumber, typeName } from "./values.js";

interface Cursor {
  ns: string;
  /** The sequence number of the last event this cursor has passed. */
  position: number;
  stages: Document[];
  fullDocument: string;
}

const token = (seq: number) => ({ _data: seq.toString(16).padStart(16, "0").toUpperCase() });

function parseToken(t: unknown): number {
  const data = typeName(t) === "object" ? (t as Document)._data : undefined;
  if (typeof data !== "string" || !/^[0-9A-F]{16}$/.test(data)) {
    throw new CommandError(260, "InvalidResumeToken", "resume token was not recognised");
  }
  return Number.parseInt(data, 16);
}

export class ChangeStreams {
  readonly #events: Array<{ seq: number; ns: string; doc: Document }> = [];
  readonly #cursors = new Map<bigint, Cursor>();
  readonly #waiters = new Set<() => void>();
  #seq = 0;
  #nextCursor = 1n;
  readonly #lookup: (ns: string, id: unknown) => Document | undefined;

  /** `lookup` reads a document's current state, for `fullDocument: "updateLookup"`. */
  constructor(lookup: (ns: string, id: unknown) => Document | undefined) {
    this.#lookup = lookup;
  }

  /** The cluster time of the latest write, for `operationTime` in replies. */
  get clusterTime(): Timestamp {
    return new Timestamp({
      t: 1_700_000_000 + Math.floor(this.#seq / 1000),
      i: (this.#seq % 1000) + 1,
    });
  }

  record(event: ChangeEvent): void {
    const seq = ++this.#seq;
    const ns = `${event.ns.db}.${event.ns.coll}`;
    this.#events.push({
      seq,
      ns,
      doc: { _id: token(seq), ...event, clusterTime: this.clusterTime },
    });
    if (this.#events.length > 10_000) this.#events.shift();
    for (const wake of [...this.#waiters]) wake();
  }

  open(db: string, cmd: Document): Document {
    const pipeline = cmd.pipeline as Document[];
    const spec = (pipeline[0] as Document).$changeStream as Document;
    const coll = typeof cmd.aggregate === "string" ? cmd.aggregate : "";
    const ns = `${db}.${coll}`;
    const from = spec.resumeAfter ?? spec.startAfter;
    const position = from === undefined ? this.#seq : parseToken(from);
    const stages = pipeline.slice(1);
    for (const stage of stages) {
      if (Object.keys(stage)[0] !== "$match")
        throw badValue("only $match may follow $changeStream here");
    }
    const fullDocument = typeof spec.fullDocument === "string" ? spec.fullDocument : "default";
    const id = this.#nextCursor++;
    const cursor: Cursor = { ns, position, stages, fullDocument };
    this.#cursors.set(id, cursor);
    return this.#batch(id, cursor, "firstBatch");
  }

  /** Answers a getMore, waiting up to maxTimeMS for an event when there is none yet. */
  async getMore(cmd: Document): Promise<Document> {
    const id = (cmd.getMore as Long).toBigInt();
    const cursor = this.#cursors.get(id);
    if (!cursor) throw new CommandError(43, "CursorNotFound", `cursor id ${id} not found`);
    const deadline = Date.now() + (toNumber(cmd.maxTimeMS) ?? 1000);
    while (!this.#pending(cursor) && Date.now() < deadline && this.#cursors.get(id) === cursor) {
      await new Promise<void>((resolve) => {
        const wake = () => {
          clearTimeout(timer);
          this.#waiters.delete(wake);
          resolve();
        };
        const timer = setTimeout(wake, Math.max(1, deadline - Date.now()));
        this.#waiters.add(wake);
      });
    }
    if (this.#cursors.get(id) !== cursor)
      throw new CommandError(43, "CursorNotFound", `cursor id ${id} was killed`);
    return this.#batch(id, cursor, "nextBatch");
  }

  kill(ids: unknown[]): Document {
    const killed: Long[] = [];
    const notFound: Long[] = [];
    for (const raw of ids) {
      const id = (raw as Long).toBigInt();
      (this.#cursors.delete(id) ? killed : notFound).push(Long.fromBigInt(id));
    }
    for (const wake of [...this.#waiters]) wake();
    return {
      cursorsKilled: killed,
      cursorsNotFound: notFound,
      cursorsAlive: [],
      cursorsUnknown: [],
      ok: 1,
    };
  }

  /** Forgets every cursor, as a restarted server would. */
  reset(): void {
    this.#cursors.clear();
    for (const wake of [...this.#waiters]) wake();
  }

  #pending(cursor: Cursor): boolean {
    return this.#events.some((e) => e.seq > cursor.position && e.ns === cursor.ns);
  }

  #batch(id: bigint, cursor: Cursor, field: "firstBatch" | "nextBatch"): Document {
    const batch: Document[] = [];
    let position = this.#seq;
    let invalidated: Document | undefined;
    for (const e of this.#events) {
      if (e.seq <= cursor.position || e.ns !== cursor.ns) continue;
      const doc = clone(e.doc);
      if (cursor.fullDocument === "updateLookup" && doc.operationType === "update") {
        doc.fullDocument = this.#lookup(cursor.ns, (doc.documentKey as Document)._id) ?? null;
      }
      if (cursor.stages.every((s) => matches(doc, s.$match as Document))) batch.push(doc);
      if (doc.operationType === "drop" || doc.operationType === "rename") {
        // An invalidate token resumes nothing (the stream cannot go on after it).
        invalidated = {
          _id: { _data: `${token(e.seq)._data}FF` },
          operationType: "invalidate",
          clusterTime: doc.clusterTime,
        };
        if (cursor.stages.every((s) => matches(invalidated as Document, s.$match as Document)))
          batch.push(invalidated);
        position = e.seq;
        break;
      }
    }
    cursor.position = position;
    if (invalidated) this.#cursors.delete(id);
    return {
      cursor: {
        [field]: batch,
        id: invalidated ? Long.ZERO : Long.fromBigInt(id),
        ns: cursor.ns,
        postBatchResumeToken: invalidated ? invalidated._id : token(position),
      },
      ok: 1,
    };
  }
}
