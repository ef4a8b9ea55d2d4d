/** Child processes the benchmark starts, killed if it ends early (Ctrl-C, a crash). */
import { type ChildProcess, spawn } from "node:child_process";
import { createInterface } from "node:readline";

const children = new Set<ChildProcess>();

export function track<T extends ChildProcess>(child: T): T {
  children.add(child);
  child.once("exit", () => children.delete(child));
  return child;
}

export function killAll(): void {
  for (const child of children) {
    if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
  }
}

process.on("exit", killAll);

/** A line a child printed: a JSON object with its `event` and `at` (hrtime ns), as decimals. */
export interface EventLine {
  event: string;
  at: bigint;
  token?: string;
  deadline?: string;
}

/**
 * A Node child running `script` under tsx that prints one JSON object per line; the lines
 * are kept in order as they come, and its stderr for errors.
 */
export class EventChild {
  readonly child: ChildProcess;
  readonly lines: EventLine[] = [];
  readonly exited: Promise<void>;
  stderr = "";

  constructor(script: string, args: readonly string[]) {
    this.child = track(
      spawn(process.execPath, ["--import", "tsx", script, ...args], {
        stdio: ["ignore", "pipe", "pipe"],
      }),
    );
    this.exited = new Promise((resolve) => this.child.once("exit", () => resolve()));
    this.child.stderr?.on("data", (d) => {
      this.stderr += d;
    });
    createInterface({ input: this.child.stdout as NonNullable<ChildProcess["stdout"]> }).on(
      "line",
      (text) => {
        const raw = JSON.parse(text) as Record<string, string>;
        this.lines.push({ ...raw, event: raw.event ?? "", at: BigInt(raw.at ?? "0") });
      },
    );
  }

  get alive(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }
}
