// The lease series of /metrics, read from the store at each scrape: the fleet's always, a
// lease's own only for the leases chosen (by name prefix, or the N nearest their expiry).
import assert from "node:assert/strict";
import { test } from "node:test";
import { Registry } from "prom-client";
import { ConfigError, Leases, MemoryStore } from "../../src/index.js";
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
  leaseMetrics(registry, () => (failing ? Promise.reject(new Error("down")) : leases.list("")), {
    perLease: { prefix: "" },
  });

  const first = await leases.claim("job", "alice", "10s");
  let text = await registry.metrics();
  assert.equal(value(text, 'globalclock_lease_held{lease="job"}'), 1);
  assert.equal(value(text, 'globalclock_lease_token{lease="job"}'), 1);
  assert.equal(value(text, 'globalclock_lease_expiry_seconds{lease="job"}'), 10);

  await first.release();
  await leases.claim("job", "bob", "10s");
  text = await registry.metrics();
  assert.equal(value(text, 'globalclock_lease_handovers_total{lease="job"}'), 1);
  assert.equal(value(text, "globalclock_leases_handovers_total"), 1);
  assert.equal(value(text, 'globalclock_lease_token{lease="job"}'), 2);

  await store.ensure();
  assert.equal(await store.compareAndSwap(0n, 11_000_000_000n), true); // bob's lease lapses
  text = await registry.metrics();
  assert.equal(value(text, 'globalclock_lease_held{lease="job"}'), 0);
  assert.equal(value(text, 'globalclock_lease_lapsed_total{lease="job"}'), 1);
  text = await registry.metrics();
  assert.equal(value(text, 'globalclock_lease_lapsed_total{lease="job"}'), 1, "counted once");
  assert.equal(value(text, "globalclock_leases_lapsed_total"), 1);

  failing = true; // a store that does not answer spoils none of the other series
  text = await registry.metrics();
  assert.equal(value(text, 'globalclock_lease_held{lease="job"}'), undefined);
  assert.equal(value(text, 'globalclock_lease_handovers_total{lease="job"}'), 1);
});

/** A store with global time at 1 s and the leases `ttl` names held by "h", each for its own TTL. */
async function fleet(ttl: Record<string, string>) {
  const store = new MemoryStore();
  const leases = new Leases(store);
  await store.ensure();
  assert.equal(await store.compareAndSwap(0n, 1_000_000_000n), true);
  const held = new Map<string, Awaited<ReturnType<Leases["claim"]>>>();
  for (const [name, d] of Object.entries(ttl)) held.set(name, await leases.claim(name, "h", d));
  return { store, leases, held };
}

const perLeaseNames = (text: string): string[] =>
  [...text.matchAll(/^globalclock_lease_held\{lease="([^"]+)"\} /gm)].map((m) => m[1] ?? "").sort();

test("by default only the fleet's series: held, expiring soon, handovers, lapses", async () => {
  const { store, leases, held } = await fleet({ a: "5s", b: "8s", c: "60s", d: "60s" });
  const registry = new Registry();
  leaseMetrics(registry, () => leases.list(""));
  let text = await registry.metrics();
  assert.deepEqual(perLeaseNames(text), [], "no series of a lease's own");
  assert.equal(text.includes('lease="'), false);
  assert.equal(value(text, "globalclock_leases_held"), 4);
  assert.equal(value(text, "globalclock_leases_expiring_soon"), 2, "a and b end within 10 s");

  await held.get("c")?.release();
  await leases.claim("c", "other", "60s"); // a handover
  assert.equal(await store.compareAndSwap(1_000_000_000n, 7_000_000_000n), true); // a lapses
  text = await registry.metrics();
  assert.equal(value(text, "globalclock_leases_held"), 3);
  assert.equal(value(text, "globalclock_leases_expiring_soon"), 1, "b, 2 s from its expiry");
  assert.equal(value(text, "globalclock_leases_handovers_total"), 1);
  assert.equal(value(text, "globalclock_leases_lapsed_total"), 1);
});

test("a pinned lease is held but never expiring soon; `soon` sets the window", async () => {
  const { leases } = await fleet({ a: "5s", b: "30s" });
  await leases.pin("a", "ops");
  const registry = new Registry();
  leaseMetrics(registry, () => leases.list(""), { soon: 40_000_000_000n });
  const text = await registry.metrics();
  assert.equal(value(text, "globalclock_leases_held"), 2);
  assert.equal(value(text, "globalclock_leases_expiring_soon"), 1, "b only: a is pinned");
});

test("per-lease series by name prefix, and for the N held leases nearest their expiry", async () => {
  const { leases, held } = await fleet({
    "shard/1": "60s",
    "shard/2": "50s",
    "job/x": "20s",
    "job/y": "10s",
    "job/z": "30s",
  });
  const scrape = async (perLease: object) => {
    const registry = new Registry();
    leaseMetrics(registry, () => leases.list(""), { perLease });
    return perLeaseNames(await registry.metrics());
  };
  assert.deepEqual(await scrape({ prefix: "shard/" }), ["shard/1", "shard/2"]);
  assert.deepEqual(await scrape({ soonest: 2 }), ["job/x", "job/y"]);
  assert.deepEqual(await scrape({ prefix: "shard/1", soonest: 1 }), ["job/y", "shard/1"]);
  await held.get("job/y")?.release();
  assert.deepEqual(
    await scrape({ soonest: 2 }),
    ["job/x", "job/z"],
    "a released lease is not held",
  );
  assert.deepEqual(await scrape({ soonest: 0 }), []);
});

test("a choice that makes no sense is a ConfigError naming it", () => {
  const registry = () => new Registry();
  const list = async () => [];
  for (const soonest of [-1, 1.5, Number.NaN]) {
    assert.throws(
      () => leaseMetrics(registry(), list, { perLease: { soonest } }),
      (e) => e instanceof ConfigError && e.field === "soonest",
    );
  }
  assert.throws(
    () => leaseMetrics(registry(), list, { soon: -1n }),
    (e) => e instanceof ConfigError && e.field === "soon",
  );
});
