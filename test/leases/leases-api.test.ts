// The Leases API itself (src/leases/leases.ts), on the memory store and a fake clock: the
// options and arguments it refuses (and the field each error names), the operation a missing
// clock record is reported for, setMaxStep's compare-and-swap, close(), the bounded retry of
// a claim whose record keeps changing, keepTime's stand-by worker, and openLeases.
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, test } from "node:test";
import { toNanoseconds } from "../../src/duration.js";
import {
  ClockRecordMissingError,
  type ClockStore,
  ClosedError,
  ConfigError,
  InvalidDurationError,
  LeaseLostError,
  Leases,
  MemoryStore,
  openLeases,
  StoreError,
} from "../../src/index.js";
import type { LeaseStore, LeaseWrite } from "../../src/lease-store.js";
import { DEFAULT_MAX_STEP } from "../../src/leases/info.js";
import { memoryCell } from "../../src/stores/memory/index.js";
import { FakeClock, settle } from "../helpers/fake-clock.js";

const S = 1_000_000_000n;
const MS = 1_000_000n;
let n = 0;

function setup(options: { maxStep?: string } = {}) {
  const name = `leases-api-${process.pid}-${n++}`;
  const clock = new FakeClock();
  const store = new MemoryStore(name);
  const leases = new Leases(store, { clock, maxStep: options.maxStep ?? "1s" });
  return { name, clock, store, leases };
}

/** A ConfigError (or subclass) naming `field`, with a message matching `message`. */
const configError =
  (field: string, message: RegExp, kind: typeof ConfigError = ConfigError) =>
  (err: unknown) => {
    assert.ok(err instanceof kind, `expected a ${kind.name}, got ${String(err)}`);
    assert.equal(err.field, field);
    assert.match(err.message, message);
    return true;
  };

/** A ClockRecordMissingError reported for `operation`. */
const recordMissing = (operation: string) => (err: unknown) => {
  assert.ok(err instanceof ClockRecordMissingError, `got ${String(err)}`);
  assert.equal(err.operation, operation);
  assert.equal(err.store, "memory");
  return true;
};

describe("new Leases: what it refuses", () => {
  test("no store at all: a ConfigError on the store, saying what to pass", () => {
    assert.throws(
      () => new Leases(undefined as unknown as ClockStore),
      configError("store", /^missing store: pass a ClockStore, e\.g\. openStore\(url\)$/),
    );
  });

  test("a store that keeps no leases: a ConfigError on the store naming its kind", () => {
    const bare: ClockStore = {
      kind: "bare",
      read: async () => 0n,
      ensure: async () => 0n,
      compareAndSwap: async () => false,
      close: async () => {},
    };
    assert.throws(() => new Leases(bare), configError("store", /^the bare store keeps no leases$/));
  });

  test("maxStep and pollInterval must be positive durations; each error names its option", () => {
    const store = new MemoryStore();
    for (const field of ["maxStep", "pollInterval"]) {
      assert.throws(
        () => new Leases(store, { [field]: 0 }),
        configError(field, new RegExp(`^${field} must be > 0$`)),
      );
      assert.throws(
        () => new Leases(store, { [field]: "0s" }),
        configError(field, new RegExp(`^${field} must be > 0$`)),
      );
      assert.throws(
        () => new Leases(store, { [field]: -1 }),
        configError(field, new RegExp(`^invalid ${field} `), InvalidDurationError),
      );
      assert.throws(
        () => new Leases(store, { [field]: "soon" }),
        configError(field, new RegExp(`^invalid ${field} "soon"`), InvalidDurationError),
      );
      // The smallest positive value is fine.
      assert.ok(new Leases(store, { [field]: 1n }));
    }
  });
});

describe("Leases: arguments refused, naming the field", () => {
  test("pin, unpin, get, extend, claim: the name, entity and duration each named", async () => {
    const { store, leases } = setup();
    const name = (e: unknown) => configError("name", /^invalid lease name ""/)(e);
    const entity = (e: unknown) => configError("entity", /^invalid lease entity ""/)(e);
    const holder = (e: unknown) => configError("holder", /^invalid lease holder ""/)(e);
    await assert.rejects(leases.pin("", "e"), name);
    await assert.rejects(leases.pin("job", ""), entity);
    await assert.rejects(leases.unpin("", "e"), name);
    await assert.rejects(leases.unpin("job", ""), entity);
    await assert.rejects(leases.get(""), name);
    await assert.rejects(leases.waitUntilExpired(""), name);
    await assert.rejects(leases.revoke("", "a", 1n), name);
    await assert.rejects(leases.revoke("job", "", 1n), holder);
    await assert.rejects(leases.extend("", "a", 1n, "9s"), name);
    await assert.rejects(leases.extend("job", "", 1n, "9s"), holder);
    const duration = configError("duration", /^invalid duration "later"/, InvalidDurationError);
    await assert.rejects(leases.extend("job", "a", 1n, "later"), duration);
    await assert.rejects(leases.claim("job", "a", "later"), duration);
    // Nothing was written by any of them.
    assert.deepEqual(await leases.list(), []);
    await leases.close();
    await store.close();
  });

  test("a lease too short for the cluster's maxStep is refused before anything is written", async () => {
    const { store, leases } = setup();
    await assert.rejects(leases.claim("job", "a", "2s"), configError("duration", /too short/));
    assert.equal(await leases.get("job"), undefined);
    await leases.close();
    await store.close();
  });
});

describe("Leases: the operation a vanished clock record is reported for", () => {
  test("claim, revoke, pin, unpin, extend and setMaxStep each name themselves, and write nothing", async () => {
    const { name, store, leases } = setup();
    const lease = await leases.claim("job", "a", "9s");
    memoryCell(name).value = undefined; // the clock record deleted under a store that had one
    await assert.rejects(leases.claim("other", "b", "9s"), recordMissing("claim"));
    await assert.rejects(leases.revoke("job", "a", lease.token), recordMissing("revoke"));
    await assert.rejects(leases.pin("job", "e"), recordMissing("pin"));
    await assert.rejects(leases.unpin("job", "e"), recordMissing("unpin"));
    await assert.rejects(leases.extend("job", "a", lease.token, "9s"), recordMissing("extend"));
    await assert.rejects(lease.extend("9s"), recordMissing("extend"));
    await assert.rejects(leases.setMaxStep(undefined, 2n * S), recordMissing("setMaxStep"));
    assert.equal(memoryCell(name).value, undefined, "not re-created at the epoch");
    assert.equal(await leases.get("other"), undefined);
    const job = await leases.get("job");
    assert.deepEqual([job?.holder, job?.pins], ["a", []]);
    assert.equal(await leases.storedMaxStep(), S, "maxStep unchanged");
    await leases.close();
    await store.close();
  });
});

describe("Leases.get and list: judged against the stored global time", () => {
  test("a lease past its expiry by the stored time is free, with that time", async () => {
    const { store, leases } = setup();
    assert.equal(await leases.get("job"), undefined, "never claimed");
    await leases.claim("job", "a", "9s");
    const held = await leases.get("job");
    assert.equal(held?.time, 0n);
    assert.equal(held?.free, false);
    assert.ok(await store.compareAndSwap(0n, 10n * S));
    const info = await leases.get("job");
    assert.equal(info?.time, 10n * S);
    assert.equal(info?.expiry, 9n * S);
    assert.equal(info?.holder, "a");
    assert.equal(info?.free, true);
    const [listed, ...more] = await leases.list("jo");
    assert.deepEqual(more, []);
    assert.equal(listed?.time, 10n * S);
    assert.equal(listed?.free, true);
    await leases.close();
    await store.close();
  });
});

describe("Leases: a lease's release passes its signal on", () => {
  test("an aborted signal rejects the release with its reason; the record still names the holder", async () => {
    const { store, leases } = setup();
    const lease = await leases.claim("job", "a", "9s");
    const reason = new Error("caller gave up");
    await assert.rejects(lease.release(AbortSignal.abort(reason)), (err) => err === reason);
    assert.equal((await leases.get("job"))?.holder, "a", "nothing was written");
    await lease.release();
    assert.equal((await leases.get("job"))?.holder, "");
    await leases.close();
    await store.close();
  });
});

describe("Leases.setMaxStep, maxStep, storedMaxStep", () => {
  test("maxStep is the default until one is stored; storedMaxStep is undefined until then", async () => {
    const { store, leases } = setup({ maxStep: "700ms" });
    assert.equal(await leases.maxStep(), 700n * MS);
    assert.equal(await leases.storedMaxStep(), undefined);
    const plain = new Leases(store);
    assert.equal(await plain.maxStep(), toNanoseconds(DEFAULT_MAX_STEP));
    await leases.claim("job", "a", "9s"); // the first holder stores the default it has
    assert.equal(await leases.storedMaxStep(), 700n * MS);
    assert.equal(await plain.maxStep(), 700n * MS, "the stored one, not its own default");
    await leases.close();
    await store.close();
  });

  test("old undefined: true where it stores next (or next is what is stored), false otherwise", async () => {
    const { store, leases } = setup();
    assert.equal(await store.read(), undefined);
    assert.equal(await leases.setMaxStep(undefined, 2n * S), true);
    assert.equal(await store.read(), 0n, "the clock record made first, on a new store");
    assert.equal(await leases.storedMaxStep(), 2n * S);
    assert.equal(await leases.setMaxStep(undefined, 2n * S), true, "already that value");
    assert.equal(await leases.setMaxStep(undefined, 3n * S), false, "another one is stored");
    assert.equal(await leases.storedMaxStep(), 2n * S);
    await leases.close();
    await store.close();
  });

  test("old given: a compare-and-swap", async () => {
    const { store, leases } = setup();
    await leases.setMaxStep(undefined, 2n * S);
    assert.equal(await leases.setMaxStep(S, 3n * S), false);
    assert.equal(await leases.storedMaxStep(), 2n * S);
    assert.equal(await leases.setMaxStep(2n * S, 3n * S), true);
    assert.equal(await leases.storedMaxStep(), 3n * S);
    await leases.close();
    await store.close();
  });

  test("next must be > 0: a ConfigError on maxStep, and nothing is stored", async () => {
    const { store, leases } = setup();
    for (const next of [0n, -1n]) {
      for (const old of [undefined, S]) {
        await assert.rejects(
          leases.setMaxStep(old, next),
          configError("maxStep", /^maxStep must be > 0$/),
        );
      }
    }
    assert.equal(await leases.storedMaxStep(), undefined);
    assert.equal(await store.read(), undefined, "not even the clock record");
    await leases.close();
    await store.close();
  });
});

describe("Leases.close", () => {
  test("calls onClose once, however often it is called; every call after it is a ClosedError", async () => {
    const store = new MemoryStore();
    let closes = 0;
    const leases = new Leases(store, {
      clock: new FakeClock(),
      onClose: () => {
        closes++;
      },
    });
    const lease = await leases.claim("job", "a", "9s");
    assert.equal(closes, 0);
    await leases.close();
    assert.equal(closes, 1);
    await leases.close();
    await leases[Symbol.asyncDispose]();
    assert.equal(closes, 1, "once");
    const closed = (err: unknown) => {
      assert.ok(err instanceof ClosedError, `got ${String(err)}`);
      assert.equal(err.message, "leases is closed");
      return true;
    };
    await assert.rejects(leases.claim("job", "a", "9s"), closed);
    await assert.rejects(leases.extend("job", "a", lease.token, "9s"), closed);
    await assert.rejects(leases.revoke("job", "a", lease.token), closed);
    await assert.rejects(leases.pin("job", "e"), closed);
    await assert.rejects(leases.unpin("job", "e"), closed);
    await assert.rejects(leases.get("job"), closed);
    await assert.rejects(leases.list(), closed);
    await assert.rejects(leases.waitUntilExpired("job"), closed);
    await assert.rejects(leases.keepTime(), closed);
    await assert.rejects(leases.maxStep(), closed);
    await assert.rejects(leases.storedMaxStep(), closed);
    await assert.rejects(leases.setMaxStep(undefined, S), closed);
    assert.throws(() => leases.campaign("job", { holder: "a", duration: "9s" }), closed);
    await assert.rejects(lease.extend("9s"), closed);
    // The store itself was not closed by the Leases (no onClose closed it).
    assert.equal((await store.leases.readLease("job")).lease?.holder, "a");
    await store.close();
  });

  test("Symbol.asyncDispose closes it (onClose called)", async () => {
    const store = new MemoryStore();
    let closes = 0;
    {
      await using leases = new Leases(store, {
        onClose: async () => {
          closes++;
        },
      });
      assert.equal(await leases.storedMaxStep(), undefined);
    }
    assert.equal(closes, 1);
    await store.close();
  });
});

/**
 * A memory store on which, once `interfere(k)` is called, another process rewrites a lease
 * (same fields, a new version) just before each of the next k writes of it, so that each of
 * them loses its compare-and-swap.
 */
function contended() {
  const inner = new MemoryStore();
  const il = inner.leases;
  let attempts = 0;
  let left = 0;
  let limit = Number.POSITIVE_INFINITY;
  const leases: LeaseStore = {
    readClock: (signal) => il.readClock(signal),
    advanceClock: (old, next, maxStep, signal) => il.advanceClock(old, next, maxStep, signal),
    readLease: (name, signal) => il.readLease(name, signal),
    listLeases: (prefix, signal) => il.listLeases(prefix, signal),
    ensureMaxStep: (value, signal) => il.ensureMaxStep(value, signal),
    swapMaxStep: (old, next, signal) => il.swapMaxStep(old, next, signal),
    async writeLease(write, version, signal) {
      attempts++;
      // A mutant that retried forever must fail here rather than hang the test.
      if (attempts > limit) throw new Error(`write attempt ${attempts}`);
      if (left > 0) {
        left--;
        const { lease } = await il.readLease(write.name);
        assert.ok(lease, "the record exists");
        const { version: v, ...fields } = lease;
        const same: LeaseWrite = { ...fields, newToken: false };
        assert.ok(await il.writeLease(same, v), "the other process's write");
      }
      return il.writeLease(write, version, signal);
    },
  };
  const store: ClockStore = {
    kind: inner.kind,
    read: (signal) => inner.read(signal),
    ensure: (signal) => inner.ensure(signal),
    compareAndSwap: (old, next, signal) => inner.compareAndSwap(old, next, signal),
    close: () => inner.close(),
    leases,
  };
  const interfere = (k: number) => {
    left = k;
    limit = attempts + 3 * k + 3;
  };
  return { store, attempts: () => attempts, interfere };
}

describe("Leases: a record that keeps changing under a write", () => {
  test("8 writes lost in a row: LeaseLostError saying so, after exactly 8 attempts", async () => {
    const { store, attempts, interfere } = contended();
    const leases = new Leases(store, { clock: new FakeClock(), maxStep: "1s" });
    const first = await leases.claim("job", "x", "9s");
    await leases.revoke("job", "x", first.token);
    interfere(8);
    const before = attempts();
    await assert.rejects(leases.claim("job", "a", "9s"), (err) => {
      assert.ok(err instanceof LeaseLostError, `got ${String(err)}`);
      assert.match(
        err.message,
        /^lease "job" was lost: the record changed under 8 attempts in a row; another process is writing it$/,
      );
      return true;
    });
    assert.equal(attempts() - before, 8);
    assert.equal((await leases.get("job"))?.holder, "", "never written");
    await leases.close();
    await store.close();
  });

  test("7 lost, the 8th wins: the claim succeeds", async () => {
    const { store, attempts, interfere } = contended();
    const leases = new Leases(store, { clock: new FakeClock(), maxStep: "1s" });
    const first = await leases.claim("job", "x", "9s");
    await leases.revoke("job", "x", first.token);
    interfere(7);
    const before = attempts();
    const lease = await leases.claim("job", "a", "9s");
    assert.equal(attempts() - before, 8);
    assert.equal(lease.token, 2n);
    assert.equal((await leases.get("job"))?.holder, "a");
    await leases.close();
    await store.close();
  });
});

describe("Leases.keepTime", () => {
  test("a stand-by worker on this clock, fitted to a smaller cluster maxStep; stopped by its signal", async () => {
    const { store, clock, leases } = setup({ maxStep: "100ms" });
    await leases.setMaxStep(undefined, 100n * MS); // below the worker's default of 1.5 s
    const stop = new AbortController();
    const worker = await leases.keepTime({ signal: stop.signal });
    await clock.run(3_000, 20);
    assert.equal(worker.failure, undefined);
    assert.equal(worker.snapshot().role, "active");
    assert.equal(worker.snapshot().clusterMaxStep, 100n * MS);
    const time = (await store.read()) ?? 0n;
    assert.ok(time > S, `global time ${time} moved with the fake clock`);
    stop.abort();
    await settle();
    await clock.advance(1);
    assert.equal(worker.snapshot().role, "stopped");
    await worker.stop();
    assert.equal(clock.pending, 0, "no timer left");
    await leases.close();
    await store.close();
  });
});

describe("openLeases", () => {
  const dir = mkdtempSync(join(tmpdir(), "leases-api-"));
  after(() => rmSync(dir, { recursive: true, force: true }));

  test("passes the Leases options on; closing the leases closes the store", async () => {
    const clock = new FakeClock();
    const leases = await openLeases(`memory:leases-api-open-${process.pid}`, {
      clock,
      maxStep: "700ms",
    });
    assert.equal(leases.clock, clock);
    assert.equal(await leases.maxStep(), 700n * MS);
    const lease = await leases.claim("job", "a", "9s");
    assert.equal(await leases.storedMaxStep(), 700n * MS);
    // A wait on the held lease, fed by the store's pushes: the store's close ends it.
    const stop = new AbortController();
    let outcome: unknown = "waiting";
    const settled = (): unknown => outcome;
    const wait = leases.waitUntilExpired("job", { signal: stop.signal }).then(
      (v) => {
        outcome = v;
      },
      (err) => {
        outcome = err;
      },
    );
    await settle();
    assert.equal(settled(), "waiting");
    await leases.close();
    await settle();
    stop.abort(new Error("the store was not closed")); // for a store left open: ends the wait
    await wait;
    const err = settled();
    assert.ok(err instanceof ClosedError, `got ${String(err)}`);
    assert.equal(err.message, "memory store is closed");
    assert.ok(lease.held, "the lease object itself is untouched");
  });

  test("an aborted signal: the store is not opened", async () => {
    const reason = new Error("no");
    await assert.rejects(
      openLeases("memory:", { signal: AbortSignal.abort(reason) }),
      (err) => err === reason,
    );
  });

  test("options Leases refuses: the ConfigError is thrown (and the store closed)", async () => {
    await assert.rejects(
      openLeases("memory:", { maxStep: 0 }),
      configError("maxStep", /^maxStep must be > 0$/),
    );
    await assert.rejects(
      openLeases("memory:", { pollInterval: 0 }),
      configError("pollInterval", /^pollInterval must be > 0$/),
    );
  });

  test("readOnly: reads work, writes are refused, and no file is created", async () => {
    const path = join(dir, "clock.db");
    await assert.rejects(
      openLeases(`sqlite:${path}`, { readOnly: true }),
      (err) => err instanceof StoreError && /no database at/.test(err.message),
    );
    const writer = await openLeases(`sqlite:${path}`, { clock: new FakeClock() });
    await writer.claim("job", "a", "9s");
    await writer.close();
    const reader = await openLeases(`sqlite:${path}`, { readOnly: true });
    assert.equal((await reader.get("job"))?.holder, "a");
    await assert.rejects(
      reader.claim("other", "b", "9s"),
      (err) => err instanceof StoreError && /opened read-only/.test(err.message),
    );
    await reader.close();
  });
});
