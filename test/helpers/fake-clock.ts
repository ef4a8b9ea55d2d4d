import type { WorkerClock } from "../../src/worker-clock.js";

interface Sleeper {
  at: bigint;
  wake: (fired: boolean) => void;
}

/** A monotonic clock that moves only when the test says so. Timers fire on `advance`. */
export class FakeClock implements WorkerClock {
  #now = 0n;
  #sleepers: Sleeper[] = [];

  now(): bigint {
    return this.#now;
  }

  sleep(ns: bigint, signal: AbortSignal): Promise<boolean> {
    if (signal.aborted) return Promise.resolve(false);
    return new Promise((resolve) => {
      const sleeper: Sleeper = {
        at: this.#now + ns,
        wake: (fired) => {
          signal.removeEventListener("abort", onAbort);
          resolve(fired);
        },
      };
      const onAbort = () => {
        this.#sleepers = this.#sleepers.filter((s) => s !== sleeper);
        sleeper.wake(false);
      };
      signal.addEventListener("abort", onAbort, { once: true });
      this.#sleepers.push(sleeper);
    });
  }

  /** How many timers are pending. */
  get pending(): number {
    return this.#sleepers.length;
  }

  /**
   * Moves time forward by `ms` (or `ns` when a bigint) in one jump, as a late timer or a
   * paused process sees it, fires every timer due, and lets the code under test run.
   */
  async advance(by: number | bigint): Promise<void> {
    this.#now += typeof by === "bigint" ? by : BigInt(Math.round(by * 1e6));
    await settle();
    for (;;) {
      const due = this.#sleepers.filter((s) => s.at <= this.#now);
      if (due.length === 0) break;
      this.#sleepers = this.#sleepers.filter((s) => s.at > this.#now);
      for (const s of due) s.wake(true);
      await settle();
    }
  }

  /** Moves forward in small ticks, firing each timer at (about) its own deadline. */
  async run(totalMs: number, tickMs = 10): Promise<void> {
    for (let t = 0; t < totalMs; t += tickMs) await this.advance(tickMs);
  }
}

/** Lets pending promise callbacks and immediates run. */
export async function settle(): Promise<void> {
  for (let i = 0; i < 10; i++) await new Promise((resolve) => setImmediate(resolve));
}
