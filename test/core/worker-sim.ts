/**
 * A cluster of real UpdaterWorkers (src/worker.ts) on simulated time (test/leases/sim/), at
 * random: 2–4 workers on machines whose clocks drift within ±ρ, frozen (SIGSTOP) for up to
 * 3 s, killed and restarted; a store that, in stormy spells, loses answers (before or after
 * applying the call), hangs calls until its timeout and answers up to 1 s late; an operator
 * who lowers, raises and deletes the cluster's maxStep; observers that read the clock. The
 * history (the store's record of writes, the observers' reads, when each worker was ready)
 * is judged by ./invariants.ts. Everything random comes from one seed, so a run replays.
 */
import { MAX_DRIFT_PPM } from "../../src/leases/info.js";
import type { ClockStore } from "../../src/store.js";
import { later } from "../../src/time.js";
import { startUpdater, type UpdaterWorker, type WorkerRole } from "../../src/worker.js";
import { workerSettings } from "../../src/worker-settings.js";
import { Proc, Sim } from "../leases/sim/scheduler.js";
import { type ClockWrite, type Plan, SimStore } from "../leases/sim/store.js";
import {
  checkJumps,
  checkLiveness,
  checkMonotonic,
  checkRate,
  checkSteps,
  type Read,
  type Span,
  type Write,
} from "./invariants.js";

const MS = 1_000_000n;
const RHO = Number(MAX_DRIFT_PPM) / 1e6;

/** Every worker's settings: interval 100 ms, so maxStep 150 ms, takeover after 200 ms. */
export const SETTINGS = workerSettings({ interval: 100n * MS });

/** The longest leg of a call (sent to applied, applied to answered) outside a storm. */
const LEG = 20n * MS;
/** How late a storm's slow answer may come. */
const SLOW = 1_000n * MS;
/** The store's own deadline on a hung call (src/store.ts's DEFAULT_TIMEOUT_MS). */
const HANG_TIMEOUT = 2_000n * MS;
const FREEZE_MAX = 3_000n * MS;
const RESTART_MAX = 5_000n * MS;
/** How soon a supervisor (systemd's Restart=) restarts a worker that stopped by itself. */
const SUPERVISOR_DELAY = 1_000n * MS;
const ROUND_TRIPS = 10n * 2n * LEG;

/**
 * What a worker that has just become ready may still be busy with, so that liveness is judged
 * only after it: after a thaw, a restart or a raised maxStep, a backoff (from an error that
 * reached it while frozen, or a refusal of the cluster's maxStep), then a new updater; after a
 * storm, also a call sent in the storm, hung until the store's deadline or answered late.
 */
export const WARM_UP = SETTINGS.maxRetryDelay + ROUND_TRIPS;
export const STORM_WARM_UP = HANG_TIMEOUT + WARM_UP;
/**
 * Invariant 5's bound, with slack: the failover bound of polled stores (the stand-by sees the
 * last write up to a poll late and takes over at the first poll takeoverAfter later), twice,
 * plus an interval and ten round trips (a takeover refused once for a changed maxStep).
 */
export const LIVENESS_BOUND = 2n * SETTINGS.failoverBound + SETTINGS.interval + ROUND_TRIPS;

export interface ClusterConfig {
  seed: number;
  workers: number;
  /** Which workers run with fitClusterMaxStep. */
  fit: "all" | "none" | "mixed";
  /** In a storm, the chance that an answer is lost (before or after the call was applied). */
  failRate: number;
  /** In a storm, the chance that a call hangs until the store's deadline. */
  hangRate: number;
  /** In a storm, the chance that an answer comes up to 1 s late. */
  slowRate: number;
  /** The chance, per worker and 100 ms, of a freeze of up to 3 s. */
  freezeRate: number;
  /** Kills per worker per simulated minute; each is restarted within 5 s. */
  killRate: number;
  /** Operator actions on the cluster's maxStep per simulated minute. */
  operatorRate: number;
  /** Start without a clock record (the workers make it) instead of a clock that has run. */
  emptyStore: boolean;
  /** Real time to simulate, ns. */
  length: bigint;
}

/** Negative controls: a broken worker, built from the real one without touching src/. */
export interface Broken {
  /** Wraps each worker's connection; `role` is the worker's role at the time of a call. */
  wrap?: (conn: ClockStore, role: () => WorkerRole) => ClockStore;
  /** The clock rate of worker 0's machine, instead of one within ±ρ. */
  clockRate?: number;
  /** The store applies advances without comparing the maxStep (SimStore's own switch). */
  storeIgnoresMaxStep?: boolean;
}

/** What happened, counted so that a test can show that its faults and races really occurred. */
const COUNTED = [
  "writes",
  "reads",
  "advances",
  "takeovers",
  "conflicts",
  "errors",
  "maxStepChanges", // advances refused because the cluster's maxStep had changed
  "lostAfterApply", // advances whose answer was lost after the store applied them
  "hangs",
  "freezes",
  "kills",
  "refusals", // a worker that does not fit refusing a cluster maxStep below its own
  "lowered", // the cluster's maxStep, by the operator; so are the next two
  "raised",
  "deleted",
  "livenessMs", // real time judged by the liveness check
] as const;
export type Tally = Record<(typeof COUNTED)[number], number>;

export const newTally = (): Tally => Object.fromEntries(COUNTED.map((key) => [key, 0])) as Tally;

export interface ClusterRun {
  writes: readonly Write[];
  reads: readonly Read[];
  ready: readonly Span[];
  operator: readonly string[];
  /** The smallest maxStep the operator stored (undefined: none). */
  lowest: bigint | undefined;
  tally: Tally;
}

interface Slot {
  readonly index: number;
  readonly rate: number;
  readonly origin: bigint;
  readonly fit: boolean;
  generation: number;
  proc: Proc | undefined;
  worker: UpdaterWorker | undefined;
  /** From when liveness is judged, while the worker stays ready; undefined: not ready. */
  judgedFrom: bigint | undefined;
}

export async function simulateCluster(c: ClusterConfig, broken: Broken = {}): Promise<ClusterRun> {
  const sim = new Sim(c.seed);
  const end = c.length;
  const tally = newTally();
  const reads: Read[] = [];
  const ready: Span[] = [];
  const operator: string[] = [];
  let lowest: bigint | undefined;
  const observers = new Set<Proc>();
  const stormy = c.failRate + c.hangRate + c.slowRate > 0;
  let calm = !stormy || sim.random() < 0.5;
  let calmSince: bigint | undefined; // the end of the last storm
  let over = false;

  const leg = () =>
    sim.random() < 0.7 ? sim.between(20_000n, 500_000n) : sim.between(500_000n, LEG);
  const store = new SimStore(sim, (proc, op): Plan => {
    const plan: Plan = { apply: leg(), answer: leg(), fault: "none" };
    if (calm || observers.has(proc)) return plan;
    const roll = sim.random();
    if (roll < c.failRate) plan.fault = sim.random() < 0.5 ? "lost-before" : "lost-after";
    else if (roll < c.failRate + c.hangRate) plan.fault = "hang";
    if (sim.random() < c.slowRate) plan.answer = sim.between(LEG, SLOW);
    if (op === "advanceClock" && plan.fault === "lost-after") tally.lostAfterApply++;
    if (plan.fault === "hang") tally.hangs++;
    return plan;
  });
  store.hangTimeout = HANG_TIMEOUT;
  store.compareMaxStep = !broken.storeIgnoresMaxStep;
  const maxStepAt = new Map<ClockWrite, bigint | undefined>();
  store.onApplied = (_proc, op, result) => {
    const write = store.clockWrites.at(-1);
    if (op === "advanceClock" && result === true && write) maxStepAt.set(write, store.maxStep);
  };
  if (!c.emptyStore) {
    store.time = 1_000_000n * MS; // a clock that has run for a while
    store.maxStep = SETTINGS.maxStep;
  }

  // A machine's clock at either edge of the drift allowed, or anywhere within it.
  const drift = (roll: number) => (roll < 0.3 ? -1 : roll < 0.6 ? 1 : 2 * sim.random() - 1);
  // Readiness, judged at every change of what it depends on.
  const eligible = (slot: Slot) =>
    slot.fit || store.maxStep === undefined || store.maxStep >= SETTINGS.maxStep;
  const slots: Slot[] = Array.from({ length: c.workers }, (_, index) => ({
    index,
    rate:
      index === 0 && broken.clockRate !== undefined
        ? broken.clockRate
        : 1 + RHO * drift(sim.random()),
    origin: sim.between(0n, 1_000_000n * MS),
    fit: c.fit === "all" || (c.fit === "mixed" && index % 2 === 0),
    generation: 0,
    proc: undefined,
    worker: undefined,
    judgedFrom: undefined,
  }));
  const judge = () => {
    for (const slot of slots) {
      const p = slot.proc;
      const now = !over && calm && p !== undefined && sim.now >= p.frozenUntil && eligible(slot);
      if (now && slot.judgedFrom === undefined) {
        const afterStorm = calmSince === undefined ? 0n : calmSince + STORM_WARM_UP;
        slot.judgedFrom = later(sim.now + WARM_UP, afterStorm);
      }
      if (!now && slot.judgedFrom !== undefined) {
        if (slot.judgedFrom < sim.now)
          ready.push({ from: slot.judgedFrom, to: sim.now, who: `w${slot.index}` });
        slot.judgedFrom = undefined;
      }
    }
  };

  const stopping: Promise<unknown>[] = [];
  const start = (slot: Slot) => {
    if (over || slot.worker) return;
    const proc = new Proc(sim, `w${slot.index}.${slot.generation++}`, slot.rate, slot.origin);
    const conn = store.connect(proc);
    let worker: UpdaterWorker | undefined;
    const role = (): WorkerRole => worker?.snapshot().role ?? "starting";
    worker = startUpdater(broken.wrap ? broken.wrap(conn, role) : conn, {
      settings: SETTINGS,
      fitClusterMaxStep: slot.fit,
      clock: proc,
      random: sim.random,
    });
    slot.proc = proc;
    slot.worker = worker;
    judge();
    stopping.push(untilStopped(slot, worker));
  };
  const retire = (slot: Slot) => {
    slot.worker = undefined;
    slot.proc = undefined;
    judge();
  };
  /** Tallies the worker's statuses until it stops; restarts it if it stopped by itself. */
  const untilStopped = async (slot: Slot, worker: UpdaterWorker) => {
    let last = worker.snapshot();
    for await (const status of worker.events()) {
      // A worker that does not fit refusing the cluster's smaller maxStep (ConfigError).
      if (status.errors > last.errors && status.lastErrorName === "ConfigError") tally.refusals++;
      last = status;
    }
    tally.advances += last.advances;
    tally.takeovers += last.takeovers;
    tally.conflicts += last.conflicts;
    tally.maxStepChanges += last.maxStepChanges;
    tally.errors += last.errors;
    if (slot.worker !== worker) return; // killed, or the run is over
    retire(slot); // it refused to start: a supervisor restarts it
    sim.at(sim.now + SUPERVISOR_DELAY, () => start(slot));
  };
  const kill = (slot: Slot) => {
    const worker = slot.worker;
    if (!worker) return;
    retire(slot);
    stopping.push(worker.stop());
  };

  for (const slot of slots) {
    start(slot);
    if (c.killRate === 0) continue;
    const killer = () =>
      sim.at(sim.now + BigInt(Math.floor((120e9 / c.killRate) * sim.random())), () => {
        if (sim.now >= end) return;
        if (slot.worker) {
          tally.kills++;
          kill(slot);
          sim.at(sim.now + sim.between(0n, RESTART_MAX), () => start(slot));
        }
        killer();
      });
    killer();
  }

  const freezer = () =>
    sim.at(sim.now + 100n * MS, () => {
      for (const slot of slots) {
        const p = slot.proc;
        if (!p || p.frozenUntil > sim.now || sim.random() >= c.freezeRate) continue;
        p.frozenUntil = sim.now + sim.between(MS, FREEZE_MAX);
        tally.freezes++;
        sim.at(p.frozenUntil, judge);
      }
      judge();
      if (sim.now < end) freezer();
    });
  freezer();

  const weather = () => {
    const spell = calm ? sim.between(4_000n * MS, 12_000n * MS) : sim.between(MS, 5_000n * MS);
    sim.at(sim.now + spell, () => {
      calm = !calm;
      if (calm) calmSince = sim.now;
      judge();
      if (sim.now < end) weather();
    });
  };
  if (stormy) weather();

  const act = () =>
    sim.at(sim.now + BigInt(Math.floor((120e9 / c.operatorRate) * sim.random())), () => {
      if (sim.now >= end) return;
      if (store.time !== undefined) {
        // An operator acts on a store that has a clock; lowered, raised or deleted.
        const before = store.maxStep;
        const value =
          sim.random() < 0.75
            ? SETTINGS.maxStep / 2n + sim.between(0n, (SETTINGS.maxStep * 3n) / 2n)
            : undefined;
        store.operator.setMaxStep(value);
        if (value !== undefined && (lowest === undefined || value < lowest)) lowest = value;
        if (value === undefined) tally.deleted++;
        else if (before === undefined || value > before) tally.raised++;
        else if (value < before) tally.lowered++;
        operator.push(`${sim.now}: maxStep ${value ?? "deleted"}`);
        judge();
      }
      act();
    });
  if (c.operatorRate > 0) act();

  const quit = new AbortController();
  const observing = [0, 1].map(async (i) => {
    const proc = new Proc(sim, `observer${i}`, 1, 0n);
    observers.add(proc);
    const leases = store.connect(proc).leases;
    if (!leases) throw new Error("the simulated store keeps leases");
    while (!quit.signal.aborted) {
      const before = sim.now;
      const seen = await leases.readClock(quit.signal).catch(() => undefined);
      if (seen?.time !== undefined) {
        const { time: global, maxStep } = seen;
        reads.push({ before, after: sim.now, global, maxStep, source: proc.name });
      }
      await proc.sleep(sim.between(MS, 20n * MS), quit.signal);
    }
  });

  await sim.run(end);
  over = true;
  judge();
  quit.abort();
  for (const slot of slots) kill(slot);
  await sim.run(end + HANG_TIMEOUT + SLOW); // calls still in flight are applied or dropped
  await Promise.all([...stopping, ...observing]);
  tally.writes = store.clockWrites.length;
  tally.reads = reads.length;
  tally.livenessMs = Number(ready.reduce((sum, s) => sum + s.to - s.from, 0n) / MS);
  const writes = store.clockWrites.map((w) => ({ ...w, maxStep: maxStepAt.get(w) }));
  return { writes, reads, ready, operator, lowest, tally };
}

/** The violations of each invariant (and of rule 2, on which invariant 3 rests) in a run. */
export interface Violations {
  monotonic: string[];
  rate: string[];
  steps: string[];
  jumps: string[];
  liveness: string[];
}

export function check(run: ClusterRun): Violations {
  const times = run.writes.map((w) => w.at);
  return {
    monotonic: checkMonotonic(run.writes, run.reads),
    rate: checkRate(run.writes),
    steps: checkSteps(run.writes, SETTINGS.maxStep),
    jumps: checkJumps(run.reads, BigInt(run.writes.length)),
    liveness: checkLiveness(times, run.ready, LIVENESS_BOUND),
  };
}

/** Every violation, one line each. */
export const violations = (v: Violations): string[] => [
  ...v.monotonic,
  ...v.rate,
  ...v.steps,
  ...v.jumps,
  ...v.liveness,
];
