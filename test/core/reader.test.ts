import assert from "node:assert/strict";
import { getEventListeners } from "node:events";
import { describe, test } from "node:test";
import { MAX_TIMER_MS } from "../../src/duration.js";
import { type ClockStore, ClosedError, ConfigError, MemoryStore, Reader } from "../../src/index.js";
import { memoryCell } from "../../src/stores/memory/index.js";

let n = 0;

/** A memory clock seen through a store that cannot push, so Reader.watch must poll. */
function pollOnly(): { store: ClockStore; writer: MemoryStore; name: string } {
  const name = `reader-${process.pid}-${n++}`;
  const inner = new MemoryStore(name);
  const store: ClockStore = {
    kind: "poll-only",
    read: (signal) => inner.read(signal),
    ensure: (signal) => inner.ensure(signal),
    compareAndSwap: (old, next, signal) => inner.compareAndSwap(old, next, signal),
    close: () => inner.close(),
  };
  return { store, writer: new MemoryStore(name), name };
}

/** Collects what `watch` yields, calling `step` after each value until it returns false. */
async function follow(
  watch: AsyncIterable<bigint>,
  step: (seen: bigint[]) => Promise<boolean>,
): Promise<bigint[]> {
  const seen: bigint[] = [];
  for await (const time of watch) {
    seen.push(time);
    if (!(await step(seen))) break;
  }
  return seen;
}

describe("Reader.watch on a store without push", () => {
  test("polls: yields the current time, then each greater time", { timeout: 20_000 }, async () => {
    const { store, writer } = pollOnly();
    await writer.ensure();
    const reader = new Reader(store);
    const seen = await follow(reader.watch({ pollIntervalMs: 2 }), async (s) => {
      const last = s.at(-1) as bigint;
      if (last === 3n) return false;
      assert.equal(await writer.compareAndSwap(last, last + 1n), true);
      return true;
    });
    assert.deepEqual(seen, [0n, 1n, 2n, 3n]);
  });

  test("never yields the same or an earlier time twice", { timeout: 20_000 }, async () => {
    const { store, writer, name } = pollOnly();
    await writer.ensure();
    await writer.compareAndSwap(0n, 10n);
    const reader = new Reader(store);
    const seen = await follow(reader.watch({ pollIntervalMs: 1 }), async (s) => {
      if (s.length === 2) return false;
      // Behind the store's back: back to 5, then a few polls later forward to 11.
      memoryCell(name).value = 5n;
      await new Promise((r) => setTimeout(r, 20));
      memoryCell(name).value = 11n;
      return true;
    });
    assert.deepEqual(seen, [10n, 11n]);
  });

  test("ends cleanly when its signal aborts", { timeout: 20_000 }, async () => {
    const { store, writer } = pollOnly();
    await writer.ensure();
    const ac = new AbortController();
    const seen = await follow(
      new Reader(store).watch({ signal: ac.signal, pollIntervalMs: 1 }),
      async () => {
        setTimeout(() => ac.abort(), 10);
        return true;
      },
    );
    assert.deepEqual(seen, [0n]);
  });

  test("ends cleanly when its signal aborts during a read", { timeout: 20_000 }, async () => {
    const { store: inner, writer } = pollOnly();
    await writer.ensure();
    const ac = new AbortController();
    let reads = 0;
    // The second read hangs until the abort, then fails with it, as a network store does.
    const store: ClockStore = {
      ...inner,
      read: (signal) => {
        if (++reads === 1) return inner.read(signal);
        ac.abort(new Error("shutting down"));
        return Promise.reject(signal?.reason);
      },
    };
    const seen = await follow(
      new Reader(store).watch({ signal: ac.signal, pollIntervalMs: 1 }),
      async () => true,
    );
    assert.deepEqual(seen, [0n]);
    assert.equal(reads, 2);
  });

  test("a signal aborted before it starts yields nothing", async () => {
    const { store } = pollOnly();
    const ac = new AbortController();
    ac.abort();
    const seen = await follow(new Reader(store).watch({ signal: ac.signal }), async () => true);
    assert.deepEqual(seen, []);
  });

  test("a missing record is watched from the epoch", { timeout: 20_000 }, async () => {
    const { store, writer } = pollOnly();
    const seen = await follow(new Reader(store).watch({ pollIntervalMs: 1 }), async (s) => {
      if (s.length === 2) return false;
      await writer.ensure();
      await writer.compareAndSwap(0n, 4n);
      return true;
    });
    assert.deepEqual(seen, [0n, 4n]);
  });
});

describe("Reader.watch on a store that pushes", () => {
  test("leaving the loop ends the subscription at once", { timeout: 20_000 }, async () => {
    const name = `reader-push-${process.pid}-${n++}`;
    const store = new MemoryStore(name);
    await store.ensure();
    const reader = new Reader(store);
    for await (const time of reader.watch()) {
      assert.equal(time, 0n);
      break;
    }
    assert.equal(memoryCell(name).listeners.size, 0, "the store is still pushing to nobody");
    // after the first pushed value too
    const seen = await follow(reader.watch(), async (s) => {
      if (s.length === 2) return false;
      await store.compareAndSwap(0n, 1n);
      return true;
    });
    assert.deepEqual(seen, [0n, 1n]);
    assert.equal(memoryCell(name).listeners.size, 0);
  });
});

describe("Reader.watch options", () => {
  for (const pollIntervalMs of [0, -1, Number.NaN, 2 ** 31]) {
    test(`pollIntervalMs ${pollIntervalMs} is a ConfigError, not a busy loop`, async () => {
      const watch = new Reader(new MemoryStore()).watch({ pollIntervalMs });
      await assert.rejects(
        watch.next(),
        (e: unknown) => e instanceof ConfigError && e.field === "pollIntervalMs",
      );
    });
  }
});

describe("Reader.watch on a store whose push fails", () => {
  test("a subscription failing during the first read rejects the watch, never unhandled", async () => {
    const failing: ClockStore = {
      kind: "test",
      read: () => new Promise((resolve) => setTimeout(() => resolve(7n), 30)),
      ensure: async () => 0n,
      compareAndSwap: async () => false,
      // biome-ignore lint/correctness/useYield: a subscription that fails before any value
      async *watch() {
        throw new Error("subscription refused");
      },
      close: async () => {},
    };
    const watch = new Reader(failing).watch();
    assert.deepEqual(await watch.next(), { value: 7n, done: false });
    await assert.rejects(watch.next(), /subscription refused/);
  });
});

describe("Reader", () => {
  test("`await using` closes it and calls onClose once; a closed reader refuses", async () => {
    let closes = 0;
    let kept: Reader | undefined;
    {
      await using reader = new Reader(new MemoryStore(), {
        onClose: () => {
          closes++;
        },
      });
      kept = reader;
      assert.equal(await reader.now(), 0n);
    }
    assert.equal(closes, 1);
    await kept.close();
    assert.equal(closes, 1);
    await assert.rejects(kept.now(), ClosedError);
    await assert.rejects(kept.watch().next(), ClosedError);
  });
});

/** A store that pushes what `watch` gives, counting subscriptions; reads answer `time`. */
function pushing(watch: (signal: AbortSignal) => AsyncIterable<bigint>, time = 1n) {
  const store = {
    kind: "test",
    subscriptions: 0,
    read: async () => time,
    ensure: async () => time,
    compareAndSwap: async () => false,
    watch: (signal: AbortSignal) => {
      store.subscriptions++;
      return watch(signal);
    },
    close: async () => {},
  };
  return store;
}

describe("Reader: the floor, options and endings", () => {
  test("now() never answers less than it answered before", async () => {
    const name = `reader-floor-${process.pid}-${n++}`;
    const store = new MemoryStore(name);
    await store.ensure();
    await store.compareAndSwap(0n, 10n);
    const reader = new Reader(store);
    assert.equal(await reader.now(), 10n);
    memoryCell(name).value = 5n; // a restored backup
    assert.equal(await reader.now(), 10n);
    memoryCell(name).value = 12n;
    assert.equal(await reader.now(), 12n);
  });

  test("a missing store is a ConfigError naming the store", () => {
    assert.throws(
      () => new Reader(undefined as never),
      (e) =>
        e instanceof ConfigError &&
        e.field === "store" &&
        /missing store: pass a ClockStore/.test(e.message),
    );
  });

  test("a closed reader refuses, saying so, and subscribes to nothing", async () => {
    const store = pushing(async function* () {
      yield 2n;
    });
    const reader = new Reader(store);
    await reader.close();
    await assert.rejects(reader.now(), /^ClosedError: reader is closed$/);
    await assert.rejects(reader.watch().next(), /^ClosedError: reader is closed$/);
    assert.equal(store.subscriptions, 0);
  });

  test("close() without onClose", async () => {
    const reader = new Reader(new MemoryStore());
    await reader.close();
    await reader.close();
    await assert.rejects(reader.now(), ClosedError);
  });

  test("pollIntervalMs: the longest timer is allowed; a bad one is named in the message", async () => {
    const { store } = pollOnly();
    const watch = new Reader(store).watch({ pollIntervalMs: MAX_TIMER_MS });
    assert.deepEqual(await watch.next(), { value: 0n, done: false });
    await watch.return();
    await assert.rejects(
      new Reader(store).watch({ pollIntervalMs: 0 }).next(),
      /invalid pollIntervalMs 0: use a number of ms > 0/,
    );
  });

  test("a store's watch that ends ends the reader's watch", async () => {
    const store = pushing(async function* () {
      yield 2n;
      yield 3n;
    });
    const seen: bigint[] = [];
    for await (const time of new Reader(store).watch()) seen.push(time);
    assert.deepEqual(seen, [1n, 2n, 3n]);
  });

  test("the caller's signal is left without a listener: on abort, and when the loop is left", async () => {
    const { store } = pollOnly();
    const ac = new AbortController();
    const watch = new Reader(store).watch({ signal: ac.signal, pollIntervalMs: 60_000 });
    assert.deepEqual(await watch.next(), { value: 0n, done: false });
    assert.equal(getEventListeners(ac.signal, "abort").length, 1);
    const next = watch.next();
    ac.abort();
    assert.equal(getEventListeners(ac.signal, "abort").length, 0, "removed as it fired");
    assert.deepEqual(await next, { value: undefined, done: true });
    const ac2 = new AbortController();
    for await (const time of new Reader(store).watch({ signal: ac2.signal })) {
      assert.equal(time, 0n);
      break;
    }
    assert.equal(getEventListeners(ac2.signal, "abort").length, 0);
  });

  test("a store iterator without return(), or whose next() throws at once", async () => {
    const plain = pushing(() => ({
      [Symbol.asyncIterator]: () => ({ next: async () => ({ value: 2n, done: false }) }),
    }));
    for await (const time of new Reader(plain).watch()) {
      assert.equal(time, 1n);
      break;
    }
    const broken = pushing(() => ({
      [Symbol.asyncIterator]: () => ({
        next: () => {
          throw new Error("cannot subscribe");
        },
        return: async () => ({ value: undefined, done: true as const }),
      }),
    }));
    await assert.rejects(new Reader(broken).watch().next(), /^Error: cannot subscribe$/);
  });
});
