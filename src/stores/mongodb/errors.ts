/** Reading the MongoDB driver's errors. */
import { codeOf, describe, redact } from "../../errors.js";

// Failures no retry can mend: unauthorized (13), authentication failed (18), Atlas's
// authentication error (8000).
const FATAL_CODES = new Set([13, 18, 8000]);
// Driver errors about the caller's input or configuration, never the network.
const FATAL_NAMES = new Set(["MongoParseError", "MongoInvalidArgumentError", "MongoAPIError"]);

/** The server's numeric error code, if any. */
export function mongoCode(err: unknown): number | undefined {
  const code = codeOf(err);
  return typeof code === "number" ? code : undefined;
}

/** Whether no retry can mend `err` (wrong credentials, missing privileges, a bad option). */
export function isFatalMongoError(err: unknown): boolean {
  const cause = (err as { cause?: unknown } | null)?.cause;
  if ([mongoCode(err), mongoCode(cause)].some((c) => c !== undefined && FATAL_CODES.has(c)))
    return true;
  return err instanceof Error && FATAL_NAMES.has(err.name);
}

/** A driver error as one line that says what to do, with any password masked. */
export function explainMongoError(err: unknown): { message: string; retryable: boolean } {
  return { message: describeMongoError(err), retryable: !isFatalMongoError(err) };
}

function describeMongoError(err: unknown): string {
  const name = err instanceof Error ? err.name : "";
  const text = redact(describe(err));
  if (name === "MongoServerSelectionError") {
    return `no MongoDB server answered in time (${text}); check the URL, the network and that mongod runs, or raise the timeout option`;
  }
  if (/ECONNREFUSED|ENOTFOUND/.test(text)) {
    return `cannot reach MongoDB (${text}): is mongod running there, and is the URL right?`;
  }
  if (name === "MongoNetworkTimeoutError") {
    return `no answer in time (${text}); the outcome is unknown`;
  }
  const code = mongoCode(err);
  return code === undefined ? text : `${text} (code ${code})`;
}
