/**
 * What MongoDB reads promise, through the official driver against the test double: one
 * causally consistent session per store (every read and write carries its lsid, reads after
 * a write carry afterClusterTime), none with linearizable reads, and a Reader that never
 * answers less than before, even when the store does (a rolled-back write, a stale primary).
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import { Long, MongoClient } from "mongodb";
import { MemoryStore, openStore, Reader, Updater } from "../../src/index.js";
import { memoryCell } from "../../src/stores/memory/index.js";
import { MongoDouble } from "../mongo-double/server.js";

const lsidOf = (c: { command: Record<string, unknown> }) =>
  Buffer.from((c.command.lsid as { id: { buffer: Uint8Array } }).id.buffer).toString("hex");

test("replica set: reads and writes share one session; reads after a write wait for it", async () => {
  const double = await MongoDouble.start({ replicaSet: "rs0" });
  const store = await openStore(double.uri("", "timeout=5s"));
  try {
    const updater = await Updater.create(store);
    await updater.advance(1n);
    await store.read();
    const [fam] = double.commands("findAndModify");
    const update = double.commands("update").at(-1);
    const find = double.commands("find").at(-1);
    assert.ok(fam && update && find);
    assert.equal(new Set([fam, update, find].map(lsidOf)).size, 1, "one session");
    const rc = find.command.readConcern as Record<string, unknown>;
    assert.equal(rc.level, "majority");
    assert.ok(rc.afterClusterTime, "the read waits for the session's last write");
  } finally {
    await store.close();
    await double.close();
  }
});

test("linearizable reads use no session (they refuse afterClusterTime, and need none)", async () => {
  const double = await MongoDouble.start({ replicaSet: "rs0" });
  const store = await openStore(double.uri("", "timeout=5s&readConcern=linearizable"));
  try {
    await (await Updater.create(store)).advance(1n);
    assert.equal(await store.read(), 1n);
    const rc = double.commands("find").at(-1)?.command.readConcern as Record<string, unknown>;
    assert.equal(rc.level, "linearizable");
    assert.equal(rc.afterClusterTime, undefined);
  } finally {
    await store.close();
    await double.close();
  }
});

test("a standalone refuses linearizable reads, as mongod does", async () => {
  const double = await MongoDouble.start();
  const store = await openStore(double.uri("", "timeout=5s&readConcern=linearizable"));
  try {
    await assert.rejects(store.read(), (err: Error) => /replica set member/.test(err.message));
  } finally {
    await store.close();
    await double.close();
  }
});

test("a Reader on MongoDB never answers less than before, though the store does", async () => {
  const double = await MongoDouble.start({ replicaSet: "rs0" });
  const store = await openStore(double.uri("", "timeout=5s"));
  const raw = new MongoClient(double.uri());
  try {
    const coll = raw.db("globalclock").collection<{ _id: string; time: Long }>("globalclock");
    await coll.insertOne({ _id: "g", time: Long.fromNumber(10) });
    const reader = new Reader(store);
    assert.equal(await reader.now(), 10n);
    // As after a rollback: the stored time is lower than what the reader answered.
    await coll.updateOne({ _id: "g" }, { $set: { time: Long.fromNumber(4) } });
    assert.equal(await store.read(), 4n, "the store itself answers the lower time");
    assert.equal(await reader.now(), 10n);
    await coll.updateOne({ _id: "g" }, { $set: { time: Long.fromNumber(12) } });
    assert.equal(await reader.now(), 12n);
  } finally {
    await raw.close();
    await store.close();
    await double.close();
  }
});

test("the floor covers what watch() yielded, and a record that disappears", async () => {
  const name = `floor-${process.pid}`;
  const store = new MemoryStore(name);
  await store.ensure();
  await store.compareAndSwap(0n, 7n);
  const reader = new Reader(store);
  const ac = new AbortController();
  for await (const time of reader.watch({ signal: ac.signal })) {
    assert.equal(time, 7n);
    ac.abort();
  }
  memoryCell(name).value = 3n;
  assert.equal(await reader.now(), 7n);
  memoryCell(name).value = undefined;
  assert.equal(await reader.now(), 7n, "a missing record is the epoch, raised to the floor");
});
