/**
 * What operators do to a clock behind the daemons' backs, played against two real
 * `globalclock run` processes on one store: the stored time set back (a restored backup),
 * and the record deleted then restored. Each store's test file supplies raw SQL access.
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import type { TestContext } from "node:test";
import { openUpdater } from "../../src/open.js";
import { BIN, Daemon, eventually, type LogLine } from "./daemon.js";

/** A store URL, and SQL run on it through its raw driver (values as text). */
export interface RawStore {
  readonly url: string;
  query(sql: string): Promise<Array<Record<string, string>>>;
}

const S = 1_000_000_000n;
const INTERVAL = "100ms";
const MAX_STEP = 150_000_000n; // 1.5 × interval

/** The stored time, or undefined when there is no record. */
async function stored(raw: RawStore): Promise<bigint | undefined> {
  const [row] = await raw.query("SELECT time FROM globalclock");
  return row ? BigInt(row.time as string) : undefined;
}

/** Two daemons on `raw`'s store, with /metrics and /healthz, one active and one stand-by. */
async function pair(raw: RawStore): Promise<[Daemon, Daemon]> {
  const args = ["--interval", INTERVAL, "--listen", "127.0.0.1:0"];
  const daemons: [Daemon, Daemon] = [new Daemon(raw.url, args), new Daemon(raw.url, args)];
  await eventually(
    () => daemons.some((d) => d.role === "active") && daemons.some((d) => d.role === "standby"),
    "one active daemon and one stand-by",
  );
  return daemons;
}

async function stop(daemons: Daemon[]): Promise<void> {
  for (const d of daemons) d.kill("SIGTERM");
  const exits = await Promise.all(daemons.map((d) => d.exited));
  for (const [i, exit] of exits.entries())
    assert.deepEqual(exit, { code: 0, signal: null }, daemons[i]?.stderr);
}

const since = (d: Daemon, from: number, match: (l: LogLine) => boolean) =>
  d.lines.slice(from).filter(match);

/**
 * `UPDATE globalclock SET time = time - 10 s`: each daemon logs the regression at error
 * level with both times and counts it; the clock goes on from the lower time (a takeover
 * advancing from exactly that time), not from the higher one.
 */
export async function storedTimeGoesBack(t: TestContext, raw: RawStore): Promise<void> {
  const updater = await openUpdater(raw.url); // start well above the 10 s to take away
  await updater.advance(1000n * S);
  await updater.close();
  const daemons = await pair(raw);
  try {
    await eventually(async () => ((await stored(raw)) ?? 0n) > 1000n * S + S / 2n, "advances");
    const marks = daemons.map((d) => d.lines.length);
    const [row] = await raw.query(
      "UPDATE globalclock SET time = time - 10000000000 RETURNING time",
    );
    const lowered = BigInt((row as Record<string, string>).time as string);
    for (const [i, d] of daemons.entries()) {
      const line = await d.waitFor((l) => l.event === "regression", { since: marks[i] });
      assert.equal(line.level, 50, "logged at error level");
      const from = BigInt(String(line.from));
      assert.equal(BigInt(String(line.to)), lowered, "the lower time, as stored");
      assert.ok(from - lowered > 9n * S && from - lowered <= 10n * S, `from ${from}`);
      assert.match(String(line.msg), /went back from .* to .*/);
      assert.ok(since(d, marks[i] as number, (l) => l.event === "regression").length >= 1);
    }
    // The clock moves again, from the lower time: the first advance after it is a takeover
    // from exactly that time, by at most one step.
    const takeover = await eventually(
      () =>
        daemons
          .flatMap((d, i) => since(d, marks[i] as number, (l) => l.event === "takeover"))
          .at(0),
      "a takeover from the lower time",
    );
    const step = BigInt(String(takeover.step));
    assert.equal(BigInt(String(takeover.global)) - step, lowered);
    assert.ok(step > 0n && step <= MAX_STEP, `step ${step}`);
    await eventually(async () => ((await stored(raw)) ?? 0n) > lowered + 2n * MAX_STEP, "moving");
    for (const d of daemons) {
      assert.ok((await d.metric("globalclock_regressions_total")) >= 1);
      assert.equal((await d.get("/healthz")).status, 200);
    }
  } catch (err) {
    for (const d of daemons) t.diagnostic(d.lines.map((l) => JSON.stringify(l)).join("\n"));
    throw err;
  } finally {
    await stop(daemons);
  }
}

/**
 * `DELETE FROM globalclock`: the daemons log it at error level and never re-create the
 * record (the table stays empty through several retries), /healthz answers 503, a metric
 * counts it, and the CLI says so. Restoring the row lets them go on.
 */
export async function recordDeleted(t: TestContext, raw: RawStore): Promise<void> {
  const daemons = await pair(raw);
  try {
    await eventually(async () => ((await stored(raw)) ?? 0n) > 0n, "a first advance");
    const marks = daemons.map((d) => d.lines.length);
    const [row] = await raw.query("DELETE FROM globalclock RETURNING id, time");
    const { id, time } = row as Record<string, string>;
    let watching = true;
    const empty = (async () => {
      let reads = 0;
      for (; watching; reads++) {
        assert.equal(await stored(raw), undefined, "a daemon re-created the clock record");
        await new Promise((r) => setTimeout(r, 10));
      }
      return reads;
    })();
    empty.catch(() => {}); // awaited below; a failure must not count as unhandled meanwhile
    try {
      for (const [i, d] of daemons.entries()) {
        const line = await d.waitFor((l) => l.event === "record-missing", { since: marks[i] });
        assert.equal(line.level, 50);
        assert.equal(line.errorName, "ClockRecordMissingError");
        assert.match(String(line.msg), /clock record is (missing|gone)/);
        // Several retries, each of which could have re-created it.
        await eventually(
          () => since(d, marks[i] as number, (l) => l.level === 50).length >= 3,
          "three failed retries",
        );
        const health = await d.get("/healthz");
        assert.equal(health.status, 503, health.text);
        assert.match(JSON.parse(health.text).reason, /clock record is gone/);
        assert.ok((await d.metric("globalclock_record_missing_total")) >= 1);
        assert.equal(await d.metric("globalclock_healthy"), 0);
      }
    } finally {
      watching = false;
    }
    t.diagnostic(`the table stayed empty through ${await empty} reads`);

    const now = spawnSync(process.execPath, [BIN, "now"], {
      env: { ...process.env, GLOBALCLOCK_STORE: raw.url },
      encoding: "utf8",
    });
    assert.equal(now.status, 0, now.stderr);
    assert.equal(now.stdout, "1970-01-01T00:00:00.000000000Z 0\n", "the epoch, Juju's rule");
    assert.match(now.stderr, /^globalclock: note: there is no clock record in this store[^\n]*\n$/);
    const status = spawnSync(process.execPath, [BIN, "status"], {
      env: { ...process.env, GLOBALCLOCK_STORE: raw.url },
      encoding: "utf8",
    });
    assert.equal(status.status, 1);
    assert.match(status.stdout, /no clock record/);
    assert.match(status.stderr, /^globalclock: there is no clock record in this store/);

    await raw.query(`INSERT INTO globalclock (id, time) VALUES ('${id}', ${time})`);
    for (const d of daemons) {
      await eventually(async () => (await d.get("/healthz")).status === 200, "healthy again");
    }
    await eventually(async () => ((await stored(raw)) ?? 0n) > BigInt(time as string), "moving");
  } catch (err) {
    for (const d of daemons) t.diagnostic(d.lines.map((l) => JSON.stringify(l)).join("\n"));
    throw err;
  } finally {
    await stop(daemons);
  }
}
