// The worker's rules, driven by a fake monotonic clock (Juju's worker cases, and ours).
import assert from "node:assert/strict";
import { getEventListeners } from "node:events";
import { describe, test } from "node:test";
import {
  ConfigError,
  InvalidDurationError,
  MemoryStore,
  StoreError,
  Updater,
} from "../../src/index.js";
import { memoryCell } from "../../src/stores/memory/index.js";
import {
  startUpdater,
  type UpdaterWorker,
  type WorkerRole,
  type WorkerStatus,
} from "../../src/worker.js";
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
      const reads = store.calls.read;
      // The other keeps the clock moving: the stand-by never swaps.
      for (let i = 0; i < 5; i++) {
        await clock.advance(1000);
        await other.advance(S);
        await settle();
      }
      assert.equal(store.swaps.length, workerCalls);
      // Pushed, it reads nothing while the time moves; polled, it reads every second.
      assert.equal(store.calls.read - reads, push ? 0 : 5);
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

/** A fake clock that keeps the signals the worker waits on: its own stop signal. */
class SpyClock extends FakeClock {
  readonly signals = new Set<AbortSignal>();
  override sleep(ns: bigint, signal: AbortSignal): Promise<boolean> {
    this.signals.add(signal);
    return super.sleep(ns, signal);
  }
  /** The worker's stop signal (the only one it passes to the clock). */
  get signal(): AbortSignal {
    assert.equal(this.signals.size, 1);
    return [...this.signals][0] as AbortSignal;
  }
}

const abortListeners = (signal: AbortSignal) => getEventListeners(signal, "abort").length;

/** Starts a worker on a FaultyStore, lets it win its first step (1 s), then loses a race. */
async function inStandBy(store: FaultyStore, inner: MemoryStore, clock = new FakeClock()) {
  const worker = startUpdater(store, { clock, random: () => 0 });
  await settle();
  await clock.advance(1000); // worker: 1s
  const other = await Updater.create(inner);
  await other.advance("300ms"); // 1.3s: the worker's next step loses
  await clock.advance(1000);
  assert.equal(worker.snapshot().role, "standby");
  assert.equal(worker.snapshot().time, 1300n * MS);
  return { worker, other, clock };
}

describe("worker: signals, listeners, disposal", () => {
  test("a missing store is a ConfigError that says what to pass", () => {
    assert.throws(
      () => startUpdater(undefined as never),
      (e) => e instanceof ConfigError && /missing store: pass a ClockStore/.test(e.message),
    );
  });

  test("a signal aborted before the start: stopped at once, the store never called", async () => {
    const clock = new FakeClock();
    const store = new FaultyStore(new MemoryStore());
    const ac = new AbortController();
    ac.abort();
    const worker = startUpdater(store, { clock, signal: ac.signal });
    await settle();
    assert.equal(worker.snapshot().role, "stopped");
    assert.deepEqual(store.calls, { read: 0, ensure: 0, compareAndSwap: 0 });
    assert.equal(abortListeners(ac.signal), 0);
  });

  test("aborting the caller's signal stops the worker and leaves no listener on it", async () => {
    const clock = new FakeClock();
    const store = new FaultyStore(new MemoryStore());
    const ac = new AbortController();
    const worker = startUpdater(store, { clock, signal: ac.signal });
    await settle();
    await clock.advance(1000);
    assert.equal(worker.snapshot().role, "active");
    assert.equal(abortListeners(ac.signal), 1);
    ac.abort();
    assert.equal(abortListeners(ac.signal), 0, "the listener was removed as it fired");
    await settle();
    assert.equal(worker.snapshot().role, "stopped");
    await clock.advance(5000);
    assert.equal(store.steps.length, 1, "no step after the abort");
  });

  test("stop() removes the worker's listener from the caller's signal", async () => {
    const ac = new AbortController();
    const worker = startUpdater(new MemoryStore(), { clock: new FakeClock(), signal: ac.signal });
    await settle();
    assert.equal(abortListeners(ac.signal), 1);
    await worker.stop();
    assert.equal(abortListeners(ac.signal), 0);
  });

  test("`await using` stops the worker", async () => {
    const clock = new FakeClock();
    let seen: UpdaterWorker | undefined;
    {
      await using worker = startUpdater(new MemoryStore(), { clock });
      seen = worker;
      await settle();
      assert.equal(worker.snapshot().role, "starting");
    }
    assert.equal(seen.snapshot().role, "stopped");
  });

  test("a store call cut short by stop() is no error", async () => {
    const clock = new FakeClock();
    const store = new FaultyStore(new MemoryStore());
    // ensure answers only by failing once the worker's signal aborts.
    store.ensure = (signal?: AbortSignal) =>
      new Promise((_, reject) => {
        signal?.addEventListener("abort", () => reject(new Error("aborted by the caller")));
      });
    const worker = startUpdater(store, { clock });
    const roles: WorkerRole[] = [];
    const seen = (async () => {
      for await (const s of worker.events()) roles.push(s.role);
    })();
    await settle();
    await worker.stop();
    await seen;
    assert.equal(worker.snapshot().errors, 0);
    assert.equal(worker.snapshot().lastError, undefined);
    assert.deepEqual(roles, ["starting", "stopped"]);
  });

  test("stand-by turns leave no listener on the worker's signal; stopping one ends its watch at once", async () => {
    const clock = new SpyClock();
    const inner = new MemoryStore();
    const store = new FaultyStore(inner);
    const watches: AbortSignal[] = [];
    const watch = store.watch as NonNullable<typeof store.watch>;
    store.watch = (signal) => {
      watches.push(signal);
      return watch(signal);
    };
    const { worker } = await inStandBy(store, inner, clock);
    const signal = clock.signal;
    assert.equal(abortListeners(signal), 2, "its sleep and its watch");
    await clock.advance(2000); // nobody advanced: it takes over
    assert.equal(worker.snapshot().takeovers, 1);
    assert.equal(worker.snapshot().role, "active");
    assert.equal(watches.length, 1);
    assert.equal(watches[0]?.aborted, true, "the watch ended with the turn");
    assert.equal(abortListeners(signal), 1, "only its sleep");
    // Lose again, and stop while standing by.
    const other = await Updater.resume(inner);
    await other.advance(1n);
    await clock.advance(1000);
    assert.equal(worker.snapshot().role, "standby");
    assert.equal(watches.length, 2);
    const stopped = worker.stop();
    assert.equal(watches[1]?.aborted, true, "the watch ends as the worker is stopped");
    assert.equal(abortListeners(signal), 0);
    await stopped;
    assert.equal(worker.snapshot().role, "stopped");
  });
});

describe("worker: errors, backoff, rebuilding", () => {
  test("a retryable error is reported as retryable; the retry waits half the delay plus jitter", async () => {
    const clock = new FakeClock();
    const store = new FaultyStore(new MemoryStore());
    store.failNext("ensure", "before");
    const worker = startUpdater(store, { clock, random: () => 0.5 });
    await settle();
    const s = worker.snapshot();
    assert.equal(s.role, "error");
    assert.equal(s.lastErrorName, "StoreError");
    assert.equal(s.lastErrorRetryable, true);
    // retryDelay 1 s: 500 ms, plus 0.5 of the other 500 ms.
    await clock.advance(749);
    assert.equal(store.calls.ensure, 1);
    await clock.advance(1);
    assert.equal(store.calls.ensure, 2);
    assert.equal(worker.snapshot().role, "starting");
    await worker.stop();
  });

  test("a fatal error is reported as not retryable", async () => {
    const clock = new FakeClock();
    const store = new FaultyStore(new MemoryStore());
    store.ensure = async () => {
      throw new StoreError("memory", "ensure", "permission denied", { retryable: false });
    };
    const worker = startUpdater(store, { clock });
    await settle();
    assert.equal(worker.snapshot().lastErrorRetryable, false);
    assert.equal(worker.snapshot().role, "stopped");
  });

  test("the first worker stores its own maxStep with the new clock", async () => {
    const clock = new FakeClock();
    const name = `worker-maxstep-${process.pid}`;
    const worker = startUpdater(new MemoryStore(name), { clock, interval: "2s" });
    await settle();
    assert.equal(memoryCell(name).maxStep, 3n * S);
    assert.equal(worker.snapshot().clusterMaxStep, 3n * S);
    await clock.advance(2000);
    assert.equal(worker.failure, undefined);
    assert.equal(worker.snapshot().role, "active");
    await worker.stop();
  });

  test("a worker that saw the epoch and lost the record resumes (never re-creates), naming what it saw", async () => {
    const clock = new FakeClock();
    const name = `worker-epoch-${process.pid}`;
    const cell = memoryCell(name);
    const worker = startUpdater(new MemoryStore(name), { clock, random: () => 0 });
    await settle();
    assert.equal(worker.snapshot().time, 0n);
    cell.value = undefined; // deleted before the first step
    await clock.advance(1000); // the step finds no record
    assert.equal(worker.snapshot().role, "error");
    await clock.advance(500); // rebuilt: resume, as it has seen a time (0)
    const s = worker.snapshot();
    assert.equal(s.lastErrorName, "ClockRecordMissingError");
    assert.match(
      s.lastError ?? "",
      /resume failed: the clock record is gone \(the last time seen was 0 ns\)/,
    );
    assert.equal(cell.value, undefined);
    await worker.stop();
  });

  test("a resumed worker stores its own maxStep where the cluster's was deleted", async () => {
    const clock = new FakeClock();
    const name = `worker-resume-maxstep-${process.pid}`;
    const cell = memoryCell(name);
    const store = new MemoryStore(name);
    const worker = startUpdater(store, { clock, random: () => 0, interval: "2s" });
    await settle();
    await clock.advance(2000);
    assert.equal(worker.snapshot().role, "active");
    const realAdvance = store.leases.advanceClock.bind(store.leases);
    store.leases.advanceClock = async () => {
      throw new StoreError("memory", "advanceClock", "connection reset");
    };
    await clock.advance(2000); // the step fails: rebuild after 1 s
    assert.equal(worker.snapshot().role, "error");
    store.leases.advanceClock = realAdvance;
    cell.maxStep = undefined;
    await clock.advance(1000);
    assert.equal(worker.snapshot().role, "starting");
    assert.equal(cell.maxStep, 3n * S, "its own, not the default 1.5 s");
    assert.equal(worker.failure, undefined);
    await worker.stop();
  });

  test("a polled stand-by that finds the record gone reports it with the time it saw", async () => {
    const inner = new MemoryStore(`worker-gone-${process.pid}`);
    const store = new FaultyStore(inner, { push: false });
    const { worker, clock } = await inStandBy(store, inner);
    memoryCell(`worker-gone-${process.pid}`).value = undefined;
    await clock.advance(1000); // its next poll
    const s = worker.snapshot();
    assert.equal(s.role, "error");
    assert.equal(s.recordMissing, 1);
    assert.match(
      s.lastError ?? "",
      /read failed: the clock record is gone \(the last time seen was 1300000000 ns\)/,
    );
    await worker.stop();
  });
});

/** A FaultyStore on `inner` whose watch is `watch` instead of the inner store's. */
function withWatch(inner: MemoryStore, watch: (signal: AbortSignal) => AsyncIterable<bigint>) {
  const store = new FaultyStore(inner);
  store.watch = watch;
  return store;
}

describe("worker: a stand-by's watch", () => {
  test("a watch that breaks: the error is reported and the stand-by polls instead", async () => {
    const inner = new MemoryStore();
    const store = withWatch(inner, async function* () {
      yield* [];
      throw new Error("subscription lost");
    });
    const { worker, other, clock } = await inStandBy(store, inner);
    assert.equal(worker.snapshot().lastError, "watch failed, reading instead: subscription lost");
    // The other steps every second. The stand-by waits for a push until takeoverAfter after
    // it saw 1.3 s, reads then, and from then on polls every second, seeing each step.
    const reads: number[] = [];
    const times: Array<bigint | undefined> = [];
    for (let i = 0; i < 5; i++) {
      await other.advance(S);
      const before = store.calls.read;
      await clock.advance(1000);
      reads.push(store.calls.read - before);
      times.push(worker.snapshot().time);
    }
    assert.deepEqual(reads, [0, 1, 1, 1, 1]);
    assert.deepEqual(times, [1300n * MS, 3300n * MS, 4300n * MS, 5300n * MS, 6300n * MS]);
    assert.equal(worker.snapshot().role, "standby");
    await worker.stop();
  });

  test("a watch that misses a change: the confirming read sees it, and the stand-by waits again", async () => {
    const inner = new MemoryStore();
    // Pushes nothing, and fails once the turn ends, as a cancelled subscription may.
    const store = withWatch(inner, (signal) => ({
      async *[Symbol.asyncIterator]() {
        await new Promise((_, reject) => {
          signal.addEventListener("abort", () => reject(new Error("subscription cancelled")));
        });
      },
    }));
    const { worker, other, clock } = await inStandBy(store, inner);
    await clock.advance(1000);
    await other.advance("500ms"); // 1.8s, unseen
    const swaps = store.swaps.length;
    await clock.advance(1000); // takeoverAfter since 1.3s was seen: its read finds 1.8s
    assert.equal(store.swaps.length, swaps, "no takeover on a time that moved");
    assert.equal(worker.snapshot().time, 1800n * MS);
    assert.equal(worker.snapshot().role, "standby");
    await clock.advance(1999);
    assert.equal(store.swaps.length, swaps);
    await clock.advance(1); // 1.8s has stood still for takeoverAfter
    assert.equal(worker.snapshot().takeovers, 1);
    assert.equal(worker.snapshot().role, "active");
    assert.equal(worker.snapshot().lastError, undefined, "the cancelled watch is no error");
    await worker.stop();
  });

  test("a regression seen by a stand-by is counted from the highest time it saw", async () => {
    const inner = new MemoryStore();
    const store = new FaultyStore(inner);
    const { worker, other, clock } = await inStandBy(store, inner);
    for (let i = 0; i < 3; i++) {
      await other.advance(S);
      await clock.advance(500);
    }
    assert.equal(worker.snapshot().time, 4300n * MS);
    assert.equal(worker.snapshot().regressions, 0);
    await inner.compareAndSwap(4300n * MS, 2n * S); // restored from a backup
    await settle();
    const s = worker.snapshot();
    assert.equal(s.time, 2n * S);
    assert.equal(s.regressions, 1);
    assert.deepEqual(s.lastRegression, { from: 4300n * MS, to: 2n * S });
    await worker.stop();
  });

  test("a takeover adds what elapsed since its confirming read, as the worker's clock tells it", async () => {
    /** A clock on which each reading of the time takes 1 µs, once `ticking`. */
    class SlowReadClock extends FakeClock {
      ticking = false;
      #extra = 0n;
      override now(): bigint {
        if (this.ticking) this.#extra += 1000n;
        return super.now() + this.#extra;
      }
    }
    const clock = new SlowReadClock();
    const inner = new MemoryStore();
    const store = new FaultyStore(inner);
    const { worker } = await inStandBy(store, inner, clock);
    clock.ticking = true;
    await clock.advance(2000);
    assert.equal(worker.snapshot().takeovers, 1);
    const takeover = store.swaps.at(-1) as { old: bigint; next: bigint; won: boolean };
    assert.ok(takeover.won);
    assert.equal(takeover.old, 1300n * MS);
    assert.equal(takeover.next - takeover.old, 1000n, "the 1 µs between the read and the step");
    await worker.stop();
  });

  test("events() yields changes only: one status per step in steady state", async () => {
    const { clock, worker } = await setup();
    await clock.advance(1000);
    const statuses: WorkerStatus[] = [];
    const seen = (async () => {
      for await (const s of worker.events()) statuses.push(s);
    })();
    for (let i = 0; i < 5; i++) await clock.advance(1000);
    await worker.stop();
    await seen;
    assert.deepEqual(
      statuses.map((s) => s.advances),
      [1, 2, 3, 4, 5, 6, 6],
    );
    for (let i = 1; i < statuses.length; i++) assert.notDeepEqual(statuses[i], statuses[i - 1]);
  });
});
