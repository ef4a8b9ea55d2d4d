/**
 * SQLite files in the operators' world: readers that never write (no file, no table, no
 * journal mode switched), symlinks planted by another user, and files shared between users.
 */
import assert from "node:assert/strict";
import {
  chmodSync,
  existsSync,
  lchownSync,
  mkdtempSync,
  readdirSync,
  rmSync,
  symlinkSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, type TestContext, test } from "node:test";
import Database from "better-sqlite3";
import { openReader, openStore, StoreError } from "../../src/index.js";
import { skipOrFail } from "../helpers/env.js";

const dir = mkdtempSync(join(tmpdir(), "globalclock-files-"));
after(() => rmSync(dir, { recursive: true, force: true }));
let n = 0;
const fresh = () => join(dir, `c${n++}.db`);

/** A database another program made: rollback journal, maybe without the clock table. */
function foreignDatabase(path: string, withClock: boolean): void {
  const db = new Database(path);
  db.exec("CREATE TABLE notes (body TEXT)");
  if (withClock) {
    db.exec("CREATE TABLE globalclock (id TEXT PRIMARY KEY, time INTEGER NOT NULL)");
    db.exec("INSERT INTO globalclock VALUES ('g', 42)");
  }
  db.close();
}

function inspect(path: string): { mode: unknown; tables: unknown } {
  const db = new Database(path, { readonly: true });
  try {
    return {
      mode: db.pragma("journal_mode", { simple: true }),
      tables: db.prepare("SELECT name FROM sqlite_master ORDER BY name").pluck().all(),
    };
  } finally {
    db.close();
  }
}

const refused = (pattern: RegExp) => (err: unknown) => {
  assert.ok(err instanceof StoreError, String(err));
  assert.equal(err.store, "sqlite");
  assert.equal(err.retryable, false);
  assert.match(err.message, pattern);
  return true;
};

describe("sqlite: readers never write", () => {
  test("a reader of a path that does not exist fails and creates nothing", async () => {
    const path = fresh();
    await assert.rejects(
      openReader(`sqlite:${path}`),
      refused(/no database at .*a reader never creates one/),
    );
    assert.ok(!existsSync(path));
    assert.ok(!readdirSync(dir).some((f) => f.startsWith("c0")), "nothing beside it either");
  });

  test("a reader of a database without the clock table reads the epoch, and adds no table", async () => {
    const path = fresh();
    foreignDatabase(path, false);
    const before = inspect(path);
    const reader = await openReader(`sqlite:${path}`);
    assert.equal(await reader.now(), 0n);
    await reader.close();
    assert.deepEqual(inspect(path), before);
    assert.equal(before.mode, "delete");
  });

  test("a reader reads the clock and leaves the journal mode as it found it", async () => {
    const path = fresh();
    foreignDatabase(path, true);
    const reader = await openReader(`sqlite:${path}`);
    assert.equal(await reader.now(), 42n);
    await reader.close();
    assert.deepEqual(inspect(path), {
      mode: "delete",
      tables: ["globalclock", "notes", "sqlite_autoindex_globalclock_1"],
    });
  });

  test("a store opened read-only refuses writes", async () => {
    const path = fresh();
    foreignDatabase(path, true);
    const store = await openStore(`sqlite:${path}`, { readOnly: true });
    await assert.rejects(store.ensure(), refused(/opened read-only/));
    await assert.rejects(store.compareAndSwap(42n, 43n), refused(/opened read-only/));
    assert.equal(await store.read(), 42n);
    await store.close();
  });

  test("a writer does what a reader never does: creates the file, the table, WAL mode", async () => {
    const path = fresh();
    const store = await openStore(`sqlite:${path}`);
    assert.equal(await store.ensure(), 0n);
    await store.close();
    assert.deepEqual(inspect(path), {
      mode: "wal",
      tables: ["globalclock", "sqlite_autoindex_globalclock_1"],
    });
  });
});

describe("sqlite: a corrupt record reaches no terminal as it is", () => {
  test("a blob of terminal escapes is shown as hex", async () => {
    const path = fresh();
    foreignDatabase(path, false);
    const db = new Database(path);
    db.exec("CREATE TABLE globalclock (id TEXT PRIMARY KEY, time INTEGER NOT NULL)");
    db.prepare("INSERT INTO globalclock VALUES ('g', ?)").run(
      Buffer.from("\x1b]0;pwned\x07\x1b[2J"),
    );
    db.close();
    const reader = await openReader(`sqlite:${path}`);
    await assert.rejects(reader.now(), (err: unknown) => {
      assert.ok(err instanceof Error);
      assert.match(err.message, /time is a blob of 14 bytes \(1b5d303b70776e6564071b5b324a\)/);
      assert.ok(!/\p{Cc}/u.test(err.message), JSON.stringify(err.message));
      return true;
    });
    await reader.close();
  });
});

describe("sqlite: files of other users", () => {
  // Making a file or link owned by another user takes root.
  const notRoot = (t: TestContext) => {
    if (process.getuid?.() === 0) return false;
    skipOrFail(t, "these tests chown files to another user, which needs root");
    return true;
  };

  test("a symlink owned by another user is never followed, by readers or writers", async (t) => {
    if (notRoot(t)) return;
    const target = fresh();
    foreignDatabase(target, true);
    const link = fresh();
    symlinkSync(target, link);
    lchownSync(link, 65534, 65534); // nobody
    const before = inspect(target);
    await assert.rejects(
      openReader(`sqlite:${link}`),
      refused(/symbolic link owned by another user/),
    );
    await assert.rejects(
      openStore(`sqlite:${link}`),
      refused(/symbolic link owned by another user/),
    );
    assert.deepEqual(inspect(target), before, "the target was not touched");
  });

  test("a symlink of our own is followed", async () => {
    const target = fresh();
    foreignDatabase(target, true);
    const link = fresh();
    symlinkSync(target, link);
    const reader = await openReader(`sqlite:${link}`);
    assert.equal(await reader.now(), 42n);
    await reader.close();
  });

  test("a file owned by another user, or writable by group or others, opens with a warning", async (t) => {
    if (notRoot(t)) return;
    const warnings: Error[] = [];
    const onWarning = (w: Error) => warnings.push(w);
    process.on("warning", onWarning);
    try {
      const shared = fresh();
      foreignDatabase(shared, true);
      chmodSync(shared, 0o664);
      const foreign = fresh();
      foreignDatabase(foreign, true);
      chmodSync(foreign, 0o644);
      lchownSync(foreign, 65534, 65534);
      const mine = fresh();
      foreignDatabase(mine, true);
      chmodSync(mine, 0o644);
      for (const path of [shared, foreign, mine]) {
        const reader = await openReader(`sqlite:${path}`);
        assert.equal(await reader.now(), 42n);
        await reader.close();
      }
      await new Promise((r) => setImmediate(r)); // warnings are emitted on the next tick
      const ours = warnings.filter(
        (w) => (w as { code?: string }).code === "GLOBALCLOCK_SHARED_DATABASE",
      );
      assert.equal(ours.length, 2, ours.map((w) => w.message).join("\n"));
      assert.match(ours[0]?.message ?? "", /writable by its group or by others/);
      assert.match(ours[1]?.message ?? "", /owned by another user \(uid 65534\)/);
    } finally {
      process.off("warning", onWarning);
    }
  });
});
