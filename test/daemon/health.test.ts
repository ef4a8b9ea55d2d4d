// What /healthz tells an operator: when the clock last moved, by the wall clock and as an
// age, and why the daemon is unhealthy in words about the clock and the store, not about
// the library's methods.
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import Database from "better-sqlite3";
import {
  ClockRecordMissingError,
  describe as describeError,
  InvalidUpdaterError,
  StoreError,
} from "../../src/errors.js";
import { HealthJudge, operatorMessage } from "../../src/service/health.js";
import { workerSettings } from "../../src/worker-settings.js";
import { STARTING, type WorkerStatus } from "../../src/worker-status.js";
import { Daemon, eventually } from "../helpers/daemon.js";

const SECOND = 1_000_000_000n;
const judge = new HealthJudge(workerSettings(), 0n);
const status = (fields: Partial<WorkerStatus>): WorkerStatus => ({ ...STARTING, ...fields });

/** The reason /healthz gives for a worker in error with `err`. */
function reasonFor(err: Error, retryable = true): string {
  const health = judge.judge(
    status({
      role: "error",
      lastError: describeError(err),
      lastErrorRetryable: retryable,
      lastChangeAt: 0n,
    }),
    SECOND,
  );
  assert.equal(health.ok, false);
  return health.reason as string;
}

describe("the reason, in an operator's terms", () => {
  test("a failed updater's advice to the programmer is dropped; the store's method is said as what failed", () => {
    const store = new StoreError(
      "postgres",
      "ensureMaxStep",
      'password authentication failed for user "clock" (28P01)',
      { retryable: false },
    );
    const reason = reasonFor(new InvalidUpdaterError(store), false);
    assert.doesNotMatch(reason, /create a new updater|updater is no longer valid/);
    assert.doesNotMatch(reason, /ensureMaxStep/);
    assert.equal(
      reason,
      `could not store the cluster's maxStep (postgres store): password authentication failed for user "clock" (28P01); the daemon keeps retrying, but this will not mend by itself: fix the store or its configuration`,
    );
  });

  test("every operation a store names becomes what the daemon was doing", () => {
    for (const [operation, doing] of [
      ["advanceClock", "advance the clock"],
      ["compareAndSwap", "advance the clock"],
      ["readClock", "read the clock"],
      ["resume", "read the clock"],
      ["open", "open the store"],
      ["ensure", "create the clock record"],
      ["swapMaxStep", "change the cluster's maxStep"],
      ["somethingNew", "use the store"],
    ]) {
      const reason = reasonFor(new StoreError("etcd", operation as string, "no answer"));
      assert.equal(
        reason,
        `could not ${doing} (etcd store): no answer; the daemon keeps retrying`,
        operation,
      );
    }
  });

  test("a record gone keeps the store's own advice; a watch that broke is said plainly", () => {
    const gone = reasonFor(new ClockRecordMissingError("sqlite", "read", 5n), false);
    assert.match(gone, /^could not read the clock \(sqlite store\): the clock record is gone/);
    assert.match(gone, /restore the record from a backup/);
    assert.equal(
      operatorMessage("watch failed, reading instead: etcd store: watch failed: lost"),
      "watching the clock failed, so the daemon reads it instead: could not watch the clock (etcd store): lost",
    );
  });

  test("a clock that stood still too long, and a daemon that stops, are said as such", () => {
    const still = judge.judge(status({ role: "standby", lastChangeAt: 0n }), 10n * SECOND);
    assert.equal(still.ok, false);
    assert.equal(
      still.reason,
      "global time has not moved for 10s, longer than the failover bound (3s), within which a stand-by would have taken over: no daemon advances this clock, or this one cannot see it move",
    );
    const stopped = judge.judge(status({ role: "stopped", lastChangeAt: 0n }), SECOND);
    assert.equal(stopped.reason, "the daemon is stopping: it keeps the clock no more");
  });
});

describe("lastChangeAt", () => {
  test("is the wall-clock time the monotonic reading stands for, with its age in ms", () => {
    const wall = Date.parse("2030-01-02T03:04:05.000Z");
    const h = judge.judge(status({ role: "active", lastChangeAt: 7n * SECOND }), 9n * SECOND, wall);
    assert.equal(h.ok, true);
    assert.equal(h.lastChangeAt, "2030-01-02T03:04:03.000Z");
    assert.equal(h.lastChangeAgoMs, 2000);
  });

  test("is null until the worker has seen the clock", () => {
    const h = judge.judge(status({ role: "starting" }), SECOND);
    assert.equal(h.lastChangeAt, null);
    assert.equal(h.lastChangeAgoMs, null);
  });
});

describe("/healthz of a running daemon", { timeout: 60_000 }, () => {
  let dir: string;
  let daemon: Daemon;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), "globalclock-health-"));
    daemon = new Daemon(`sqlite:${join(dir, "clock.db")}`, [
      "--interval",
      "100ms",
      "--listen",
      "127.0.0.1:0",
    ]);
  });
  after(async () => {
    daemon.kill("SIGKILL");
    await daemon.exited;
    rmSync(dir, { recursive: true, force: true });
  });

  test("shows lastChangeAt as an ISO time of the daemon's wall clock, and lastChangeAgoMs", async () => {
    await daemon.waitFor((l) => l.event === "role" && l.role === "active");
    const before = Date.now();
    const res = await daemon.get("/healthz");
    assert.equal(res.status, 200, res.text);
    const body = JSON.parse(res.text) as { lastChangeAt: string; lastChangeAgoMs: number };
    assert.match(body.lastChangeAt, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
    assert.equal(typeof body.lastChangeAgoMs, "number");
    assert.ok(body.lastChangeAgoMs >= 0 && body.lastChangeAgoMs < 3000, res.text);
    const at = Date.parse(body.lastChangeAt);
    assert.ok(Math.abs(at + body.lastChangeAgoMs - before) < 2000, res.text);
  });

  test("a record deleted: reason and lastError say what the daemon could not do, not which method failed", async () => {
    const db = new Database(join(dir, "clock.db"));
    const row = db.prepare("SELECT id, time FROM globalclock").get() as {
      id: string;
      time: number;
    };
    try {
      db.prepare("DELETE FROM globalclock").run();
      const body = await eventually(async () => {
        const h = await daemon.get("/healthz");
        return h.status === 503 && (JSON.parse(h.text) as { reason: string; lastError: string });
      }, "503 once the record is gone");
      for (const text of [body.reason, body.lastError]) {
        assert.match(
          text,
          /^could not (read|advance) the clock \(sqlite store\): the clock record is gone/,
        );
        assert.doesNotMatch(text, /create a new updater|updater is no longer valid|\w+ failed: /);
      }
      assert.match(body.reason, /; the daemon keeps retrying, but this will not mend by itself/);
    } finally {
      db.prepare("INSERT INTO globalclock (id, time) VALUES (?, ?)").run(row.id, row.time);
      db.close();
    }
    await eventually(async () => (await daemon.get("/healthz")).status === 200, "healthy again");
  });
});
