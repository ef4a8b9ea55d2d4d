/**
 * Several processes advance one SQLite file at once through the real Updater, while an
 * observer process and this test read it. The recorded reads must satisfy invariants 1
 * and 3; every advancer must exit cleanly (no SQLITE_BUSY surfaced) having won advances.
 */
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, type TestContext, test } from "node:test";
import { Reader } from "../../src/index.js";
import { SqliteStore } from "../../src/stores/sqlite/index.js";
import { type Child, spawnFixture } from "../fixtures/spawn.js";
import { checkHistory, recordReads, type Sample, samplesFromJson } from "../helpers/history.js";

const ADVANCERS = 3;
const MAX_STEP = 50_000_000n; // what the advancers cap each advance at: 50 ms

const dir = mkdtempSync(join(tmpdir(), "globalclock-multiprocess-"));
const children: Child[] = [];
after(() => {
  for (const child of children) child.kill();
  rmSync(dir, { recursive: true, force: true });
});
let runs = 0;

interface Advancer {
  name: string;
  won: number;
  conflicts: number;
  advancedNs: bigint;
}

/** Runs the advancers and the observer for `runMs` on a new file; returns what they saw. */
async function runFleet(
  runMs: number,
  rule: string,
): Promise<{ history: Sample[]; advancers: Advancer[] }> {
  const path = join(dir, `clock-${runs++}.db`);
  const args = [path, String(runMs)];
  const fleet: Child[] = [];
  for (let i = 1; i <= ADVANCERS; i++) {
    const stepMs = String(MAX_STEP / 1_000_000n);
    fleet.push(spawnFixture(`advancer ${i}`, "./sqlite-advancer.ts", [...args, stepMs, rule]));
  }
  const observer = spawnFixture("observer", "./sqlite-observer.ts", args);
  fleet.push(observer);
  children.push(...fleet);
  await Promise.all(fleet.map((c) => c.ready));
  for (const c of fleet) assert.equal(c.process.exitCode, null, `${c.name} died while starting`);

  const store = new SqliteStore({ path });
  const reader = new Reader(store, { onClose: () => store.close() });
  const start = process.hrtime.bigint() + 100_000_000n; // 100 ms from now, for all of them
  for (const c of fleet) c.start(start);
  const ac = new AbortController();
  const own = recordReads((signal) => reader.now(signal), { signal: ac.signal, source: "test" });
  const results = await Promise.all(fleet.map((c) => c.done));
  ac.abort();
  const history = await own;
  await reader.close();

  const advancers: Advancer[] = [];
  for (const [i, c] of fleet.entries()) {
    const { code, stderr, result } = results[i] as (typeof results)[number];
    assert.equal(code, 0, `${c.name} exited with ${code}:\n${stderr}`);
    assert.equal(stderr, "", `${c.name} wrote to stderr`);
    if (c === observer) {
      history.push(...samplesFromJson((result as { samples: string[][] }).samples, c.name));
    } else {
      const r = result as { won: number; conflicts: number; advancedNs: string };
      advancers.push({ ...r, name: c.name, advancedNs: BigInt(r.advancedNs) });
    }
  }
  return { history, advancers };
}

function summary(t: TestContext, history: Sample[], advancers: Advancer[]): void {
  for (const a of advancers) {
    t.diagnostic(
      `${a.name}: ${a.won} advances won, ${a.conflicts} lost to another updater, ` +
        `${Number(a.advancedNs) / 1e6} ms added`,
    );
  }
  const first = history.reduce((a, b) => (a.before < b.before ? a : b));
  const last = history.reduce((a, b) => (a.after > b.after ? a : b));
  const wall = Number(last.after - first.before) / 1e6;
  const global = Number(last.global - first.global) / 1e6;
  t.diagnostic(
    `${history.length} reads by 2 processes; global time advanced ${global.toFixed(1)} ms ` +
      `in ${wall.toFixed(1)} ms of wall time`,
  );
}

test(`${ADVANCERS} processes advancing one SQLite file keep the invariants`, {
  timeout: 120_000,
}, async (t) => {
  const { history, advancers } = await runFleet(2500, "documented");
  summary(t, history, advancers);
  for (const a of advancers) assert.ok(a.won > 0, `${a.name} never won an advance`);
  assert.ok(history.length > 100, `only ${history.length} reads recorded`);
  const first = history.reduce((a, b) => (a.before < b.before ? a : b));
  const last = history.reduce((a, b) => (a.after > b.after ? a : b));
  assert.ok(last.global > first.global, "global time never advanced");
  const violations = checkHistory(history, MAX_STEP);
  assert.deepEqual(violations, [], violations.join("\n"));
});

test("the same run catches updaters that re-add time after a lost advance", {
  timeout: 120_000,
}, async (t) => {
  const { history, advancers } = await runFleet(1500, "keep-base-on-conflict");
  summary(t, history, advancers);
  const violations = checkHistory(history, MAX_STEP);
  assert.ok(
    violations.some((v) => v.startsWith("jump:")),
    "a clock running fast went unnoticed",
  );
});
