/**
 * waitUntilFree on its own, on a fake clock: how long it sleeps between reads (until the
 * expiry where the store pushes, no longer than the poll interval where it does not, a
 * pinned lease's long poll, the shortest sleep), whom it reports, and how it stops; that a
 * push which ends makes it poll, that a notice given while it reads is not lost, and that it
 * leaves no listener on the caller's signal.
 */
import assert from "node:assert/strict";
import { getEventListeners } from "node:events";
import { describe, test } from "node:test";
import type { LeaseInfo } from "../../src/leases/info.js";
import { Leases } from "../../src/leases/leases.js";
import { waitUntilFree } from "../../src/leases/wait.js";
import type { ClockStore } from "../../src/store.js";
import { MemoryStore } from "../../src/stores/memory/index.js";
import { Updater } from "../../src/updater.js";
import { FakeClock, settle } from "../helpers/fake-clock.js";

const POLL = 250_000_000n;

/** A fake clock that records every sleep asked of it. */
class RecordingClock extends FakeClock {
  readonly sleeps: bigint[] = [];
  override sleep(ns: bigint, signal: AbortSignal): Promise<boolean> {
    this.sleeps.push(ns);
    return super.sleep(ns, signal);
  }
}

/** A memory store with a clock, and the same store seen without one or both pushes. */
async function setup(time = 1_000_000_000n) {
  const store = new MemoryStore();
  const updater = await Updater.create(store);
  await updater.advance(time);
  const leases = new Leases(store);
  const withPushes = (lease: boolean, clock: boolean): ClockStore => {
    const view = {
      kind: store.kind,
      leases: {
        readLease: store.leases.readLease.bind(store.leases),
        ...(lease ? { watchLeases: store.leases.watchLeases.bind(store.leases) } : {}),
      },
      ...(clock ? { watch: store.watch.bind(store) } : {}),
    };
    return view as unknown as ClockStore;
  };
  return { store, updater, leases, withPushes };
}

function start(store: ClockStore, clock: FakeClock, signal?: AbortSignal) {
  const changes: Array<LeaseInfo | undefined> = [];
  const done = waitUntilFree(store, "job", {
    clock,
    pollInterval: POLL,
    signal,
    onChange: (lease) => changes.push(lease),
  });
  return { done, changes };
}

/**
 * The store with both pushes, whose `at`-th read of a lease runs `during` before it returns:
 * a change pushed while that read is on its way back. `reads()` counts the reads so far.
 */
function duringRead(store: MemoryStore, at: number, during: () => Promise<unknown>) {
  let reads = 0;
  const view = {
    kind: store.kind,
    leases: {
      async readLease(name: string, signal?: AbortSignal) {
        const snap = await store.leases.readLease(name, signal);
        if (++reads === at) {
          await during();
          await settle();
        }
        return snap;
      },
      watchLeases: store.leases.watchLeases.bind(store.leases),
    },
    watch: store.watch.bind(store),
  } as unknown as ClockStore;
  return { view, reads: () => reads };
}

describe("waitUntilFree", () => {
  test("with both pushes live it sleeps until the expiry; a release wakes it at once", async () => {
    const { store, leases, withPushes } = await setup();
    const lease = await leases.claim("job", "a", "7s");
    const clock = new RecordingClock();
    const { done, changes } = start(withPushes(true, true), clock);
    await settle();
    assert.deepEqual(clock.sleeps, [7_000_000_000n]);
    assert.equal(changes.length, 1);
    assert.equal(changes[0]?.holder, "a");
    await lease.release();
    const free = await done;
    assert.equal(free?.holder, "");
    assert.equal(clock.sleeps.length, 1, "woken by the push, not by a timer");
    void store;
  });

  for (const [lease, clock] of [
    [false, true],
    [true, false],
    [false, false],
  ] as const) {
    test(`without the ${lease ? "" : "lease "}${!lease && !clock ? "and " : ""}${clock ? "" : "clock "}push it reads every poll interval`, async () => {
      const { leases, withPushes } = await setup();
      const held = await leases.claim("job", "a", "7s");
      const fake = new RecordingClock();
      const { done } = start(withPushes(lease, clock), fake);
      await settle();
      assert.deepEqual(fake.sleeps, [POLL]);
      await fake.advance(POLL);
      assert.deepEqual(fake.sleeps, [POLL, POLL]);
      await held.release();
      await fake.advance(POLL);
      assert.equal((await done)?.holder, "");
    });
  }

  test("a pinned lease is read again after 40 poll intervals; a push ending makes it poll", async () => {
    const { leases, store, withPushes } = await setup();
    const held = await leases.claim("job", "a", "7s");
    await leases.pin("job", "ops");
    const clock = new RecordingClock();
    const stop = new AbortController();
    const { done } = start(withPushes(true, true), clock, stop.signal);
    await settle();
    assert.deepEqual(clock.sleeps, [40n * POLL]);
    stop.abort(new Error("enough"));
    await assert.rejects(done, /enough/);
    await leases.unpin("job", "ops");
    await held.release();
    void store;
  });

  test("an expiry closer than 5 ms is still slept on for 5 ms, not read in a loop", async () => {
    const { leases, updater, withPushes } = await setup();
    await leases.claim("job", "a", "7s");
    await updater.advance(7_000_000_000n - 1_000n); // 1 µs left
    const clock = new RecordingClock();
    const stop = new AbortController();
    const { done } = start(withPushes(true, true), clock, stop.signal);
    await settle();
    assert.deepEqual(clock.sleeps, [5_000_000n]);
    await updater.advance(1_000n);
    assert.equal((await done)?.free, true);
  });

  test("onChange: each new holder and each new tenure of the same holder, once", async () => {
    const { leases, withPushes } = await setup();
    const first = await leases.claim("job", "a", "7s");
    const clock = new RecordingClock();
    const stop = new AbortController();
    // No pushes: each read comes at a poll, so what changed between two reads is known.
    const { done, changes } = start(withPushes(false, false), clock, stop.signal);
    await settle();
    await first.extend("9s"); // the same grant: nothing to report
    await clock.advance(POLL);
    assert.equal(changes.length, 1);
    await first.release();
    const again = await leases.claim("job", "a", "7s"); // the same holder, a new token
    await clock.advance(POLL);
    assert.equal(changes.length, 2);
    assert.equal(changes[1]?.holder, "a");
    assert.equal(changes[1]?.token, again.token);
    await again.release();
    const other = await leases.claim("job", "b", "7s");
    await clock.advance(POLL);
    assert.deepEqual(
      changes.map((c) => c?.holder),
      ["a", "a", "b"],
    );
    stop.abort(new Error("enough"));
    await assert.rejects(done, /enough/);
    await other.release();
  });

  test("an aborted signal ends it at once, with its reason; a later abort too", async () => {
    const { leases, withPushes } = await setup();
    await leases.claim("job", "a", "7s");
    const clock = new RecordingClock();
    const before = new AbortController();
    before.abort(new Error("already"));
    await assert.rejects(start(withPushes(true, true), clock, before.signal).done, /already/);
    assert.deepEqual(clock.sleeps, []);
    const later = new AbortController();
    const { done } = start(withPushes(true, true), clock, later.signal);
    await settle();
    later.abort(new Error("later"));
    await assert.rejects(done, /later/);
    assert.equal(clock.pending, 0, "its timer is gone");
  });

  test("a store that keeps no leases is an error naming its kind", async () => {
    const store = { kind: "plain" } as unknown as ClockStore;
    await assert.rejects(
      start(store, new FakeClock()).done,
      /^Error: the plain store keeps no leases$/,
    );
  });
});

describe("waitUntilFree: pushes, notices and listeners", () => {
  test("without pushes, an expiry sooner than the poll interval is slept on, not the whole interval", async () => {
    const { leases, updater, withPushes } = await setup();
    await leases.claim("job", "a", "7s");
    await updater.advance(7_000_000_000n - 100_000_000n); // 100 ms left
    const clock = new RecordingClock();
    const { done } = start(withPushes(false, false), clock);
    await settle();
    assert.deepEqual(clock.sleeps, [100_000_000n]);
    await updater.advance(100_000_000n);
    await clock.advance(100_000_000n);
    assert.equal((await done)?.free, true);
  });

  test("onChange is optional", async () => {
    const { leases, withPushes } = await setup();
    const held = await leases.claim("job", "a", "7s");
    const clock = new RecordingClock();
    const done = waitUntilFree(withPushes(true, true), "job", {
      clock,
      pollInterval: POLL,
      signal: undefined,
    });
    await settle();
    assert.deepEqual(clock.sleeps, [7_000_000_000n], "it read the held lease and slept");
    await held.release();
    assert.equal((await done)?.holder, "");
  });

  for (const how of ["ends", "fails"] as const) {
    test(`a lease push that ${how} makes it read every poll interval`, async () => {
      const { leases, store } = await setup();
      const held = await leases.claim("job", "a", "7s");
      // The clock's push stays live; the lease's push stops at once.
      const view = {
        kind: store.kind,
        leases: {
          readLease: store.leases.readLease.bind(store.leases),
          watchLeases: (): AsyncIterable<void> => ({
            [Symbol.asyncIterator]: () => ({
              next: async (): Promise<IteratorResult<void>> => {
                if (how === "fails") throw new Error("the change stream broke");
                return { done: true, value: undefined };
              },
            }),
          }),
        },
        watch: store.watch.bind(store),
      } as unknown as ClockStore;
      const clock = new RecordingClock();
      const { done } = start(view, clock);
      await settle();
      assert.equal(clock.sleeps.at(-1), POLL, `sleeps ${clock.sleeps}`);
      const before = clock.sleeps.length;
      await clock.advance(POLL);
      assert.deepEqual(clock.sleeps.slice(before), [POLL], "read again after the interval");
      await held.release();
      await clock.advance(POLL);
      assert.equal((await done)?.holder, "");
    });
  }

  test("a change pushed while it reads wakes it at once for another read", async () => {
    const { leases, store } = await setup();
    const held = await leases.claim("job", "a", "7s");
    // The first read returns before the holder's renewal, which is pushed meanwhile.
    const { view, reads } = duringRead(store, 1, () => held.extend("9s"));
    const clock = new RecordingClock();
    const { done, changes } = start(view, clock);
    await settle(); // the first read, which itself settles before it returns
    await settle();
    assert.equal(reads(), 2, "read again without any timer");
    assert.deepEqual(clock.sleeps, [7_000_000_000n, 9_000_000_000n]);
    assert.equal(changes.length, 1, "the same holder and token: reported once");
    await held.release();
    assert.equal((await done)?.holder, "");
  });

  test("it leaves no listener on the caller's signal: once free, once aborted", async () => {
    const { leases, withPushes } = await setup();
    const held = await leases.claim("job", "a", "7s");
    const clock = new RecordingClock();
    const outer = new AbortController();
    const first = start(withPushes(true, true), clock, outer.signal);
    await settle();
    assert.equal(getEventListeners(outer.signal, "abort").length, 1, "it listens while it waits");
    await held.release();
    await first.done;
    assert.equal(getEventListeners(outer.signal, "abort").length, 0, "gone once the lease is free");
    await leases.claim("job", "b", "7s");
    const second = start(withPushes(true, true), clock, outer.signal);
    await settle();
    assert.equal(getEventListeners(outer.signal, "abort").length, 1);
    outer.abort(new Error("enough"));
    assert.equal(getEventListeners(outer.signal, "abort").length, 0, "gone as the signal fires");
    await assert.rejects(second.done, /enough/);
  });

  test("a release pushed during the read after a timer's wake is not lost", async () => {
    const { leases, store } = await setup();
    const held = await leases.claim("job", "a", "7s");
    // The release is pushed while the second read is still on its way back.
    const { view, reads } = duringRead(store, 2, () => held.release());
    const clock = new FakeClock();
    let free = false;
    const done = waitUntilFree(view, "job", { clock, pollInterval: POLL, signal: undefined }).then(
      () => {
        free = true;
      },
    );
    await settle();
    await clock.advance(7_000); // the timer ends the first sleep; global time has not moved
    await settle();
    await settle();
    assert.equal(reads(), 3, "the release pushed during read 2 woke it for read 3");
    assert.ok(free);
    await done;
  });
});

describe("waits of one process on one lease share one loop", () => {
  /** A memory store whose lease reads are counted, and Leases on it. */
  function counted() {
    const store = new MemoryStore();
    const reads = { count: 0 };
    const read = store.leases.readLease.bind(store.leases);
    store.leases.readLease = (name, signal) => {
      reads.count++;
      return read(name, signal);
    };
    return { store, reads, leases: new Leases(store) };
  }

  test("twenty waiters cost one read per change, not one each, and each learns the holder", async () => {
    const { store, reads, leases } = counted();
    const held = await leases.claim("job", "alice", "1h");
    reads.count = 0;
    const seen: string[][] = Array.from({ length: 20 }, () => []);
    const waits = seen.map((s) =>
      leases.waitUntilExpired("job", { onChange: (l) => s.push(l?.holder ?? "") }),
    );
    await settle();
    for (let i = 0; i < 50 && seen.some((s) => s.length === 0); i++) await settle();
    assert.ok(
      seen.every((s) => s.join() === "alice"),
      `every waiter told of alice once: ${seen.map((s) => s.join("+")).join(" ")}`,
    );
    const before = reads.count;
    assert.equal(before, 1, "one read to start twenty waits");
    await held.release();
    const freed = await Promise.all(waits);
    assert.ok(freed.every((l) => l?.free === true));
    assert.ok(reads.count - before <= 3, `${reads.count - before} reads after one release`);
    await store.close();
  });

  test("a waiter that gives up leaves alone; the loop stops once the last has left", async () => {
    const { store, reads, leases } = counted();
    const held = await leases.claim("job", "alice", "1h");
    const quitter = new AbortController();
    const quits = leases.waitUntilExpired("job", { signal: quitter.signal });
    const stays = leases.waitUntilExpired("job");
    await settle();
    quitter.abort(new Error("gave up"));
    await assert.rejects(quits, /gave up/);
    await held.release();
    assert.equal((await stays)?.free, true, "the other still learns the release");
    // Now one waiter, alone, gives up: nothing reads on its behalf any more.
    const again = await leases.claim("job", "bob", "1h");
    const last = new AbortController();
    const gone = leases.waitUntilExpired("job", { signal: last.signal });
    await settle();
    last.abort(new Error("gone"));
    await assert.rejects(gone, /gone/);
    await settle();
    await again.release(); // its own read and write, and a push nobody waits for
    const after = reads.count;
    for (let i = 0; i < 5; i++) await settle();
    assert.equal(reads.count, after, "no loop left to read");
    await store.close();
  });
});
