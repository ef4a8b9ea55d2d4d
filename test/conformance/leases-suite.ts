/**
 * The lease conformance suite: what every store's lease records must do, checked through
 * Leases and through the seam itself (src/lease-store.ts). Each store's conformance file
 * calls `leaseConformance(name, harness)`.
 */
import assert from "node:assert/strict";
import { after, before, beforeEach, describe, test } from "node:test";
import {
  ClockRecordMissingError,
  ClosedError,
  ConfigError,
  CorruptRecordError,
  InvalidDurationError,
  LeaseHeldError,
  LeaseLostError,
  Leases,
  MaxStepChangedError,
  Updater,
} from "../../src/index.js";
import type { LeaseStore, LeaseWrite } from "../../src/lease-store.js";
import type { ClockStore } from "../../src/store.js";
import { VirtualClock } from "../../src/testing/index.js";
import { eventually } from "../helpers/daemon.js";
import { skipOrFail } from "../helpers/env.js";

export interface LeaseHarness {
  /** A new, separate connection to the store under test. */
  open(): Promise<ClockStore>;
  /** Removes the clock record, the stored maxStep and every lease, through the raw driver. */
  reset(): Promise<void>;
  /** Writes a lease record `name` that does not decode (e.g. a negative token). */
  plantCorruptLease(name: string): Promise<void>;
  /** Removes only the clock record (a DELETE of the clock row), leaving the leases. */
  deleteClock(): Promise<void>;
  /** Removes only the stored maxStep, as an operator's DELETE of its row would. */
  deleteMaxStep(): Promise<void>;
  /** Removes one lease's record, as an operator's DELETE of its row would. */
  deleteLease(name: string): Promise<void>;
  /** Removes every lease record at once (drops the lease table, where the store has one). */
  dropLeases(): Promise<void>;
  /** Lease `name` as the raw driver sees it, for checking that nothing was overwritten. */
  rawLease(name: string): Promise<unknown>;
  close(): Promise<void>;
}

const S = 1_000_000_000n;

/** A lease write as the seam takes it, with the fields a test does not care about filled in. */
const writeOf = (fields: Partial<LeaseWrite> & { name: string }): LeaseWrite => ({
  holder: "h",
  token: 0n,
  newToken: false,
  start: 0n,
  expiry: 5n,
  pins: [],
  ...fields,
});

/**
 * A signal that aborts after `ms` with a reason naming what never happened: a liveness
 * bound far above what the wait needs, never a timing check.
 */
function patience(ms: number, what: string): { signal: AbortSignal; done: () => void } {
  const ac = new AbortController();
  const timer = setTimeout(() => ac.abort(new Error(`gave up after ${ms} ms: ${what}`)), ms);
  return { signal: ac.signal, done: () => clearTimeout(timer) };
}

/** How a watch ended: it returned, or failed with `err`. */
type Ending = "returned" | { err: unknown };

/** A running watchLeases: its notices counted; `ended` says how it ended (never rejects). */
interface Watching {
  readonly state: { notices: number; ending: Ending | undefined };
  readonly ended: Promise<Ending>;
  stop(): void;
}

function watching(leases: LeaseStore, prefix: string, signal?: AbortSignal): Watching {
  assert.ok(leases.watchLeases, "no watchLeases");
  const ac = new AbortController();
  const changes = leases.watchLeases(prefix, signal ?? ac.signal);
  const state: Watching["state"] = { notices: 0, ending: undefined };
  const ended = (async () => {
    for await (const _ of changes) state.notices++;
  })().then(
    (): Ending => "returned",
    (err: unknown): Ending => ({ err }),
  );
  void ended.then((ending) => {
    state.ending = ending;
  });
  return { state, ended, stop: () => ac.abort() };
}

/** Fails if `w` ended before it was asked to (with the error it failed with, if any). */
function running(w: Watching): void {
  const { ending } = w.state;
  if (ending === "returned") assert.fail("the watch returned on its own");
  if (ending) throw ending.err;
}

/** A lost advance: out of sync, or refused for a changed maxStep (a subclass). */
function OutOfSyncOrChanged(e: unknown): boolean {
  assert.ok(e instanceof Error && /OutOfSync|MaxStepChanged/.test(e.name), String(e));
  return true;
}

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

    test("a claim on a new store makes the clock, stores the default maxStep, and grants a token", async () => {
      const lease = await la.claim("job", "alice", "10s");
      assert.ok(lease.token > 0n);
      assert.equal(lease.start, 0n);
      assert.equal(lease.expiry, 10n * S);
      assert.equal(lease.maxStep, 1_500_000_000n);
      assert.equal(await b.read(), 0n, "the clock record was made at the epoch");
      assert.equal(await lb.maxStep(), 1_500_000_000n);
      const info = await lb.get("job");
      assert.equal(info?.holder, "alice");
      assert.equal(info?.token, lease.token);
      assert.equal(info?.free, false);
    });

    test("racing claimers on separate connections: exactly one wins each round, new records and old", async () => {
      await setClock(100n * S);
      let last = 0n;
      for (let round = 0; round < 30; round++) {
        // Even rounds race for a record nobody has written (the insert path); odd rounds for
        // one that exists and is free (the update path: released by the last round's winner).
        const lease = `race-${Math.floor(round / 2)}`;
        const results = await Promise.allSettled([
          la.claim(lease, "alice", "10s"),
          lb.claim(lease, "bob", "10s"),
        ]);
        const won = results.filter((r) => r.status === "fulfilled");
        assert.equal(won.length, 1, `round ${round}: ${results.map((r) => r.status)}`);
        const lost = results.find((r) => r.status === "rejected") as PromiseRejectedResult;
        assert.ok(lost.reason instanceof LeaseHeldError, String(lost.reason));
        const winner = (won[0] as PromiseFulfilledResult<Awaited<ReturnType<Leases["claim"]>>>)
          .value;
        assert.equal((await la.get(lease))?.holder, winner.holder);
        assert.ok(winner.token > last, `round ${round}: token ${winner.token} after ${last}`);
        last = winner.token;
        if (round % 2 === 0) await winner.release();
      }
    });

    test("tokens grow at every change of holder, and never otherwise", async () => {
      const first = await la.claim("t", "alice", "10s");
      assert.equal(
        (await la.claim("t", "alice", "10s")).token,
        first.token,
        "the same holder again",
      );
      await assert.rejects(lb.claim("t", "bob", "10s"), LeaseHeldError);
      await first.release();
      const second = await lb.claim("t", "bob", "10s");
      assert.ok(second.token > first.token, "after a release");
      await setClock(10n * S); // bob's lease ran out
      const third = await la.claim("t", "alice", "10s");
      assert.ok(third.token > second.token, "after an expiry");
      await la.revoke("t", "alice", third.token);
      const fourth = await la.claim("t", "alice", "10s");
      assert.ok(fourth.token > third.token, "a new tenure, same holder");
      const other = await la.claim("u", "alice", "10s");
      assert.ok(other.token > fourth.token, "tokens are store-wide: another name's is greater too");
    });

    test("tokens never repeat after an operator deletes a lease's record, or every lease", async () => {
      const first = await la.claim("gone", "alice", "10s");
      await h.deleteLease("gone");
      assert.equal(await lb.get("gone"), undefined);
      const second = await lb.claim("gone", "bob", "10s");
      assert.ok(second.token > first.token, `${second.token} after ${first.token}, row deleted`);
      await h.dropLeases();
      assert.deepEqual(await la.list(), []);
      // The same connections: a store must not need a restart after its table was dropped.
      const third = await la.claim("gone", "carol", "10s");
      assert.ok(third.token > second.token, `${third.token} after ${second.token}, all deleted`);
      assert.equal((await lb.get("gone"))?.token, third.token);
    });

    test("a release keeps the record and its token", async () => {
      const lease = await la.claim("kept", "alice", "10s");
      await lease.release();
      const info = await lb.get("kept");
      assert.equal(info?.holder, "");
      assert.equal(info?.token, lease.token);
      assert.equal(info?.free, true);
      await la.revoke("kept", "alice", lease.token); // once more: nothing to do
      await assert.rejects(la.extend("kept", "alice", lease.token, "10s"), LeaseLostError);
    });

    test("expiry is judged against the stored global time, never a wall clock", async () => {
      await setClock(100n * S);
      const lease = await la.claim("e", "alice", "10s");
      assert.equal(lease.expiry, 110n * S);
      await setClock(110n * S - 1n);
      const held = await lb.claim("e", "bob", "10s").catch((err: unknown) => err);
      assert.ok(held instanceof LeaseHeldError, String(held));
      assert.equal(held.lease.holder, "alice");
      assert.equal(held.lease.token, lease.token);
      assert.equal(held.lease.expiry, 110n * S);
      assert.equal(held.time, 110n * S - 1n);
      await setClock(110n * S);
      const taken = await lb.claim("e", "bob", "10s");
      assert.ok(taken.token > lease.token);
      assert.equal(taken.start, 110n * S);
      await assert.rejects(la.extend("e", "alice", lease.token, "10s"), LeaseLostError);
      await assert.rejects(la.revoke("e", "alice", lease.token), LeaseLostError);
    });

    test("extending never shortens, and keeps the token", async () => {
      await setClock(50n * S);
      const lease = await la.claim("x", "alice", "30s");
      await lease.extend("10s");
      assert.equal(lease.expiry, 80n * S, "not shortened");
      await setClock(75n * S);
      const token = lease.token;
      await lease.extend("10s");
      assert.equal(lease.expiry, 85n * S);
      assert.equal(lease.token, token);
      const again = await la.extend("x", "alice", token, "20s");
      assert.equal(again.expiry, 95n * S);
      await assert.rejects(la.extend("x", "mallory", token, "20s"), LeaseLostError);
      await assert.rejects(la.extend("x", "alice", token + 1n, "20s"), (e: unknown) => {
        assert.ok(e instanceof LeaseLostError);
        assert.match(e.message, /not "alice"'s current grant/, "the caller is the holder");
        return true;
      });
    });

    test("a pinned lease does not expire until every pin is gone", async () => {
      const pinnedLease = await la.claim("p", "alice", "10s");
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
      assert.ok((await lb.claim("p", "bob", "10s")).token > pinnedLease.token);
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
      assert.equal(info?.token, lease.token);
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

    test("a lease that would expire beyond int64 is refused, and nothing is written", async () => {
      await setClock(100n * S);
      const tooLong = (1n << 63n) - 50n * S; // from global time 100 s, past int64's end
      await assert.rejects(la.claim("far", "alice", tooLong), (e: unknown) => {
        assert.ok(e instanceof InvalidDurationError && e.field === "duration", String(e));
        assert.match(e.message, /beyond the largest global time/);
        return true;
      });
      assert.equal(await la.get("far"), undefined, "nothing was written");
      const lease = await la.claim("far", "alice", "10s");
      await assert.rejects(lease.extend(tooLong), InvalidDurationError);
      assert.equal((await lb.get("far"))?.expiry, 110n * S, "the name still works");
    });

    test("the seam: writes are compare-and-swap on the version", async () => {
      const s = seam(a);
      const fields = writeOf({ name: "v", token: 7n });
      const v1 = await s.writeLease(fields, undefined);
      assert.ok(v1 !== undefined);
      assert.equal(v1.token, 7n, "a write without newToken keeps its token");
      assert.equal(await seam(b).writeLease(fields, undefined), undefined, "it exists");
      const v2 = await seam(b).writeLease({ ...fields, expiry: 6n }, v1.version);
      assert.ok(v2 !== undefined && v2.version !== v1.version);
      assert.equal(
        await s.writeLease({ ...fields, expiry: 7n }, v1.version),
        undefined,
        "stale version",
      );
      const read = await s.readLease("v");
      assert.equal(read.lease?.expiry, 6n);
      assert.equal(read.lease?.version, v2.version);
      assert.equal(read.time, undefined, "no clock record yet");
      assert.equal(read.maxStep, undefined, "no maxStep stored yet");
    });

    test("the seam: a new token is above the record's and every one handed out", async () => {
      await a.ensure(); // some stores keep the token counter in the clock's own record
      const s = seam(a);
      const x = await s.writeLease(writeOf({ name: "nx", newToken: true }), undefined);
      const y = await seam(b).writeLease(writeOf({ name: "ny", newToken: true }), undefined);
      assert.ok(x && y && y.token > x.token && x.token > 0n, `${x?.token}, ${y?.token}`);
      const read = await s.readLease("nx");
      assert.equal(read.lease?.token, x.token, "the store wrote the token it returned");
      const z = await s.writeLease(
        writeOf({ name: "nx", token: x.token, newToken: true }),
        read.lease?.version,
      );
      assert.ok(z && z.token > y.token, `${z?.token} above ${y.token}`);
      assert.equal((await seam(b).readLease("nx")).lease?.token, z.token);
      const kept = await s.writeLease(writeOf({ name: "nx", token: z.token }), z.version);
      assert.equal(kept?.token, z.token, "a write without newToken keeps the token");
    });

    test("the seam: a record made anew after a deletion never takes the deleted one's version", async () => {
      await a.ensure();
      const first = await seam(a).writeLease(writeOf({ name: "aba", holder: "old" }), undefined);
      assert.ok(first);
      await h.deleteLease("aba");
      const again = await seam(b).writeLease(writeOf({ name: "aba", holder: "new" }), undefined);
      assert.ok(again && again.version !== first.version, `${again?.version} = ${first.version}`);
      const stale = await seam(a).writeLease(
        writeOf({ name: "aba", holder: "old" }),
        first.version,
      );
      assert.equal(stale, undefined, "a write from the deleted record's version is refused");
      assert.equal((await seam(b).readLease("aba")).lease?.holder, "new");
    });

    test("the seam: of concurrent writes from one version, exactly one wins", async () => {
      await a.ensure(); // some stores keep the token counter in the clock's own record
      const fields = writeOf({ name: "w", token: 1n });
      let version = (await seam(a).writeLease(fields, undefined))?.version;
      for (let round = 0; round < 30; round++) {
        const [x, y] = await Promise.all([
          seam(a).writeLease({ ...fields, holder: "a", newToken: round % 2 === 0 }, version),
          seam(b).writeLease({ ...fields, holder: "b", newToken: round % 2 === 0 }, version),
        ]);
        assert.equal(Number(x !== undefined) + Number(y !== undefined), 1, `round ${round}`);
        version = (x ?? y)?.version;
      }
    });

    test("the seam: maxStep is stored once, then changed only by compare-and-swap", async () => {
      await setClock(1n); // some stores keep maxStep in the clock's own record
      assert.equal(await seam(a).ensureMaxStep(2n * S), 2n * S);
      assert.equal(await seam(b).ensureMaxStep(3n * S), 2n * S, "never overwritten");
      assert.equal(await seam(b).swapMaxStep(3n * S, 4n * S), false);
      assert.equal(await seam(b).swapMaxStep(2n * S, 4n * S), true);
      assert.equal((await seam(a).readLease("none")).maxStep, 4n * S);
      assert.deepEqual(await seam(a).readClock(), { time: 1n, maxStep: 4n * S });
      assert.equal(await a.read(), 1n, "maxStep is not the clock");
    });

    test("the seam: the clock's advance is refused once maxStep changed, or was deleted", async () => {
      await setClock(10n * S);
      assert.equal(await seam(a).ensureMaxStep(2n * S), 2n * S);
      assert.deepEqual(await seam(b).readClock(), { time: 10n * S, maxStep: 2n * S });
      assert.equal(await seam(a).advanceClock(10n * S, 11n * S, 2n * S), true);
      assert.equal(await seam(b).advanceClock(10n * S, 12n * S, 2n * S), false, "time moved on");
      assert.equal(await seam(b).swapMaxStep(2n * S, S), true); // an operator lowers it
      assert.equal(
        await seam(a).advanceClock(11n * S, 12n * S, 2n * S),
        false,
        "built on the old maxStep",
      );
      assert.equal(await a.read(), 11n * S, "nothing was written");
      assert.equal(await seam(a).advanceClock(11n * S, 12n * S, S), true, "on the new one");
      await h.deleteMaxStep();
      assert.deepEqual(await seam(b).readClock(), { time: 12n * S, maxStep: undefined });
      assert.equal(await seam(a).advanceClock(12n * S, 13n * S, S), false, "none stored");
      assert.equal(await seam(a).ensureMaxStep(3n * S), 3n * S, "made again");
      assert.equal(await seam(a).advanceClock(12n * S, 13n * S, S), false, "not the one made");
      assert.equal(await seam(a).advanceClock(12n * S, 13n * S, 3n * S), true);
      await h.deleteClock();
      assert.equal(await seam(a).advanceClock(13n * S, 14n * S, 3n * S), false, "no clock");
    });

    test("an Updater reads maxStep again when it changed, and builds on the new one", async () => {
      await setClock(10n * S);
      const updater = await Updater.create(a, { maxStep: "2s" });
      assert.equal(updater.maxStep, 2n * S, "it stored its maxStep, none being stored");
      await updater.advance("1s");
      assert.equal(await lb.setMaxStep(2n * S, S), true);
      const refused = await updater.advance("1s").catch((e: unknown) => e);
      assert.ok(refused instanceof MaxStepChangedError, String(refused));
      assert.equal(refused.previous, 2n * S);
      assert.equal(refused.current, S);
      assert.equal(updater.valid, true, "nothing was written, so the outcome is known");
      assert.equal(updater.maxStep, S);
      assert.equal(await updater.advance("1s"), 12n * S);
      await h.deleteMaxStep();
      await assert.rejects(updater.advance("1s"), OutOfSyncOrChanged);
      assert.equal(updater.maxStep, 2n * S, "the deleted maxStep was stored again, as its own");
      assert.equal(await updater.advance("1s"), 13n * S);
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

    test("a deleted clock is never made again by a lease operation or a new updater", async () => {
      await setClock(100n * S);
      await la.claim("d", "alice", "10s");
      await h.deleteClock();
      await assert.rejects(lb.claim("d", "bob", "10s"), ClockRecordMissingError);
      await assert.rejects(la.claim("d", "alice", "10s"), ClockRecordMissingError);
      // Another name: its own record shows nothing, the store's other records do.
      await assert.rejects(lb.claim("other", "bob", "10s"), ClockRecordMissingError);
      await assert.rejects(lb.pin("other", "bob"), ClockRecordMissingError);
      await assert.rejects(Updater.create(b), ClockRecordMissingError);
      assert.equal(await a.read(), undefined, "the clock was not made again at the epoch");
      // With maxStep deleted as well, the lease records still show that a clock was there.
      await h.deleteMaxStep();
      await assert.rejects(lb.claim("other", "bob", "10s"), ClockRecordMissingError);
      await assert.rejects(Updater.create(b), ClockRecordMissingError);
      assert.equal(await a.read(), undefined, "the clock was not made again at the epoch");
      await h.reset();
      const fresh = await lb.claim("d", "bob", "10s");
      assert.equal(fresh.start, 0n, "a store emptied on purpose starts anew");
    });

    test("waitUntilExpired is woken by the store's push: at a release, and when the clock reaches the expiry", {
      timeout: 60_000,
    }, async (t) => {
      if (!b.leases?.watchLeases || !b.watch) {
        skipOrFail(t, `${name} pushes no lease or clock changes: a wait polls it`);
        return;
      }
      // The waiter would read once an hour, and the lease lasts an hour of global time (which
      // never runs faster than real time): only a push wakes it before the liveness bound.
      const waiter = new Leases(b, { pollInterval: "1h" });
      const bound = patience(20_000, "no push woke the waiter (it reads once an hour)");
      /** Waits on `name`; `held` resolves once the waiter has read it held and sleeps. */
      const wait = (lease: string) => {
        let seen = () => {};
        const held = new Promise<void>((resolve) => {
          seen = resolve;
        });
        const free = waiter.waitUntilExpired(lease, {
          onChange: () => seen(),
          signal: bound.signal,
        });
        free.catch(() => {}); // awaited below; may fail before
        return { held: Promise.race([held, free.then(() => {})]), free };
      };
      try {
        await setClock(10n * S);
        const lease = await la.claim("wait", "alice", "1h");
        const released = wait("wait");
        await released.held;
        await lease.release();
        const info = await released.free;
        assert.equal(info?.holder, "", "woken by the release");
        assert.equal(info?.token, lease.token);

        const again = await la.claim("wait", "alice", "1h");
        const expired = wait("wait");
        await expired.held;
        await setClock(again.expiry);
        const after = await expired.free;
        assert.equal(after?.holder, "alice", "woken by the clock, not by a write of the lease");
        assert.equal(after?.free, true);
        assert.equal(after?.token, again.token);
      } finally {
        bound.done();
        await waiter.close();
      }
    });

    const write = async (store: ClockStore, lease: string) => {
      const { lease: stored } = await seam(store).readLease(lease);
      const expiry = (stored?.expiry ?? 0n) + 1n;
      const written = await seam(store).writeLease(
        writeOf({ name: lease, expiry }),
        stored?.version,
      );
      assert.ok(written, `the write to ${lease} lost to another`);
    };
    /**
     * Writes `lease` through `writer` until `w` notices: then it is in place (a write made
     * before the watch was may go unseen, and the contract promises no notice at the start).
     */
    const established = async (w: Watching, lease: string, writer = a) => {
      const from = w.state.notices;
      await eventually(async () => {
        if (w.state.notices > from) return true;
        running(w);
        await write(writer, lease);
        return false;
      }, `a notice of a write to ${lease}: the watch to be in place`);
    };
    /** One write of `lease` through `writer`, and `w`'s notice of it. */
    const noticed = async (w: Watching, lease: string, writer = a) => {
      const from = w.state.notices;
      await write(writer, lease);
      await eventually(() => {
        if (w.state.notices > from) return true;
        running(w);
        return false;
      }, `a notice of the write to ${lease}`);
    };
    /** How `w` ended: a return, or the error it failed with. */
    const outcome = async (w: Watching) => {
      const how = await w.ended;
      return how === "returned" ? how : how.err;
    };

    test("watchLeases: a write of a lease under the prefix wakes it, from another connection or its own", {
      timeout: 60_000,
    }, async (t) => {
      if (!b.leases?.watchLeases) {
        skipOrFail(t, `${name} has no watchLeases: waits poll it`);
        return;
      }
      // A prefix of characters a query language or a key range might take for its own.
      const prefix = "wätch.*%_[/";
      const w = watching(seam(b), prefix);
      try {
        await established(w, `${prefix}1`);
        for (const lease of [`${prefix}2`, `${prefix}1`, `${prefix}1/deeper`, prefix]) {
          await noticed(w, lease);
        }
        await noticed(w, `${prefix}3`, b); // a write through the watching store itself
      } finally {
        w.stop();
      }
      assert.equal(await outcome(w), "returned");
    });

    test("watchLeases: a write outside the prefix need not wake it, and leaves it running", {
      timeout: 60_000,
    }, async (t) => {
      if (!b.leases?.watchLeases) {
        skipOrFail(t, `${name} has no watchLeases: waits poll it`);
        return;
      }
      const w = watching(seam(b), "in/");
      try {
        await established(w, "in/1");
        for (const lease of ["out/1", "in", "in-x/1", "IN/1"]) await write(a, lease);
        await noticed(w, "in/2");
        running(w);
      } finally {
        w.stop();
      }
      assert.equal(await outcome(w), "returned");
    });

    test("watchLeases ends, without an error, when its signal aborts", {
      timeout: 60_000,
    }, async (t) => {
      if (!b.leases?.watchLeases) {
        skipOrFail(t, `${name} has no watchLeases: waits poll it`);
        return;
      }
      const w = watching(seam(b), "stop/");
      await established(w, "stop/1");
      running(w);
      w.stop(); // while it waits for the next change
      assert.equal(await outcome(w), "returned", "a running watch");
      const aborted = watching(seam(b), "stop/", AbortSignal.abort(new Error("gone")));
      assert.equal(await outcome(aborted), "returned", "a watch whose signal was aborted already");
    });

    test("closing the store ends its running watchLeases", { timeout: 60_000 }, async (t) => {
      const c = await h.open();
      try {
        if (!c.leases?.watchLeases) {
          skipOrFail(t, `${name} has no watchLeases: waits poll it`);
          return;
        }
        const w = watching(c.leases, "");
        await established(w, "close/1");
        running(w);
        await c.close();
        // A watch that outlives its store hangs here until the test's timeout.
        const how = await outcome(w);
        if (how !== "returned" && !(how instanceof ClosedError)) {
          assert.fail(`the watch ended with ${String(how)}, not a return or a ClosedError`);
        }
        assert.throws(() => c.leases?.watchLeases?.("", new AbortController().signal), ClosedError);
      } finally {
        await c.close();
      }
    });
    // Sessions: a session is a lease record whose name begins with a control character no
    // lease name may hold, and a lease held through it names that record as its holder.
    /** Leases on `store` whose timers and renewals run only when the test moves `clock`. */
    const frozen = (store: ClockStore) => {
      const clock = new VirtualClock();
      return { clock, leases: new Leases(store, { clock }) };
    };
    const versionOf = async (store: ClockStore, lease: string) =>
      (await seam(store).readLease(lease)).lease?.version;

    test("sessions: a renewal writes the session's record alone, however many leases are held through it", async () => {
      await setClock(100n * S);
      const { leases } = frozen(a);
      const session = await leases.session("alice", { ttl: "10s" });
      const held = [];
      for (let i = 0; i < 5; i++) held.push(await session.claim(`s/${i}`));
      const tokens = held.map((l) => l.token);
      assert.equal(new Set(tokens).size, 5, "a token per lease");
      const before = await Promise.all(held.map((l) => versionOf(b, l.name)));
      const own = await versionOf(b, session.name);
      await setClock(104n * S);
      await session.renew();
      assert.notEqual(await versionOf(b, session.name), own, "the session's record was written");
      assert.deepEqual(
        await Promise.all(held.map((l) => versionOf(b, l.name))),
        before,
        "no lease's record was written",
      );
      assert.equal(session.expiry, 114n * S);
      const info = await lb.get("s/3");
      assert.equal(info?.holder, "alice");
      assert.equal(info?.expiry, 114n * S, "a lease shows its session's expiry");
      assert.equal(info?.session, session.name);
      assert.equal(info?.free, false);
      const listed = await lb.list("");
      assert.deepEqual(
        listed.map((l) => [l.name, l.holder, l.token]),
        held.map((l) => [l.name, "alice", l.token]),
        "list shows the leases, with their session's holder, and never the session's record",
      );
      assert.deepEqual(
        (await lb.list("s/")).map((l) => l.expiry),
        held.map(() => 114n * S),
        "a narrower list resolves the sessions too",
      );
      const raw = await seam(b).listLeases("");
      assert.ok(
        raw.leases.some((r) => r.name === session.name && r.holder === "alice"),
        "the session's record, as the store keeps it, with its control-character name",
      );
      await assert.rejects(lb.claim("s/0", "bob", "10s"), LeaseHeldError);
      await session.close();
    });

    test("sessions: a rival takes a lease only after the session expired, by ending it first; the holder's renewal is refused from then on", async () => {
      await setClock(100n * S);
      const { leases } = frozen(a);
      const session = await leases.session("alice", { ttl: "10s" });
      const job = await session.claim("job");
      await setClock(109n * S);
      const held = await assert.rejects(lb.claim("job", "bob", "10s"), LeaseHeldError);
      void held;
      await setClock(110n * S);
      const rival = await lb.claim("job", "bob", "10s");
      assert.ok(rival.token > job.token, "a greater token");
      const ended = (await seam(b).readLease(session.name)).lease;
      assert.equal(ended?.holder, "", "the session was ended");
      assert.equal(ended?.token, session.token, "its token kept");
      await assert.rejects(session.renew(), LeaseLostError);
      assert.ok(session.lost instanceof LeaseLostError, "the session knows it is lost");
      assert.ok(session.signal.aborted);
      await assert.rejects(session.claim("other"), LeaseLostError);
      await session.close(); // nothing to release: it is not theirs any more
      assert.equal((await lb.get("job"))?.holder, "bob");
    });

    test("sessions: the holder's renewal racing a rival's end: exactly one of them wins", async () => {
      await setClock(100n * S);
      const { leases } = frozen(a);
      let time = 100n;
      for (let round = 0; round < 8; round++) {
        const session = await leases.session(`alice-${round}`, { ttl: "10s" });
        const job = await session.claim(`race/${round}`);
        time += 11n;
        await setClock(time * S); // expired, not yet ended
        const [renewal, claim] = await Promise.allSettled([
          session.renew(),
          lb.claim(`race/${round}`, "bob", "10s"),
        ]);
        const wins = [renewal, claim].filter((r) => r.status === "fulfilled").length;
        assert.equal(wins, 1, `round ${round}: ${renewal.status} and ${claim.status}`);
        const info = await lb.get(`race/${round}`);
        if (renewal.status === "fulfilled") {
          assert.ok((claim as PromiseRejectedResult).reason instanceof LeaseHeldError);
          assert.equal(info?.holder, `alice-${round}`);
          assert.equal(info?.token, job.token, "the same token");
        } else {
          assert.ok(renewal.reason instanceof LeaseLostError, String(renewal.reason));
          assert.equal(info?.holder, "bob");
        }
        await session.close();
      }
    });

    test("sessions: closing one frees every lease held through it in one write, tokens kept", async () => {
      await setClock(100n * S);
      const { leases } = frozen(a);
      const session = await leases.session("alice", { ttl: "10s" });
      const held = [await session.claim("c/1"), await session.claim("c/2")];
      const versions = await Promise.all(held.map((l) => versionOf(b, l.name)));
      await session.close();
      assert.ok(session.signal.aborted, "its signal fired");
      assert.ok(
        held.every((l) => l.signal.aborted && !l.held),
        "and every lease's with it",
      );
      assert.deepEqual(await Promise.all(held.map((l) => versionOf(b, l.name))), versions);
      for (const l of held) {
        assert.equal((await lb.get(l.name))?.free, true, `${l.name} is free`);
        const next = await lb.claim(l.name, "bob", "10s");
        assert.ok(next.token > l.token, `${l.name}: a greater token`);
      }
      await session.close(); // twice is once
    });

    test("sessions: a lease released alone is free at once; the session and its other leases go on", async () => {
      await setClock(100n * S);
      const { leases } = frozen(a);
      const session = await leases.session("alice", { ttl: "10s" });
      const one = await session.claim("r/1");
      const two = await session.claim("r/2");
      await one.release();
      assert.ok(one.signal.aborted && !one.held);
      assert.ok(two.held && !two.signal.aborted);
      assert.equal((await lb.get("r/1"))?.free, true);
      const again = await session.claim("r/1");
      assert.ok(again.token > one.token, "a new tenure, a new token");
      await session.close();
    });

    test("sessions: an operator's delete of the session's record frees its leases, and the holder learns it at its next renewal", async () => {
      await setClock(100n * S);
      const { leases } = frozen(a);
      const session = await leases.session("alice", { ttl: "10s" });
      const job = await session.claim("d/1");
      await h.deleteLease(session.name);
      assert.equal((await lb.get("d/1"))?.free, true, "a missing session holds nothing");
      const rival = await lb.claim("d/1", "bob", "10s");
      assert.ok(rival.token > job.token, "fencing tells the two apart");
      await assert.rejects(session.renew(), LeaseLostError);
      assert.ok(session.signal.aborted);
    });

    test("sessions: a waiter is woken when the session it waits on is closed", {
      timeout: 60_000,
    }, async () => {
      await setClock(100n * S);
      const { leases } = frozen(a);
      const waiter = new Leases(b, { pollInterval: "1h" });
      const session = await leases.session("alice", { ttl: "10s" });
      await session.claim("w/1");
      const seen: (string | undefined)[] = [];
      const done = waiter.waitUntilExpired("w/1", { onChange: (l) => seen.push(l?.holder) });
      await eventually(() => seen.length > 0, "the waiter's first read");
      await session.close();
      const info = await done;
      assert.equal(info?.free, true);
      assert.deepEqual(seen, ["alice"]);
    });

    test("sessions: a schedule the cluster's maxStep does not allow is refused, and nothing is left held", async () => {
      await setClock(100n * S);
      const { leases } = frozen(a);
      await assert.rejects(leases.session("alice", { ttl: "1s" }), ConfigError);
      await assert.rejects(leases.session("alice", { ttl: "10s", renewEvery: "9s" }), ConfigError);
      const raw = await seam(b).listLeases("");
      assert.ok(
        raw.leases.every((r) => r.holder === ""),
        "a session refused after its claim was released",
      );
      await assert.rejects(leases.session("al\nice", { ttl: "10s" }), ConfigError);
    });
  });
}
