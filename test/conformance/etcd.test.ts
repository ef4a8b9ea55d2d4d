import { test } from "node:test";
import { Etcd3 } from "etcd3";
import { openStore } from "../../src/index.js";
import { skipOrFail } from "../helpers/env.js";
import { EtcdCluster, findEtcd } from "../helpers/etcd-server.js";
import { leaseConformance } from "./leases-suite.js";
import { conformance, throughProxy } from "./suite.js";

if (!findEtcd()) {
  test("etcd store conformance", (t) =>
    skipOrFail(t, "no etcd binary at /usr/bin/etcd (apt-get install etcd-server)"));
} else {
  conformance("etcd", async () => {
    const cluster = await EtcdCluster.start(1);
    const key = "/conformance/clock";
    const raw = new Etcd3({ hosts: cluster.endpoints.map((h) => `http://${h}`) });
    return {
      open: () => openStore(cluster.url(`key=${encodeURIComponent(key)}&timeout=5s`)),
      reset: async () => {
        await raw.delete().key(key);
      },
      plantWrongType: async () => {
        await raw.put(key).value("twelve o'clock");
      },
      plantNegative: async () => {
        await raw.put(key).value("-5");
      },
      // The revision too: any write, even of the same value, would change it.
      raw: async () =>
        (await raw.get(key).exec()).kvs.map((kv) => ({
          value: kv.value.toString(),
          modRevision: kv.mod_revision,
        })),
      breakable: async () => {
        const [host = "", port = ""] = (cluster.endpoints[0] ?? "").split(":");
        return throughProxy(
          Number(port),
          (proxied) => `etcd://${host}:${proxied}?key=${encodeURIComponent(key)}&timeout=1s`,
        );
      },
      close: async () => {
        raw.close();
        await cluster.close();
      },
    };
  });

  leaseConformance("etcd", async () => {
    const cluster = await EtcdCluster.start(1);
    const key = "/conformance/leases";
    const raw = new Etcd3({ hosts: cluster.endpoints.map((h) => `http://${h}`) });
    const leaseKey = (name: string) => `${key}/leases/${name}`;
    return {
      open: () => openStore(cluster.url(`key=${encodeURIComponent(key)}&timeout=5s`)),
      reset: async () => {
        await raw.delete().key(key);
        await raw.delete().prefix(`${key}/`);
      },
      deleteClock: async () => {
        await raw.delete().key(key);
      },
      deleteMaxStep: async () => {
        await raw.delete().key(`${key}/maxStep`);
      },
      deleteLease: async (name) => {
        await raw.delete().key(leaseKey(name));
      },
      dropLeases: async () => {
        await raw.delete().prefix(`${key}/leases/`);
      },
      plantCorruptLease: async (name) => {
        const value = { holder: "alice", token: "-1", start: "0", expiry: "5", pins: [] };
        await raw.put(leaseKey(name)).value(JSON.stringify(value));
      },
      rawLease: async (name) =>
        (await raw.get(leaseKey(name)).exec()).kvs.map((kv) => ({
          value: kv.value.toString(),
          modRevision: kv.mod_revision,
        })),
      close: async () => {
        raw.close();
        await cluster.close();
      },
    };
  });
}
