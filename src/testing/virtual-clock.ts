import { type DurationInput, toNanoseconds } from "../duration.js";
import { GlobalClockError } from "../errors.js";
import type { WorkerClock } from "../worker-clock.js";

interface Sleeper {
  readonly at: bigint;
  readonly seq: number;
  readonly wake: (fired: boolean) => void;
}

/** Timers woken at one instant before `advance` or `jump` gives up. */
const MAX_WAKES_AT_ONCE = 10_000;

/** Time stands still while timers keep waking at its instant: a loop of zero-length waits. */
function checkWakes(atOnce: number): void {
  if (atOnce > MAX_WAKES_AT_ONCE)
    throw new GlobalClockError(
      `virtual time: more than ${MAX_WAKES_AT_ONCE} timers woke at one instant (a loop of zero-length waits?)`,
    );
}

/**
 * A monotonic clock that moves only when a test says so: `advance` wakes every timer at its
 * own instant, in order, and lets the code under test run after each (promise callbacks and
 * immediates), so that what would take minutes of real time takes milliseconds.
 */
export class VirtualClock implements WorkerClock {
  #now = 0n;
  #seq = 0;
  #sleepers: Sleeper[] = [];

  now(): bigint {
    return this.#now;
  }

  sleep(ns: bigint, signal: AbortSignal): Promise<boolean> {
    if (signal.aborted) return Promise.resolve(false);
    return new Promise((resolve) => {
      const sleeper: Sleeper = {
        at: this.#now + (ns > 0n ? ns : 0n),
        seq: this.#seq++,
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

  /** Timers waiting. */
  get pending(): number {
    return this.#sleepers.length;
  }

  /**
   * Moves time forward by `duration` ("30s", or bigint nanoseconds), waking each timer due
   * at its own instant, earliest first, and letting the code under test run after each.
   */
  async advance(duration: DurationInput): Promise<void> {
    const end = this.#now + toNanoseconds(duration, "advance duration");
    await settle();
    for (let atOnce = 0; ; atOnce++) {
      const next = this.#earliest();
      if (!next || next.at > end) break;
      this.#sleepers = this.#sleepers.filter((s) => s !== next);
      if (next.at > this.#now) {
        this.#now = next.at;
        atOnce = 0;
      } else checkWakes(atOnce);
      next.wake(true);
      await settle();
    }
    this.#now = end;
    await settle();
  }

  /**
   * Moves time forward by `duration` in one jump, as a process that was paused (or a timer
   * that fires late) sees it: then wakes every timer due, together and in the order they
   * were set, and lets the code under test run, until no timer is due.
   */
  async jump(duration: DurationInput): Promise<void> {
    this.#now += toNanoseconds(duration, "jump duration");
    await settle();
    let woken = 0;
    for (;;) {
      const due = this.#sleepers.filter((s) => s.at <= this.#now);
      if (due.length === 0) break;
      woken += due.length;
      checkWakes(woken);
      this.#sleepers = this.#sleepers.filter((s) => s.at > this.#now);
      for (const s of due) s.wake(true);
      await settle();
    }
  }

  #earliest(): Sleeper | undefined {
    let best: Sleeper | undefined;
    for (const s of this.#sleepers) {
      if (!best || s.at < best.at || (s.at === best.at && s.seq < best.seq)) best = s;
    }
    return best;
  }
}

/**
 * A process's view of a shared virtual clock that can be paused as SIGSTOP pauses a
 * process: its clock reads on, but none of its timers wakes until it resumes (then every
 * one that came due meanwhile does). Store calls already sent complete.
 */
export class PausableClock implements WorkerClock {
  readonly #base: WorkerClock;
  #resumed: { promise: Promise<void>; resolve: () => void } | undefined;

  constructor(base: WorkerClock) {
    this.#base = base;
  }

  get paused(): boolean {
    return this.#resumed !== undefined;
  }

  pause(): void {
    if (this.#resumed) return;
    let resolve = () => {};
    const promise = new Promise<void>((r) => {
      resolve = r;
    });
    this.#resumed = { promise, resolve };
  }

  resume(): void {
    this.#resumed?.resolve();
    this.#resumed = undefined;
  }

  now(): bigint {
    return this.#base.now();
  }

  async sleep(ns: bigint, signal: AbortSignal): Promise<boolean> {
    const fired = await this.#base.sleep(ns, signal);
    const resumed = this.#resumed;
    if (!fired || !resumed) return fired;
    let onAbort = () => {};
    const aborted = new Promise<void>((resolve) => {
      onAbort = resolve;
      signal.addEventListener("abort", onAbort, { once: true });
    });
    await Promise.race([resumed.promise, aborted]);
    signal.removeEventListener("abort", onAbort);
    return !signal.aborted;
  }
}

/** Lets pending promise callbacks and immediates run. */
export async function settle(): Promise<void> {
  for (let i = 0; i < 10; i++) await new Promise((resolve) => setImmediate(resolve));
}
