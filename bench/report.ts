/** The results of one run as JSON, and as the Markdown tables written from it. */

import type { ContentionRow } from "./contention.js";
import { STARVE_MS } from "./contention.js";
import type { FailoverResult } from "./failover.js";
import { comparisonHeader, comparisonLine, mark, num, pct, TARGETS } from "./format.js";
import type { HandoverResult } from "./handover.js";
import type { LeaseRow } from "./leases.js";
import type { Load, Machine } from "./machine.js";
import type { MemoryRow } from "./memory.js";
import { type OutageRow, outageTable } from "./outage.js";
import { type PeersResult, peersTable } from "./peers.js";
import type { RateResult } from "./rate.js";
import {
  anchorsTable,
  HANDOVER_SETTINGS,
  handoverTable,
  LEASE_METHOD,
  leasesNotes,
  leasesTable,
} from "./report-leases.js";
import { type ScaleRow, scaleTable } from "./scale.js";
import type { StoreRow } from "./stores.js";

export { TARGETS };

export interface BenchResults {
  mode: "full" | "quick";
  date: string;
  seconds: number;
  machine: Machine;
  /** The whole machine's CPU busy share in the seconds before the run began. */
  cpuBusyBefore: number;
  load: Load[];
  stores: StoreRow[];
  leases: LeaseRow[];
  contention: ContentionRow[];
  failover: FailoverResult[];
  handover: HandoverResult[];
  rate: RateResult[];
  memory: MemoryRow[];
  /** Many holders and leases through sessions (bench/scale.ts). */
  scale: ScaleRow[];
  /** The store down, or every updater stopped, for 3 × the TTL (bench/outage.ts). */
  outage: OutageRow[];
  /** etcd3's Lock and Election, node-redlock on Redis, beside globalclock (bench/peers.ts). */
  peers: PeersResult | undefined;
  skipped: Record<string, string>;
}

export function machineLine(r: BenchResults): string {
  const m = r.machine;
  const stores = Object.values(m.stores).join(", ");
  const drivers = Object.entries(m.drivers)
    .map(([k, v]) => `${k} ${v}`)
    .join(", ");
  return (
    `${m.cpus} CPUs (${m.cpuModel}), ${m.memoryGb} GB, ${m.os}, Node ${m.node}; ` +
    `${stores}; drivers ${drivers}${m.commit ? `; commit ${m.commit}` : ""}.`
  );
}

export function loadLine(r: BenchResults): string {
  const busy = r.load.map((l) => `${l.section} ${pct(l.cpuBusy)}`).join(", ");
  return (
    `The machine is shared: before the run its CPUs were ${pct(r.cpuBusyBefore)} busy; ` +
    `during each part (the benchmark's own processes included): ${busy}.`
  );
}

export function storesTable(r: BenchResults): string {
  const lines = comparisonHeader();
  for (const s of r.stores) {
    lines.push(
      comparisonLine(s.label, "now", s.now),
      comparisonLine(s.label, "advance", s.advance),
    );
  }
  return lines.join("\n");
}

export function contentionTable(r: BenchResults): string {
  const lines = [
    "| store | processes | advances/s | conflicts/min | lost swaps | fewest won (÷ even split) | longest drought | starves? | clock moved by exactly the advances won |",
    "|---|--:|--:|--:|--:|--:|--:|---|---|",
  ];
  for (const c of r.contention) {
    lines.push(
      `| ${c.store} | ${c.workers} | ${num(c.advancesPerSec)} | ${num(c.conflictsPerMin)} | ${pct(c.conflictShare)} | ${num(c.minFairShare, 2)} | ${num(c.longestDroughtMs)} ms | ${c.starved ? "**yes**" : "no"} | ${c.consistent ? "yes" : "**no**"}${c.errors ? ` (${c.errors} errors)` : ""} |`,
    );
  }
  return lines.join("\n");
}

export function failoverTable(r: BenchResults): string {
  const lines = [
    "| store | kills | median stall | max stall (target ≤ 3 s) | median / max kill → next advance | takeover step | spurious takeovers | invariant 1 and 3 violations |",
    "|---|--:|--:|--:|--:|--:|--:|--:|",
  ];
  for (const f of r.failover) {
    const steps = f.kills.map((k) => k.takeoverStepMs);
    lines.push(
      `| ${f.store} | ${f.kills.length} | ${num(f.medianStallMs)} ms | ${num(f.maxStallMs)} ms ${mark(f.maxStallMs <= TARGETS.stallMs)} | ${num(f.medianKillToResumeMs)} / ${num(f.maxKillToResumeMs)} ms | ${num(Math.min(...steps))}–${num(Math.max(...steps))} ms | ${f.spuriousTakeovers} | ${f.violations.length} in ${num(f.reads)} reads |`,
    );
  }
  return lines.join("\n");
}

export function rateTable(r: BenchResults): string {
  const lines = [
    "| store | steady run | global ÷ wall (target 0.999–1.000) | bounds | lost per 1 s step | steps faster than wall | advances / conflicts / takeovers / errors | invariant 1 and 3 violations |",
    "|---|--:|--:|--:|--:|--:|--:|--:|",
  ];
  for (const x of r.rate) {
    const ok = x.rateHigh <= TARGETS.rateHigh + 1e-12 && x.rate >= TARGETS.rateLow;
    lines.push(
      `| ${x.store} | ${num(x.wallSeconds, 1)} s | ${num(x.rate, 5)} ${mark(ok)} | ${num(x.rateLow, 5)}–${num(x.rateHigh, 5)} | ${num(x.lostPerStepMs, 2)} ms | ${x.stepsFasterThanWall} of ${x.steps} | ${x.advances} / ${x.conflicts} / ${x.takeovers} / ${x.errors} | ${x.violations.length} in ${num(x.reads)} reads |`,
    );
  }
  return lines.join("\n");
}

export function memoryTable(r: BenchResults): string {
  const lines = [
    `| store | after | resident (kernel) | resident (daemon's metric) | target ≤ ${TARGETS.rssMb} MB | bare Node with the driver and one connection | daemon's overhead (target < ${TARGETS.overheadMb} MB) |`,
    "|---|--:|--:|--:|---|--:|--:|",
  ];
  for (const m of r.memory) {
    // Runs saved before the baseline existed have no baseline figures.
    const baseline =
      m.baselineRssMb === undefined ? "—" : `${num(m.baselineRssMb, 1)} MB (${m.driver})`;
    const overhead =
      m.overheadMb === undefined
        ? "—"
        : `${num(m.overheadMb, 1)} MB ${mark(m.overheadMb < TARGETS.overheadMb)}`;
    lines.push(
      `| ${m.store} | ${num(m.afterSeconds)} s | ${num(m.rssMb, 1)} MB | ${m.metricRssMb === undefined ? "—" : `${num(m.metricRssMb, 1)} MB`} | ${mark(m.rssMb <= TARGETS.rssMb)} | ${baseline} | ${overhead} |`,
    );
  }
  return lines.join("\n");
}

export const METHOD = [
  "Side by side: one operation in flight at a time (the latency-bound, like-for-like comparison), in alternating rounds of the same run so that noise falls on both sides; the ratio is the median over rounds. `raw` sends the same statement, txn or command the store sends, directly with the driver (for memory: a bigint variable). better-sqlite3 and the variable are synchronous; `raw awaited` is the same call inside an awaited async function, the ceiling for any promise-based API. In-process stores time every 16th operation for the percentiles, network stores every one.",
  `Contention: each process runs an Updater advancing 1 ms per call in a tight loop; a process starves if it wins no swap for ${STARVE_MS} ms or more.`,
  "Failover: three `globalclock run` daemons with default options (interval 1 s, takeover after 2 s, max step 1.5 s); the active one is SIGKILLed at a random moment of its interval, and a replacement is started once another has taken over. An observer reads the clock every 5 ms; the stall is the longest time between two changes it saw around the kill.",
  "Rate: three daemons with default options; global elapsed ÷ wall elapsed between the first and last change in the steady run, each change bracketed by the observer's reads (the bounds). The updater adds only time elapsed since its last write was acknowledged, so each interval loses about one round trip: the rate is about 1 − round trip ÷ interval.",
  "Memory: one daemon alone on its clock, serving /metrics, read after the stated time; beside it, started and read at the same moments, a bare `node` process that imports the same driver, opens one connection, uses it once and idles (bench/memory-baseline.mjs). The overhead is the difference: the CLI, logger, metrics, HTTP server, worker and store code.",
];

export function markdown(
  r: BenchResults,
  chart: string | undefined,
  outageSvg?: string | undefined,
): string {
  const parts = [
    `# globalclock benchmarks — ${r.mode} run, ${r.date.slice(0, 10)}`,
    r.mode === "quick"
      ? "**Quick mode**: short rounds, few kills and a short steady run; indicative only."
      : "",
    `Machine: ${machineLine(r)}`,
    loadLine(r),
    "## Every store against its raw driver",
    storesTable(r),
    [
      ...r.stores.filter((s) => s.note).map((s) => `- ${s.label}: ${s.note}.`),
      ...r.stores.map(
        (s) => `- ${s.label}: raw reads with ${s.readsWith}; advances with ${s.advancesWith}.`,
      ),
    ].join("\n"),
    "## Leases against the raw driver",
    leasesTable(r.leases),
    leasesNotes(r.leases),
    "## Contention",
    contentionTable(r),
    "## Failover",
    failoverTable(r),
    chart ? `![global time against wall time through failovers](${chart})` : "",
    "## Handover of a lease",
    handoverTable(r.handover),
    HANDOVER_SETTINGS,
    "What two anchors' defaults imply (computed from their defaults and retry loops, not measured):",
    anchorsTable(),
    "## Rate",
    rateTable(r),
    "## Memory",
    memoryTable(r),
    r.scale.length ? "## Scale: many holders, many leases" : "",
    r.scale.length ? scaleTable(r.scale) : "",
    r.outage.length ? "## Outage: the store down, or every updater stopped" : "",
    r.outage.length ? outageTable(r.outage) : "",
    outageSvg ? `![leases that changed holder through an outage](${outageSvg})` : "",
    r.peers ? "## Peers: what users would pick instead" : "",
    r.peers ? peersTable(r.peers) : "",
    "## Not measured",
    Object.entries(r.skipped)
      .map(([k, v]) => `- ${k}: ${v}`)
      .join("\n") || "- nothing",
    "## Method",
    [...METHOD, ...LEASE_METHOD].map((m) => `- ${m}`).join("\n"),
    `Run time: ${num(r.seconds / 60, 1)} min.`,
  ];
  return `${parts.filter((p) => p !== "").join("\n\n")}\n`;
}
