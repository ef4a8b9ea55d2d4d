/**
 * Checks a recorded history of clock reads against the invariants of docs/design.md ("The invariants"):
 *
 * 1. Monotonic: a read that began after another ended never sees a smaller time.
 * 3. No catch-up jumps: for any two reads with g1 < g2,
 *    `g2 − g1 ≤ (after2 − before1) + maxStep`.
 *
 * `before` and `after` are `process.hrtime.bigint()` values taken around each read. On
 * one machine that is CLOCK_MONOTONIC, shared by every process, so reads recorded by
 * different processes can be compared directly. Invariant 2 (rate ≤ 1 between writes) is
 * what makes 3 hold; over a history of reads, 3 is the form that can be checked.
 *
 * Both checks run in O(n log n), so histories of many thousand reads are cheap.
 */

export interface Sample {
  /** Monotonic time (ns) just before the read was sent. */
  before: bigint;
  /** Monotonic time (ns) just after the answer arrived. */
  after: bigint;
  /** The global time the read returned. */
  global: bigint;
  /** Who made the read, for messages: "observer-1", "child 2", … */
  source?: string;
}

/** At most this many violations are listed; a final line counts the rest. */
const MAX_LISTED = 20;

/** Returns the violations found, each one line; an empty list means the history is fine. */
export function checkHistory(samples: readonly Sample[], maxStep: bigint): string[] {
  const out: string[] = [];
  let hidden = 0;
  const report = (line: string) => {
    if (out.length < MAX_LISTED) out.push(line);
    else hidden++;
  };
  for (const s of samples) {
    if (s.after < s.before) report(`${show(s)}: ends before it begins`);
  }
  checkMonotonic(samples, report);
  checkNoJumps(samples, maxStep, report);
  if (hidden > 0) out.push(`… and ${hidden} more violations`);
  return out;
}

/** Invariant 1: for every read b, no read that ended before b began saw a greater time. */
function checkMonotonic(samples: readonly Sample[], report: (line: string) => void): void {
  const byAfter = [...samples].sort((x, y) => cmp(x.after, y.after));
  const byBefore = [...samples].sort((x, y) => cmp(x.before, y.before));
  // Sweep: `top` is the read with the greatest time among those ended before b began.
  let top: Sample | undefined;
  let i = 0;
  for (const b of byBefore) {
    while (i < byAfter.length && (byAfter[i] as Sample).after < b.before) {
      const a = byAfter[i] as Sample;
      if (!top || a.global > top.global) top = a;
      i++;
    }
    if (top && b.global < top.global) {
      report(
        `decrease: ${show(b)} saw ${b.global} after ${show(top)} had seen ${top.global} ` +
          `(${top.global - b.global}ns back)`,
      );
    }
  }
}

/**
 * Invariant 3. For a read b, the worst partner is the read a with a smaller time that
 * maximises `a.before − a.global`; b violates iff
 * `(b.global − b.after) + max(a.before − a.global) > maxStep`.
 */
function checkNoJumps(
  samples: readonly Sample[],
  maxStep: bigint,
  report: (line: string) => void,
): void {
  const byGlobal = [...samples].sort((x, y) => cmp(x.global, y.global));
  let best: Sample | undefined; // among reads with a strictly smaller time
  let group: Sample | undefined; // best among the current run of equal times
  for (let k = 0; k < byGlobal.length; k++) {
    const b = byGlobal[k] as Sample;
    if (k > 0 && b.global !== (byGlobal[k - 1] as Sample).global) {
      if (group && (!best || slack(group) > slack(best))) best = group;
      group = undefined;
    }
    if (best) {
      const jump = b.global - best.global;
      const allowed = b.after - best.before + maxStep;
      if (jump > allowed) {
        report(
          `jump: global advanced ${jump}ns between ${show(best)} and ${show(b)}, ` +
            `but only ${b.after - best.before}ns passed (+ maxStep ${maxStep}ns)`,
        );
      }
    }
    if (!group || slack(b) > slack(group)) group = b;
  }
}

const slack = (s: Sample): bigint => s.before - s.global;
const cmp = (x: bigint, y: bigint): number => (x < y ? -1 : x > y ? 1 : 0);
const show = (s: Sample): string =>
  `read [${s.before}, ${s.after}]${s.source ? ` by ${s.source}` : ""}`;
