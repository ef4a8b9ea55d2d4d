/**
 * The MongoDB store's watch, through the official driver against the test double: a
 * change stream on a replica set, polling on a standalone, and how a watch ends.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import { Double, MongoClient } from "mongodb";
import {
  type ClockStore,
  ClosedError,
  CorruptRecordError,
  openStore,
  Updater,
} from "../../src/index.js";
import { pushedUntil } from "../helpers/assertions.js";
import { MongoDouble } from "../mongo-double/server.js";

async function setUp(replicaSet: string | undefined, query = "timeout=2s") {
  const double = await MongoDouble.start({ replicaSet });
  const writer = await openStore(double.uri("", query));
  const watcher = await openStore(double.uri("", query));
  const updater = await Updater.create(writer);
  double.log.length = 0; // the commands the watch sends, not those that made the clock
  const close = async () => {
    await updater.close();
    await writer.close();
    await watcher.close();
    await double.close();
  };
  return { double, writer, watcher, updater, close };
}

/** Collects what a watch yields until `until` says stop, or the watch ends. */
function collect(store: ClockStore, until: (seen: bigint[]) => boolean) {
  const ac = new AbortController();
  const seen: bigint[] = [];
  const done = (async () => {
    for await (const time of store.watch?.(ac.signal) ?? []) {
      seen.push(time);
      if (until(seen)) ac.abort();
    }
  })();
  return { seen, done, stop: () => ac.abort() };
}

const waitFor = async (what: string, ok: () => boolean) => {
  const deadline = Date.now() + 20_000;
  while (!ok()) {
    assert.ok(Date.now() < deadline, `timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
};

test("replica set: changes arrive through one change stream on the clock document, not by polling", async () => {
  const t = await setUp("rs0");
  try {
    const w = collect(t.watcher, (seen) => seen.at(-1) === 3n);
    await waitFor("the change stream to open", () => t.double.commands("aggregate").length === 1);
    await t.updater.advance(1n);
    await t.updater.advance(1n);
    await t.updater.advance(1n);
    await w.done;
    assert.equal(w.seen.at(-1), 3n);
    const [aggregate] = t.double.commands("aggregate");
    const pipeline = aggregate?.command.pipeline as Array<Record<string, unknown>>;
    assert.ok(pipeline[0] && "$changeStream" in pipeline[0]);
    assert.deepEqual(pipeline[1], { $match: { "documentKey._id": "g" } });
    // Reads follow changes only: one when the stream opened, then one per burst of changes.
    assert.ok(t.double.commands("find").length <= 4, `${t.double.commands("find").length} reads`);
  } finally {
    await t.close();
  }
});

test("standalone: the refused change stream is asked for once, then the clock is polled", async () => {
  const t = await setUp(undefined, "timeout=2s&pollInterval=20ms");
  try {
    const w = collect(t.watcher, (seen) => seen.at(-1) === 2n);
    await waitFor("polling", () => t.double.commands("find").length >= 3);
    await t.updater.advance(1n);
    await t.updater.advance(1n);
    await w.done;
    assert.equal(w.seen.at(-1), 2n);
    assert.equal(t.double.commands("aggregate").length, 1, "no retry storm on a standalone");
  } finally {
    await t.close();
  }
});

test("a watch on a store that closes ends with ClosedError", async () => {
  const t = await setUp("rs0");
  try {
    const w = collect(t.watcher, () => false);
    await waitFor("the first value", () => w.seen.length === 1);
    const ended = assert.rejects(w.done, ClosedError);
    await t.watcher.close();
    await ended;
  } finally {
    await t.close();
  }
});

test("a watch that meets a corrupt record ends with CorruptRecordError", async () => {
  const t = await setUp(undefined, "timeout=2s&pollInterval=20ms");
  const raw = new MongoClient(t.double.uri());
  try {
    const w = collect(t.watcher, () => false);
    await waitFor("the first value", () => w.seen.length === 1);
    const coll = raw.db("globalclock").collection<{ _id: string; time: unknown }>("globalclock");
    await coll.updateOne({ _id: "g" }, { $set: { time: new Double(1.5) } });
    await assert.rejects(w.done, CorruptRecordError);
  } finally {
    await raw.close();
    await t.close();
  }
});

test("every connection cut: the watch opens a new change stream and misses nothing", async () => {
  const t = await setUp("rs0", "timeout=500ms");
  try {
    const w = collect(t.watcher, (seen) => seen.at(-1) === 2n);
    await waitFor("the change stream to open", () => t.double.commands("aggregate").length === 1);
    await t.updater.advance(1n);
    await waitFor("the first change", () => w.seen.at(-1) === 1n);
    t.double.dropConnections();
    // Advanced while the watcher is cut off: it must learn of it when it is back.
    const updater = await Updater.create(t.writer);
    await updater.advance(1n);
    await w.done;
    assert.ok(t.double.commands("aggregate").length >= 2, "a new change stream");
    assert.deepEqual(
      w.seen,
      [...w.seen].sort((a, b) => (a < b ? -1 : 1)),
    );
    await updater.close();
  } finally {
    await t.close();
  }
});

test("Reader.watch on the MongoDB store yields each later time once", async () => {
  const t = await setUp("rs0");
  try {
    const { seen, done } = pushedUntil(t.watcher, 5n);
    for (let i = 0; i < 5; i++) await t.updater.advance(1n);
    await done;
    assert.equal(seen[0] !== undefined && seen[0] <= 5n, true);
    assert.equal(seen.at(-1), 5n);
    assert.equal(new Set(seen).size, seen.length);
  } finally {
    await t.close();
  }
});
