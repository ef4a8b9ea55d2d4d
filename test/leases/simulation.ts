/**
 * A simulated cluster for leases, at random: the real UpdaterWorker keeps global time on two
 * updater processes, the real Leases, Lease and renewal loop (keep) run on several holders,
 * and the store under them (./sim/store.ts) answers late, loses answers, and hangs calls.
 * Every process's monotonic clock has its own origin and a rate off by up to the drift the
 * deadline allows for; updaters are frozen (SIGSTOP) for up to 2 s; an operator lowers and
 * raises maxStep, deletes it, and deletes lease records. Everything random comes from one
 * seed, so a failure replays.
 */
import { LeaseLostError } from "../../src/errors.js";
import { holdSchedule, keep } from "../../src/leases/hold.js";
import { MAX_DRIFT_PPM } from "../../src/leases/info.js";
import type { Lease } from "../../src/leases/lease.js";
import { Leases } from "../../src/leases/leases.js";
import { startUpdater, type UpdaterWorker } from "../../src/worker.js";
import { Proc, Sim } from "./sim/scheduler.js";
import { type Fault, type Plan, SimStore } from "./sim/store.js";

export interface SimConfig {
  seed: number;
  holders: number;
  /** The cluster's maxStep at the start; the operator moves it between half and twice this. */
  maxStep: bigint;
  duration: bigint;
  /** Probability that a store call's answer is lost (before or after it was applied). */
  failRate: number;
  /** Probability that a holder's store call hangs until the holder gives up on it. */
  hangRate: number;
  /** Probability, per 100 ms, that an updater is frozen for up to 2 s. */
  freezeRate: number;
  /** Operator actions per simulated minute. */
  operatorRate: number;
  /** Real time to simulate, ns. */
  length: bigint;
}

/** A holder's tenure, in real time: it acted on the lease from `from` until `to`. */
export interface Window {
  holder: string;
  token: bigint;
  from: bigint;
  to: bigint;
  /** An operator deleted the lease's record during the tenure: the lease was handed on. */
  deleted: boolean;
}

export interface SimResult {
  windows: Window[];
  /** Tokens of every grant to a new holder, in the order the store wrote them. */
  grants: Array<{ at: bigint; holder: string; token: bigint }>;
  operator: string[];
  events: number;
}

const MS = 1_000_000n;
const RHO = Number(MAX_DRIFT_PPM) / 1e6;

/**
 * Runs the cluster. `stopsAt` turns a tenure into the moment the holder stops (on its own
 * clock): when its lease's signal fired, by default; a broken rule in the negative control.
 */
export async function simulate(
  c: SimConfig,
  stopsAt: (lease: Lease, fired: bigint) => bigint = (_lease, fired) => fired,
): Promise<SimResult> {
  const sim = new Sim(c.seed);
  const rate = () => 1 + (sim.random() * 2 - 1) * RHO;
  const updaters = [0, 1].map((i) => new Proc(sim, `u${i}`, rate(), sim.between(0n, 1000n * MS)));
  const holders = Array.from(
    { length: c.holders },
    (_, i) => new Proc(sim, `h${i}`, rate(), sim.between(0n, 1000n * MS)),
  );
  const isHolder = new Set(holders);
  const store = new SimStore(sim, (proc, op): Plan => {
    const late = () => sim.between(MS / 10n, 20n * MS);
    const roll = sim.random();
    let fault: Fault = "none";
    if (roll < c.failRate) fault = sim.random() < 0.5 ? "lost-before" : "lost-after";
    else if (isHolder.has(proc) && roll < c.failRate + c.hangRate && op !== "readClock")
      fault = "hang";
    // An updater's call may take long (a store failing over), never for ever.
    const answer =
      !isHolder.has(proc) && sim.random() < 0.01 ? sim.between(0n, 3000n * MS) : late();
    return { apply: late(), answer, fault };
  });
  store.hangTimeout = 2_000n * MS; // the stores' default timeout
  store.time = 1_000_000n * MS; // a clock that has run for a while
  store.maxStep = c.maxStep;
  const deleted = new Set<string>(); // holder names whose tenure's record was deleted
  const windows: Window[] = [];
  const operator: string[] = [];
  const end = c.length;

  // The updaters: the real worker, fitting the cluster's maxStep as it changes.
  const stop = new AbortController();
  const workers: UpdaterWorker[] = updaters.map((proc) =>
    startUpdater(store.connect(proc), {
      clock: proc,
      random: sim.random,
      interval: 100n * MS,
      maxStep: c.maxStep,
      fitClusterMaxStep: true,
      signal: stop.signal,
    }),
  );
  const freeze = () => {
    sim.at(sim.now + 100n * MS, () => {
      for (const u of updaters) {
        if (sim.random() < c.freezeRate) u.frozenUntil = sim.now + sim.between(0n, 2000n * MS);
      }
      if (sim.now < end) freeze();
    });
  };
  freeze();

  // The operator: every change of maxStep keeps a lease of `duration` legal.
  const act = () => {
    const wait = BigInt(Math.floor((60e9 / Math.max(c.operatorRate, 1e-9)) * sim.random()));
    sim.at(sim.now + wait, () => {
      if (sim.now >= end || c.operatorRate === 0) return;
      const roll = sim.random();
      if (roll < 0.5) {
        const next = c.maxStep / 2n + sim.between(0n, c.maxStep);
        store.operator.setMaxStep(next);
        operator.push(`${sim.now}: maxStep ${next}`);
      } else if (roll < 0.8) {
        store.operator.setMaxStep(undefined);
        operator.push(`${sim.now}: maxStep deleted`);
      } else {
        const held = store.records.get("job");
        if (held?.holder) deleted.add(`${held.holder}#${held.token}`);
        store.operator.deleteLease("job");
        operator.push(`${sim.now}: lease record deleted (${held?.holder}#${held?.token})`);
      }
      act();
    });
  };
  act();

  const live = holders.map(async (proc) => {
    const leases = new Leases(store.connect(proc), {
      clock: proc,
      pollInterval: 20n * MS,
      maxStep: c.maxStep, // what a holder stores where an operator deleted it
    });
    const never = new AbortController().signal;
    for (let tenure = 0; sim.now < end; tenure++) {
      let lease: Lease;
      try {
        // A new identity for each tenure, as a new process on the same machine has.
        lease = await leases.claim("job", `${proc.name}.${tenure}`, c.duration);
      } catch {
        await proc.sleep(sim.between(MS, c.duration), never); // held, or no answer
        continue;
      }
      const window: Window = {
        holder: lease.holder,
        token: lease.token,
        from: sim.now,
        to: end,
        deleted: false,
      };
      windows.push(window);
      let fired: bigint | undefined;
      lease.signal.addEventListener("abort", () => {
        fired ??= proc.now();
        window.to = proc.realAt(stopsAt(lease, fired));
      });
      // Renews until the lease is lost or runs out, or the holder lets it go: releasing it
      // (it stops acting as the release begins) or walking away (a rival wins it once
      // global time reaches the expiry).
      const leave = new AbortController();
      const until = sim.between(0n, 4n * c.duration);
      sim.at(sim.now + until, () => leave.abort());
      const schedule = holdSchedule({ duration: c.duration }, lease.maxStep);
      const lost = await keep(lease, schedule, { clock: proc, signal: leave.signal });
      if (!(lost instanceof LeaseLostError) && sim.random() < 0.3) {
        if (lease.held) window.to = sim.now;
        await lease.release().catch(() => {});
      }
      await proc.sleep(sim.between(MS, c.duration / 2n), never);
    }
  });
  await sim.run(end + 10n * c.duration);
  stop.abort();
  await sim.run(sim.now + 10n * c.duration); // let the workers see the abort
  await Promise.race([Promise.all(live), new Promise((r) => setImmediate(r))]);
  for (const w of windows) w.deleted = deleted.has(`${w.holder}#${w.token}`);
  const grants: SimResult["grants"] = [];
  let last: { holder: string; token: bigint } | undefined;
  for (const { at, record } of store.leaseWrites) {
    if (record.holder !== "" && (record.holder !== last?.holder || record.token !== last.token))
      grants.push({ at, holder: record.holder, token: record.token });
    if (record.holder !== "") last = record;
  }
  await Promise.all(workers.map((w) => w.stop()));
  return { windows, grants, operator, events: sim.events };
}

/**
 * Violations: two tenures with different tokens that overlap in real time (unless an
 * operator deleted the record of the earlier one: fencing then must tell them apart), and a
 * grant whose token is not greater than every token granted before.
 */
export function check(result: SimResult): string[] {
  const out: string[] = [];
  const sorted = [...result.windows].sort((a, b) =>
    a.from < b.from ? -1 : a.from > b.from ? 1 : 0,
  );
  for (let i = 0; i < sorted.length; i++) {
    for (let j = i + 1; j < sorted.length; j++) {
      const a = sorted[i] as Window;
      const b = sorted[j] as Window;
      if (b.from >= a.to || a.token === b.token || a.deleted) continue;
      out.push(
        `overlap: ${a.holder} (token ${a.token}) until ${a.to}, ${b.holder} (token ${b.token}) from ${b.from}: ${a.to - b.from} ns`,
      );
    }
  }
  let highest = 0n;
  for (const g of result.grants) {
    if (g.token <= highest)
      out.push(`token: ${g.holder} was granted token ${g.token} at ${g.at} after ${highest}`);
    if (g.token > highest) highest = g.token;
  }
  return out.slice(0, 5);
}
