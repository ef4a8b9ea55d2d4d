/**
 * The SQLite store's leases beyond the conformance suite: tables made only by writes, a clock
 * table that holds the clock alone, reads where a table is missing, readers that never
 * write, the file watch's lease notices, listing by a prefix with LIKE's special characters
 * and in byte order, and the fence for data kept in the same file.
 */
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, type TestContext, test } from "node:test";
import Database from "better-sqlite3";
import { ClosedError, ConfigError, LeaseLostError, Leases, StoreError } from "../../src/index.js";
import { checkFence, SqliteStore } from "../../src/stores/sqlite/index.js";

const S = 1_000_000_000n;
const dir = mkdtempSync(join(tmpdir(), "globalclock-sqlite-leases-"));
after(() => rmSync(dir, { recursive: true, force: true }));
let n = 0;
const fresh = () => join(dir, `l${n++}.db`);

const tables = (path: string) => {
  const db = new Database(path, { readonly: true });
  try {
    return db
      .prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
      .pluck()
      .all();
  } finally {
    db.close();
  }
};

/** Closes `store` when the test ends. */
function opened(t: TestContext, store: SqliteStore): SqliteStore {
  t.after(() => store.close());
  return store;
}

/** Moves the clock to `time` through `store`, as a worker would. */
async function setClock(store: SqliteStore, time: bigint): Promise<void> {
  assert.equal(await store.compareAndSwap(await store.ensure(), time), true);
}

/** The next notice of `watch`, or a failure once it ends without one. */
async function nextNotice(watch: AsyncIterator<void>): Promise<void> {
  const next = await watch.next();
  assert.equal(next.done, false, "the watch ended without a notice");
}

describe("sqlite leases: tables and readers", () => {
  test("reads make no table; storing maxStep makes the settings table, the first lease write the lease table", async (t) => {
    const path = fresh();
    const store = opened(t, new SqliteStore({ path }));
    const read = await store.leases.readLease("job");
    assert.deepEqual(read, { time: undefined, maxStep: undefined, lease: undefined });
    assert.deepEqual((await store.leases.listLeases("")).leases, []);
    assert.deepEqual(tables(path), ["globalclock"]);
    assert.equal(await new Leases(store).maxStep(), 1_500_000_000n, "the default, read");
    assert.deepEqual(tables(path), ["globalclock"], "reading maxStep makes nothing");
    await new Leases(store).setMaxStep(undefined, 1_500_000_000n);
    assert.deepEqual(tables(path), ["globalclock", "globalclock_settings"]);
    await new Leases(store).claim("job", "alice", "10s");
    assert.deepEqual(tables(path), ["globalclock", "globalclock_leases", "globalclock_settings"]);
  });

  test("a read-only store reads leases, and refuses every write without creating anything", async (t) => {
    const path = fresh();
    new SqliteStore({ path }).close(); // the clock table only
    const reader = opened(t, new SqliteStore({ path, readOnly: true }));
    assert.equal((await reader.leases.readLease("job")).lease, undefined);
    const refused = (err: unknown) => {
      assert.ok(err instanceof StoreError, String(err));
      assert.equal(err.retryable, false);
      assert.match(err.message, /read-only/);
      return true;
    };
    const fields = {
      name: "job",
      holder: "a",
      token: 1n,
      newToken: false,
      start: 0n,
      expiry: 5n,
      pins: [],
    };
    await assert.rejects(reader.leases.writeLease(fields, undefined), refused);
    await assert.rejects(reader.leases.ensureMaxStep(S), refused);
    await assert.rejects(reader.leases.swapMaxStep(S, 2n * S), refused);
    assert.deepEqual(tables(path), ["globalclock"]);

    const writer = opened(t, new SqliteStore({ path }));
    await new Leases(writer).claim("job", "alice", "10s");
    const seen = await reader.leases.readLease("job");
    assert.equal(seen.lease?.holder, "alice", "a table made after the reader opened is read");
    assert.equal(seen.maxStep, 1_500_000_000n);
  });
});

describe("sqlite leases: the clock's table holds the clock alone", () => {
  test("setting the clock back and deleting its rows leave the stored maxStep intact", async (t) => {
    const path = fresh();
    const store = opened(t, new SqliteStore({ path }));
    await setClock(store, 100n * S);
    assert.equal(await store.leases.ensureMaxStep(2n * S), 2n * S);
    const raw = new Database(path);
    t.after(() => raw.close());
    raw.exec("UPDATE globalclock SET time = time - 10000000000"); // a restore's repro
    const back = await store.leases.readLease("job");
    assert.deepEqual(back, { time: 90n * S, maxStep: 2n * S, lease: undefined });
    raw.exec("DELETE FROM globalclock");
    const gone = await store.leases.readLease("job");
    assert.deepEqual(gone, { time: undefined, maxStep: 2n * S, lease: undefined });
    assert.equal(await store.leases.ensureMaxStep(3n * S), 2n * S);
  });

  test("a corrupt maxStep is a CorruptRecordError naming the maxStep record", async (t) => {
    const path = fresh();
    const store = opened(t, new SqliteStore({ path }));
    await store.leases.ensureMaxStep(2n * S);
    const raw = new Database(path);
    t.after(() => raw.close());
    raw.exec("UPDATE globalclock_settings SET value = -1");
    const corrupt = /corrupt maxStep record: maxStep is negative \(-1\)/;
    await assert.rejects(store.leases.readLease("job"), corrupt);
    await assert.rejects(store.leases.ensureMaxStep(S), corrupt);
  });

  test("a read where a table is missing reads the others", async (t) => {
    const path = fresh();
    const store = opened(t, new SqliteStore({ path }));
    await setClock(store, 100n * S);
    await new Leases(store).claim("job", "alice", "10s");
    const raw = new Database(path);
    t.after(() => raw.close());
    raw.exec("DROP TABLE globalclock_settings");
    const noSettings = await store.leases.readLease("job");
    assert.equal(noSettings.time, 100n * S);
    assert.equal(noSettings.maxStep, undefined);
    assert.equal(noSettings.lease?.holder, "alice");
    raw.exec("DROP TABLE globalclock");
    const listed = await store.leases.listLeases("");
    assert.equal(listed.time, undefined);
    assert.deepEqual(
      listed.leases.map((l) => l.holder),
      ["alice"],
    );
  });
});

describe("sqlite leases: tokens", () => {
  test("a deleted token counter starts again above every token still stored, on the running store", async (t) => {
    const path = fresh();
    const store = opened(t, new SqliteStore({ path }));
    const leases = new Leases(store);
    const first = await leases.claim("a", "alice", "10s");
    const second = await leases.claim("b", "bob", "10s");
    assert.ok(second.token > first.token);
    const raw = new Database(path);
    raw.exec("DELETE FROM globalclock_settings WHERE name = 'token'");
    raw.close();
    await second.release();
    const third = await leases.claim("b", "carol", "10s");
    assert.ok(third.token > second.token, `${third.token} after ${second.token}`);
    const other = await leases.claim("c", "dave", "10s");
    assert.ok(other.token > third.token, "the counter goes on from there");
  });
});

describe("sqlite leases: listing", () => {
  test("a prefix's % and _ are plain characters, and names come in byte order", async (t) => {
    const store = opened(t, new SqliteStore({ path: fresh() }));
    const leases = new Leases(store);
    // In UTF-16 (a JavaScript sort) U+10000 comes before U+FFFF; in UTF-8 bytes after it.
    for (const name of ["a%b", "axb", "a_c", "abc", "a\u{10000}", "a\uffff", "b"])
      await leases.claim(name, "alice", "10s");
    assert.deepEqual(
      (await leases.list("a%")).map((l) => l.name),
      ["a%b"],
    );
    assert.deepEqual(
      (await leases.list("a_")).map((l) => l.name),
      ["a_c"],
    );
    assert.deepEqual(
      (await leases.list("a")).map((l) => l.name),
      ["a%b", "a_c", "abc", "axb", "a\uffff", "a\u{10000}"],
    );
  });
});

describe("sqlite leases: watch", { timeout: 20_000 }, () => {
  test("a lease written by this store or by another connection wakes the watch", async (t) => {
    const path = fresh();
    const store = opened(t, new SqliteStore({ path }));
    const other = opened(t, new SqliteStore({ path }));
    const ac = new AbortController();
    const watch = store.leases.watchLeases("", ac.signal)[Symbol.asyncIterator]();
    const fields = {
      name: "w",
      holder: "a",
      token: 1n,
      newToken: false,
      start: 0n,
      expiry: 5n,
      pins: [],
    };
    const first = nextNotice(watch);
    const v1 = await store.leases.writeLease(fields, undefined);
    await first;
    const second = nextNotice(watch);
    await other.leases.writeLease({ ...fields, holder: "b" }, v1?.version);
    await second;
    ac.abort();
    assert.equal((await watch.next()).done, true);
  });

  test("closing the store ends its lease watches", async () => {
    const store = new SqliteStore({ path: fresh() });
    const watch = store.leases.watchLeases("", new AbortController().signal);
    const ended = (async () => {
      for await (const _ of watch);
    })();
    await store.close();
    await assert.rejects(ended, ClosedError);
  });
});

describe("sqlite leases: checkFence", () => {
  const setup = async () => {
    const path = fresh();
    const store = new SqliteStore({ path });
    const leases = new Leases(store);
    await setClock(store, 100n * S);
    const db = new Database(path);
    db.exec("CREATE TABLE guarded (id INTEGER PRIMARY KEY, value TEXT)");
    db.exec("INSERT INTO guarded VALUES (1, 'initial')");
    const value = () => db.prepare("SELECT value FROM guarded WHERE id = 1").pluck().get();
    const write = db.transaction((holder: string, token: bigint, text: string) => {
      db.prepare("UPDATE guarded SET value = ? WHERE id = 1").run(text);
      checkFence(db, { name: "job", holder, token });
    });
    const close = async () => {
      db.close();
      await store.close();
    };
    return { store, leases, db, value, write, close };
  };

  test("the holder's guarded write commits", async () => {
    const t = await setup();
    const lease = await t.leases.claim("job", "alice", "10s");
    t.write("alice", lease.token, "by alice");
    assert.equal(t.value(), "by alice");
    await t.close();
  });

  test("after another holder took the lease, the old holder's write is refused and rolled back", async () => {
    const t = await setup();
    const old = await t.leases.claim("job", "alice", "10s");
    await setClock(t.store, 110n * S); // alice's lease ran out
    const taken = await t.leases.claim("job", "bob", "10s");
    assert.equal(taken.token, old.token + 1n);
    assert.throws(() => t.write("alice", old.token, "late write by alice"), LeaseLostError);
    assert.equal(t.value(), "initial", "the transaction was rolled back");
    assert.equal(t.db.inTransaction, false);
    t.write("bob", taken.token, "by bob");
    assert.equal(t.value(), "by bob");
    await t.close();
  });

  test("a claim committed between the check and the first write fails the transaction's write", async () => {
    const t = await setup();
    const old = await t.leases.claim("job", "alice", "10s");
    await setClock(t.store, 110n * S);
    t.db.exec("BEGIN"); // deferred: the check only reads
    checkFence(t.db, { name: "job", holder: "alice", token: old.token });
    await t.leases.claim("job", "bob", "10s"); // commits: a reader does not block a writer
    assert.throws(
      () => t.db.prepare("UPDATE guarded SET value = 'late' WHERE id = 1").run(),
      (err: unknown) => (err as { code?: string }).code === "SQLITE_BUSY_SNAPSHOT",
    );
    t.db.exec("ROLLBACK");
    assert.equal(t.value(), "initial");
    await t.close();
  });

  test("outside a transaction, or with no lease table, it refuses", async () => {
    const path = fresh();
    new SqliteStore({ path }).close();
    const db = new Database(path);
    assert.throws(
      () => checkFence(db, { name: "job", holder: "alice", token: 1n }),
      (err: unknown) => err instanceof ConfigError && err.field === "db",
    );
    db.exec("BEGIN");
    assert.throws(
      () => checkFence(db, { name: "job", holder: "alice", token: 1n }),
      LeaseLostError,
    );
    db.exec("ROLLBACK");
    db.close();
  });
});
