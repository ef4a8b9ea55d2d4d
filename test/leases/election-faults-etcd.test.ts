// Multi-process: leader election on a three-member etcd cluster while its leader members
// are killed and leaders are killed, stopped, cut off, left hanging and frozen; see
// election-faults.ts for what is checked.
import assert from "node:assert/strict";
import { test } from "node:test";
import { skipOrFail } from "../helpers/env.js";
import { EtcdCluster, findEtcd } from "../helpers/etcd-server.js";
import { checkElection, electionUnderFaults } from "./election-faults.js";

test("election on etcd: leader members killed; leaders killed, stopped, cut off, hung and frozen", {
  timeout: 240_000,
}, async (t) => {
  if (!findEtcd())
    return skipOrFail(t, "no etcd binary at /usr/bin/etcd (apt-get install etcd-server)");
  const cluster = await EtcdCluster.start(3);
  try {
    const record = await electionUnderFaults({
      url: cluster.url("key=/election/clock&timeout=500ms"),
      faults: ["store", "store", "kill", "kill", "term", "hang", "hang", "cut", "freeze", "freeze"],
      storeFault: async () => {
        const member = await cluster.leader();
        t.diagnostic(`killing etcd leader m${member}`);
        await cluster.kill(member);
        await new Promise((r) => setTimeout(r, 2000));
        await cluster.start(member);
        await cluster.waitHealthy();
      },
      log: (line) => t.diagnostic(line),
    });
    assert.deepEqual(checkElection(record).slice(0, 8), []);
  } catch (err) {
    t.diagnostic(cluster.logs());
    throw err;
  } finally {
    await cluster.close();
  }
});
