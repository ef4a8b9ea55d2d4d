/**
 * Memory: the resident size of a `globalclock run` daemon left alone on a clock of its
 * own for a minute (it advances once a second, and serves /metrics). Read from the
 * kernel (/proc/PID/status) and from the daemon's own metric.
 */
import { readFileSync } from "node:fs";
import { type Context, type SharedStore, sharedUrl } from "./context.js";
import { Fleet } from "./fleet.js";

export interface MemoryRow {
  store: SharedStore;
  afterSeconds: number;
  /** VmRSS from /proc, in MB (10^6 bytes). */
  rssMb: number;
  /** globalclock_process_resident_memory_bytes from /metrics, in MB, read right after. */
  metricRssMb: number | undefined;
}

const MB = 1e6;

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

/**
 * Starts one daemon per store now and reads its size once `afterMs` has passed; the
 * benchmark does other work meanwhile. `finish` waits for the readings.
 */
export async function startMemoryProbe(
  ctx: Context,
): Promise<{ finish: () => Promise<MemoryRow[]> }> {
  const started: Array<{ store: SharedStore; fleet: Fleet; at: number }> = [];
  for (const store of ctx.mode.memoryStores) {
    const url = sharedUrl(ctx, store, "memory");
    if (!url) continue;
    const fleet = new Fleet(url, ["--listen", "127.0.0.1:0"]);
    await fleet.add();
    started.push({ store, fleet, at: performance.now() });
  }
  const readings = started.map(async ({ store, fleet, at }) => {
    try {
      const wait = at + ctx.mode.memoryAfterMs - performance.now();
      await new Promise((r) => setTimeout(r, Math.max(0, wait)));
      const daemon = fleet.alive[0];
      if (!daemon) throw new Error(`the ${store} daemon died: ${fleet.daemons[0]?.stderr}`);
      const afterSeconds = (performance.now() - at) / 1000;
      const rssMb = procRss(daemon.pid);
      const listen = fleet.lines("start")[0]?.listen;
      return { store, afterSeconds, rssMb, metricRssMb: await metricRss(listen) };
    } finally {
      await fleet.stop();
    }
  });
  for (const r of readings) r.catch(() => {}); // finish() reports them
  return { finish: () => Promise.all(readings) };
}
