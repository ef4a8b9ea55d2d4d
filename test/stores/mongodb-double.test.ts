/**
 * The wire-protocol test double answers the official driver as mongod would, where a
 * clock record depends on it: these tests speak to it only through the raw driver.
 */
import assert from "node:assert/strict";
import { after, before, beforeEach, describe, test } from "node:test";
import {
  type Collection,
  Decimal128,
  type Document,
  Double,
  Int32,
  Long,
  MongoClient,
  MongoServerError,
  MongoWriteConcernError,
  type UpdateFilter,
  UUID,
} from "mongodb";
import { eventually } from "../helpers/daemon.js";
import { MongoDouble } from "../mongo-double/server.js";

type Doc = {
  _id: string | number;
  time?: Long | Double | Int32 | Decimal128 | string | number;
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
    await coll.insertOne({ _id: "m", time: Decimal128.fromString("5.0") });
    await coll.insertOne({ _id: "h", time: Decimal128.fromString("5.5") });
    assert.deepEqual(await ids({ time: Long.fromNumber(5) }), ["d", "i", "l", "m"]);
    assert.deepEqual(await ids({ time: { $gt: new Double(5.25), $lt: new Int32(6) } }), ["h"]);
    assert.deepEqual(await ids({ time: { $type: "decimal" } }), ["h", "m"]);
  });

  test("write concerns a standalone cannot satisfy are refused before writing", async () => {
    for (const w of [2, "dc1"]) {
      await assert.rejects(
        coll.insertOne({ _id: `w${w}`, time: 1 }, { writeConcern: { w: w as number } }),
        (err: unknown) => err instanceof MongoServerError && err.code === 2,
      );
    }
    assert.equal((await coll.find({}).toArray()).length, 0);
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

  // The find is held until released, and this client has no socket timeout of its own: only
  // the cut can free the read (the test's timeout is a liveness bound).
  test("every connection cut with a read in flight: the driver's monitor notices and recovers", {
    timeout: 30_000,
  }, async () => {
    // The double streams hellos with a topologyVersion as mongod 4.4+ does; without it the
    // driver's polling monitor can be left waiting forever on its half-closed connection.
    const own = new MongoClient(double.uri(), { serverSelectionTimeoutMS: 2000 });
    const reads = own.db("t").collection<Doc>("c");
    let release = () => {};
    const held = new Promise<void>((resolve) => {
      release = resolve;
    });
    try {
      await reads.insertOne({ _id: "g", time: Long.fromNumber(1) });
      await new Promise((r) => setTimeout(r, 600)); // past the driver's minimum heartbeat pause
      double.inject({ command: "find", action: { kind: "hold", until: held } });
      const before = double.commands("find").length;
      const inFlight = reads.findOne({ _id: "g" });
      // In flight: the double has the find, and answers it only once released.
      await eventually(
        () => double.commands("find").length > before,
        "the find to reach the double",
      );
      const finds = double.commands("find").length;
      double.dropConnections();
      // The driver retries the read once, which needs a server selected again, at once.
      assert.deepEqual((await inFlight)?.time, 1);
      assert.equal(double.commands("find").length, finds + 1, "retried once");
    } finally {
      release(); // its connection is gone: the held find is never answered
      await own.close();
    }
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

describe("mongodb test double as a replica set, answering as mongod does", () => {
  let double: MongoDouble;
  let client: MongoClient;
  let coll: Collection<Doc>;
  before(async () => {
    double = await MongoDouble.start({ replicaSet: "rs0" });
    client = new MongoClient(double.uri(), { serverSelectionTimeoutMS: 5000 });
    coll = client.db("t").collection<Doc>("c");
  });
  after(async () => {
    await client?.close();
    await double?.close();
  });
  beforeEach(() => coll.deleteMany({}));

  test("a retried findAndModify is answered with the whole document, without the projection", async () => {
    await coll.insertOne({ _id: "g", time: new Int32(0), other: true });
    double.inject({ command: "findAndModify", action: { kind: "drop-after" } });
    const doc = await coll.findOneAndUpdate({ _id: "g" }, inc(Long.ZERO), {
      returnDocument: "after",
      projection: { _id: 0, t: { $type: "$time" } },
    });
    assert.deepEqual(doc, { _id: "g", time: 0, other: true }, "as from the oplog");
    assert.equal(double.commands("findAndModify").length, 2);
    double.inject({ command: "findAndModify", action: { kind: "drop-after" } });
    assert.deepEqual(
      await coll.findOneAndUpdate({ _id: "g" }, inc(Long.ZERO), {
        projection: { _id: 0, t: { $type: "$time" } },
      }),
      { t: "long" },
      "a findAndModify that changed nothing wrote nothing: its retry runs again, projected",
    );
  });

  test("a retried statement that wrote nothing runs again; one that wrote is answered from its record", () => {
    const lsid = { id: new UUID() };
    const run = (cmd: Record<string, unknown>) => double.engine.run("t", cmd, 0) as Document;
    const update = (txn: number) => ({
      update: "c",
      updates: [{ q: { _id: "x" }, u: { $set: { time: new Int32(1) } } }],
      lsid,
      txnNumber: Long.fromNumber(txn),
    });
    assert.equal(run(update(1)).n, 0);
    run({ insert: "c", documents: [{ _id: "x" }] });
    const first = run(update(1));
    assert.equal(first.n, 1, "run again: it matches now");
    first.writeConcernError = { code: 64 }; // a fault added to one answer is not kept
    run({ delete: "c", deletes: [{ q: { _id: "x" }, limit: 0 }] });
    const replayed = run(update(1));
    assert.equal(replayed.n, 1, "answered from the record, not run on the missing document");
    assert.equal(replayed.writeConcernError, undefined);
    const tooOld = run(update(2));
    assert.equal(tooOld.n, 0);
    assert.throws(() => run(update(1)), { code: 225 });
  });

  test("a retryable write-concern error is labelled RetryableWriteError, retried and applied once", async () => {
    await coll.insertOne({ _id: "g", time: Long.fromNumber(1) });
    double.inject({
      command: "update",
      action: { kind: "write-concern-error", code: 91, codeName: "ShutdownInProgress" },
    });
    const r = await coll.updateOne({ _id: "g", time: Long.fromNumber(1) }, inc(Long.fromNumber(1)));
    assert.equal(r.matchedCount, 1);
    assert.equal(double.commands("update").length >= 2, true, "retried");
    assert.deepEqual((await coll.findOne({ _id: "g" }, RAW))?.time, Long.fromNumber(2));
    double.inject({ command: "update", action: { kind: "write-concern-error" } });
    await assert.rejects(
      coll.updateOne({ _id: "g" }, inc(Long.fromNumber(1))),
      (err: unknown) =>
        err instanceof MongoWriteConcernError && !err.hasErrorLabel("RetryableWriteError"),
    );
  });

  test("write concerns: more members than there are, or an unknown mode, as a writeConcernError", async () => {
    for (const [w, code] of [
      [2, 100],
      ["dc1", 79],
    ] as const) {
      await assert.rejects(
        coll.insertOne({ _id: `w${w}`, time: 1 }, { writeConcern: { w: w as number } }),
        (err: unknown) => err instanceof MongoWriteConcernError && err.code === code,
      );
    }
    assert.equal((await coll.find({}).toArray()).length, 2, "written, then reported");
  });

  test("a getMore error is labelled ResumableChangeStreamError and the stream resumes", async () => {
    const stream = coll.watch([], { maxAwaitTimeMS: 100 });
    assert.equal(await stream.tryNext(), null);
    double.inject({
      command: "getMore",
      action: { kind: "error", code: 6, codeName: "HostUnreachable" },
    });
    await coll.insertOne({ _id: "a", time: 1 });
    let change = await stream.tryNext();
    while (change === null) change = await stream.tryNext();
    assert.equal(change.operationType, "insert");
    assert.equal(double.commands("aggregate").length >= 2, true, "resumed with a new aggregate");
    await stream.close();
  });

  for (const [what, act] of [
    ["a drop", (c: Collection<Doc>) => c.drop()],
    [
      "a rename",
      (c: Collection<Doc>) => c.rename("renamed").then(() => c.db.dropCollection("renamed")),
    ],
    ["dropDatabase", (c: Collection<Doc>) => c.db.dropDatabase()],
  ] as const) {
    test(`${what} closes a change stream on the collection (cursor id 0)`, async () => {
      await coll.insertOne({ _id: "g", time: 1 });
      const stream = coll.watch([{ $match: { "documentKey._id": "g" } }], { maxAwaitTimeMS: 100 });
      assert.equal(await stream.tryNext(), null);
      await act(coll);
      const deadline = Date.now() + 10_000;
      while (!stream.closed) {
        assert.ok(Date.now() < deadline, "the stream never closed");
        assert.equal(
          await stream.tryNext(),
          null,
          "the filter hides the drop and invalidate events",
        );
      }
      await stream.close();
    });
  }

  test("replSetStepDown: a secondary until the election, then primary in a newer term", async () => {
    await coll.insertOne({ _id: "g", time: Long.fromNumber(1) });
    const before = double.engine.hello(0, false).electionId;
    await client.db("admin").command({ replSetStepDown: 1, force: true });
    assert.equal(double.engine.hello(0, false).secondary, true);
    // A write waits for a primary, and lands once one is elected.
    await coll.updateOne({ _id: "g" }, { $set: { time: Long.fromNumber(2) } });
    const after = double.engine.hello(0, false).electionId;
    assert.ok(String(after) > String(before), `${after} after ${before}`);
    await assert.rejects(
      client.db("t").command({ replSetStepDown: 1, force: true }),
      (err: unknown) => err instanceof MongoServerError && err.code === 13,
    );
  });

  test("read concerns: afterClusterTime is refused with linearizable", async () => {
    await assert.rejects(
      client.db("t").command({
        find: "c",
        readConcern: { level: "linearizable", afterClusterTime: double.engine.changes.clusterTime },
      }),
      (err: unknown) => err instanceof MongoServerError && err.code === 72,
    );
  });
});
