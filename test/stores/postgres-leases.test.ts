/**
 * The PostgreSQL store's leases beyond the conformance suite: tables made only by writes, a
 * clock table that holds the clock alone, reads where a table is missing, long table names,
 * users that may not create tables, literal prefixes, LISTEN notices, the clock's advance
 * against a concurrent change of maxStep (the setting's row lock), and the fence for data
 * kept in the same database (a claim waits for a fenced transaction).
 */
import assert from "node:assert/strict";
import { after, afterEach, before, describe, test } from "node:test";
import type pg from "pg";
import { ClosedError, LeaseLostError, Leases, openStore } from "../../src/index.js";
import type { ClockStore } from "../../src/store.js";
import { checkFence } from "../../src/stores/postgres/index.js";
import { skipOrFail } from "../helpers/env.js";
import { findPostgresBin, PostgresServer } from "../helpers/postgres-server.js";

const S = 1_000_000_000n;

/** Moves the clock to `time` through `store`, as a worker would. */
async function setClock(store: ClockStore, time: bigint): Promise<void> {
  assert.equal(await store.compareAndSwap(await store.ensure(), time), true);
}

/** Waits until `found` answers true, polling, failing after a generous while. */
async function until(found: () => Promise<boolean>, what: string): Promise<void> {
  const deadline = Date.now() + 30_000;
  while (!(await found())) {
    if (Date.now() > deadline) throw new Error(`gave up waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

if (!findPostgresBin()) {
  test("postgres leases against a real server", (t) =>
    skipOrFail(t, "no PostgreSQL under /usr/lib/postgresql/*/bin (apt-get install postgresql)"));
} else {
  describe("postgres leases against a real server", { timeout: 60_000 }, () => {
    let server: PostgresServer;
    let raw: pg.Client;
    let n = 0;
    /** A store on a table of its own, closed after the suite. */
    const stores: ClockStore[] = [];
    const open = async (query = "") => {
      const store = await openStore(server.url("postgres", `table=leases_${n}&${query}`));
      stores.push(store);
      return store;
    };
    const exists = async (relation: string) =>
      (await raw.query("SELECT to_regclass($1) IS NOT NULL AS found", [relation])).rows[0].found;

    before(async () => {
      server = await PostgresServer.start();
      raw = await server.client();
    });
    after(async () => {
      for (const store of stores) await store.close();
      await raw?.end();
      await server?.close();
    });

    test("reads make no table; the first claim makes the clock's, the settings' and the leases'", async () => {
      n++;
      const store = await open();
      const read = await store.leases?.readLease("job");
      assert.deepEqual(read, { time: undefined, maxStep: undefined, lease: undefined });
      assert.deepEqual((await store.leases?.listLeases(""))?.leases, []);
      for (const table of [`leases_${n}`, `leases_${n}_settings`, `leases_${n}_leases`])
        assert.equal(await exists(table), false, table);
      await new Leases(store).claim("job", "alice", "10s");
      assert.equal(await exists(`leases_${n}_leases`), true);
      const clock = await raw.query(`SELECT id, time FROM leases_${n}`);
      assert.deepEqual(clock.rows, [{ id: "g", time: "0" }], "the clock alone");
      const settings = await raw.query(`SELECT name, value FROM leases_${n}_settings`);
      assert.deepEqual(settings.rows, [{ name: "maxStep", value: "1500000000" }]);
    });

    test("setting the clock back and deleting its rows leave the stored maxStep intact", async () => {
      n++;
      const store = await open();
      const seam = store.leases;
      assert.ok(seam);
      await setClock(store, 100n * S);
      assert.equal(await seam.ensureMaxStep(2n * S), 2n * S);
      await raw.query(`UPDATE leases_${n} SET time = time - 10000000000`); // a restore's repro
      const back = await seam.readLease("job");
      assert.deepEqual(back, { time: 90n * S, maxStep: 2n * S, lease: undefined });
      await raw.query(`DELETE FROM leases_${n}`);
      const gone = await seam.readLease("job");
      assert.deepEqual(gone, { time: undefined, maxStep: 2n * S, lease: undefined });
      assert.equal(await seam.ensureMaxStep(3n * S), 2n * S);
      assert.equal(await store.read(), undefined, "ensureMaxStep makes no clock record");
    });

    test("a corrupt maxStep is a CorruptRecordError naming the maxStep record", async () => {
      n++;
      const seam = (await open()).leases;
      assert.ok(seam);
      await seam.ensureMaxStep(2n * S);
      await raw.query(`UPDATE leases_${n}_settings SET value = -1`);
      const corrupt = /corrupt maxStep record: maxStep is negative \(-1\)/;
      await assert.rejects(seam.readLease("job"), corrupt);
      await assert.rejects(seam.ensureMaxStep(S), corrupt);
    });

    test("a read where a table is missing reads the others", async () => {
      n++;
      const store = await open();
      await setClock(store, 100n * S);
      await new Leases(store).claim("job", "alice", "10s");
      await raw.query(`DROP TABLE leases_${n}_settings`);
      const noSettings = await store.leases?.readLease("job");
      assert.equal(noSettings?.time, 100n * S);
      assert.equal(noSettings?.maxStep, undefined);
      assert.equal(noSettings?.lease?.holder, "alice");
      await raw.query(`DROP TABLE leases_${n}`);
      const listed = await store.leases?.listLeases("");
      assert.equal(listed?.time, undefined);
      assert.deepEqual(
        listed?.leases.map((l) => l.holder),
        ["alice"],
      );
    });

    test("a first write through the seam makes every table, so the lease reads back", async () => {
      n++;
      const seam = (await open()).leases;
      assert.ok(seam);
      const fields = { name: "job", holder: "a", token: 1n, start: 0n, expiry: 5n, pins: ["p"] };
      const written = await seam.writeLease({ ...fields, newToken: false }, undefined);
      assert.equal(written?.token, 1n);
      const read = await seam.readLease("job");
      assert.deepEqual(read, {
        time: undefined,
        maxStep: undefined,
        lease: { ...fields, version: written?.version },
      });
      assert.equal(await exists(`leases_${n}_tokens`), true, "and the token sequence");
    });

    test("a clock table whose name fills 63 bytes keeps its leases apart", async () => {
      const table = `t${"x".repeat(62)}`;
      const store = await openStore(server.url("postgres", `table=${table}`));
      stores.push(store);
      const leases = new Leases(store);
      await leases.claim("job", "alice", "10s");
      assert.equal((await leases.get("job"))?.holder, "alice");
      assert.equal(await store.read(), 0n);
      const found = await raw.query(
        "SELECT tablename FROM pg_tables WHERE tablename LIKE 'txxx%' ORDER BY tablename",
      );
      assert.equal(found.rows.length, 3, "the clock's, the settings' and the leases' tables");
    });

    test("a user that may not create tables uses tables made for it", async () => {
      n++;
      const made = await new Leases(await open()).claim("made", "admin", "10s");
      await raw.query("CREATE ROLE lease_user LOGIN PASSWORD 'lease-pw'");
      await raw.query(
        `GRANT SELECT, INSERT, UPDATE ON leases_${n}, leases_${n}_settings, leases_${n}_leases TO lease_user`,
      );
      await raw.query(`GRANT USAGE ON SEQUENCE leases_${n}_tokens TO lease_user`);
      const url = `postgres://lease_user:lease-pw@127.0.0.1:${server.port}/postgres?table=leases_${n}`;
      const store = await openStore(url);
      stores.push(store);
      const lease = await new Leases(store).claim("job", "alice", "10s");
      assert.ok(lease.token > made.token);
      assert.equal(await store.leases?.ensureMaxStep(2n * S), 1_500_000_000n);
    });

    test("a prefix's % and _ are plain characters, and names come in byte order", async () => {
      n++;
      const leases = new Leases(await open());
      for (const name of ["a%b", "axb", "a_c", "abc", "a\u{10000}", "a\uffff", "b"])
        await leases.claim(name, "alice", "10s");
      const names = async (prefix: string) => (await leases.list(prefix)).map((l) => l.name);
      assert.deepEqual(await names("a%"), ["a%b"]);
      assert.deepEqual(await names("a_"), ["a_c"]);
      // In UTF-16 (a JavaScript sort) U+10000 comes before U+FFFF; in UTF-8 bytes after it.
      assert.deepEqual(await names("a"), ["a%b", "a_c", "abc", "axb", "a\uffff", "a\u{10000}"]);
    });

    test("a write on another connection reaches a lease watch; close() ends it", async () => {
      n++;
      const store = await openStore(server.url("postgres", `table=leases_${n}`));
      const other = await open();
      const watch = store.leases?.watchLeases?.("jobs/", new AbortController().signal);
      assert.ok(watch);
      const notices = watch[Symbol.asyncIterator]();
      assert.equal((await notices.next()).done, false, "a notice once LISTEN is in place");
      const next = notices.next();
      await new Leases(other).claim("jobs/1", "alice", "10s");
      assert.equal((await next).done, false);
      const ended = notices.next();
      await store.close();
      await assert.rejects(ended, ClosedError);
    });

    describe("advanceClock against an operator's change of maxStep", () => {
      let other: pg.Client;
      /** The backends waiting on a lock whose statement starts with `start`, and their blockers. */
      const waiting = async (start: string) =>
        (
          await raw.query(
            `SELECT pid, pg_blocking_pids(pid) AS blockers FROM pg_stat_activity
             WHERE wait_event_type = 'Lock' AND query LIKE $1`,
            [`${start}%`],
          )
        ).rows as Array<{ pid: number; blockers: number[] }>;
      /** A store at 10 s with maxStep 2 s stored, on a table of its own; calls may wait on locks. */
      const ready = async () => {
        n++;
        const store = await open("timeout=30s");
        assert.ok(store.leases);
        await setClock(store, 10n * S);
        assert.equal(await store.leases.ensureMaxStep(2n * S), 2n * S);
        return {
          store,
          seam: store.leases,
          advanceSql: `WITH s AS (SELECT value FROM "leases_${n}_settings"`,
        };
      };

      before(async () => {
        other = await server.client();
      });
      afterEach(async () => {
        await other.query("ROLLBACK"); // what a failed test left open
      });
      after(async () => {
        await other?.end();
      });

      for (const [what, change] of [
        ["lowered", "UPDATE %s SET value = 1000000000 WHERE name = 'maxStep'"],
        ["deleted", "DELETE FROM %s WHERE name = 'maxStep'"],
      ] as const) {
        test(`an advance waits for maxStep being ${what} in an open transaction, then fails`, async () => {
          const { store, seam, advanceSql } = await ready();
          await other.query("BEGIN");
          await other.query(change.replace("%s", `leases_${n}_settings`));
          let settled = false;
          const advance = seam.advanceClock(10n * S, 11n * S, 2n * S).finally(() => {
            settled = true;
          });
          await until(async () => (await waiting(advanceSql)).length === 1, "the advance to wait");
          assert.equal(settled, false);
          await other.query("COMMIT");
          assert.equal(await advance, false, "built on the maxStep the change replaced");
          assert.equal(await store.read(), 10n * S, "nothing was written");
        });
      }

      test("a change of maxStep waits for an advance that read the old one, until it commits", async () => {
        const { seam, advanceSql } = await ready();
        await other.query("BEGIN");
        await other.query(`UPDATE leases_${n} SET time = time WHERE id = 'g'`); // holds the clock's row
        const advance = seam.advanceClock(10n * S, 11n * S, 2n * S);
        let blocked: Array<{ pid: number; blockers: number[] }> = [];
        await until(async () => {
          blocked = await waiting(advanceSql);
          return blocked.length === 1;
        }, "the advance to wait for the clock's row");
        const advancer = blocked[0]?.pid;
        const swap = seam.swapMaxStep(2n * S, S);
        await until(async () => {
          blocked = await waiting(`UPDATE "leases_${n}_settings"`);
          return blocked.length === 1;
        }, "the change of maxStep to wait");
        assert.deepEqual(blocked[0]?.blockers, [advancer], "the change waits for the advance");
        assert.deepEqual(await seam.readClock(), { time: 10n * S, maxStep: 2n * S });
        await other.query("COMMIT");
        assert.equal(await advance, true, "it committed before the new maxStep could be seen");
        assert.equal(await swap, true);
        assert.deepEqual(await seam.readClock(), { time: 11n * S, maxStep: S });
      });

      test("an advance notifies the clock's watchers, as the clock's own compare-and-swap does", async () => {
        const { store, seam } = await ready();
        const stop = new AbortController();
        const watch = store.watch?.(stop.signal)[Symbol.asyncIterator]();
        assert.ok(watch);
        assert.equal((await watch.next()).value, 10n * S, "the time when LISTEN is in place");
        const next = watch.next();
        assert.equal(await seam.advanceClock(10n * S, 12n * S, 2n * S), true);
        assert.equal((await next).value, 12n * S);
        stop.abort();
      });
    });

    describe("checkFence", () => {
      let store: ClockStore;
      let leases: Leases;
      let table: string;
      let client: pg.Client;
      const value = async () =>
        (await raw.query(`SELECT value FROM guarded_${table} WHERE id = 1`)).rows[0].value;
      /** One transaction: the guarded write, then the fence; rolled back if the fence fails. */
      const write = async (name: string, holder: string, token: bigint, text: string) => {
        await client.query("BEGIN");
        try {
          await client.query(`UPDATE guarded_${table} SET value = $1 WHERE id = 1`, [text]);
          await checkFence(client, { name, holder, token, table });
          await client.query("COMMIT");
        } catch (err) {
          await client.query("ROLLBACK");
          throw err;
        }
      };

      before(async () => {
        n++;
        table = `leases_${n}`;
        // A claim may wait for a fenced transaction: give it time.
        store = await open("timeout=30s");
        leases = new Leases(store);
        client = await server.client();
        await raw.query(`CREATE TABLE guarded_${table} (id int PRIMARY KEY, value text)`);
      });
      after(async () => {
        await client?.end();
      });

      test("the holder's guarded write commits; after another took the lease it is refused and rolled back", async () => {
        await raw.query(`INSERT INTO guarded_${table} VALUES (1, 'initial')`);
        await setClock(store, 100n * S);
        const old = await leases.claim("job", "alice", "10s");
        await write("job", "alice", old.token, "by alice");
        assert.equal(await value(), "by alice");
        await setClock(store, 110n * S); // alice's lease ran out
        const taken = await leases.claim("job", "bob", "10s");
        await assert.rejects(
          write("job", "alice", old.token, "late write by alice"),
          LeaseLostError,
        );
        assert.equal(await value(), "by alice", "the transaction was rolled back");
        await write("job", "bob", taken.token, "by bob");
        assert.equal(await value(), "by bob");
      });

      test("a claim by another holder waits for a transaction that passed the fence", async () => {
        const held = await leases.claim("job2", "carol", "10s");
        await setClock(store, held.expiry); // carol's lease ran out, but nobody took it yet
        const events: string[] = [];
        await client.query("BEGIN");
        await checkFence(client, { name: "job2", holder: "carol", token: held.token, table });
        const claim = leases.claim("job2", "dave", "10s").then((lease) => {
          events.push("dave claimed");
          return lease;
        });
        // Dave's compare-and-swap waits on the share lock of carol's transaction.
        await until(async () => {
          const waiting = await raw.query(
            `SELECT count(*)::int AS n FROM pg_stat_activity
             WHERE wait_event_type = 'Lock' AND query LIKE $1`,
            [`UPDATE "${table}_leases"%`],
          );
          return waiting.rows[0].n === 1;
        }, "dave's claim to wait for carol's transaction");
        await client.query(`UPDATE guarded_${table} SET value = 'by carol' WHERE id = 1`);
        await client.query("COMMIT");
        events.push("carol committed");
        const taken = await claim;
        assert.deepEqual(events, ["carol committed", "dave claimed"]);
        assert.ok(taken.token > held.token);
        assert.equal(await value(), "by carol");
        await assert.rejects(write("job2", "carol", held.token, "late"), LeaseLostError);
        assert.equal(await value(), "by carol");
      });

      test("with no lease table it refuses", async () => {
        await assert.rejects(
          checkFence(client, { name: "job", holder: "alice", token: 1n, table: "no_such_clock" }),
          LeaseLostError,
        );
      });
    });
  });
}
