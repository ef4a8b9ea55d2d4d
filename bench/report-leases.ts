/** The Markdown of the lease parts: leases against the raw driver, and handover. */
import { ANCHORS } from "./anchors.js";
import { comparisonHeader, comparisonLine, mark, num } from "./format.js";
import { GRACEFUL_TARGET_MS, HANDOVER, type HandoverResult, KILL_BOUND_MS } from "./handover.js";
import type { LeaseRow } from "./leases.js";
import { median } from "./measure.js";

export function leasesTable(rows: readonly LeaseRow[]): string {
  const lines = comparisonHeader();
  for (const l of rows) {
    lines.push(
      comparisonLine(l.label, "extend", l.extend),
      comparisonLine(l.label, "claim + release", l.claimRelease),
    );
  }
  return lines.join("\n");
}

export function leasesNotes(rows: readonly LeaseRow[]): string {
  return rows.map((l) => `- ${l.label}: per claim, raw sends ${l.sends}.`).join("\n");
}

export function handoverTable(rows: readonly HandoverResult[]): string {
  const lines = [
    `| store | a follower learns of a release by | stops | SIGTERM → next leader, median / max (target < ${GRACEFUL_TARGET_MS} ms) | of which the leader's release, median | from the signal, median | kills | SIGKILL → next leader, median / max (target ≤ ${num(KILL_BOUND_MS)} ms) | next leader after the dead one's deadline, least | tokens grew |`,
    "|---|---|--:|--:|--:|--:|--:|--:|--:|---|",
  ];
  for (const h of rows) {
    const fromSignal = median(h.graceful.map((g) => g.fromSignalMs ?? Number.NaN));
    const release = median(h.graceful.map((g) => g.releaseMs ?? Number.NaN));
    const after = Math.min(...h.kills.map((k) => k.afterDeadlineMs ?? Number.NaN));
    lines.push(
      `| ${h.store} | ${h.wakes} | ${h.graceful.length} | ${num(h.medianGracefulMs)} / ${num(h.maxGracefulMs)} ms ${mark(h.maxGracefulMs < GRACEFUL_TARGET_MS)} | ${num(release)} ms | ${num(fromSignal)} ms | ${h.kills.length} | ${num(h.medianKillMs)} / ${num(h.maxKillMs)} ms ${mark(h.maxKillMs <= KILL_BOUND_MS)} | ${num(after)} ms | ${h.tokensGrew ? "yes" : "**no**"} |`,
    );
  }
  return lines.join("\n");
}

export const HANDOVER_SETTINGS = `Settings: ${HANDOVER.candidates} campaigner processes on one lease of ${num(HANDOVER.durationMs)} ms (renewed every ${HANDOVER.renewMs} ms), cluster maxStep ${HANDOVER.maxStepMs} ms, each campaigner running a stand-by clock worker stepping every ${HANDOVER.clockIntervalMs} ms (the SIGKILLed leader is often the clock's active worker too: a stand-by then takes over after two intervals, and the clock's stall is never made up). The SIGKILL target is the lease + maxStep + 1 s.`;

export function anchorsTable(): string {
  const lines = [
    "| anchor | defaults | graceful release → next leader | crash → next leader | from |",
    "|---|---|---|---|---|",
  ];
  for (const a of ANCHORS) {
    lines.push(`| ${a.name} | ${a.defaults} | ${a.graceful} | ${a.crash} | ${a.source} |`);
  }
  return lines.join("\n");
}

export const LEASE_METHOD = [
  "Leases: through `Leases` on one store, against the raw driver sending what the store's lease records send for one claim: one read of the clock, maxStep and the lease together, then one write conditional on the version read (the statements are listed under the table). `extend` is the holder's `lease.extend()` again and again (what a leader's renewal and a claim by the same holder send); `claim + release` claims a released lease (a new token) and releases it, two reads and two writes a round on each side: a fresh name each time would leave each claim's deadline timer running on the globalclock side alone and grow the table. Nothing advances the clock meanwhile, and every lease lasts an hour. Each side first runs uncounted (1.5 s, quick 0.5 s): a new connection and code not yet optimised are slower for the first second or so.",
  "Handover: SIGTERM or SIGKILL to the leader at a random moment of its renewal period, once every live follower has read the lease; times are the processes' own CLOCK_MONOTONIC lines (the SIGTERM row counts from the leader's `stopping` line, before it releases). A new candidate replaces the old leader before the next round.",
];
