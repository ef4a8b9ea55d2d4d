/**
 * The etcd store on bad input: malformed URLs, hosts that refuse or never answer,
 * wrong credentials, and corrupt values in the key (never overwritten).
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { Etcd3 } from "etcd3";
import {
  ClosedError,
  CorruptRecordError,
  InvalidDurationError,
  openStore,
  Updater,
} from "../../src/index.js";
import { isStoreError, rejectsAsConfigError } from "../helpers/assertions.js";
import { skipOrFail } from "../helpers/env.js";
import { EtcdCluster, findEtcd } from "../helpers/etcd-server.js";
import { blackHole, freePort } from "../helpers/server-process.js";

describe("etcd store: URLs and unreachable hosts", () => {
  for (const [url, field] of [
    ["etcd://", "store"],
    ["etcd://localhost", "hosts"],
    ["etcd://localhost:99999", "hosts"],
    ["etcd://localhost:0", "hosts"],
    ["etcd://u:hunter 22@localhost:", "hosts"],
    ["etcd://localhost:2379,", "store"],
    ["etcd://u:hunter22@localhost:2379/some/path", "store"],
    ["etcd://localhost:2379?kee=/x", "store"],
    ["etcd://localhost:2379?key=", "key"],
    ["etcd://localhost:2379?timeout=0", "timeout"],
  ] as const) {
    // A password with a space is masked whole, never cut at the space.
    const secret = url.includes("hunter 22") ? "hunter 22" : "hunter22";
    test(`${url} is a ConfigError on ${field}`, async () => {
      await rejectsAsConfigError(url, field, secret);
      await rejectsAsConfigError(url, field, "22@");
    });
  }

  test("a bad timeout is an InvalidDurationError", async () => {
    await assert.rejects(openStore("etcd://localhost:2379?timeout=soon"), InvalidDurationError);
  });

  test("a refused connection fails with a clear StoreError", { timeout: 20_000 }, async () => {
    const port = await freePort();
    const store = await openStore(`etcd://u:hunter22@127.0.0.1:${port}?timeout=500ms`);
    await assert.rejects(store.read(), isStoreError("etcd", /etcd at 127\.0\.0\.1/, "hunter22"));
    await store.close();
  });

  test("a host that never answers fails at the deadline", { timeout: 20_000 }, async (t) => {
    const hole = await blackHole();
    const store = await openStore(`etcd://127.0.0.1:${hole.port}?timeout=300ms`);
    const started = performance.now();
    await assert.rejects(store.ensure(), isStoreError("etcd", /within 300 ms/));
    t.diagnostic(`gave up after ${Math.round(performance.now() - started)} ms`);
    await store.close();
    await hole.close();
  });
});

if (!findEtcd()) {
  test("etcd store against a real server", (t) =>
    skipOrFail(t, "no etcd binary at /usr/bin/etcd (apt-get install etcd-server)"));
} else {
  describe("etcd store against a real server", () => {
    let cluster: EtcdCluster;
    let raw: Etcd3;
    before(async () => {
      cluster = await EtcdCluster.start(1);
      raw = new Etcd3({ hosts: cluster.endpoints.map((h) => `http://${h}`) });
    });
    after(async () => {
      raw?.close();
      await cluster?.close();
    });

    for (const value of ["007", "-0", " 5", "", "1e3", "9223372036854775808", "-5"]) {
      test(`value ${JSON.stringify(value)} is corrupt and left untouched`, async () => {
        const key = `/corrupt/${encodeURIComponent(value) || "empty"}`;
        await raw.put(key).value(value);
        const revision = (await raw.get(key).exec()).kvs[0]?.mod_revision;
        const store = await openStore(cluster.url(`key=${encodeURIComponent(key)}`));
        await assert.rejects(store.read(), CorruptRecordError);
        await assert.rejects(store.ensure(), CorruptRecordError);
        await assert.rejects(Updater.create(store), CorruptRecordError);
        assert.equal(await store.compareAndSwap(0n, 1n), false);
        assert.equal(await store.compareAndSwap(-5n, 1n), false);
        const kv = (await raw.get(key).exec()).kvs[0];
        assert.equal(kv?.value.toString(), value);
        assert.equal(kv?.mod_revision, revision);
        await store.close();
      });
    }

    test("closing the store ends a running watch with a ClosedError", async () => {
      const store = await openStore(cluster.url("key=/closing"));
      await store.ensure();
      const watching = store.watch?.(new AbortController().signal)[Symbol.asyncIterator]();
      assert.ok(watching);
      assert.equal((await watching.next()).value, 0n);
      const ended = assert.rejects(watching.next(), ClosedError);
      await store.close();
      await ended;
    });

    test("a corrupt value put while watching fails the watch", async () => {
      const key = "/corrupt/watched";
      const store = await openStore(cluster.url(`key=${key}`));
      await store.ensure();
      const ac = new AbortController();
      const watching = store.watch?.(ac.signal)[Symbol.asyncIterator]();
      assert.ok(watching);
      assert.equal((await watching.next()).value, 0n); // the read once the watch is up
      await raw.put(key).value("twelve o'clock");
      await assert.rejects(watching.next(), CorruptRecordError);
      ac.abort();
      await store.close();
    });

    test("wrong credentials are a clear error that shows no password", async () => {
      const secured = await EtcdCluster.start(1);
      const admin = new Etcd3({ hosts: secured.endpoints.map((h) => `http://${h}`) });
      try {
        await admin.role("root").create();
        await admin.user("root").create("root-pw-123");
        await admin.user("root").addRole("root");
        await admin.auth.authEnable({});
        const bad = await openStore(secured.url().replace("etcd://", "etcd://root:wrong-pw-456@"));
        await assert.rejects(
          bad.read(),
          isStoreError("etcd", /authentication failed.*check the user/, "wrong-pw-456"),
        );
        await bad.close();
        const good = await openStore(secured.url().replace("etcd://", "etcd://root:root-pw-123@"));
        assert.equal(await good.ensure(), 0n);
        await good.close();
      } finally {
        admin.close();
        await secured.close();
      }
    });
  });
}
