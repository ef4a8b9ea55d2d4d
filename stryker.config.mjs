// Mutation testing of the clock and lease core (`npm run mutate`; not in CI: it takes about
// 40 minutes on 2 cores). Each test file is one "test" to Stryker's TAP runner, and per-test
// coverage runs only the files that reach a mutant. The files chosen are the fast ones that
// judge the core: fake clocks, simulated time, the memory and SQLite stores, and PostgreSQL's
// conformance for its lease SQL (it starts its own server).
/** @type {import("@stryker-mutator/api/core").PartialStrykerOptions} */
export default {
  testRunner: "tap",
  tap: {
    // In this order a mutant runs its covering files, stopping at the first that fails:
    // the quick unit files first, the 3–12 s simulations and PostgreSQL's server last.
    testFiles: [
      "test/leases/records.test.ts",
      "test/leases/info.test.ts",
      "test/leases/leases-api.test.ts",
      "test/leases/holder.test.ts",
      "test/leases/lease.test.ts",
      "test/leases/hold.test.ts",
      "test/leases/wait.test.ts",
      "test/leases/election.test.ts",
      "test/core/record.test.ts",
      "test/core/updater.test.ts",
      "test/core/reader.test.ts",
      "test/core/errors.test.ts",
      "test/worker/settings.test.ts",
      "test/worker/operators.test.ts",
      "test/worker/worker.test.ts",
      "test/stores/sqlite-leases.test.ts",
      "test/conformance/memory.test.ts",
      "test/conformance/sqlite.test.ts",
      "test/leases/leases.property.test.ts",
      "test/conformance/postgres.test.ts",
      "test/core/updaters.property.test.ts",
    ],
    nodeArgs: ["--import", "tsx", "--test-reporter=tap"],
    forceBail: true,
  },
  mutate: [
    "src/leases/**/*.ts",
    "src/worker.ts",
    "src/updater.ts",
    "src/reader.ts",
    "src/clock-record.ts",
    "src/record.ts",
    "src/stores/lease-rows.ts",
    "src/stores/sqlite/lease-sql.ts",
    "src/stores/postgres/lease-sql.ts",
  ],
  coverageAnalysis: "perTest",
  // A second run re-tests only the mutants whose code or covering tests changed
  // (`npm run mutate -- --incremental`); the committed summary comes from a full run.
  incrementalFile: "reports/stryker-incremental.json",
  concurrency: 2,
  // A mutant that hangs a test is detected (a timeout) after its tests' own time twice over
  // plus 10 s; the suites' own waits are shorter than that.
  timeoutMS: 10_000,
  timeoutFactor: 2,
  reporters: ["clear-text", "progress", "json"],
  jsonReporter: { fileName: "reports/mutation/mutation.json" },
  tempDirName: ".stryker-tmp",
  // The project's tsconfig needs no rewriting in the sandbox (it names no file outside it),
  // and TypeScript 7 has no JavaScript API for Stryker's rewriter to call: point it nowhere.
  tsconfigFile: "stryker-has-no-tsconfig.json",
  cleanTempDir: "always",
  ignorePatterns: ["dist", "reports", "bench/results", "scratch", ".stryker-tmp"],
};
