/**
 * The PostgreSQL store on bad input and in awkward setups: malformed URLs, wrong
 * credentials, a missing database, hosts that refuse or never answer, corrupt
 * notifications, the PG* environment, a schema, a user that may not create tables, and
 * exact bigints without touching pg's process-wide type parsers.
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import pg from "pg";
import {
  ClosedError,
  CorruptRecordError,
  InvalidDurationError,
  openStore,
} from "../../src/index.js";
import { isStoreError, pushedUntil, rejectsAsConfigError } from "../helpers/assertions.js";
import { skipOrFail } from "../helpers/env.js";
import { findPostgresBin, PostgresServer } from "../helpers/postgres-server.js";
import { blackHole, freePort } from "../helpers/server-process.js";

describe("postgres store: URLs", () => {
  for (const [url, field] of [
    ["postgres://u:hunter22@localhost:notaport/db", "store"],
    ["postgres://u:hunter22@localhost:/db", "store"], // an empty port is not 5432
    ["postgres://u:hunter22@localhost:70000/db", "store"],
    ["postgres://u:hunter 22@localhost:0/db", "store"],
    ["postgres://u:hunter22@localhost/db?tabel=x", "store"],
    ["postgresql://localhost/db?table=bad-name", "table"],
    ["postgres://localhost/db?schema=1x", "schema"],
    ["postgres://localhost/db?timeout=soon", "timeout"],
  ] as const) {
    // A password with a space is masked whole, never cut at the space.
    const secret = url.includes("hunter 22") ? "hunter 22" : "hunter22";
    test(`${url} is a ConfigError on ${field}`, async () => {
      await rejectsAsConfigError(url, field, secret);
      await rejectsAsConfigError(url, field, "22@");
    });
  }

  test("a bad timeout is an InvalidDurationError", async () => {
    await assert.rejects(openStore("postgres://localhost/db?timeout=-1s"), InvalidDurationError);
  });

  test("a refused connection fails with a clear StoreError", async () => {
    const port = await freePort();
    const store = await openStore(`postgres://u:hunter22@127.0.0.1:${port}/db?timeout=2s`);
    await assert.rejects(
      store.read(),
      isStoreError("postgres", /cannot connect.*ECONNREFUSED/, "hunter22"),
    );
    await store.close();
  });

  test("a host that never answers fails at the deadline", { timeout: 20_000 }, async (t) => {
    const hole = await blackHole();
    const store = await openStore(`postgres://u:hunter22@127.0.0.1:${hole.port}/db?timeout=300ms`);
    const started = performance.now();
    await assert.rejects(
      store.ensure(),
      isStoreError("postgres", /no answer within 300 ms/, "hunter22"),
    );
    t.diagnostic(`gave up after ${Math.round(performance.now() - started)} ms`);
    await store.close();
    await hole.close();
  });
});

if (!findPostgresBin()) {
  test("postgres store against a real server", (t) =>
    skipOrFail(t, "no PostgreSQL under /usr/lib/postgresql/*/bin (apt-get install postgresql)"));
} else {
  describe("postgres store against a real server", () => {
    let server: PostgresServer;
    let raw: pg.Client;
    before(async () => {
      server = await PostgresServer.start();
      raw = await server.client();
    });
    after(async () => {
      await raw?.end();
      await server?.close();
    });

    test("a wrong password is a clear error that shows no password", async () => {
      const url = `postgres://${server.user}:wrong-pw-123@127.0.0.1:${server.port}/postgres`;
      const store = await openStore(url);
      await assert.rejects(
        store.ensure(),
        isStoreError(
          "postgres",
          /password authentication failed.*check the user and password/,
          "wrong-pw-123",
        ),
      );
      // A watch fails as loudly, rather than retrying a login that cannot succeed.
      const watching = store.watch?.(new AbortController().signal)[Symbol.asyncIterator]();
      assert.ok(watching);
      await assert.rejects(
        watching.next(),
        isStoreError("postgres", /password authentication/, "wrong-pw-123"),
      );
      await store.close();
    });

    test("TLS settings in the URL reach the driver", async () => {
      // The test server has no certificate: asking for TLS must fail, not fall back silently.
      const store = await openStore(server.url("postgres", "sslmode=require"));
      await assert.rejects(
        store.read(),
        isStoreError("postgres", /does not support SSL/, server.password),
      );
      await store.close();
    });

    test("a missing database is a clear error", async () => {
      const store = await openStore(server.url("no_such_db"));
      await assert.rejects(
        store.read(),
        isStoreError("postgres", /"no_such_db" does not exist/, server.password),
      );
      await store.close();
    });

    test("bigints are exact, and pg's global type parsers are left alone", async () => {
      const parser = pg.types.getTypeParser(20);
      const store = await openStore(server.url("postgres", "table=clock_exact"));
      await store.ensure();
      const max = (1n << 63n) - 1n;
      assert.equal(await store.compareAndSwap(0n, max - 1n), true);
      assert.equal(await store.compareAndSwap(max - 1n, max), true);
      assert.equal(await store.read(), max);
      assert.equal(pg.types.getTypeParser(20), parser);
      const plain = await raw.query("SELECT time FROM clock_exact");
      assert.equal(plain.rows[0].time, max.toString()); // pg's default: a string
      await store.close();
    });

    test("closing the store ends a running watch with a ClosedError", async () => {
      const store = await openStore(server.url("postgres", "table=clock_closing"));
      await store.ensure();
      const watching = store.watch?.(new AbortController().signal)[Symbol.asyncIterator]();
      assert.ok(watching);
      assert.equal((await watching.next()).value, 0n);
      const ended = assert.rejects(watching.next(), ClosedError);
      await store.close();
      await ended;
    });

    test("a corrupt notification fails the watch with a CorruptRecordError", async () => {
      const store = await openStore(server.url("postgres", "table=clock_notify"));
      await store.ensure();
      const ac = new AbortController();
      const watching = store.watch?.(ac.signal)[Symbol.asyncIterator]();
      assert.ok(watching);
      assert.equal((await watching.next()).value, 0n); // the read after LISTEN
      await raw.query(`NOTIFY "globalclock.clock_notify", 'twelve o''clock'`);
      await assert.rejects(watching.next(), CorruptRecordError);
      ac.abort();
      await store.close();
    });

    test("the URL may leave everything to the PG* environment", async () => {
      const saved = { ...process.env };
      Object.assign(process.env, {
        PGHOST: "127.0.0.1",
        PGPORT: String(server.port),
        PGUSER: server.user,
        PGPASSWORD: server.password,
        PGDATABASE: "postgres",
      });
      try {
        const store = await openStore("postgres://?table=clock_env");
        assert.equal(await store.ensure(), 0n);
        await store.close();
      } finally {
        for (const key of ["PGHOST", "PGPORT", "PGUSER", "PGPASSWORD", "PGDATABASE"]) {
          if (saved[key] === undefined) delete process.env[key];
          else process.env[key] = saved[key];
        }
      }
      const rows = await raw.query("SELECT time::text FROM clock_env");
      assert.deepEqual(rows.rows, [{ time: "0" }]);
    });

    test("a schema may be named; the table is made there and watched", async () => {
      await raw.query("CREATE SCHEMA clock_schema");
      const url = server.url("postgres", "schema=clock_schema&table=clock");
      const [a, b] = [await openStore(url), await openStore(url)];
      await a.ensure();
      const { seen, done } = pushedUntil(b, 7n);
      await new Promise((r) => setTimeout(r, 200));
      assert.equal(await a.compareAndSwap(0n, 7n), true);
      await done;
      assert.equal(seen.at(-1), 7n);
      const rows = await raw.query("SELECT time::text FROM clock_schema.clock");
      assert.deepEqual(rows.rows, [{ time: "7" }]);
      await a.close();
      await b.close();
    });

    test("a user that may use the table but not create tables can run the clock", async () => {
      await raw.query("CREATE SCHEMA locked");
      await raw.query("CREATE TABLE locked.clock (id text PRIMARY KEY, time bigint NOT NULL)");
      await raw.query("CREATE ROLE clock_user LOGIN PASSWORD 'clock-user-pw'");
      await raw.query("GRANT USAGE ON SCHEMA locked TO clock_user");
      await raw.query("GRANT SELECT, INSERT, UPDATE ON locked.clock TO clock_user");
      const url = `postgres://clock_user:clock-user-pw@127.0.0.1:${server.port}/postgres?schema=locked&table=clock`;
      const store = await openStore(url);
      assert.equal(await store.ensure(), 0n);
      assert.equal(await store.compareAndSwap(0n, 5n), true);
      await store.close();
      // Without the table, the refusal to create it is what the user is told.
      const missing = await openStore(
        `postgres://clock_user:clock-user-pw@127.0.0.1:${server.port}/postgres?schema=locked&table=other`,
      );
      await assert.rejects(
        missing.ensure(),
        isStoreError("postgres", /permission denied/, "clock-user-pw"),
      );
      await missing.close();
    });
  });
}
