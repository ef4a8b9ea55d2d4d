// Leader election on a fake monotonic clock, with a real updater worker keeping global time.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import {
  type Campaign,
  ConfigError,
  type ElectionState,
  Leases,
  MemoryStore,
  StoreError,
} from "../../src/index.js";
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
