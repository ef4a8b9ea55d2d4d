// A held Lease on a fake monotonic clock: its deadline, its signal, extend and release.
// Global time stands still (no worker), so the deadline is t0 + (expiry − time − maxStep)
// shrunk by the drift allowance, and every extend recomputes it from a later t0.
import assert from "node:assert/strict";
import { test } from "node:test";
import { LeaseLostError, Leases, MemoryStore, StoreError } from "../../src/index.js";
import { FakeClock, settle } from "../helpers/fake-clock.js";

const S = 1_000_000_000n;
let n = 0;

function setup() {
  const clock = new FakeClock();
  const store = new MemoryStore(`lease-${process.pid}-${n++}`);
  const leases = new Leases(store, { clock, maxStep: "1s" });
  return { clock, store, leases };
}

/**
 * 9 s of global time less maxStep (1 s), times (1 − ρ) / (1 + ρ) for 500 ppm of drift on
 * every machine: global time may run fast by ρ, this clock slow by ρ.
 */
const LEFT = ((9n * S - S) * 999_500n) / 1_000_500n;

test("the signal fires at the deadline, not before; then the lease is gone", async () => {
  const { clock, store, leases } = setup();
  const lease = await leases.claim("job", "a", "9s");
  assert.equal(lease.deadline, LEFT);
  assert.equal(lease.remaining(), LEFT);
  await clock.advance(LEFT - 1n);
  assert.ok(lease.held);
  assert.ok(!lease.signal.aborted);
  await clock.advance(1n);
  assert.ok(!lease.held);
  assert.ok(lease.signal.aborted);
  assert.ok(lease.signal.reason instanceof LeaseLostError);
  assert.match(String(lease.signal.reason.message), /deadline passed before it was extended/);
  await assert.rejects(lease.extend("9s"), LeaseLostError);
  assert.equal(clock.pending, 0, "no timer left behind");
  await leases.close();
  await store.close();
});

test("an extend moves the deadline: the timer that fires at the old one waits again", async () => {
  const { clock, store, leases } = setup();
  const lease = await leases.claim("job", "a", "9s");
  assert.equal(clock.pending, 0, "no timer until someone asks for the signal");
  assert.ok(!lease.signal.aborted); // a listener's first look arms it
  await clock.advance(2n * S);
  await lease.extend("9s");
  assert.equal(lease.deadline, 2n * S + LEFT);
  assert.equal(clock.pending, 1, "one timer per lease");
  await clock.advance(LEFT - 2n * S); // the first deadline
  assert.ok(lease.held);
  assert.ok(!lease.signal.aborted, "not at the deadline an extend moved");
  assert.equal(clock.pending, 1, "armed again for the rest");
  await clock.advance(2n * S);
  assert.ok(lease.signal.aborted);
  assert.equal(clock.pending, 0);
  await leases.close();
  await store.close();
});

test("release: the signal fires at once with the reason, the timer is gone, the token is kept", async () => {
  const { clock, store, leases } = setup();
  const lease = await leases.claim("job", "a", "9s");
  let reason: unknown;
  lease.signal.addEventListener("abort", () => {
    reason = lease.signal.reason;
  });
  await lease.release();
  assert.ok(reason instanceof LeaseLostError);
  assert.match(reason.message, /released by its holder/);
  assert.ok(!lease.held);
  assert.equal(clock.pending, 0, "the deadline timer was cancelled");
  await assert.rejects(lease.extend("9s"), /released by its holder/);
  const info = await leases.get("job");
  assert.equal(info?.holder, "");
  assert.equal(info?.token, 1n);
  const next = await leases.claim("job", "b", "9s");
  assert.equal(next.token, 2n);
  await next.release();
  await leases.close();
  await store.close();
});

test("held until the deadline exactly: remaining() counts down to 0, then below", async () => {
  const { clock, store, leases } = setup();
  const lease = await leases.claim("job", "a", "9s");
  await clock.advance(LEFT - 5n);
  assert.equal(lease.remaining(), 5n);
  assert.ok(lease.held);
  await clock.advance(5n);
  assert.equal(lease.remaining(), 0n);
  assert.equal(lease.held, false, "not held at the deadline itself");
  await clock.advance(7n);
  assert.equal(lease.remaining(), -7n);
  await leases.close();
  await store.close();
});

test("an extend whose write outlives the deadline fails, and the lease stays lost", async () => {
  const { clock, store, leases } = setup();
  const lease = await leases.claim("job", "a", "9s");
  const seam = store.leases;
  const write = seam.writeLease.bind(seam);
  let release: () => void = () => {};
  seam.writeLease = async (...args) => {
    await new Promise<void>((resolve) => {
      release = resolve;
    });
    return write(...args);
  };
  const extending = lease.extend("9s");
  await clock.advance(LEFT); // the deadline passes while the write is in flight
  release();
  await assert.rejects(extending, (e: unknown) => {
    assert.ok(e instanceof LeaseLostError);
    assert.match(e.message, /its deadline passed before it was extended/);
    return true;
  });
  assert.ok(lease.signal.aborted && !lease.held);
  assert.equal(lease.deadline, LEFT, "the deadline the holder was told is kept");
  await leases.close();
  await store.close();
});

test("an extend that would give an earlier deadline keeps the later one", async () => {
  const { clock, store, leases } = setup();
  const lease = await leases.claim("job", "a", "60s");
  const first = lease.deadline;
  await clock.advance(S);
  // An operator raises maxStep: the extend's own deadline, from its later read, is earlier.
  assert.ok(await leases.setMaxStep(S, 5n * S));
  await lease.extend("15s"); // the expiry stays (never shortened)
  assert.equal(lease.expiry, 60n * S);
  assert.equal(lease.maxStep, 5n * S);
  assert.equal(lease.deadline, first, "the later of the two deadlines, both valid");
  await leases.close();
  await store.close();
});

test("`await using`: released at the end of the block; a lease already lost is left as it is", async () => {
  const { clock, store, leases } = setup();
  {
    await using lease = await leases.claim("job", "a", "9s");
    assert.ok(lease.held);
  }
  assert.equal((await leases.get("job"))?.holder, "", "released");
  {
    await using lost = await leases.claim("job", "b", "9s");
    await leases.revoke("job", "b", lost.token); // released behind its back: no error at the end
    await clock.advance(1n);
  }
  await leases.close();
  await store.close();
});

test("held goes by the clock: false at the deadline even before its timer has had its turn", async () => {
  const { clock, store, leases } = setup();
  const lease = await leases.claim("job", "a", "9s");
  assert.ok(!lease.signal.aborted); // a listener's first look arms its timer
  await clock.advance(LEFT - 1n);
  assert.ok(lease.held);
  const moving = clock.advance(1n); // the clock reads the deadline; the timer wakes later
  assert.equal(lease.held, false, "not held at the deadline");
  assert.ok(!lease.signal.aborted, "its timer has not fired yet");
  await moving;
  assert.ok(lease.signal.aborted);
  await leases.close();
  await store.close();
});

test("a claim that returns past its deadline: lost at once, and the clock never asked to wait less than 0", async () => {
  const asked: bigint[] = [];
  class Recording extends FakeClock {
    override sleep(ns: bigint, signal: AbortSignal): Promise<boolean> {
      asked.push(ns);
      return super.sleep(ns, signal);
    }
  }
  const clock = new Recording();
  const store = new MemoryStore(`lease-${process.pid}-${n++}`);
  const leases = new Leases(store, { clock, maxStep: "1s" });
  const seam = store.leases;
  const write = seam.writeLease.bind(seam);
  let resume: (() => void) | undefined;
  seam.writeLease = async (...args) => {
    await new Promise<void>((resolve) => {
      resume = resolve;
    });
    return write(...args);
  };
  const claiming = leases.claim("job", "a", "9s");
  await settle();
  assert.ok(resume, "the claim's write is in flight");
  await clock.advance(LEFT + 5n); // the write is slow: the deadline passes meanwhile
  resume();
  const lease = await claiming;
  assert.equal(lease.remaining(), -5n);
  assert.equal(lease.held, false);
  assert.ok(lease.signal.aborted, "its signal, first asked for past the deadline, has fired");
  assert.match(String(lease.signal.reason), /deadline passed before it was extended/);
  assert.deepEqual(asked, [], "and no timer was asked for");
  await leases.close();
  await store.close();
});

test("`await using` on a lease another took meanwhile: its LeaseLostError is swallowed; a store error is not", async () => {
  const { store, leases } = setup();
  {
    await using lease = await leases.claim("job", "a", "9s");
    await leases.revoke("job", "a", lease.token); // as an operator would
    await leases.claim("job", "b", "9s");
    await assert.rejects(lease.release(), /it is held by "b"/); // what the end of the block meets
  }
  assert.equal((await leases.get("job"))?.holder, "b", "b's lease untouched");
  const seam = store.leases;
  const read = seam.readLease.bind(seam);
  await assert.rejects(
    async () => {
      await using lease = await leases.claim("other", "a", "9s");
      assert.ok(lease.held);
      seam.readLease = () =>
        Promise.reject(new StoreError("memory", "readLease", "disk gone", { retryable: false }));
    },
    (e: unknown) => e instanceof StoreError && /disk gone/.test(e.message),
  );
  seam.readLease = read;
  await leases.close();
  await store.close();
});

test("a lease whose signal nobody asks for costs no timer; asked for after a release, it has fired with the reason", async () => {
  const { clock, store, leases } = setup();
  const lease = await leases.claim("job", "a", "9s");
  await lease.extend("9s");
  assert.equal(clock.pending, 0, "no timer");
  await lease.release();
  assert.ok(!lease.held);
  assert.ok(lease.signal.aborted);
  assert.match(String(lease.signal.reason), /released by its holder/);
  assert.equal(clock.pending, 0);
  const other = await leases.claim("other", "a", "9s");
  await clock.advance(LEFT);
  assert.equal(other.held, false, "held goes by the clock, timer or not");
  await assert.rejects(other.extend("9s"), /deadline passed/);
  assert.match(String(other.signal.reason), /deadline passed/, "the first reason stays");
  await leases.close();
  await store.close();
});
