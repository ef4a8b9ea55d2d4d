/**
 * The README's benchmark section, generated from a full run's JSON and written between
 * the `<!-- bench:start -->` and `<!-- bench:end -->` markers (nothing else is touched).
 * bench/output.ts renders it again from a saved JSON.
 */
import { readFileSync, writeFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { GRACEFUL_TARGET_MS, HANDOVER, KILL_BOUND_MS } from "./handover.js";
import type { Comparison } from "./measure.js";
import { type BenchResults, machineLine, TARGETS } from "./report.js";
import type { StoreRow } from "./stores.js";

const START = "<!-- bench:start -->";
const END = "<!-- bench:end -->";

const f = (n: number, d = 0) =>
  n.toLocaleString("en-US", { minimumFractionDigits: d, maximumFractionDigits: d });
const rate = (n: number) => (n >= 1e6 ? `${f(n / 1e6, 2)} M` : f(n));
const gc = (c: Comparison) => c.sides.find((x) => x.name === "globalclock")?.opsPerSec ?? 0;
const ratio = (c: Comparison) => c.ratios.globalclock ?? Number.NaN;
const show = (x: number) => `${f(x, 2)}${x < TARGETS.ratio ? " ✗" : ""}`;

export function readmeSection(r: BenchResults): string {
  const out: string[] = [];
  const minutes = Math.ceil(r.seconds / 60);
  out.push(
    `From one ${r.mode} run of \`npm run bench\` on ${r.date.slice(0, 10)}: ${machineLine(r)} ` +
      `The machine was shared with other work (CPUs ${f(r.cpuBusyBefore * 100)}% busy before the run began), so read the figures as indicative. ` +
      `Every table, with latencies and method: [bench/results/bench.md](bench/results/bench.md); ` +
      `the raw figures: [bench/results/bench.json](bench/results/bench.json). ` +
      `\`npm run bench\` takes about ${minutes} minutes and starts its own servers; ` +
      "`npm run bench -- --quick` about 9 minutes (its `peers` part needs Debian's `redis-server`).",
  );
  out.push(
    "Operations per second, one in flight, through globalclock and through the raw driver sending the same statement in the same run (target: globalclock ≥ 0.9 × raw):",
  );
  const table = ["| store | `now` /s | ÷ raw | `advance` /s | ÷ raw |", "|---|--:|--:|--:|--:|"];
  for (const s of r.stores) {
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
  if (r.leases.length) {
    out.push(
      "Leases, one operation in flight, through `Leases` and through the raw driver sending the same read and conditional write in the same run: `extend` is a holder renewing its lease, `claim + release` takes a released lease and gives it back (target: ≥ 0.9 × raw):",
    );
    const leases = [
      "| store | `extend` /s | ÷ raw | `claim + release` /s | ÷ raw |",
      "|---|--:|--:|--:|--:|",
    ];
    for (const l of r.leases) {
      leases.push(
        `| ${l.label} | ${rate(gc(l.extend))} | ${show(ratio(l.extend))} | ${rate(gc(l.claimRelease))} | ${show(ratio(l.claimRelease))} |`,
      );
    }
    out.push(leases.join("\n"));
  }
  const bullets: string[] = [];
  if (r.handover.length) {
    bullets.push(
      `**Handover** (${HANDOVER.candidates} processes campaigning on a ${f(HANDOVER.durationMs)} ms lease, cluster maxStep ${HANDOVER.maxStepMs} ms): the leader stopped (it releases) → another leads in ${r.handover
        .map((h) => `${h.store} ${f(h.medianGracefulMs)} ms (max ${f(h.maxGracefulMs)})`)
        .join("; ")} (target < ${GRACEFUL_TARGET_MS} ms); the leader SIGKILLed → ${r.handover
        .map((h) => `${h.store} ${f(h.medianKillMs)} ms (max ${f(h.maxKillMs)})`)
        .join(
          "; ",
        )} (target ≤ lease + maxStep + 1 s = ${f(KILL_BOUND_MS)} ms). For comparison, computed from their defaults (not measured): client-go leader election hands over a released lease at a follower's next retry, up to 2 s (4.4 s with its jitter), and a crashed leader's after about 17 s; node-redlock v5's next retry comes within 300 ms (400 ms with its README's jitter), and a crashed holder's lock only after its TTL.`,
    );
  }
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
      `**Memory** of an idle daemon (target ≤ ${TARGETS.rssMb} MB), and what it adds to a bare Node process that loads the same driver and opens one connection (target < ${TARGETS.overheadMb} MB): ${r.memory
        .map(
          (m) =>
            `${m.store} ${f(m.rssMb, 1)} MB resident after ${f(m.afterSeconds)} s${m.overheadMb === undefined ? "" : `, ${f(m.overheadMb, 1)} MB over ${f(m.baselineRssMb, 1)} MB with ${m.driver} alone`}`,
        )
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
  if (r.scale.length) {
    bullets.push(
      `**Scale** (sessions; ${r.scale[0]?.holders} holders in ${r.scale[0]?.processes} processes, session ttl ${r.scale[0]?.sessionTtl}): store writes per renewal period, renewal p99 and lapses at each number of leases: ${r.scale
        .map(
          (x) =>
            `${x.store} ${x.curve.map((p) => `${f(p.leases)} leases ${f(p.writesPerRenewalPeriod)} writes, ${f(p.renewalP99Ms, 1)} ms, ${p.lapses} lapsed`).join(" → ")}`,
        )
        .join("; ")}. The writes stay one per holder whatever the number of leases.`,
    );
  }
  if (r.outage.length) {
    bullets.push(
      `**Outage** (3 × the TTL, then back; leases that changed holder, globalclock vs a wall-clock lease table on the same store): ${r.outage
        .map(
          (x) =>
            `${x.store}, ${x.kind}: ${x.changedHolder} of ${x.leases} vs ${x.baselineChangedHolder} of ${x.leases}`,
        )
        .join("; ")}.`,
    );
  }
  const peerOps = r.peers?.ops ?? [];
  if (peerOps.length) {
    bullets.push(
      `**Peers** (ops/s, one in flight): ${peerOps
        .map((x) => `${x.side} on ${x.store} ${f(x.opsPerSecond)} (${x.op})`)
        .join(
          "; ",
        )}. Only globalclock hands out a fencing token per lease and judges expiry by a time no wall clock moves; see the full report for crash handover times and what each side guarantees.`,
    );
  }
  out.push(bullets.map((b) => `- ${b}`).join("\n"));
  out.push("![global time against wall time through failovers](bench/results/failover.svg)");
  if (r.outage.length) {
    out.push("![leases that changed holder through an outage](bench/results/outage.svg)");
  }
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
