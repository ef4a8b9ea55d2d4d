/**
 * A PostgreSQL restart while an updater worker runs: the worker rebuilds its updater and
 * carries on, time never decreases, no acknowledged advance is lost, nothing is counted
 * twice, and a watch (LISTEN) resubscribes by itself.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import { openStore } from "../../src/index.js";
import { startUpdater } from "../../src/worker.js";
import { skipOrFail } from "../helpers/env.js";
import { checkHistory } from "../helpers/history.js";
import { findPostgresBin, PostgresServer } from "../helpers/postgres-server.js";
import { checkAcks, ms, observeReads, WorkerLog, watchPushes } from "../helpers/store-faults.js";

const now = () => process.hrtime.bigint();

test("postgres: the clock survives server restarts while a worker runs", {
  timeout: 180_000,
}, async (t) => {
  if (!findPostgresBin()) {
    skipOrFail(t, "no PostgreSQL under /usr/lib/postgresql/*/bin (apt-get install postgresql)");
    return;
  }
  const server = await PostgresServer.start();
  const url = server.url("postgres", "table=clock_restart&timeout=1s");
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
    for (const mode of ["fast", "immediate"] as const) {
      await log.advances(log.last.advances + 5, 30_000);
      const down = now();
      await server.stop(mode);
      await new Promise((r) => setTimeout(r, 300)); // the worker meets the outage
      await server.start();
      const up = now();
      const stored = (await observer.read()) ?? 0n;
      await log.advances(log.last.advances + 5, 60_000);
      const last = log.lastAckBefore(down);
      const first = log.firstAckAfter(down);
      assert.ok(last && first);
      t.diagnostic(
        `${mode} restart: server down ${ms(down, up)}; clock stood still ${ms(last.at, first.at)}; ` +
          `first advance ${ms(up, first.at)} after the server was back`,
      );
      // The watch resubscribed by itself: a later time reaches it through LISTEN alone.
      const deadline = Date.now() + 30_000;
      while (!watching.seen.some((w) => w.at > up && w.time > stored)) {
        assert.ok(Date.now() < deadline, `the watch saw nothing after the ${mode} restart`);
        await new Promise((r) => setTimeout(r, 50));
      }
    }
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
  await server.close();

  const status = worker.snapshot();
  const maxStep = worker.settings.maxStep;
  t.diagnostic(
    `${status.advances} advances, ${status.errors} store errors, ${samples.length} reads (${failures} failed); ` +
      `global ${ms(globalStart, globalEnd)} over wall ${ms(wallStart, wallEnd)}`,
  );
  assert.ok(status.errors >= 2, "each restart should have cost the worker its updater");
  assert.deepEqual(checkHistory(samples, maxStep), []);
  assert.deepEqual(checkAcks(log.acks, samples), []);
  // No double counting: over the whole run global time moved no more than wall time did.
  assert.ok(
    globalEnd - globalStart <= wallEnd - wallStart + maxStep,
    `global ${globalEnd - globalStart}ns > wall ${wallEnd - wallStart}ns + maxStep`,
  );
  const seen = (watching as ReturnType<typeof watchPushes>).seen.map((w) => w.time);
  for (let i = 1; i < seen.length; i++) assert.ok((seen[i] as bigint) > (seen[i - 1] as bigint));
});
