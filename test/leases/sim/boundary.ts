/**
 * The lease adversary: one holder, one rival and one updater, each at the edge of what the
 * safety argument allows (docs/design.md, "The holder's deadline"), so that a holder's
 * deadline that is wrong by a millisecond lets the rival in while the holder still acts.
 *
 * - The updater's clock runs fast by the largest allowed drift, the holder's slow by as
 *   much. The updater parks (writes nothing) for longer than maxStep; the instant the
 *   holder's read of the clock is applied (its claim's, or one of its renewals'), it takes
 *   a full step of maxStep (allowed: it confirmed its view long ago), then steps as fast as
 *   its clock lets it, landing global time exactly on the holder's expiry.
 * - From then on every call of the holder hangs: its lease runs out at its deadline, which
 *   its renewals, stuck in the store, must not delay.
 * - The rival's calls take no time: it claims the instant global time reaches the expiry.
 * - Optionally an operator lowers maxStep before the holder reads it, with the updater's
 *   view still on the old value, or raises it just after.
 *
 * The holder's window is from its grant to the moment it stops (its lease's signal fires,
 * or, in "loop" mode, its renewal loop returns); the rival's from its grant on. They must
 * not overlap.
 */
import { holdSchedule, keep } from "../../../src/leases/hold.js";
import { MAX_DRIFT_PPM } from "../../../src/leases/info.js";
import type { Lease } from "../../../src/leases/lease.js";
import { Leases } from "../../../src/leases/leases.js";
import type { ClockStore } from "../../../src/store.js";
import { earlier } from "../../../src/time.js";
import { Proc, Sim } from "./scheduler.js";
import { type Plan, SimStore } from "./store.js";

const MS = 1_000_000n;
const RHO = Number(MAX_DRIFT_PPM) / 1e6;

export interface BoundaryConfig {
  seed: number;
  maxStep: bigint;
  duration: bigint;
  /** Renewals before the trap springs (0: on the claim's own read). */
  renewals: number;
  /** An operator's change of maxStep around the holder's read. */
  operator: "none" | "lower-before" | "raise-after";
}

/** Deliberately broken builds, to show that the check catches each (negative controls). */
export interface Mutation {
  /** The store's advance does not compare maxStep. */
  storeIgnoresMaxStep?: boolean;
  /** The updater re-reads maxStep without confirming the clock again. */
  staleConfirmation?: boolean;
  /**
   * When the holder stops, on its own clock, given its lease, the start of the operation
   * that granted it (t0), when that operation's read was answered, and when the lease's
   * signal fired (default: then).
   */
  stopsAt?: (c: { lease: Lease; t0: bigint; readAnswered: bigint; fired: bigint }) => bigint;
  /** The renewal loop (default: the real keep). */
  keep?: typeof keep;
  /** The holder stops when its renewal loop returns, not when its lease's signal fires. */
  loop?: boolean;
}

export interface BoundaryResult {
  /** Real time the holder stopped acting, and the rival's grant. */
  holderStop: bigint;
  rivalStart: bigint | undefined;
  /** rivalStart − holderStop: how close the rival came (negative: an overlap). */
  margin: bigint | undefined;
  holderToken: bigint;
  rivalToken: bigint | undefined;
}

export async function boundary(c: BoundaryConfig, m: Mutation = {}): Promise<BoundaryResult> {
  const sim = new Sim(c.seed);
  const updater = new Proc(sim, "updater", 1 + RHO, sim.between(0n, 1000n * MS));
  const holder = new Proc(sim, "holder", 1 - RHO, sim.between(0n, 1000n * MS));
  const rival = new Proc(sim, "rival", 1, sim.between(0n, 1000n * MS));
  // The trap is set by the holder's chosen read and springs once that operation has written.
  let armed = false;
  let trapped = false;
  const holderRead = { apply: sim.between(10_000n, 100_000n), answer: sim.between(0n, 3n * MS) };
  const store = new SimStore(sim, (proc, op): Plan => {
    if (proc !== holder) return { apply: 0n, answer: 0n, fault: "none" };
    if (trapped) return { apply: 0n, answer: 0n, fault: "hang" };
    if (op === "readLease") return { ...holderRead, fault: "none" };
    const quick = () => sim.between(10_000n, 100_000n);
    return { apply: quick(), answer: quick(), fault: "none" };
  });
  store.compareMaxStep = !m.storeIgnoresMaxStep;
  store.time = 1_000_000n * MS; // a clock that has run for a while
  const oldMaxStep = c.operator === "lower-before" ? c.maxStep * 2n : c.maxStep;
  store.maxStep = oldMaxStep;

  // The updater, by the rules at their limit: a step is at most maxStep as it read it, and
  // at most what its (fast) clock measured since it last confirmed the clock's value.
  const conn = store.connect(updater).leases as NonNullable<ClockStore["leases"]>;
  const view = { time: store.time, maxStep: oldMaxStep, confirmed: updater.now() };
  let target: bigint | undefined; // the holder's expiry, once the trap is set
  const forever = new AbortController().signal;
  const advance = async (step: bigint): Promise<void> => {
    if (await conn.advanceClock(view.time, view.time + step, view.maxStep)) {
      view.time += step;
      view.confirmed = updater.now();
      return;
    }
    const read = await conn.readClock();
    view.time = read.time ?? view.time;
    view.maxStep = read.maxStep ?? view.maxStep;
    if (!m.staleConfirmation) view.confirmed = updater.now(); // confirmed by this read
  };
  const chase = async (goal: bigint) => {
    while (view.time < goal) {
      const allowed = updater.now() - view.confirmed;
      const want = earlier(goal - view.time, view.maxStep);
      if (allowed < want) await updater.sleep(want - allowed, forever);
      else await advance(want);
    }
  };

  const holderLeases = new Leases(store.connect(holder), { clock: holder, pollInterval: MS });
  const rivalLeases = new Leases(store.connect(rival), { clock: rival, pollInterval: MS });
  let reads = 0;
  let t0 = 0n; // the holder's clock when its trapped operation began
  let readAnswered = 0n;
  let rival$: Promise<void> | undefined;
  let rivalStart: bigint | undefined;
  let rivalToken: bigint | undefined;
  let rivalError: unknown;
  store.onApplied = (proc, op) => {
    if (proc === holder && op === "readLease" && reads++ === c.renewals) {
      armed = true;
      t0 = local(holder, sim.now - holderRead.apply);
      readAnswered = local(holder, sim.now + holderRead.answer);
      if (c.operator === "raise-after") store.operator.setMaxStep(c.maxStep * 2n);
      target = (store.time ?? 0n) + c.duration;
      void chase(target); // parked until now, for longer than maxStep: a full step at once
    } else if (proc === holder && op === "writeLease" && armed) {
      trapped = true;
    } else if (
      proc === updater &&
      target !== undefined &&
      !rival$ &&
      (store.time ?? 0n) >= target
    ) {
      rival$ = rivalLeases.claim("job", "rival", c.duration).then(
        (won) => {
          rivalStart = sim.now;
          rivalToken = won.token;
        },
        (err: unknown) => {
          rivalError = err;
        },
      );
    }
  };
  if (c.operator === "lower-before") store.operator.setMaxStep(c.maxStep);

  // The holder claims after the updater has been parked for longer than any maxStep.
  const begin = sim.between(4n * oldMaxStep, 6n * oldMaxStep);
  let lease: Lease | undefined;
  let fired: bigint | undefined;
  let loopEnded: bigint | undefined;
  sim.at(begin, () => {
    void (async () => {
      lease = await holderLeases.claim("job", "holder", c.duration);
      const held = lease;
      held.signal.addEventListener("abort", () => {
        fired ??= sim.now;
      });
      const schedule = holdSchedule({ duration: c.duration }, held.maxStep);
      await (m.keep ?? keep)(held, schedule, { clock: holder });
      loopEnded = sim.now;
    })();
  });
  const end = begin + 20n * c.duration;
  await sim.run(end);
  await rival$;
  if (!lease) throw new Error(`seed ${c.seed}: the holder never held the lease`);
  if (rivalError) throw rivalError;
  // A holder that never stopped would act on for ever: as long as the run, at least.
  let holderStop = (m.loop ? loopEnded : fired) ?? end;
  if (m.stopsAt) {
    const at = m.stopsAt({ lease, t0, readAnswered, fired: local(holder, fired ?? end) });
    holderStop = holder.realAt(at);
  }
  return {
    holderStop,
    rivalStart,
    margin: rivalStart === undefined ? undefined : rivalStart - holderStop,
    holderToken: lease.token,
    rivalToken,
  };
}

/** What `proc`'s clock reads at real time `real`. */
function local(proc: Proc, real: bigint): bigint {
  return proc.origin + BigInt(Math.round(Number(real) * proc.rate));
}
