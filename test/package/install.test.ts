/**
 * The packed package, installed into an empty project as a user would: it pulls no
 * network driver (they are optional peers), `import "globalclock"` loads no native module,
 * and a URL whose driver is missing is a ConfigError naming the package to install.
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { fileURLToPath } from "node:url";
import { skipOrFail } from "../helpers/env.js";

const ROOT = fileURLToPath(new URL("../..", import.meta.url));

function run(command: string, args: string[], cwd: string): string {
  const result = spawnSync(command, args, { cwd, encoding: "utf8", timeout: 240_000 });
  assert.equal(result.status, 0, `${command} ${args.join(" ")}: ${result.stdout}${result.stderr}`);
  return result.stdout;
}

describe("the packed package in an empty project", { timeout: 300_000 }, () => {
  let dir: string;

  before(() => {
    dir = mkdtempSync(join(tmpdir(), "globalclock-install-"));
    // dist/ was built by `npm test`; --ignore-scripts packs it as it is.
    const packed = JSON.parse(
      run("npm", ["pack", "--ignore-scripts", "--json", "--pack-destination", dir], ROOT),
    ) as Array<{ filename: string; files: Array<{ path: string }> }>;
    const tarball = join(dir, (packed[0] as { filename: string }).filename);
    const project = join(dir, "project");
    run("mkdir", ["-p", project], dir);
    writeFileSync(
      join(project, "package.json"),
      JSON.stringify({ name: "user-project", version: "1.0.0", type: "module", private: true }),
    );
    // No install scripts: whether better-sqlite3 compiles is not what this checks.
    run(
      "npm",
      ["install", "--ignore-scripts", "--no-audit", "--no-fund", "--prefer-offline", tarball],
      project,
    );
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  test("the tarball npm pack leaves in the project is ignored by git", (t) => {
    const [tarball] = readdirSync(dir).filter((f) => f.endsWith(".tgz"));
    const git = spawnSync("git", ["check-ignore", "-q", tarball as string], { cwd: ROOT });
    if (git.error || git.status === 128) return skipOrFail(t, "not a git checkout");
    assert.equal(git.status, 0, `${tarball} is not in .gitignore`);
  });

  test("ships no source maps and no tests", () => {
    const files = readdirSync(join(dir, "project/node_modules/globalclock/dist"), {
      recursive: true,
    }).map(String);
    assert.ok(files.includes("index.js"));
    assert.deepEqual(
      files.filter((f) => f.endsWith(".map")),
      [],
    );
    assert.ok(!existsSync(join(dir, "project/node_modules/globalclock/test")));
  });

  test("installs no network driver", () => {
    const modules = join(dir, "project/node_modules");
    for (const driver of ["pg", "etcd3", "mongodb", "@grpc/grpc-js", "cockatiel"]) {
      assert.ok(!existsSync(join(modules, driver)), `${driver} was installed`);
    }
    assert.ok(existsSync(join(modules, "better-sqlite3")), "the embedded default store's driver");
  });

  test("a store URL whose driver is missing is a ConfigError naming the package", () => {
    const script = `
      import { ConfigError, openReader, openStore } from "globalclock";
      const out = {};
      for (const url of ["postgres://u:hunter22@127.0.0.1:1/db", "etcd://127.0.0.1:1", "mongodb://127.0.0.1:1/x"]) {
        try { await openStore(url); out[url] = "opened"; }
        catch (err) { out[url] = { config: err instanceof ConfigError, field: err.field, message: err.message }; }
      }
      const reader = await openReader("memory:");
      out.memory = String(await reader.now());
      await reader.close();
      // import "globalclock" must not have loaded the native SQLite module (not even built here)
      const { cache } = (await import("node:module")).createRequire(import.meta.url);
      const sqliteLoaded = () => Object.keys(cache).some((p) => p.includes("better-sqlite3"));
      out.sqliteLoaded = sqliteLoaded();
      await import("globalclock/sqlite");
      out.sqliteLoadedBySubpath = sqliteLoaded();
      console.log(JSON.stringify(out));
    `;
    writeFileSync(join(dir, "project/check.mjs"), script);
    const out = JSON.parse(run(process.execPath, ["check.mjs"], join(dir, "project")));
    const expect = {
      "postgres://u:hunter22@127.0.0.1:1/db": "pg",
      "etcd://127.0.0.1:1": "etcd3",
      "mongodb://127.0.0.1:1/x": "mongodb",
    };
    for (const [url, driver] of Object.entries(expect)) {
      const got = out[url];
      assert.equal(got.config, true, `${url}: ${JSON.stringify(got)}`);
      assert.equal(got.field, "store");
      assert.match(got.message, new RegExp(`"${driver}".*npm install ${driver}`));
      assert.ok(!got.message.includes("hunter22"));
    }
    assert.equal(out.memory, "0");
    assert.ok(!/npm install -g/.test(JSON.stringify(out)), "a project's install is not global");
    assert.equal(out.sqliteLoaded, false);
    assert.equal(out.sqliteLoadedBySubpath, true, "the check above can see a loaded module");
  });

  test("installed with npm install -g, the CLI's hint for a missing driver says npm install -g", () => {
    const prefix = join(dir, "global");
    const [tarball] = readdirSync(dir).filter((f) => f.endsWith(".tgz"));
    run(
      "npm",
      ["install", "-g", "--prefix", prefix, "--ignore-scripts", "--no-audit", "--no-fund"].concat([
        "--prefer-offline",
        join(dir, tarball as string),
      ]),
      dir,
    );
    const cli = spawnSync(
      join(prefix, "bin/globalclock"),
      ["--store", "postgres://u:hunter22@127.0.0.1:1/db", "now"],
      { cwd: dir, encoding: "utf8", timeout: 60_000 },
    );
    assert.equal(cli.status, 2, cli.stderr);
    assert.match(
      cli.stderr,
      /needs the npm package "pg", which is not installed: npm install -g pg$/m,
    );
    assert.ok(!cli.stderr.includes("hunter22"));
  });
});
