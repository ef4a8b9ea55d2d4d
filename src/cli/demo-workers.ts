import { type ChildProcess, spawn } from "node:child_process";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { formatDuration } from "../duration.js";
import { GlobalClockError } from "../errors.js";
import { sleep } from "../sleep.js";

const BIN = fileURLToPath(new URL("../../bin/globalclock.js", import.meta.url));

export interface DemoWorker {
  readonly name: string;
  readonly child: ChildProcess;
  role: string;
  readonly exited: Promise<number | null>;
}

/**
 * Starts `globalclock run` as a child process. The store URL goes in its environment
 * (GLOBALCLOCK_STORE), never on its command line, which every user of the machine can read.
 */
export function launch(
  name: string,
  url: string,
  interval: string,
  env: NodeJS.ProcessEnv,
  say: (text: string) => void,
): DemoWorker {
  const child = spawn(process.execPath, [BIN, "run", "--json", "--interval", interval], {
    env: { ...env, GLOBALCLOCK_STORE: url },
    stdio: ["ignore", "pipe", "inherit"],
  });
  const worker: DemoWorker = {
    name,
    child,
    role: "starting",
    exited: new Promise((resolve) => child.once("close", (code) => resolve(code))),
  };
  child.on("error", () => {}); // a failed spawn shows as an exit
  say(`started worker ${name} (pid ${child.pid})`);
  createInterface({ input: child.stdout as NonNullable<typeof child.stdout> }).on("line", (line) =>
    follow(worker, line, say),
  );
  return worker;
}

/** Takes note of one of a worker's JSON log lines, and tells the story. */
function follow(worker: DemoWorker, line: string, say: (text: string) => void): void {
  let entry: { event?: string; role?: string; step?: string };
  try {
    entry = JSON.parse(line);
  } catch {
    return;
  }
  if (entry.event === "role" && entry.role) {
    worker.role = entry.role;
    if (entry.role !== "stopped" && entry.role !== "starting")
      say(`worker ${worker.name}: ${entry.role}`);
  } else if (entry.event === "takeover") {
    say(
      `worker ${worker.name} took over, advancing by ${formatDuration(BigInt(entry.step ?? "0"))} (only what passed since it read the clock: the stall is never made up)`,
    );
  }
}

export const alive = (w: DemoWorker) => w.child.exitCode === null && w.child.signalCode === null;

/** Stops every worker still running (`signal`, then SIGKILL for any that lingers) and waits. */
export async function stopAll(
  workers: readonly DemoWorker[],
  signal: NodeJS.Signals,
): Promise<void> {
  for (const w of workers) if (alive(w)) w.child.kill(signal);
  const lingering = setTimeout(() => {
    for (const w of workers) if (alive(w)) w.child.kill("SIGKILL");
  }, 5000);
  await Promise.all(workers.map((w) => w.exited));
  clearTimeout(lingering);
}

/** Waits until `find` returns a worker; fails after `timeoutMs`, or when `signal` aborts. */
export async function waitFor(
  find: () => DemoWorker | undefined,
  what: string,
  timeoutMs: number,
  signal: AbortSignal,
): Promise<DemoWorker> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const found = find();
    if (found) return found;
    if (Date.now() > deadline)
      throw new GlobalClockError(`demo: gave up after ${timeoutMs} ms waiting for ${what}`);
    if (!(await sleep(20, signal))) throw new DemoStopped();
  }
}

/** The demo was stopped from outside: a signal, or its stdout closed. */
export class DemoStopped extends GlobalClockError {
  override name = "DemoStopped";
  constructor() {
    super("demo stopped before it finished; its workers were stopped too");
  }
}
