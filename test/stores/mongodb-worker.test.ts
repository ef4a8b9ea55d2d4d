/**
 * Updater workers on the MongoDB store while the wire-protocol test double injects
 * failures: every failure of unknown outcome costs a worker its updater, the worker
 * rebuilds it and carries on, time never decreases, no acknowledged advance is lost,
 * nothing is counted twice. On the replica-set double a second worker stands by on a
 * change stream, and a watcher's change stream resumes after every connection is cut.
 */
import assert from "node:assert/strict";
import { type TestContext, test } from "node:test";
import { type ClockStore, openStore } from "../../src/index.js";
import { startUpdater, type UpdaterWorker } from "../../src/worker.js";
import { checkHistory } from "../helpers/history.js";
import { checkAcks, ms, observeReads, WorkerLog, watchPushes } from "../helpers/store-faults.js";
import { type Fault, MongoDouble } from "../mongo-double/server.js";

const now = () => process.hrtime.bigint();

const FAULTS: Array<[string, Fault[]]> = [
  ["connection lost after the write", [{ command: "update", action: { kind: "drop-after" } }]],
  ["connection lost before the write", [{ command: "update", action: { kind: "drop-before" } }]],
  [
    "NotWritablePrimary, twice",
    [
      {
        command: "update",
        times: 2,
        action: { kind: "error", code: 10107, codeName: "NotWritablePrimary" },
      },
    ],
  ],
  ["an answer after the timeout", [{ command: "update", action: { kind: "delay", ms: 1500 } }]],
  ["a write-concern error", [{ command: "update", action: { kind: "write-concern-error" } }]],
  [
    // Both writes fail even where the driver retries; the answer to the rebuild's read
    // (a worker that has seen a time rebuilds on the stored record, never by an upsert)
    // is then lost, and the driver's retryable read, or the worker's next rebuild, mends it.
    "NotWritablePrimary twice, then a lost answer to the rebuild",
    [
      {
        command: "update",
        times: 2,
        action: { kind: "error", code: 10107, codeName: "NotWritablePrimary" },
      },
      { command: "find", action: { kind: "drop-after" } },
    ],
  ],
];

async function run(t: TestContext, replicaSet: string | undefined): Promise<void> {
  const double = await MongoDouble.start({ replicaSet });
  const url = double.uri("", "timeout=500ms");
  const stores: ClockStore[] = [];
  const open = async () => {
    const store = await openStore(url);
    stores.push(store);
    return store;
  };
  const options = {
    interval: "100ms",
    takeoverAfter: "300ms",
    retryDelay: "100ms",
    maxRetryDelay: "400ms",
  };
  const stop = new AbortController();
  const workers: UpdaterWorker[] = [startUpdater(await open(), options)];
  if (replicaSet) workers.push(startUpdater(await open(), options)); // stands by on a change stream
  const logs = workers.map((w) => new WorkerLog(w, stop.signal));
  const observer = await open();
  let observing: ReturnType<typeof observeReads> | undefined;
  let watching: ReturnType<typeof watchPushes> | undefined;
  const total = () => logs.reduce((n, l) => n + l.last.advances, 0);
  /** Waits until the workers together have made `more` advances. */
  const progress = async (more: number) => {
    const target = total() + more;
    const deadline = Date.now() + 30_000;
    while (total() < target) {
      const s = workers.map((w) => w.snapshot());
      assert.ok(
        Date.now() < deadline,
        `no progress: ${JSON.stringify(s, (_, v) => (typeof v === "bigint" ? `${v}` : v))}`,
      );
      await new Promise((r) => setTimeout(r, 20));
    }
  };
  let wallStart = 0n;
  let globalStart = 0n;
  try {
    await progress(3);
    observing = observeReads(observer, stop.signal);
    watching = watchPushes(await open(), stop.signal);
    wallStart = now();
    globalStart = (await observer.read()) ?? 0n;
    const plan: Array<[string, Fault[] | "cut"]> = [...FAULTS];
    if (replicaSet) plan.push(["every connection cut (change streams resume)", "cut"]);
    for (const [what, faults] of plan) {
      await progress(3);
      const at = now();
      const stored = (await observer.read()) ?? 0n;
      if (faults === "cut") double.dropConnections();
      else for (const fault of faults) double.inject(fault);
      const deadline = Date.now() + 30_000;
      while (double.pendingFaults > 0) {
        assert.ok(Date.now() < deadline, `${what}: the fault never struck`);
        await new Promise((r) => setTimeout(r, 10));
      }
      await progress(5);
      const firsts = logs
        .map((l) => l.firstAckAfter(at)?.at)
        .filter((a): a is bigint => a !== undefined);
      const [first] = firsts.sort((a, b) => (a < b ? -1 : 1));
      t.diagnostic(`${what}: next acknowledged advance ${ms(at, first ?? at)} after the fault`);
      const seenAfter = Date.now() + 30_000;
      while (!watching.seen.some((w) => w.time > stored && w.at > at)) {
        assert.ok(Date.now() < seenAfter, `${what}: the watch saw nothing new afterwards`);
        await new Promise((r) => setTimeout(r, 20));
      }
    }
  } finally {
    await Promise.all(workers.map((w) => w.stop()));
    stop.abort();
  }
  const wallEnd = now();
  const globalEnd = (await observer.read()) ?? 0n;
  const { samples } = await (observing as ReturnType<typeof observeReads>);
  await watching?.done.catch(() => {});
  await Promise.all(logs.map((l) => l.finished()));
  await Promise.all(stores.map((s) => s.close()));
  await double.close();

  const maxStep = workers[0]?.settings.maxStep ?? 0n;
  const statuses = workers.map((w) => w.snapshot());
  const errors = statuses.reduce((n, s) => n + s.errors, 0);
  t.diagnostic(
    `${statuses.map((s) => `${s.advances} advances, ${s.errors} errors, ${s.conflicts} conflicts, ${s.takeovers} takeovers`).join("; ")}; ` +
      `${samples.length} reads; global ${ms(globalStart, globalEnd)} over wall ${ms(wallStart, wallEnd)}`,
  );
  // On a standalone server the driver retries no write, so every fault cost an updater.
  if (!replicaSet)
    assert.ok(errors >= FAULTS.length, `${errors} errors for ${FAULTS.length} faults`);
  assert.deepEqual(checkHistory(samples, maxStep), []);
  for (const log of logs) assert.deepEqual(checkAcks(log.acks, samples), []);
  assert.ok(
    globalEnd - globalStart <= wallEnd - wallStart + maxStep,
    `counted twice: global ${globalEnd - globalStart}ns > wall ${wallEnd - wallStart}ns + maxStep`,
  );
  const seen = (watching as ReturnType<typeof watchPushes>).seen.map((w) => w.time);
  for (let i = 1; i < seen.length; i++) assert.ok((seen[i] as bigint) > (seen[i - 1] as bigint));
}

test(
  "mongodb (standalone double): a worker recovers from every injected fault",
  { timeout: 120_000 },
  (t) => run(t, undefined),
);

test(
  "mongodb (replica-set double): two workers and a change-stream watch ride out the faults",
  { timeout: 120_000 },
  (t) => run(t, "rs0"),
);
