/**
 * The wire-protocol test double answers the official driver as mongod would, where a
 * clock record depends on it: these tests speak to it only through the raw driver.
 */
import assert from "node:assert/strict";
import { after, before, beforeEach, describe, test } from "node:test";
import {
  type Collection,
  Double,
  Int32,
  Long,
  MongoClient,
  MongoServerError,
  type UpdateFilter,
} from "mongodb";
import { MongoDouble } from "../mongo-double/server.js";

type Doc = {
  _id: string | number;
  time?: Long | Double | Int32 | string | number;
  other?: boolean;
};
const RAW = { promoteValues: false } as const;
// `time` may hold anything here, which the driver's typings cannot express for $inc.
const inc = (n: unknown) => ({ $inc: { time: n } }) as unknown as UpdateFilter<Doc>;

describe("mongodb test double", () => {
  let double: MongoDouble;
  let client: MongoClient;
  let coll: Collection<Doc>;

  before(async () => {
    double = await MongoDouble.start();
    client = new MongoClient(double.uri("", "socketTimeoutMS=2000"), {
      serverSelectionTimeoutMS: 2000,
    });
    await client.connect();
    coll = client.db("t").collection<Doc>("c");
  });
  after(async () => {
    await client?.close();
    await double?.close();
  });
  beforeEach(async () => {
    await coll.deleteMany({});
  });

  test("the driver's first hello arrives as legacy OP_QUERY, the rest as OP_MSG", async () => {
    await client.db("t").command({ ping: 1 });
    assert.ok(double.received.opQuery >= 1, "an OP_QUERY handshake");
    assert.ok(double.received.opMsg >= 1, "OP_MSG afterwards");
    assert.equal(double.commands("ping").length, 1);
  });

  test("insert, find by string _id, and duplicate _id as code 11000", async () => {
    await coll.insertOne({ _id: "g", time: Long.fromBigInt(7n) });
    assert.deepEqual(await coll.findOne({ _id: "g" }, RAW), {
      _id: "g",
      time: Long.fromBigInt(7n),
    });
    await assert.rejects(
      coll.insertOne({ _id: "g", time: 1 }),
      (err: unknown) => err instanceof MongoServerError && err.code === 11000,
    );
  });

  test("numbers compare by value across BSON types in a filter; $type tells them apart", async () => {
    await coll.insertOne({ _id: "d", time: new Double(5) });
    await coll.insertOne({ _id: "l", time: Long.fromNumber(5) });
    await coll.insertOne({ _id: "i", time: new Int32(5) });
    const ids = async (filter: object) =>
      (await coll.find(filter).toArray()).map((d) => d._id).sort();
    assert.deepEqual(await ids({ time: Long.fromNumber(5) }), ["d", "i", "l"]);
    assert.deepEqual(await ids({ time: { $type: "long" } }), ["l"]);
    assert.deepEqual(await ids({ time: { $type: ["long", "int"] } }), ["i", "l"]);
    assert.deepEqual(await ids({ time: { $eq: new Double(5), $type: "double" } }), ["d"]);
  });

  test("exact int64s near 2^63 are kept and matched exactly", async () => {
    const max = (1n << 63n) - 1n;
    await coll.insertOne({ _id: "g", time: Long.fromBigInt(max) });
    assert.equal((await coll.findOne({ time: Long.fromBigInt(max - 1n) })) === null, true);
    const doc = await coll.findOne({ time: Long.fromBigInt(max) }, { useBigInt64: true });
    assert.equal(doc?.time, max);
  });

  test("$inc keeps mongod's result types and refuses non-numbers", async () => {
    await coll.insertMany([
      { _id: "i", time: new Int32(1) },
      { _id: "d", time: new Double(1) },
      { _id: "s", time: "one" },
    ]);
    await coll.updateOne({ _id: "i" }, inc(Long.ZERO));
    await coll.updateOne({ _id: "d" }, inc(Long.ZERO));
    assert.deepEqual((await coll.findOne({ _id: "i" }, RAW))?.time, Long.fromNumber(1));
    assert.deepEqual((await coll.findOne({ _id: "d" }, RAW))?.time, new Double(1));
    await assert.rejects(
      coll.updateOne({ _id: "s" }, inc(Long.ZERO)),
      (err: unknown) => err instanceof MongoServerError && err.code === 14,
    );
  });

  test("update reports matched and modified; a no-op modifies nothing", async () => {
    await coll.insertOne({ _id: "g", time: Long.fromNumber(3) });
    const same = await coll.updateOne({ _id: "g" }, { $set: { time: Long.fromNumber(3) } });
    assert.equal(same.matchedCount, 1);
    assert.equal(same.modifiedCount, 0);
    const none = await coll.updateOne({ _id: "x" }, { $set: { time: Long.fromNumber(3) } });
    assert.equal(none.matchedCount, 0);
  });

  test("upserts seed the document from the filter's equalities", async () => {
    const r = await coll.updateOne({ _id: "g", time: { $type: "long" } }, inc(Long.ZERO), {
      upsert: true,
    });
    assert.equal(r.upsertedId, "g");
    assert.deepEqual(await coll.findOne({ _id: "g" }, RAW), { _id: "g", time: Long.ZERO });
    const found = await coll.findOneAndUpdate({ _id: "h" }, inc(Long.fromNumber(2)), {
      upsert: true,
      returnDocument: "after",
      ...RAW,
    });
    assert.deepEqual(found, { _id: "h", time: Long.fromNumber(2) });
  });

  test("an upsert whose filter misses an existing _id is a duplicate key error", async () => {
    await coll.insertOne({ _id: "g", time: "corrupt" });
    await assert.rejects(
      coll.findOneAndUpdate({ _id: "g", time: { $type: "long" } }, inc(Long.ZERO), {
        upsert: true,
      }),
      (err: unknown) => err instanceof MongoServerError && err.code === 11000,
    );
    assert.deepEqual(await coll.findOne({ _id: "g" }, RAW), { _id: "g", time: "corrupt" });
  });

  test("projections include, exclude, and compute $type", async () => {
    await coll.insertOne({ _id: "g", time: new Double(1.5), other: true });
    const doc = await coll.findOne(
      { _id: "g" },
      { projection: { _id: 0, time: 1, t: { $type: "$time" }, m: { $type: "$nope" } } },
    );
    assert.deepEqual(doc, { time: 1.5, t: "double", m: "missing" });
    assert.deepEqual(await coll.findOne({ _id: "g" }, { projection: { other: 0 } }), {
      _id: "g",
      time: 1.5,
    });
  });

  test("delete and drop", async () => {
    await coll.insertMany([{ _id: 1 }, { _id: 2 }, { _id: "g" }]);
    assert.equal((await coll.deleteOne({ _id: 1 })).deletedCount, 1);
    assert.equal((await coll.deleteMany({})).deletedCount, 2);
    await coll.insertOne({ _id: "g" });
    await coll.drop();
    assert.equal(await coll.findOne({}), null);
  });

  test("injected faults: a server error, a drop before and after applying", async () => {
    await coll.insertOne({ _id: "g", time: Long.fromNumber(1) });
    double.inject({
      command: "update",
      action: { kind: "error", code: 10107, codeName: "NotWritablePrimary" },
    });
    await assert.rejects(
      coll.updateOne({ _id: "g" }, { $set: { time: Long.fromNumber(2) } }),
      (err: unknown) => err instanceof MongoServerError && err.code === 10107,
    );
    double.inject({ command: "update", action: { kind: "drop-before" } });
    await assert.rejects(coll.updateOne({ _id: "g" }, { $set: { time: Long.fromNumber(3) } }));
    assert.deepEqual((await coll.findOne({ _id: "g" }, RAW))?.time, Long.fromNumber(1));
    double.inject({ command: "update", action: { kind: "drop-after" } });
    await assert.rejects(coll.updateOne({ _id: "g" }, { $set: { time: Long.fromNumber(4) } }));
    assert.deepEqual((await coll.findOne({ _id: "g" }, RAW))?.time, Long.fromNumber(4));
    assert.equal(double.pendingFaults, 0);
  });

  test("injected faults: a reply delayed past the socket timeout, a write-concern error", async () => {
    await coll.insertOne({ _id: "g", time: Long.fromNumber(1) });
    double.inject({ command: "update", action: { kind: "delay", ms: 4000 } });
    await assert.rejects(
      coll.updateOne({ _id: "g" }, { $set: { time: Long.fromNumber(2) } }),
      /timed out/,
    );
    double.inject({ command: "update", action: { kind: "write-concern-error" } });
    await assert.rejects(
      coll.updateOne({ _id: "g" }, { $set: { time: Long.fromNumber(3) } }),
      (err: unknown) => err instanceof MongoServerError && err.code === 64,
    );
    assert.deepEqual((await coll.findOne({ _id: "g" }, RAW))?.time, Long.fromNumber(3));
  });

  test("every connection cut with a read in flight: the driver's monitor notices and recovers", async () => {
    // The double streams hellos with a topologyVersion as mongod 4.4+ does; without it the
    // driver's polling monitor can be left waiting forever on its half-closed connection.
    await coll.insertOne({ _id: "g", time: Long.fromNumber(1) });
    await new Promise((r) => setTimeout(r, 600)); // past the driver's minimum heartbeat pause
    double.inject({ command: "find", action: { kind: "delay", ms: 1000 } });
    const inFlight = coll.findOne({ _id: "g" });
    await new Promise((r) => setTimeout(r, 50));
    const finds = double.commands("find").length;
    double.dropConnections();
    // The driver retries the read once, which needs a server selected again, at once.
    assert.deepEqual((await inFlight)?.time, 1);
    assert.equal(double.commands("find").length, finds + 1, "retried once");
  });

  test("change streams are refused on a standalone, as by mongod", async () => {
    const stream = coll.watch();
    await assert.rejects(
      stream.tryNext(),
      (err: unknown) => (err as { code?: number }).code === 40573,
    );
    await stream.close();
  });
});

describe("mongodb test double as a replica set", () => {
  test("change streams deliver updates; a retried write is answered once", async () => {
    const double = await MongoDouble.start({ replicaSet: "rs0" });
    const client = new MongoClient(double.uri(), { serverSelectionTimeoutMS: 2000 });
    try {
      const coll = client.db("t").collection<Doc>("c");
      await coll.insertOne({ _id: "g", time: Long.fromNumber(1) });
      const stream = coll.watch([{ $match: { "documentKey._id": "g" } }], { maxAwaitTimeMS: 200 });
      assert.equal(await stream.tryNext(), null);
      await coll.updateOne({ _id: "g" }, { $set: { time: Long.fromNumber(2) } });
      let change = await stream.tryNext();
      while (change === null) change = await stream.tryNext();
      assert.equal(change.operationType, "update");
      await stream.close();
      // Retryable writes: the connection drops after the update is applied; the driver
      // retries with the same transaction number, and the double replays its answer.
      double.inject({ command: "update", action: { kind: "drop-after" } });
      const r = await coll.updateOne({ _id: "g", time: Long.fromNumber(2) }, inc(1));
      assert.equal(r.matchedCount, 1);
      assert.equal(double.commands("update").at(-1)?.command.txnNumber !== undefined, true);
      const doc = await coll.findOne({ _id: "g" }, { useBigInt64: true });
      assert.equal(doc?.time, 3n, "applied exactly once");
    } finally {
      await client.close();
      await double.close();
    }
  });
});
