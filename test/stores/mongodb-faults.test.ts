/**
 * Failures between the MongoDB store and the server, injected by the wire-protocol test
 * double: lost connections before and after a write, late answers, server errors and
 * write-concern errors. An outcome the updater cannot know invalidates it; a new updater
 * continues from what was stored; stored time never goes back.
 */
import assert from "node:assert/strict";
import { after, afterEach, before, describe, test } from "node:test";
import { MongoClient } from "mongodb";
import {
  type ClockStore,
  InvalidUpdaterError,
  openStore,
  Reader,
  StoreError,
  Updater,
} from "../../src/index.js";
import { eventually } from "../helpers/daemon.js";
import type { FaultAction } from "../mongo-double/server.js";
import { MongoDouble } from "../mongo-double/server.js";

async function setUp(replicaSet?: string) {
  const double = await MongoDouble.start({ replicaSet });
  const store = await openStore(double.uri("", "timeout=1s"));
  const raw = new MongoClient(double.uri(), { serverSelectionTimeoutMS: 5000 });
  const coll = raw.db("globalclock").collection<{ _id: string; time: bigint }>("globalclock");
  const history: bigint[] = [];
  /** The stored time as the raw driver reads it; every value is kept to check monotonicity. */
  const stored = async () => {
    const time = (await coll.findOne({ _id: "g" }, { useBigInt64: true }))?.time ?? -1n;
    history.push(time);
    return time;
  };
  const close = async () => {
    assert.deepEqual(
      history,
      [...history].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0)),
      `stored time went back: ${history.join(", ")}`,
    );
    await store.close();
    await raw.close();
    await double.close();
  };
  return { double, store, stored, close };
}

const dropAfter: FaultAction = { kind: "drop-after" };
const notPrimary: FaultAction = { kind: "error", code: 10107, codeName: "NotWritablePrimary" };

describe("mongodb store under faults (standalone: the driver retries no write)", () => {
  let t: Awaited<ReturnType<typeof setUp>>;
  let store: ClockStore;
  let double: MongoDouble;

  before(async () => {
    t = await setUp();
    store = t.store;
    double = t.double;
  });
  after(() => t?.close());
  afterEach(() => assert.equal(double.pendingFaults, 0, "every injected fault struck"));

  for (const [what, action, applied] of [
    ["the connection drops after the write is applied", dropAfter, true],
    ["the connection drops before the write", { kind: "drop-before" }, false],
    ["the server answers NotWritablePrimary", notPrimary, false],
    ["the write is applied but not majority-acknowledged", { kind: "write-concern-error" }, true],
    ["the answer comes after the timeout", { kind: "delay", ms: 2500 }, true],
  ] as const) {
    test(`${what}: the updater turns invalid; a new one continues from what is stored`, async () => {
      const updater = await Updater.create(store);
      const base = await updater.advance("1ms");
      double.inject({ command: "update", action });
      const err = await updater.advance("1ms").catch((e: unknown) => e);
      assert.ok(err instanceof InvalidUpdaterError, String(err));
      assert.ok(err.cause instanceof StoreError);
      const sent = double.commands("update").length;
      await assert.rejects(updater.advance("1ms"), InvalidUpdaterError);
      assert.equal(double.commands("update").length, sent, "an invalid updater sends nothing");
      if (action.kind === "delay") await new Promise((r) => setTimeout(r, action.ms + 200));
      const now = await t.stored();
      assert.equal(now, applied ? base + 1_000_000n : base, "the store holds what the server did");
      const next = await Updater.create(store);
      assert.equal(
        next.time,
        now,
        "the new updater starts from the stored time, not its own guess",
      );
      assert.equal(await next.advance("1ms"), now + 1_000_000n);
      await t.stored();
      await updater.close();
      await next.close();
    });
  }

  test("a lost answer to ensure fails Updater.create; the next create finds the record", async () => {
    // A clock nobody made yet: only there does Updater.create send ensure's findAndModify.
    const fresh = await openStore(double.uri("", "collection=fresh&timeout=1s"));
    try {
      double.inject({ command: "findAndModify", action: dropAfter });
      await assert.rejects(Updater.create(fresh), StoreError);
      const updater = await Updater.create(fresh);
      assert.equal(updater.time, 0n);
      assert.equal(await updater.advance("1ms"), 1_000_000n);
      await updater.close();
    } finally {
      await fresh.close();
    }
  });

  test("reads: one dropped connection is retried by the driver; two fail the read, not the reader", async () => {
    const reader = new Reader(store);
    const time = await t.stored();
    double.inject({ command: "find", action: { kind: "drop-before" } });
    assert.equal(await reader.now(), time);
    double.inject({ command: "find", times: 2, action: { kind: "drop-before" } });
    await assert.rejects(reader.now(), StoreError);
    assert.equal(await reader.now(), time);
  });

  // The update is held until released: a liveness bound, should the abort not end the advance.
  test("an advance aborted in flight invalidates the updater; the write may still land", {
    timeout: 30_000,
  }, async () => {
    const updater = await Updater.create(store);
    const base = updater.time;
    let release = () => {};
    const held = new Promise<void>((resolve) => {
      release = resolve;
    });
    double.inject({ command: "update", action: { kind: "hold", until: held } });
    const sent = double.commands("update").length;
    const ac = new AbortController();
    const advancing = updater.advance("1ms", ac.signal);
    // In flight: the server has the update, and runs it only once the test releases it.
    await eventually(
      () => double.commands("update").length > sent,
      "the update to reach the server",
    );
    const reason = new Error("caller gave up");
    ac.abort(reason);
    // Failed by the abort, not by the store's timeout (1 s) while the update is held.
    await assert.rejects(advancing, (err: unknown) => {
      assert.ok(err instanceof InvalidUpdaterError, String(err));
      assert.equal(err.cause, reason);
      return true;
    });
    release();
    await eventually(
      async () => (await t.stored()) === base + 1_000_000n,
      "the server to apply it anyway",
    );
    await updater.close();
  });
});

describe("mongodb store under faults (replica set: retryable reads and writes)", () => {
  let t: Awaited<ReturnType<typeof setUp>>;

  before(async () => {
    t = await setUp("rs0");
  });
  after(() => t?.close());

  test("a NotWritablePrimary answer to a read is retried by the driver, which stays healthy", async () => {
    // Regression: per-operation BSON options reach error replies too. With promoteValues
    // off the code was an Int32 object (no retry); with useBigInt64 the reply's
    // topologyVersion crashed the driver's monitor, and the process with it.
    const updater = await Updater.create(t.store);
    t.double.inject({ command: "find", action: notPrimary });
    assert.equal(await new Reader(t.store).now(), updater.time);
    assert.equal(t.double.pendingFaults, 0);
    const base = updater.time;
    assert.equal(await updater.advance("1ms"), base + 1_000_000n);
    await updater.close();
  });

  test("a write whose answer is lost is retried with its transaction number and lands once", async () => {
    const updater = await Updater.create(t.store);
    const base = await updater.advance("1ms");
    t.double.inject({ command: "update", action: dropAfter });
    assert.equal(await updater.advance("1ms"), base + 1_000_000n);
    assert.equal(updater.valid, true);
    assert.equal(await t.stored(), base + 1_000_000n, "applied exactly once");
    const [first, retry] = t.double.commands("update").slice(-2);
    assert.equal(String(first?.command.txnNumber), String(retry?.command.txnNumber));
    await updater.close();
  });

  test("a write refused twice (NotWritablePrimary, then again on retry) invalidates the updater", async () => {
    const updater = await Updater.create(t.store);
    const base = updater.time;
    t.double.inject({ command: "update", times: 2, action: notPrimary });
    await assert.rejects(updater.advance("1ms"), InvalidUpdaterError);
    assert.equal(await t.stored(), base);
    await updater.close();
  });
});
