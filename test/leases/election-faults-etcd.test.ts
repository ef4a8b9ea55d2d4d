// Multi-process: leader election while the store fails (an etcd leader killed, a
// PostgreSQL restart) and the leader is paused; see election-faults.ts.
import { test } from "node:test";
import { skipOrFail } from "../helpers/env.js";
import { EtcdCluster, findEtcd } from "../helpers/etcd-server.js";
import { electionUnderFaults } from "./election-faults.js";

test("election on etcd: leader members killed, a leader paused", {
  timeout: 240_000,
}, async (t) => {
  if (!findEtcd())
    return skipOrFail(t, "no etcd binary at /usr/bin/etcd (apt-get install etcd-server)");
  const cluster = await EtcdCluster.start(3);
  try {
    await electionUnderFaults(
      cluster.url("key=/election/clock&timeout=500ms"),
      async () => {
        const member = await cluster.leader();
        t.diagnostic(`killing etcd leader m${member}`);
        await cluster.kill(member);
        await new Promise((r) => setTimeout(r, 2000));
        await cluster.start(member);
        await cluster.waitHealthy();
      },
      (line) => t.diagnostic(line),
    );
  } catch (err) {
    t.diagnostic(cluster.logs());
    throw err;
  } finally {
    await cluster.close();
  }
});
