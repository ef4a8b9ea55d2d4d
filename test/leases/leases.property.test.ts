/**
 * Property: on a simulated cluster (clock stalls, holders paused, answers lost, monotonic
 * clocks of other origins and slightly other rates), no two holders' windows overlap in
 * real time, and tokens only grow. And the check is shown to catch a broken rule: a
 * deadline computed without subtracting maxStep.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import fc from "fast-check";
import { check, type SimConfig, simulate } from "./simulation.js";

const MS = 1_000_000n;

const config: fc.Arbitrary<SimConfig> = fc.record({
  seed: fc.integer(),
  holders: fc.integer({ min: 2, max: 4 }),
  maxStep: fc.constantFrom(150n * MS, 300n * MS),
  duration: fc.constantFrom(900n * MS, 1_500n * MS, 3_000n * MS),
  failRate: fc.constantFrom(0, 0.05, 0.2),
  pauseRate: fc.constantFrom(0, 0.1, 0.3),
  stallRate: fc.constantFrom(0, 0.02, 0.1),
  length: fc.constant(30_000n * MS),
});

test("no two holders' windows overlap, and tokens only grow", { timeout: 600_000 }, async () => {
  await fc.assert(
    fc.asyncProperty(config, async (c) => {
      const { windows, commits } = await simulate(c, (lease) => lease.deadline);
      assert.ok(windows.length > 0, "somebody held the lease");
      assert.deepEqual(check(windows, commits), []);
    }),
    { numRuns: 200 },
  );
});

test("the check catches a deadline that forgets maxStep", { timeout: 600_000 }, async () => {
  // Without − maxStep, a holder believes it holds the lease for up to maxStep after a
  // rival may have taken it; a stalled clock then jumping maxStep at once shows it.
  const broken = (lease: { deadline: bigint; maxStep: bigint }) => lease.deadline + lease.maxStep;
  let found = 0;
  for (let seed = 1; seed <= 40 && found === 0; seed++) {
    const c: SimConfig = {
      seed,
      holders: 3,
      maxStep: 300n * MS,
      duration: 900n * MS,
      failRate: 0.05,
      pauseRate: 0.3,
      stallRate: 0.1,
      length: 30_000n * MS,
    };
    const { windows, commits } = await simulate(c, broken);
    if (check(windows, commits).length > 0) found = seed;
  }
  assert.ok(found > 0, "no seed in 40 showed the broken rule: the check is too weak");
});
