import { type ChildProcess, spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import type { Command } from "commander";
import { formatDuration } from "../duration.js";
import { checkHistory, type Sample } from "../history.js";
import { openReader } from "../open.js";
import { sleep } from "../sleep.js";
import { describeDefault, type WorkerSettings, workerSettings } from "../worker-settings.js";
import { type Io, storeUrl } from "./io.js";

const BIN = fileURLToPath(new URL("../../bin/globalclock.js", import.meta.url));
const NAMES = ["A", "B", "C"] as const;

interface Worker {
  name: string;
  child: ChildProcess;
  role: string;
  exited: Promise<number | null>;
}

/**
 * `globalclock demo`: three workers on one store; the active one is killed with SIGKILL;
 * another takes over. Prints what happened and checks the invariants on what it read.
 */
export function registerDemo(program: Command, io: Io): void {
  program
    .command("demo")
    .description(
      "three workers on one store, kill the active one, watch another take over (about 15 s)",
    )
    .option("--interval <duration>", "worker interval", describeDefault("interval"))
    .action(async (opts: { interval: string }, cmd: Command) => {
      const settings = workerSettings({ interval: opts.interval });
      const dir = mkdtempSync(join(tmpdir(), "globalclock-demo-"));
      const url = storeUrl(cmd, io) ?? `sqlite:${join(dir, "demo.db")}`;
      const t0 = process.hrtime.bigint();
      const say = (text: string) =>
        io.out(`[${(Number(process.hrtime.bigint() - t0) / 1e9).toFixed(1).padStart(5)}s] ${text}`);
      io.out(
        `Three \`globalclock run\` workers share one clock on ${url.startsWith("sqlite:") ? "a SQLite file" : url}.`,
      );
      io.out(
        `Settings: interval ${formatDuration(settings.interval)}, takeover after ${formatDuration(settings.takeoverAfter)}, max step ${formatDuration(settings.maxStep)}.`,
      );
      const workers = NAMES.map((name) => launch(name, url, opts.interval, say));
      await using reader = await openReader(url);
      const stop = new AbortController();
      const samples: Sample[] = [];
      const recording = record(reader, samples, stop.signal);
      try {
        const active = await waitFor(() => workers.find((w) => w.role === "active"), 10_000);
        await sleep(Number(settings.interval * 4n) / 1e6);
        say(`SIGKILL worker ${active.name} (pid ${active.child.pid}), the active one`);
        active.child.kill("SIGKILL");
        const heir = await waitFor(
          () => workers.find((w) => w !== active && w.role === "active"),
          30_000,
        );
        say(`worker ${heir.name} is active now`);
        await sleep(Number(settings.interval * 4n) / 1e6);
        stop.abort();
        await recording;
        for (const w of workers) if (w !== active) w.child.kill("SIGTERM");
        await Promise.all(workers.map((w) => w.exited));
        summarize(io, samples, settings);
      } finally {
        stop.abort();
        for (const w of workers) if (w.child.exitCode === null) w.child.kill("SIGKILL");
        rmSync(dir, { recursive: true, force: true });
      }
    });
}

function launch(name: string, url: string, interval: string, say: (text: string) => void): Worker {
  const child = spawn(
    process.execPath,
    [BIN, "--store", url, "run", "--json", "--interval", interval],
    {
      stdio: ["ignore", "pipe", "inherit"],
    },
  );
  const worker: Worker = {
    name,
    child,
    role: "starting",
    exited: new Promise((resolve) => child.once("exit", (code) => resolve(code))),
  };
  say(`started worker ${name} (pid ${child.pid})`);
  createInterface({ input: child.stdout as NonNullable<typeof child.stdout> }).on(
    "line",
    (line) => {
      let entry: { event?: string; role?: string; step?: string };
      try {
        entry = JSON.parse(line);
      } catch {
        return;
      }
      if (entry.event === "role" && entry.role) {
        worker.role = entry.role;
        if (entry.role !== "stopped" && entry.role !== "starting")
          say(`worker ${name}: ${entry.role}`);
      } else if (entry.event === "takeover") {
        say(
          `worker ${name} took over, advancing by ${formatDuration(BigInt(entry.step ?? "0"))} (only what passed since it read the clock: the stall is never made up)`,
        );
      }
    },
  );
  return worker;
}

/** Reads the clock every 10 ms until `signal` aborts; a failed read is skipped, never fatal. */
async function record(
  reader: { now(signal?: AbortSignal): Promise<bigint> },
  out: Sample[],
  signal: AbortSignal,
) {
  while (!signal.aborted) {
    const before = process.hrtime.bigint();
    const global = await reader.now().catch(() => undefined);
    if (global !== undefined) out.push({ before, after: process.hrtime.bigint(), global });
    await sleep(10, signal);
  }
}

async function waitFor<T>(find: () => T | undefined, timeoutMs: number): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const found = find();
    if (found) return found;
    if (Date.now() > deadline)
      throw new Error(`demo: gave up after ${timeoutMs} ms waiting for a worker to become active`);
    await sleep(20);
  }
}

function summarize(io: Io, samples: Sample[], settings: WorkerSettings): void {
  const { maxStep, pushedFailoverBound, failoverBound } = settings;
  // The stall: the longest time between two observed changes (in steady state, one interval).
  let stall = 0n;
  let lastChange: Sample | undefined;
  for (let i = 1; i < samples.length; i++) {
    const cur = samples[i] as Sample;
    if (cur.global === (samples[i - 1] as Sample).global) continue;
    if (lastChange && cur.after - lastChange.after > stall) stall = cur.after - lastChange.after;
    lastChange = cur;
  }
  const first = samples[0] as Sample;
  const last = samples.at(-1) as Sample;
  const wall = last.after - first.before;
  const global = last.global - first.global;
  const violations = checkHistory(samples, maxStep);
  io.out("");
  io.out(`Recorded ${samples.length} reads over ${formatDuration(wall)} of wall time.`);
  io.out(
    `Longest stall (the failover): global time stood still for ${formatDuration(stall)}; the bound is ${formatDuration(pushedFailoverBound)} where the store pushes changes, ${formatDuration(failoverBound)} where it is polled, plus store latency.`,
  );
  io.out(
    `Global time advanced ${formatDuration(global)} in ${formatDuration(wall)}: it fell behind by the stall, and never ran ahead.`,
  );
  io.out(
    `Invariant 1 (never decreases) and 3 (no jump beyond elapsed + max step) on every pair of reads: ${violations.length === 0 ? "hold" : "VIOLATED"}`,
  );
  for (const v of violations) io.out(`  ${v}`);
  if (violations.length > 0 || global > wall + maxStep) process.exitCode = 1;
}
