/**
 * A three-member etcd cluster whose leader is SIGKILLed while an updater worker runs,
 * twice (the first victim is restarted in between): the clock resumes, never decreases,
 * every acknowledged advance is still read afterwards, and a watch follows the new leader.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import { openStore } from "../../src/index.js";
import { startUpdater } from "../../src/worker.js";
import { skipOrFail } from "../helpers/env.js";
import { EtcdCluster, findEtcd } from "../helpers/etcd-server.js";
import { checkHistory } from "../helpers/history.js";
import { checkAcks, ms, observeReads, WorkerLog, watchPushes } from "../helpers/store-faults.js";

const now = () => process.hrtime.bigint();

test("etcd: the clock survives leader kills in a three-member cluster", {
  timeout: 180_000,
}, async (t) => {
  if (!findEtcd()) {
    skipOrFail(t, "no etcd binary at /usr/bin/etcd (apt-get install etcd-server)");
    return;
  }
  const cluster = await EtcdCluster.start(3);
  const url = cluster.url("key=/fault/clock&timeout=500ms");
  const [store, observer, watcher] = [
    await openStore(url),
    await openStore(url),
    await openStore(url),
  ];
  const stop = new AbortController();
  const worker = startUpdater(store, {
    interval: "100ms",
    takeoverAfter: "200ms",
    retryDelay: "100ms",
    maxRetryDelay: "400ms",
  });
  const log = new WorkerLog(worker, stop.signal);
  let observing: ReturnType<typeof observeReads> | undefined;
  let watching: ReturnType<typeof watchPushes> | undefined;
  let wallStart = 0n;
  let globalStart = 0n;
  try {
    await log.advances(3, 30_000);
    observing = observeReads(observer, stop.signal);
    watching = watchPushes(watcher, stop.signal);
    wallStart = now();
    globalStart = (await observer.read()) ?? 0n;
    for (const round of [1, 2]) {
      await log.advances(log.last.advances + 5, 30_000);
      const leader = await cluster.leader();
      const killed = now();
      await cluster.kill(leader);
      const stored = log.last.time ?? 0n;
      await log.advances(log.last.advances + 5, 60_000);
      const last = log.lastAckBefore(killed);
      const first = log.firstAckAfter(killed);
      assert.ok(last && first);
      t.diagnostic(
        `round ${round}: leader m${leader} killed; clock stood still ${ms(last.at, first.at)}, ` +
          `first advance ${ms(killed, first.at)} after the kill`,
      );
      const deadline = Date.now() + 30_000;
      while (!watching.seen.some((w) => w.at > killed && w.time > stored)) {
        assert.ok(Date.now() < deadline, `the watch saw nothing after leader kill ${round}`);
        await new Promise((r) => setTimeout(r, 50));
      }
      if (round === 1) {
        await cluster.start(leader);
        await cluster.waitHealthy();
      }
    }
  } catch (err) {
    t.diagnostic(cluster.logs());
    throw err;
  } finally {
    await worker.stop();
    stop.abort();
  }
  const wallEnd = now();
  const globalEnd = (await observer.read()) ?? 0n;
  const { samples, failures } = await (observing as ReturnType<typeof observeReads>);
  await watching?.done.catch(() => {});
  await log.finished();
  await Promise.all([store.close(), observer.close(), watcher.close()]);
  await cluster.close();

  const status = worker.snapshot();
  const maxStep = worker.settings.maxStep;
  t.diagnostic(
    `${status.advances} advances, ${status.conflicts} conflicts, ${status.errors} store errors, ` +
      `${samples.length} reads (${failures} failed); global ${ms(globalStart, globalEnd)} over wall ${ms(wallStart, wallEnd)}`,
  );
  assert.deepEqual(checkHistory(samples, maxStep), []);
  assert.deepEqual(checkAcks(log.acks, samples), []);
  assert.ok(
    globalEnd - globalStart <= wallEnd - wallStart + maxStep,
    `global ${globalEnd - globalStart}ns > wall ${wallEnd - wallStart}ns + maxStep`,
  );
  const seen = (watching as ReturnType<typeof watchPushes>).seen.map((w) => w.time);
  for (let i = 1; i < seen.length; i++) assert.ok((seen[i] as bigint) > (seen[i - 1] as bigint));
});
