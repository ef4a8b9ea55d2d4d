/**
 * An observer in the benchmark's process: reads the clock every few milliseconds, timing
 * each read on the monotonic clock, and turns the reads into the moments global time
 * changed, each bracketed by the reads around it.
 */
import { checkHistory, openStore, Reader, type Sample } from "../src/index.js";

/** A new stored value: it was committed after `lo` and before `hi` (monotonic ns). */
export interface Change {
  global: bigint;
  lo: bigint;
  hi: bigint;
}

export class Observer {
  readonly samples: Sample[] = [];
  readonly #reader: Reader;
  readonly #stop = new AbortController();
  readonly #done: Promise<void>;

  private constructor(reader: Reader, intervalMs: number) {
    this.#reader = reader;
    this.#done = this.#loop(intervalMs);
    this.#done.catch(() => {}); // stop() reports it
  }

  static async start(url: string, intervalMs = 5): Promise<Observer> {
    const store = await openStore(url);
    return new Observer(new Reader(store, { onClose: () => store.close() }), intervalMs);
  }

  latest(): Sample | undefined {
    return this.samples.at(-1);
  }

  /** Waits until a read sees a time greater than `than`; resolves with that read. */
  async greaterThan(than: bigint, timeoutMs = 30_000): Promise<Sample> {
    const deadline = Date.now() + timeoutMs;
    for (let from = 0; ; ) {
      for (; from < this.samples.length; from++) {
        const s = this.samples[from] as Sample;
        if (s.global > than) return s;
      }
      if (Date.now() > deadline)
        throw new Error(`global time did not pass ${than} in ${timeoutMs} ms`);
      await new Promise((r) => setTimeout(r, 5));
    }
  }

  /** Waits until global time has changed `count` more times. */
  async changes(count: number, timeoutMs = 30_000): Promise<void> {
    let seen = this.latest()?.global ?? -1n;
    for (let i = 0; i < count; i++) seen = (await this.greaterThan(seen, timeoutMs)).global;
  }

  async stop(): Promise<Sample[]> {
    this.#stop.abort();
    await this.#done;
    await this.#reader.close();
    return this.samples;
  }

  async #loop(intervalMs: number): Promise<void> {
    const signal = this.#stop.signal;
    while (!signal.aborted) {
      const before = process.hrtime.bigint();
      try {
        const global = await this.#reader.now(signal);
        this.samples.push({ before, after: process.hrtime.bigint(), global });
      } catch (err) {
        if (signal.aborted) return;
        throw err;
      }
      await new Promise((r) => setTimeout(r, intervalMs));
    }
  }
}

/** The changes in a list of reads made one after another by one observer. */
export function changesOf(samples: readonly Sample[]): Change[] {
  const out: Change[] = [];
  for (let i = 1; i < samples.length; i++) {
    const prev = samples[i - 1] as Sample;
    const s = samples[i] as Sample;
    if (s.global !== prev.global) out.push({ global: s.global, lo: prev.before, hi: s.after });
  }
  return out;
}

export const mid = (c: Change): bigint => (c.lo + c.hi) / 2n;

/** Invariants 1 and 3 on the observer's reads (docs/design.md, "The invariants"); an empty list means they held. */
export function violations(samples: readonly Sample[], maxStep: bigint): string[] {
  return checkHistory(samples, maxStep);
}
