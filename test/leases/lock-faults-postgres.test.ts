import { test } from "node:test";
import { skipOrFail } from "../helpers/env.js";
import { findPostgresBin, PostgresServer } from "../helpers/postgres-server.js";
import { lockUnderFaults } from "./lock-faults.js";

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
