/**
 * A three-member etcd cluster whose leader is SIGKILLed while an updater worker runs,
 * twice (the first victim is restarted in between): the clock resumes, never decreases,
 * every acknowledged advance is still read afterwards, and a watch follows the new leader.
 */
import { test } from "node:test";
import { skipOrFail } from "../helpers/env.js";
import { EtcdCluster, findEtcd } from "../helpers/etcd-server.js";
import { underFaults } from "../helpers/store-faults.js";

const now = () => process.hrtime.bigint();

test("etcd: the clock survives leader kills in a three-member cluster", {
  timeout: 180_000,
}, async (t) => {
  if (!findEtcd()) {
    skipOrFail(t, "no etcd binary at /usr/bin/etcd (apt-get install etcd-server)");
    return;
  }
  const cluster = await EtcdCluster.start(3);
  try {
    await underFaults(t, cluster.url("key=/fault/clock&timeout=500ms"), async (run) => {
      for (const round of [1, 2]) {
        await run.advance(5);
        const leader = await cluster.leader();
        const killed = now();
        await cluster.kill(leader);
        const stored = run.log.last.time ?? 0n;
        await run.recovered(`round ${round}: leader m${leader} killed`, killed, stored);
        if (round === 1) {
          await cluster.start(leader);
          await cluster.waitHealthy();
        }
      }
    });
  } catch (err) {
    t.diagnostic(cluster.logs());
    throw err;
  } finally {
    await cluster.close();
  }
});
