/**
 * The MongoDB store's fencing tokens: a counter `lastToken` in the clock document, how it
 * is taken, started where it is missing, moved above a record's own token, and kept from
 * repeating under retries and races.
 */
import assert from "node:assert/strict";
import { after, before, beforeEach, describe, test } from "node:test";
import { Double, Int32, Long, MongoClient } from "mongodb";
import {
  ClockRecordMissingError,
  type ClockStore,
  CorruptRecordError,
  openStore,
} from "../../src/index.js";
import type { LeaseStore, LeaseWrite } from "../../src/lease-store.js";
import { MongoDouble } from "../mongo-double/server.js";

const seam = (store: ClockStore): LeaseStore => store.leases as LeaseStore;
const RAW = { promoteValues: false } as const;
const write = (name: string, token = 0n): LeaseWrite => ({
  name,
  holder: "alice",
  token,
  newToken: true,
  start: 0n,
  expiry: 5n,
  pins: [],
});

describe("mongodb fencing tokens on the replica-set double", () => {
  let double: MongoDouble;
  let a: ClockStore;
  let b: ClockStore;
  let raw: MongoClient;
  type Doc = { _id: string; [field: string]: unknown };
  const clock = () => raw.db("globalclock").collection<Doc>("clock");
  const leases = () => raw.db("globalclock").collection<Doc>("clock_leases");
  const counter = async () => (await clock().findOne({ _id: "g" }, RAW))?.lastToken;

  before(async () => {
    double = await MongoDouble.start({ replicaSet: "rs0" });
    a = await openStore(double.uri("", "collection=clock&timeout=5s"));
    b = await openStore(double.uri("", "collection=clock&timeout=5s"));
    raw = new MongoClient(double.uri(), { serverSelectionTimeoutMS: 5000 });
  });
  after(async () => {
    await a?.close();
    await b?.close();
    await raw?.close();
    await double?.close();
  });
  beforeEach(async () => {
    await clock().deleteMany({});
    await leases().deleteMany({});
    double.log.length = 0;
  });

  test("the counter is an int64 in the clock document, taken by $inc where it is at or above the record's token", async () => {
    await a.ensure();
    const x = await seam(a).writeLease(write("x"), undefined);
    const y = await seam(b).writeLease(write("y"), undefined);
    assert.ok(x && y && y.token > x.token);
    assert.deepEqual(await counter(), Long.fromBigInt(y.token));
    const taken = double.commands("findAndModify").at(-1)?.command;
    assert.equal(taken?.findAndModify, "clock");
    assert.deepEqual(Object.keys(taken?.query), ["_id", "lastToken"]);
    assert.equal(String(taken?.query.lastToken.$gte), "0");
    assert.deepEqual(taken?.query.lastToken.$type, ["long", "int"]);
    assert.deepEqual(Object.keys(taken?.update), ["$inc"]);
    const one = taken?.update.$inc.lastToken; // the double's own copy of bson
    assert.ok(one?._bsontype === "Long" && String(one) === "1", "$inc by an int64 1");
    assert.equal(taken?.new, true);
    assert.notEqual(taken?.upsert, true);
    assert.equal(taken?.writeConcern.w, "majority");
  });

  test("a missing counter starts above every integer token stored; a double is not a token", async () => {
    await leases().insertMany([
      { _id: "l", token: Long.fromNumber(41) },
      { _id: "i", token: new Int32(7) },
      { _id: "d", token: new Double(99) },
    ]);
    await a.ensure(); // a clock document as Juju, or a backup from before the counter, has it
    assert.equal((await seam(a).writeLease(write("n"), undefined))?.token, 42n);
    assert.deepEqual(await counter(), Long.fromNumber(42));
    assert.equal((await seam(b).writeLease(write("m"), undefined))?.token, 43n);
  });

  test("a record's token above the counter: the counter moves to just above it", async () => {
    await a.ensure();
    await clock().updateOne({ _id: "g" }, { $set: { lastToken: Long.fromNumber(5) } });
    assert.equal((await seam(a).writeLease(write("far", 100n), undefined))?.token, 101n);
    assert.deepEqual(await counter(), Long.fromNumber(101));
    assert.equal((await seam(b).writeLease(write("near", 3n), undefined))?.token, 102n);
  });

  test("without a clock document a new token is a ClockRecordMissingError, and nothing is made", async () => {
    await assert.rejects(seam(a).writeLease(write("x"), undefined), ClockRecordMissingError);
    assert.deepEqual(await clock().find({}).toArray(), []);
    assert.deepEqual(await leases().find({}).toArray(), []);
    const kept = await seam(a).writeLease({ ...write("x", 9n), newToken: false }, undefined);
    assert.equal(kept?.token, 9n, "a write that keeps its token needs none");
  });

  test("a corrupt counter is a CorruptRecordError naming it, and is left untouched", async () => {
    await clock().insertOne({ _id: "g", time: Long.ZERO, lastToken: "seven" });
    const before = await clock().find({}, RAW).toArray();
    await assert.rejects(seam(a).writeLease(write("x"), undefined), (err: unknown) => {
      assert.ok(err instanceof CorruptRecordError, String(err));
      assert.match(
        err.message,
        /corrupt token counter: lastToken in globalclock\.clock is a BSON string/,
      );
      return true;
    });
    assert.deepEqual(await clock().find({}, RAW).toArray(), before);
  });

  test("an $inc whose answer was lost is retried and answered once: no token is skipped or repeated", async () => {
    await a.ensure();
    const first = await seam(a).writeLease(write("x"), undefined);
    double.inject({ command: "findAndModify", action: { kind: "drop-after" } });
    const second = await seam(a).writeLease(write("y"), undefined);
    assert.equal(double.pendingFaults, 0);
    assert.equal(second?.token, (first?.token ?? 0n) + 1n);
    assert.deepEqual(await counter(), Long.fromBigInt(second?.token ?? 0n));
  });

  test("racing allotments on two connections, from a missing counter on, never repeat a token", async () => {
    await leases().insertOne({ _id: "old", token: Long.fromNumber(10) });
    await a.ensure();
    const names = Array.from({ length: 40 }, (_, i) => `r${i}`);
    const written = await Promise.all(
      names.map((name, i) => seam(i % 2 ? a : b).writeLease(write(name, BigInt(i % 3)), undefined)),
    );
    const tokens = written.map((w) => w?.token ?? 0n);
    assert.equal(new Set(tokens).size, names.length, tokens.join(", "));
    assert.ok(
      tokens.every((t) => t > 10n),
      "all above the token stored before",
    );
  });
});
