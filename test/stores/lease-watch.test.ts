/**
 * watchLeases across connections: a lease written through one store wakes another
 * store's watch on its prefix, and closing the watching store ends the watch. On etcd
 * and on the MongoDB replica-set double (a change stream on the leases collection).
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { type ClockStore, ClosedError, openStore } from "../../src/index.js";
import type { LeaseStore } from "../../src/lease-store.js";
import { skipOrFail } from "../helpers/env.js";
import { EtcdCluster, findEtcd } from "../helpers/etcd-server.js";
import { MongoDouble } from "../mongo-double/server.js";

const TIMEOUT = { timeout: 30_000 };
const fields = { holder: "alice", token: 1n, newToken: false, start: 0n, expiry: 5n, pins: [] };

const seam = (store: ClockStore): LeaseStore => {
  assert.ok(store.leases?.watchLeases, `${store.kind} has no watchLeases`);
  return store.leases;
};

/** Counts a watch's notices; `ended` settles with how the watch ended. */
function follow(store: ClockStore, prefix: string) {
  const ac = new AbortController();
  const state = { notices: 0 };
  const ended = (async () => {
    for await (const _ of seam(store).watchLeases?.(prefix, ac.signal) ?? []) state.notices++;
  })();
  ended.catch(() => {});
  return { state, ended, stop: () => ac.abort() };
}

async function until(what: string, ok: () => boolean): Promise<void> {
  const deadline = Date.now() + 20_000;
  while (!ok()) {
    assert.ok(Date.now() < deadline, `timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

function watchTests(name: string, open: () => Promise<[ClockStore, ClockStore]>) {
  describe(`${name}: watchLeases`, () => {
    test(
      "a lease written by one connection wakes another's watch on its prefix",
      TIMEOUT,
      async () => {
        const [writer, watcher] = await open();
        try {
          const w = follow(watcher, "job/");
          // One notice when the watch is established (a write before it may have gone unseen).
          await until("the watch to be established", () => w.state.notices >= 1);
          const before = w.state.notices;
          const version = await seam(writer).writeLease({ ...fields, name: "job/1" }, undefined);
          await until("a notice of the write", () => w.state.notices > before);
          const next = w.state.notices;
          await seam(writer).writeLease({ ...fields, name: "job/1", expiry: 6n }, version?.version);
          await until("a notice of the second write", () => w.state.notices > next);
          w.stop();
          await w.ended; // an aborted signal ends the watch cleanly
        } finally {
          await writer.close();
          await watcher.close();
        }
      },
    );

    test("closing the watching store ends its watch with a ClosedError", TIMEOUT, async () => {
      const [writer, watcher] = await open();
      try {
        const w = follow(watcher, "");
        await until("the watch to be established", () => w.state.notices >= 1);
        await watcher.close();
        await assert.rejects(w.ended, ClosedError);
        assert.throws(
          () => seam(watcher).watchLeases?.("", new AbortController().signal),
          ClosedError,
        );
      } finally {
        await writer.close();
        await watcher.close();
      }
    });
  });
}

if (!findEtcd()) {
  test("etcd watchLeases", (t) =>
    skipOrFail(t, "no etcd binary at /usr/bin/etcd (apt-get install etcd-server)"));
} else {
  let cluster: EtcdCluster;
  before(async () => {
    cluster = await EtcdCluster.start(1);
  });
  after(() => cluster?.close());
  watchTests("etcd", async () => {
    const url = cluster.url(`key=${encodeURIComponent("/lease-watch/clock")}&timeout=5s`);
    return [await openStore(url), await openStore(url)];
  });
}

let double: MongoDouble;
before(async () => {
  double = await MongoDouble.start({ replicaSet: "rs0" });
});
after(() => double?.close());
watchTests("mongodb (replica-set double)", async () => {
  const url = double.uri("", "collection=leasewatch&timeout=5s");
  return [await openStore(url), await openStore(url)];
});
