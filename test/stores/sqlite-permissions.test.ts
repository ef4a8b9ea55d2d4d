/**
 * SQLite files this process may not read or write, judged by the kernel: the store names
 * the path, its owner and mode and the process's uid in one line, before SQLite says
 * "unable to open database file" or "attempt to write a readonly database". As root the
 * child drops to nobody (uid 65534) over root's files; otherwise it runs as itself over
 * files whose modes deny their owner.
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { chmodSync, mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";
import Database from "better-sqlite3";

const root = process.getuid?.() === 0;
const dir = mkdtempSync(join(tmpdir(), "globalclock-perm-"));
chmodSync(dir, 0o755);
after(() => {
  chmodSync(dir, 0o755);
  for (const sub of ["locked", "open"]) {
    try {
      chmodSync(join(dir, sub), 0o755);
    } catch {
      // not made
    }
  }
  rmSync(dir, { recursive: true, force: true });
});

function clockFile(path: string, mode: number): string {
  const db = new Database(path);
  db.exec("CREATE TABLE globalclock (id TEXT PRIMARY KEY, time INTEGER NOT NULL)");
  db.exec("INSERT INTO globalclock VALUES ('g', 42)");
  db.close(); // rollback journal: no -wal or -shm left beside it
  chmodSync(path, mode);
  return path;
}

function asUser(cases: Array<["reader" | "writer", string]>): { uid: number; results: string[] } {
  const child = spawnSync(
    process.execPath,
    [
      "--import",
      "tsx",
      join(import.meta.dirname, "fixtures/sqlite-as-user.ts"),
      JSON.stringify(cases),
    ],
    { encoding: "utf8", timeout: 60_000 },
  );
  assert.equal(child.status, 0, child.stderr);
  return JSON.parse(child.stdout);
}

test("files and folders this user may not use: one line naming path, owner, mode and uid", () => {
  // As root, root's files and folders are someone else's to nobody; as another user, modes
  // that deny the owner do the same.
  const locked = join(dir, "locked");
  mkdirSync(locked);
  const open = join(dir, "open");
  mkdirSync(open);
  const readable = clockFile(join(locked, "readable.db"), 0o666);
  const unreadable = clockFile(join(open, "unreadable.db"), root ? 0o600 : 0o000);
  const notWritable = clockFile(join(open, "not-writable.db"), 0o444);
  const shared = clockFile(join(open, "shared.db"), 0o666);
  chmodSync(locked, 0o555);
  chmodSync(open, root ? 0o777 : 0o755);
  const { uid, results } = asUser([
    ["reader", unreadable],
    ["writer", unreadable],
    ["writer", notWritable],
    ["reader", readable],
    ["writer", readable],
    ["writer", join(locked, "new.db")],
    ["reader", shared],
    ["writer", shared],
  ]);
  assert.equal(uid, root ? 65534 : process.getuid?.());
  const mode = (m: string) => new RegExp(`owned by uid \\d+, group \\d+, mode ${m}\\)`);
  const [r1, w1, w2, r3, w3, w4, r5, w5] = results;
  assert.match(
    r1 ?? "",
    new RegExp(`^StoreError: .*cannot read ${unreadable}: uid ${uid} may not read it`),
  );
  assert.match(r1 ?? "", mode(root ? "0600" : "0000"));
  assert.match(w1 ?? "", /cannot read .*unreadable\.db: uid \d+ may not read it/);
  assert.match(w2 ?? "", new RegExp(`cannot write ${notWritable}: uid ${uid} may not write it`));
  assert.match(w2 ?? "", mode("0444"));
  // In a folder it may not write, with no -shm beside the file: SQLite cannot read it.
  assert.match(
    r3 ?? "",
    new RegExp(`cannot read ${readable}: SQLite needs ${readable}-shm beside it`),
  );
  assert.match(
    r3 ?? "",
    new RegExp(`may not create files in it \\(${locked} is owned by .*mode 0555\\)`),
  );
  assert.match(r3 ?? "", /read it while a worker runs/);
  assert.match(w3 ?? "", /SQLite needs .*readable\.db-wal and .*readable\.db-shm beside it/);
  assert.match(
    w4 ?? "",
    new RegExp(`cannot create ${locked}/new\\.db: uid ${uid} may not create files in it`),
  );
  for (const r of results.slice(0, 6)) {
    assert.doesNotMatch(r ?? "", /unable to open database file|readonly database/, r);
    assert.equal((r ?? "").split("\n").length, 1);
  }
  // Where it may read and write, it opens (with a warning about sharing, tested elsewhere).
  assert.deepEqual([r5, w5], ["ok", "ok"]);
});
