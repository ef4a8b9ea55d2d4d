/**
 * The etcd store's leases against a real server: fencing tokens are revisions (stored as a
 * marker in the write that made them), and a Value compare on a missing key never holds,
 * which is what refuses an advance once maxStep was deleted.
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { Etcd3 } from "etcd3";
import { openStore } from "../../src/index.js";
import type { LeaseStore, LeaseWrite } from "../../src/lease-store.js";
import type { ClockStore } from "../../src/store.js";
import { TOKEN_IS_REVISION } from "../../src/stores/etcd/values.js";
import { skipOrFail } from "../helpers/env.js";
import { EtcdCluster, findEtcd } from "../helpers/etcd-server.js";

const KEY = "/revisions/clock";
const write = (fields: Partial<LeaseWrite>): LeaseWrite => ({
  name: "job",
  holder: "alice",
  token: 0n,
  newToken: false,
  start: 0n,
  expiry: 5n,
  pins: [],
  ...fields,
});

if (!findEtcd()) {
  test("etcd leases against a real server", (t) =>
    skipOrFail(t, "no etcd binary at /usr/bin/etcd (apt-get install etcd-server)"));
} else {
  describe("etcd leases against a real server", () => {
    let cluster: EtcdCluster;
    let raw: Etcd3;
    let store: ClockStore;
    let leases: LeaseStore;
    const stored = async (key: string) => (await raw.get(key).exec()).kvs[0];

    before(async () => {
      cluster = await EtcdCluster.start(1);
      raw = new Etcd3({ hosts: cluster.endpoints.map((h) => `http://${h}`) });
      store = await openStore(cluster.url(`key=${KEY}`));
      assert.ok(store.leases);
      leases = store.leases;
    });
    after(async () => {
      await store?.close();
      raw?.close();
      await cluster?.close();
    });

    test("a Value compare on a missing key fails, whatever the operator", async () => {
      const missing = "/revisions/missing";
      for (const [cmp, value] of [
        ["==", ""],
        ["!=", "x"],
        ["<", "z"],
        [">", ""],
      ] as const) {
        const res = await raw
          .if(missing, "Value", cmp, value)
          .then(raw.put(missing).value("1"))
          .commit();
        assert.equal(res.succeeded, false, `Value ${cmp} ${JSON.stringify(value)}`);
      }
      assert.equal(await stored(missing), undefined);
      const created = await raw.if(missing, "Create", "==", 0).commit();
      assert.equal(created.succeeded, true, "unlike a Create compare, which sees 0");
    });

    test("so an advance is refused once maxStep was deleted, and writes nothing", async () => {
      await store.ensure();
      assert.equal(await leases.ensureMaxStep(7n), 7n);
      assert.equal(await leases.advanceClock(0n, 1n, 7n), true);
      await raw.delete().key(`${KEY}/maxStep`);
      const before = await stored(KEY);
      assert.equal(await leases.advanceClock(1n, 2n, 7n), false);
      assert.equal(await leases.advanceClock(1n, 2n, 0n), false);
      assert.deepEqual(await stored(KEY), before);
    });

    test("a new token is the revision of its write, the marker stored only there", async () => {
      const made = await leases.writeLease(write({ newToken: true }), undefined);
      assert.ok(made);
      assert.equal(made.token, made.version);
      const kv = await stored(`${KEY}/leases/job`);
      assert.equal(JSON.parse(kv?.value.toString() ?? "").token, TOKEN_IS_REVISION);
      assert.equal(kv?.mod_revision, `${made.token}`);
      assert.equal((await leases.readLease("job")).lease?.token, made.token);

      const kept = await leases.writeLease(write({ token: made.token, expiry: 9n }), made.version);
      assert.ok(kept && kept.version > made.version);
      assert.equal(kept.token, made.token);
      const after = await stored(`${KEY}/leases/job`);
      assert.equal(JSON.parse(after?.value.toString() ?? "").token, `${made.token}`);
      assert.equal((await leases.readLease("job")).lease?.token, made.token);
    });

    test("a retried write that committed loses its compare, and the re-read finds it", async () => {
      await raw.delete().key(`${KEY}/leases/retried`);
      const first = await leases.writeLease(write({ name: "retried", newToken: true }), undefined);
      const retry = await leases.writeLease(write({ name: "retried", newToken: true }), undefined);
      assert.ok(first);
      assert.equal(retry, undefined);
      const read = await leases.readLease("retried");
      assert.equal(read.lease?.holder, "alice");
      assert.equal(read.lease?.token, first.token);
      assert.equal(read.lease?.version, first.version);
    });
  });
}
