import { readFileSync } from "node:fs";
import { Command, CommanderError } from "commander";
import {
  ConfigError,
  describe,
  InvalidUpdaterError,
  LeaseHeldError,
  LeaseLostError,
  OutOfSyncUpdateError,
  redact,
} from "../errors.js";
import { registerAdvance, registerNow } from "./clock-commands.js";
import { registerCompletion } from "./completion.js";
import { registerDemo } from "./demo.js";
import { EXIT, ExitWith, type Io, maskedIo, processIo, secretsOf } from "./io.js";
import { registerLease, registerMaxStep } from "./lease-commands.js";
import { registerLock } from "./lock.js";
import { registerStatus, registerWatch } from "./observe-commands.js";
import { registerRun } from "./run.js";
import { commandOf, markRequired, registerHelp } from "./tree.js";

/** Adds one command (or a group) to the program; it writes through `io`. */
export type RegisterCommand = (program: Command, io: Io) => void;

/** Every command, in the order `--help` lists them. */
const COMMANDS: readonly RegisterCommand[] = [
  registerNow,
  registerAdvance,
  registerRun,
  registerWatch,
  registerStatus,
  registerDemo,
  registerLease,
  registerLock,
  registerMaxStep,
  registerCompletion,
  registerHelp,
];

const EXAMPLES = `
Examples:
  globalclock run                                  keep the clock of ./globalclock.db ticking
  globalclock --store postgres://clock@db/app run --listen 127.0.0.1:9464
  GLOBALCLOCK_STORE=etcd://10.0.0.1:2379 globalclock now --json
  globalclock advance 250ms                        one compare-and-swap advance
  globalclock status --window 5s                   is anyone advancing this clock?
  globalclock demo                                 watch a failover, about 15 s
  globalclock lease claim job --holder a --for 30s take a lease; prints its fencing token
  globalclock lock job --ttl 30s --wait -- ./cmd   run a command while holding a lease

The store comes from --store, else GLOBALCLOCK_STORE, else sqlite:./globalclock.db.

Exit codes:
  0  ok
  1  failure: store unreachable, wrong credentials, corrupt or missing record,
     no advance seen by status
  2  usage: a bad option, duration, address or store URL
  3  out of sync: another updater advanced the clock first
  4  lease held by another, or lost (lease, lock); not pinned by that entity (unpin)`;

/** The package's version, from its package.json. */
function version(): string {
  const file = new URL("../../package.json", import.meta.url);
  return (JSON.parse(readFileSync(file, "utf8")) as { version: string }).version;
}

/** Runs the CLI on `argv` (without node and script) and resolves to the exit code. */
export async function main(argv: string[], io: Io = processIo()): Promise<number> {
  // Every line about an error masks the passwords of the store URLs given.
  const secrets = secretsOf(argv, io.env);
  const safe = maskedIo(io, secrets);
  // Set once the commands are known: whether the command run was given --json.
  let json = false;
  const program = new Command("globalclock")
    .description("One cluster-wide virtual clock, kept in a shared store.")
    .option("--store <url>", "store URL (env GLOBALCLOCK_STORE; default sqlite:./globalclock.db)")
    .version(version(), "-v, --version", "print the version")
    .addHelpText("after", EXAMPLES)
    .exitOverride()
    .showHelpAfterError(false)
    .configureOutput({
      writeOut: (s) => safe.out(s.replace(/\n$/, "")),
      writeErr: (s) => safe.err(s.replace(/\n$/, "")),
      // One line, suggestions ("Did you mean …?") included; with --json, main writes it below.
      outputError: (s, write) => {
        if (!json) write(`globalclock: ${oneLine(s)}`);
      },
    });
  for (const register of COMMANDS) register(program, safe);
  markRequired(program);
  json = commandOf(program, argv).json;
  try {
    await program.parseAsync(argv, { from: "user" });
    return EXIT.ok;
  } catch (err) {
    const code = exitCode(err);
    const message = errorMessage(err, json);
    if (message === undefined) return code;
    if (!json) safe.err(`globalclock: ${message}`);
    else {
      const kind = err instanceof Error ? err.name : typeof err;
      // Masked before it is encoded: JSON escapes would hide a password's quotes.
      const error = { message: redact(message, secrets), code, kind };
      safe.err(JSON.stringify({ error }));
    }
    return code;
  }
}

/**
 * Prints the process's warnings (a shared clock database, a deprecation) as one masked line
 * each, `globalclock: warning: …`, in place of Node's two lines with a hint about
 * --trace-warnings. For the command's own process only (bin/globalclock.js).
 */
export function warnOnOneLine(argv: string[], io: Io = processIo()): void {
  const safe = maskedIo(io, secretsOf(argv, io.env));
  process.removeAllListeners("warning");
  process.on("warning", (w) =>
    safe.err(`globalclock: warning: ${w.message.trim().replace(/\s*\n\s*/g, " ")}`),
  );
}

/** A message on one line, without commander's "error: " prefix. */
function oneLine(text: string): string {
  return text
    .replace(/^error: /, "")
    .trim()
    .replace(/\s*\n\s*/g, " ");
}

/** Commander's ends that print no error of their own: help (asked, or shown for want of a subcommand), version. */
const NO_ERROR = new Set(["commander.help", "commander.helpDisplayed", "commander.version"]);

/**
 * What to print about `err`; undefined when nothing is: `lock` passing on its command's
 * code, help and version, or commander's error, which it printed itself unless `json`.
 */
function errorMessage(err: unknown, json: boolean): string | undefined {
  if (err instanceof CommanderError)
    return json && !NO_ERROR.has(err.code) ? oneLine(err.message) : undefined;
  if (err instanceof ExitWith) return err.explanation;
  return describe(err);
}

/** The exit code for `err`, as documented in the README and in --help. */
function exitCode(err: unknown): number {
  if (err instanceof CommanderError) {
    // --help and --version end here too, with exit code 0.
    return err.exitCode === 0 ? EXIT.ok : EXIT.usage;
  }
  if (err instanceof ExitWith) return err.code;
  if (err instanceof OutOfSyncUpdateError) return EXIT.outOfSync;
  if (err instanceof InvalidUpdaterError && err.cause instanceof OutOfSyncUpdateError)
    return EXIT.outOfSync;
  if (err instanceof ConfigError) return EXIT.usage;
  if (err instanceof LeaseHeldError || err instanceof LeaseLostError) return EXIT.lease;
  return EXIT.failure;
}
