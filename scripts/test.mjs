// Runs every test/**/*.test.ts with node's test runner (TypeScript through tsx).
// Node 20's --test takes no globs, so the files are listed here. Extra arguments are
// passed on, e.g. `npm test -- --test-name-pattern=sqlite`.
import { spawnSync } from "node:child_process";
import { readdirSync } from "node:fs";
import { join } from "node:path";

function find(dir) {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory()
      ? find(join(dir, e.name))
      : e.name.endsWith(".test.ts")
        ? [join(dir, e.name)]
        : [],
  );
}

const args = process.argv.slice(2);
const files = args.some((a) => a.endsWith(".ts")) ? [] : find("test").sort();
const run = spawnSync(
  process.execPath,
  // A default timeout for tests that set none: a hang fails its test, never the whole run.
  ["--import", "tsx", "--test", "--test-concurrency=2", "--test-timeout=600000", ...args, ...files],
  {
    stdio: "inherit",
  },
);
process.exit(run.status ?? 1);
