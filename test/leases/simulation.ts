/**
 * A simulated cluster for leases: one real-time line, a global clock kept the way the
 * workers keep it (each advance at most the real time since the last one, and at most
 * maxStep; stalls are never made up), holders with their own monotonic clocks (other
 * origins, rates off by up to 0.05 %), a store whose every answer takes a random time and
 * may be lost after the write was applied, and holders that pause.
 *
 * The real Leases and Lease run on it, unchanged; the store under them is the seam's
 * contract kept in a Map. Everything random comes from one seed, so a failure replays.
 */
import { StoreError } from "../../src/errors.js";
import type { LeaseFields, LeaseRecord, LeaseStore } from "../../src/lease-store.js";
import { Leases } from "../../src/leases/leases.js";
import type { ClockStore } from "../../src/store.js";
import { earlier } from "../../src/time.js";
import type { WorkerClock } from "../../src/worker-clock.js";

export interface SimConfig {
  seed: number;
  holders: number;
  maxStep: bigint;
  duration: bigint;
  /** Probability that an answer of the store is lost (the write applied or not). */
  failRate: number;
  /** Probability that a holder pauses before an action, for up to 2 × duration. */
  pauseRate: number;
  /** Probability that the clock's updater stalls before a tick, for up to 3 s. */
  stallRate: number;
  /** Real time to simulate, ns. */
  length: bigint;
}

/** A holder's grant, in real time: it may act on the lease from `from` to `to`. */
export interface Window {
  holder: string;
  token: bigint;
  from: bigint;
  to: bigint;
}

export interface Commit {
  at: bigint;
  holder: string;
  token: bigint;
}

const MS = 1_000_000n;

/** mulberry32: a small, good-enough PRNG for schedules. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export class Sim {
  now = 0n;
  readonly random: () => number;
  #seq = 0;
  #queue: Array<{ at: bigint; seq: number; fn: () => void }> = [];

  constructor(seed: number) {
    this.random = prng(seed);
  }

  /** A random duration in [min, max] ns. */
  between(min: bigint, max: bigint): bigint {
    return min + BigInt(Math.floor(this.random() * Number(max - min + 1n)));
  }

  at(when: bigint, fn: () => void): void {
    this.#queue.push({ at: when < this.now ? this.now : when, seq: this.#seq++, fn });
    this.#queue.sort((x, y) => (x.at < y.at ? -1 : x.at > y.at ? 1 : x.seq - y.seq));
  }

  /** Runs events in time order until `until`, letting promise callbacks settle after each. */
  async run(until: bigint): Promise<void> {
    for (;;) {
      const next = this.#queue[0];
      if (!next || next.at > until) break;
      this.#queue.shift();
      this.now = next.at;
      next.fn();
      await new Promise((resolve) => setImmediate(resolve));
    }
    this.now = until;
  }
}

/** A holder's monotonic clock: its own origin and rate, its timers on the simulation. */
function holderClock(
  sim: Sim,
  origin: bigint,
  rate: number,
): WorkerClock & { real(t: bigint): bigint } {
  const scale = (ns: bigint) => BigInt(Math.round(Number(ns) * rate));
  return {
    now: () => origin + scale(sim.now),
    real: (t: bigint) => BigInt(Math.ceil(Number(t - origin) / rate)),
    sleep: (ns, signal) =>
      new Promise((resolve) => {
        if (signal.aborted) return resolve(false);
        const onAbort = () => resolve(false);
        signal.addEventListener("abort", onAbort, { once: true });
        sim.at(sim.now + BigInt(Math.ceil(Number(ns) / rate)), () => {
          signal.removeEventListener("abort", onAbort);
          resolve(true);
        });
      }),
  };
}

/** The seam's contract over a Map, with each call answered after a random delay. */
class SimStore implements LeaseStore {
  time = 0n;
  readonly maxStep: bigint;
  readonly records = new Map<string, LeaseRecord>();
  readonly commits: Commit[] = [];
  #version = 0n;

  constructor(
    readonly sim: Sim,
    maxStep: bigint,
    readonly failRate: number,
  ) {
    this.maxStep = maxStep;
  }

  /** Applies `op` after a random delay, answers after another; the answer may be lost. */
  #call<T>(op: () => T): Promise<T> {
    const { sim } = this;
    return new Promise((resolve, reject) => {
      sim.at(sim.now + sim.between(MS / 10n, 20n * MS), () => {
        const result = op();
        const lost = sim.random() < this.failRate;
        sim.at(sim.now + sim.between(MS / 10n, 20n * MS), () =>
          lost ? reject(new StoreError("sim", "call", "the answer was lost")) : resolve(result),
        );
      });
    });
  }

  readLease(name: string) {
    return this.#call(() => ({
      time: this.time,
      maxStep: this.maxStep,
      lease: this.records.get(name),
    }));
  }

  listLeases() {
    return this.#call(() => ({
      time: this.time,
      maxStep: this.maxStep,
      leases: [...this.records.values()],
    }));
  }

  writeLease(fields: LeaseFields, version: bigint | undefined) {
    return this.#call(() => {
      if (this.records.get(fields.name)?.version !== version) return undefined;
      const next = ++this.#version;
      this.records.set(fields.name, { ...fields, version: next });
      if (fields.holder !== "")
        this.commits.push({ at: this.sim.now, holder: fields.holder, token: fields.token });
      return next;
    });
  }

  ensureMaxStep() {
    return this.#call(() => this.maxStep);
  }

  swapMaxStep() {
    return this.#call(() => false);
  }
}

/**
 * Runs the cluster and returns every holder's windows and every committed write.
 * `deadline` turns a lease into the end of its window, on the holder's clock: the real
 * `lease.deadline`, or a broken rule for the test that shows the check can fail.
 */
export async function simulate(
  config: SimConfig,
  deadline: (lease: { deadline: bigint; maxStep: bigint }) => bigint,
): Promise<{ windows: Window[]; commits: Commit[] }> {
  const sim = new Sim(config.seed);
  const store = new SimStore(sim, config.maxStep, config.failRate);
  const clockStore = { kind: "sim", leases: store } as unknown as ClockStore;
  const windows: Window[] = [];
  const end = config.length;

  // The updater: every 100 ms ± 20 ms, adds the real time since its last advance, at most
  // maxStep; sometimes it stalls, and what stood still is never made up.
  let lastAdvance = 0n;
  const tick = () => {
    const stall = sim.random() < config.stallRate ? sim.between(0n, 3_000n * MS) : 0n;
    sim.at(sim.now + stall + sim.between(80n * MS, 120n * MS), () => {
      const step = sim.now - lastAdvance;
      store.time += earlier(step, config.maxStep);
      lastAdvance = sim.now;
      tick();
    });
  };
  tick();

  const holders = Array.from({ length: config.holders }, (_, i) => {
    const clock = holderClock(sim, BigInt(i) * 1_000_000_007n, 1 + (sim.random() - 0.5) * 0.001);
    const leases = new Leases(clockStore, { clock });
    return { name: `h${i}`, clock, leases };
  });

  const live = holders.map(async (h) => {
    const never = new AbortController().signal;
    const pause = async () => {
      if (sim.random() < config.pauseRate)
        await h.clock.sleep(sim.between(0n, 2n * config.duration), never);
    };
    while (sim.now < end) {
      await pause();
      let lease: Awaited<ReturnType<Leases["claim"]>>;
      try {
        lease = await h.leases.claim("job", h.name, config.duration);
      } catch {
        await h.clock.sleep(sim.between(MS, config.duration), never); // held, or no answer
        continue;
      }
      const from = sim.now;
      windows.push({ holder: h.name, token: lease.token, from, to: h.clock.real(deadline(lease)) });
      // Renew every third of the duration until the lease is lost or its deadline passes,
      // or the holder lets it go: by releasing it, or by walking away (it then expires,
      // and a rival wins it as soon as global time reaches the expiry).
      while (lease.held && sim.now < end) {
        await h.clock.sleep(config.duration / 3n, never);
        await pause();
        const leave = sim.random();
        if (leave < 0.05) {
          // It stops acting on the lease as it begins to release it.
          for (const w of windows)
            if (w.holder === h.name && w.token === lease.token && w.to > sim.now) w.to = sim.now;
          await lease.release().catch(() => {});
          break;
        }
        if (leave < 0.3) break;
        try {
          await lease.extend(config.duration);
          windows.push({
            holder: h.name,
            token: lease.token,
            from: sim.now,
            to: h.clock.real(deadline(lease)),
          });
        } catch {
          // lost, or no answer: the lease holds until its deadline at the most
        }
      }
    }
  });
  await sim.run(end + 10n * config.duration);
  await Promise.race([Promise.all(live), new Promise((r) => setImmediate(r))]);
  return { windows, commits: store.commits };
}

/** Violations: two holders' windows that overlap in real time, and tokens that go back. */
export function check(windows: Window[], commits: Commit[]): string[] {
  const out: string[] = [];
  const sorted = [...windows].sort((a, b) => (a.from < b.from ? -1 : a.from > b.from ? 1 : 0));
  for (let i = 0; i < sorted.length; i++) {
    for (let j = i + 1; j < sorted.length; j++) {
      const a = sorted[i] as Window;
      const b = sorted[j] as Window;
      if (b.from >= a.to) continue;
      if (a.token !== b.token)
        out.push(
          `overlap: ${a.holder} (token ${a.token}) until ${a.to}, ${b.holder} (token ${b.token}) from ${b.from}`,
        );
    }
  }
  let last: Commit | undefined;
  for (const c of commits) {
    if (last && (c.token < last.token || (c.holder !== last.holder && c.token === last.token)))
      out.push(
        `token: ${c.holder} wrote token ${c.token} after ${last.holder} wrote ${last.token}`,
      );
    last = c;
  }
  return out.slice(0, 5);
}
