/**
 * globalclock/testing: virtual time in one process (a real worker, Leases and campaigns on
 * a virtual clock, holders paused as SIGSTOP pauses them) and a store moved by hand for
 * tests that span processes.
 */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { GlobalClockError, openUpdater } from "../../src/index.js";
import { manualClock, VirtualClock, virtualTime } from "../../src/testing/index.js";
import { buildIfStale, startCli } from "../helpers/cli.js";

describe("VirtualClock", () => {
  test("wakes timers at their own instants, earliest first, and only when advanced", async () => {
    const clock = new VirtualClock();
    const woke: Array<[string, bigint]> = [];
    const never = new AbortController().signal;
    const at = (name: string, ns: bigint) =>
      clock.sleep(ns, never).then((fired) => fired && woke.push([name, clock.now()]));
    const all = Promise.all([at("c", 300n), at("a", 100n), at("b", 200n), at("a2", 100n)]);
    await new Promise((r) => setImmediate(r));
    assert.deepEqual(woke, []);
    await clock.advance(250n);
    assert.deepEqual(woke, [
      ["a", 100n],
      ["a2", 100n],
      ["b", 200n],
    ]);
    assert.equal(clock.now(), 250n);
    await clock.advance("1ms");
    await all;
    assert.deepEqual(woke.at(-1), ["c", 300n]);
    assert.equal(clock.pending, 0);
  });

  test("an aborted sleep resolves false and leaves no timer", async () => {
    const clock = new VirtualClock();
    const stop = new AbortController();
    const slept = clock.sleep(1_000n, stop.signal);
    stop.abort();
    assert.equal(await slept, false);
    assert.equal(clock.pending, 0);
  });

  for (const move of ["advance", "jump"] as const) {
    test(`a loop of zero-length waits is an error, not a hang (${move})`, async () => {
      const clock = new VirtualClock();
      const stop = new AbortController();
      (async () => {
        while (await clock.sleep(0n, stop.signal));
      })();
      await assert.rejects(clock[move]("1ms"), /more than 10000 timers woke at one instant/);
      stop.abort();
    });
  }
});

describe("virtualTime", () => {
  test("global time moves only as the test advances it, in the worker's steps", async () => {
    const time = await virtualTime({ worker: { interval: "100ms" } });
    try {
      const start = await time.now();
      await new Promise((r) => setTimeout(r, 50)); // real time moves nothing
      assert.equal(await time.now(), start);
      await time.advance("10s");
      const moved = (await time.now()) - start;
      assert.ok(moved > 9_800_000_000n && moved <= 10_000_000_000n, `moved ${moved}`);
    } finally {
      await time.close();
    }
  });

  test("a campaign's frozen leader loses to a follower only after its deadline, with a greater token", async () => {
    const time = await virtualTime();
    const a = time.process();
    const b = time.process();
    const first = a.leases().campaign("scheduler", { holder: "a", duration: "15s" });
    await time.advance("1s");
    const second = b.leases().campaign("scheduler", { holder: "b", duration: "15s" });
    try {
      await time.advance("1s");
      const leading = first.state;
      assert.equal(leading.role, "leader");
      assert.equal(second.state.role, "follower");
      if (leading.role !== "leader") return;
      const { lease } = leading;
      const stoppedAt: bigint[] = [];
      lease.signal.addEventListener("abort", () => stoppedAt.push(time.clock.now()));
      a.pause();
      assert.ok(a.paused);
      const after = await time.advanceUntilExpired("scheduler");
      assert.equal(after?.holder, "b");
      assert.ok((after?.token ?? 0n) > lease.token);
      assert.ok((after?.start ?? 0n) >= lease.expiry, "granted before the old grant expired");
      assert.equal(second.state.role, "leader");
      assert.deepEqual(stoppedAt, [], "a paused holder's timers do not run");
      a.resume();
      await time.advance("10ms");
      assert.ok(lease.signal.aborted, "resumed past its deadline, a stops at once");
    } finally {
      await first.stop();
      await second.stop();
      await time.close();
    }
  });

  test("a holder that is not paused stops at its deadline, before a rival can be granted", async () => {
    const time = await virtualTime();
    try {
      const leases = time.leases();
      const lease = await leases.claim("job", "a", "6s");
      let stoppedAt: bigint | undefined;
      lease.signal.addEventListener("abort", async () => {
        stoppedAt = await time.now();
      });
      const info = await time.advanceUntilExpired("job");
      assert.equal(info?.free, true);
      assert.ok(stoppedAt !== undefined, "the deadline fired");
      assert.ok(stoppedAt < lease.expiry, `stopped at ${stoppedAt}, expiry ${lease.expiry}`);
      const next = await time.leases().claim("job", "b", "6s");
      assert.ok(next.token > lease.token);
      await next.release();
    } finally {
      await time.close();
    }
  });

  test("advanceUntilExpired: a pinned lease and a holder that keeps renewing are errors", async () => {
    const time = await virtualTime();
    try {
      const leases = time.leases();
      await leases.claim("pinned", "a", "6s");
      await leases.pin("pinned", "operator");
      await assert.rejects(
        time.advanceUntilExpired("pinned"),
        (err: unknown) => err instanceof GlobalClockError && /pinned by operator/.test(String(err)),
      );
      const kept = leases.campaign("kept", { holder: "k", duration: "6s" });
      await time.advance("1s");
      await assert.rejects(
        time.advanceUntilExpired("kept", { within: "1m" }),
        /lease kept is still held by k \(token \d+\) after 1m of virtual time/,
      );
      await kept.stop();
      assert.equal(await time.advanceUntilExpired("never"), undefined);
    } finally {
      await time.close();
    }
  });
});

describe("manualClock", () => {
  test("another process's lease ends when the test moves global time; an updater that advanced meanwhile is seen", async () => {
    buildIfStale();
    const clock = await manualClock();
    try {
      const env = { GLOBALCLOCK_STORE: clock.url };
      const claim = await startCli(
        ["lease", "claim", "job", "--holder", "a", "--for", "1m", "--json"],
        env,
      ).done;
      assert.equal(claim.code, 0, claim.stderr);
      const token = BigInt(JSON.parse(claim.stdout).token);
      const watcher = await openUpdater(clock.url);
      const before = await clock.now();
      const ended = await clock.advanceUntilExpired("job");
      assert.equal(ended?.free, true);
      assert.ok((await clock.now()) - before >= 60_000_000_000n);
      const next = await startCli(
        ["lease", "claim", "job", "--holder", "b", "--for", "1m", "--json"],
        env,
      ).done;
      assert.equal(next.code, 0, next.stderr);
      assert.ok(BigInt(JSON.parse(next.stdout).token) > token);
      // An updater that advanced meanwhile is seen, not overwritten.
      await watcher.refresh();
      await watcher.advance("1s");
      const t = await clock.advance("3s");
      assert.equal(t, await watcher.refresh());
      await watcher.advance("1s");
      await watcher.close();
      assert.ok((await clock.advance("1ms")) > t);
    } finally {
      await clock.close();
    }
  });
});
