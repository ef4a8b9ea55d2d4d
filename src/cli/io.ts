import type { Command } from "commander";
import { quote, redact, urlSecrets } from "../errors.js";

/** Exit codes, as documented in the README and in `--help`. */
export const EXIT = { ok: 0, failure: 1, usage: 2, outOfSync: 3, lease: 4 } as const;

/**
 * Ends a command with `code`, and with `explanation` as its error (one line, or a JSON
 * object with --json), if given: without one, nothing is printed (e.g. `lock` passing on
 * its command's code).
 */
export class ExitWith extends Error {
  override name = "ExitWith";
  readonly code: number;
  readonly explanation: string | undefined;
  constructor(code: number, explanation?: string) {
    super(explanation ?? `exit ${code}`);
    this.code = code;
    this.explanation = explanation;
  }
}

/** `lease wait --timeout` ran out with the lease still held (exit 4). */
export class WaitTimeoutError extends ExitWith {
  override name = "WaitTimeoutError";
  constructor(explanation: string) {
    super(EXIT.lease, explanation);
  }
}

/** `lease unpin` by an entity that holds no pin on the lease (exit 4). */
export class NotPinnedError extends ExitWith {
  override name = "NotPinnedError";
  constructor(explanation: string) {
    super(EXIT.lease, explanation);
  }
}

/** Where a command writes its lines and reads its environment. */
export interface Io {
  out: (line: string) => void;
  err: (line: string) => void;
  env: NodeJS.ProcessEnv;
  /** Whether stdout is a terminal: `run` then draws a status line and readable logs. */
  tty?: boolean;
  /** Whether stderr is a terminal: `lock` then says when it waits and acquires. */
  errTty?: boolean;
  /** Writes to stdout without a newline (a status line redrawn in place). */
  write?: (text: string) => void;
  /** The terminal's width in columns, when stdout is one. */
  columns?: () => number | undefined;
  /** Aborted once stdout is gone (the reader of a pipe left, as `| head -1` does). */
  closed?: AbortSignal;
}

/**
 * The process's own stdout and stderr. A write error on stdout (EPIPE: the reader left)
 * aborts `closed` instead of crashing, and later output is dropped; long-running commands
 * stop on it.
 */
export function processIo(): Io {
  const closed = new AbortController();
  process.stdout.on("error", (err) => closed.abort(err));
  process.stderr.on("error", () => {}); // nowhere left to report it
  const write = (text: string) => {
    if (!closed.signal.aborted) process.stdout.write(text);
  };
  return {
    out: (line) => write(`${line}\n`),
    err: (line) => process.stderr.write(`${line}\n`),
    env: process.env,
    tty: process.stdout.isTTY === true,
    errTty: process.stderr.isTTY === true,
    write,
    columns: () => process.stdout.columns,
    closed: closed.signal,
  };
}

/** The store URL from --store, else GLOBALCLOCK_STORE; undefined leaves the default to the caller. */
export function storeUrl(program: Command, io: Io): string | undefined {
  const opts = program.optsWithGlobals<{ store?: string }>();
  return opts.store ?? (io.env.GLOBALCLOCK_STORE || undefined);
}

/**
 * The passwords of every store URL this invocation may use (GLOBALCLOCK_STORE and any
 * argument that reads as a URL, `--store=URL` included), to mask in every line printed;
 * each also as a message quotes it (`quote` escapes a `"` or `\`), and as JSON encodes it.
 */
export function secretsOf(argv: readonly string[], env: NodeJS.ProcessEnv): string[] {
  const texts = [env.GLOBALCLOCK_STORE ?? "", ...argv.map((a) => a.replace(/^--[a-z-]+=/, ""))];
  return [
    ...new Set(
      texts
        .flatMap(urlSecrets)
        .flatMap((s) => [s, quote(s, Infinity).slice(1, -1), JSON.stringify(s).slice(1, -1)]),
    ),
  ];
}

/** `io` with every line it writes about an error masked (see `redact`). */
export function maskedIo(io: Io, secrets: readonly string[]): Io {
  return { ...io, err: (line) => io.err(redact(line, secrets)) };
}
