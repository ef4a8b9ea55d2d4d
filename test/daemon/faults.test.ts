// Three `globalclock run` processes on one SQLite file: SIGKILL the active one, SIGSTOP and
// SIGCONT others, while this process records reads. The invariants are checked on every
// pair of reads; liveness only with generous bounds (a correctness test, not a benchmark).
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { SqliteStore } from "../../src/stores/sqlite/index.js";
import { Daemon, eventually } from "../helpers/daemon.js";
import { checkHistory, recordReads } from "../helpers/history.js";

const MS = 1_000_000n;
const INTERVAL = "200ms";
const MAX_STEP = 300n * MS; // the default, 1.5 × interval

test("kill -9 and SIGSTOP/SIGCONT of workers: no decrease, no catch-up jump, another takes over", {
  timeout: 120_000,
}, async (t) => {
  const dir = mkdtempSync(join(tmpdir(), "globalclock-faults-"));
  const path = join(dir, "clock.db");
  const daemons = [0, 1, 2].map(() => new Daemon(`sqlite:${path}`, ["--interval", INTERVAL]));
  const reader = new SqliteStore({ path });
  const stop = new AbortController();
  const pause = (ms: number) => new Promise((r) => setTimeout(r, ms));
  try {
    const recording = recordReads(async (signal) => (await reader.read(signal)) ?? 0n, {
      signal: stop.signal,
      intervalMs: 2,
      source: "observer",
    });
    const active = () =>
      daemons.find(
        (d) => d.role === "active" && d.child.exitCode === null && d.child.signalCode === null,
      );
    const first = await eventually(active, "a first active worker");
    await pause(1500);

    // Marks in each log: what follows is waited for among the lines logged after them.
    const beforeKill = daemons.map((d) => d.mark());
    first.kill("SIGKILL");
    first.role = "killed";
    const second = await eventually(active, "a takeover after SIGKILL");
    await second.waitFor((l) => l.event === "takeover", {
      since: beforeKill[daemons.indexOf(second)],
    });
    await pause(1000);

    // Freeze the new active one: the third must take over; when the frozen one resumes,
    // its late timer must not add the time it was stopped.
    // (The odd pause keeps the signal off the 200 ms write cadence.)
    await pause(37);
    second.kill("SIGSTOP");
    second.role = "stopped-by-test";
    // SQLite's lock lives in the writing process: one frozen in the middle of its ~1 ms
    // write holds every writer off until it resumes. Then the takeover comes after SIGCONT.
    await pause(50);
    const frozenMidWrite = holdsWriteLock(second.pid);
    if (frozenMidWrite)
      t.diagnostic("the frozen worker holds the SQLite write lock; takeover waits for SIGCONT");
    else await eventually(active, "a takeover after SIGSTOP");
    await pause(1000);
    // Its log holds a "standby" line from its start: only one after the resume says it
    // stepped down.
    const beforeResume = second.mark();
    second.kill("SIGCONT");
    const third = frozenMidWrite
      ? await eventually(() => active() !== second && active(), "a takeover after SIGCONT")
      : active();
    await second.waitFor((l) => l.event === "role" && l.role === "standby", {
      since: beforeResume,
    });
    second.role = "standby";
    await pause(1000);

    // Freeze a stand-by, and resume it.
    second.kill("SIGSTOP");
    await pause(1000);
    second.kill("SIGCONT");
    await pause(1000);
    assert.equal(active(), third, "the third worker stayed active");

    stop.abort();
    const samples = await recording;
    const survivors = daemons.filter((d) => d !== first);
    for (const d of survivors) d.kill("SIGTERM");
    const exits = await Promise.all(survivors.map((d) => d.exited));
    assert.deepEqual(
      exits,
      [
        { code: 0, signal: null },
        { code: 0, signal: null },
      ],
      "the survivors exit 0 on SIGTERM",
    );

    const violations = checkHistory(samples, MAX_STEP);
    assert.deepEqual(violations, [], violations.join("\n"));
    const firstSample = samples[0];
    const lastSample = samples.at(-1);
    assert.ok(firstSample && lastSample && lastSample.global > firstSample.global, "time advanced");
    const takeovers = daemons.flatMap((d) => d.lines.filter((l) => l.event === "takeover"));
    assert.ok(takeovers.length >= 2, `takeovers: ${takeovers.length}`);
    for (const l of takeovers)
      assert.ok(BigInt(String(l.step)) <= MAX_STEP, `takeover step ${l.step}`);
    t.diagnostic(`${samples.length} reads, ${takeovers.length} takeovers, no violations`);
  } catch (err) {
    for (const d of daemons)
      t.diagnostic(`${d.pid} ${d.role}: ${d.lines.map((l) => JSON.stringify(l)).join("\n")}`);
    throw err;
  } finally {
    stop.abort();
    for (const d of daemons) {
      d.kill("SIGCONT");
      d.kill("SIGKILL");
    }
    await Promise.all(daemons.map((d) => d.exited));
    await reader.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

/** Whether a process holds a POSIX write lock on any file (Linux /proc/locks). */
function holdsWriteLock(pid: number): boolean {
  return readFileSync("/proc/locks", "utf8")
    .split("\n")
    .some((line) => line.includes(" WRITE ") && line.split(/\s+/).includes(String(pid)));
}
