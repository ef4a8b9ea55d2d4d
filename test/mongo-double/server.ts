/**
 * A MongoDB wire-protocol TEST DOUBLE: a small TCP server on 127.0.0.1 that answers the
 * official driver the way mongod would, for the commands a clock record needs. It is
 * not a database (no indexes beyond `_id`, no durability, no auth, no sorting): it
 * exists so that the MongoDB store can be tested end to end, through the real driver,
 * on machines where no mongod can be installed.
 *
 * Faults can be injected per command: drop the connection before or after applying
 * the command, delay the reply, answer with a server error, or apply a write and
 * report a write-concern error. Every command is logged for assertions.
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
  /** Answer `{ ok: 0, code, codeName }` without applying the command. */
  | { kind: "error"; code: number; codeName: string; errmsg?: string; errorLabels?: string[] }
  /** Apply the write, then answer ok with a writeConcernError (not majority-acknowledged). */
  | { kind: "write-concern-error"; code?: number; codeName?: string };

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
}

const MONITORING = new Set(["hello", "isMaster", "ismaster"]);
// "Not primary" and "shutting down": mongod's state changed, which it reports in hello too.
const STATE_CHANGE_CODES = new Set([91, 189, 10107, 11600, 11602, 13435, 13436]);
// Codes after which mongod labels a retryable write (one carrying txnNumber) for retry.
const RETRYABLE_WRITE_CODES = new Set([
  6, 7, 89, 91, 189, 262, 9001, 10107, 11600, 11602, 13435, 13436,
]);
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
  readonly #faults: Array<Fault & { left: number }> = [];
  #connections = 0;

  private constructor(server: Server, port: number, options: MongoDoubleOptions) {
    this.#server = server;
    this.port = port;
    this.options = options;
    this.engine = new Engine({ address: `127.0.0.1:${port}`, replicaSet: options.replicaSet });
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
    const closed = new Promise<void>((resolve) => this.#server.close(() => resolve()));
    this.dropConnections();
    await closed;
  }

  #accept(socket: Socket): void {
    const connectionId = ++this.#connections;
    this.#sockets.add(socket);
    socket.setNoDelay(true);
    const reader = new MessageReader();
    socket.on("close", () => this.#sockets.delete(socket));
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
    if (request.opCode === OP_QUERY) this.received.opQuery++;
    else this.received.opMsg++;
    if (!MONITORING.has(name)) {
      this.log.push({ name, db: request.db, command: request.command, connectionId });
      if (this.log.length > MAX_LOG) this.log.shift();
    }
    const { topologyVersion, maxAwaitTimeMS } = request.command;
    if (MONITORING.has(name) && topologyVersion !== undefined && maxAwaitTimeMS !== undefined) {
      return this.#streamHello(socket, request, connectionId, toNumber(maxAwaitTimeMS) ?? 10_000);
    }
    const fault = this.#takeFault(name);
    const action = fault?.action;
    if (action?.kind === "drop-before") return void socket.destroy();
    let reply: Document;
    if (action?.kind === "error") {
      const { code, codeName, errmsg, errorLabels } = action;
      reply = { ok: 0, code, codeName, errmsg: errmsg ?? `injected ${codeName}` };
      const retryable = request.command.txnNumber !== undefined && RETRYABLE_WRITE_CODES.has(code);
      const labels = errorLabels ?? (retryable ? ["RetryableWriteError"] : undefined);
      if (labels) reply.errorLabels = labels;
      if (STATE_CHANGE_CODES.has(code)) {
        // A member that says "not primary" has stepped down, and says so with a newer
        // topologyVersion. This one is re-elected just after, and its hello announces it.
        this.engine.changeTopology(false);
        reply.topologyVersion = { ...this.engine.topologyVersion };
        setTimeout(() => this.engine.changeTopology(), 20);
      }
    } else {
      reply = await this.#run(request.db, request.command, connectionId);
    }
    if (action?.kind === "drop-after") return void socket.destroy();
    if (action?.kind === "delay") await new Promise((r) => setTimeout(r, action.ms));
    if (action?.kind === "write-concern-error" && reply.ok === 1) {
      reply.writeConcernError = {
        code: action.code ?? 64,
        codeName: action.codeName ?? "WriteConcernFailed",
        errmsg: "injected: waiting for replication timed out",
      };
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
    try {
      return await this.engine.run(db, command, connectionId);
    } catch (err) {
      if (err instanceof CommandError) {
        return { ok: 0, code: err.code, codeName: err.codeName, errmsg: err.message };
      }
      const message = err instanceof Error ? err.message : String(err);
      return { ok: 0, code: 1, codeName: "InternalError", errmsg: `test double: ${message}` };
    }
  }

  #takeFault(name: string): (Fault & { left: number }) | undefined {
    const at = this.#faults.findIndex((f) => f.command === name);
    const fault = this.#faults[at];
    if (!fault) return undefined;
    if (--fault.left <= 0) this.#faults.splice(at, 1);
    return fault;
  }
}
