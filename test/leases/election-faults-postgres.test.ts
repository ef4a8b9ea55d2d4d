// Multi-process: leader election on PostgreSQL while the server restarts and leaders are
// killed, stopped, cut off, left hanging and frozen; see election-faults.ts for what is
// checked. The second test is the checks' negative control: candidates that act for maxStep
// past their deadline (CAMPAIGNER_BROKEN_DEADLINE, as a library without the deadline's
// −maxStep would) must fail them, in the terms of the leaders that were cut off or hung.
// It takes about a minute; run it alone with --test-name-pattern="maxStep past".
import assert from "node:assert/strict";
import { test } from "node:test";
import { skipOrFail } from "../helpers/env.js";
import { findPostgresBin, PostgresServer } from "../helpers/postgres-server.js";
import { checkElection, electionUnderFaults } from "./election-faults.js";

test("election on PostgreSQL: server restarts; leaders killed, stopped, cut off, hung and frozen", {
  timeout: 240_000,
}, async (t) => {
  if (!findPostgresBin()) return skipOrFail(t, "no PostgreSQL under /usr/lib/postgresql/*/bin");
  const server = await PostgresServer.start();
  try {
    const record = await electionUnderFaults({
      url: server.url("postgres", "timeout=1s"),
      faults: ["store", "store", "kill", "kill", "term", "hang", "hang", "cut", "freeze", "freeze"],
      storeFault: async (round) => {
        const mode = round % 2 === 0 ? "fast" : "immediate";
        t.diagnostic(`PostgreSQL ${mode} restart`);
        await server.stop(mode);
        await new Promise((r) => setTimeout(r, 1000));
        await server.start();
      },
      log: (line) => t.diagnostic(line),
    });
    assert.deepEqual(checkElection(record).slice(0, 8), []);
  } finally {
    await server.close();
  }
});

test("election on PostgreSQL, candidates acting maxStep past their deadline: the checks fail", {
  timeout: 180_000,
}, async (t) => {
  if (!findPostgresBin()) return skipOrFail(t, "no PostgreSQL under /usr/lib/postgresql/*/bin");
  const server = await PostgresServer.start();
  try {
    const record = await electionUnderFaults({
      url: server.url("postgres", "timeout=1s"),
      faults: ["hang", "cut", "hang", "cut", "freeze"],
      log: (line) => t.diagnostic(line),
      brokenDeadline: true,
    });
    const violations = checkElection(record);
    for (const v of violations) t.diagnostic(`caught: ${v}`);
    assert.ok(
      violations.some((v) => / wrote after .* began/.test(v)),
      "the checks saw no leader acting past its deadline",
    );
    // Caught where a leader outlived its deadline (cut off or hung), and nowhere else.
    for (const v of violations) {
      const term = /^(\S+#\d+) (wrote after|had writes refused)/.exec(v)?.[1] ?? "";
      const fault = record.struck.get(term);
      assert.ok(fault === "hang" || fault === "cut", `not the broken deadline's doing: ${v}`);
    }
  } finally {
    await server.close();
  }
});
