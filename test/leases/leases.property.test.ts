/**
 * Lease safety on simulated time, with the real Leases, Lease, keep and UpdaterWorker:
 * - the adversary (./sim/boundary.ts) pushes a rival to the earliest instant the safety
 *   argument allows, so that a deadline wrong by 1 ms is caught; and each broken build it
 *   must catch (a negative control) is caught;
 * - a cluster at random (./simulation.ts): updaters frozen and drifting, answers lost and
 *   late, calls that hang, maxStep lowered, raised and deleted, lease records deleted.
 * A failure prints its seed; the run replays from it.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import fc from "fast-check";
import { LeaseLostError } from "../../src/errors.js";
import type { HoldSchedule, KeepOptions } from "../../src/leases/hold.js";
import type { Lease } from "../../src/leases/lease.js";
import { type BoundaryConfig, boundary, type Mutation } from "./sim/boundary.js";
import { check, type SimConfig, simulate } from "./simulation.js";

const MS = 1_000_000n;

const boundaryConfig: fc.Arbitrary<BoundaryConfig> = fc
  .record({
    seed: fc.integer(),
    maxStep: fc.constantFrom(100n * MS, 300n * MS, 1_500n * MS),
    duration: fc.constant(0n),
    renewals: fc.integer({ min: 0, max: 3 }),
    operator: fc.constantFrom("none", "lower-before", "raise-after"),
  })
  .chain((c) =>
    // At least 3 × the largest maxStep the run may see (the operator raises it twice over).
    fc
      .bigInt({ min: 6n * c.maxStep, max: 20n * c.maxStep })
      .map((duration) => ({ ...c, duration })),
  );

test("the adversary at the boundary: the rival never comes in before the holder stops", {
  timeout: 600_000,
}, async () => {
  let closest: bigint | undefined;
  await fc.assert(
    fc.asyncProperty(boundaryConfig, async (c) => {
      const r = await boundary(c);
      assert.ok(r.margin !== undefined, `seed ${c.seed}: the rival never won the lease`);
      assert.ok(r.margin >= 0n, `seed ${c.seed}: the rival came in ${-r.margin} ns too early`);
      assert.ok((r.rivalToken ?? 0n) > r.holderToken, "the rival's token is greater");
      if (closest === undefined || r.margin < closest) closest = r.margin;
    }),
    { numRuns: 300 },
  );
  // The adversary does come close: within the holder's read latency (at most 100 µs).
  assert.ok(closest !== undefined && closest <= 100_000n, `closest margin ${closest} ns`);
});

/** Runs the adversary on a few seeds with a broken build; every run must catch it. */
async function caught(mutation: Mutation, config: Partial<BoundaryConfig> = {}): Promise<void> {
  for (let seed = 1; seed <= 20; seed++) {
    const c: BoundaryConfig = {
      seed,
      maxStep: 300n * MS,
      duration: 3_000n * MS,
      renewals: seed % 3,
      operator: "none",
      ...config,
    };
    const r = await boundary(c, mutation);
    assert.ok(
      r.margin !== undefined && r.margin < 0n,
      `seed ${seed}: the broken build was not caught (margin ${r.margin} ns)`,
    );
  }
}

test("negative control: a holder that stops 1 ms after its deadline is caught", async () => {
  await caught({ stopsAt: ({ lease }) => lease.deadline + MS });
});

test("negative control: a deadline that forgets maxStep is caught", async () => {
  await caught({ stopsAt: ({ lease }) => lease.deadline + lease.maxStep });
});

test("negative control: a drift allowance for the holder's clock alone is caught", async () => {
  // (1 − ρ) of the time left instead of (1 − ρ)/(1 + ρ): 500 ppm more, about 1.4 ms here.
  await caught({
    stopsAt: ({ lease, t0 }) => lease.deadline + ((lease.deadline - t0) * 500n) / 1_000_000n,
  });
});

test("negative control: t0 taken after the read is caught", async () => {
  await caught({ stopsAt: ({ lease, t0, readAnswered }) => lease.deadline + (readAnswered - t0) });
});

test("negative control: a store that lets an advance pass a lowered maxStep is caught", async () => {
  await caught({ storeIgnoresMaxStep: true }, { operator: "lower-before" });
});

test("negative control: an updater that takes a raised maxStep on an old view is caught", async () => {
  await caught({ staleConfirmation: true }, { operator: "raise-after" });
});

test("a holder whose renewal hangs in the store stops at its deadline; a renewal loop without it is caught", async () => {
  // The real loop hands its extend the lease's signal, so a hung call ends at the deadline.
  for (let seed = 1; seed <= 20; seed++) {
    const c: BoundaryConfig = {
      seed,
      maxStep: 300n * MS,
      duration: 3_000n * MS,
      renewals: 1 + (seed % 3),
      operator: "none",
    };
    const r = await boundary(c, { loop: true });
    assert.ok(r.margin !== undefined && r.margin >= 0n, `seed ${seed}: margin ${r.margin}`);
  }
  // Broken: the extend is not given the lease's signal, and the loop waits on it for ever.
  const stuck = async (lease: Lease, schedule: HoldSchedule, options: KeepOptions) => {
    for (;;) {
      await options.clock.sleep(schedule.renewEvery, new AbortController().signal);
      try {
        await lease.extend(schedule.duration);
      } catch (err) {
        if (err instanceof LeaseLostError) return err;
      }
    }
  };
  await caught({ loop: true, keep: stuck }, { renewals: 1 });
});

const randomConfig: fc.Arbitrary<SimConfig> = fc.record({
  seed: fc.integer(),
  holders: fc.integer({ min: 2, max: 4 }),
  maxStep: fc.constantFrom(150n * MS, 300n * MS),
  duration: fc.constantFrom(1_800n * MS, 3_000n * MS),
  failRate: fc.constantFrom(0, 0.05, 0.15),
  hangRate: fc.constantFrom(0, 0.02, 0.1),
  freezeRate: fc.constantFrom(0, 0.02, 0.1),
  operatorRate: fc.constantFrom(0, 6, 30),
  length: fc.constant(30_000n * MS),
});

test("at random: no two holders overlap, and tokens only grow, even across deleted records", {
  timeout: 600_000,
}, async () => {
  let handovers = 0;
  await fc.assert(
    fc.asyncProperty(randomConfig, async (c) => {
      const result = await simulate(c);
      assert.ok(result.windows.length > 0, `seed ${c.seed}: nobody held the lease`);
      assert.deepEqual(
        check(result),
        [],
        `seed ${c.seed}; operator: ${result.operator.join("; ")}`,
      );
      handovers += result.grants.length - 1;
    }),
    { numRuns: 60 },
  );
  assert.ok(handovers > 100, `only ${handovers} handovers in all: the runs judged little`);
});

test("negative control at random: a deadline that forgets maxStep is caught", {
  timeout: 600_000,
}, async () => {
  const broken = (lease: Lease, fired: bigint) => fired + lease.maxStep;
  let found = 0;
  for (let seed = 1; seed <= 40 && found === 0; seed++) {
    const result = await simulate(
      {
        seed,
        holders: 3,
        maxStep: 300n * MS,
        duration: 1_800n * MS,
        failRate: 0.05,
        hangRate: 0.05,
        freezeRate: 0.1,
        operatorRate: 0,
        length: 30_000n * MS,
      },
      broken,
    );
    if (check(result).length > 0) found = seed;
  }
  assert.ok(found > 0, "no seed in 40 showed the broken rule: the check is too weak");
});
