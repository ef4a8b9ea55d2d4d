// Multi-process: `globalclock lock` holders and clock workers killed and paused, on
// SQLite and on PostgreSQL; see lock-faults.ts for what is checked.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
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
