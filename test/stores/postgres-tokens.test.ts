/**
 * The PostgreSQL store's fencing tokens and the relations an operator may drop under running
 * stores: tokens come from the sequence `<table>_tokens`; a dropped sequence is made again
 * above every token still stored (by two stores at once, too), and dropped tables are made
 * again by the next write, without a restart.
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import type pg from "pg";
import { Leases, openStore } from "../../src/index.js";
import type { LeaseStore } from "../../src/lease-store.js";
import type { ClockStore } from "../../src/store.js";
import { skipOrFail } from "../helpers/env.js";
import { findPostgresBin, PostgresServer } from "../helpers/postgres-server.js";

const S = 1_000_000_000n;

if (!findPostgresBin()) {
  test("postgres tokens against a real server", (t) =>
    skipOrFail(t, "no PostgreSQL under /usr/lib/postgresql/*/bin (apt-get install postgresql)"));
} else {
  describe("postgres tokens against a real server", { timeout: 60_000 }, () => {
    let server: PostgresServer;
    let raw: pg.Client;
    let n = 0;
    const stores: ClockStore[] = [];
    /** Two stores (two pools) on a table of their own. */
    const pair = async () => {
      n++;
      const open = async () => {
        const store = await openStore(server.url("postgres", `table=tokens_${n}`));
        stores.push(store);
        return store;
      };
      return [await open(), await open()] as const;
    };
    const seam = (store: ClockStore): LeaseStore => {
      assert.ok(store.leases);
      return store.leases;
    };

    before(async () => {
      server = await PostgresServer.start();
      raw = await server.client();
    });
    after(async () => {
      for (const store of stores) await store.close();
      await raw?.end();
      await server?.close();
    });

    test("tokens come from the sequence beside the tables", async () => {
      const [a] = await pair();
      const lease = await new Leases(a).claim("job", "alice", "10s");
      const seq = await raw.query(`SELECT last_value FROM tokens_${n}_tokens`);
      assert.equal(BigInt(seq.rows[0].last_value), lease.token);
    });

    test("a dropped sequence is made again above every stored token, by two stores at once", async () => {
      const [a, b] = await pair();
      const [la, lb] = [new Leases(a), new Leases(b)];
      await la.claim("held", "alice", "10s");
      const released = await lb.claim("free", "bob", "10s");
      await released.release();
      // Tokens stored by an older version, or above the sequence: the new one starts above.
      await raw.query(`UPDATE tokens_${n}_leases SET token = 1000 WHERE name = 'held'`);
      await raw.query(`DROP SEQUENCE tokens_${n}_tokens`);
      for (let round = 0; round < 5; round++) {
        const [x, y] = await Promise.all([
          la.claim(`new-${round}`, "alice", "10s"),
          lb.claim(`new-${round}-b`, "bob", "10s"),
        ]);
        assert.ok(
          x.token > 1000n && y.token > 1000n && x.token !== y.token,
          `${x.token}, ${y.token}`,
        );
        await raw.query(`DROP SEQUENCE tokens_${n}_tokens`);
      }
      const taken = await la.claim("free", "alice", "10s"); // the update path meets it missing
      const top = await raw.query(
        `SELECT max(token) AS top FROM tokens_${n}_leases WHERE name <> 'free'`,
      );
      assert.ok(taken.token > BigInt(top.rows[0].top), `${taken.token} above ${top.rows[0].top}`);
    });

    test("a write without a new token keeps its token whatever the sequence", async () => {
      const [a] = await pair();
      const write = { name: "w", holder: "h", token: 5n, start: 0n, expiry: 9n, pins: [] };
      const first = await seam(a).writeLease({ ...write, newToken: false }, undefined);
      assert.equal(first?.token, 5n);
      const next = await seam(a).writeLease({ ...write, newToken: true }, first?.version);
      assert.ok(next && next.token > 5n);
      await raw.query(`DROP SEQUENCE tokens_${n}_tokens`);
      const kept = await seam(a).writeLease(
        { ...write, token: next.token, newToken: false },
        next.version,
      );
      assert.equal(kept?.token, next.token);
    });

    test("dropped tables are made again by the next write, without a restart", async () => {
      const [a, b] = await pair();
      const lease = await new Leases(a).claim("job", "alice", "10s");
      const read = await seam(b).readLease("job");
      await raw.query(`DROP TABLE tokens_${n}_settings`);
      assert.equal(await seam(b).ensureMaxStep(2n * S), 2n * S, "the settings table made again");
      assert.equal(await seam(a).ensureMaxStep(3n * S), 2n * S);
      await raw.query(`DROP TABLE tokens_${n}_leases`);
      assert.ok(read.lease);
      const stale = await seam(b).writeLease(
        { ...read.lease, newToken: false },
        read.lease.version,
      );
      assert.equal(stale, undefined, "no record at that version any more");
      assert.equal(
        (await raw.query(`SELECT count(*)::int AS n FROM tokens_${n}_leases`)).rows[0].n,
        0,
      );
      const again = await new Leases(a).claim("job", "bob", "10s");
      assert.ok(again.token > lease.token, "the sequence outlived the table");
      assert.equal((await new Leases(b).get("job"))?.holder, "bob");
    });
  });
}
