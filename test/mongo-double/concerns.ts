/**
 * Read and write concerns as mongod checks them, for the commands the double runs. Every
 * rule here is mongod's, with its codes and messages:
 * - ReadConcernArgs::initialize (src/mongo/db/repl/read_concern_args.cpp): the level must be
 *   local, majority, linearizable, available or snapshot (FailedToParse, 9); afterClusterTime
 *   only with majority, local or snapshot ("linearizable reads are inherently causally
 *   consistent"; InvalidOptions, 72);
 * - waitForReadConcern (src/mongo/db/read_concern_mongod.cpp) and
 *   ReplicationCoordinatorImpl::waitUntilOpTimeForRead: a standalone refuses linearizable and
 *   afterClusterTime (NotAReplicaSet, 76, "node needs to be a replica set member to use read
 *   concern");
 * - validateWriteConcern (src/mongo/db/write_concern.cpp): w is a number from 0 to 50 or a
 *   string (FailedToParse, 9); a standalone refuses w > 1 and any mode but "majority"
 *   (BadValue, 2). On a replica set a write concern it cannot satisfy is reported after the
 *   write, as a writeConcernError: too few members (UnsatisfiableWriteConcern, 100), or an
 *   unknown tag mode (UnknownReplWriteConcern, 79).
 */
import type { Document } from "bson";
import { CommandError, toNumber, typeName } from "./values.js";

const LEVELS = ["local", "majority", "linearizable", "available", "snapshot"];
const WRITES = new Set([
  "insert",
  "update",
  "delete",
  "findAndModify",
  "findandmodify",
  "drop",
  "dropDatabase",
  "renameCollection",
]);

/** Whether a command writes (and so takes a write concern and needs the primary). */
export const isWrite = (name: string): boolean => WRITES.has(name);

export function checkReadConcern(readConcern: unknown, where: { replicaSet: boolean }): void {
  if (readConcern === undefined) return;
  const rc = readConcern as Document;
  const level = rc.level === undefined ? "local" : rc.level;
  if (typeof level !== "string" || !LEVELS.includes(level)) {
    throw new CommandError(
      9,
      "FailedToParse",
      "readConcern.level must be either 'local', 'majority', 'linearizable', 'available', or 'snapshot'",
    );
  }
  const after = rc.afterClusterTime !== undefined;
  if (after && !["majority", "local", "snapshot"].includes(level)) {
    throw new CommandError(
      72,
      "InvalidOptions",
      "afterClusterTime field can be set only if level is equal to majority, local, or snapshot",
    );
  }
  if (!where.replicaSet && (level === "linearizable" || after)) {
    throw new CommandError(
      76,
      "NotAReplicaSet",
      "node needs to be a replica set member to use read concern",
    );
  }
}

/**
 * Throws for a write concern mongod refuses before writing; returns the writeConcernError
 * for one it can only report afterwards (this double is a one-member replica set).
 */
export function checkWriteConcern(
  writeConcern: unknown,
  where: { replicaSet: boolean },
): Document | undefined {
  const w = (writeConcern as Document | undefined)?.w;
  if (w === undefined) return undefined;
  if (typeof w === "string") {
    if (w === "majority") return undefined;
    if (!where.replicaSet) {
      throw new CommandError(
        2,
        "BadValue",
        `cannot use non-majority 'w' mode ${w} when a host is not a member of a replica set`,
      );
    }
    return {
      code: 79,
      codeName: "UnknownReplWriteConcern",
      errmsg: `No write concern mode named '${w}' found in replica set configuration`,
    };
  }
  const n = toNumber(w);
  if (n === undefined || !Number.isInteger(n) || n < 0 || n > 50 || typeName(w) === "bool") {
    throw new CommandError(
      9,
      "FailedToParse",
      `w has to be a non-negative number and not greater than 50; found: ${String(w)}`,
    );
  }
  if (n <= 1) return undefined;
  if (!where.replicaSet) {
    throw new CommandError(2, "BadValue", "cannot use 'w' > 1 when a host is not replicated");
  }
  return {
    code: 100,
    codeName: "UnsatisfiableWriteConcern",
    errmsg: "Not enough data-bearing nodes",
  };
}
