/**
 * Juju's own cases for its globalclock package (reader, updater and config tests), ported,
 * and run on memory, SQLite in a temporary file, and MongoDB (Juju's own store) through the
 * official driver against the wire-protocol test double, a one-member replica set.
 */
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, afterEach, before, beforeEach, describe, test } from "node:test";
import {
  type ClockStore,
  ConfigError,
  globalEpoch,
  MemoryStore,
  OutOfSyncUpdateError,
  openStore,
  Reader,
  Updater,
} from "../../src/index.js";
import { SqliteStore } from "../../src/stores/sqlite/index.js";
import { MongoDouble } from "../mongo-double/server.js";

interface Target {
  name: string;
  /** A store URL for a fresh, empty clock. */
  url(): string;
}

const dir = mkdtempSync(join(tmpdir(), "globalclock-juju-"));
after(() => rmSync(dir, { recursive: true, force: true }));
let n = 0;

let mongo: MongoDouble | undefined;
before(async () => {
  mongo = await MongoDouble.start({ replicaSet: "rs0" });
});
after(() => mongo?.close());

const targets: Target[] = [
  { name: "memory", url: () => `memory:juju-${process.pid}-${n++}` },
  { name: "sqlite", url: () => `sqlite:${join(dir, `clock-${n++}.db`)}` },
  {
    name: "mongodb (test double)",
    url: () => (mongo as MongoDouble).uri("juju", `collection=globalclock${n++}&timeout=5s`),
  },
];

const SECOND = 1_000_000_000n;

for (const target of targets) {
  describe(`Juju's globalclock cases on ${target.name}`, () => {
    let url: string;
    let opened: ClockStore[];
    /** A new connection to the clock under test, closed after the test. */
    const open = async () => {
      const store = await openStore(url);
      opened.push(store);
      return store;
    };
    const newUpdater = async () => Updater.create(await open());
    /** The stored time, read through a connection of its own, like Juju's readTime. */
    const readTime = async () => {
      const time = await (await open()).read();
      assert.notEqual(time, undefined, "no clock record");
      return time as bigint;
    };

    beforeEach(() => {
      url = target.url();
      opened = [];
    });
    afterEach(async () => {
      for (const store of opened) await store.close();
    });

    test("a new updater writes the epoch", async () => {
      const u = await newUpdater();
      assert.equal(u.time, globalEpoch());
      assert.equal(await readTime(), globalEpoch());
    });

    test("advance(1s+1ns) twice gives the epoch plus 2s+2ns exactly", async () => {
      const u = await newUpdater();
      for (let i = 1n; i <= 2n; i++) {
        assert.equal(await u.advance(SECOND + 1n), i * (SECOND + 1n));
        assert.equal(await readTime(), globalEpoch() + i * (SECOND + 1n));
      }
    });

    test("a second updater preserves the time", async () => {
      const u0 = await newUpdater();
      await u0.advance(SECOND);
      const u1 = await newUpdater();
      assert.equal(u1.time, SECOND);
      assert.equal(await readTime(), SECOND);
      await u1.advance(SECOND);
      assert.equal(await readTime(), 2n * SECOND);
    });

    test("of two updaters from the same view, the second is out of sync, then retries", async () => {
      const u0 = await newUpdater();
      const u1 = await newUpdater();
      await u0.advance(SECOND);
      assert.equal(await readTime(), SECOND);
      await assert.rejects(u1.advance(SECOND), (err: unknown) => {
        assert.ok(err instanceof OutOfSyncUpdateError);
        assert.equal(err.expected, 0n);
        assert.equal(err.actual, SECOND);
        return true;
      });
      assert.equal(await readTime(), SECOND, "a lost advance changed the stored time");
      assert.equal(u1.time, SECOND, "the out-of-sync updater did not take the new view");
      assert.equal(u1.valid, true);
      await u1.advance(SECOND);
      assert.equal(await readTime(), 2n * SECOND);
    });

    test("a reader of a missing record gets the epoch", async () => {
      const reader = new Reader(await open());
      assert.equal(await reader.now(), globalEpoch());
      assert.equal(await (await open()).read(), undefined, "reading created a record");
    });

    test("a reader gets the stored time", async () => {
      const u = await newUpdater();
      await u.advance(SECOND);
      assert.equal(await new Reader(await open()).now(), globalEpoch() + SECOND);
    });
  });
}

// Juju's config tests: a missing part is an error that names it.
describe("configuration names what is missing", () => {
  const field = (name: string) => (err: unknown) => {
    assert.ok(err instanceof ConfigError, `expected a ConfigError, got ${String(err)}`);
    assert.equal(err.field, name);
    assert.match(err.message, new RegExp(`missing ${name}`));
    return true;
  };

  test("openStore without a URL", async () => {
    await assert.rejects(openStore(""), field("store"));
    await assert.rejects(openStore("   "), field("store"));
  });

  test("a SQLite store without a path", async () => {
    assert.throws(() => new SqliteStore({ path: "" }), field("path"));
    await assert.rejects(openStore("sqlite:"), field("path"));
  });

  test("an updater or reader without a store", async () => {
    const none = undefined as unknown as ClockStore;
    await assert.rejects(Updater.create(none), field("store"));
    assert.throws(() => new Reader(none), field("store"));
  });

  test("a store of an unknown kind is named in the error", async () => {
    await assert.rejects(openStore("nosuchstore:x"), (err: unknown) => {
      assert.ok(err instanceof ConfigError);
      assert.equal(err.field, "store");
      assert.match(err.message, /unknown store URL "nosuchstore:x"/);
      return true;
    });
  });

  test("an updater on a store that works needs nothing else", async () => {
    const u = await Updater.create(new MemoryStore());
    assert.equal(u.time, 0n);
  });
});
