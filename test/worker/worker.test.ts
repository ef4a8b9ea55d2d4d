// The worker's rules, driven by a fake monotonic clock (Juju's worker cases, and ours).
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { ConfigError, InvalidDurationError, MemoryStore, Updater } from "../../src/index.js";
import { startUpdater, type WorkerRole } from "../../src/worker.js";
import { FakeClock, settle } from "../helpers/fake-clock.js";
import { FaultyStore } from "../helpers/faulty-store.js";

const S = 1_000_000_000n;
const MS = 1_000_000n;

async function setup(options: { push?: boolean } = {}) {
  const clock = new FakeClock();
  const inner = new MemoryStore();
  const store = new FaultyStore(inner, options);
  const worker = startUpdater(store, { clock, random: () => 0 });
  await settle();
  return { clock, inner, store, worker };
}

describe("worker (Juju's cases)", () => {
  test("+500ms: no advance; +501ms more: advance(1.001s); then every interval", async () => {
    const { clock, store, worker } = await setup();
    await clock.advance(500);
    assert.deepEqual(store.swaps, []);
    await clock.advance(501);
    assert.deepEqual(store.steps, [1001n * MS]);
    await clock.advance(1000);
    assert.deepEqual(store.steps, [1001n * MS, S]);
    assert.equal(worker.snapshot().role, "active");
    assert.equal(worker.snapshot().time, 2001n * MS);
    await worker.stop();
    assert.equal(worker.snapshot().role, "stopped");
  });

  test("a store error drops the updater and rebuilds it, without counting time twice", async () => {
    const { clock, inner, store, worker } = await setup();
    await clock.advance(1001); // 1.001s stored
    store.failNext("compareAndSwap", "after"); // the next swap lands, but its acknowledgement is lost
    await clock.advance(1000); // 2.001s stored, outcome unknown to the worker
    assert.equal(worker.snapshot().role, "error");
    assert.equal(worker.snapshot().errors, 1);
    assert.equal(await inner.read(), 2001n * MS);
    // Backoff with zero jitter is half the retry delay: 0.5s. Then a new updater reads 2.001s.
    await clock.advance(500);
    assert.equal(worker.snapshot().role, "starting");
    await clock.advance(1000);
    assert.equal(worker.snapshot().role, "active");
    // The new updater adds only what elapsed since it confirmed 2.001s, not the lost step again.
    assert.equal(await inner.read(), 3001n * MS);
    assert.ok(((await inner.read()) as bigint) <= clock.now());
    await worker.stop();
  });

  test("a failure before the swap: nothing stored, nothing re-added", async () => {
    const { clock, inner, store, worker } = await setup();
    store.failNext("compareAndSwap", "before");
    await clock.advance(1000);
    assert.equal(worker.snapshot().errors, 1);
    assert.equal(await inner.read(), 0n);
    await clock.advance(500); // rebuilt at 1.5s
    await clock.advance(1000);
    assert.equal(await inner.read(), S);
    await worker.stop();
  });

  test("repeated errors back off exponentially up to maxRetryDelay, and never crash", async () => {
    const clock = new FakeClock();
    const store = new FaultyStore(new MemoryStore());
    for (let i = 0; i < 6; i++) store.failNext("ensure", "before");
    const attempts: bigint[] = [];
    const worker = startUpdater(store, { clock, random: () => 0, maxRetryDelay: "4s" });
    const seen = (async () => {
      let errors = 0;
      for await (const s of worker.events()) {
        if (s.errors > errors) attempts.push(clock.now());
        errors = s.errors;
      }
    })();
    for (let i = 0; i < 200; i++) await clock.advance(100);
    // Zero jitter waits half of 1s, 2s, 4s, then of the 4s cap.
    const gaps = attempts.slice(1).map((t, i) => t - (attempts[i] as bigint));
    assert.deepEqual(gaps, [500n * MS, 1000n * MS, 2000n * MS, 2000n * MS, 2000n * MS]);
    assert.equal(worker.snapshot().errors, 6);
    assert.ok(worker.snapshot().advances > 0, "it recovered once the store answered");
    await worker.stop();
    await seen;
  });

  test("options are validated once, with messages naming the field", () => {
    const store = new MemoryStore();
    assert.throws(
      () => startUpdater(store, { interval: -1 }),
      (e) => e instanceof InvalidDurationError && e.field === "interval",
    );
    assert.throws(() => startUpdater(store, { interval: "soon" }), InvalidDurationError);
    assert.throws(
      () => startUpdater(store, { interval: 0 }),
      (e) => e instanceof ConfigError && e.field === "interval",
    );
    assert.throws(
      () => startUpdater(store, { interval: "1s", takeoverAfter: "500ms" }),
      (e) =>
        e instanceof ConfigError &&
        e.field === "takeoverAfter" &&
        /longer than interval/.test(e.message),
    );
    assert.throws(
      () => startUpdater(store, { interval: "1s", maxStep: "999ms" }),
      (e) =>
        e instanceof ConfigError && e.field === "maxStep" && /at least interval/.test(e.message),
    );
    assert.throws(() => startUpdater(store, { retryDelay: Number.NaN }), InvalidDurationError);
  });

  test("defaults are frozen and imply their bounds", async () => {
    const worker = startUpdater(new MemoryStore(), { clock: new FakeClock() });
    assert.equal(worker.settings.interval, S);
    assert.equal(worker.settings.takeoverAfter, 2n * S);
    assert.equal(worker.settings.maxStep, 1500n * MS);
    assert.equal(worker.settings.failoverBound, 3n * S);
    assert.equal(worker.settings.pushedFailoverBound, 2n * S);
    // A poll that does not divide takeoverAfter: seen up to 1 s late, then 3 polls.
    const odd = startUpdater(new MemoryStore(), { clock: new FakeClock(), takeoverAfter: "2.5s" });
    assert.equal(odd.settings.failoverBound, 4n * S);
    await odd.stop();
    assert.throws(
      () => startUpdater(new MemoryStore(), { interval: "25d" }),
      /longer than Node's timers allow/,
    );
    assert.throws(
      () => startUpdater(undefined as never),
      (e) => e instanceof ConfigError && e.field === "store",
    );
    assert.ok(Object.isFrozen(worker.settings));
    await worker.stop();
  });
});

describe("worker (no catch-up, takeover)", () => {
  test("a timer that fires 10 s late advances by maxStep, not 10 s", async () => {
    const { clock, store, worker } = await setup();
    await clock.advance(1000);
    await clock.advance(10_000); // the event loop was paused
    assert.deepEqual(store.steps, [S, 1500n * MS]);
    await worker.stop();
  });

  for (const push of [true, false]) {
    test(`conflict: elapsed discarded; stand-by takes over after takeoverAfter, not before (${push ? "pushed" : "polled"})`, async () => {
      const { clock, inner, store, worker } = await setup({ push });
      await clock.advance(1000); // worker: 1s
      const other = await Updater.create(inner);
      await clock.advance(500);
      await other.advance("300ms"); // the other active wins the next step
      await clock.advance(500); // worker wakes at 2s: conflict
      assert.equal(worker.snapshot().conflicts, 1);
      assert.equal(worker.snapshot().role, "standby");
      const workerCalls = store.swaps.length;
      // The other keeps the clock moving: the stand-by never swaps.
      for (let i = 0; i < 5; i++) {
        await clock.advance(1000);
        await other.advance(S);
        await settle();
      }
      assert.equal(store.swaps.length, workerCalls);
      // The other stops at 7s. Pushed, the stand-by saw 6.3s at once; polled, at its 8s poll.
      const seenAt = clock.now() + (push ? 0n : S);
      await clock.advance(seenAt - clock.now());
      await clock.run(1999, 1); // 1 ms ticks, so polls fire on time

      assert.equal(worker.snapshot().time, 6300n * MS);
      assert.equal(store.swaps.length, workerCalls, "no takeover before takeoverAfter");
      await clock.advance(1);
      assert.equal(store.swaps.length, workerCalls + 1, "takeover right after takeoverAfter");
      const takeover = store.swaps.at(-1);
      assert.ok(takeover?.won);
      // It adds only what passed since its confirming read (none, on this clock; 1 ns so
      // that other stand-bys see a change): the 2 s the clock stood still are not made up.
      assert.equal(
        (takeover?.next ?? 0n) - (takeover?.old ?? 0n),
        1n,
        "the takeover adds none of the stall",
      );
      assert.equal(worker.snapshot().role, "active");
      assert.equal(worker.snapshot().takeovers, 1);
      assert.ok(((await inner.read()) as bigint) <= clock.now(), "global elapsed ≤ wall elapsed");
      await worker.stop();
    });
  }

  test("three workers: one active, stand-bys quiet in steady state, failover after the active stops", async () => {
    const clock = new FakeClock();
    const inner = new MemoryStore();
    const stores = [0, 1, 2].map(() => new FaultyStore(inner));
    const workers = stores.map((store) => startUpdater(store, { clock, random: () => 0.5 }));
    await clock.run(3_000);
    const conflictsAfterStart = workers.reduce((n, w) => n + w.snapshot().conflicts, 0);
    assert.ok(conflictsAfterStart <= 2, `start-up conflicts: ${conflictsAfterStart}`);
    await clock.run(60_000);
    const steady = workers.reduce((n, w) => n + w.snapshot().conflicts, 0);
    assert.equal(steady, conflictsAfterStart, "no conflicts in steady state");
    const active = workers.findIndex((w) => w.snapshot().role === "active");
    assert.ok(active >= 0);
    assert.deepEqual(workers.map((w) => w.snapshot().role).sort(), [
      "active",
      "standby",
      "standby",
    ] as WorkerRole[]);
    const before = (await inner.read()) as bigint;
    const stoppedAt = clock.now();
    await workers[active]?.stop();
    await clock.run(3_100);
    const after = (await inner.read()) as bigint;
    assert.ok(after > before, "another worker took over within takeoverAfter + interval");
    const roles = workers.map((w) => w.snapshot().role);
    assert.equal(roles.filter((r) => r === "active").length, 1, roles.join());
    const steps = stores.flatMap((s) => s.steps);
    assert.ok(
      steps.every((s) => s <= 1500n * MS),
      "no step above maxStep",
    );
    assert.ok(after <= clock.now(), "global elapsed ≤ wall elapsed");
    assert.ok(clock.now() - stoppedAt <= 3_100n * MS);
    const takeovers = workers.reduce((n, w) => n + w.snapshot().takeovers, 0);
    assert.equal(takeovers, 1, "exactly one stand-by took over");
    assert.equal(
      steps.filter((s) => s === 1n).length,
      1,
      "the takeover claimed the clock without adding the stall",
    );
    for (const w of workers) await w.stop();
  });

  test("events stream the roles as they change", async () => {
    const { clock, inner, worker } = await setup();
    const roles: WorkerRole[] = [];
    const ac = new AbortController();
    const seen = (async () => {
      for await (const s of worker.events(ac.signal)) {
        if (roles.at(-1) !== s.role) roles.push(s.role);
      }
    })();
    await clock.advance(1000);
    const other = await Updater.create(inner);
    await other.advance(1);
    await clock.advance(1000); // conflict → stand-by
    await clock.advance(2000); // no advance for takeoverAfter → active
    await worker.stop();
    await seen;
    assert.deepEqual(roles, ["starting", "active", "standby", "active", "stopped"]);
  });
});
