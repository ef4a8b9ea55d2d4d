/**
 * MongoDB wire-protocol framing for the test double: reads OP_MSG and the legacy OP_QUERY
 * (which drivers still use for the very first `isMaster` of a connection, before they
 * know the server's wire version) and writes OP_MSG and OP_REPLY answers.
 *
 * Every message starts with a 16-byte header: messageLength, requestID, responseTo, opCode
 * (little-endian int32s). Documents are decoded with promoteValues off, so the double
 * keeps each value's BSON type (Int32, Long, Double) exactly as the client sent it.
 */
import { BSON, type Document } from "bson";

export const OP_REPLY = 1;
export const OP_QUERY = 2004;
export const OP_COMPRESSED = 2012;
export const OP_MSG = 2013;

const CHECKSUM_PRESENT = 1;
const MORE_TO_COME = 2;
const EXHAUST_ALLOWED = 1 << 16;
const MAX_MESSAGE = 48_000_000;

export const DECODE = { promoteValues: false, promoteBuffers: false } as const;

/** One command as a client sent it. */
export interface WireRequest {
  requestId: number;
  opCode: number;
  /** The database the command runs on (`$db`, or the OP_QUERY namespace). */
  db: string;
  /** The command document, with any OP_MSG document sequences merged in as arrays. */
  command: Document;
  /** OP_MSG moreToCome: the client wants no answer (unacknowledged write). */
  moreToCome: boolean;
  /** OP_MSG exhaustAllowed: the client takes a stream of answers (awaitable hello). */
  exhaustAllowed: boolean;
}

export class ProtocolError extends Error {
  override name = "ProtocolError";
}

/** Accumulates bytes from a socket and cuts them into whole messages. */
export class MessageReader {
  #buffer: Buffer = Buffer.alloc(0);

  push(chunk: Buffer): WireRequest[] {
    this.#buffer = this.#buffer.length ? Buffer.concat([this.#buffer, chunk]) : chunk;
    const out: WireRequest[] = [];
    while (this.#buffer.length >= 4) {
      const length = this.#buffer.readInt32LE(0);
      if (length < 16 || length > MAX_MESSAGE) throw new ProtocolError(`bad length ${length}`);
      if (this.#buffer.length < length) break;
      out.push(parseMessage(this.#buffer.subarray(0, length)));
      this.#buffer = this.#buffer.subarray(length);
    }
    return out;
  }
}

function parseMessage(message: Buffer): WireRequest {
  const requestId = message.readInt32LE(4);
  const opCode = message.readInt32LE(12);
  if (opCode === OP_MSG) return parseMsg(message, requestId);
  if (opCode === OP_QUERY) return parseQuery(message, requestId);
  throw new ProtocolError(`unsupported opCode ${opCode} (compression is never offered)`);
}

function parseMsg(message: Buffer, requestId: number): WireRequest {
  const flags = message.readUInt32LE(16);
  const end = flags & CHECKSUM_PRESENT ? message.length - 4 : message.length;
  let body: Document | undefined;
  const sequences: Array<[string, Document[]]> = [];
  let at = 20;
  while (at < end) {
    const kind = message.readUInt8(at++);
    if (kind === 0) {
      const size = message.readInt32LE(at);
      body = BSON.deserialize(message.subarray(at, at + size), DECODE);
      at += size;
    } else if (kind === 1) {
      const size = message.readInt32LE(at);
      const stop = at + size;
      const nameEnd = message.indexOf(0, at + 4);
      const name = message.toString("utf8", at + 4, nameEnd);
      const docs: Document[] = [];
      for (let p = nameEnd + 1; p < stop; ) {
        const docSize = message.readInt32LE(p);
        docs.push(BSON.deserialize(message.subarray(p, p + docSize), DECODE));
        p += docSize;
      }
      sequences.push([name, docs]);
      at = stop;
    } else {
      throw new ProtocolError(`unknown OP_MSG section kind ${kind}`);
    }
  }
  if (!body) throw new ProtocolError("OP_MSG without a body section");
  for (const [name, docs] of sequences) body[name] = docs;
  const db = typeof body.$db === "string" ? body.$db : "admin";
  return {
    requestId,
    opCode: OP_MSG,
    db,
    command: body,
    moreToCome: !!(flags & MORE_TO_COME),
    exhaustAllowed: !!(flags & EXHAUST_ALLOWED),
  };
}

function parseQuery(message: Buffer, requestId: number): WireRequest {
  const nameEnd = message.indexOf(0, 20);
  const namespace = message.toString("utf8", 20, nameEnd);
  const at = nameEnd + 1 + 8; // numberToSkip, numberToReturn
  const size = message.readInt32LE(at);
  let query = BSON.deserialize(message.subarray(at, at + size), DECODE);
  if (query.$query && typeof query.$query === "object") query = query.$query as Document;
  if (!namespace.endsWith(".$cmd")) {
    throw new ProtocolError(`legacy OP_QUERY on ${namespace}: only commands are supported`);
  }
  return {
    requestId,
    opCode: OP_QUERY,
    db: namespace.slice(0, -".$cmd".length),
    command: query,
    moreToCome: false,
    exhaustAllowed: false,
  };
}

function header(length: number, responseTo: number, opCode: number): Buffer {
  const head = Buffer.alloc(16);
  head.writeInt32LE(length, 0);
  head.writeInt32LE(nextResponseId++, 4);
  head.writeInt32LE(responseTo, 8);
  head.writeInt32LE(opCode, 12);
  return head;
}
let nextResponseId = 1;

/**
 * The answer to `request`, framed the way the request came (OP_MSG or OP_REPLY).
 * `moreToCome` marks one answer of a stream: the client reads on without asking again.
 */
export function encodeReply(request: WireRequest, reply: Document, moreToCome = false): Buffer {
  const doc = BSON.serialize(reply);
  if (request.opCode === OP_MSG) {
    const flags = Buffer.alloc(5); // flagBits, then section kind 0
    flags.writeUInt32LE(moreToCome ? MORE_TO_COME : 0, 0);
    return Buffer.concat([header(16 + 5 + doc.length, request.requestId, OP_MSG), flags, doc]);
  }
  const fields = Buffer.alloc(20); // responseFlags, cursorID (8), startingFrom, numberReturned
  fields.writeInt32LE(1, 16);
  return Buffer.concat([header(16 + 20 + doc.length, request.requestId, OP_REPLY), fields, doc]);
}
