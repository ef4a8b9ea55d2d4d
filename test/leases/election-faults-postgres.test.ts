// Multi-process: leader election while the store fails (an etcd leader killed, a
// PostgreSQL restart) and the leader is paused; see election-faults.ts.
import { test } from "node:test";
import { skipOrFail } from "../helpers/env.js";
import { findPostgresBin, PostgresServer } from "../helpers/postgres-server.js";
import { electionUnderFaults } from "./election-faults.js";

test("election on PostgreSQL: server restarts, a leader paused", {
  timeout: 240_000,
}, async (t) => {
  if (!findPostgresBin()) return skipOrFail(t, "no PostgreSQL under /usr/lib/postgresql/*/bin");
  const server = await PostgresServer.start();
  let round = 0;
  try {
    await electionUnderFaults(
      server.url("postgres", "timeout=1s"),
      async () => {
        const mode = round++ === 0 ? "fast" : "immediate";
        t.diagnostic(`PostgreSQL ${mode} restart`);
        await server.stop(mode);
        await new Promise((r) => setTimeout(r, 1000));
        await server.start();
      },
      (line) => t.diagnostic(line),
    );
  } finally {
    await server.close();
  }
});
