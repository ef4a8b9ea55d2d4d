/**
 * The README's benchmark section, generated from a full run's JSON and written between
 * the `<!-- bench:start -->` and `<!-- bench:end -->` markers (nothing else is touched).
 * bench/output.ts renders it again from a saved JSON.
 */
import { readFileSync, writeFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { type BenchResults, machineLine, TARGETS } from "./report.js";
import type { StoreRow } from "./stores.js";

const START = "<!-- bench:start -->";
const END = "<!-- bench:end -->";

const f = (n: number, d = 0) =>
  n.toLocaleString("en-US", { minimumFractionDigits: d, maximumFractionDigits: d });
const rate = (n: number) => (n >= 1e6 ? `${f(n / 1e6, 2)} M` : f(n));

export function readmeSection(r: BenchResults): string {
  const out: string[] = [];
  const minutes = Math.ceil(r.seconds / 60);
  out.push(
    `From one ${r.mode} run of \`npm run bench\` on ${r.date.slice(0, 10)}: ${machineLine(r)} ` +
      `The machine was shared with other work (CPUs ${f(r.cpuBusyBefore * 100)}% busy before the run began), so read the figures as indicative. ` +
      `Every table, with latencies and method: [bench/results/bench.md](bench/results/bench.md); ` +
      `the raw figures: [bench/results/bench.json](bench/results/bench.json). ` +
      `\`npm run bench\` takes about ${minutes} minutes and starts its own servers; ` +
      "`npm run bench -- --quick` takes under 3 minutes.",
  );
  out.push(
    "Operations per second, one in flight, through globalclock and through the raw driver sending the same statement in the same run (target: globalclock ≥ 0.9 × raw):",
  );
  const table = ["| store | `now` /s | ÷ raw | `advance` /s | ÷ raw |", "|---|--:|--:|--:|--:|"];
  for (const s of r.stores) {
    const gc = (c: typeof s.now) => c.sides.find((x) => x.name === "globalclock")?.opsPerSec ?? 0;
    const ratio = (c: typeof s.now) => c.ratios.globalclock ?? Number.NaN;
    const show = (x: number) => `${f(x, 2)}${x < TARGETS.ratio ? " ✗" : ""}`;
    table.push(
      `| ${s.label} | ${rate(gc(s.now))} | ${show(ratio(s.now))} | ${rate(gc(s.advance))} | ${show(ratio(s.advance))} |`,
    );
  }
  out.push(table.join("\n"));
  const sync = r.stores.filter((s) => s.now.sides.some((x) => x.name === "raw, awaited"));
  if (sync.length) {
    const share = (c: StoreRow["now"], top: string, bottom: string) => {
      const by = (n: string) => c.sides.find((x) => x.name === n)?.opsPerSec ?? Number.NaN;
      return f(by(top) / by(bottom), 2);
    };
    const each = (fn: (s: StoreRow) => string) => sync.map(fn).join("; ");
    out.push(
      `${sync.map((s) => s.label).join(" and ")} are called synchronously by their raw baseline, which no promise-based API can match: ` +
        `the raw call inside an awaited async function already reaches only ${each(
          (s) =>
            `${share(s.now, "raw, awaited", "raw")} (${s.label} \`now\`) and ${share(s.advance, "raw, awaited", "raw")} (\`advance\`)`,
        )} of the raw rate. Against that ceiling globalclock reaches ${each(
          (s) =>
            `${share(s.now, "globalclock", "raw, awaited")} (${s.label} \`now\`) and ${share(s.advance, "globalclock", "raw, awaited")} (\`advance\`)`,
        )}.`,
    );
  }
  const bullets: string[] = [];
  if (r.failover.length) {
    bullets.push(
      `**Failover** (SIGKILL the active \`globalclock run\`, default options, target ≤ 3 s): ${r.failover
        .map(
          (x) =>
            `${x.store} median stall ${f(x.medianStallMs / 1000, 2)} s, max ${f(x.maxStallMs / 1000, 2)} s over ${x.kills.length} kills`,
        )
        .join("; ")}.`,
    );
  }
  if (r.rate.length) {
    const fast = r.rate.reduce((n, x) => n + x.stepsFasterThanWall, 0);
    bullets.push(
      `**Rate** (global ÷ wall over a steady run of three daemons, target 0.999–1.000): ${r.rate
        .map((x) => `${x.store} ${f(x.rate, 5)} over ${f(x.wallSeconds)} s`)
        .join("; ")}. ${
        fast === 0
          ? "No single step outran wall time."
          : `${fast} steps appeared to outrun wall time (see the full report).`
      } Each 1 s step loses about one write's round trip, time the updater cannot prove has passed (${r.rate
        .map((x) => `${x.store} ${f(x.lostPerStepMs, 2)} ms`)
        .join(", ")} per step), so the rate is about 1 − round trip ÷ interval.`,
    );
  }
  if (r.memory.length) {
    bullets.push(
      `**Memory** of an idle daemon (target ≤ 60 MB): ${r.memory
        .map((m) => `${m.store} ${f(m.rssMb, 1)} MB resident after ${f(m.afterSeconds)} s`)
        .join("; ")}.`,
    );
  }
  const most = r.contention.filter(
    (c) => c.workers === Math.max(...r.contention.map((x) => x.workers)),
  );
  if (most.length) {
    bullets.push(
      `**Contention** (${most[0]?.workers} processes advancing in tight loops): ${most
        .map(
          (c) =>
            `${c.store} ${f(c.advancesPerSec)} advances/s, ${f(c.conflictShare * 100)}% of swaps lost, ${c.starved ? "a process starved" : "none starved"}`,
        )
        .join("; ")}.`,
    );
  }
  out.push(bullets.map((b) => `- ${b}`).join("\n"));
  out.push("![global time against wall time through failovers](bench/results/failover.svg)");
  return out.join("\n\n");
}

/** Replaces what lies between the markers; throws if they are missing. */
export function writeReadme(path: string, section: string): void {
  const text = readFileSync(path, "utf8");
  const start = text.indexOf(START);
  const end = text.indexOf(END);
  if (start < 0 || end < start) throw new Error(`${path} has no ${START} … ${END} markers`);
  const next = `${text.slice(0, start + START.length)}\n${section}\n${text.slice(end)}`;
  writeFileSync(path, next);
}

export const README = fileURLToPath(new URL("../README.md", import.meta.url));
