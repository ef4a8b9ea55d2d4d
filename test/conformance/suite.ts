/**
 * The store conformance suite: one set of tests every ClockStore must pass. Each store's
 * test file calls `conformance(harness)` with a way to open fresh connections to one
 * clock and to plant raw data behind the store's back.
 */
import assert from "node:assert/strict";
import { after, before, beforeEach, describe, test } from "node:test";
import {
  ClosedError,
  CorruptRecordError,
  openStore,
  Reader,
  StoreError,
  Updater,
} from "../../src/index.js";
import type { ClockStore } from "../../src/store.js";
import { startUpdater } from "../../src/worker.js";
import { pushedUntil } from "../helpers/assertions.js";
import { eventually } from "../helpers/daemon.js";
import { skipOrFail } from "../helpers/env.js";
import { tcpProxy } from "../helpers/server-process.js";

export interface StoreHarness {
  /** Opens a new, separate connection to the clock under test. */
  open(): Promise<ClockStore>;
  /** Removes the clock record, through the raw driver. */
  reset(): Promise<void>;
  /** Writes a record whose time is of the wrong type (a string, a float, …). */
  plantWrongType(): Promise<void>;
  /** Writes a record whose time is a negative integer. */
  plantNegative(): Promise<void>;
  /** The record as the raw driver sees it, for checking that nothing was overwritten. */
  raw(): Promise<unknown>;
  /**
   * A new connection to the clock, and a way to break it as a crashed server or a broken
   * network would (for SQLite: another process holding the database's lock; for memory:
   * a cell whose every access throws). Every store should give one: without it the case
   * is reported as a skip, which fails under CI=true.
   */
  breakable?(): Promise<Breakable>;
  /** Where there is no `breakable`: why (the skip's reason). */
  unbreakable?: string | undefined;
  /** Stops what the harness started. */
  close(): Promise<void>;
}

export type Operation = "read" | "ensure" | "compareAndSwap";

export interface Breakable {
  store: ClockStore;
  cut(): Promise<void>;
  close(): Promise<void>;
  /**
   * Operations the cut cannot fail, each with the reason (SQLite: a reader in WAL mode is
   * never blocked by a writer). The suite checks that they still work; every other
   * operation must fail.
   */
  unaffected?: Partial<Record<Operation, string>>;
  /**
   * What the cut's failures say about a retry: true (a broken connection may heal) unless
   * the store says otherwise (memory: nothing in a process's memory heals by itself).
   */
  retryable?: boolean;
}

/**
 * A store opened through a TCP proxy in front of `port` (see tcpProxy), for `breakable`:
 * `url(proxyPort)` names the store through the proxy.
 */
export async function throughProxy(
  port: number,
  url: (proxyPort: number) => string,
): Promise<Breakable> {
  const proxy = await tcpProxy(port);
  const store = await openStore(url(proxy.port));
  return {
    store,
    cut: proxy.cut,
    close: async () => {
      await store.close();
      await proxy.close();
    },
  };
}

export function conformance(name: string, start: () => Promise<StoreHarness>): void {
  describe(`${name} store conformance`, () => {
    let h: StoreHarness;
    let a: ClockStore;
    let b: ClockStore;

    before(async () => {
      h = await start();
      a = await h.open();
      b = await h.open();
    });
    after(async () => {
      await a?.close();
      await b?.close();
      await h?.close();
    });
    beforeEach(async () => {
      await h.reset();
    });

    test("a missing record reads as undefined, and as the epoch through a Reader", async () => {
      assert.equal(await a.read(), undefined);
      assert.equal(await new Reader(a).now(), 0n);
    });

    test("ensure creates the record at the epoch", async () => {
      assert.equal(await a.ensure(), 0n);
      assert.equal(await b.read(), 0n);
    });

    test("ensure never overwrites an existing record", async () => {
      await a.ensure();
      assert.equal(await a.compareAndSwap(0n, 5_000_000_007n), true);
      assert.equal(await b.ensure(), 5_000_000_007n);
      assert.equal(await a.read(), 5_000_000_007n);
    });

    test("compareAndSwap succeeds on the exact old value and fails otherwise", async () => {
      await a.ensure();
      assert.equal(await a.compareAndSwap(0n, 10n), true);
      assert.equal(await b.compareAndSwap(0n, 20n), false);
      assert.equal(await b.compareAndSwap(11n, 20n), false);
      assert.equal(await a.read(), 10n);
      assert.equal(await b.compareAndSwap(10n, 20n), true);
      assert.equal(await a.read(), 20n);
    });

    test("compareAndSwap on a missing record fails and creates nothing", async () => {
      assert.equal(await a.compareAndSwap(0n, 10n), false);
      assert.equal(await a.read(), undefined);
    });

    test("two connections racing for 500 rounds: exactly one winner each round", async () => {
      let time = await a.ensure();
      for (let round = 0; round < 500; round++) {
        const [wonA, wonB] = await Promise.all([
          a.compareAndSwap(time, time + 1n),
          b.compareAndSwap(time, time + 2n),
        ]);
        assert.equal(Number(wonA) + Number(wonB), 1, `round ${round}: wonA=${wonA} wonB=${wonB}`);
        const expected = wonA ? time + 1n : time + 2n;
        assert.equal(await b.read(), expected, `round ${round}`);
        time = expected;
      }
    });

    test("values near 2^62 and at int64's maximum round-trip exactly", async () => {
      await a.ensure();
      const big = (1n << 62n) + 123_456_789n;
      assert.equal(await a.compareAndSwap(0n, big), true);
      assert.equal(await b.read(), big);
      const max = (1n << 63n) - 1n;
      assert.equal(await b.compareAndSwap(big, max), true);
      assert.equal(await a.read(), max);
      assert.equal(await a.ensure(), max);
    });

    for (const [what, plant] of [
      ["of the wrong type", (x: StoreHarness) => x.plantWrongType()],
      ["negative", (x: StoreHarness) => x.plantNegative()],
    ] as const) {
      test(`a record ${what} is a CorruptRecordError and is left untouched`, async () => {
        await plant(h);
        const before = await h.raw();
        await assert.rejects(a.read(), CorruptRecordError);
        await assert.rejects(new Reader(a).now(), CorruptRecordError);
        await assert.rejects(a.ensure(), CorruptRecordError);
        await assert.rejects(Updater.create(b), CorruptRecordError);
        // A swap may refuse or fail, but must not write, not even from the planted value
        // (-5 for the negative record; 5 equals the wrong-type records that are numbers).
        for (const old of [0n, 5n, -5n, -1n]) {
          assert.notEqual(await a.compareAndSwap(old, 1n).catch(() => false), true, `from ${old}`);
        }
        assert.deepEqual(await h.raw(), before);
      });
    }

    test("an aborted signal rejects with its reason, without writing", async () => {
      await a.ensure();
      const ac = new AbortController();
      const reason = new Error("caller gave up");
      ac.abort(reason);
      const isReason = (err: unknown) => err === reason;
      await assert.rejects(a.compareAndSwap(0n, 1n, ac.signal), isReason);
      await assert.rejects(a.read(ac.signal), isReason);
      await assert.rejects(a.ensure(ac.signal), isReason);
      assert.equal(await b.read(), 0n);
    });

    test("a broken connection fails with a StoreError naming the store and the operation", {
      timeout: 60_000,
    }, async (t) => {
      if (!h.breakable) {
        skipOrFail(t, `${name}: no way to break the store: ${h.unbreakable ?? "no breakable"}`);
        return;
      }
      const { store, cut, close, unaffected = {}, retryable = true } = await h.breakable();
      try {
        assert.equal(await store.ensure(), 0n);
        await cut();
        const calls: Record<Operation, () => Promise<unknown>> = {
          read: () => store.read(),
          ensure: () => store.ensure(),
          compareAndSwap: () => store.compareAndSwap(0n, 1n),
        };
        for (const [operation, call] of Object.entries(calls)) {
          const why = unaffected[operation as Operation];
          if (why !== undefined) {
            t.diagnostic(`${operation} is not failed by the cut: ${why}`);
            await assert.doesNotReject(call(), `${operation}, said to be unaffected (${why})`);
            continue;
          }
          await assert.rejects(call(), (err: unknown) => {
            assert.ok(err instanceof StoreError, `${operation}: not a StoreError: ${err}`);
            assert.equal(err.store, store.kind);
            assert.equal(err.operation, operation);
            assert.equal(err.retryable, retryable, `${operation}: ${err.message}`);
            assert.match(err.message, new RegExp(`^${store.kind} store: ${operation} failed: `));
            return true;
          });
        }
      } finally {
        await close();
      }
    });

    test("a change by one connection reaches another's watch", { timeout: 30_000 }, async (t) => {
      if (!b.watch) {
        skipOrFail(t, `${name} cannot push changes (no watch); Reader.watch polls it`);
        return;
      }
      await a.ensure();
      // The Reader polls only once an hour here, so only a push can deliver 1, 2, 3 in time.
      const { seen, done } = pushedUntil(b, 3n);
      let failure: { err: unknown } | undefined;
      done.catch((err: unknown) => {
        failure = { err };
      });
      /** Waits until the watch has yielded `time`; fails at once if the watch failed. */
      const seenNow = (time: bigint) =>
        eventually(() => {
          if (failure) throw failure.err;
          return seen.includes(time);
        }, `the watch to yield ${time}`);
      await seenNow(0n); // its first read, which comes before any change
      for (const [old, next] of [
        [0n, 1n],
        [1n, 2n],
        [2n, 3n],
      ] as const) {
        assert.equal(await a.compareAndSwap(old, next), true);
        await seenNow(next); // the newest value is never coalesced away
      }
      await done;
      assert.deepEqual(seen, [0n, 1n, 2n, 3n]);
    });

    test("closing a store ends its running watch", { timeout: 30_000 }, async (t) => {
      const c = await h.open();
      try {
        if (!c.watch) {
          skipOrFail(t, `${name} cannot push changes (no watch)`);
          return;
        }
        let time = await a.ensure();
        const changes = c.watch(new AbortController().signal);
        const seen: bigint[] = [];
        const ended = (async () => {
          for await (const value of changes) seen.push(value);
        })().then(
          () => "returned",
          (err: unknown) => err,
        );
        let ending: { how: unknown } | undefined;
        void ended.then((how) => {
          ending = { how };
        });
        const running = () => {
          if (ending) assert.fail(`the watch ended before its store closed: ${String(ending.how)}`);
        };
        // Running: it has yielded (a change made before the watch was in place may go unseen,
        // so the clock moves until one is seen).
        await eventually(async () => {
          if (seen.length > 0) return true;
          running();
          assert.equal(await a.compareAndSwap(time, time + 1n), true);
          time++;
          return false;
        }, "the watch to yield a change");
        running();
        await c.close();
        // A watch that outlives its store hangs here until the test's timeout.
        const outcome = await ended;
        if (outcome !== "returned" && !(outcome instanceof ClosedError)) {
          assert.fail(`the watch ended with ${String(outcome)}, not a return or a ClosedError`);
        }
      } finally {
        await c.close();
      }
    });

    test("a worker takes a stored time set back as the truth, and never re-creates a deleted record", {
      timeout: 60_000,
    }, async () => {
      const store = await h.open();
      const worker = startUpdater(store, { interval: "20ms" });
      const time = async () => (await b.read()) ?? 0n;
      try {
        await eventually(async () => (await time()) > 300_000_000n, "the clock past 0.3 s");
        // A restore: another connection sets the stored time back by 0.2 s.
        let restored: bigint;
        for (;;) {
          const now = await time();
          restored = now - 200_000_000n;
          if (await b.compareAndSwap(now, restored)) break;
        }
        await eventually(
          async () => (await time()) > restored + 100_000_000n,
          "the clock moving on from the restored time",
        );
        assert.ok(worker.snapshot().regressions >= 1, "the regression is counted");
        assert.equal(worker.snapshot().lastRegression?.to, restored);
        // A deletion: reported, and the record stays gone.
        await h.reset();
        await eventually(() => worker.snapshot().recordMissing >= 1, "the record reported missing");
        await new Promise((r) => setTimeout(r, 300));
        assert.equal(await b.read(), undefined, "never re-created");
        assert.equal(worker.snapshot().role, "error");
      } finally {
        await worker.stop();
        await store.close();
      }
    });

    test("close is idempotent and later calls fail with ClosedError", async () => {
      const c = await h.open();
      await c.close();
      await c.close();
      await assert.rejects(c.read(), ClosedError);
      await assert.rejects(c.ensure(), ClosedError);
      await assert.rejects(c.compareAndSwap(0n, 1n), ClosedError);
      if (c.watch) assert.throws(() => c.watch?.(new AbortController().signal), ClosedError);
    });
  });
}
