/** The Updater's rules beyond Juju's cases: concurrent use, failures of unknown outcome, abort, close. */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import {
  ClockRecordMissingError,
  type ClockStore,
  ClosedError,
  ConcurrentUseError,
  ConfigError,
  INT64_MAX,
  InvalidDurationError,
  InvalidUpdaterError,
  MaxStepChangedError,
  MemoryStore,
  OutOfSyncUpdateError,
  StoreError,
  Updater,
} from "../../src/index.js";
import { memoryCell } from "../../src/stores/memory/index.js";
import { FaultyStore } from "../helpers/faulty-store.js";

/** A memory store whose compareAndSwap waits until the test opens the gate. */
class GatedMemory extends MemoryStore {
  #open: () => void = () => {};
  #gate: Promise<void> = Promise.resolve();

  shut(): void {
    this.#gate = new Promise((resolve) => {
      this.#open = resolve;
    });
  }

  open(): void {
    this.#open();
  }

  override async compareAndSwap(old: bigint, next: bigint, signal?: AbortSignal) {
    await this.#gate;
    return super.compareAndSwap(old, next, signal);
  }
}

/** A gated clock, seen through a FaultyStore that counts the calls reaching it. */
function gated(): { store: FaultyStore; gate: GatedMemory } {
  const gate = new GatedMemory();
  return { store: new FaultyStore(gate), gate };
}

let n = 0;
const fresh = () => new FaultyStore(new MemoryStore(`updater-${process.pid}-${n++}`));

describe("an Updater is not for concurrent use", () => {
  test("an overlapping advance is refused and the first one completes", async () => {
    const { store, gate } = gated();
    const u = await Updater.create(store);
    gate.shut();
    const first = u.advance(5n);
    await assert.rejects(u.advance(7n), ConcurrentUseError);
    await assert.rejects(u.refresh(), ConcurrentUseError);
    assert.equal(store.calls.compareAndSwap, 1, "the refused call reached the store");
    gate.open();
    assert.equal(await first, 5n);
    assert.equal(u.valid, true, "a refused overlap broke the updater");
    assert.equal(await u.advance(7n), 12n);
    assert.equal(await store.read(), 12n);
  });

  test("the refusal says what to do", async () => {
    const { store, gate } = gated();
    const u = await Updater.create(store);
    gate.shut();
    const first = u.advance(1n);
    await assert.rejects(u.advance(1n), /not for concurrent use/);
    gate.open();
    await first;
  });
});

describe("a failure of unknown outcome makes the updater invalid", () => {
  for (const point of ["before", "after"] as const) {
    test(`a swap that fails ${point} reaching the store`, async () => {
      const store = fresh();
      const u = await Updater.create(store);
      await u.advance(10n);
      store.failNext("compareAndSwap", point);
      let cause: unknown;
      await assert.rejects(u.advance(5n), (err: unknown) => {
        assert.ok(err instanceof InvalidUpdaterError);
        assert.ok(err.cause instanceof StoreError);
        assert.match(err.message, /injected fault/);
        cause = err.cause;
        return true;
      });
      assert.equal(await store.inner.read(), point === "after" ? 15n : 10n);
      assert.equal(u.valid, false);
      assert.equal(u.time, 10n, "the view moved on a failure");
      const calls = { ...store.calls };
      for (let i = 0; i < 3; i++) {
        await assert.rejects(u.advance(1n), (err: unknown) => {
          assert.ok(err instanceof InvalidUpdaterError);
          assert.equal(err.cause, cause, "a later call lost the original cause");
          return true;
        });
        await assert.rejects(u.refresh(), InvalidUpdaterError);
      }
      assert.deepEqual(store.calls, calls, "an invalid updater still talked to the store");
      // A new updater re-reads and carries on from whatever the store holds.
      const next = await Updater.create(store);
      assert.equal(await next.advance(1n), (point === "after" ? 15n : 10n) + 1n);
    });
  }

  test("a failed re-read after a lost swap", async () => {
    const store = fresh();
    const u = await Updater.create(store);
    await store.inner.compareAndSwap(0n, 3n); // another updater wins
    store.failNext("read", "before");
    await assert.rejects(u.advance(1n), InvalidUpdaterError);
    assert.equal(u.valid, false);
    assert.equal(await store.inner.read(), 3n);
  });

  test("a record that disappeared", async () => {
    const name = `updater-gone-${process.pid}`;
    const u = await Updater.create(new MemoryStore(name));
    memoryCell(name).value = undefined;
    await assert.rejects(u.advance(1n), (err: unknown) => {
      assert.ok(err instanceof InvalidUpdaterError);
      assert.ok(err.cause instanceof ClockRecordMissingError, String(err.cause));
      assert.equal(err.cause.lastSeen, 0n);
      assert.match(err.message, /clock record is gone/);
      return true;
    });
    assert.equal(u.valid, false);
    assert.equal(memoryCell(name).value, undefined, "nothing re-created it");
  });

  test("resume builds on the existing record and never creates one", async () => {
    const name = `updater-resume-${process.pid}`;
    const store = new MemoryStore(name);
    await assert.rejects(Updater.resume(store, { lastSeen: 7n }), (err: unknown) => {
      assert.ok(err instanceof ClockRecordMissingError);
      assert.equal(err.retryable, false);
      assert.equal(err.lastSeen, 7n);
      return true;
    });
    assert.equal(memoryCell(name).value, undefined);
    memoryCell(name).value = 42n;
    const u = await Updater.resume(store);
    assert.equal(u.time, 42n);
    assert.equal(await u.advance(1n), 43n);
  });

  test("create makes a clock only on a store that never had one: a stored maxStep shows there was one", async () => {
    const name = `updater-had-clock-${process.pid}`;
    const first = await Updater.create(new MemoryStore(name));
    assert.equal(first.time, 0n, "a new store: the clock is made at the epoch");
    assert.equal(first.maxStep, 1_500_000_000n, "and the default maxStep stored");
    await first.advance("1s");
    // An operator deletes the clock; no lease was ever taken on this store.
    memoryCell(name).value = undefined;
    await assert.rejects(Updater.create(new MemoryStore(name)), ClockRecordMissingError);
    assert.equal(memoryCell(name).value, undefined, "not made again at the epoch");
  });

  test("a signal aborted while the swap is in flight", async () => {
    const { store, gate } = gated();
    const u = await Updater.create(store);
    gate.shut();
    const ac = new AbortController();
    const pending = u.advance(1n, ac.signal);
    ac.abort();
    gate.open();
    await assert.rejects(pending, InvalidUpdaterError);
    assert.equal(u.valid, false);
  });
});

describe("refusals that leave the updater valid", () => {
  test("an already-aborted signal is refused before anything is sent", async () => {
    const store = fresh();
    const u = await Updater.create(store);
    const ac = new AbortController();
    ac.abort(new Error("shutting down"));
    await assert.rejects(u.advance(1n, ac.signal), /shutting down/);
    assert.equal(store.calls.compareAndSwap, 0);
    assert.equal(u.valid, true);
    assert.equal(await u.advance(1n), 1n);
  });

  test("an advance past int64 is an InvalidDurationError", async () => {
    const store = fresh();
    await store.inner.ensure();
    await store.inner.compareAndSwap(0n, INT64_MAX - 5n);
    const u = await Updater.create(store);
    await assert.rejects(u.advance(6n), (err: unknown) => {
      assert.ok(err instanceof InvalidDurationError);
      assert.match(err.message, /would pass int64/);
      return true;
    });
    assert.equal(store.calls.compareAndSwap, 0);
    assert.equal(u.valid, true);
    assert.equal(await u.advance(5n), INT64_MAX);
  });

  test("a negative or malformed duration is an InvalidDurationError", async () => {
    const u = await Updater.create(fresh());
    await assert.rejects(u.advance(-1), InvalidDurationError);
    await assert.rejects(u.advance("soon"), /invalid advance duration "soon"/);
    assert.equal(u.valid, true);
    assert.equal(await u.advance("1s1ns"), 1_000_000_001n);
  });

  test("a lost swap keeps the updater valid with the new view", async () => {
    const store = fresh();
    const u = await Updater.create(store);
    await store.inner.compareAndSwap(0n, 9n);
    await assert.rejects(u.advance(1n), OutOfSyncUpdateError);
    assert.equal(u.valid, true);
    assert.equal(u.time, 9n);
  });
});

describe("closing", () => {
  test("`await using` closes the updater and calls onClose once", async () => {
    let closes = 0;
    const onClose = () => {
      closes++;
    };
    let kept: Updater | undefined;
    {
      await using u = await Updater.create(new MemoryStore(), { onClose });
      kept = u;
      await u.advance(1n);
      assert.equal(closes, 0);
    }
    assert.equal(closes, 1);
    await kept.close();
    assert.equal(closes, 1, "onClose ran twice");
    assert.equal(kept.valid, false);
    await assert.rejects(kept.advance(1n), ClosedError);
  });

  test("a failing create does not leak: the store's error comes through", async () => {
    const broken: ClockStore = {
      kind: "broken",
      read: async () => undefined,
      ensure: async () => {
        throw new StoreError("broken", "ensure", "refused");
      },
      compareAndSwap: async () => false,
      close: async () => {},
    };
    await assert.rejects(Updater.create(broken), /broken store: ensure failed: refused/);
  });
});

describe("what the errors name", () => {
  test("each refusal and each missing record names the operation", async () => {
    const { store, gate } = gated();
    const u = await Updater.create(store);
    gate.shut();
    const first = u.advance(1n);
    await assert.rejects(u.advance(1n), /^ConcurrentUseError: advance: another call/);
    await assert.rejects(u.refresh(), /^ConcurrentUseError: refresh: another call/);
    gate.open();
    await first;
    await u.close();
    await assert.rejects(u.advance(1n), /^ClosedError: updater is closed$/);
  });

  test("a refresh in flight refuses an overlapping advance", async () => {
    const store = fresh();
    const u = await Updater.create(store);
    let release = () => {};
    const read = store.read.bind(store);
    store.read = async (signal) => {
      await new Promise<void>((resolve) => {
        release = resolve;
      });
      return read(signal);
    };
    const refreshing = u.refresh();
    await assert.rejects(u.advance(1n), ConcurrentUseError);
    release();
    assert.equal(await refreshing, 0n);
    assert.equal(u.valid, true);
  });

  for (const operation of ["create", "resume", "advance", "refresh"] as const) {
    test(`a record found missing by ${operation} says so`, async () => {
      const name = `updater-missing-${operation}-${process.pid}`;
      const cell = memoryCell(name);
      const store = new MemoryStore(name);
      let u: Updater | undefined;
      if (operation !== "resume") {
        u = await Updater.create(store);
        cell.value = undefined;
      }
      const pending =
        operation === "create"
          ? Updater.create(store)
          : operation === "resume"
            ? Updater.resume(store)
            : operation === "advance"
              ? (u as Updater).advance(1n)
              : (u as Updater).refresh();
      await assert.rejects(pending, (err: unknown) => {
        const cause = err instanceof InvalidUpdaterError ? err.cause : err;
        assert.ok(cause instanceof ClockRecordMissingError, String(err));
        assert.match(cause.message, new RegExp(`^memory store: ${operation} failed: the clock`));
        return true;
      });
    });
  }

  test("a store that keeps no leases, whose read finds no record after ensure: create says so", async () => {
    const store = fresh();
    Object.assign(store, { read: async () => undefined });
    await assert.rejects(Updater.create(store), /: create failed: the clock record is gone/);
  });

  test("an advance past int64 names the advance duration", async () => {
    const store = fresh();
    await store.inner.ensure();
    await store.inner.compareAndSwap(0n, INT64_MAX);
    const u = await Updater.create(store);
    await assert.rejects(u.advance(1n), (err: unknown) => {
      assert.ok(err instanceof InvalidDurationError);
      assert.equal(err.field, "advance duration");
      return true;
    });
  });
});

describe("options", () => {
  test("a missing store is a ConfigError naming the store", async () => {
    for (const make of [Updater.create, Updater.resume]) {
      await assert.rejects(make(undefined as never), (err: unknown) => {
        assert.ok(err instanceof ConfigError);
        assert.equal(err.field, "store");
        assert.match(err.message, /missing store: pass a ClockStore/);
        return true;
      });
    }
  });

  test("maxStep must be a duration > 0", async () => {
    const store = new MemoryStore();
    await assert.rejects(Updater.create(store, { maxStep: 0 }), (err: unknown) => {
      assert.ok(err instanceof ConfigError);
      assert.equal(err.field, "maxStep");
      assert.match(err.message, /maxStep must be > 0/);
      return true;
    });
    await assert.rejects(Updater.create(store, { maxStep: "soon" }), (err: unknown) => {
      assert.ok(err instanceof InvalidDurationError);
      assert.equal(err.field, "maxStep");
      return true;
    });
    const u = await Updater.create(store, { maxStep: 1n });
    assert.equal(u.maxStep, 1n, "1 ns is a maxStep");
  });
});

/** A memory store whose readClock can hide the stored maxStep, and that counts ensureMaxStep. */
function hiding(name: string) {
  const store = new MemoryStore(name);
  const leases = store.leases;
  const readClock = leases.readClock.bind(leases);
  const ensureMaxStep = leases.ensureMaxStep.bind(leases);
  const state = { hide: false, ensures: 0 };
  leases.readClock = async (signal) => {
    const view = await readClock(signal);
    return state.hide ? { ...view, maxStep: undefined } : view;
  };
  leases.ensureMaxStep = (value, signal) => {
    state.ensures++;
    return ensureMaxStep(value, signal);
  };
  return { store, state, cell: memoryCell(name) };
}

describe("the cluster's maxStep in the view", () => {
  test("a missing record stores no maxStep; a stored one is not stored again", async () => {
    const { store, state, cell } = hiding(`updater-view-${process.pid}`);
    await assert.rejects(Updater.resume(store), ClockRecordMissingError);
    assert.equal(state.ensures, 0);
    assert.equal(cell.maxStep, undefined, "no maxStep without a clock");
    cell.value = 5n;
    cell.maxStep = 2n;
    const u = await Updater.resume(store, { maxStep: 3n });
    assert.equal(u.maxStep, 2n);
    assert.equal(state.ensures, 0);
    cell.maxStep = undefined;
    assert.equal((await Updater.resume(store, { maxStep: 3n })).maxStep, 3n);
    assert.equal(state.ensures, 1);
  });

  test("read without a maxStep, an advance is a plain compare-and-swap", async () => {
    const { store, state } = hiding(`updater-plain-${process.pid}`);
    state.hide = true;
    const u = await Updater.create(store);
    assert.equal(u.maxStep, undefined);
    store.leases.advanceClock = async () => assert.fail("advanceClock without a maxStep");
    assert.equal(await u.advance(5n), 5n);
  });

  test("a refused step is a MaxStepChangedError only when a maxStep was read both times", async () => {
    // Read without one, then with one: the time did not move, yet no maxStep changed.
    const a = hiding(`updater-refused-a-${process.pid}`);
    a.state.hide = true;
    const ua = await Updater.create(a.store);
    a.state.hide = false;
    a.store.compareAndSwap = async () => false;
    await assert.rejects(ua.advance(1n), (err: unknown) => {
      assert.ok(err instanceof OutOfSyncUpdateError, String(err));
      assert.ok(!(err instanceof MaxStepChangedError), String(err));
      return true;
    });
    assert.equal(ua.maxStep, 1_500_000_000n);
    // Read with one, then without: the same.
    const b = hiding(`updater-refused-b-${process.pid}`);
    const ub = await Updater.create(b.store);
    assert.equal(ub.maxStep, 1_500_000_000n);
    b.state.hide = true;
    b.cell.maxStep = 1n; // the step is refused for it, then it is hidden
    await assert.rejects(ub.advance(1n), (err: unknown) => {
      assert.ok(err instanceof OutOfSyncUpdateError, String(err));
      assert.ok(!(err instanceof MaxStepChangedError), String(err));
      return true;
    });
    // Read both times: the changed maxStep is named.
    b.state.hide = false;
    const uc = await Updater.resume(b.store);
    b.cell.maxStep = 2n;
    await assert.rejects(uc.advance(1n), MaxStepChangedError);
  });
});
