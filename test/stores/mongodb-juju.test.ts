/**
 * Juju compatibility, through the official driver against the wire-protocol test double:
 * Juju's schema and operations, its documents read and advanced exactly, and the
 * original Config API (newReader/newUpdater) with its validation messages.
 */
import assert from "node:assert/strict";
import { after, before, beforeEach, describe, test } from "node:test";
import { type Collection, Double, Int32, Long, MongoClient } from "mongodb";
import {
  ConfigError,
  CorruptRecordError,
  InvalidDurationError,
  InvalidUpdaterError,
  OutOfSyncUpdateError,
  openLeases,
  openStore,
  startUpdater,
} from "../../src/index.js";
import {
  type Config,
  globalEpoch,
  MongoStore,
  mongoFromDb,
  newReader,
  newUpdater,
} from "../../src/juju/mongodb.js";
import { MongoDouble } from "../mongo-double/server.js";

type ClockDoc = { _id: string; time?: unknown; maxStep?: unknown; lastToken?: unknown };
const RAW = { promoteValues: false } as const;
/** An int64 as the double logged it (its own copy of bson), or a note of what it was instead. */
const int64 = (v: unknown): bigint | string =>
  (v as { _bsontype?: string })?._bsontype === "Long" ? BigInt(String(v)) : `not a Long: ${v}`;

describe("mongodb store: Juju's schema and the original API", () => {
  let double: MongoDouble;
  let client: MongoClient;
  let coll: Collection<ClockDoc>;
  let config: Config;
  let closed: string[];

  before(async () => {
    double = await MongoDouble.start({ replicaSet: "rs0" });
    client = new MongoClient(double.uri(), { serverSelectionTimeoutMS: 5000 });
    await client.connect();
    coll = client.db("juju").collection<ClockDoc>("globalclock");
  });
  after(async () => {
    await client?.close();
    await double?.close();
  });
  beforeEach(async () => {
    await coll.deleteMany({});
    await client.db("juju").collection("globalclock_leases").deleteMany({});
    closed = [];
    config = {
      collection: "globalclock",
      mongo: {
        getCollection: (name) => ({
          collection: client.db("juju").collection(name),
          closer: () => {
            closed.push(name);
          },
        }),
      },
    };
  });

  const stored = async () => (await coll.findOne({ _id: "g" }, RAW))?.time;

  test("a Juju document inserted by a raw driver call is read exactly, advanced, and stays a Long", async () => {
    const juju = (1n << 62n) + 987_654_321n; // beyond 2^53: a double would round it
    await coll.insertOne({ _id: "g", time: Long.fromBigInt(juju) });
    const reader = newReader(config);
    assert.equal(await reader.now(), juju);
    const updater = await newUpdater(config);
    assert.equal(updater.time, juju, "the updater starts from Juju's time, not the epoch");
    assert.equal(await updater.advance(1n), juju + 1n);
    assert.equal(await reader.now(), juju + 1n);
    const time = await stored();
    assert.ok(time instanceof Long, `time is stored as ${String(time)}`);
    assert.equal(time.toBigInt(), juju + 1n);
    await reader.close();
    await updater.close();
    assert.deepEqual(closed, ["globalclock", "globalclock"], "each closer called once");
  });

  test("the epoch document Juju's own upsert created ($inc by Go's int 0: an Int32) is read and advanced", async () => {
    await coll.insertOne({ _id: "g", time: new Int32(0) });
    const updater = await newUpdater(config);
    assert.equal(updater.time, 0n);
    assert.equal(await updater.advance("1s"), 1_000_000_000n);
    assert.deepEqual(await stored(), Long.fromBigInt(1_000_000_000n));
    await updater.close();
  });

  test("ensure is a find-and-modify upsert with $inc 0 as a Long, never $set; majority concerns", async () => {
    const updater = await newUpdater(config);
    assert.deepEqual(await stored(), Long.ZERO, "created at the epoch as an int64");
    await updater.advance(5n);
    await newReader(config).now();
    // The store's own findAndModify (maxStep, set beside the time) comes after ensure's.
    const fam = double.commands("findAndModify").find((c) => "$inc" in c.command.update)?.command;
    assert.ok(fam, "a findAndModify was sent");
    assert.equal(fam.upsert, true);
    assert.deepEqual(Object.keys(fam.update), ["$inc"]);
    assert.equal(int64(fam.update.$inc.time), 0n);
    assert.equal(fam.query._id, "g");
    const update = double.commands("update").at(-1)?.command;
    const statement = update?.updates[0];
    assert.deepEqual(Object.keys(statement.u), ["$set"]);
    assert.equal(int64(statement.u.$set.time), 5n);
    assert.equal(statement.q._id, "g");
    assert.equal(int64(statement.q.time.$eq), 0n);
    assert.notEqual(statement.upsert, true);
    assert.equal(int64(statement.q.maxStep.$eq), 1_500_000_000n, "and the maxStep it was built on");
    assert.equal(update?.writeConcern.w, "majority");
    assert.equal(fam.writeConcern.w, "majority");
    const find = double.commands("find").at(-1)?.command;
    assert.equal(find?.readConcern.level, "majority");
    assert.equal(find?.filter._id, "g");
    await updater.close();
  });

  test("an existing clock is never overwritten by a new updater", async () => {
    await coll.insertOne({ _id: "g", time: Long.fromNumber(42) });
    const updater = await newUpdater(config);
    assert.equal(updater.time, 42n);
    assert.deepEqual(await stored(), Long.fromNumber(42));
    await updater.close();
  });

  test("ErrOutOfSyncUpdate: the losing updater gets OutOfSyncUpdateError and the new time", async () => {
    const a = await newUpdater(config);
    const b = await newUpdater(config);
    await a.advance(10n);
    const err = await b.advance(20n).catch((e: unknown) => e);
    assert.ok(err instanceof OutOfSyncUpdateError);
    assert.equal(err.actual, 10n);
    assert.equal(b.time, 10n);
    assert.equal(await b.advance(20n), 30n, "retrying later succeeds");
    await a.close();
    await b.close();
  });

  test("a missing document reads as globalEpoch(), which is the Unix epoch", async () => {
    assert.equal(globalEpoch(), 0n);
    assert.equal(await newReader(config).now(), globalEpoch());
  });

  for (const [what, time, expected] of [
    ["a double 5.0", new Double(5), /BSON double \(5\)/],
    ["a string", "2017-01-01T00:00:00Z", /BSON string/],
    ["a negative Long", Long.fromNumber(-5), /negative/],
    ["null", null, /BSON null/],
    ["missing", undefined, /no time field/],
  ] as const) {
    test(`a time that is ${what} is a CorruptRecordError everywhere, and nothing is overwritten`, async () => {
      await coll.insertOne(time === undefined ? { _id: "g" } : { _id: "g", time });
      const before = await coll.find({}, RAW).toArray();
      await assert.rejects(
        newReader(config).now(),
        (e: unknown) => e instanceof CorruptRecordError && expected.test(e.message),
      );
      await assert.rejects(newUpdater(config), CorruptRecordError);
      assert.deepEqual(closed, ["globalclock"], "a failed newUpdater still calls closer");
      const store = new MongoStore(client.db("juju").collection("globalclock"));
      assert.equal(await store.compareAndSwap(5n, 6n), false, "a Double 5.0 is not a Long 5");
      assert.equal(await store.compareAndSwap(0n, 6n), false);
      assert.deepEqual(await coll.find({}, RAW).toArray(), before);
    });
  }

  test("newUpdater leaves exactly one document, Juju's, however often it runs", async () => {
    // Juju's fields as Juju writes them; beside them only the cluster's maxStep, an int64.
    const maxStep = Long.fromNumber(1_500_000_000);
    const first = await newUpdater(config);
    assert.deepEqual(await coll.find({}, RAW).toArray(), [{ _id: "g", time: Long.ZERO, maxStep }]);
    const second = await newUpdater(config);
    await second.advance(3n);
    const third = await newUpdater(config);
    assert.equal(third.time, 3n);
    assert.deepEqual(await coll.find({}, RAW).toArray(), [
      { _id: "g", time: Long.fromNumber(3), maxStep },
    ]);
    await Promise.all([first.close(), second.close(), third.close()]);
  });

  test("Juju's advance, a $set of time alone, keeps the fields leases keep beside it", async () => {
    const leases = await openLeases(double.uri("juju", "collection=globalclock&timeout=5s"));
    try {
      const lease = await leases.claim("job", "alice", "10s");
      const before = await coll.findOne({ _id: "g" }, RAW);
      assert.ok(before?.maxStep instanceof Long && before.lastToken instanceof Long);
      assert.equal(before.lastToken.toBigInt(), lease.token, "the last token handed out");
      // Juju's Go updater: Update({_id: "g", time: old}, {$set: {time: new}}).
      await coll.updateOne({ _id: "g", time: Long.ZERO }, { $set: { time: Long.fromNumber(7) } });
      assert.deepEqual(await coll.findOne({ _id: "g" }, RAW), {
        ...before,
        time: Long.fromNumber(7),
      });
      assert.equal(await newReader(config).now(), 7n);
      const next = await leases.claim("other", "bob", "10s");
      assert.ok(next.token > lease.token);
      assert.equal(next.start, 7n);
    } finally {
      await leases.close();
    }
  });

  test("watch coalesces two writes made while it reads: it yields the later time only", async () => {
    const updater = await newUpdater(config);
    const store = await openStore(double.uri("juju", "collection=globalclock&timeout=5s"));
    const ac = new AbortController();
    assert.ok(store.watch, "the MongoDB store pushes changes");
    const changes = store.watch(ac.signal)[Symbol.asyncIterator]();
    try {
      assert.deepEqual(await changes.next(), { done: false, value: 0n });
      // The read that the first change wakes is held at the server until the second
      // write is done, so it finds both.
      let release = () => {};
      const held = new Promise<void>((resolve) => {
        release = resolve;
      });
      double.inject({ command: "find", action: { kind: "hold", until: held } });
      await updater.advance(1n);
      const deadline = Date.now() + 20_000;
      while (double.pendingFaults > 0) {
        assert.ok(Date.now() < deadline, "the watch never read after the first write");
        await new Promise((r) => setTimeout(r, 10));
      }
      await updater.advance(1n);
      release();
      assert.deepEqual(await changes.next(), { done: false, value: 2n }, "1 is never yielded");
      await updater.advance(1n);
      assert.deepEqual(await changes.next(), { done: false, value: 3n });
    } finally {
      ac.abort();
      await changes.return?.();
      await store.close();
      await updater.close();
    }
  });

  test("a worker's retryDelay of 0 or below is refused, naming the field", async () => {
    const store = new MongoStore(client.db("juju").collection("globalclock"));
    for (const retryDelay of [0, 0n, "0s", -1, -1n, "-1s"]) {
      assert.throws(
        () => startUpdater(store, { retryDelay }),
        (err: unknown) => {
          assert.ok(err instanceof ConfigError, `${String(retryDelay)}: ${String(err)}`);
          assert.equal(err.field, "retryDelay");
          assert.match(err.message, /retryDelay/);
          if (retryDelay !== 0 && retryDelay !== 0n && retryDelay !== "0s") {
            assert.ok(
              err instanceof InvalidDurationError,
              "a negative duration is invalid as such",
            );
          }
          return true;
        },
      );
    }
    await store.close();
  });

  test("validation errors are Juju's: missing collection, missing mongo client", async () => {
    const noCollection = { ...config, collection: "" };
    assert.throws(
      () => newReader(noCollection),
      (e: unknown) =>
        e instanceof ConfigError && e.message === "missing collection" && e.field === "collection",
    );
    await assert.rejects(newUpdater(noCollection), { message: "missing collection" });
    const noMongo = { collection: "globalclock" } as unknown as Config;
    assert.throws(
      () => newReader(noMongo),
      (e: unknown) => e instanceof ConfigError && e.message === "missing mongo client",
    );
    await assert.rejects(newUpdater(noMongo), { message: "missing mongo client" });
    assert.deepEqual(closed, []);
  });

  test("mongoFromDb gives a Mongo whose closer leaves the caller's client open", async () => {
    const reader = newReader({ collection: "globalclock", mongo: mongoFromDb(client.db("juju")) });
    await coll.insertOne({ _id: "g", time: Long.fromNumber(9) });
    assert.equal(await reader.now(), 9n);
    await reader.close();
    assert.deepEqual(await stored(), Long.fromNumber(9), "the client still works");
  });

  test("a store URL with the database path reaches the same Juju document", async () => {
    await coll.insertOne({ _id: "g", time: Long.fromNumber(77) });
    const store = await openStore(double.uri("juju", "collection=globalclock&timeout=5s"));
    assert.equal(await store.read(), 77n);
    await store.close();
  });

  test("an updater invalidated by a lost answer refuses every later call", async () => {
    const updater = await newUpdater(config);
    double.inject({
      command: "update",
      action: { kind: "error", code: 91, codeName: "ShutdownInProgress" },
    });
    // 91 is retryable on a replica set: the driver retries once and the retry succeeds.
    assert.equal(await updater.advance(1n), 1n);
    double.inject({
      command: "update",
      times: 2,
      action: { kind: "error", code: 91, codeName: "ShutdownInProgress" },
    });
    await assert.rejects(updater.advance(1n), InvalidUpdaterError);
    const sent = double.commands("update").length;
    await assert.rejects(updater.advance(1n), InvalidUpdaterError);
    assert.equal(double.commands("update").length, sent, "nothing sent once invalid");
    await updater.close();
  });
});
