// Leader election on a fake monotonic clock, with a real updater worker keeping global time;
// and, through a scripted claimer, the campaign's own bookkeeping: the caller's signal (and
// no listener left on it), the stand-by worker's start and stop, the states it goes through
// between tenures, and which holders a follower reports.
import assert from "node:assert/strict";
import { getEventListeners } from "node:events";
import { describe, test } from "node:test";
import {
  Campaign,
  ConfigError,
  type ElectionState,
  LeaseHeldError,
  Leases,
  MemoryStore,
  StoreError,
} from "../../src/index.js";
import type { CampaignLeases } from "../../src/leases/election.js";
import type { LeaseInfo } from "../../src/leases/info.js";
import { startUpdater } from "../../src/worker.js";
import { FakeClock, settle } from "../helpers/fake-clock.js";

let n = 0;

function cluster() {
  const clock = new FakeClock();
  const name = `election-${process.pid}-${n++}`;
  const worker = startUpdater(new MemoryStore(name), { clock, random: () => 0 });
  const node = (holder: string) => {
    const store = new MemoryStore(name);
    const leases = new Leases(store, { clock });
    const timeline: Array<{ at: bigint; state: ElectionState }> = [];
    // The test's own worker keeps time; a campaign's stand-by would only add noise.
    const campaign = leases.campaign("leader", { holder, duration: "9s", keepTime: false });
    void (async () => {
      for await (const state of campaign) timeline.push({ at: clock.now(), state });
    })();
    return { store, leases, campaign, timeline };
  };
  return { clock, worker, node };
}

const role = (c: Campaign) => c.state.role;

describe("leader election", () => {
  test("one leader; followers know it; a stopped leader hands over at once", async () => {
    const { clock, worker, node } = cluster();
    await settle();
    const a = node("a");
    await clock.run(100, 10);
    const b = node("b");
    await clock.run(100, 10);
    assert.equal(role(a.campaign), "leader");
    const follower = b.campaign.state;
    assert.ok(follower.role === "follower" && follower.leader?.holder === "a");
    assert.equal(follower.leader?.token, 1n);
    await clock.run(30_000, 50); // a renews every 3 s; nothing changes
    assert.equal(role(a.campaign), "leader");
    assert.equal(role(b.campaign), "follower");
    const lease = (a.campaign.state as { lease: { signal: AbortSignal } }).lease;
    const stoppedAt = clock.now();
    await a.campaign.stop();
    assert.ok(lease.signal.aborted, "the old leader's signal fired");
    await clock.run(20, 1);
    const now = b.campaign.state;
    assert.ok(now.role === "leader", `b is ${now.role}`);
    assert.equal(now.lease.token, 2n);
    const handover = (b.timeline.at(-1)?.at ?? 0n) - stoppedAt;
    assert.ok(handover < 20_000_000n, `handover took ${handover} ns of (fake) time`);
    await b.campaign.stop();
    await worker.stop();
  });

  test("a leader whose renewals fail steps down at its deadline, before anyone can win", async () => {
    const { clock, worker, node } = cluster();
    await settle();
    const a = node("a");
    await clock.run(100, 10);
    const b = node("b");
    await clock.run(2_000, 10);
    assert.equal(role(a.campaign), "leader");
    const lease = (a.campaign.state as { lease: { signal: AbortSignal; deadline: bigint } }).lease;
    // a's store stops answering its writes.
    const leasesOfA = a.store.leases;
    leasesOfA.writeLease = async () => {
      throw new StoreError("memory", "writeLease", "injected: the store does not answer");
    };
    let demotedAt: bigint | undefined;
    lease.signal.addEventListener("abort", () => {
      demotedAt = clock.now();
    });
    await clock.run(20_000, 10);
    assert.ok(demotedAt !== undefined, "a stepped down");
    // The fake clock moves in 10 ms ticks: the deadline's timer fires at the first tick on or after it.
    assert.ok(
      demotedAt >= lease.deadline && demotedAt < lease.deadline + 10_000_000n,
      "at its deadline",
    );
    assert.notEqual(role(a.campaign), "leader");
    const bLeader = b.timeline.find((e) => e.state.role === "leader");
    assert.ok(bLeader, "b took over");
    assert.ok(bLeader.at > demotedAt, "b led only after a had stepped down");
    assert.equal((bLeader.state as { lease: { token: bigint } }).lease.token, 2n);
    await a.campaign.stop();
    await b.campaign.stop();
    await worker.stop();
  });

  test("a follower learns each new leader while it waits, not only when its own claim fails", async () => {
    const { clock, worker, node } = cluster();
    await settle();
    const a = node("a");
    await clock.run(100, 10);
    const b = node("b");
    await clock.run(100, 10);
    const first = b.campaign.state;
    assert.ok(first.role === "follower" && first.leader?.holder === "a");
    // An operator hands the lease to "c" outright (a new tenure, by the seam): b never got
    // the chance to claim, and must still see the new leader and its token.
    const seam = a.store.leases;
    const read = await seam.readLease("leader");
    const record = read.lease;
    assert.ok(record && read.time !== undefined);
    const written = await seam.writeLease(
      {
        ...record,
        holder: "c",
        newToken: true,
        start: read.time,
        expiry: read.time + 3_600n * 1_000_000_000n,
      },
      record.version,
    );
    assert.ok(written);
    await clock.run(200, 10);
    const now = b.campaign.state;
    assert.ok(now.role === "follower", now.role);
    assert.equal(now.leader?.holder, "c");
    assert.equal(now.leader?.token, written.token);
    await a.campaign.stop();
    await b.campaign.stop();
    await worker.stop();
  });

  test("a store that fails at the start delays a campaign; it does not end it", async () => {
    const clock = new FakeClock();
    const name = `election-flaky-${process.pid}-${n++}`;
    const worker = startUpdater(new MemoryStore(name), { clock, random: () => 0 });
    const store = new MemoryStore(name);
    const seam = store.leases;
    const real = {
      readLease: seam.readLease.bind(seam),
      readClock: seam.readClock.bind(seam),
      ensureMaxStep: seam.ensureMaxStep.bind(seam),
    };
    let failures = 5;
    const flaky =
      <A extends unknown[], T>(fn: (...args: A) => Promise<T>) =>
      (...args: A): Promise<T> =>
        failures-- > 0
          ? Promise.reject(new StoreError("memory", "readLease", "injected: restarting"))
          : fn(...args);
    seam.readLease = flaky(real.readLease);
    seam.readClock = flaky(real.readClock);
    seam.ensureMaxStep = flaky(real.ensureMaxStep);
    const campaign = new Leases(store, { clock }).campaign("leader", {
      holder: "a",
      duration: "9s",
    });
    await clock.run(5_000, 10);
    assert.equal(campaign.state.role, "leader", "it led once the store answered");
    assert.ok(failures < 0, "the failures were met");
    await campaign.stop();
    await worker.stop();
  });

  test("options are validated", () => {
    const leases = new Leases(new MemoryStore());
    assert.throws(() => leases.campaign("", { holder: "a", duration: "9s" }), /invalid lease name/);
    assert.throws(
      () => leases.campaign("l", { holder: "a", duration: "9s", renewEvery: "9s" }),
      /renewEvery must be greater than 0 and less than duration/,
    );
    const field = (options: Record<string, unknown>, name: string, text: RegExp) =>
      assert.throws(
        () => leases.campaign("l", { holder: "a", duration: "9s", ...options }),
        (err: unknown) =>
          err instanceof ConfigError && err.field === name && text.test(err.message),
      );
    field({ renewEvery: "0" }, "renewEvery", /greater than 0 and less than duration/);
    field({ renewEvery: "10s" }, "renewEvery", /greater than 0 and less than duration/);
    field({ renewEvery: "1x" }, "renewEvery", /renewEvery/);
    field({ retryDelay: 0 }, "retryDelay", /^retryDelay must be > 0$/);
    field({ retryDelay: "1x" }, "retryDelay", /retryDelay/);
    field({ duration: "1x" }, "duration", /duration/);
    field({ holder: "" }, "holder", /holder/);
    const ok = leases.campaign("l", { holder: "a", duration: "9s", renewEvery: "1ns" });
    assert.deepEqual(ok.state, { role: "follower", leader: undefined });
    void ok.stop();
  });

  test("a campaign keeps time by default, where no worker runs; keepTime: false does not", async () => {
    for (const keepTime of [undefined, false]) {
      const clock = new FakeClock();
      const store = new MemoryStore();
      const leases = new Leases(store, { clock });
      const campaign = leases.campaign("l", {
        holder: "a",
        duration: "9s",
        ...(keepTime === undefined ? {} : { keepTime }),
      });
      await clock.run(5_000, 50);
      const time = (await store.read()) ?? 0n;
      await campaign.stop();
      if (keepTime === undefined) assert.ok(time > 1_000_000_000n, `global time ${time}`);
      else assert.equal(time, 0n);
    }
  });
});

describe("leader election: what no retry mends", () => {
  test("a duration the cluster's maxStep forbids ends the iteration with the ConfigError", async () => {
    const leases = new Leases(new MemoryStore(`election-short-${process.pid}`));
    const campaign = leases.campaign("l", { holder: "a", duration: "1s", keepTime: false });
    const states: string[] = [];
    await assert.rejects(
      (async () => {
        for await (const state of campaign) states.push(state.role);
      })(),
      /too short/,
    );
    await assert.rejects(campaign.stop(), /too short/);
    assert.equal(campaign.state.role, "stopped");
  });
});

/** A leader on its own store (no rival), with a worker keeping time; `signal` for the campaign. */
async function soleLeader(signal?: AbortSignal) {
  const clock = new FakeClock();
  const name = `election-sole-${process.pid}-${n++}`;
  const worker = startUpdater(new MemoryStore(name), { clock, random: () => 0 });
  const store = new MemoryStore(name);
  const leases = new Leases(store, { clock });
  const campaign = leases.campaign("leader", {
    holder: "a",
    duration: "9s",
    keepTime: false,
    ...(signal ? { signal } : {}),
  });
  await clock.run(100, 10);
  const holder = async () => (await store.leases.readLease("leader")).lease?.holder;
  return { clock, worker, store, leases, campaign, holder };
}

const listeners = (signal: AbortSignal) => getEventListeners(signal, "abort").length;

describe("leader election: stopping", () => {
  test("the caller's signal stops the campaign, which releases the lease and leaves no listener", async () => {
    const outer = new AbortController();
    const { worker, campaign, holder } = await soleLeader(outer.signal);
    assert.equal(campaign.state.role, "leader");
    assert.equal(await holder(), "a");
    assert.equal(listeners(outer.signal), 1);
    outer.abort(new Error("shutting down"));
    assert.equal(listeners(outer.signal), 0, "gone as the signal fires");
    await settle();
    assert.deepEqual(campaign.state, { role: "stopped" });
    assert.equal(await holder(), "", "released, so that a successor takes over at once");
    await campaign.stop();
    await worker.stop();
  });

  test("a signal aborted already: the campaign never claims", async () => {
    const clock = new FakeClock();
    const store = new MemoryStore();
    const outer = new AbortController();
    outer.abort(new Error("too late"));
    const campaign = new Leases(store, { clock }).campaign("leader", {
      holder: "a",
      duration: "9s",
      keepTime: false,
      signal: outer.signal,
    });
    await clock.run(100, 10);
    assert.deepEqual(campaign.state, { role: "stopped" });
    assert.equal((await store.leases.readLease("leader")).lease, undefined, "no claim was made");
    assert.equal(listeners(outer.signal), 0);
    await campaign.stop();
  });

  test("stop() and asyncDispose: stopped, released, no listener left on the caller's signal", async () => {
    for (const how of ["stop", "dispose"] as const) {
      const outer = new AbortController();
      const { worker, campaign, holder } = await soleLeader(outer.signal);
      assert.equal(campaign.state.role, "leader");
      if (how === "stop") await campaign.stop();
      else await campaign[Symbol.asyncDispose]();
      assert.deepEqual(campaign.state, { role: "stopped" }, how);
      assert.equal(await holder(), "", how);
      assert.equal(listeners(outer.signal), 0, `${how}: the listener is removed`);
      assert.equal(outer.signal.aborted, false, "the caller's signal is the caller's");
      await worker.stop();
    }
  });

  test("a schedule the cluster's maxStep forbids, found after the claim: the lease is released", async () => {
    const store = new MemoryStore();
    const clock = new FakeClock();
    // 9 s is long enough to claim, but a renewal every 4 s leaves no time for a second attempt.
    const campaign = new Leases(store, { clock }).campaign("leader", {
      holder: "a",
      duration: "9s",
      renewEvery: "4s",
      keepTime: false,
    });
    await clock.run(100, 10);
    assert.deepEqual(campaign.state, { role: "stopped" });
    const { lease } = await store.leases.readLease("leader");
    assert.equal(lease?.token, 1n, "it had claimed");
    assert.equal(lease?.holder, "", "and released");
    await assert.rejects(
      campaign.stop(),
      (err: unknown) => err instanceof ConfigError && err.field === "renewEvery",
    );
  });

  test("an iteration begun after the campaign failed sees it stopped, then throws the error", async () => {
    const leases = new Leases(new MemoryStore(`election-short-late-${process.pid}`));
    const campaign = leases.campaign("l", { holder: "a", duration: "1s", keepTime: false });
    await settle();
    assert.deepEqual(campaign.state, { role: "stopped" });
    const it = campaign[Symbol.asyncIterator]();
    assert.deepEqual(await it.next(), { value: { role: "stopped" }, done: false });
    const second = await Promise.race([
      it.next().then(
        () => "a value",
        (err: unknown) => err,
      ),
      settle().then(() => "still waiting"),
    ]);
    assert.match(String(second), /too short/);
    await assert.rejects(campaign.stop(), /too short/);
  });
});

describe("leader election: between tenures", () => {
  test("a leader that lost its lease is a follower that knows no leader, then claims again", async () => {
    const clock = new FakeClock();
    const name = `election-lost-${process.pid}-${n++}`;
    const worker = startUpdater(new MemoryStore(name), { clock, random: () => 0 });
    const store = new MemoryStore(name);
    const leases = new Leases(store, { clock });
    // The state the campaign is in at each of its claims.
    const atClaim: Array<ElectionState | undefined> = [];
    let campaign: Campaign | undefined;
    const claimer: CampaignLeases = {
      clock,
      claim: (...args) => {
        atClaim.push(campaign?.state);
        return leases.claim(...args);
      },
      waitUntilExpired: (lease, options) => leases.waitUntilExpired(lease, options),
    };
    campaign = new Campaign(claimer, "leader", { holder: "a", duration: "9s", keepTime: false });
    await clock.run(100, 10);
    assert.equal(role(campaign), "leader");
    // An operator hands the lease to "c": a's next renewal finds it lost.
    const read = await store.leases.readLease("leader");
    assert.ok(read.lease && read.time !== undefined);
    const written = await store.leases.writeLease(
      {
        ...read.lease,
        holder: "c",
        newToken: true,
        start: read.time,
        expiry: read.time + 3_600n * 1_000_000_000n,
      },
      read.lease.version,
    );
    assert.ok(written);
    await clock.run(5_000, 10);
    assert.equal(atClaim.length, 2, "it claimed again");
    assert.deepEqual(atClaim[1], { role: "follower", leader: undefined });
    const now = campaign.state;
    assert.ok(now.role === "follower", now.role);
    assert.equal(now.leader?.holder, "c");
    assert.equal(now.leader?.token, written.token);
    await campaign.stop();
    assert.deepEqual(campaign.state, { role: "stopped" });
    await worker.stop();
  });
});

/** A lease as a claimer reports it while the campaign waits. */
const seen = (holder: string, token: bigint, expiry = 10_000_000_000n): LeaseInfo => ({
  name: "l",
  holder,
  token,
  start: 0n,
  expiry,
  pins: [],
  time: 0n,
  free: false,
});

/**
 * A claimer whose lease is held by "a" (token 1) and whose wait ends only when the campaign
 * stops; the test calls the `onChange` the campaign gave it.
 */
function scripted(keepTime?: CampaignLeases["keepTime"]) {
  const clock = new FakeClock();
  const calls = {
    claims: 0,
    onChange: undefined as ((lease: LeaseInfo | undefined) => void) | undefined,
  };
  const leases: CampaignLeases = {
    clock,
    async claim(name) {
      calls.claims++;
      throw new LeaseHeldError(
        { name, holder: "a", token: 1n, expiry: 10_000_000_000n, pinned: false },
        0n,
      );
    },
    waitUntilExpired(_name, options) {
      calls.onChange = options?.onChange;
      const signal = options?.signal;
      return new Promise((_, reject) => {
        signal?.addEventListener("abort", () => reject(signal.reason), { once: true });
      });
    },
    ...(keepTime ? { keepTime } : {}),
  };
  return { clock, leases, calls };
}

describe("leader election: a follower's view of the leader", () => {
  test("a new state only when the leader or its token changes", async () => {
    const { leases, calls } = scripted();
    const campaign = new Campaign(leases, "l", { holder: "me", duration: "9s", keepTime: false });
    await settle();
    assert.equal(calls.claims, 1);
    const first = campaign.state;
    assert.ok(first.role === "follower" && first.leader?.holder === "a");
    assert.equal(first.leader.token, 1n);
    const report = calls.onChange;
    assert.ok(report);
    report(seen("a", 1n, 20_000_000_000n)); // the same tenure, renewed: nothing new
    assert.equal(campaign.state, first, "the same state");
    report(seen("b", 1n)); // another holder (a claimer's report; stores give it a new token)
    const second = campaign.state;
    assert.ok(second.role === "follower" && second.leader?.holder === "b");
    report(seen("b", 2n)); // a new tenure of the same holder
    const third = campaign.state;
    assert.ok(third !== second && third.role === "follower" && third.leader?.token === 2n);
    report(undefined); // nobody holds it
    const fourth = campaign.state;
    assert.deepEqual(fourth, { role: "follower", leader: undefined });
    report(undefined);
    assert.equal(campaign.state, fourth, "still nobody: the same state");
    await campaign.stop();
    assert.deepEqual(campaign.state, { role: "stopped" });
  });
});

describe("leader election: the stand-by worker", () => {
  test("a claimer without keepTime campaigns all the same", async () => {
    const { leases, calls } = scripted();
    const campaign = new Campaign(leases, "l", { holder: "me", duration: "9s" });
    await settle();
    assert.equal(calls.claims, 1);
    assert.equal(campaign.state.role, "follower");
    await campaign.stop();
  });

  test("stop() stops the worker before it returns, even one still starting", async () => {
    for (const starting of [false, true]) {
      let stops = 0;
      const worker = {
        stop: async () => {
          await settle();
          stops++;
        },
      };
      // A worker that starts at once, or one whose start ends only when its signal fires.
      const { leases, calls } = scripted(({ signal }) =>
        starting
          ? new Promise((resolve) => {
              signal?.addEventListener("abort", () => resolve(worker), { once: true });
            })
          : Promise.resolve(worker),
      );
      const campaign = new Campaign(leases, "l", { holder: "me", duration: "9s" });
      await settle();
      assert.equal(calls.claims, starting ? 0 : 1, "a campaign starts once its worker has");
      assert.equal(stops, 0);
      const stopped = await Promise.race([
        campaign.stop().then(() => "stopped"),
        settle()
          .then(() => settle())
          .then(() => "still stopping"),
      ]);
      assert.equal(stopped, "stopped", `starting: ${starting}`);
      assert.equal(stops, 1, "the worker was stopped");
      assert.deepEqual(campaign.state, { role: "stopped" });
    }
  });
});
