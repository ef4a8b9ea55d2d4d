/**
 * The MongoDB store's lease records, beyond the conformance suite: how many commands each
 * operation sends, that they run in the store's session, how stored types are judged, the
 * prefix ranges, and the test double's sort and string ranges, which a listing relies on.
 */
import assert from "node:assert/strict";
import { after, before, beforeEach, describe, test } from "node:test";
import { Double, Long, MongoClient, MongoServerError } from "mongodb";
import {
  ClockRecordMissingError,
  type ClockStore,
  CorruptRecordError,
  openStore,
} from "../../src/index.js";
import type { LeaseStore } from "../../src/lease-store.js";
import { prefixRange } from "../../src/stores/mongodb/decode.js";
import { MongoDouble } from "../mongo-double/server.js";

const S = 1_000_000_000n;
const fields = { holder: "alice", token: 1n, newToken: false, start: 0n, expiry: 5n, pins: [] };
const seam = (store: ClockStore): LeaseStore => store.leases as LeaseStore;

describe("mongodb leases on the replica-set double", () => {
  let double: MongoDouble;
  let store: ClockStore;
  let raw: MongoClient;

  before(async () => {
    double = await MongoDouble.start({ replicaSet: "rs0" });
    store = await openStore(double.uri("", "collection=clock&timeout=5s"));
    raw = new MongoClient(double.uri(), { serverSelectionTimeoutMS: 5000 });
  });
  after(async () => {
    await store?.close();
    await raw?.close();
    await double?.close();
  });
  beforeEach(async () => {
    await raw.db("globalclock").collection("clock").deleteMany({});
    await raw.db("globalclock").collection("clock_leases").deleteMany({});
    double.log.length = 0;
  });
  type ClockDoc = { _id: string; time?: Long; maxStep?: unknown };
  const clock = () => raw.db("globalclock").collection<ClockDoc>("clock");

  test("each operation is one command, in the store's session", async () => {
    await store.ensure();
    const v = await seam(store).writeLease({ ...fields, name: "a" }, undefined);
    await seam(store).writeLease({ ...fields, name: "a", expiry: 6n }, v?.version);
    await seam(store).readLease("a");
    await seam(store).listLeases("");
    await seam(store).ensureMaxStep(1n);
    await seam(store).swapMaxStep(1n, 2n);
    await seam(store).readClock();
    await seam(store).advanceClock(0n, 1n, 2n);
    const names = double.log.map((c) => c.name);
    assert.deepEqual(names, [
      "findAndModify", // ensure
      "insert",
      "update",
      "aggregate", // readLease: the clock document (time, maxStep) and the lease at once
      "aggregate", // listLeases
      "findAndModify", // ensureMaxStep: set in the clock document where it has none
      "update", // swapMaxStep
      "find", // readClock
      "update", // advanceClock
    ]);
    const lsids = double.log.map((c) => JSON.stringify(c.command.lsid));
    assert.equal(new Set(lsids).size, 1, "one session");
    const read = double.commands("aggregate")[0]?.command;
    assert.equal(read?.aggregate, "clock");
    assert.deepEqual(
      read?.pipeline.map((stage: object) => Object.keys(stage)[0]),
      ["$match", "$project", "$unionWith"],
    );
    assert.equal(read?.readConcern?.level, "majority");
    assert.ok(read?.readConcern?.afterClusterTime, "causally after the store's writes");
    assert.equal(double.commands("insert")[0]?.command.writeConcern?.w, "majority");
    const advance = double.commands("update").at(-1)?.command;
    assert.equal(advance?.update, "clock");
    assert.equal(advance?.writeConcern?.w, "majority");
  });

  test("a new token is one findAndModify more, in the same session", async () => {
    await store.ensure();
    const first = await seam(store).writeLease({ ...fields, name: "b", newToken: true }, undefined);
    double.log.length = 0;
    await seam(store).writeLease({ ...fields, name: "c", newToken: true }, undefined);
    await seam(store).writeLease({ ...fields, name: "b", newToken: true }, first?.version);
    const names = double.log.map((c) => c.name);
    assert.deepEqual(names, ["findAndModify", "insert", "findAndModify", "update"]);
    const lsids = double.log.map((c) => JSON.stringify(c.command.lsid));
    assert.equal(new Set(lsids).size, 1, "one session");
  });

  test("a new record is an insert; a lost race is a duplicate key, never an error", async () => {
    const a = seam(store);
    const first = await a.writeLease({ ...fields, name: "n" }, undefined);
    assert.equal(first?.token, 1n);
    assert.equal(await a.writeLease({ ...fields, name: "n" }, undefined), undefined);
    assert.deepEqual(await a.writeLease({ ...fields, name: "n", expiry: 7n }, first?.version), {
      version: (first?.version ?? 0n) + 1n,
      token: 1n,
    });
    const doc = await raw
      .db("globalclock")
      .collection("clock_leases")
      .findOne({ _id: "n" as never }, { promoteLongs: false });
    assert.ok(doc?.version instanceof Long && doc.token instanceof Long, "stored as int64");
    assert.equal(String(doc?.expiry), "7");
  });

  test("an integer stored as a double is corrupt, and is left untouched", async () => {
    const leases = raw.db("globalclock").collection("clock_leases");
    await leases.insertOne({
      _id: "d" as never,
      holder: "alice",
      token: new Double(1),
      start: Long.ZERO,
      expiry: Long.fromNumber(5),
      pins: [],
      version: Long.ONE,
    });
    await assert.rejects(seam(store).readLease("d"), (err: unknown) => {
      assert.ok(err instanceof CorruptRecordError);
      assert.match(err.message, /token is a BSON double/);
      return true;
    });
    const stored = await leases.findOne({ _id: "d" as never }, { promoteValues: false });
    assert.ok(stored?.token instanceof Double);
  });

  for (const [what, maxStep, message] of [
    ["a string", "1.5s", /maxStep in globalclock\.clock is a BSON string/],
    ["a double", new Double(2), /maxStep in globalclock\.clock is a BSON double/],
    ["negative", Long.fromNumber(-2), /maxStep is negative/],
  ] as const) {
    test(`a maxStep that is ${what} is a CorruptRecordError naming the maxStep record`, async () => {
      await clock().insertOne({ _id: "g", time: Long.fromNumber(2), maxStep });
      const before = await clock().find({}, { promoteValues: false }).toArray();
      const corrupt = (err: unknown) =>
        err instanceof CorruptRecordError &&
        /corrupt maxStep record/.test(err.message) &&
        message.test(err.message);
      await assert.rejects(seam(store).readLease("x"), corrupt);
      await assert.rejects(seam(store).listLeases(""), corrupt);
      await assert.rejects(seam(store).readClock(), corrupt);
      await assert.rejects(seam(store).ensureMaxStep(1n), corrupt);
      assert.equal(await seam(store).swapMaxStep(2n, 3n), false);
      assert.equal(await seam(store).advanceClock(2n, 3n, 2n), false);
      assert.deepEqual(await clock().find({}, { promoteValues: false }).toArray(), before);
    });
  }

  test("maxStep is a field of the clock document: set back with the clock, gone with it", async () => {
    await store.compareAndSwap(await store.ensure(), 100n * S);
    assert.equal(await seam(store).ensureMaxStep(2n * S), 2n * S);
    const stored = await clock().findOne({ _id: "g" }, { promoteValues: false });
    assert.deepEqual(stored, {
      _id: "g",
      time: Long.fromBigInt(100n * S),
      maxStep: Long.fromBigInt(2n * S),
    });
    // A Long, as the restore's repro must use: a double would turn the clock into a double.
    await clock().updateMany({}, { $inc: { time: Long.fromNumber(-10_000_000_000) } });
    const back = await seam(store).readLease("job");
    assert.deepEqual(back, { time: 90n * S, maxStep: 2n * S, lease: undefined });
    await clock().deleteMany({});
    const gone = await seam(store).readLease("job");
    assert.deepEqual(gone, { time: undefined, maxStep: undefined, lease: undefined });
    await assert.rejects(seam(store).ensureMaxStep(3n * S), ClockRecordMissingError);
    assert.equal(await seam(store).swapMaxStep(2n * S, 3n * S), false);
    assert.deepEqual(await clock().find({}).toArray(), [], "ensureMaxStep never makes the clock");
  });

  test("the advance's filter holds the old time and the maxStep, with their types", async () => {
    await store.ensure();
    await seam(store).ensureMaxStep(2n * S);
    double.log.length = 0;
    assert.equal(await seam(store).advanceClock(0n, 5n, 2n * S), true);
    const statement = double.commands("update")[0]?.command.updates[0];
    assert.equal(statement.q._id, "g");
    assert.deepEqual(Object.keys(statement.q), ["_id", "time", "maxStep"]);
    assert.equal(String(statement.q.time.$eq), "0");
    assert.deepEqual(statement.q.time.$type, ["long", "int"]);
    assert.equal(String(statement.q.maxStep.$eq), String(2n * S));
    assert.deepEqual(statement.q.maxStep.$type, ["long", "int"]);
    assert.deepEqual(Object.keys(statement.u), ["$set"]);
    assert.deepEqual(Object.keys(statement.u.$set), ["time"]);
    assert.notEqual(statement.upsert, true);
    // A maxStep of equal value but another type is not the one the advance was built on.
    await clock().updateOne({ _id: "g" }, { $set: { maxStep: new Double(2e9) } });
    assert.equal(await seam(store).advanceClock(5n, 6n, 2n * S), false);
    assert.equal(await store.read(), 5n);
  });

  test("ensureMaxStep retried after a lost answer reads the maxStep its reply left out", async () => {
    await store.ensure();
    double.log.length = 0;
    double.inject({ command: "findAndModify", action: { kind: "drop-after" } });
    assert.equal(await seam(store).ensureMaxStep(2n * S), 2n * S);
    assert.equal(double.pendingFaults, 0);
    // The retry is answered from the oplog, without the projection: then one find.
    assert.deepEqual(
      double.log.map((c) => c.name),
      ["findAndModify", "findAndModify", "find"],
    );
    assert.equal(double.commands("find")[0]?.command.find, "clock");
  });

  test("names list in UTF-8 byte order, prefixes bounded by code points", async () => {
    const names = ["p\u{10FFFF}a", "p\u{10FFFF}", "q", "p\uD7FFz", "p\uE000", "p\u{10000}", "o"];
    for (const name of names) await seam(store).writeLease({ ...fields, name }, undefined);
    const list = async (prefix: string) =>
      (await seam(store).listLeases(prefix)).leases.map((l) => l.name);
    // JavaScript's sort would put U+10000 (a surrogate pair) before U+E000.
    assert.deepEqual(await list("p"), [
      "p\uD7FFz",
      "p\uE000",
      "p\u{10000}",
      "p\u{10FFFF}",
      "p\u{10FFFF}a",
    ]);
    assert.deepEqual(await list("p\u{10FFFF}"), ["p\u{10FFFF}", "p\u{10FFFF}a"]);
    assert.deepEqual(await list("p\uD7FF"), ["p\uD7FFz"]);
    assert.equal((await list("")).length, names.length);
  });
});

test("prefix ranges: the last code point one higher, past the surrogates and U+10FFFF", () => {
  assert.deepEqual(prefixRange("ab"), { $gte: "ab", $lt: "ac" });
  assert.deepEqual(prefixRange("a\uD7FF"), { $gte: "a\uD7FF", $lt: "a\uE000" });
  assert.deepEqual(prefixRange("a\u{10FFFF}"), { $gte: "a\u{10FFFF}", $lt: "b" });
  assert.deepEqual(prefixRange("\u{10FFFF}"), { $gte: "\u{10FFFF}" });
  assert.deepEqual(prefixRange(""), { $gte: "" });
});

test("standalone double: the refused change stream is asked once, then watchLeases notices at the poll pace", async () => {
  const double = await MongoDouble.start();
  const store = await openStore(double.uri("", "collection=clock&timeout=5s&pollInterval=20ms"));
  const ac = new AbortController();
  try {
    let notices = 0;
    for await (const _ of seam(store).watchLeases?.("", ac.signal) ?? []) {
      if (++notices === 3) break;
    }
    assert.equal(notices, 3);
    const streams = double
      .commands("aggregate")
      .filter((c) => "$changeStream" in (c.command.pipeline?.[0] ?? {}));
    assert.equal(streams.length, 1);
    assert.equal(streams[0]?.command.aggregate, "clock_leases");
  } finally {
    ac.abort();
    await store.close();
    await double.close();
  }
});

describe("the double's aggregate, as mongod answers it", () => {
  let double: MongoDouble;
  let client: MongoClient;
  before(async () => {
    double = await MongoDouble.start();
    client = new MongoClient(double.uri(), { serverSelectionTimeoutMS: 5000 });
    const a = client.db("t").collection<{ _id: unknown; n?: number }>("a");
    await a.insertMany([
      { _id: "\u{10000}" },
      { _id: "\uE000" },
      { _id: "a" },
      { _id: "B" },
      { _id: 5 },
    ]);
    await client.db("t").collection<{ _id: unknown }>("b").insertOne({ _id: "from-b" });
  });
  after(async () => {
    await client?.close();
    await double?.close();
  });

  test("$sort orders strings by UTF-8 bytes, numbers before strings", async () => {
    const ids = await client
      .db("t")
      .collection("a")
      .aggregate([{ $sort: { _id: 1 } }])
      .toArray();
    assert.deepEqual(
      ids.map((d) => d._id),
      [5, "B", "a", "\uE000", "\u{10000}"],
    );
  });

  test("string ranges match strings only (type bracketing)", async () => {
    const ids = await client
      .db("t")
      .collection("a")
      .aggregate([{ $match: { _id: { $gte: "", $lt: "\uF000" } } }, { $sort: { _id: -1 } }])
      .toArray();
    assert.deepEqual(
      ids.map((d) => d._id),
      ["\uE000", "a", "B"],
    );
  });

  test("$unionWith adds the other collection's pipeline output", async () => {
    const ids = await client
      .db("t")
      .collection("a")
      .aggregate([
        { $match: { _id: "a" } },
        { $unionWith: { coll: "b", pipeline: [{ $project: { _id: 1 } }] } },
        { $unionWith: { coll: "missing" } },
      ])
      .toArray();
    assert.deepEqual(ids.map((d) => d._id).sort(), ["a", "from-b"]);
  });

  test("$limit passes the first documents on, and refuses a limit that is not positive", async () => {
    const a = client.db("t").collection("a");
    const top = await a.aggregate([{ $sort: { _id: -1 } }, { $limit: 2 }]).toArray();
    assert.deepEqual(
      top.map((d) => d._id),
      ["\u{10000}", "\uE000"],
    );
    for (const [limit, code] of [
      [0, 15958],
      ["1", 15957],
    ] as const) {
      await assert.rejects(
        a.aggregate([{ $limit: limit }]).toArray(),
        (err: unknown) => err instanceof MongoServerError && err.code === code,
      );
    }
  });

  test("an unknown stage is refused with mongod's code", async () => {
    await assert.rejects(
      client
        .db("t")
        .collection("a")
        .aggregate([{ $group: { _id: null } }])
        .toArray(),
      (err: unknown) => err instanceof MongoServerError && err.code === 40324,
    );
  });
});
