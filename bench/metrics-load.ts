/**
 * `node --import tsx bench/metrics-load.ts [--connections 1000] [--rounds 3]`
 *
 * Starts one `globalclock run --listen` daemon (the built CLI, on a SQLite file) and opens
 * N connections at once, each sending one GET /metrics. Reports, per round, how many got an
 * answer and how many were refused, the latency of the answers (p50, p99, max), and the
 * daemon's resident memory before and at its peak. Needs `npm run build` first.
 */
import { spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { request } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";

const BIN = fileURLToPath(new URL("../bin/globalclock.js", import.meta.url));
const { values } = parseArgs({
  options: {
    connections: { type: "string", default: "1000" },
    rounds: { type: "string", default: "3" },
  },
});
const connections = Number(values.connections);
const rounds = Number(values.rounds);

/** VmRSS and VmHWM (peak) of a process, in MB. */
function memory(pid: number): { rss: number; peak: number } {
  const status = readFileSync(`/proc/${pid}/status`, "utf8");
  const kb = (key: string) => Number(new RegExp(`^${key}:\\s+(\\d+)`, "m").exec(status)?.[1]);
  return { rss: kb("VmRSS") / 1024, peak: kb("VmHWM") / 1024 };
}

/** One GET on its own connection: the latency in ms, or the error code. */
function scrape(base: string): Promise<{ ms: number; status?: number; error?: string }> {
  const began = performance.now();
  return new Promise((resolve) => {
    const req = request(`${base}/metrics`, { agent: false, headers: { connection: "close" } });
    req.on("response", (res) => {
      res.resume();
      res.on("end", () => resolve({ ms: performance.now() - began, status: res.statusCode }));
    });
    req.on("error", (err: NodeJS.ErrnoException) =>
      resolve({ ms: performance.now() - began, error: err.code ?? err.message }),
    );
    req.end();
  });
}

const percentile = (sorted: number[], p: number) =>
  sorted.length === 0
    ? Number.NaN
    : (sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))] as number);

const dir = mkdtempSync(join(tmpdir(), "globalclock-load-"));
const child = spawn(
  process.execPath,
  [BIN, "--store", `sqlite:${join(dir, "clock.db")}`, "run", "--json", "--listen", "127.0.0.1:0"],
  { stdio: ["ignore", "pipe", "inherit"] },
);
try {
  const listen = await new Promise<string>((resolve, reject) => {
    child.once("exit", (code) => reject(new Error(`daemon exited (${code})`)));
    createInterface({ input: child.stdout }).on("line", (line) => {
      const entry = JSON.parse(line) as { event?: string; listen?: string };
      if (entry.event === "start" && entry.listen) resolve(entry.listen);
    });
  });
  const base = `http://${listen}`;
  await scrape(base); // the first collection loads what it needs
  const pid = child.pid as number;
  console.log(`${connections} concurrent connections, one GET /metrics each; daemon pid ${pid}`);
  console.log(
    "| round | answered | refused or reset | p50 ms | p99 ms | max ms | wall ms | RSS before MB | peak RSS MB |",
  );
  console.log("|--:|--:|--:|--:|--:|--:|--:|--:|--:|");
  for (let round = 1; round <= rounds; round++) {
    const before = memory(pid);
    const began = performance.now();
    const results = await Promise.all(Array.from({ length: connections }, () => scrape(base)));
    const wall = performance.now() - began;
    const answered = results
      .filter((r) => r.status === 200)
      .map((r) => r.ms)
      .sort((a, b) => a - b);
    const failed = results.length - answered.length;
    const after = memory(pid);
    const f = (n: number) => n.toFixed(1);
    console.log(
      `| ${round} | ${answered.length} | ${failed} | ${f(percentile(answered, 0.5))} | ${f(percentile(answered, 0.99))} | ${f(answered.at(-1) ?? Number.NaN)} | ${f(wall)} | ${f(before.rss)} | ${f(after.peak)} |`,
    );
    await new Promise((r) => setTimeout(r, 1500));
  }
} finally {
  child.kill("SIGTERM");
  await new Promise((r) => child.once("exit", r));
  rmSync(dir, { recursive: true, force: true });
}
