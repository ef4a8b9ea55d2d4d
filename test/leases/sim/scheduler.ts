/**
 * Simulated time for the lease simulations: one real-time line (ns), events run in time
 * order, and processes whose monotonic clocks have their own origin and rate and that can
 * be frozen (SIGSTOP): nothing of theirs runs until they thaw.
 */
import type { WorkerClock } from "../../../src/worker-clock.js";

/** mulberry32: a small, good-enough PRNG for schedules. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

interface Event {
  at: bigint;
  seq: number;
  fn: () => void;
}

export class Sim {
  now = 0n;
  readonly random: () => number;
  #seq = 0;
  readonly #queue: Event[] = [];
  /** Events run so far: a bound on a run's cost. */
  events = 0;

  constructor(seed: number) {
    this.random = prng(seed);
  }

  /** A random duration in [min, max] ns. */
  between(min: bigint, max: bigint): bigint {
    return min + BigInt(Math.floor(this.random() * Number(max - min + 1n)));
  }

  at(when: bigint, fn: () => void): void {
    const event = { at: when < this.now ? this.now : when, seq: this.#seq++, fn };
    // Binary search for the first event later than this one (ties keep their order).
    let lo = 0;
    let hi = this.#queue.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if ((this.#queue[mid] as Event).at <= event.at) lo = mid + 1;
      else hi = mid;
    }
    this.#queue.splice(lo, 0, event);
  }

  /** Runs events in time order until `until`, letting promise callbacks settle after each. */
  async run(until: bigint): Promise<void> {
    for (;;) {
      const next = this.#queue[0];
      if (!next || next.at > until) break;
      this.#queue.shift();
      this.now = next.at;
      this.events++;
      next.fn();
      await new Promise((resolve) => setImmediate(resolve));
    }
    this.now = until;
  }
}

/**
 * A process: its monotonic clock runs at `rate` × real time from `origin` (it keeps running
 * while the process is frozen, as CLOCK_MONOTONIC does), and everything it is due to do
 * (a timer, a store's answer) waits while it is frozen.
 */
export class Proc implements WorkerClock {
  frozenUntil = 0n;

  constructor(
    readonly sim: Sim,
    readonly name: string,
    readonly rate: number,
    readonly origin: bigint,
  ) {}

  now(): bigint {
    return this.origin + BigInt(Math.round(Number(this.sim.now) * this.rate));
  }

  /** The real time at which this clock reads `local` (the earliest, rounding up). */
  realAt(local: bigint): bigint {
    return BigInt(Math.ceil(Number(local - this.origin) / this.rate));
  }

  /** Runs `fn` at real time `at`, or once the process thaws if it is frozen then. */
  deliver(at: bigint, fn: () => void): void {
    const run = () => {
      if (this.sim.now < this.frozenUntil) this.sim.at(this.frozenUntil, run);
      else fn();
    };
    this.sim.at(at, run);
  }

  sleep(ns: bigint, signal: AbortSignal): Promise<boolean> {
    return new Promise((resolve) => {
      if (signal.aborted) return resolve(false);
      let done = false;
      const onAbort = () => {
        if (done) return;
        done = true;
        resolve(false);
      };
      signal.addEventListener("abort", onAbort, { once: true });
      const wake = this.realAt(this.now() + ns);
      this.deliver(wake, () => {
        if (done) return;
        done = true;
        signal.removeEventListener("abort", onAbort);
        resolve(true);
      });
    });
  }
}
