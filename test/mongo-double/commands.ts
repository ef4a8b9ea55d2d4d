/**
 * The double's command dispatcher: the handshake and housekeeping commands a driver
 * sends (hello/isMaster, ping, buildInfo, endSessions), the CRUD commands, and change
 * streams in replica-set mode. Unknown commands get mongod's CommandNotFound (59).
 */
import { type Document, Long, ObjectId } from "bson";
import { ChangeStreams } from "./changes.js";
import { Collections, deleteLimit } from "./collections.js";
import { badValue, CommandError, idKey, toNumber } from "./values.js";

export interface EngineOptions {
  /** "host:port" clients use to reach the double. */
  address: string;
  /** Answer as the primary of this replica set (change streams, retryable writes). */
  replicaSet?: string;
}

const ELECTION_ID = new ObjectId("7fffffff0000000000000001");

export class Engine {
  readonly options: EngineOptions;
  readonly changes: ChangeStreams;
  readonly data: Collections;
  /** Retryable writes: the last reply per session, replayed when its txnNumber comes again. */
  readonly #retries = new Map<string, { txn: bigint; reply: Document }>();
  /**
   * mongod 4.4+ sends this in hello; it makes drivers stream their heartbeats, and reset
   * their monitor after a network error. The counter grows with each (simulated) change.
   */
  readonly topologyVersion = { processId: new ObjectId(), counter: Long.ZERO };
  readonly #topologyListeners = new Set<() => void>();

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

  constructor(options: EngineOptions) {
    this.options = options;
    this.changes = new ChangeStreams((ns, id) => this.data.find(ns, { _id: id })[0]);
    this.data = new Collections((event) => this.changes.record(event));
  }

  /** Runs one command synchronously; `getMore` on a change stream is the one async command. */
  run(db: string, cmd: Document, connectionId: number): Document | Promise<Document> {
    const name = Object.keys(cmd)[0] ?? "";
    const session = this.#retryKey(cmd);
    const earlier = session && this.#retries.get(session.key);
    if (session && earlier && earlier.txn === session.txn) return earlier.reply;
    const reply = this.#dispatch(name, db, cmd, connectionId);
    if (session && !(reply instanceof Promise))
      this.#retries.set(session.key, { txn: session.txn, reply });
    if (this.options.replicaSet && !(reply instanceof Promise)) {
      reply.operationTime = this.changes.clusterTime;
    }
    return reply;
  }

  hello(connectionId: number, legacy: boolean): Document {
    const { address, replicaSet } = this.options;
    const reply: Document = {
      helloOk: true,
      isWritablePrimary: true,
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
    if (legacy) reply.ismaster = true;
    if (replicaSet) {
      Object.assign(reply, {
        setName: replicaSet,
        setVersion: 1,
        electionId: ELECTION_ID,
        hosts: [address],
        primary: address,
        me: address,
        secondary: false,
      });
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
      case "insert":
        return this.#writes(cmd.documents, cmd.ordered, (doc) => {
          this.data.insert(ns, doc);
          return { n: 1 };
        });
      case "update": {
        const upserted: Document[] = [];
        let nModified = 0;
        const reply = this.#writes(cmd.updates, cmd.ordered, (u, index) => {
          const options = { upsert: u.upsert === true, multi: u.multi === true };
          const r = this.data.update(ns, (u.q as Document) ?? {}, u.u, options);
          nModified += r.modified;
          if (r.upserted === undefined) return { n: r.matched };
          upserted.push({ index, _id: r.upserted });
          return { n: 1 };
        });
        reply.nModified = nModified;
        if (upserted.length) reply.upserted = upserted;
        return reply;
      }
      case "findAndModify":
      case "findandmodify":
        return this.data.findAndModify(ns, cmd);
      case "delete":
        return this.#writes(cmd.deletes, cmd.ordered, (d) => ({
          n: this.data.delete(ns, (d.q as Document) ?? {}, deleteLimit(d.limit)),
        }));
      case "drop":
        this.data.drop(ns);
        return { ns, nIndexesWas: 1, ok: 1 };
      case "dropDatabase":
        this.data.dropDatabase(db);
        return { dropped: db, ok: 1 };
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

  #aggregate(db: string, cmd: Document): Document {
    const first = (cmd.pipeline as Document[] | undefined)?.[0];
    if (!first || !("$changeStream" in first)) {
      throw badValue("the test double supports aggregate only for change streams");
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

  /** Runs a batch of write statements, collecting per-statement errors as mongod does. */
  #writes(
    statements: unknown,
    ordered: unknown,
    each: (statement: Document, index: number) => { n: number },
  ): Document {
    if (!Array.isArray(statements)) throw badValue("write statements must be an array");
    let n = 0;
    const writeErrors: Document[] = [];
    for (const [index, statement] of (statements as Document[]).entries()) {
      try {
        n += each(statement, index).n;
      } catch (err) {
        if (!(err instanceof CommandError)) throw err;
        writeErrors.push({ index, code: err.code, codeName: err.codeName, errmsg: err.message });
        if (ordered !== false) break;
      }
    }
    const reply: Document = { n, ok: 1 };
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
