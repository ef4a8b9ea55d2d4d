// The one keeper lock and campaigns share (src/leases/hold.ts), on a fake monotonic clock:
// the schedule it validates, the renewals it makes, and where it stops.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import {
  ConfigError,
  LeaseHeldError,
  LeaseLostError,
  Leases,
  MemoryStore,
  StoreError,
} from "../../src/index.js";
import { acquire, heldBy, holdSchedule, keep, usableTime } from "../../src/leases/hold.js";
import type { LeaseInfo } from "../../src/leases/info.js";
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

describe("holdSchedule: its edges", () => {
  const M = 1_500n * MS;
  const refused = (field: string, re: RegExp) => (e: unknown) => {
    assert.ok(e instanceof ConfigError && e.field === field, String(e));
    assert.match(e.message, re);
    return true;
  };
  test("the API's own names in messages, and every duration checked", () => {
    assert.throws(
      () => holdSchedule({ duration: "1s" }, M),
      refused("duration", /^a lease of 1s is too short/),
    );
    assert.throws(
      () => holdSchedule({ duration: "10s", grace: "9s" }, M),
      refused(
        "grace",
        /^grace 9s is not shorter than the 8\.49\d*s a claim of 10s can count on \(duration less/,
      ),
    );
    assert.throws(
      () => holdSchedule({ duration: "10s", renewEvery: "0s" }, M),
      refused("renewEvery", /^renewEvery must be greater than 0$/),
    );
    assert.throws(
      () => holdSchedule({ duration: "10s", retryDelay: "0s" }, M),
      refused("retryDelay", /^retryDelay must be greater than 0$/),
    );
    assert.throws(
      () => holdSchedule({ duration: "10s", grace: "-1s" }, M),
      refused("grace", /negative/),
    );
  });

  test("a grace as long as what a claim can count on is refused; one nanosecond less is not", () => {
    const usable = usableTime(10n * S, M);
    assert.throws(
      () => holdSchedule({ duration: "10s", grace: usable }, M),
      refused("grace", /not shorter/),
    );
    assert.throws(
      () => holdSchedule({ duration: "10s", grace: usable - 1n }, M),
      refused("renewEvery", /must be greater than 0/),
      "then no renewal fits at all",
    );
  });

  test("two renewals must fit before the stop: exactly two is enough; the message says how much would", () => {
    const usable = usableTime(10n * S, M);
    const grace = 2n * S + ((usable - 2n * S) % 2n); // what is left even: two halves fill it
    const half = (usable - grace) / 2n;
    assert.equal(2n * half, usable - grace);
    assert.equal(holdSchedule({ duration: "10s", grace, renewEvery: half }, M).renewEvery, half);
    assert.throws(
      () =>
        holdSchedule({ duration: "10s", grace, renewEvery: half + 1n }, M, undefined, {
          duration: "--ttl",
          renewEvery: "--renew-every",
          retryDelay: "--retry",
          grace: "--grace",
        }),
      refused(
        "--renew-every",
        /can count on 8\.49\d*s \(less maxStep 1\.5s and clock drift\), and --grace 2(\.0+\d*)?s before that the holder stops; use --renew-every 3\.24\d*s or less, or a longer --ttl$/,
      ),
    );
    assert.throws(
      () => holdSchedule({ duration: "10s", renewEvery: "5s" }, M),
      refused(
        "renewEvery",
        /^renewEvery 5s leaves no time to renew twice: a claim of 10s can count on 8\.49\d*s \(less maxStep 1\.5s and clock drift\); use renewEvery 4\.24\d*s or less, or a longer duration$/,
      ),
      "no grace: nothing said of it",
    );
  });

  test("defaults: renewals every third of what is left before the stop; retries 100 ms apart, or a quarter of renewEvery if that is less", () => {
    const s = holdSchedule({ duration: "10s" }, M, () => 2n * S);
    assert.equal(s.grace, 2n * S);
    assert.equal(s.renewEvery, (s.usable - 2n * S) / 3n);
    assert.equal(s.retryDelay, 100n * MS);
    const quick = holdSchedule({ duration: "1s" }, 100n * MS);
    assert.equal(quick.retryDelay, quick.renewEvery / 4n);
    assert.ok(quick.retryDelay < 100n * MS);
    assert.equal(holdSchedule({ duration: "10s", retryDelay: "7ms" }, M).retryDelay, 7n * MS);
  });
});

describe("acquire: what it retries", () => {
  const held = () => {
    const { clock, store, leases } = holder();
    return { clock, store, leases };
  };
  test("waiting: a retryable store error is tried again; not waiting, it is thrown", async () => {
    const { clock, store, leases } = held();
    const seam = store.leases;
    const read = seam.readLease.bind(seam);
    let failures = 2;
    seam.readLease = (...args) =>
      failures-- > 0
        ? Promise.reject(new StoreError("memory", "readLease", "injected"))
        : read(...args);
    const waiting = acquire(leases, "job", "a", 9n * S, {
      wait: true,
      retryDelay: 10n * MS,
      maxRetryDelay: S,
    });
    await clock.run(100, 5);
    assert.equal((await waiting).holder, "a");
    failures = 1;
    await assert.rejects(
      acquire(leases, "other", "a", 9n * S, {
        wait: false,
        retryDelay: 10n * MS,
        maxRetryDelay: S,
      }),
      StoreError,
    );
    await store.close();
  });

  test("an error no retry mends is thrown at once, waiting or not", async () => {
    const { store, leases } = held();
    const seam = store.leases;
    seam.readLease = () =>
      Promise.reject(new StoreError("memory", "readLease", "wrong password", { retryable: false }));
    await assert.rejects(
      acquire(leases, "job", "a", 9n * S, { wait: true, retryDelay: 10n * MS, maxRetryDelay: S }),
      /wrong password/,
    );
    await store.close();
  });

  test("a held lease: LeaseHeldError at once, or a wait that sees the holder and claims when it is free", async () => {
    const { clock, store, leases } = held();
    const first = await leases.claim("job", "a", "9s");
    await assert.rejects(
      acquire(leases, "job", "b", 9n * S, { wait: false, retryDelay: 10n * MS, maxRetryDelay: S }),
      LeaseHeldError,
    );
    const seen: string[] = [];
    const waiting = acquire(leases, "job", "b", 9n * S, {
      wait: true,
      retryDelay: 10n * MS,
      maxRetryDelay: S,
      onWaiting: (info) => seen.push(`${info?.holder}#${info?.token}`),
    });
    await clock.run(50, 5);
    await first.release();
    await clock.run(50, 5);
    const won = await waiting;
    assert.equal(won.holder, "b");
    assert.ok(seen.includes(`a#${first.token}`), seen.join());
    await store.close();
  });

  test("aborted while it pauses after an error: it rejects with the signal's reason", async () => {
    const { clock, store, leases } = held();
    store.leases.readLease = () =>
      Promise.reject(new StoreError("memory", "readLease", "injected"));
    const stop = new AbortController();
    const waiting = acquire(leases, "job", "a", 9n * S, {
      wait: true,
      signal: stop.signal,
      retryDelay: S,
      maxRetryDelay: S,
    });
    await clock.run(10, 5);
    stop.abort(new Error("stopped"));
    await assert.rejects(waiting, /stopped/);
    await store.close();
  });
});

describe("acquire: its signal, its callbacks, a wait that fails", () => {
  const options = { retryDelay: 10n * MS, maxRetryDelay: S };
  test("the claim itself is given the signal: one hung in the store ends with its reason", async () => {
    const { store, leases } = holder();
    const given: Array<AbortSignal | undefined> = [];
    store.leases.readLease = (_name, signal) => {
      given.push(signal);
      if (!signal) return Promise.reject(new Error("the claim was not given the signal"));
      return new Promise((_resolve, reject) =>
        signal.addEventListener("abort", () => reject(signal.reason), { once: true }),
      );
    };
    const stop = new AbortController();
    const waiting = acquire(leases, "job", "a", 9n * S, {
      ...options,
      wait: true,
      signal: stop.signal,
    });
    await settle();
    stop.abort(new Error("stopped"));
    await assert.rejects(waiting, /^Error: stopped$/);
    assert.equal(given.length, 1, "one read, hung until the abort");
    await store.close();
  });

  test("waiting needs no onWaiting: it claims once the holder releases", async () => {
    const { clock, store, leases } = holder();
    const first = await leases.claim("job", "a", "9s");
    const waiting = acquire(leases, "job", "b", 9n * S, { ...options, wait: true });
    await clock.run(50, 5);
    await first.release();
    await clock.run(300, 5);
    assert.equal((await waiting).holder, "b");
    await store.close();
  });

  test("onWaiting is told first of the holder the refused claim named, as a LeaseInfo", async () => {
    const { clock, store, leases } = holder();
    const first = await leases.claim("job", "a", "9s");
    const seen: Array<LeaseInfo | undefined> = [];
    const stop = new AbortController();
    const waiting = acquire(leases, "job", "b", 9n * S, {
      ...options,
      wait: true,
      signal: stop.signal,
      onWaiting: (info) => seen.push(info),
    });
    await clock.run(20, 5);
    assert.ok(seen.length > 0);
    const { time, ...told } = seen[0] as LeaseInfo;
    assert.equal(typeof time, "bigint", "the global time the claim was judged at");
    assert.deepEqual(told, {
      name: "job",
      holder: "a",
      token: first.token,
      start: 0n,
      expiry: first.expiry,
      pins: [],
      free: false,
    });
    stop.abort(new Error("stopped"));
    await assert.rejects(waiting, /stopped/);
    await store.close();
  });

  test("heldBy: the holder a LeaseHeldError names, held (not free), at the time it was judged", () => {
    const err = new LeaseHeldError(
      { name: "job", holder: "a", token: 3n, expiry: 20n * S, pinned: false },
      12n * S,
    );
    const info = heldBy(err);
    assert.deepEqual(info, {
      name: "job",
      holder: "a",
      token: 3n,
      start: 0n,
      expiry: 20n * S,
      pins: [],
      time: 12n * S,
      free: false,
    });
    assert.ok(Object.isFrozen(info));
  });

  /** `leases` whose waitUntilExpired fails once with `err`, then waits as it would. */
  function failingWait(leases: Leases, err: Error) {
    let calls = 0;
    return {
      get calls() {
        return calls;
      },
      clock: leases.clock,
      claim: leases.claim.bind(leases),
      waitUntilExpired: (
        name: string,
        opts?: Parameters<Leases["waitUntilExpired"]>[1],
      ): Promise<unknown> =>
        calls++ === 0 ? Promise.reject(err) : leases.waitUntilExpired(name, opts),
    };
  }

  test("a wait that fails with a retryable error: claimed again, waited again, won", async () => {
    const { clock, store, leases } = holder();
    const first = await leases.claim("job", "a", "9s");
    const claimer = failingWait(leases, new StoreError("memory", "readLease", "injected"));
    const waiting = acquire(claimer, "job", "b", 9n * S, { ...options, wait: true });
    await clock.run(50, 5);
    assert.equal(claimer.calls, 2, "waited again after the failure");
    await first.release();
    await clock.run(300, 5);
    assert.equal((await waiting).holder, "b");
    await store.close();
  });

  test("a wait that fails with an error no retry mends: thrown as it is (no signal given)", async () => {
    const { clock, store, leases } = holder();
    const first = await leases.claim("job", "a", "9s");
    const fatal = new StoreError("memory", "readLease", "wrong password", { retryable: false });
    const claimer = failingWait(leases, fatal);
    let outcome: unknown = "pending";
    const waiting = acquire(claimer, "job", "b", 9n * S, { ...options, wait: true }).then(
      (lease) => {
        outcome = lease;
      },
      (err: unknown) => {
        outcome = err;
      },
    );
    await clock.run(50, 5);
    assert.equal(outcome, fatal, "rejected with the wait's own error");
    assert.equal(claimer.calls, 1);
    await first.release(); // lets a wrongly continued attempt end
    await clock.run(300, 5);
    await waiting;
    await store.close();
  });
});

describe("keep: its schedule, and how it ends", () => {
  /** Global times of the store's lease writes, on the fake clock, failing while `failing`. */
  function writes(store: MemoryStore, clock: FakeClock, failing: () => boolean) {
    const at: bigint[] = [];
    const seam = store.leases;
    const write = seam.writeLease.bind(seam);
    seam.writeLease = (...args) => {
      at.push(clock.now());
      return failing()
        ? Promise.reject(new StoreError("memory", "writeLease", "injected"))
        : write(...args);
    };
    return at;
  }

  test("without onRenewed: one renewal every renewEvery, no more", async () => {
    const { clock, store, leases } = holder();
    const lease = await leases.claim("job", "a", "9s");
    const schedule = holdSchedule({ duration: "9s", renewEvery: "2s" }, lease.maxStep);
    const at = writes(store, clock, () => false);
    const stop = new AbortController();
    const kept = keep(lease, schedule, { clock, signal: stop.signal });
    await clock.run(5_000, 50);
    assert.deepEqual(at, [2n * S, 4n * S]);
    assert.ok(lease.held);
    stop.abort();
    assert.equal(await kept, undefined);
    await store.close();
  });

  test("failed renewals: retryDelay, doubling, never more than half of renewEvery apart", async () => {
    const { clock, store, leases } = holder();
    const lease = await leases.claim("job", "a", "9s");
    const schedule = holdSchedule(
      { duration: "9s", renewEvery: "2s", retryDelay: "300ms" },
      lease.maxStep,
    );
    const at = writes(store, clock, () => true);
    const kept = keep(lease, schedule, { clock });
    await clock.run(Number(lease.deadline / MS) + 100, 50);
    assert.ok((await kept) instanceof LeaseLostError);
    const gaps = at.slice(1).map((t, i) => (t - (at[i] ?? 0n)) / MS);
    assert.equal(at[0], 2n * S, "the first renewal, on schedule");
    assert.deepEqual(gaps, [300n, 600n, 1000n, 1000n, 1000n, 1000n, 1000n]);
    await store.close();
  });

  test("stopped as the lease is lost: undefined, the caller's stop comes first", async () => {
    const { clock, store, leases } = holder();
    const lease = await leases.claim("job", "a", "9s");
    const schedule = holdSchedule({ duration: "9s" }, lease.maxStep);
    const stop = new AbortController();
    const kept = keep(lease, schedule, { clock, signal: stop.signal });
    await clock.run(100, 50);
    stop.abort();
    const released = lease.release(); // its signal fires at once, before keep wakes
    assert.ok(lease.signal.aborted);
    assert.equal(await kept, undefined);
    await released;
    await store.close();
  });
});
