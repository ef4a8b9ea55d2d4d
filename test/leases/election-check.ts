/**
 * What election-faults.ts records of a run, and the checks made on it (pure, so that
 * election-checker.test.ts can show each one catching an injected fault).
 */
import type { Write } from "../helpers/guarded.js";

const S = 1_000_000_000n;

export type Fault = "store" | "kill" | "term" | "hang" | "cut" | "freeze";

/** One leader's term: a holder and the token it led with. */
export interface Term {
  holder: string;
  token: bigint;
}

/** A term as the store showed it, times in global nanoseconds (the last expiry seen). */
export interface Tenure extends Term {
  start: bigint;
  expiry: bigint;
}

/** What a run recorded, for checkElection. */
export interface ElectionRecord {
  /** Every write the guarded resource saw, accepted or not, by arrival. */
  writes: readonly Write[];
  /** Terms (`termKey`) whose whole process was frozen while it led. */
  frozen: ReadonlySet<string>;
  /** Leaders that stopped without releasing (killed, cut off, frozen): their leases expired. */
  lapsed: readonly Term[];
  /** Each candidate's "leader" line: when (CLOCK_MONOTONIC) it learnt it led, with which token. */
  elections: ReadonlyArray<Term & { at: bigint }>;
  /** The lease's holders as the store showed them, in order. */
  tenures: readonly Tenure[];
  /** The cluster's maxStep. */
  maxStep: bigint;
  /** The fault that ended each term it struck (`termKey`), for the log. */
  struck: ReadonlyMap<string, Fault>;
}

export interface ElectionScenario {
  /** The store; every `127.0.0.1:port` in it is reached through proxies of each candidate's own. */
  url: string;
  /** The faults to strike, in an order the seed draws. */
  faults: readonly Fault[];
  /** Fails the store under everyone and mends it ("store" faults; `round` counts from 0). */
  storeFault?: (round: number) => Promise<void>;
  log: (line: string) => void;
  seed?: number;
  /** Candidates that act for maxStep past their lease's signal: a deadline without −maxStep. */
  brokenDeadline?: boolean;
}

export const termKey = (t: Term) => `${t.holder}#${t.token}`;

/** Writes, refused writes, terms and how each handover went, for the log. */
export function summary(r: ElectionRecord): string[] {
  const terms = termsByWrites(r.writes);
  const handovers = terms.slice(1).map((b, i) => {
    const a = terms[i] as (typeof terms)[number];
    const gap = Number(b.from - a.to) / 1e6;
    return `${termKey(a)}→${termKey(b)} ${gap.toFixed(1)} ms (${r.struck.get(termKey(a)) ?? "-"})`;
  });
  const refused = r.writes.filter((w) => !w.accepted).length;
  return [
    `${r.writes.length} writes, ${refused} refused, ${terms.length} terms`,
    `handovers (from a leader's last write to the next one's first; the fault): ${handovers.join(", ")}`,
  ];
}

interface WriteTerm extends Term {
  from: bigint;
  to: bigint;
  writes: Write[];
}

/** Terms as the resource saw them: every write, accepted or not, by holder and token, in order of the first. */
function termsByWrites(writes: readonly Write[]): WriteTerm[] {
  const terms = new Map<string, WriteTerm>();
  for (const w of writes) {
    const term = terms.get(termKey(w));
    if (term) {
      term.to = w.at;
      term.writes.push(w);
    } else
      terms.set(termKey(w), {
        holder: w.holder,
        token: w.token,
        from: w.at,
        to: w.at,
        writes: [w],
      });
  }
  return [...terms.values()].sort((a, b) => (a.from < b.from ? -1 : a.from > b.from ? 1 : 0));
}

/**
 * Violations in a run's record, none when the election was safe:
 * - a leader wrote after a later leader's (greater token's) first write, unless its process
 *   was frozen: then every such late write must have been refused;
 * - a write was refused from a term whose process was never frozen (a live leader's);
 * - no write was refused at all: the fencing was never exercised;
 * - tokens did not grow: each new leader (by its "leader" line, and as the store showed the
 *   holders) has a greater token than the one before;
 * - after a leader stopped without releasing, the next started no earlier than its expiry,
 *   and within maxStep and two seconds of it, in global time;
 * - fewer than two terms: nothing was tested.
 */
export function checkElection(r: ElectionRecord): string[] {
  const out: string[] = [];
  const terms = termsByWrites(r.writes);
  for (const a of terms) {
    const live = !r.frozen.has(termKey(a));
    const refused = a.writes.filter((w) => !w.accepted).length;
    if (live && refused > 0)
      out.push(`${termKey(a)} had writes refused (${refused}), and its process was never frozen`);
    for (const b of terms) {
      if (b.token <= a.token) continue;
      const late = a.writes.filter((w) => w.at >= b.from && (live || w.accepted));
      const last = late.at(-1);
      if (last)
        out.push(
          `${termKey(a)} wrote after ${termKey(b)} began (${late.length} writes, the last ${Number(last.at - b.from) / 1e6} ms after)${live ? "" : ", accepted though its token was old"}`,
        );
    }
  }
  if (!r.writes.some((w) => !w.accepted))
    out.push("no write was refused: the fencing was never exercised");
  if (new Set(terms.map((t) => t.token)).size < 2)
    out.push("the lease never changed hands: nothing was tested");
  const elections = [...r.elections].sort((a, b) => (a.at < b.at ? -1 : a.at > b.at ? 1 : 0));
  for (const list of [elections, r.tenures]) {
    for (let i = 1; i < list.length; i++) {
      const [a, b] = [list[i - 1] as Term, list[i] as Term];
      if (b.token > a.token || (b.token === a.token && b.holder === a.holder)) continue;
      out.push(`${termKey(b)} led after ${termKey(a)}: tokens must grow`);
    }
  }
  for (const gone of r.lapsed) {
    const at = r.tenures.findIndex((t) => t.token === gone.token);
    const [dead, next] = [r.tenures[at], r.tenures[at + 1]];
    if (!dead || !next) {
      out.push(`no leader after ${termKey(gone)} stopped, as the store showed it`);
      continue;
    }
    const after = next.start - dead.expiry;
    if (after < 0n) out.push(`${termKey(next)} started before ${termKey(dead)}'s expiry`);
    if (after > r.maxStep + 2n * S)
      out.push(
        `${termKey(next)} started ${after} ns of global time after ${termKey(dead)}'s expiry`,
      );
  }
  return out;
}
