// The one keeper lock and campaigns share (src/leases/hold.ts), on a fake monotonic clock:
// the schedule it validates, the renewals it makes, and where it stops.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { ConfigError, LeaseLostError, Leases, MemoryStore, StoreError } from "../../src/index.js";
import { holdSchedule, keep, usableTime } from "../../src/leases/hold.js";
import { FakeClock, settle } from "../helpers/fake-clock.js";

const S = 1_000_000_000n;
const MS = 1_000_000n;
let n = 0;

describe("holdSchedule: the whole schedule, checked against maxStep", () => {
  const M = 1_500n * MS;
  test("defaults: a third of what a claim can count on, at most a third of the duration", () => {
    const s = holdSchedule({ duration: "15s" }, M);
    assert.equal(s.usable, usableTime(15n * S, M));
    assert.equal(s.renewEvery, s.usable / 3n);
    assert.equal(s.grace, 0n);
    assert.equal(s.retryDelay, 100n * MS);
    // With grace, renewals come early enough for a second try before the stop.
    const g = holdSchedule({ duration: "10s" }, M, (usable) => usable / 4n);
    assert.ok(2n * g.renewEvery <= g.usable - g.grace);
  });

  test("refused, naming the caller's fields: too short, a grace that eats the lease, renewals too rare", () => {
    const names = {
      duration: "--ttl",
      renewEvery: "--renew-every",
      retryDelay: "--retry",
      grace: "--grace",
    };
    const refused = (f: string, re: RegExp) => (e: unknown) => {
      assert.ok(e instanceof ConfigError && e.field === f, String(e));
      assert.match(e.message, re);
      return true;
    };
    assert.throws(
      () => holdSchedule({ duration: "4s" }, M, undefined, names),
      refused("--ttl", /--ttl 4s is too short/),
    );
    assert.throws(
      () => holdSchedule({ duration: "4.5s", grace: "3s" }, M, undefined, names),
      refused("--grace", /--grace 3s is not shorter than/),
    );
    assert.throws(
      () => holdSchedule({ duration: "10s", renewEvery: "5s" }, M, undefined, names),
      refused("--renew-every", /leaves no time to renew twice.*--renew-every 4\.24\d*s or less/),
    );
    // A campaign's 19 flaps a minute: a renewal due after the deadline.
    assert.throws(
      () => holdSchedule({ duration: "4.5s", renewEvery: "4s" }, M),
      refused("renewEvery", /renew twice/),
    );
  });
});

function holder(name = `hold-${process.pid}-${n++}`) {
  const clock = new FakeClock();
  const store = new MemoryStore(name);
  const leases = new Leases(store, { clock, maxStep: "1s" });
  return { clock, store, leases };
}

describe("keep: renewals on a fake clock", () => {
  test("renews every renewEvery; each renewal moves the deadline; stops when told", async () => {
    const { clock, store, leases } = holder();
    const lease = await leases.claim("job", "a", "9s");
    const schedule = holdSchedule({ duration: "9s" }, lease.maxStep);
    const renewed: bigint[] = [];
    const stop = new AbortController();
    const kept = keep(lease, schedule, {
      clock,
      signal: stop.signal,
      onRenewed: (l) => renewed.push(l.deadline),
    });
    await clock.run(Number((3n * schedule.renewEvery) / MS) + 5, 5);
    assert.equal(renewed.length, 3, "three renewals");
    assert.ok(renewed[0] !== undefined && renewed[1] !== undefined && renewed[1] > renewed[0]);
    assert.ok(lease.held);
    stop.abort();
    assert.equal(await kept, undefined, "stopped, not lost");
    await store.close();
  });

  test("failed renewals are tried again, and the keeper ends at the deadline with the lease lost", async () => {
    const { clock, store, leases } = holder();
    const lease = await leases.claim("job", "a", "9s");
    const schedule = holdSchedule({ duration: "9s" }, lease.maxStep);
    let attempts = 0;
    const seam = store.leases;
    seam.writeLease = async () => {
      attempts++;
      throw new StoreError("memory", "writeLease", "injected: no answer");
    };
    const kept = keep(lease, schedule, { clock });
    await clock.run(Number((lease.deadline + 20n * MS) / MS), 5);
    const lost = await kept;
    assert.ok(lost instanceof LeaseLostError, String(lost));
    assert.match(lost.message, /deadline passed/);
    assert.ok(attempts >= 5, `${attempts} attempts before the deadline`);
    assert.ok(!lease.held && lease.signal.aborted);
    await store.close();
  });

  test("a renewal that hangs in the store is ended by the deadline, not waited for", async () => {
    const { clock, store, leases } = holder();
    const lease = await leases.claim("job", "a", "9s");
    const schedule = holdSchedule({ duration: "9s" }, lease.maxStep);
    const seam = store.leases;
    const hung: Array<AbortSignal | undefined> = [];
    seam.readLease = (_name, signal) => {
      hung.push(signal);
      return new Promise((_resolve, reject) =>
        signal?.addEventListener("abort", () => reject(signal.reason)),
      );
    };
    let ended: bigint | undefined;
    const kept = keep(lease, schedule, { clock }).then((lost) => {
      ended = clock.now();
      return lost;
    });
    await clock.run(Number((lease.deadline + 20n * MS) / MS), 5);
    assert.ok((await kept) instanceof LeaseLostError);
    assert.equal(hung.length, 1, "one renewal, stuck");
    assert.ok(
      ended !== undefined && ended >= lease.deadline && ended < lease.deadline + 10n * MS,
      "at the deadline",
    );
    await store.close();
  });

  test("an extend that another took the lease from ends the keeper at once, with why", async () => {
    const { clock, store, leases } = holder();
    const lease = await leases.claim("job", "a", "9s");
    const schedule = holdSchedule({ duration: "9s" }, lease.maxStep);
    const kept = keep(lease, schedule, { clock });
    await leases.revoke("job", "a", lease.token); // as an operator would
    await clock.run(Number(schedule.renewEvery / MS) + 5, 5);
    const lost = await kept;
    assert.ok(lost instanceof LeaseLostError);
    assert.match(lost.message, /released/);
    await settle();
    await store.close();
  });
});
