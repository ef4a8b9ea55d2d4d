// Two `globalclock run` daemons on one SQLite file while an operator (the raw driver) sets
// the time back, deletes the record, or holds the write lock so that the clock stands still.
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, test } from "node:test";
import Database from "better-sqlite3";
import { Daemon, eventually } from "../helpers/daemon.js";
import { type RawStore, recordDeleted, storedTimeGoesBack } from "../helpers/operator-scenarios.js";

describe("run on SQLite, with an operator at the database", { timeout: 120_000 }, () => {
  let dir: string;
  let path: string;
  let db: Database.Database | undefined;
  let raw: RawStore;

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), "globalclock-sqlite-ops-"));
    path = join(dir, "clock.db");
    raw = {
      url: `sqlite:${path}`,
      async query(sql) {
        db ??= new Database(path).defaultSafeIntegers(true);
        const statement = db.prepare(sql);
        if (!statement.reader) {
          statement.run();
          return [];
        }
        return statement
          .all()
          .map((row) =>
            Object.fromEntries(Object.entries(row as object).map(([k, v]) => [k, String(v)])),
          );
      },
    };
  });

  afterEach(() => {
    db?.close();
    db = undefined;
    rmSync(dir, { recursive: true, force: true });
  });

  test("the stored time set back 10 s: logged, counted, and the clock goes on from it", (t) =>
    storedTimeGoesBack(t, raw));

  test("the record deleted: never re-created, 503, counted, the CLI says so; restored, it resumes", (t) =>
    recordDeleted(t, raw));

  test("/healthz turns 503 on a daemon that has not seen the clock move for its failover bound, whatever its role", async (t) => {
    // A long busy timeout: the writes wait on the lock instead of failing, so the workers
    // stay out of error while the clock stands still.
    const url = `${raw.url}?busyTimeout=60s`;
    const args = ["--interval", "100ms", "--listen", "127.0.0.1:0"];
    const daemons = [new Daemon(url, args), new Daemon(url, args)];
    try {
      await eventually(
        () => daemons.some((d) => d.role === "active") && daemons.some((d) => d.role === "standby"),
        "one active daemon and one stand-by",
      );
      for (const d of daemons) assert.equal((await d.get("/healthz")).status, 200);
      db = new Database(path);
      db.exec("BEGIN IMMEDIATE"); // the write lock: no advance can be written
      for (const d of daemons) {
        const health = await eventually(async () => {
          const h = await d.get("/healthz");
          return h.status === 503 && JSON.parse(h.text);
        }, "503 from a daemon that saw the clock stand still");
        assert.match(
          health.reason,
          /global time has not moved for .*, longer than the failover bound \(300ms\)/,
        );
        assert.ok(health.role === "active" || health.role === "standby", health.role);
        assert.ok(health.stillForSeconds > health.boundSeconds);
      }
      db.exec("COMMIT");
      for (const d of daemons) {
        await eventually(async () => (await d.get("/healthz")).status === 200, "healthy again");
      }
    } catch (err) {
      for (const d of daemons) t.diagnostic(d.lines.map((l) => JSON.stringify(l)).join("\n"));
      throw err;
    } finally {
      if (db?.inTransaction) db.exec("ROLLBACK");
      for (const d of daemons) d.kill("SIGTERM");
      await Promise.all(daemons.map((d) => d.exited));
    }
  });
});
