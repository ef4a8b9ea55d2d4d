import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import Database from "better-sqlite3";
import { SqliteStore } from "../../src/stores/sqlite/index.js";
import { leaseConformance } from "./leases-suite.js";
import { conformance } from "./suite.js";

conformance("sqlite", async () => {
  const dir = mkdtempSync(join(tmpdir(), "globalclock-sqlite-"));
  const path = join(dir, "clock.db");
  const first = new SqliteStore({ path, table: "clock_conf" }); // creates the table
  await first.close();
  const raw = new Database(path);
  raw.defaultSafeIntegers(true);
  const put = (value: unknown) =>
    raw.prepare("INSERT OR REPLACE INTO clock_conf (id, time) VALUES ('g', ?)").run(value);
  return {
    open: async () => new SqliteStore({ path, table: "clock_conf" }),
    reset: async () => {
      raw.prepare("DELETE FROM clock_conf").run();
    },
    plantWrongType: async () => {
      put("twelve o'clock");
    },
    plantNegative: async () => {
      put(-5n);
    },
    raw: async () => raw.prepare("SELECT id, time, typeof(time) AS type FROM clock_conf").all(),
    // SQLite has no connection to cut; what fails its calls is another process holding the
    // write lock past busyTimeout.
    breakable: async () => {
      const store = new SqliteStore({ path, table: "clock_conf", busyTimeoutMs: 200 });
      const holder = new Database(path, { timeout: 0 });
      return {
        store,
        cut: async () => {
          holder.exec("BEGIN IMMEDIATE");
          holder.exec("UPDATE clock_conf SET time = time");
        },
        close: async () => {
          if (holder.inTransaction) holder.exec("ROLLBACK");
          holder.close();
          await store.close();
        },
        // A reader in WAL mode is never blocked by a writer. Nothing else fails a read that
        // a retry could mend: an exclusive lock (PRAGMA locking_mode=EXCLUSIVE) cannot be
        // taken while the store's connection is open, and a damaged file is not retryable.
        unaffected: {
          read: "in WAL mode a reader is never blocked by another process's write lock",
        },
      };
    },
    close: async () => {
      raw.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
});

leaseConformance("sqlite", async () => {
  const dir = mkdtempSync(join(tmpdir(), "globalclock-sqlite-leases-"));
  const path = join(dir, "clock.db");
  const first = new SqliteStore({ path, table: "lease_conf" });
  // The first lease write makes the lease and settings tables; the harness plants rows in them.
  const makeTables = () =>
    first.leases.writeLease(
      { name: "-", holder: "", token: 0n, newToken: false, start: 0n, expiry: 0n, pins: [] },
      undefined,
    );
  await makeTables();
  const raw = new Database(path);
  raw.defaultSafeIntegers(true);
  return {
    open: async () => new SqliteStore({ path, table: "lease_conf" }),
    reset: async () => {
      await makeTables(); // again, if a test dropped one
      raw.exec("DELETE FROM lease_conf; DELETE FROM lease_conf_settings");
      raw.exec("DELETE FROM lease_conf_leases");
    },
    deleteClock: async () => {
      raw.prepare("DELETE FROM lease_conf WHERE id = 'g'").run();
    },
    deleteMaxStep: async () => {
      raw.prepare("DELETE FROM lease_conf_settings WHERE name = 'maxStep'").run();
    },
    deleteLease: async (name) => {
      raw.prepare("DELETE FROM lease_conf_leases WHERE name = ?").run(name);
    },
    dropLeases: async () => {
      raw.exec("DROP TABLE lease_conf_leases");
    },
    plantCorruptLease: async (name) => {
      raw
        .prepare(
          "INSERT INTO lease_conf_leases (name, holder, token, start, expiry, pins, version) VALUES (?, 'alice', -1, 0, 5, '[]', 1)",
        )
        .run(name);
    },
    rawLease: async (name) =>
      raw
        .prepare("SELECT *, typeof(token) AS token_type FROM lease_conf_leases WHERE name = ?")
        .get(name),
    close: async () => {
      raw.close();
      await first.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
});
