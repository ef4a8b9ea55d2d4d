/** Turning pg's errors into messages that say what to do, and never show a password. */
import { codeOf, safeMessage } from "../../errors.js";

// SQLSTATEs that no reconnection mends: wrong credentials, no such database or role,
// address refused by pg_hba.conf, a missing privilege.
const FATAL = new Set(["28P01", "28000", "3D000", "42501"]);

const HINTS: Record<string, string> = {
  "28P01": "check the user and password (in the URL, PGUSER/PGPASSWORD or ~/.pgpass)",
  "28000": "the server refused this user or address (pg_hba.conf); check the user and TLS settings",
  "3D000": "create the database, or name another one in the URL (or PGDATABASE)",
  "42501": "the user lacks a privilege on the clock table or its schema",
  "57P01": "the server is shutting down or restarting; the next call reconnects",
  "57P03": "the server is starting up; the next call reconnects",
};

/** The SQLSTATE (or errno code) of a pg error. */
export function pgCode(err: unknown): string | undefined {
  const code = codeOf(err);
  return typeof code === "string" ? code : undefined;
}

/** Whether no retry can mend `err` (it needs an operator: credentials, a database, a grant). */
export function isFatalPgError(err: unknown): boolean {
  const code = pgCode(err);
  return code !== undefined && FATAL.has(code);
}

/** One line for a pg error, with a hint where one helps, and whether a retry may help. */
export function explainPgError(
  err: unknown,
  timeoutMs: number,
  secrets: readonly string[],
): { message: string; retryable: boolean } {
  return { message: describePgError(err, timeoutMs, secrets), retryable: !isFatalPgError(err) };
}

function describePgError(err: unknown, timeoutMs: number, secrets: readonly string[]): string {
  const text = safeMessage(err, secrets);
  const code = pgCode(err);
  const hint = code ? HINTS[code] : undefined;
  if (hint) return `${text} (${code}): ${hint}`;
  if (code === "57014" || /timeout|timed out/i.test(text))
    return `no answer within ${timeoutMs} ms (${text})`;
  if (code === "ECONNREFUSED" || code === "ENOTFOUND" || code === "EHOSTUNREACH")
    return `cannot connect (${text}): is PostgreSQL running there?`;
  if (/Connection terminated/i.test(text))
    return `the connection was lost (${text}); the next call reconnects`;
  return code && !text.includes(code) ? `${text} (${code})` : text;
}

/** The password a connection string or the environment gives, to mask in messages. */
export function pgSecrets(connectionString: string | undefined): string[] {
  const secrets: string[] = [];
  if (process.env.PGPASSWORD) secrets.push(process.env.PGPASSWORD);
  if (connectionString) {
    try {
      const password = new URL(connectionString).password;
      if (password) secrets.push(decodeURIComponent(password));
    } catch {
      // not a URL (e.g. a socket path): nothing to mask
    }
  }
  return secrets;
}
