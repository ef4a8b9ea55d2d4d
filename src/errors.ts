import { formatDuration, formatGlobalTime } from "./time.js";

/**
 * The error hierarchy. Every error globalclock throws is a GlobalClockError;
 * `cause` is kept wherever another error lies underneath.
 */

export class GlobalClockError extends Error {
  override name = "GlobalClockError";
}

/** A compare-and-swap lost: another updater advanced the clock first. The updater stays usable. */
export class OutOfSyncUpdateError extends GlobalClockError {
  override name = "OutOfSyncUpdateError";
  /** The view the failed advance was based on (ns since the global epoch). */
  readonly expected: bigint;
  /** The stored time read after the failed swap; the updater's new view. */
  readonly actual: bigint;
  constructor(expected: bigint, actual: bigint) {
    super(
      `clock was updated concurrently: expected ${expected}ns, found ${actual}ns; the updater now holds the new time and may retry`,
    );
    this.expected = expected;
    this.actual = actual;
  }
}

/**
 * An updater hit a failure whose outcome is unknown (network, timeout, server error,
 * corrupt record). Re-adding the time could make the clock run fast, so the updater
 * refuses every later call; build a new one.
 */
export class InvalidUpdaterError extends GlobalClockError {
  override name = "InvalidUpdaterError";
  constructor(cause: unknown) {
    super(`updater is no longer valid: ${describe(cause)}; create a new updater`, { cause });
  }
}

/** A second call was made on an Updater while one was still running. */
export class ConcurrentUseError extends GlobalClockError {
  override name = "ConcurrentUseError";
  constructor(what: string) {
    super(
      `${what}: another call on this updater is still running; an Updater is not for concurrent use`,
    );
  }
}

/** The reader, updater or store was used after close(). */
export class ClosedError extends GlobalClockError {
  override name = "ClosedError";
  constructor(what: string) {
    super(`${what} is closed`);
  }
}

/**
 * An advance refused because the cluster's maxStep changed (or was deleted and made again)
 * since the updater read it: nothing was written. The updater has read the clock and the
 * new maxStep again; the next advance may be built on them.
 */
export class MaxStepChangedError extends OutOfSyncUpdateError {
  override name = "MaxStepChangedError";
  /** The maxStep the refused advance was made under. */
  readonly previous: bigint;
  /** The maxStep stored now, which the updater holds. */
  readonly current: bigint;
  constructor(time: bigint, previous: bigint, current: bigint) {
    super(time, time);
    this.message = `the cluster's maxStep changed from ${previous} ns to ${current} ns (or was made again) before this advance, so nothing was written; the updater now holds the new maxStep and may retry`;
    this.previous = previous;
    this.current = current;
  }
}

/** Bad configuration or input; `field` names what is missing or wrong. */
export class ConfigError extends GlobalClockError {
  override name = "ConfigError";
  readonly field: string;
  constructor(field: string, message: string) {
    super(message);
    this.field = field;
  }
}

/** A duration that is negative, not a number, infinite, beyond int64, or unparseable. */
export class InvalidDurationError extends ConfigError {
  override name = "InvalidDurationError";
}

export interface StoreErrorOptions {
  cause?: unknown;
  /** Whether trying again (later, or on a new connection) may succeed. Default true. */
  retryable?: boolean;
}

/**
 * A store operation failed. `store` is the store kind, `operation` what was being done.
 * `retryable` says whether trying again may help: a lost connection or a timeout may mend
 * itself; wrong credentials, a missing database or a corrupt record will not (as the
 * MongoDB driver labels its errors). The outcome of a failed write is unknown either way.
 */
export class StoreError extends GlobalClockError {
  override name = "StoreError";
  readonly store: string;
  readonly operation: string;
  readonly retryable: boolean;
  constructor(store: string, operation: string, message: string, options: StoreErrorOptions = {}) {
    super(
      `${store} store: ${operation} failed: ${message}`,
      "cause" in options ? { cause: options.cause } : undefined,
    );
    this.store = store;
    this.operation = operation;
    this.retryable = options.retryable ?? true;
  }
}

/**
 * A stored record does not decode: the clock's time is not a non-negative int64, or a
 * lease's fields are not what a lease holds. It is never overwritten.
 */
export class CorruptRecordError extends StoreError {
  override name = "CorruptRecordError";
  constructor(store: string, operation: string, detail: string, record = "clock record") {
    super(store, operation, `corrupt ${record}: ${detail}; it was left untouched`, {
      retryable: false,
    });
  }
}

/** The `code` a driver put on an error: a string (SQLSTATE, errno) or a number (MongoDB). */
export function codeOf(err: unknown): string | number | undefined {
  const code = (err as { code?: unknown } | null | undefined)?.code;
  return typeof code === "string" || typeof code === "number" ? code : undefined;
}

/**
 * The clock record vanished after a time was seen in it: deleted, its table dropped, or a
 * backup without it restored. It is never re-created at the epoch by anyone who has seen a
 * time, since that would move every expiry judged against global time back to 1970.
 */
export class ClockRecordMissingError extends StoreError {
  override name = "ClockRecordMissingError";
  /** The greatest time this process had seen, if it knows it. */
  readonly lastSeen: bigint | undefined;
  constructor(store: string, operation: string, lastSeen?: bigint) {
    super(
      store,
      operation,
      `the clock record is gone${lastSeen === undefined ? "" : ` (the last time seen was ${lastSeen} ns)`}; it is not re-created at the epoch, which would restart global time from 1970 and, once the record came back, end leases early: restore the record from a backup, or, to start a new clock on purpose, empty the store (the clock, its settings and its leases) after stopping every holder`,
      { retryable: false },
    );
    this.lastSeen = lastSeen;
  }
}

/** What a lease error says about the lease as it was read. */
export interface LeaseState {
  readonly name: string;
  readonly holder: string;
  readonly token: bigint;
  readonly expiry: bigint;
  readonly pinned: boolean;
}

/**
 * A claim found the lease held by someone else, not expired at the global time read. The
 * caller may infer it is not theirs; wait (Leases.waitUntilExpired) or give up.
 */
export class LeaseHeldError extends GlobalClockError {
  override name = "LeaseHeldError";
  readonly lease: LeaseState;
  /** The global time the claim judged expiry against. */
  readonly time: bigint;
  constructor(lease: LeaseState, time: bigint) {
    super(
      `lease ${quote(lease.name)} is held by ${quote(lease.holder)} (token ${lease.token}) ${lease.pinned ? "and pinned" : `until global time ${formatGlobalTime(lease.expiry)}, ${formatDuration(lease.expiry - time)} of global time from now`}`,
    );
    this.lease = lease;
    this.time = time;
  }
}

/**
 * An extend or revoke found the lease no longer this holder's (another took it, or it was
 * revoked), or a lease's deadline passed before it was extended. The caller must stop
 * acting on it: it is, or may soon be, someone else's.
 */
export class LeaseLostError extends GlobalClockError {
  override name = "LeaseLostError";
  /** The lease as stored now, if it was read. */
  readonly lease: LeaseState | undefined;
  constructor(name: string, why: string, lease?: LeaseState) {
    super(`lease ${quote(name)} was lost: ${why}`);
    this.lease = lease;
  }
}

/** Whether retrying `err` cannot help: a configuration error, or a store error marked so. */
export function isFatal(err: unknown): boolean {
  const root = err instanceof InvalidUpdaterError ? err.cause : err;
  return root instanceof ConfigError || (root instanceof StoreError && !root.retryable);
}

/** One line describing any thrown value, without a stack. */
export function describe(err: unknown): string {
  if (err instanceof Error) return err.message || err.name;
  return String(err);
}

/**
 * Removes passwords from a message: first every known secret (the passwords parsed from the
 * store URL in use, see `urlSecrets`, so that a password with spaces is masked whole), then,
 * as a net for URLs nobody parsed, anything that looks like a URL's password or a
 * `password=` parameter. A password may hold characters a URL should have encoded (`@`,
 * `/`, `?`, `#`), so the net runs to the last `@` before whitespace.
 */
export function redact(text: string, secrets: readonly string[] = []): string {
  let out = text;
  for (const secret of [...secrets].sort((a, b) => b.length - a.length)) {
    if (secret.length >= 3) out = out.split(secret).join("***");
  }
  return (
    out
      // The placeholder of a usage hint ("use postgres://user:password@host…") is left as it
      // is; a real password "password" is among `secrets` and was masked above.
      .replace(/(\b[a-z][a-z0-9+.-]*:\/\/[^:/?#@\s]*:)(?!password@)\S*@/gi, "$1***@")
      .replace(/(password=)[^&#\s]*/gi, "$1***")
  );
}

/**
 * The passwords a URL carries, raw and decoded: its userinfo's (to the last `@`, as
 * `redact` reads it) and every `…password=` query parameter's.
 */
export function urlSecrets(url: string): string[] {
  const secrets = new Set<string>();
  const add = (value: string) => {
    if (!value) return;
    secrets.add(value);
    try {
      secrets.add(decodeURIComponent(value));
    } catch {
      // not valid percent-encoding: the raw form is what would be shown
    }
  };
  const scheme = /^[a-z][a-z0-9+.-]*:\/\//i.exec(url);
  if (scheme) {
    const rest = url.slice(scheme[0].length);
    const at = rest.lastIndexOf("@");
    const colon = rest.indexOf(":");
    if (at > 0 && colon >= 0 && colon < at) add(rest.slice(colon + 1, at));
  }
  for (const m of url.matchAll(/[?&;][a-z_]*password=([^&#]*)/gi)) add(m[1] ?? "");
  return [...secrets];
}

/**
 * A store URL (or any text that should be one) made safe to print, read as one URL: its
 * userinfo runs to the last `@`, and a `…password=` parameter to the next `&`, spaces and
 * all.
 */
export function safeUrl(url: string): string {
  let out = url;
  const scheme = /^[a-z][a-z0-9+.-]*:\/\//i.exec(out);
  if (scheme) {
    const rest = out.slice(scheme[0].length);
    const at = rest.lastIndexOf("@");
    const colon = rest.indexOf(":");
    if (at > 0 && colon >= 0 && colon < at)
      out = `${scheme[0]}${rest.slice(0, colon)}:***@${rest.slice(at + 1)}`;
  }
  out = out.replace(/([?&;][a-z_]*password=)[^&#]*/gi, "$1***");
  return redact(out, urlSecrets(url));
}

/**
 * Input quoted for a message: at most `max` characters, with control and invisible
 * characters escaped, so that a blob, a terminal escape or a huge value reaches nobody's
 * terminal as it is.
 */
export function quote(value: string, max = 100): string {
  const chars = [...value];
  const cut = chars.length > max ? chars.slice(0, max).join("") : value;
  const escaped = cut.replace(/[\p{Cc}\p{Cf}\p{Zl}\p{Zp}"\\]/gu, (c) => {
    if (c === '"' || c === "\\") return `\\${c}`;
    const code = c.codePointAt(0) ?? 0;
    return code <= 0xff ? `\\x${code.toString(16).padStart(2, "0")}` : `\\u{${code.toString(16)}}`;
  });
  return chars.length > max
    ? `"${escaped}"… (${chars.length - max} more characters)`
    : `"${escaped}"`;
}

/** One line for an error from a driver, with every password masked (see `redact`). */
export function safeMessage(err: unknown, secrets: readonly string[] = []): string {
  return redact(describe(err), secrets);
}
