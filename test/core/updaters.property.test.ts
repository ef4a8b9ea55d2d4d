/**
 * Property: N updaters on a simulated monotonic clock, with random schedules, races and
 * injected failures of unknown outcome, keep the clock monotonic, never let global time
 * run ahead of simulated wall time, and let exactly one of each contested swap win; on
 * separate connections to a memory clock and to a SQLite file.
 */
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";
import fc from "fast-check";
import { SqliteStore } from "../../src/stores/sqlite/index.js";
import {
  DOCUMENTED_RULE,
  type Fault,
  newTally,
  type Opener,
  type Rule,
  type Step,
  simulate,
} from "./simulation.js";

const fault: fc.Arbitrary<Fault> = fc.oneof(
  { arbitrary: fc.constant<Fault>("none"), weight: 6 },
  { arbitrary: fc.constant<Fault>("before"), weight: 1 },
  { arbitrary: fc.constant<Fault>("after"), weight: 1 },
);

const step: fc.Arbitrary<Step> = fc.oneof(
  {
    // up to 200 ms, sometimes past the 150 ms cap on one advance
    arbitrary: fc
      .bigInt({ min: 0n, max: 200_000_000n })
      .map((ns) => ({ kind: "tick", ns }) as const),
    weight: 7,
  },
  {
    arbitrary: fc.record({ kind: fc.constant("advance" as const), who: fc.nat(7), fault }),
    weight: 4,
  },
  {
    arbitrary: fc.record({
      kind: fc.constant("race" as const),
      racers: fc.array(fc.record({ who: fc.nat(7), fault, yields: fc.nat(3) }), {
        minLength: 2,
        maxLength: 4,
      }),
    }),
    weight: 2,
  },
  { arbitrary: fc.record({ kind: fc.constant("restart" as const), who: fc.nat(7) }), weight: 1 },
);

const schedule = fc.tuple(
  fc.integer({ min: 2, max: 5 }),
  fc.array(step, { minLength: 5, maxLength: 60, size: "max" }),
);

const dir = mkdtempSync(join(tmpdir(), "globalclock-property-"));
after(() => rmSync(dir, { recursive: true, force: true }));
const openSqlite: Opener = (name) => new SqliteStore({ path: join(dir, `${name}.db`) });

for (const [store, open, runs] of [
  ["memory", undefined, 1000],
  ["SQLite", openSqlite, 300],
] as const) {
  test(`N updaters on ${store} under random schedules and ambiguous failures keep the invariants`, async (t) => {
    const tally = newTally();
    await fc.assert(
      fc.asyncProperty(schedule, ([count, steps]) =>
        simulate(count, steps, DOCUMENTED_RULE, tally, open),
      ),
      { numRuns: runs },
    );
    t.diagnostic(`over ${runs} schedules: ${JSON.stringify(tally)}`);
    // The checks above mean something only if every kind of event really happened.
    assert.ok(tally.wins > 0, "no advance won");
    assert.ok(tally.outOfSync > 0, "no advance lost a race");
    assert.ok(tally.unacknowledgedCommits > 0, "no committed-but-unacknowledged swap was injected");
    assert.ok(tally.lostBeforeStore > 0, "no swap failed before the store");
    assert.ok(tally.contestedRaces > 0, "no race had two contenders");
  });
}

// The same property must catch updaters that count time they have already added.
for (const [name, rule] of [
  ["keeps its base after losing a race", { ...DOCUMENTED_RULE, resetOnOutOfSync: false }],
  [
    "keeps its base across a failure of unknown outcome",
    { ...DOCUMENTED_RULE, resetOnNewUpdater: false },
  ],
] as Array<[string, Rule]>) {
  test(`the property fails for an updater that ${name}`, async () => {
    const result = await fc.check(
      fc.asyncProperty(schedule, ([count, steps]) => simulate(count, steps, rule)),
      { numRuns: 1000 },
    );
    assert.equal(result.failed, true, `no counterexample found (seed ${result.seed})`);
    assert.match(String(result.errorInstance), /exceeds simulated wall elapsed/);
  });
}
