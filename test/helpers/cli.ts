/** The built CLI, run as a user runs it (`node bin/globalclock.js …`). */
import assert from "node:assert/strict";
import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { existsSync, readdirSync, statSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import type { Io } from "../../src/cli/io.js";

export const ROOT = fileURLToPath(new URL("../../", import.meta.url));
export const BIN = join(ROOT, "bin", "globalclock.js");
const BUILT = join(ROOT, "dist", "cli", "main.js");

/** Builds dist/ unless it is newer than every source file (`npm test` builds first). */
export function buildIfStale(): void {
  const newest = Math.max(
    ...readdirSync(join(ROOT, "src"), { withFileTypes: true, recursive: true })
      .filter((e) => e.isFile())
      .map((e) => statSync(join(e.parentPath, e.name)).mtimeMs),
  );
  if (existsSync(BUILT) && statSync(BUILT).mtimeMs >= newest) return;
  const build = spawnSync("npm", ["run", "build"], { cwd: ROOT, encoding: "utf8" });
  assert.equal(build.status, 0, `npm run build failed:\n${build.stdout}${build.stderr}`);
}

export interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

/**
 * Starts the CLI; GLOBALCLOCK_STORE only if `env` gives it. `output()` is what it printed
 * so far; `done` resolves when it has exited.
 */
export function startCli(
  args: string[],
  env: NodeJS.ProcessEnv = {},
  cwd = ROOT,
): { child: ChildProcess; output: () => Run; done: Promise<Run> } {
  const base = { ...process.env };
  delete base.GLOBALCLOCK_STORE;
  const child = spawn(process.execPath, [BIN, ...args], { cwd, env: { ...base, ...env } });
  const run: Run = { code: null, stdout: "", stderr: "" };
  child.stdout?.setEncoding("utf8").on("data", (s: string) => {
    run.stdout += s;
  });
  child.stderr?.setEncoding("utf8").on("data", (s: string) => {
    run.stderr += s;
  });
  const done = new Promise<Run>((resolve, reject) => {
    child.on("error", reject);
    child.on("close", (code) => resolve({ ...run, code }));
    // A process it left behind (an orphaned command) may hold its output open: once it has
    // exited, stop waiting for that after a moment, so the test ends instead of hanging.
    child.on("exit", (code) => {
      setTimeout(() => {
        child.stdout?.destroy();
        child.stderr?.destroy();
        resolve({ ...run, code });
      }, 2000).unref();
    });
  });
  return { child, output: () => run, done };
}

/** Runs the CLI to its end; GLOBALCLOCK_STORE only if `env` gives it. */
export function cli(args: string[], env: NodeJS.ProcessEnv = {}, cwd = ROOT): Promise<Run> {
  return startCli(args, env, cwd).done;
}

/** A failure: the exit code, nothing on stdout, and one line on stderr matching `pattern`. */
export function failed(run: Run, code: number, pattern: RegExp): string {
  assert.equal(run.code, code, `expected exit ${code}, got ${run.code}: ${run.stderr}`);
  assert.equal(run.stdout, "");
  assert.match(
    run.stderr,
    /^globalclock: [^\n]+\n$/,
    `not one line: ${JSON.stringify(run.stderr)}`,
  );
  assert.match(run.stderr, pattern);
  return run.stderr;
}

/** An Io that records what a command writes, for `main` run in this process. */
export function recordingIo(options: { tty?: boolean; env?: NodeJS.ProcessEnv } = {}) {
  const out: string[] = [];
  const err: string[] = [];
  const writes: string[] = [];
  const io: Io = {
    out: (line) => out.push(line),
    err: (line) => err.push(line),
    env: options.env ?? {},
    tty: options.tty ?? false,
    write: (text) => writes.push(text),
  };
  return { io, out, err, writes };
}

/**
 * Runs `command` (a shell line) under a pseudo-terminal (`script`): `screen()` is what the
 * terminal showed so far, `type(text)` types on its keyboard, `exited` its exit code.
 * `script` runs the line with `$SHELL -c`; start it with `exec`, so that a shell which does
 * not exec its last command (dash) does not wait in the terminal's foreground group too.
 */
export function underTerminal(command: string) {
  const child = spawn("script", ["-q", "-e", "-c", command, "/dev/null"], {
    stdio: ["pipe", "pipe", "inherit"],
    env: { ...process.env, SHELL: "/bin/sh" },
  });
  let screen = "";
  child.stdout.setEncoding("utf8").on("data", (s: string) => {
    screen += s;
  });
  const exited = new Promise<number | null>((resolve) => child.once("close", resolve));
  return { screen: () => screen, type: (text: string) => child.stdin.write(text), exited };
}
