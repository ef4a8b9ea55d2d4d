/** Recording reads for history checks; the checker itself is src/history.ts (the demo uses it too). */
import type { Sample } from "../../src/history.js";

export { checkHistory, type Sample } from "../../src/history.js";

export interface RecordOptions {
  /** Stops recording. */
  signal: AbortSignal;
  /** Pause between reads, in ms. Default 1. */
  intervalMs?: number;
  /** Names the reads in violation messages. */
  source?: string;
}

/**
 * Reads the clock until `signal` aborts, timing each read on the monotonic clock.
 * A failed read ends the recording with that error, unless the signal caused it.
 */
export async function recordReads(
  read: (signal: AbortSignal) => Promise<bigint>,
  options: RecordOptions,
): Promise<Sample[]> {
  const { signal, intervalMs = 1, source } = options;
  const samples: Sample[] = [];
  while (!signal.aborted) {
    const before = process.hrtime.bigint();
    let global: bigint;
    try {
      global = await read(signal);
    } catch (err) {
      if (signal.aborted) break;
      throw err;
    }
    const after = process.hrtime.bigint();
    samples.push(
      source === undefined ? { before, after, global } : { before, after, global, source },
    );
    if (intervalMs > 0) await new Promise((r) => setTimeout(r, intervalMs));
  }
  return samples;
}

/** Samples as JSON-safe rows (bigints as decimal strings), for passing between processes. */
export function samplesToJson(samples: readonly Sample[]): string[][] {
  return samples.map((s) => [s.before.toString(), s.after.toString(), s.global.toString()]);
}

/** The inverse of samplesToJson. */
export function samplesFromJson(rows: readonly string[][], source?: string): Sample[] {
  return rows.map(([before, after, global]) => {
    const s: Sample = {
      before: BigInt(before ?? ""),
      after: BigInt(after ?? ""),
      global: BigInt(global ?? ""),
    };
    if (source !== undefined) s.source = source;
    return s;
  });
}
