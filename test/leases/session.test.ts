// Sessions (src/leases/session.ts) on a fake monotonic clock and the memory store: one write
// per renewal however many leases, an outage that hands nothing over, and the race between
// a holder's late renewal and a rival's end of its session.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { infoLine, showInfo } from "../../src/cli/lease-commands.js";
import {
  LeaseHeldError,
  LeaseLostError,
  Leases,
  MemoryStore,
  StoreError,
} from "../../src/index.js";
import type { LeaseRecord } from "../../src/lease-store.js";
import { eventually } from "../helpers/daemon.js";
import { FakeClock, settle } from "../helpers/fake-clock.js";

const S = 1_000_000_000n;
let n = 0;

function setup() {
  const clock = new FakeClock();
  const store = new MemoryStore(`session-${process.pid}-${n++}`);
  const leases = new Leases(store, { clock, maxStep: "1s" });
  // A rival on the same store, with its own (real) clock.
  const rival = new Leases(store);
  /** Moves the stored global time, as an updater would. */
  const setTime = async (time: bigint) => {
    const now = await store.ensure();
    assert.equal(await store.compareAndSwap(now, time), true);
  };
  return { clock, store, leases, rival, setTime };
}

/** Every lease read on `store` fails, as with the store down, until end(). */
function storeDown(store: MemoryStore): { end(): void } {
  const seam = store.leases;
  const readLease = seam.readLease.bind(seam);
  let down = true;
  seam.readLease = (name, signal) =>
    down
      ? Promise.reject(new StoreError("memory", "readLease", "injected: the store is down"))
      : readLease(name, signal);
  return {
    end: () => {
      down = false;
    },
  };
}

describe("sessions: renewals", () => {
  test("renewals run by themselves, one write each, whatever the number of leases held", async () => {
    const { clock, store, leases } = setup();
    const session = await leases.session("alice", { ttl: "9s", renewEvery: "2s" });
    const held = [];
    for (let i = 0; i < 50; i++) held.push(await session.claim(`p/${i}`));
    const writes: string[] = [];
    const write = store.leases.writeLease.bind(store.leases);
    store.leases.writeLease = (w, version, signal) => {
      writes.push(w.name);
      return write(w, version, signal);
    };
    await clock.run(10_050, 50); // five renewals
    assert.equal(writes.length, 5, `${writes.length} writes`);
    assert.ok(
      writes.every((name) => name === session.name),
      "each the session's record",
    );
    assert.ok(session.held && held.every((l) => l.held && !l.signal.aborted));
    await session.close();
    assert.equal(writes.length, 6, "closing is one write too");
    await store.close();
  });

  test("an outage longer than the session: its signal fires, nothing is handed over, and it resumes with the same tokens", async () => {
    const { clock, store, leases, rival, setTime } = setup();
    await setTime(100n * S);
    const resumed: bigint[] = [];
    const session = await leases.session("alice", {
      ttl: "9s",
      onResume: (s) => resumed.push(s.deadline),
    });
    const held = [await session.claim("o/1"), await session.claim("o/2")];
    const first = session.signal;
    const outage = storeDown(store);
    // Three sessions' worth of the holder's time with the store down; no updater runs either,
    // so global time stands still.
    await clock.run(27_000, 50);
    assert.ok(first.aborted, "the deadline passed: the holder stopped");
    assert.ok(held.every((l) => !l.held && l.signal.aborted));
    await assert.rejects(session.claim("o/3"), LeaseLostError);
    outage.end();
    await assert.rejects(rival.claim("o/1", "bob", "9s"), LeaseHeldError, "nothing expired");
    await clock.run(3_000, 50); // the next retry finds the store back
    assert.equal(session.resumes, 1);
    assert.equal(resumed.length, 1);
    assert.ok(session.held && !session.signal.aborted, "a new signal");
    assert.notEqual(session.signal, first);
    for (const l of held) {
      assert.ok(l.held && !l.signal.aborted, `${l.name} held again`);
      assert.equal((await rival.get(l.name))?.token, l.token, `${l.name}: the same token`);
    }
    await session.close();
    await store.close();
  });

  test("a session that was ended while it was away does not resume: it is lost, and says so", async () => {
    const { clock, store, leases, rival, setTime } = setup();
    await setTime(100n * S);
    const session = await leases.session("alice", { ttl: "9s" });
    const job = await session.claim("e/1");
    const seam = store.leases;
    const writeLease = seam.writeLease.bind(seam);
    let down = true;
    seam.writeLease = (w, version, signal) =>
      down && w.name === session.name && w.holder === "alice"
        ? Promise.reject(new StoreError("memory", "writeLease", "injected: no answer"))
        : writeLease(w, version, signal);
    await clock.run(9_000, 50);
    assert.ok(session.signal.aborted);
    await setTime(110n * S); // global time passed the session's expiry
    const taken = await rival.claim("e/1", "bob", "9s");
    assert.ok(taken.token > job.token);
    down = false;
    await clock.run(3_000, 50);
    assert.equal(session.resumes, 0);
    assert.ok(session.lost instanceof LeaseLostError, String(session.lost));
    assert.ok(!job.held);
    await session.close();
    assert.equal((await rival.get("e/1"))?.holder, "bob", "closing a lost session frees nothing");
    await store.close();
  });
});

describe("sessions: a rival ends the session before it takes a lease", () => {
  test("a renewal read before the rival's end and written after it is refused", async () => {
    const { store, leases, rival, setTime } = setup();
    await setTime(100n * S);
    const session = await leases.session("alice", { ttl: "9s" });
    const job = await session.claim("x/1");
    await setTime(109n * S); // expired, not ended
    // The holder's renewal reads its session, then waits until the rival has taken the lease.
    const seam = store.leases;
    const writeLease = seam.writeLease.bind(seam);
    let release: () => void = () => {};
    const gate = new Promise<void>((r) => {
      release = r;
    });
    let paused = false;
    seam.writeLease = async (w, version, signal) => {
      if (w.name === session.name && w.holder === "alice" && !paused) {
        paused = true;
        await gate;
      }
      return writeLease(w, version, signal);
    };
    const renewal = session.renew();
    await settle();
    assert.ok(paused, "the renewal read, and waits to write");
    const taken = await rival.claim("x/1", "bob", "9s");
    release();
    await assert.rejects(renewal, LeaseLostError);
    assert.ok(taken.token > job.token);
    const record = (await seam.readLease(session.name)).lease as LeaseRecord;
    assert.equal(record.holder, "", "ended by the rival");
    assert.equal((await rival.get("x/1"))?.holder, "bob");
    assert.ok(session.lost && session.signal.aborted);
    await store.close();
  });

  test("a lease held through a session another holder cannot extend or release", async () => {
    const { store, leases, rival } = setup();
    const session = await leases.session("alice", { ttl: "9s" });
    const job = await session.claim("y/1");
    await assert.rejects(rival.extend("y/1", "alice", job.token, "9s"), LeaseLostError);
    await assert.rejects(rival.revoke("y/1", "alice", job.token), LeaseLostError);
    assert.equal((await rival.get("y/1"))?.holder, "alice");
    await session.close();
    await store.close();
  });

  test("settings are checked: a ttl below 3 × maxStep, renewals that do not fit, a bad holder", async () => {
    const { store, leases } = setup();
    await assert.rejects(leases.session("alice", { ttl: "2s" }), /at least 3 × maxStep/);
    await assert.rejects(leases.session("alice", { ttl: "9s", renewEvery: "5s" }), /renewEvery/);
    await assert.rejects(leases.session("", { ttl: "9s" }), /holder/);
    await assert.rejects(leases.session("alice", { ttl: "-1s" }), /ttl|duration/);
    assert.deepEqual(
      (await store.leases.listLeases("")).leases.filter((r) => r.holder !== ""),
      [],
      "nothing left held",
    );
    await store.close();
  });
});

describe("sessions: campaigns through one session", () => {
  /** The campaign's next state matching `want`. */
  async function until<T extends { role: string }>(
    campaign: AsyncIterable<T>,
    want: (s: T) => boolean,
  ): Promise<T> {
    for await (const state of campaign) if (want(state)) return state;
    throw new Error("the campaign stopped first");
  }

  test("one session leads many names; another's campaigns follow it, and take over when it closes", async () => {
    const store = new MemoryStore(`session-${process.pid}-${n++}`);
    const leases = new Leases(store, { maxStep: "1s" });
    const a = await leases.session("alice", { ttl: "9s" });
    const b = await leases.session("bob", { ttl: "9s" });
    const names = ["c/1", "c/2", "c/3"];
    const ours = names.map((name) => a.campaign(name));
    const led = await Promise.all(ours.map((c) => until(c, (s) => s.role === "leader")));
    const theirs = names.map((name) => b.campaign(name));
    const following = await Promise.all(
      theirs.map((c) => until(c, (s) => s.role === "follower" && s.leader !== undefined)),
    );
    for (const s of following) {
      assert.equal(s.role === "follower" && s.leader?.holder, "alice", "they know the leader");
    }
    const writes: string[] = [];
    const write = store.leases.writeLease.bind(store.leases);
    store.leases.writeLease = (w, version, signal) => {
      writes.push(w.name);
      return write(w, version, signal);
    };
    await a.renew();
    assert.deepEqual(writes, [a.name], "three leaders renewed by one write");
    await a.close(); // every lease of alice's released at once
    const taken = await Promise.all(theirs.map((c) => until(c, (s) => s.role === "leader")));
    taken.forEach((s, i) => {
      const before = led[i];
      assert.ok(s.role === "leader" && before?.role === "leader");
      assert.ok(s.lease.token > before.lease.token, "a greater token");
      assert.ok(before.lease.signal.aborted, "the old leader was told to stop");
    });
    for (const c of ours) {
      await c.stop();
      assert.equal(c.state.role, "stopped", "a closed session's campaigns stop");
    }
    for (const c of theirs) await c.stop();
    for (const name of names)
      assert.equal((await leases.get(name))?.free, true, "released at stop");
    await b.close();
    await store.close();
  });

  test("a leader whose session's deadline passes steps down, and leads again with the same token when the session resumes", async () => {
    const { clock, store, leases } = setup();
    const session = await leases.session("alice", { ttl: "9s" });
    const campaign = session.campaign("lead");
    const first = await until(campaign, (s) => s.role === "leader");
    if (first.role !== "leader") throw new Error("not a leader");
    const outage = storeDown(store);
    await clock.run(12_000, 50);
    assert.ok(first.lease.signal.aborted, "demoted at the deadline");
    const demoted = campaign.state;
    assert.equal(demoted.role, "follower");
    outage.end();
    await clock.run(12_000, 50);
    const again = campaign.state;
    assert.ok(again.role === "leader", `now ${again.role}`);
    assert.equal(again.lease.token, first.lease.token, "the same token");
    assert.equal(session.resumes, 1);
    await campaign.stop();
    await session.close();
    await store.close();
  });
});

describe("sessions: keeping time", () => {
  test("keepTime: a stand-by updater runs while the session is open, so its leases can expire", async () => {
    const store = new MemoryStore(`session-${process.pid}-${n++}`);
    const leases = new Leases(store);
    const session = await leases.session("alice", { ttl: "5s", keepTime: true });
    const start = (await store.read()) ?? 0n;
    await eventually(async () => ((await store.read()) ?? 0n) > start, "global time to move");
    await session.close();
    assert.equal((await store.leases.readLease(session.name)).lease?.holder, "", "released");
    await store.close();
  });
});

describe("sessions: what readers show", () => {
  test("a lease held through a session shows the session's holder, expiry and name, printable", async () => {
    const { store, leases, setTime } = setup();
    await setTime(100n * S);
    const session = await leases.session("alice", { ttl: "9s" });
    await session.claim("r/1");
    const info = await leases.get("r/1");
    assert.ok(info);
    const id = session.name.slice(1);
    assert.match(id, /^session\/alice\/[0-9a-f]{16}$/);
    assert.deepEqual(
      { holder: info.holder, expiry: info.expiry, session: info.session },
      { holder: "alice", expiry: 109n * S, session: session.name },
    );
    assert.equal(showInfo(info).session, id);
    assert.match(
      infoLine(info),
      new RegExp(`held by alice through ${id}  token \\d+  expires in 9s`),
    );
    assert.equal(
      showInfo(
        (await leases.claim("plain", "bob", "9s")) &&
          ((await leases.get("plain")) as NonNullable<typeof info>),
      ).session,
      undefined,
    );
    await session.close();
    assert.match(infoLine((await leases.get("r/1")) as NonNullable<typeof info>), /released|free/);
    await store.close();
  });
});
