/**
 * The lease conformance suite: what every store's lease records must do, checked through
 * Leases and through the seam itself (src/lease-store.ts). Each store's conformance file
 * calls `leaseConformance(name, harness)`.
 */
import assert from "node:assert/strict";
import { after, before, beforeEach, describe, test } from "node:test";
import {
  ClockRecordMissingError,
  ConfigError,
  CorruptRecordError,
  LeaseHeldError,
  LeaseLostError,
  Leases,
} from "../../src/index.js";
import type { LeaseStore } from "../../src/lease-store.js";
import type { ClockStore } from "../../src/store.js";

export interface LeaseHarness {
  /** A new, separate connection to the store under test. */
  open(): Promise<ClockStore>;
  /** Removes the clock record, the stored maxStep and every lease, through the raw driver. */
  reset(): Promise<void>;
  /** Writes a lease record `name` that does not decode (e.g. a negative token). */
  plantCorruptLease(name: string): Promise<void>;
  /** Removes only the clock record (a DELETE of the clock row), leaving the leases. */
  deleteClock(): Promise<void>;
  /** Lease `name` as the raw driver sees it, for checking that nothing was overwritten. */
  rawLease(name: string): Promise<unknown>;
  close(): Promise<void>;
}

const S = 1_000_000_000n;

export function leaseConformance(name: string, start: () => Promise<LeaseHarness>): void {
  describe(`${name} lease conformance`, () => {
    let h: LeaseHarness;
    let a: ClockStore;
    let b: ClockStore;
    let la: Leases;
    let lb: Leases;

    before(async () => {
      h = await start();
      a = await h.open();
      b = await h.open();
      la = new Leases(a);
      lb = new Leases(b);
    });
    after(async () => {
      await a?.close();
      await b?.close();
      await h?.close();
    });
    beforeEach(async () => {
      await h.reset();
    });

    const seam = (store: ClockStore): LeaseStore => {
      assert.ok(store.leases, `${name} keeps no leases`);
      return store.leases;
    };
    /** Sets the stored global time, as a worker would, by compare-and-swap. */
    const setClock = async (time: bigint) => {
      const now = await a.ensure();
      assert.ok(time >= now, "tests only move the clock forward");
      assert.equal(await a.compareAndSwap(now, time), true);
    };

    test("a claim on a new store makes the clock, stores the default maxStep, and grants token 1", async () => {
      const lease = await la.claim("job", "alice", "10s");
      assert.equal(lease.token, 1n);
      assert.equal(lease.start, 0n);
      assert.equal(lease.expiry, 10n * S);
      assert.equal(lease.maxStep, 1_500_000_000n);
      assert.equal(await b.read(), 0n, "the clock record was made at the epoch");
      assert.equal(await lb.maxStep(), 1_500_000_000n);
      const info = await lb.get("job");
      assert.equal(info?.holder, "alice");
      assert.equal(info?.free, false);
    });

    test("racing claimers on separate connections: exactly one wins each round", async () => {
      await setClock(100n * S);
      for (let round = 0; round < 25; round++) {
        const lease = `race-${round}`;
        const results = await Promise.allSettled([
          la.claim(lease, "alice", "10s"),
          lb.claim(lease, "bob", "10s"),
        ]);
        const won = results.filter((r) => r.status === "fulfilled");
        assert.equal(won.length, 1, `round ${round}: ${results.map((r) => r.status)}`);
        const lost = results.find((r) => r.status === "rejected") as PromiseRejectedResult;
        assert.ok(lost.reason instanceof LeaseHeldError, String(lost.reason));
        const winner = (won[0] as PromiseFulfilledResult<{ holder: string }>).value.holder;
        assert.equal((await la.get(lease))?.holder, winner);
      }
    });

    test("tokens grow by one at every change of holder, and never otherwise", async () => {
      const first = await la.claim("t", "alice", "10s");
      assert.equal(first.token, 1n);
      assert.equal((await la.claim("t", "alice", "10s")).token, 1n, "the same holder again");
      await assert.rejects(lb.claim("t", "bob", "10s"), LeaseHeldError);
      await first.release();
      assert.equal((await lb.claim("t", "bob", "10s")).token, 2n, "after a release");
      await setClock(10n * S); // bob's lease ran out
      assert.equal((await la.claim("t", "alice", "10s")).token, 3n, "after an expiry");
      await la.revoke("t", "alice", 3n);
      assert.equal((await la.claim("t", "alice", "10s")).token, 4n, "a new tenure, same holder");
    });

    test("a release keeps the record and its token", async () => {
      const lease = await la.claim("kept", "alice", "10s");
      await lease.release();
      const info = await lb.get("kept");
      assert.equal(info?.holder, "");
      assert.equal(info?.token, 1n);
      assert.equal(info?.free, true);
      await la.revoke("kept", "alice", 1n); // once more: nothing to do
      await assert.rejects(la.extend("kept", "alice", 1n, "10s"), LeaseLostError);
    });

    test("expiry is judged against the stored global time, never a wall clock", async () => {
      await setClock(100n * S);
      const lease = await la.claim("e", "alice", "10s");
      assert.equal(lease.expiry, 110n * S);
      await setClock(110n * S - 1n);
      const held = await lb.claim("e", "bob", "10s").catch((err: unknown) => err);
      assert.ok(held instanceof LeaseHeldError, String(held));
      assert.equal(held.lease.holder, "alice");
      assert.equal(held.lease.token, 1n);
      assert.equal(held.lease.expiry, 110n * S);
      assert.equal(held.time, 110n * S - 1n);
      await setClock(110n * S);
      const taken = await lb.claim("e", "bob", "10s");
      assert.equal(taken.token, 2n);
      assert.equal(taken.start, 110n * S);
      await assert.rejects(la.extend("e", "alice", 1n, "10s"), LeaseLostError);
      await assert.rejects(la.revoke("e", "alice", 1n), LeaseLostError);
    });

    test("extending never shortens, and keeps the token", async () => {
      await setClock(50n * S);
      const lease = await la.claim("x", "alice", "30s");
      await lease.extend("10s");
      assert.equal(lease.expiry, 80n * S, "not shortened");
      await setClock(75n * S);
      await lease.extend("10s");
      assert.equal(lease.expiry, 85n * S);
      assert.equal(lease.token, 1n);
      const again = await la.extend("x", "alice", 1n, "20s");
      assert.equal(again.expiry, 95n * S);
      await assert.rejects(la.extend("x", "mallory", 1n, "20s"), LeaseLostError);
      await assert.rejects(la.extend("x", "alice", 2n, "20s"), LeaseLostError);
    });

    test("a pinned lease does not expire until every pin is gone", async () => {
      await la.claim("p", "alice", "10s");
      await lb.pin("p", "machine-1");
      await lb.pin("p", "machine-2");
      await lb.pin("p", "machine-2"); // pinning twice is one pin
      await setClock(1000n * S);
      const held = await lb.claim("p", "bob", "10s").catch((err: unknown) => err);
      assert.ok(held instanceof LeaseHeldError && held.lease.pinned, String(held));
      assert.deepEqual((await la.get("p"))?.pins, ["machine-1", "machine-2"]);
      await la.unpin("p", "machine-1");
      await assert.rejects(lb.claim("p", "bob", "10s"), LeaseHeldError);
      await la.unpin("p", "machine-2");
      await la.unpin("p", "machine-2"); // no such pin: nothing to do
      assert.equal((await lb.claim("p", "bob", "10s")).token, 2n);
    });

    test("list by prefix, in name order", async () => {
      for (const n of ["svc/b", "svc/a", "svd/a", "svc/a/x", "s"])
        await la.claim(n, "alice", "10s");
      assert.deepEqual(
        (await lb.list("svc/")).map((l) => l.name),
        ["svc/a", "svc/a/x", "svc/b"],
      );
      assert.deepEqual((await lb.list()).length, 5);
      assert.deepEqual(await lb.list("nothing/"), []);
    });

    test("names, holders and pins with odd characters round-trip", async () => {
      const odd = "dépôt/ключ 1:%_*?[]'\"";
      const lease = await la.claim(odd, 'hölder "two" ☃', "10s");
      await la.pin(odd, "pin/é");
      const info = await lb.get(odd);
      assert.equal(info?.name, odd);
      assert.equal(info?.holder, 'hölder "two" ☃');
      assert.deepEqual(info?.pins, ["pin/é"]);
      assert.equal(lease.token, 1n);
      assert.deepEqual(
        (await lb.list("dépôt/")).map((l) => l.name),
        [odd],
      );
    });

    test("bad input is a ConfigError naming the field", async () => {
      await assert.rejects(
        la.claim("", "alice", "10s"),
        (e) => e instanceof ConfigError && e.field === "name",
      );
      await assert.rejects(la.claim("a\nb", "alice", "10s"), ConfigError);
      await assert.rejects(
        la.claim("n", "", "10s"),
        (e) => e instanceof ConfigError && e.field === "holder",
      );
      await assert.rejects(la.claim("n", "alice", "-1s"), ConfigError);
      await assert.rejects(la.claim("n", "alice", "4s"), (e: unknown) => {
        assert.ok(e instanceof ConfigError && e.field === "duration");
        assert.match(e.message, /at least 3 × maxStep \(4\.5s\)/);
        return true;
      });
      assert.equal(await la.get("n"), undefined, "nothing was written");
    });

    test("the seam: writes are compare-and-swap on the version", async () => {
      const s = seam(a);
      const fields = { name: "v", holder: "h", token: 1n, start: 0n, expiry: 5n, pins: [] };
      const v1 = await s.writeLease(fields, undefined);
      assert.ok(v1 !== undefined);
      assert.equal(await seam(b).writeLease(fields, undefined), undefined, "it exists");
      const v2 = await seam(b).writeLease({ ...fields, expiry: 6n }, v1);
      assert.ok(v2 !== undefined && v2 !== v1);
      assert.equal(await s.writeLease({ ...fields, expiry: 7n }, v1), undefined, "stale version");
      const read = await s.readLease("v");
      assert.equal(read.lease?.expiry, 6n);
      assert.equal(read.lease?.version, v2);
      assert.equal(read.time, undefined, "no clock record yet");
      assert.equal(read.maxStep, undefined, "no maxStep stored yet");
    });

    test("the seam: of concurrent writes from one version, exactly one wins", async () => {
      const fields = { name: "w", holder: "h", token: 1n, start: 0n, expiry: 5n, pins: [] };
      let version = await seam(a).writeLease(fields, undefined);
      for (let round = 0; round < 30; round++) {
        const [x, y] = await Promise.all([
          seam(a).writeLease({ ...fields, holder: "a" }, version),
          seam(b).writeLease({ ...fields, holder: "b" }, version),
        ]);
        assert.equal(Number(x !== undefined) + Number(y !== undefined), 1, `round ${round}`);
        version = x ?? y;
      }
    });

    test("the seam: maxStep is stored once, then changed only by compare-and-swap", async () => {
      assert.equal(await seam(a).ensureMaxStep(2n * S), 2n * S);
      assert.equal(await seam(b).ensureMaxStep(3n * S), 2n * S, "never overwritten");
      assert.equal(await seam(b).swapMaxStep(3n * S, 4n * S), false);
      assert.equal(await seam(b).swapMaxStep(2n * S, 4n * S), true);
      assert.equal((await seam(a).readLease("none")).maxStep, 4n * S);
      assert.equal(await a.read(), undefined, "maxStep is not the clock");
    });

    test("a corrupt lease record is a CorruptRecordError and is left untouched", async () => {
      await h.plantCorruptLease("bad");
      const before = await h.rawLease("bad");
      await assert.rejects(la.get("bad"), CorruptRecordError);
      await assert.rejects(la.claim("bad", "alice", "10s"), CorruptRecordError);
      await assert.rejects(la.revoke("bad", "alice", 1n), CorruptRecordError);
      await assert.rejects(la.list(""), CorruptRecordError);
      assert.deepEqual(await h.rawLease("bad"), before);
    });

    test("a lease taken after the epoch is never judged against a deleted clock", async () => {
      await setClock(100n * S);
      await la.claim("d", "alice", "10s");
      await h.deleteClock();
      await assert.rejects(lb.claim("d", "bob", "10s"), ClockRecordMissingError);
      await assert.rejects(la.claim("d", "alice", "10s"), ClockRecordMissingError);
      assert.equal(await a.read(), undefined, "the clock was not made again at the epoch");
      await h.reset();
      assert.equal(
        (await lb.claim("d", "bob", "10s")).token,
        1n,
        "a store emptied on purpose starts anew",
      );
    });

    test("waitUntilExpired returns once the holder releases the lease, and once it expires", {
      timeout: 30_000,
    }, async () => {
      await setClock(10n * S);
      const lease = await la.claim("wait", "alice", "10s");
      const released = lb.waitUntilExpired("wait");
      await new Promise((r) => setTimeout(r, 100));
      await lease.release();
      assert.equal((await released)?.holder, "");
      await la.claim("wait", "alice", "10s");
      const expired = lb.waitUntilExpired("wait");
      await new Promise((r) => setTimeout(r, 100));
      await setClock(20n * S);
      const info = await expired;
      assert.equal(info?.holder, "alice");
      assert.equal(info?.free, true);
    });
  });
}
