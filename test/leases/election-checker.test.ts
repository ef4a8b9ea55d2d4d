// checkElection (election-faults.ts) on records made by hand: a safe run passes, and each
// kind of violation injected into it is caught (the checks' negative controls).
import assert from "node:assert/strict";
import { test } from "node:test";
import type { Write } from "../helpers/guarded.js";
import { checkElection, type ElectionRecord } from "./election-check.js";

const MS = 1_000_000n;
const S = 1_000_000_000n;

/** Writes of one term every 20 ms over [fromMs, toMs], accepted unless `refused`. */
function writes(holder: string, token: bigint, fromMs: number, toMs: number, refused = false) {
  const out: Write[] = [];
  for (let ms = fromMs; ms <= toMs; ms += 20)
    out.push({ at: BigInt(ms) * MS, holder, token, pid: 1, accepted: !refused });
  return out;
}

const byArrival = (list: Write[]) => list.sort((a, b) => (a.at < b.at ? -1 : 1));

/**
 * c0#1 leads, then is cut off and stops; c1#2 takes over at its expiry and is frozen; c2#3
 * takes over, and c1#2, resumed, writes once more: refused.
 */
function safeRun(): ElectionRecord {
  return {
    writes: byArrival([
      ...writes("c0", 1n, 0, 2000),
      ...writes("c1", 2n, 3000, 5000),
      ...writes("c2", 3n, 8000, 9000),
      ...writes("c1", 2n, 8500, 8500, true),
    ]),
    frozen: new Set(["c1#2"]),
    lapsed: [
      { holder: "c0", token: 1n },
      { holder: "c1", token: 2n },
    ],
    elections: [
      { holder: "c0", token: 1n, at: 0n },
      { holder: "c1", token: 2n, at: 3000n * MS },
      { holder: "c2", token: 3n, at: 8000n * MS },
    ],
    tenures: [
      { holder: "c0", token: 1n, start: 10n * S, expiry: 13n * S },
      { holder: "c1", token: 2n, start: 13n * S, expiry: 17n * S },
      { holder: "c2", token: 3n, start: 17n * S + 500n * MS, expiry: 21n * S },
    ],
    maxStep: S,
    struck: new Map(),
  };
}

test("a safe run: no violations", () => {
  assert.deepEqual(checkElection(safeRun()), []);
});

test("a leader that writes after its successor's first write is caught", () => {
  const run = safeRun();
  // c0#1 acts 40 ms into c1#2's term; its writes reach the resource first, so accepted.
  const late = writes("c0", 1n, 3010, 3030);
  const violations = checkElection({ ...run, writes: byArrival([...run.writes, ...late]) });
  assert.ok(
    violations.some((v) => v.startsWith("c0#1 wrote after c1#2 began (2 writes, the last 30 ms")),
    violations.join("\n"),
  );
});

test("a refused write of a leader that was never frozen is caught", () => {
  const run = safeRun();
  const refused = writes("c0", 1n, 2990, 2990, true);
  const violations = checkElection({ ...run, writes: byArrival([...run.writes, ...refused]) });
  assert.deepEqual(violations, ["c0#1 had writes refused (1), and its process was never frozen"]);
});

test("a frozen leader's late write that was accepted is caught", () => {
  const run = safeRun();
  const accepted = run.writes.map((w) => ({ ...w, accepted: true }));
  const violations = checkElection({ ...run, writes: accepted });
  assert.ok(violations.some((v) => v.includes("accepted though its token was old")));
  assert.ok(violations.some((v) => v.includes("the fencing was never exercised")));
});

test("a frozen process's term is excused only for refused late writes, not other terms", () => {
  const run = safeRun();
  // c1 led again later with a new token (never frozen) and wrote into c3#4's term.
  const again = [...writes("c1", 4n, 9500, 9600), ...writes("c3", 5n, 9590, 9700)];
  const violations = checkElection({ ...run, writes: byArrival([...run.writes, ...again]) });
  assert.ok(violations.some((v) => v.startsWith("c1#4 wrote after c3#5 began")));
});

test("tokens that do not grow are caught, by the leaders' lines and by the store", () => {
  const run = safeRun();
  const elections = [...run.elections, { holder: "c3", token: 2n, at: 9500n * MS }];
  const tenures = [...run.tenures, { holder: "c3", token: 2n, start: 22n * S, expiry: 25n * S }];
  assert.deepEqual(checkElection({ ...run, elections, tenures }), [
    "c3#2 led after c2#3: tokens must grow",
    "c3#2 led after c2#3: tokens must grow",
  ]);
});

test("a successor too early or too late after a lapsed lease's expiry is caught", () => {
  const run = safeRun();
  const [c0, c1, c2] = run.tenures.map((t) => ({ ...t }));
  assert.ok(c0 && c1 && c2);
  const early = { ...c1, start: c0.expiry - 1n };
  assert.deepEqual(checkElection({ ...run, tenures: [c0, early, c2] }), [
    "c1#2 started before c0#1's expiry",
  ]);
  const slow = { ...c2, start: c1.expiry + run.maxStep + 2n * S + 1n };
  assert.deepEqual(checkElection({ ...run, tenures: [c0, c1, slow] }), [
    "c2#3 started 3000000001 ns of global time after c1#2's expiry",
  ]);
  assert.deepEqual(checkElection({ ...run, tenures: [c0, c1] }), [
    "no leader after c1#2 stopped, as the store showed it",
  ]);
});
