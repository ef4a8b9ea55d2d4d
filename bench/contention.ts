/**
 * Contention: 1, 2, 4 and 8 processes, each an Updater advancing one clock in a tight
 * loop. Successful advances per second, conflicts (lost swaps) per minute, and whether a
 * process starves. Afterwards the clock must have moved by exactly the advances won.
 */
import { type ChildProcess, fork } from "node:child_process";
import { fileURLToPath } from "node:url";
import { openStore, Updater } from "../src/index.js";
import type { Tally } from "./contention-child.js";
import { type Context, type SharedStore, sharedUrl } from "./context.js";
import { track } from "./processes.js";

/** A process that goes this long without winning a swap is said to starve. */
export const STARVE_MS = 1000;
const STEP_NS = 1_000_000n;

export interface ContentionRow {
  store: SharedStore;
  workers: number;
  seconds: number;
  advancesPerSec: number;
  conflictsPerMin: number;
  /** Lost swaps among all attempts. */
  conflictShare: number;
  errors: number;
  /** The fewest advances any process won, as a share of an even split. */
  minFairShare: number;
  longestDroughtMs: number;
  starved: boolean;
  /** The clock moved by exactly (advances won × step). */
  consistent: boolean;
  perWorker: Array<Omit<Tally, "type">>;
}

const CHILD = fileURLToPath(new URL("./contention-child.ts", import.meta.url));

function message<T>(child: ChildProcess, type: string, timeoutMs: number): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no "${type}" from a worker`)), timeoutMs);
    const onMessage = (m: unknown) => {
      if ((m as { type?: string }).type !== type) return;
      clearTimeout(timer);
      child.off("message", onMessage);
      resolve(m as T);
    };
    child.on("message", onMessage);
    child.once("exit", (code) => {
      clearTimeout(timer);
      reject(new Error(`a worker exited (${code}) before "${type}"`));
    });
  });
}

async function runLevel(
  url: string,
  workers: number,
  ms: number,
): Promise<Omit<ContentionRow, "store">> {
  const store = await openStore(url);
  const setup = await Updater.create(store);
  const initial = setup.time;
  await setup.close();
  const children = Array.from({ length: workers }, () =>
    track(
      fork(CHILD, [url, STEP_NS.toString()], {
        execArgv: ["--import", "tsx"],
        stdio: ["ignore", "inherit", "inherit", "ipc"],
      }),
    ),
  );
  try {
    const tallies = children.map((c) => message<Tally>(c, "tally", 120_000 + ms));
    for (const t of tallies) t.catch(() => {});
    await Promise.all(children.map((c) => message(c, "ready", 120_000)));
    const start = process.hrtime.bigint() + 200_000_000n;
    const end = start + BigInt(ms) * 1_000_000n;
    for (const c of children) c.send({ type: "go", start: start.toString(), end: end.toString() });
    const results = await Promise.all(tallies);
    const final = (await store.read()) ?? 0n;
    const seconds = ms / 1000;
    const advances = results.reduce((n, r) => n + r.advances, 0);
    const conflicts = results.reduce((n, r) => n + r.conflicts, 0);
    const errors = results.reduce((n, r) => n + r.errors, 0);
    const fair = advances / workers;
    const longestDroughtMs = Math.max(...results.map((r) => r.longestDroughtMs));
    return {
      workers,
      seconds,
      advancesPerSec: advances / seconds,
      conflictsPerMin: (conflicts / seconds) * 60,
      conflictShare: conflicts / Math.max(1, advances + conflicts),
      errors,
      minFairShare: fair === 0 ? 0 : Math.min(...results.map((r) => r.advances)) / fair,
      longestDroughtMs,
      starved: longestDroughtMs >= STARVE_MS || results.some((r) => r.advances === 0),
      consistent: final - initial === BigInt(advances) * STEP_NS,
      perWorker: results.map(({ type: _, ...rest }) => rest),
    };
  } finally {
    for (const c of children) if (c.exitCode === null) c.kill("SIGKILL");
    await store.close();
  }
}

export async function contentionSection(ctx: Context): Promise<ContentionRow[]> {
  const rows: ContentionRow[] = [];
  for (const store of ctx.mode.contentionStores) {
    for (const workers of ctx.mode.contentionWorkers) {
      const url = sharedUrl(ctx, store, `contention_${workers}`);
      if (!url) break;
      ctx.log(`  ${store}, ${workers} process${workers === 1 ? "" : "es"}`);
      rows.push({ store, ...(await runLevel(url, workers, ctx.mode.contentionMs)) });
    }
  }
  return rows;
}
