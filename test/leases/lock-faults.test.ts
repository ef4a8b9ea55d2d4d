// Multi-process: `globalclock lock` holders and clock workers killed and paused, on
// SQLite and on PostgreSQL; see lock-faults.ts for what is checked.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { skipOrFail } from "../helpers/env.js";
import { findPostgresBin, PostgresServer } from "../helpers/postgres-server.js";
import { lockUnderFaults } from "./lock-faults.js";

test("lock on SQLite: holders and clock workers killed and paused", {
  timeout: 180_000,
}, async (t) => {
  const dir = mkdtempSync(join(tmpdir(), "globalclock-lock-faults-"));
  try {
    await lockUnderFaults(`sqlite:${join(dir, "clock.db")}`, (line) => t.diagnostic(line));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("lock on PostgreSQL: holders and clock workers killed and paused", {
  timeout: 180_000,
}, async (t) => {
  if (!findPostgresBin()) return skipOrFail(t, "no PostgreSQL under /usr/lib/postgresql/*/bin");
  const server = await PostgresServer.start();
  try {
    await lockUnderFaults(server.url("postgres", "timeout=1s"), (line) => t.diagnostic(line));
  } finally {
    await server.close();
  }
});
