/**
 * A MongoDB wire-protocol TEST DOUBLE: a small TCP server on 127.0.0.1 that answers the
 * official driver the way mongod would, for the commands a clock record and its lease
 * records need. It is not a database (no indexes beyond `_id`, no durability, no auth,
 * sorting only in aggregate): it exists so that the MongoDB store can be tested end to
 * end, through the real driver, on machines where no mongod can be installed.
 *
 * Faults can be injected per command: drop the connection before or after applying
 * the command, delay the reply, hold the command until the test releases it, answer with
 * a server error, or apply a write and report a write-concern error. mongod's own test
 * fail point, `configureFailPoint: "failCommand"`, works too, so a test can strike a real
 * server (started with enableTestCommands=1) and the double alike. Every command is logged
 * for assertions.
 */
import { createServer, type Server, type Socket } from "node:net";
import type { Document } from "bson";
import { Engine } from "./commands.js";
import { CommandError, sameBson, toNumber } from "./values.js";
import { encodeReply, MessageReader, OP_QUERY, type WireRequest } from "./wire.js";

export type FaultAction =
  /** Close the connection without applying the command or answering. */
  | { kind: "drop-before" }
  /** Apply the command, then close the connection without answering: an unknown outcome. */
  | { kind: "drop-after" }
  /** Apply the command, answer after `ms`. */
  | { kind: "delay"; ms: number }
  /** Run the command only once `until` resolves (as failCommand's blockConnection, released by the test). */
  | { kind: "hold"; until: Promise<unknown> }
  /** mongod's failCommand fail point (see #failCommand). */
  | { kind: "fail-command"; data: Document }
  /** Answer `{ ok: 0, code, codeName }` without applying the command. */
  | { kind: "error"; code: number; codeName: string; errmsg?: string; errorLabels?: string[] }
  /** Apply the write, then answer ok with a writeConcernError (not majority-acknowledged). */
  | {
      kind: "write-concern-error";
      code?: number;
      codeName?: string;
      errmsg?: string;
      /** Labels to send instead of those mongod would add. */
      errorLabels?: string[];
    };

export interface Fault {
  /** The command it strikes ("update", "findAndModify", "find", …). */
  command: string;
  /** How many matching commands it strikes. Default 1. */
  times?: number;
  action: FaultAction;
}

export interface LoggedCommand {
  name: string;
  db: string;
  command: Document;
  connectionId: number;
}

export interface MongoDoubleOptions {
  /** Act as the primary of a one-member replica set of this name (enables change streams). */
  replicaSet?: string;
  /**
   * How long an election takes after this member stepped down (a state-change error or
   * replSetStepDown), in ms. Default 20; a real replica set takes seconds.
   */
  electionMs?: number;
}

const MONITORING = new Set(["hello", "isMaster", "ismaster"]);
// "Not primary" and "shutting down": mongod's state changed, which it reports in hello too.
const STATE_CHANGE_CODES = new Set([91, 189, 10107, 11600, 11602, 13435, 13436]);
// mongod's RetriableError category (src/mongo/base/error_codes.yml). Error labels follow
// ErrorLabelBuilder (src/mongo/db/error_labels.cpp): a retryable write (txnNumber, no
// autocommit) whose error or writeConcernError code is among them gets "RetryableWriteError"
// (mongod 4.4+); an error of aggregate or getMore on a change stream with one of them gets
// "ResumableChangeStreamError".
const RETRIABLE_CODES = new Set([6, 7, 89, 91, 189, 262, 9001, 10107, 11600, 11602, 13435, 13436]);
// Commands the failCommand fail point never strikes (SERVER-34551).
const NOT_FAILED = new Set([...MONITORING, "configureFailPoint", "buildInfo", "buildinfo"]);
const MAX_LOG = 20_000;

export class MongoDouble {
  readonly port: number;
  readonly options: MongoDoubleOptions;
  readonly engine: Engine;
  /** Commands received (not the monitors' hello), oldest first; bounded. */
  readonly log: LoggedCommand[] = [];
  /** Messages received by kind: the legacy OP_QUERY carries only a connection's first hello. */
  readonly received = { opMsg: 0, opQuery: 0 };
  readonly #server: Server;
  readonly #sockets = new Set<Socket>();
  readonly #faults: Array<Fault & { left: number; appName?: string }> = [];
  /** Each connection's appName, from its handshake (failCommand's `appName` filter). */
  readonly #appNames = new Map<number, string>();
  #connections = 0;

  private constructor(server: Server, port: number, options: MongoDoubleOptions) {
    this.#server = server;
    this.port = port;
    this.options = options;
    this.engine = new Engine({
      address: `127.0.0.1:${port}`,
      replicaSet: options.replicaSet,
      electionMs: options.electionMs,
    });
  }

  /** Starts a double on a free port of 127.0.0.1. */
  static async start(options: MongoDoubleOptions = {}): Promise<MongoDouble> {
    let self: MongoDouble | undefined;
    const server = createServer((socket) => (self ? self.#accept(socket) : socket.destroy()));
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(0, "127.0.0.1", () => resolve());
    });
    const address = server.address();
    if (address === null || typeof address === "string") throw new Error("no TCP address");
    self = new MongoDouble(server, address.port, options);
    return self;
  }

  /** A connection string for the driver; `query` is appended (e.g. "timeout=1s"). */
  uri(database = "", query = ""): string {
    const params = new URLSearchParams(query);
    if (this.options.replicaSet) params.set("replicaSet", this.options.replicaSet);
    else params.set("directConnection", "true");
    return `mongodb://127.0.0.1:${this.port}/${database}?${params}`;
  }

  /** Queues a fault; it strikes the next `times` commands named `command`. */
  inject(fault: Fault): void {
    this.#faults.push({ ...fault, left: fault.times ?? 1 });
  }

  /** Faults queued and not yet spent. */
  get pendingFaults(): number {
    return this.#faults.reduce((n, f) => n + f.left, 0);
  }

  /** Logged commands named `name`. */
  commands(name: string): LoggedCommand[] {
    return this.log.filter((c) => c.name === name);
  }

  /** Cuts every open connection, as a network blip or a restart would. */
  dropConnections(): void {
    for (const socket of this.#sockets) socket.destroy();
    this.engine.changes.reset();
  }

  async close(): Promise<void> {
    this.#faults.length = 0;
    this.engine.stop();
    const closed = new Promise<void>((resolve) => this.#server.close(() => resolve()));
    this.dropConnections();
    await closed;
  }

  #accept(socket: Socket): void {
    const connectionId = ++this.#connections;
    this.#sockets.add(socket);
    socket.setNoDelay(true);
    const reader = new MessageReader();
    socket.on("close", () => {
      this.#sockets.delete(socket);
      this.#appNames.delete(connectionId);
    });
    socket.on("error", () => socket.destroy());
    socket.on("data", (chunk) => {
      let requests: WireRequest[];
      try {
        requests = reader.push(chunk);
      } catch {
        socket.destroy();
        return;
      }
      for (const request of requests) void this.#handle(socket, request, connectionId);
    });
  }

  async #handle(socket: Socket, request: WireRequest, connectionId: number): Promise<void> {
    const name = Object.keys(request.command)[0] ?? "";
    const command = request.command;
    if (request.opCode === OP_QUERY) this.received.opQuery++;
    else this.received.opMsg++;
    if (!MONITORING.has(name)) {
      this.log.push({ name, db: request.db, command, connectionId });
      if (this.log.length > MAX_LOG) this.log.shift();
    }
    const appName = (command.client as Document | undefined)?.application?.name;
    if (MONITORING.has(name) && typeof appName === "string") {
      this.#appNames.set(connectionId, appName);
    }
    const { topologyVersion, maxAwaitTimeMS } = command;
    if (MONITORING.has(name) && topologyVersion !== undefined && maxAwaitTimeMS !== undefined) {
      return this.#streamHello(socket, request, connectionId, toNumber(maxAwaitTimeMS) ?? 10_000);
    }
    let action = this.#takeFault(name, connectionId)?.action;
    if (action?.kind === "fail-command") {
      const { data } = action;
      if (data.blockConnection === true) {
        await new Promise((r) => setTimeout(r, toNumber(data.blockTimeMS) ?? 0));
      }
      action = failCommandAction(data);
    }
    if (action?.kind === "hold") await action.until;
    if (action?.kind === "drop-before") return void socket.destroy();
    let reply: Document;
    if (action?.kind === "error") {
      const { code, codeName, errmsg, errorLabels } = action;
      reply = { ok: 0, code, codeName, errmsg: errmsg ?? `injected ${codeName}` };
      if (errorLabels) reply.errorLabels = errorLabels;
      if (STATE_CHANGE_CODES.has(code)) {
        // A member that says "not primary" has stepped down, and says so with a newer
        // topologyVersion; it is re-elected after electionMs, and its hello announces it.
        this.engine.stepDown(0, false);
        reply.topologyVersion = { ...this.engine.topologyVersion };
      }
    } else {
      reply = await this.#run(request.db, command, connectionId);
    }
    if (action?.kind === "drop-after") return void socket.destroy();
    if (action?.kind === "delay") await new Promise((r) => setTimeout(r, action.ms));
    if (action?.kind === "write-concern-error" && reply.ok === 1) {
      reply.writeConcernError = {
        code: action.code ?? 64,
        codeName: action.codeName ?? "WriteConcernFailed",
        errmsg: action.errmsg ?? "injected: waiting for replication timed out",
      };
      if (action.errorLabels) reply.errorLabels = action.errorLabels;
    }
    if (this.options.replicaSet && reply.errorLabels === undefined) {
      const labels = errorLabels(name, command, reply);
      if (labels.length) reply.errorLabels = labels;
    }
    if (request.moreToCome || socket.destroyed) return;
    socket.write(encodeReply(request, reply));
  }

  /**
   * An awaitable hello, as mongod 4.4+ answers it: at the next topology change or after
   * maxAwaitTimeMS, and with exhaustAllowed again and again (each answer flagged
   * moreToCome) until the connection closes. A driver's monitor then always has a read in
   * flight, and learns at once when its connection is cut.
   */
  async #streamHello(socket: Socket, request: WireRequest, id: number, waitMs: number) {
    // A client that knows an older topology is answered at once.
    const known = request.command.topologyVersion as { processId?: unknown; counter?: unknown };
    const current = this.engine.topologyVersion;
    let wait =
      sameBson(known?.processId, current.processId) && sameBson(known?.counter, current.counter);
    do {
      const open =
        !wait ||
        (await new Promise<boolean>((resolve) => {
          const done = (value: boolean) => {
            clearTimeout(timer);
            cancel();
            socket.off("close", closed);
            resolve(value);
          };
          const closed = () => done(false);
          const timer = setTimeout(() => done(true), waitMs);
          const cancel = this.engine.onTopologyChange(() => done(true));
          socket.once("close", closed);
          if (socket.destroyed) done(false);
        }));
      if (!open || socket.destroyed) return;
      socket.write(encodeReply(request, this.engine.hello(id, false), request.exhaustAllowed));
      wait = true;
    } while (request.exhaustAllowed);
  }

  async #run(db: string, command: Document, connectionId: number): Promise<Document> {
    let reply: Document;
    try {
      const name = Object.keys(command)[0] ?? "";
      if (name === "configureFailPoint") reply = this.#configureFailPoint(db, command);
      else if (name === "replSetStepDown") reply = await this.#replSetStepDown(db, command);
      else return await this.engine.run(db, command, connectionId);
    } catch (err) {
      if (err instanceof CommandError) {
        reply = { ok: 0, code: err.code, codeName: err.codeName, errmsg: err.message };
      } else {
        const message = err instanceof Error ? err.message : String(err);
        reply = { ok: 0, code: 1, codeName: "InternalError", errmsg: `test double: ${message}` };
      }
    }
    // mongod puts operationTime on every reply of a replica-set member, errors too.
    if (this.options.replicaSet) reply.operationTime = this.engine.changes.clusterTime;
    return reply;
  }

  /**
   * mongod's test command for the failCommand fail point (the "failCommand fail point" page
   * of mongod's wiki; SERVER-34551, SERVER-41070, SERVER-43941): on the admin database,
   * `mode` "alwaysOn", "off" or { times: n }, `data.failCommands` the command names, and
   * what to do: `blockConnection` with `blockTimeMS`, then `closeConnection` (without running
   * the command), `errorCode` (without running it; `errorLabels` replace the labels mongod
   * would add) or `writeConcernError` (after running it). `appName` limits it to the
   * connections of that application. Replies `{ count }`, the times it was entered so far.
   */
  #configureFailPoint(db: string, command: Document): Document {
    if (db !== "admin") {
      throw new CommandError(
        13,
        "Unauthorized",
        "configureFailPoint may only be run against the admin database.",
      );
    }
    if (command.configureFailPoint !== "failCommand") {
      throw new CommandError(
        2,
        "BadValue",
        `Cannot find failpoint: ${String(command.configureFailPoint)}`,
      );
    }
    const count = this.#failPointEntered;
    for (let i = this.#faults.length - 1; i >= 0; i--) {
      if (this.#faults[i]?.action.kind === "fail-command") this.#faults.splice(i, 1);
    }
    const mode = command.mode as unknown;
    if (mode === "off") return { count, ok: 1 };
    const times =
      mode === "alwaysOn" ? Number.POSITIVE_INFINITY : toNumber((mode as Document)?.times);
    if (times === undefined || !(times > 0)) {
      throw new CommandError(2, "BadValue", "mode must be 'off', 'alwaysOn' or { times: n }");
    }
    const data = (command.data as Document | undefined) ?? {};
    const names = Array.isArray(data.failCommands) ? (data.failCommands as string[]) : [];
    if (names.length === 0) throw new CommandError(2, "BadValue", "failCommands is required");
    for (const name of names) {
      this.#faults.push({
        command: name,
        left: times,
        appName: typeof data.appName === "string" ? data.appName : undefined,
        action: { kind: "fail-command", data },
      });
    }
    return { count, ok: 1 };
  }

  /**
   * replSetStepDown (MongoDB manual): only on the admin database of a replica set's
   * primary. This is a one-member set, so no secondary ever catches up: without `force` it
   * waits secondaryCatchUpPeriodSecs (default 10) and fails with ExceededTimeLimit (262);
   * with `force` it steps down at once. The member may not stand for election for the
   * `replSetStepDown` seconds (60 if not a number), then wins an election after electionMs.
   */
  async #replSetStepDown(db: string, command: Document): Promise<Document> {
    if (db !== "admin") {
      throw new CommandError(
        13,
        "Unauthorized",
        "replSetStepDown may only be run against the admin database.",
      );
    }
    if (!this.options.replicaSet) {
      throw new CommandError(76, "NoReplicationEnabled", "not running with --replSet");
    }
    if (!this.engine.primary) {
      throw new CommandError(10107, "NotWritablePrimary", "not primary so can't step down");
    }
    const secs = toNumber(command.replSetStepDown) ?? 60;
    if (command.force !== true) {
      const catchUp = toNumber(command.secondaryCatchUpPeriodSecs) ?? 10;
      await new Promise((r) => setTimeout(r, catchUp * 1000));
      throw new CommandError(262, "ExceededTimeLimit", "No electable secondaries caught up");
    }
    this.engine.stepDown(secs * 1000, true);
    return { ok: 1 };
  }

  #failPointEntered = 0;

  #takeFault(name: string, connectionId: number): (Fault & { left: number }) | undefined {
    const appName = this.#appNames.get(connectionId);
    const at = this.#faults.findIndex(
      (f) =>
        f.command === name &&
        (f.appName === undefined || f.appName === appName) &&
        !(f.action.kind === "fail-command" && NOT_FAILED.has(name)),
    );
    const fault = this.#faults[at];
    if (!fault) return undefined;
    if (fault.action.kind === "fail-command") this.#failPointEntered++;
    if (--fault.left <= 0) this.#faults.splice(at, 1);
    return fault;
  }
}

/** What one strike of the failCommand fail point does, after any blockConnection. */
function failCommandAction(data: Document): FaultAction | undefined {
  if (data.closeConnection === true) return { kind: "drop-before" };
  const code = toNumber(data.errorCode);
  const labels = Array.isArray(data.errorLabels) ? (data.errorLabels as string[]) : undefined;
  if (code !== undefined) {
    return { kind: "error", code, codeName: `Location${code}`, errorLabels: labels };
  }
  const wce = data.writeConcernError as Document | undefined;
  if (wce) {
    return {
      kind: "write-concern-error",
      code: toNumber(wce.code) ?? 64,
      codeName: typeof wce.codeName === "string" ? wce.codeName : undefined,
      errmsg: typeof wce.errmsg === "string" ? wce.errmsg : undefined,
      errorLabels: labels,
    };
  }
  return undefined;
}

/** The labels mongod adds to a reply (see RETRIABLE_CODES). */
function errorLabels(name: string, command: Document, reply: Document): string[] {
  const code = reply.ok === 1 ? undefined : toNumber(reply.code);
  const wcCode = toNumber((reply.writeConcernError as Document | undefined)?.code);
  const retryableWrite = command.txnNumber !== undefined && command.autocommit === undefined;
  if (
    retryableWrite &&
    ((code !== undefined && RETRIABLE_CODES.has(code)) ||
      (wcCode !== undefined && RETRIABLE_CODES.has(wcCode)))
  ) {
    return ["RetryableWriteError"];
  }
  if ((name === "getMore" || name === "aggregate") && code !== undefined && wcCode === undefined) {
    if (RETRIABLE_CODES.has(code)) return ["ResumableChangeStreamError"];
  }
  return [];
}
