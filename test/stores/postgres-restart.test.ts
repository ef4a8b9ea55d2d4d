/**
 * A PostgreSQL restart while an updater worker runs: the worker rebuilds its updater and
 * carries on, time never decreases, no acknowledged advance is lost, nothing is counted
 * twice, and a watch (LISTEN) resubscribes by itself.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import { skipOrFail } from "../helpers/env.js";
import { findPostgresBin, PostgresServer } from "../helpers/postgres-server.js";
import { ms, underFaults } from "../helpers/store-faults.js";

const now = () => process.hrtime.bigint();

test("postgres: the clock survives server restarts while a worker runs", {
  timeout: 180_000,
}, async (t) => {
  if (!findPostgresBin()) {
    skipOrFail(t, "no PostgreSQL under /usr/lib/postgresql/*/bin (apt-get install postgresql)");
    return;
  }
  const server = await PostgresServer.start();
  try {
    const url = server.url("postgres", "table=clock_restart&timeout=1s");
    const status = await underFaults(t, url, async (run) => {
      for (const mode of ["fast", "immediate"] as const) {
        await run.advance(5);
        const down = now();
        await server.stop(mode);
        await new Promise((r) => setTimeout(r, 300)); // the worker meets the outage
        await server.start();
        t.diagnostic(`${mode} restart: server down ${ms(down, now())}`);
        await run.recovered(`${mode} restart`, down, (await run.observer.read()) ?? 0n);
      }
    });
    assert.ok(status.errors >= 2, "each restart should have cost the worker its updater");
  } finally {
    await server.close();
  }
});
