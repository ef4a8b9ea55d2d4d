/**
 * Memory: the resident size of a `globalclock run` daemon left alone on a clock of its
 * own for a minute (it advances once a second, and serves /metrics), read from the kernel
 * (/proc/PID/status) and from the daemon's own metric; beside it, started and read at the
 * same moments, a bare Node process that loads the same driver and opens one connection
 * (bench/memory-baseline.mjs). The difference is what globalclock adds.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import type { Context, MemoryStore } from "./context.js";
import { sharedUrl } from "./context.js";
import { Fleet } from "./fleet.js";
import { track } from "./processes.js";
import { startMongoDouble } from "./servers.js";

export interface MemoryRow {
  store: MemoryStore;
  afterSeconds: number;
  /** VmRSS from /proc, in MB (10^6 bytes). */
  rssMb: number;
  /** globalclock_process_resident_memory_bytes from /metrics, in MB, read right after. */
  metricRssMb: number | undefined;
  /** The driver the baseline loads. */
  driver: string;
  /** VmRSS of the bare Node process with that driver and one connection, in MB. */
  baselineRssMb: number;
  /** rssMb − baselineRssMb. */
  overheadMb: number;
}

const MB = 1e6;
const BASELINE = fileURLToPath(new URL("./memory-baseline.mjs", import.meta.url));

function procRss(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, "utf8");
  const kb = /^VmRSS:\s+(\d+)\s+kB/m.exec(status)?.[1];
  if (!kb) throw new Error(`no VmRSS for ${pid}`);
  return (Number(kb) * 1024) / MB;
}

async function metricRss(listen: unknown): Promise<number | undefined> {
  if (typeof listen !== "string") return undefined;
  const text = await (await fetch(`http://${listen}/metrics`)).text();
  const value = /^globalclock_process_resident_memory_bytes\s+(\S+)/m.exec(text)?.[1];
  return value === undefined ? undefined : Number(value) / MB;
}

/** Starts the baseline process; resolves once its connection is open. */
async function startBaseline(driver: string, target: string): Promise<ChildProcess> {
  const child = track(
    spawn(process.execPath, [BASELINE, driver, target], { stdio: ["pipe", "pipe", "inherit"] }),
  );
  const lines = createInterface({ input: child.stdout as NonNullable<ChildProcess["stdout"]> });
  await new Promise<void>((resolve, reject) => {
    lines.once("line", () => resolve());
    child.once("exit", (code) => reject(new Error(`the ${driver} baseline exited (${code})`)));
  });
  return child;
}

function stopBaseline(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  child.stdin?.end();
  const timer = setTimeout(() => child.kill("SIGKILL"), 5000);
  return exited.finally(() => clearTimeout(timer));
}

interface Probe {
  store: MemoryStore;
  url: string;
  driver: string;
  /** What the baseline connects to. */
  target: string;
  stop?: () => Promise<void>;
}

async function probeFor(ctx: Context, store: MemoryStore): Promise<Probe | undefined> {
  if (store === "mongodb") {
    const double = await startMongoDouble("rs0");
    const url = `${double.uri}&collection=memory`;
    return { store, url, driver: "mongodb", target: double.uri, stop: double.stop };
  }
  const url = sharedUrl(ctx, store, "memory");
  if (!url) return undefined;
  if (store === "sqlite") {
    return { store, url, driver: "better-sqlite3", target: ctx.scratch.path("memory-baseline") };
  }
  if (store === "postgres" && ctx.postgres) {
    return { store, url, driver: "pg", target: ctx.postgres.url("postgres") };
  }
  if (store === "etcd" && ctx.etcd) {
    return { store, url, driver: "etcd3", target: ctx.etcd.endpoints.join(",") };
  }
  return undefined;
}

/**
 * Starts one daemon and its baseline per store now and reads their sizes once `afterMs`
 * has passed; the benchmark does other work meanwhile. `finish` waits for the readings.
 */
export async function startMemoryProbe(
  ctx: Context,
): Promise<{ finish: () => Promise<MemoryRow[]> }> {
  const started: Array<{ probe: Probe; fleet: Fleet; baseline: ChildProcess; at: number }> = [];
  for (const store of ctx.mode.memoryStores) {
    const probe = await probeFor(ctx, store);
    if (!probe) continue;
    const fleet = new Fleet(probe.url, ["--listen", "127.0.0.1:0"]);
    const [, baseline] = await Promise.all([
      fleet.add(),
      startBaseline(probe.driver, probe.target),
    ]);
    started.push({ probe, fleet, baseline, at: performance.now() });
  }
  const readings = started.map(async ({ probe, fleet, baseline, at }) => {
    try {
      const wait = at + ctx.mode.memoryAfterMs - performance.now();
      await new Promise((r) => setTimeout(r, Math.max(0, wait)));
      const daemon = fleet.alive[0];
      if (!daemon) throw new Error(`the ${probe.store} daemon died: ${fleet.daemons[0]?.stderr}`);
      const afterSeconds = (performance.now() - at) / 1000;
      const rssMb = procRss(daemon.pid);
      const baselineRssMb = procRss(baseline.pid as number);
      const listen = fleet.lines("start")[0]?.listen;
      return {
        store: probe.store,
        afterSeconds,
        rssMb,
        metricRssMb: await metricRss(listen),
        driver: probe.driver,
        baselineRssMb,
        overheadMb: rssMb - baselineRssMb,
      };
    } finally {
      await fleet.stop();
      await stopBaseline(baseline);
      await probe.stop?.();
    }
  });
  for (const r of readings) r.catch(() => {}); // finish() reports them
  return { finish: () => Promise.all(readings) };
}
