// The worker in the operators' world, on a fake monotonic clock: a stored time set back (a
// restored backup), a deleted record, and failures no retry can mend.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { ConfigError, MemoryStore, StoreError, Updater } from "../../src/index.js";
import { memoryCell } from "../../src/stores/memory/index.js";
import { startUpdater } from "../../src/worker.js";
import { FakeClock, settle } from "../helpers/fake-clock.js";
import { FaultyStore } from "../helpers/faulty-store.js";

const S = 1_000_000_000n;
const MS = 1_000_000n;
let n = 0;

function setup(options: { push?: boolean; workers?: number } = {}) {
  const clock = new FakeClock();
  const name = `operators-${process.pid}-${n++}`;
  const cell = memoryCell(name);
  const stores = Array.from(
    { length: options.workers ?? 1 },
    () => new FaultyStore(new MemoryStore(name), options),
  );
  const workers = stores.map((store) => startUpdater(store, { clock, random: () => 0 }));
  return { clock, cell, stores, workers, worker: workers[0] as (typeof workers)[0] };
}

describe("worker: a stored time set back", () => {
  for (const push of [true, false]) {
    test(`resumes from the lower stored time after takeoverAfter, adding none of the stall (${push ? "pushed" : "polled"})`, async () => {
      const { clock, cell, worker, stores } = setup({ push });
      await settle();
      await clock.run(10_000, 10); // about 10 s of global time
      const high = cell.value as bigint;
      assert.ok(high >= 9n * S, `${high}`);
      const restored = high - 5n * S; // a backup taken 5 s earlier
      cell.value = restored;
      const swapsBefore = (stores[0] as FaultyStore).swaps.filter((s) => s.won).length;
      // The next advance loses (the stored value is not the one it saw): a regression,
      // confirmed by the read after the lost swap.
      await clock.run(1_010, 10);
      const s = worker.snapshot();
      assert.equal(s.regressions, 1);
      assert.deepEqual(s.lastRegression, { from: high, to: restored });
      assert.equal(s.role, "standby");
      assert.equal(cell.value, restored, "nothing written while it waits");
      // takeoverAfter (2 s) later the stored time is taken as the truth.
      await clock.run(2_000, 10);
      const won = (stores[0] as FaultyStore).swaps.filter((x) => x.won);
      assert.ok(won.length > swapsBefore, "it took over");
      const takeover = won[swapsBefore] as { old: bigint; next: bigint };
      assert.equal(takeover.old, restored, "from the restored time");
      assert.ok(takeover.next - takeover.old <= 10n * MS, "none of the stall was added");
      await clock.run(3_000, 10);
      assert.equal(worker.snapshot().role, "active");
      assert.ok((cell.value as bigint) > restored + 2n * S, "and the clock moves on");
      assert.equal(worker.snapshot().regressions, 1, "counted once");
      await worker.stop();
    });
  }

  test("two workers: both see it, one resumes the clock", async () => {
    const { clock, cell, workers } = setup({ workers: 2 });
    await settle();
    await clock.run(6_000, 10);
    const high = cell.value as bigint;
    cell.value = 1n * S;
    await clock.run(6_000, 10);
    assert.ok((cell.value as bigint) > 2n * S && (cell.value as bigint) < high, `${cell.value}`);
    const active = workers.filter((w) => w.snapshot().role === "active");
    assert.equal(active.length, 1);
    assert.ok(workers.some((w) => w.snapshot().regressions === 1));
    await Promise.all(workers.map((w) => w.stop()));
  });
});

describe("worker: a deleted record", () => {
  test("is never re-created at the epoch; the worker reports it and resumes once it is restored", async () => {
    const { clock, cell, worker } = setup();
    await settle();
    await clock.run(5_000, 10);
    const high = cell.value as bigint;
    cell.value = undefined; // DELETE FROM globalclock
    await clock.run(30_000, 50);
    assert.equal(cell.value, undefined, "never re-created");
    const s = worker.snapshot();
    assert.equal(s.role, "error");
    assert.equal(s.lastErrorName, "ClockRecordMissingError");
    assert.match(s.lastError ?? "", /clock record is gone/);
    assert.equal(s.recordMissing, 1, "one episode, however many retries");
    assert.ok(s.errors > 1);
    assert.equal(worker.failure, undefined, "after a healthy start it keeps trying");
    cell.value = high; // restored
    await clock.run(15_000, 50);
    assert.equal(worker.snapshot().role, "active");
    assert.ok((cell.value as bigint) > high);
    await worker.stop();
  });

  test("a worker that never saw a time creates it, as Juju's does", async () => {
    const { clock, cell, worker } = setup();
    await settle();
    assert.equal(cell.value, 0n);
    await clock.run(1_100, 10);
    assert.ok((cell.value as bigint) > 0n);
    await worker.stop();
  });
});

/** A store whose every call fails with `err`, counting the calls. */
function failing(err: Error) {
  const store = new FaultyStore(new MemoryStore());
  let calls = 0;
  const fail = async () => {
    calls++;
    throw err;
  };
  return {
    store: Object.assign(store, { ensure: fail, read: fail, compareAndSwap: fail }),
    calls: () => calls,
  };
}

describe("worker: failures no retry can mend", () => {
  test("before any call succeeded, a non-retryable error stops the worker with that error", async () => {
    const clock = new FakeClock();
    const err = new StoreError("postgres", "ensure", "password authentication failed (28P01)", {
      retryable: false,
    });
    const { store, calls } = failing(err);
    const worker = startUpdater(store, { clock, random: () => 0 });
    await clock.run(5_000, 50);
    assert.equal(worker.failure, err);
    assert.equal(worker.snapshot().role, "stopped");
    assert.equal(calls(), 1, "no retries");
    await worker.stop();
  });

  test("a retryable error before the first success is retried", async () => {
    const clock = new FakeClock();
    const err = new StoreError("postgres", "ensure", "connection refused");
    const { store, calls } = failing(err);
    const worker = startUpdater(store, { clock, random: () => 0 });
    await clock.run(5_000, 50);
    assert.equal(worker.failure, undefined);
    assert.equal(worker.snapshot().role, "error");
    assert.ok(calls() > 2);
    await worker.stop();
  });

  test("after a healthy start, a non-retryable error is retried, never fatal", async () => {
    const { clock, stores, worker } = setup();
    await settle();
    await clock.run(2_000, 10);
    const store = stores[0] as FaultyStore;
    const original = store.compareAndSwap.bind(store);
    let fail = true;
    store.compareAndSwap = async (old, next, signal) => {
      if (fail)
        throw new StoreError("memory", "compareAndSwap", "permission denied", { retryable: false });
      return original(old, next, signal);
    };
    await clock.run(5_000, 50);
    assert.equal(worker.failure, undefined);
    assert.equal(worker.snapshot().role, "error");
    fail = false;
    await clock.run(15_000, 50);
    assert.equal(worker.snapshot().role, "active");
    await worker.stop();
  });

  test("an updater made by hand builds on the stored time after a restore", async () => {
    const store = new MemoryStore();
    const u = await Updater.create(store);
    await u.advance(10n * S);
    await store.compareAndSwap(10n * S, 3n * S); // restored behind its back
    await assert.rejects(u.advance(S), /expected 10000000000ns, found 3000000000ns/);
    assert.equal(await u.advance(S), 4n * S);
  });
});

describe("worker: the cluster's maxStep", () => {
  test("the first worker stores its maxStep; one that could step further refuses to run", async () => {
    const clock = new FakeClock();
    const name = `maxstep-${process.pid}-${n++}`;
    const first = startUpdater(new MemoryStore(name), { clock, interval: "1s" });
    await clock.run(100, 10);
    assert.equal(memoryCell(name).maxStep, 1_500_000_000n);
    const smaller = startUpdater(new MemoryStore(name), { clock, interval: "500ms" });
    const larger = startUpdater(new MemoryStore(name), { clock, interval: "2s" });
    await clock.run(3_000, 10);
    assert.equal(smaller.failure, undefined);
    assert.ok(larger.failure instanceof ConfigError, String(larger.failure));
    assert.equal((larger.failure as ConfigError).field, "maxStep");
    assert.match(String(larger.failure), /maxStep \(3s\) is larger than the cluster's \(1\.5s\)/);
    assert.equal(larger.snapshot().advances, 0, "it never advanced the clock");
    await Promise.all([first.stop(), smaller.stop(), larger.stop()]);
  });
});

describe("worker: the cluster's maxStep changed under it", () => {
  test("lowered: the store refuses its next step, and from then on it steps within the new value at the same pace", async () => {
    const clock = new FakeClock();
    const name = `max-step-${process.pid}-${n++}`;
    const cell = memoryCell(name);
    const store = new MemoryStore(name);
    const worker = startUpdater(store, { clock, random: () => 0 }); // interval 1 s, maxStep 1.5 s
    await settle();
    await clock.run(5_000, 10);
    assert.equal(worker.snapshot().clusterMaxStep, 1_500n * MS);
    // An operator lowers it; then the worker is paused for 1.3 s (a long GC, SIGSTOP).
    assert.equal(await store.leases.swapMaxStep(1_500n * MS, 300n * MS), true);
    const before = cell.value as bigint;
    const steps: bigint[] = [];
    let last = before;
    cell.listeners.add((time) => {
      steps.push(time - last);
      last = time;
    });
    await clock.advance(1_300n * MS);
    await clock.run(5_000, 10);
    const s = worker.snapshot();
    assert.equal(s.clusterMaxStep, 300n * MS);
    assert.ok(s.maxStepChanges >= 1, "a step was refused and the new value read");
    assert.ok(steps.length >= 5, `steps: ${steps}`);
    for (const step of steps)
      assert.ok(step <= 300n * MS, `a step of ${step} ns after the lowering`);
    assert.ok((cell.value as bigint) - before > 3n * S, "global time kept pace with the clock");
    await worker.stop();
    await store.close();
  });

  test("raised: it keeps its own maxStep; a worker that could step further than the cluster refuses to start", async () => {
    const clock = new FakeClock();
    const name = `max-step-raise-${process.pid}-${n++}`;
    const store = new MemoryStore(name);
    const worker = startUpdater(store, { clock, random: () => 0 });
    await settle();
    await clock.run(2_000, 10);
    assert.equal(await store.leases.swapMaxStep(1_500n * MS, 3_000n * MS), true);
    await clock.advance(2_500n * MS); // paused longer than its own maxStep
    await clock.run(1_000, 10);
    assert.equal(worker.snapshot().clusterMaxStep, 3_000n * MS);
    assert.ok((worker.snapshot().lastStep ?? 0n) <= 1_500n * MS, "its own bound still holds");
    await worker.stop();
    const big = startUpdater(new MemoryStore(name), { clock, maxStep: "4s", interval: "2s" });
    await settle();
    await clock.run(100, 10);
    assert.ok(big.failure instanceof ConfigError, String(big.failure));
    assert.match(String(big.failure), /larger than the cluster's \(3s\)/);
    await big.stop();
    await store.close();
  });
});
