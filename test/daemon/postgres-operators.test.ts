// `globalclock run` daemons on a real PostgreSQL server while an operator sets the time
// back, deletes the record, or changes the daemon's password; and `run` given a wrong
// password or a missing database from the start.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { after, before, describe, test } from "node:test";
import type pg from "pg";
import { BIN, Daemon, eventually } from "../helpers/daemon.js";
import { skipOrFail } from "../helpers/env.js";
import { type RawStore, recordDeleted, storedTimeGoesBack } from "../helpers/operator-scenarios.js";
import { findPostgresBin, PostgresServer } from "../helpers/postgres-server.js";

describe("run on PostgreSQL, with an operator at the database", { timeout: 180_000 }, () => {
  let server: PostgresServer | undefined;
  let admin: pg.Client;
  let databases = 0;

  before(async () => {
    if (!findPostgresBin()) return;
    server = await PostgresServer.start();
    admin = await server.client();
  });
  after(async () => {
    await admin?.end();
    await server?.close();
  });

  /** A fresh database, and raw SQL on it; undefined (the test skipped) without PostgreSQL. */
  async function fresh(t: test.TestContext): Promise<RawStore | undefined> {
    if (!server) {
      skipOrFail(t, "no PostgreSQL under /usr/lib/postgresql/*/bin (apt-get install postgresql)");
      return undefined;
    }
    const name = `ops${++databases}`;
    await admin.query(`CREATE DATABASE ${name}`);
    const client = await server.client(name);
    client.on("error", () => {}); // the password test ends this database's sessions
    t.after(() => client.end());
    return {
      url: server.url(name),
      async query(sql) {
        const { rows } = await client.query({ text: sql, types: { getTypeParser: () => String } });
        return rows;
      },
    };
  }

  test("the stored time set back 10 s: logged, counted, and the clock goes on from it", async (t) => {
    const raw = await fresh(t);
    if (raw) await storedTimeGoesBack(t, raw);
  });

  test("the record deleted: never re-created, 503, counted, the CLI says so; restored, it resumes", async (t) => {
    const raw = await fresh(t);
    if (raw) await recordDeleted(t, raw);
  });

  test("a wrong password or a missing database: run exits 1 with one line, no stack, no password", async (t) => {
    if (!(await fresh(t)) || !server) return;
    const base = `postgres://${server.user}`;
    const at = `127.0.0.1:${server.port}`;
    const cases = [
      { url: `${base}:wr0ng p4ss w0rd@${at}/postgres`, secret: "wr0ng p4ss w0rd", why: /28P01/ },
      {
        url: `${base}@${at}/postgres?password=wr0ng pa55 w0rd`,
        secret: "wr0ng pa55 w0rd",
        why: /28P01/,
      },
      { url: server.url("no_such_database"), secret: server.password, why: /3D000/ },
    ];
    for (const { url, secret, why } of cases) {
      const run = spawnSync(process.execPath, [BIN, "--store", url, "run", "--json"], {
        encoding: "utf8",
        timeout: 60_000,
      });
      assert.equal(run.status, 1, `${url}: ${run.stderr}`);
      // With --json the error is one JSON object on one line.
      assert.match(run.stderr, /^\{[^\n]+\}\n$/, run.stderr);
      const { error } = JSON.parse(run.stderr);
      assert.equal(error.code, 1);
      assert.match(error.message, /^postgres store: /);
      assert.match(error.message, why);
      for (const piece of [secret, ...secret.split(" ").filter((p) => p.length >= 3)])
        assert.ok(!`${run.stderr}${run.stdout}`.includes(piece), `${piece} shown: ${run.stderr}`);
    }
  });

  test("the password changed under a running daemon: error-level log, 503, retried; mended, it resumes", async (t) => {
    const raw = await fresh(t);
    if (!raw || !server) return;
    const daemon = new Daemon(raw.url, ["--interval", "100ms", "--listen", "127.0.0.1:0"]);
    const user = server.user;
    try {
      await daemon.waitFor((l) => l.event === "role" && l.role === "active");
      const mark = daemon.mark();
      await admin.query(`ALTER ROLE ${user} PASSWORD 'another password'`);
      // Its connections are authenticated already: close them, so that it must log in again.
      await admin.query(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()",
        [new URL(raw.url).pathname.slice(1)],
      );
      const line = await daemon.waitFor((l) => l.level === 50 && /28P01/.test(String(l.error)), {
        since: mark,
      });
      assert.match(String(line.error), /password authentication failed/);
      const health = await daemon.get("/healthz");
      assert.equal(health.status, 503, health.text);
      assert.match(JSON.parse(health.text).reason, /28P01/);
      await eventually(
        () => daemon.lines.filter((l) => l.level === 50).length >= 3,
        "retries, each logged at error level",
      );
      assert.equal(daemon.child.exitCode, null, "a daemon that started healthy keeps retrying");
      await admin.query(`ALTER ROLE ${user} PASSWORD '${server.password}'`);
      await eventually(async () => (await daemon.get("/healthz")).status === 200, "healthy again");
      const advances = await daemon.metric("globalclock_advances_total");
      await eventually(
        async () => (await daemon.metric("globalclock_advances_total")) > advances,
        "advancing again",
      );
      daemon.kill("SIGTERM");
      assert.deepEqual(await daemon.exited, { code: 0, signal: null });
      assert.ok(!daemon.lines.some((l) => JSON.stringify(l).includes(server?.password ?? "")));
    } catch (err) {
      t.diagnostic(daemon.lines.map((l) => JSON.stringify(l)).join("\n"));
      throw err;
    } finally {
      await admin.query(`ALTER ROLE ${user} PASSWORD '${server.password}'`);
      daemon.kill("SIGKILL");
      await daemon.exited;
    }
  });
});
