/**
 * The double's command dispatcher: the handshake and housekeeping commands a driver
 * sends (hello/isMaster, ping, buildInfo, endSessions), the CRUD commands, aggregate
 * (aggregate.ts), renameCollection, and in replica-set mode change streams, retryable
 * writes and replSetStepDown. Unknown commands get mongod's CommandNotFound (59).
 */
import { type Document, Long, ObjectId } from "bson";
import { runPipeline } from "./aggregate.js";
import { ChangeStreams } from "./changes.js";
import { Collections, deleteLimit, type FindAndModifyWrite } from "./collections.js";
import { checkReadConcern, checkWriteConcern, isWrite } from "./concerns.js";
import { badValue, CommandError, clone, idKey, toNumber, typeName } from "./values.js";

export interface EngineOptions {
  /** "host:port" clients use to reach the double. */
  address: string;
  /** Answer as the primary of this replica set (change streams, retryable writes). */
  replicaSet?: string;
  /**
   * How long an election takes once this member may stand again (after a step-down). A real
   * replica set takes seconds (MongoDB's manual: the median time before a new primary is
   * elected should not typically exceed 12 seconds with the default settings). Default 20 ms.
   */
  electionMs?: number;
}

/** mongod's electionId: OID::fromTerm, 0x7fffffff then the term as 8 bytes. */
const electionId = (term: number) => new ObjectId(`7fffffff${term.toString(16).padStart(16, "0")}`);

/**
 * A retryable write's record in its session: mongod keeps, per session, the active
 * txnNumber and the oplog entries of the statements it executed (checkStatementExecuted in
 * src/mongo/db/transaction_participant.cpp returns the entry of an executed statement, and
 * nothing for one that wrote nothing, which a retry therefore runs again).
 */
interface SessionRecord {
  txn: bigint;
  /** Per statement index: what it wrote, to answer a retry from. */
  executed: Map<number, Document | FindAndModifyWrite>;
}

const notPrimary = () => new CommandError(10107, "NotWritablePrimary", "not primary");

export class Engine {
  readonly options: EngineOptions;
  readonly changes: ChangeStreams;
  readonly data: Collections;
  readonly #sessions = new Map<string, SessionRecord>();
  /**
   * mongod 4.4+ sends this in hello; it makes drivers stream their heartbeats, and reset
   * their monitor after a network error. The counter grows with each (simulated) change.
   */
  readonly topologyVersion = { processId: new ObjectId(), counter: Long.ZERO };
  readonly #topologyListeners = new Set<() => void>();
  /** Whether this member is the primary; a replica set's member steps down and is re-elected. */
  #primary = true;
  #term = 1;
  #election: NodeJS.Timeout | undefined;

  constructor(options: EngineOptions) {
    this.options = options;
    this.changes = new ChangeStreams((ns, id) => this.data.find(ns, { _id: id })[0]);
    this.data = new Collections((event) => this.changes.record(event));
  }

  get primary(): boolean {
    return this.#primary;
  }

  /**
   * A change of this member's state: the counter grows and, if `announce`, every
   * awaitable hello answers at once (a step-down is told by the error that reports it).
   */
  changeTopology(announce = true): void {
    this.topologyVersion.counter = this.topologyVersion.counter.add(1);
    if (announce) for (const listener of [...this.#topologyListeners]) listener();
  }

  /** Calls `listener` at the next topology change; returns a function that cancels it. */
  onTopologyChange(listener: () => void): () => void {
    const once = () => {
      this.#topologyListeners.delete(once);
      listener();
    };
    this.#topologyListeners.add(once);
    return () => this.#topologyListeners.delete(once);
  }

  /**
   * Steps down: a secondary until `ineligibleMs` has passed and an election (electionMs)
   * has run, then primary again in a new term. `announce` as in changeTopology.
   */
  stepDown(ineligibleMs: number, announce: boolean): void {
    // A standalone has no election: it only reports the state change.
    if (this.options.replicaSet) this.#primary = false;
    this.changeTopology(announce);
    clearTimeout(this.#election);
    this.#election = setTimeout(
      () => {
        this.#election = undefined;
        if (this.options.replicaSet) {
          this.#primary = true;
          this.#term++;
        }
        this.changeTopology();
      },
      ineligibleMs + (this.options.electionMs ?? 20),
    );
    this.#election.unref();
  }

  /** Stops a pending election (the double is closing). */
  stop(): void {
    clearTimeout(this.#election);
  }

  /** Runs one command synchronously; `getMore` on a change stream is the one async command. */
  run(db: string, cmd: Document, connectionId: number): Document | Promise<Document> {
    const name = Object.keys(cmd)[0] ?? "";
    const reply = this.#checked(name, db, cmd, connectionId);
    if (this.options.replicaSet && !(reply instanceof Promise)) {
      reply.operationTime = this.changes.clusterTime;
    }
    return reply;
  }

  #checked(
    name: string,
    db: string,
    cmd: Document,
    connectionId: number,
  ): Document | Promise<Document> {
    const replicaSet = this.options.replicaSet !== undefined;
    checkReadConcern(cmd.readConcern, { replicaSet });
    const write = isWrite(name);
    const unsatisfiable = write ? checkWriteConcern(cmd.writeConcern, { replicaSet }) : undefined;
    if (!this.#primary) {
      // A secondary takes no writes, and no reads without secondaryOk (the driver reads
      // the clock from the primary only). A cursor it already serves goes on.
      if (write) throw notPrimary();
      if (name === "find" || name === "aggregate") {
        throw new CommandError(
          13435,
          "NotPrimaryNoSecondaryOk",
          "not primary and secondaryOk=false",
        );
      }
    }
    const reply = write ? this.#write(name, db, cmd) : this.#dispatch(name, db, cmd, connectionId);
    if (unsatisfiable && !(reply instanceof Promise)) reply.writeConcernError = unsatisfiable;
    return reply;
  }

  /**
   * A write, retryable when it carries lsid and txnNumber on a replica set: a txnNumber
   * below the session's active one is TransactionTooOld (225; beginOrContinue in
   * transaction_participant.cpp); the same one answers executed statements from their
   * record and runs the others.
   */
  #write(name: string, db: string, cmd: Document): Document {
    const session = this.#retryKey(cmd);
    let record: SessionRecord | undefined;
    if (session) {
      record = this.#sessions.get(session.key);
      if (record && session.txn < record.txn) {
        throw new CommandError(
          225,
          "TransactionTooOld",
          `Cannot start transaction ${session.txn} on session because a newer transaction ${record.txn} has already started`,
        );
      }
      if (!record || record.txn !== session.txn) {
        record = { txn: session.txn, executed: new Map() };
        this.#sessions.set(session.key, record);
      }
    }
    const coll = typeof cmd[name] === "string" ? (cmd[name] as string) : "";
    const ns = `${db}.${coll}`;
    if (name === "findAndModify" || name === "findandmodify") {
      const earlier = record?.executed.get(0) as FindAndModifyWrite | undefined;
      if (earlier) return replayFindAndModify(cmd, earlier);
      const { reply, written } = this.data.findAndModify(ns, cmd);
      if (record && written) record.executed.set(0, written);
      return reply;
    }
    return this.#dispatchWrite(name, db, ns, cmd, record);
  }

  hello(connectionId: number, legacy: boolean): Document {
    const { address, replicaSet } = this.options;
    const reply: Document = {
      helloOk: true,
      isWritablePrimary: this.#primary,
      maxBsonObjectSize: 16 * 1024 * 1024,
      maxMessageSizeBytes: 48_000_000,
      maxWriteBatchSize: 100_000,
      localTime: new Date(),
      logicalSessionTimeoutMinutes: 30,
      connectionId,
      minWireVersion: 0,
      maxWireVersion: 21,
      readOnly: false,
      topologyVersion: { ...this.topologyVersion },
      ok: 1,
    };
    if (legacy) reply.ismaster = this.#primary;
    if (replicaSet) {
      Object.assign(reply, {
        setName: replicaSet,
        setVersion: 1,
        hosts: [address],
        me: address,
        secondary: !this.#primary,
      });
      if (this.#primary) {
        Object.assign(reply, { primary: address, electionId: electionId(this.#term) });
      }
    }
    return reply;
  }

  #dispatch(
    name: string,
    db: string,
    cmd: Document,
    connectionId: number,
  ): Document | Promise<Document> {
    const coll = typeof cmd[name] === "string" ? (cmd[name] as string) : "";
    const ns = `${db}.${coll}`;
    switch (name) {
      case "hello":
      case "isMaster":
      case "ismaster":
        return this.hello(connectionId, name !== "hello");
      case "ping":
      case "endSessions":
        return { ok: 1 };
      case "buildInfo":
      case "buildinfo":
        return { version: "7.0.0", versionArray: [7, 0, 0, 0], gitVersion: "test-double", ok: 1 };
      case "find": {
        const limit = Math.abs(toNumber(cmd.limit) ?? 0);
        const firstBatch = this.data.find(ns, cmd.filter as Document, cmd.projection, limit);
        return { cursor: { firstBatch, id: Long.ZERO, ns }, ok: 1 };
      }
      case "aggregate":
        return this.#aggregate(db, cmd);
      case "getMore":
        return this.changes.getMore(cmd);
      case "killCursors":
        return this.changes.kill((cmd.cursors as unknown[]) ?? []);
      default:
        throw new CommandError(59, "CommandNotFound", `no such command: '${name}'`);
    }
  }

  #dispatchWrite(
    name: string,
    db: string,
    ns: string,
    cmd: Document,
    record: SessionRecord | undefined,
  ): Document {
    switch (name) {
      case "insert":
        return this.#writes(cmd.documents, cmd.ordered, record, (doc) => {
          this.data.insert(ns, doc);
          return { n: 1, wrote: true };
        });
      case "update": {
        const reply = this.#writes(cmd.updates, cmd.ordered, record, (u) => {
          const options = { upsert: u.upsert === true, multi: u.multi === true };
          const r = this.data.update(ns, (u.q as Document) ?? {}, u.u, options);
          if (r.upserted === undefined) {
            return { n: r.matched, nModified: r.modified, wrote: r.modified > 0 };
          }
          return { n: 1, nModified: 0, upserted: r.upserted, wrote: true };
        });
        return reply;
      }
      case "delete":
        return this.#writes(cmd.deletes, cmd.ordered, record, (d) => {
          const n = this.data.delete(ns, (d.q as Document) ?? {}, deleteLimit(d.limit));
          return { n, wrote: n > 0 };
        });
      case "drop":
        // MongoDB 7.0+ (the version this double reports) drops a missing collection without error.
        this.data.drop(ns);
        return { ns, nIndexesWas: 1, ok: 1 };
      case "dropDatabase":
        this.data.dropDatabase(db);
        return { dropped: db, ok: 1 };
      case "renameCollection": {
        if (db !== "admin") {
          throw new CommandError(
            13,
            "Unauthorized",
            "renameCollection may only be run against the admin database.",
          );
        }
        const from = String(cmd.renameCollection);
        const to = String(cmd.to);
        this.data.rename(from, to, cmd.dropTarget === true);
        return { ok: 1 };
      }
      default:
        throw new CommandError(59, "CommandNotFound", `no such command: '${name}'`);
    }
  }

  #aggregate(db: string, cmd: Document): Document {
    const first = (cmd.pipeline as Document[] | undefined)?.[0];
    if (!first || !("$changeStream" in first)) {
      // mongod 3.6+: "The 'cursor' option is required, except for aggregate with the explain argument".
      if (typeName(cmd.cursor) !== "object") {
        throw new CommandError(
          9,
          "FailedToParse",
          "The 'cursor' option is required, except for aggregate with the explain argument",
        );
      }
      const coll = typeof cmd.aggregate === "string" ? cmd.aggregate : "";
      const firstBatch = runPipeline(this.data, db, coll, cmd.pipeline);
      return { cursor: { firstBatch, id: Long.ZERO, ns: `${db}.${coll}` }, ok: 1 };
    }
    if (!this.options.replicaSet) {
      throw new CommandError(
        40573,
        "Location40573",
        "The $changeStream stage is only supported on replica sets",
      );
    }
    return this.changes.open(db, cmd);
  }

  /**
   * Runs a batch of write statements, collecting per-statement errors as mongod does. A
   * statement a retry finds executed is answered from its record (mongod answers from the
   * oplog: parseOplogEntryForUpdate gives n 1 and nModified 1, or the upserted _id); one
   * that wrote nothing is not recorded and runs again.
   */
  #writes(
    statements: unknown,
    ordered: unknown,
    record: SessionRecord | undefined,
    each: (
      statement: Document,
      index: number,
    ) => { n: number; nModified?: number; upserted?: unknown; wrote: boolean },
  ): Document {
    if (!Array.isArray(statements)) throw badValue("write statements must be an array");
    let n = 0;
    let nModified = 0;
    const upserted: Document[] = [];
    const writeErrors: Document[] = [];
    for (const [index, statement] of (statements as Document[]).entries()) {
      try {
        const earlier = record?.executed.get(index) as Document | undefined;
        const result = earlier ?? each(statement, index);
        if (record && !earlier && result.wrote) {
          record.executed.set(index, {
            n: 1,
            nModified: result.upserted === undefined ? 1 : 0,
            upserted: result.upserted,
            wrote: true,
          });
        }
        n += result.n as number;
        nModified += (result.nModified as number | undefined) ?? 0;
        if (result.upserted !== undefined) upserted.push({ index, _id: result.upserted });
      } catch (err) {
        if (!(err instanceof CommandError)) throw err;
        writeErrors.push({ index, code: err.code, codeName: err.codeName, errmsg: err.message });
        if (ordered !== false) break;
      }
    }
    const reply: Document = { n, ok: 1 };
    if (Array.isArray(statements) && statements.some((s) => "u" in (s as Document))) {
      reply.nModified = nModified;
    }
    if (upserted.length) reply.upserted = upserted;
    if (writeErrors.length) reply.writeErrors = writeErrors;
    return reply;
  }

  #retryKey(cmd: Document): { key: string; txn: bigint } | undefined {
    const txn = cmd.txnNumber;
    const lsid = cmd.lsid as Document | undefined;
    if (!this.options.replicaSet || txn === undefined || !lsid) return undefined;
    return { key: idKey(lsid.id), txn: (txn as Long).toBigInt() };
  }
}

/**
 * A retried findAndModify answered from what the first run wrote, as mongod's
 * parseOplogEntryForFindAndModify (write_ops_retryability.cpp) does: the whole image, with
 * no projection; an upsert's document only if `new` was asked for.
 */
function replayFindAndModify(cmd: Document, earlier: FindAndModifyWrite): Document {
  const lastErrorObject: Document = { n: 1 };
  if (earlier.op === "insert") {
    lastErrorObject.updatedExisting = false;
    lastErrorObject.upserted = earlier.upserted;
    const value = cmd.new === true ? clone(earlier.image ?? {}) : null;
    return { lastErrorObject, value, ok: 1 };
  }
  if (earlier.op === "update") lastErrorObject.updatedExisting = true;
  return { lastErrorObject, value: earlier.image && clone(earlier.image), ok: 1 };
}
