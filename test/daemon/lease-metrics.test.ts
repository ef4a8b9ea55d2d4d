// The lease series of /metrics, read from the store at each scrape.
import assert from "node:assert/strict";
import { test } from "node:test";
import { Registry } from "prom-client";
import { Leases, MemoryStore } from "../../src/index.js";
import { leaseMetrics } from "../../src/service/lease-metrics.js";

const value = (text: string, series: string): number | undefined => {
  const line = text.split("\n").find((l) => l.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.split(" ")[1]);
};

test("held, token, expiry; handovers and lapses counted between scrapes", async () => {
  const store = new MemoryStore();
  const leases = new Leases(store);
  const registry = new Registry();
  let failing = false;
  leaseMetrics(registry, () => (failing ? Promise.reject(new Error("down")) : leases.list("")));

  const first = await leases.claim("job", "alice", "10s");
  let text = await registry.metrics();
  assert.equal(value(text, 'globalclock_lease_held{lease="job"}'), 1);
  assert.equal(value(text, 'globalclock_lease_token{lease="job"}'), 1);
  assert.equal(value(text, 'globalclock_lease_expiry_seconds{lease="job"}'), 10);

  await first.release();
  await leases.claim("job", "bob", "10s");
  text = await registry.metrics();
  assert.equal(value(text, 'globalclock_lease_handovers_total{lease="job"}'), 1);
  assert.equal(value(text, 'globalclock_lease_token{lease="job"}'), 2);

  await store.ensure();
  assert.equal(await store.compareAndSwap(0n, 11_000_000_000n), true); // bob's lease lapses
  text = await registry.metrics();
  assert.equal(value(text, 'globalclock_lease_held{lease="job"}'), 0);
  assert.equal(value(text, 'globalclock_lease_lapsed_total{lease="job"}'), 1);
  text = await registry.metrics();
  assert.equal(value(text, 'globalclock_lease_lapsed_total{lease="job"}'), 1, "counted once");

  failing = true; // a store that does not answer spoils none of the other series
  text = await registry.metrics();
  assert.equal(value(text, 'globalclock_lease_held{lease="job"}'), undefined);
  assert.equal(value(text, 'globalclock_lease_handovers_total{lease="job"}'), 1);
});
