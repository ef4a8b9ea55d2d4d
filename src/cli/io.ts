import type { Command } from "commander";

/** Exit codes, as documented in the README. */
export const EXIT = { ok: 0, failure: 1, usage: 2, outOfSync: 3, lease: 4 } as const;

/** Ends a command with `code` and no message (e.g. `lock` passing on its command's code). */
export class ExitWith extends Error {
  readonly code: number;
  constructor(code: number) {
    super(`exit ${code}`);
    this.code = code;
  }
}

/** Where a command writes its lines and reads its environment. */
export interface Io {
  out: (line: string) => void;
  err: (line: string) => void;
  env: NodeJS.ProcessEnv;
}

export const defaultIo: Io = {
  out: (line) => process.stdout.write(`${line}\n`),
  err: (line) => process.stderr.write(`${line}\n`),
  env: process.env,
};

/** The store URL from --store, else GLOBALCLOCK_STORE; undefined leaves the default to the caller. */
export function storeUrl(program: Command, io: Io): string | undefined {
  const opts = program.optsWithGlobals<{ store?: string }>();
  return opts.store ?? (io.env.GLOBALCLOCK_STORE || undefined);
}
