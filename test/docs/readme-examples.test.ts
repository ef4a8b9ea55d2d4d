/**
 * Every ```js block of the README runs as written, with this Node.js, as an ES module in an
 * empty project where the packed package is installed, and ends by itself. An example
 * that needs a server reads its address from the environment (MONGODB_URI), pointed here
 * at the MongoDB test double.
 */
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import {
  copyFileSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { fileURLToPath } from "node:url";
import { MongoDouble } from "../mongo-double/server.js";

const ROOT = fileURLToPath(new URL("../..", import.meta.url));
const EXAMPLES = [
  ...readFileSync(join(ROOT, "README.md"), "utf8").matchAll(/```js\n([\s\S]*?)```/g),
].map((m) => m[1] as string);

function run(command: string, args: string[], cwd: string): string {
  const result = spawnSync(command, args, { cwd, encoding: "utf8", timeout: 240_000 });
  assert.equal(result.status, 0, `${command} ${args.join(" ")}: ${result.stdout}${result.stderr}`);
  return result.stdout;
}

/** Runs node; kills it after `timeoutMs` (then `signal` says so). */
function node(args: string[], cwd: string, env: NodeJS.ProcessEnv, timeoutMs: number) {
  const child = spawn(process.execPath, args, { cwd, env, timeout: timeoutMs });
  let stdout = "";
  let stderr = "";
  child.stdout.setEncoding("utf8").on("data", (s: string) => {
    stdout += s;
  });
  child.stderr.setEncoding("utf8").on("data", (s: string) => {
    stderr += s;
  });
  return new Promise<{
    status: number | null;
    signal: string | null;
    stdout: string;
    stderr: string;
  }>((resolve, reject) => {
    child.on("error", reject);
    child.on("close", (status, signal) => resolve({ status, signal, stdout, stderr }));
  });
}

const version = (dir: string) =>
  JSON.parse(readFileSync(join(dir, "package.json"), "utf8")).version as string;

let dir: string;
let project: string;
let mongo: MongoDouble;

before(async () => {
  dir = mkdtempSync(join(tmpdir(), "globalclock-readme-"));
  project = join(dir, "project");
  mkdirSync(project);
  // dist/ was built by `npm test`; --ignore-scripts packs it as it is.
  const [packed] = JSON.parse(
    run("npm", ["pack", "--ignore-scripts", "--json", "--pack-destination", dir], ROOT),
  ) as Array<{ filename: string }>;
  writeFileSync(
    join(project, "package.json"),
    JSON.stringify({ name: "readme-examples", version: "1.0.0", type: "module", private: true }),
  );
  run(
    "npm",
    [
      "install",
      "--ignore-scripts",
      "--no-audit",
      "--no-fund",
      "--prefer-offline",
      join(dir, packed?.filename as string),
    ],
    project,
  );
  // better-sqlite3 was installed without its build step: the checkout's binary, same version.
  const sqlite = join(project, "node_modules/better-sqlite3");
  const ours = join(ROOT, "node_modules/better-sqlite3");
  assert.equal(version(sqlite), version(ours), "better-sqlite3 versions differ");
  mkdirSync(join(sqlite, "build/Release"), { recursive: true });
  copyFileSync(
    join(ours, "build/Release/better_sqlite3.node"),
    join(sqlite, "build/Release/better_sqlite3.node"),
  );
  // The MongoDB example's driver, an optional peer: the checkout's copy.
  symlinkSync(join(ROOT, "node_modules/mongodb"), join(project, "node_modules/mongodb"), "dir");
  mongo = await MongoDouble.start({ replicaSet: "rs0" });
});

after(async () => {
  await mongo?.close();
  rmSync(dir, { recursive: true, force: true });
});

test("the README shows its usage in ```js blocks", () => {
  assert.ok(EXAMPLES.length >= 3, `${EXAMPLES.length} blocks`);
});

for (const [i, code] of EXAMPLES.entries()) {
  const title = code.split("\n").find((l) => !l.startsWith("import") && l.trim()) ?? "";
  test(`README example ${i + 1} runs and ends by itself: ${title.slice(0, 60)}`, {
    timeout: 120_000,
  }, async (t) => {
    const cwd = join(project, `example${i + 1}`); // its own folder: its own ./globalclock.db
    mkdirSync(cwd);
    writeFileSync(join(cwd, "example.js"), code);
    const env: NodeJS.ProcessEnv = { ...process.env, MONGODB_URI: mongo.uri() };
    delete env.GLOBALCLOCK_STORE;
    // Not spawnSync: the MongoDB double answers from this process's event loop.
    const result = await node(["example.js"], cwd, env, 60_000);
    assert.equal(result.signal, null, `still running after 60 s:\n${result.stdout}`);
    assert.equal(result.status, 0, `${result.stdout}${result.stderr}`);
    assert.equal(result.stderr, "");
    t.diagnostic(result.stdout.trim().split("\n").slice(0, 5).join(" | "));
    assert.notEqual(result.stdout, "", "an example that prints nothing shows nothing");
  });
}
