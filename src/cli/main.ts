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
import { registerDemo } from "./demo.js";
import { defaultIo, EXIT, ExitWith, type Io } from "./io.js";
import { registerLease, registerMaxStep } from "./lease-commands.js";
import { registerLock } from "./lock.js";
import { registerStatus, registerWatch } from "./observe-commands.js";
import { registerRun } from "./run.js";

/** Runs the CLI on `argv` (without node and script) and resolves to the exit code. */
export async function main(argv: string[], io: Io = defaultIo): Promise<number> {
  const program = new Command("globalclock")
    .description("One cluster-wide virtual clock, kept in a shared store.")
    .option("--store <url>", "store URL (env GLOBALCLOCK_STORE; default sqlite:./globalclock.db)")
    .exitOverride()
    .showHelpAfterError(false)
    .configureOutput({
      writeOut: (s) => io.out(s.replace(/\n$/, "")),
      writeErr: (s) => io.err(s.replace(/\n$/, "")),
      outputError: (s, write) => write(`globalclock: ${s.replace(/^error: /, "").trim()}`),
    });
  registerNow(program, io);
  registerAdvance(program, io);
  registerRun(program, io);
  registerWatch(program, io);
  registerStatus(program, io);
  registerDemo(program, io);
  registerLease(program, io);
  registerLock(program, io);
  registerMaxStep(program, io);
  try {
    await program.parseAsync(argv, { from: "user" });
    return EXIT.ok;
  } catch (err) {
    return report(err, io);
  }
}

function report(err: unknown, io: Io): number {
  if (err instanceof CommanderError) {
    // --help and --version end here too, with exit code 0.
    return err.exitCode === 0 ? EXIT.ok : EXIT.usage;
  }
  if (err instanceof ExitWith) return err.code;
  const line = `globalclock: ${redact(describe(err))}`;
  io.err(line);
  if (err instanceof OutOfSyncUpdateError) return EXIT.outOfSync;
  if (err instanceof InvalidUpdaterError && err.cause instanceof OutOfSyncUpdateError)
    return EXIT.outOfSync;
  if (err instanceof ConfigError) return EXIT.usage;
  if (err instanceof LeaseHeldError || err instanceof LeaseLostError) return EXIT.lease;
  return EXIT.failure;
}
