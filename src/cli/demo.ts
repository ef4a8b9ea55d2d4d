import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Command } from "commander";
import { formatDuration } from "../duration.js";
import { GlobalClockError, safeUrl } from "../errors.js";
import { checkHistory, type Sample } from "../history.js";
import { openReader } from "../open.js";
import type { Reader } from "../reader.js";
import { sleep } from "../sleep.js";
import { describeDefault, type WorkerSettings, workerSettings } from "../worker-settings.js";
import { alive, DemoStopped, type DemoWorker, launch, stopAll, waitFor } from "./demo-workers.js";
import type { Io } from "./io.js";
import { stopOnSignals } from "./signals.js";

const NAMES = ["A", "B", "C"] as const;

/**
 * `globalclock demo`: three workers on one store; the active one is killed with SIGKILL;
 * another takes over. Prints what happened and checks the invariants on what it read.
 * Its workers are stopped on every way out: the end, an error, SIGINT or SIGTERM, and a
 * closed stdout (`globalclock demo | head -1`).
 */
export function registerDemo(program: Command, io: Io): void {
  program
    .command("demo")
    .description(
      "three workers on a store of its own (or --store's), kill the active one, watch another take over (about 15 s)",
    )
    .option("--interval <duration>", "worker interval", describeDefault("interval"))
    .option("--json", "print JSON lines: a start, each event, and a summary")
    .action(async (opts: { interval: string; json?: boolean }, cmd: Command) => {
      const settings = workerSettings({ interval: opts.interval });
      using stop = stopOnSignals(io.closed);
      const dir = mkdtempSync(join(tmpdir(), "globalclock-demo-"));
      // Its own store unless --store names one: a GLOBALCLOCK_STORE in the environment is
      // usually a live cluster, and the demo kills workers.
      const url =
        cmd.optsWithGlobals<{ store?: string }>().store ?? `sqlite:${join(dir, "demo.db")}`;
      const t0 = process.hrtime.bigint();
      const say = (text: string) => {
        const at = (Number(process.hrtime.bigint() - t0) / 1e9).toFixed(1);
        io.out(
          opts.json
            ? JSON.stringify({ event: "progress", atSeconds: Number(at), message: text })
            : `[${at.padStart(5)}s] ${text}`,
        );
      };
      const where = url.startsWith("sqlite:") ? "a SQLite file" : safeUrl(url);
      if (opts.json)
        io.out(
          JSON.stringify({
            event: "start",
            store: where,
            intervalNs: settings.interval.toString(),
            takeoverAfterNs: settings.takeoverAfter.toString(),
            maxStepNs: settings.maxStep.toString(),
          }),
        );
      else {
        io.out(`Three \`globalclock run\` workers share one clock on ${where}.`);
        io.out(
          `Settings: interval ${formatDuration(settings.interval)}, takeover after ${formatDuration(settings.takeoverAfter)}, max step ${formatDuration(settings.maxStep)}.`,
        );
      }
      const workers: DemoWorker[] = [];
      try {
        for (const name of NAMES) workers.push(launch(name, url, opts.interval, io.env, say));
        const samples = await failover(workers, url, settings, say, stop.signal);
        await stopAll(workers, "SIGTERM");
        if (!summarize(io, samples, settings, opts.json))
          throw new GlobalClockError("demo: the invariants did not hold on the reads above");
      } catch (err) {
        // A closed stdout is how `| head` ends a demo: nothing left to say, and nobody to say it to.
        if (err instanceof DemoStopped && io.closed?.aborted) return;
        throw err;
      } finally {
        await stopAll(workers, "SIGKILL");
        rmSync(dir, { recursive: true, force: true });
      }
    });
}

/** Waits for an active worker, kills it, waits for an heir; the reads recorded meanwhile. */
async function failover(
  workers: readonly DemoWorker[],
  url: string,
  settings: WorkerSettings,
  say: (text: string) => void,
  signal: AbortSignal,
): Promise<Sample[]> {
  const pause = async (ns: bigint) => {
    if (!(await sleep(Number(ns) / 1e6, signal))) throw new DemoStopped();
  };
  const running = (w: DemoWorker) => alive(w) && w.role === "active";
  const active = await waitFor(
    () => workers.find(running),
    "a worker to become active",
    10_000,
    signal,
  );
  // Only now does the clock surely exist: a reader never creates it.
  await using reader = await openReader(url);
  const recording = new AbortController();
  const samples: Sample[] = [];
  const recorded = record(reader, samples, AbortSignal.any([recording.signal, signal]));
  try {
    await pause(settings.interval * 4n);
    say(`SIGKILL worker ${active.name} (pid ${active.child.pid}), the active one`);
    active.child.kill("SIGKILL");
    const heir = await waitFor(
      () => workers.find((w) => w !== active && running(w)),
      "another worker to take over",
      30_000,
      signal,
    );
    say(`worker ${heir.name} is active now`);
    await pause(settings.interval * 4n);
  } finally {
    recording.abort();
    await recorded;
  }
  return samples;
}

/** Reads the clock every 10 ms until `signal` aborts; a failed read is skipped, never fatal. */
async function record(reader: Reader, out: Sample[], signal: AbortSignal): Promise<void> {
  while (!signal.aborted) {
    const before = process.hrtime.bigint();
    const global = await reader.now().catch(() => undefined);
    if (global !== undefined) out.push({ before, after: process.hrtime.bigint(), global });
    await sleep(10, signal);
  }
}

/** Prints what the reads show; false if they break an invariant. */
function summarize(
  io: Io,
  samples: Sample[],
  settings: WorkerSettings,
  json: boolean | undefined,
): boolean {
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
  const ok = violations.length === 0 && global <= wall + maxStep;
  if (json) {
    io.out(
      JSON.stringify({
        event: "summary",
        reads: samples.length,
        wallNs: wall.toString(),
        longestStallNs: stall.toString(),
        advancedNs: global.toString(),
        invariantsHold: violations.length === 0,
        violations,
        ok,
      }),
    );
    return ok;
  }
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
  return ok;
}
