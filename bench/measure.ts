/**
 * Sequential timing loops: one operation in flight at a time, so the figure is the
 * latency-bound rate a single caller gets. Sides are measured in short alternating
 * rounds, so noise from a shared machine falls on every side alike.
 */

/** One side of a comparison: a synchronous call (better-sqlite3, a variable) or a promise. */
export type Operation =
  | { kind: "sync"; run: () => unknown }
  | { kind: "async"; run: () => Promise<unknown> };

export interface Side {
  name: string;
  op: Operation;
  /** Called (untimed) before each round, e.g. to re-read the clock another side moved. */
  before?: () => Promise<void>;
}

export interface SideResult {
  name: string;
  ops: number;
  seconds: number;
  opsPerSec: number;
  /** Latency percentiles in microseconds, over the timed operations. */
  p50Us: number;
  p99Us: number;
  timedOps: number;
}

export interface Comparison {
  sides: SideResult[];
  /** For each later side, the median over rounds of (its ops/s ÷ the first side's ops/s). */
  ratios: Record<string, number>;
  rounds: number;
  roundMs: number;
}

export interface CompareOptions {
  /** Rounds per side (after one warm-up round each). */
  rounds: number;
  roundMs: number;
  /**
   * Time every n-th operation. 1 for network stores; more for in-process ones, where two
   * clock reads per operation would cost as much as the operation.
   */
  timeEvery: number;
  /** How long each side runs, uncounted, before the rounds. Default one round, at most 200 ms. */
  warmMs?: number;
}

interface Round {
  ops: number;
  ms: number;
  latencies: number[];
}

async function runRound(op: Operation, ms: number, timeEvery: number): Promise<Round> {
  const latencies: number[] = [];
  let ops = 0;
  const start = performance.now();
  const end = start + ms;
  let now = start;
  if (op.kind === "sync") {
    const run = op.run;
    while (now < end) {
      for (let i = 1; i < timeEvery; i++) run();
      const t0 = performance.now();
      run();
      now = performance.now();
      latencies.push((now - t0) * 1000);
      ops += timeEvery;
    }
  } else {
    const run = op.run;
    while (now < end) {
      for (let i = 1; i < timeEvery; i++) await run();
      const t0 = performance.now();
      await run();
      now = performance.now();
      latencies.push((now - t0) * 1000);
      ops += timeEvery;
    }
  }
  return { ops, ms: performance.now() - start, latencies };
}

export function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  const index = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[index] as number;
}

export function median(values: readonly number[]): number {
  return percentile(
    [...values].sort((a, b) => a - b),
    50,
  );
}

/**
 * Measures each side for `rounds` rounds of `roundMs`, rotating which side goes first,
 * after a warm-up round per side that is not counted.
 */
export async function compare(
  sides: readonly Side[],
  options: CompareOptions,
): Promise<Comparison> {
  const { rounds, roundMs, timeEvery } = options;
  for (const side of sides) {
    await side.before?.();
    await runRound(side.op, options.warmMs ?? Math.min(roundMs, 200), timeEvery);
  }
  const perSide = sides.map(() => [] as Round[]);
  for (let r = 0; r < rounds; r++) {
    for (let k = 0; k < sides.length; k++) {
      const i = (r + k) % sides.length;
      const side = sides[i] as Side;
      await side.before?.();
      (perSide[i] as Round[]).push(await runRound(side.op, roundMs, timeEvery));
    }
  }
  const results = sides.map((side, i) => summarize(side.name, perSide[i] as Round[]));
  const ratios: Record<string, number> = {};
  const base = perSide[0] as Round[];
  for (let i = 1; i < sides.length; i++) {
    const mine = perSide[i] as Round[];
    ratios[(sides[i] as Side).name] = median(
      mine.map(
        (round, r) => round.ops / round.ms / ((base[r] as Round).ops / (base[r] as Round).ms),
      ),
    );
  }
  return { sides: results, ratios, rounds, roundMs };
}

function summarize(name: string, rounds: readonly Round[]): SideResult {
  const ops = rounds.reduce((n, r) => n + r.ops, 0);
  const ms = rounds.reduce((n, r) => n + r.ms, 0);
  const latencies = rounds.flatMap((r) => r.latencies).sort((a, b) => a - b);
  return {
    name,
    ops,
    seconds: ms / 1000,
    opsPerSec: ops / (ms / 1000),
    p50Us: percentile(latencies, 50),
    p99Us: percentile(latencies, 99),
    timedOps: latencies.length,
  };
}
