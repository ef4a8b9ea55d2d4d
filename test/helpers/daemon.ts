import { type ChildProcess, spawn } from "node:child_process";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";

/**
 * The CLI the multi-process tests run: this checkout's, or another build's
 * (GLOBALCLOCK_TEST_BIN), to show that a fault test fails against a broken one.
 */
export const BIN =
  process.env.GLOBALCLOCK_TEST_BIN ??
  fileURLToPath(new URL("../../bin/globalclock.js", import.meta.url));

export interface LogLine {
  /** pino's level: 30 info, 40 warn, 50 error. */
  level?: number;
  event?: string;
  role?: string;
  listen?: string;
  step?: string;
  [key: string]: unknown;
}

/** A `globalclock run` child process whose JSON log lines are collected as they come. */
export class Daemon {
  readonly child: ChildProcess;
  readonly lines: LogLine[] = [];
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  stderr = "";
  role = "starting";

  /** `store` goes in GLOBALCLOCK_STORE, never on the command line. */
  constructor(store: string, args: string[] = []) {
    this.child = spawn(process.execPath, [BIN, "run", "--json", ...args], {
      stdio: ["ignore", "pipe", "pipe"],
      env: { ...process.env, GLOBALCLOCK_STORE: store },
    });
    this.exited = new Promise((resolve) =>
      this.child.once("exit", (code, signal) => resolve({ code, signal })),
    );
    this.child.stderr?.on("data", (d) => {
      this.stderr += d;
    });
    createInterface({ input: this.child.stdout as NonNullable<ChildProcess["stdout"]> }).on(
      "line",
      (text) => {
        const line = JSON.parse(text) as LogLine;
        this.lines.push(line);
        if (line.event === "role" && typeof line.role === "string") this.role = line.role;
      },
    );
  }

  get pid(): number {
    return this.child.pid as number;
  }

  /** A mark in the log, for `waitFor(match, { since })`: the lines logged after now. */
  mark(): number {
    return this.lines.length;
  }

  /**
   * Waits until a log line matches, or fails after `timeoutMs` (generous: a liveness bound,
   * not a timing check). Any line logged so far counts, unless `since` (from `mark()`) says
   * to look only at lines logged after that mark: for a new event, never an old line.
   */
  async waitFor(
    match: (line: LogLine) => boolean,
    options: number | { since?: number; timeoutMs?: number } = {},
  ): Promise<LogLine> {
    const { since = 0, timeoutMs = 20_000 } =
      typeof options === "number" ? { timeoutMs: options } : options;
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const found = this.lines.slice(since).find(match);
      if (found) return found;
      if (this.child.exitCode !== null)
        throw new Error(`daemon ${this.pid} exited: ${this.stderr}`);
      if (Date.now() > deadline) {
        const after = since > 0 ? ` after line ${since}` : "";
        throw new Error(`daemon ${this.pid}: no matching log line${after} in ${timeoutMs} ms`);
      }
      await new Promise((r) => setTimeout(r, 10));
    }
  }

  /** GET `path` on the address the daemon logged it listens on (it must run with --listen). */
  async get(path: string): Promise<{ status: number; text: string }> {
    const start = await this.waitFor((l) => l.event === "start");
    const res = await fetch(`http://${start.listen}${path}`);
    return { status: res.status, text: await res.text() };
  }

  /** One counter or gauge from /metrics. */
  async metric(name: string): Promise<number> {
    const { text } = await this.get("/metrics");
    const m = new RegExp(`^${name} (\\S+)$`, "m").exec(text);
    if (!m) throw new Error(`no ${name} in /metrics`);
    return Number(m[1]);
  }

  kill(signal: NodeJS.Signals): void {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill(signal);
  }
}

/** Waits until `find` returns (or resolves to) something, polling every 10 ms, failing after `timeoutMs`. */
export async function eventually<T>(
  find: () => T | undefined | false | Promise<T | undefined | false>,
  what: string,
  timeoutMs = 20_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const found = await find();
    if (found) return found;
    if (Date.now() > deadline) throw new Error(`gave up after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}
