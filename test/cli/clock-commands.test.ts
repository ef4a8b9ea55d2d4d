/**
 * The built CLI, run as a user runs it (`node bin/globalclock.js …`): `now` and `advance`,
 * the store chosen by --store, GLOBALCLOCK_STORE or the default, and each failure with its
 * exit code and one clear line on stderr that never shows a password.
 */
import assert from "node:assert/strict";
import { existsSync, mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, beforeEach, describe, test } from "node:test";
import { buildIfStale, failed, type Run, cli as run } from "../helpers/cli.js";

before(buildIfStale);

let cwd: string;
const dirs: string[] = [];
beforeEach(() => {
  cwd = mkdtempSync(join(tmpdir(), "globalclock-cli-"));
  dirs.push(cwd);
});
after(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

/** Runs the CLI in the test's own directory, without GLOBALCLOCK_STORE unless given. */
const cli = (args: string[], store?: string): Promise<Run> =>
  run(args, store === undefined ? {} : { GLOBALCLOCK_STORE: store }, cwd);

const TIME_LINE = /^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z) (\d+)\n$/;

function ok(run: Run): string {
  assert.equal(run.code, 0, `exit ${run.code}: ${run.stderr}`);
  assert.equal(run.stderr, "");
  return run.stdout;
}

describe("globalclock now", () => {
  test("reads the default store, ./globalclock.db, which a reader never creates", async () => {
    failed(await cli(["now"]), 1, /no database at .*globalclock\.db: a reader never creates one/);
    assert.deepEqual(readdirSync(cwd), [], "now created a file");
    ok(await cli(["advance", "0s"])); // a writer creates the clock, at the epoch
    assert.ok(existsSync(join(cwd, "globalclock.db")), "the default store is not ./globalclock.db");
    const out = ok(await cli(["now"]));
    assert.equal(out, "1970-01-01T00:00:00.000000000Z 0\n");
  });

  test("--json prints one JSON object", async () => {
    ok(await cli(["advance", "0s"]));
    const out = ok(await cli(["now", "--json"]));
    assert.deepEqual(JSON.parse(out), { time: "1970-01-01T00:00:00.000000000Z", ns: "0" });
    assert.equal(out.split("\n").length, 2);
  });
});

describe("globalclock advance", () => {
  test("advances the store --store names, and now shows it", async () => {
    const store = `sqlite:${join(cwd, "a.db")}`;
    assert.equal(
      ok(await cli(["--store", store, "advance", "1.5s"])),
      "1970-01-01T00:00:01.500000000Z 1500000000\n",
    );
    const out = ok(await cli(["--store", store, "advance", "1s1ns", "--json"]));
    assert.deepEqual(JSON.parse(out), { time: "1970-01-01T00:00:02.500000001Z", ns: "2500000001" });
    const [, iso, ns] = TIME_LINE.exec(ok(await cli(["now", "--store", store]))) ?? [];
    assert.equal(ns, "2500000001");
    assert.equal(iso, "1970-01-01T00:00:02.500000001Z");
  });

  test("uses GLOBALCLOCK_STORE, and --store wins over it", async () => {
    const fromEnv = `sqlite:${join(cwd, "env.db")}`;
    const fromFlag = `sqlite:${join(cwd, "flag.db")}`;
    ok(await cli(["advance", "250ms"], fromEnv));
    assert.match(ok(await cli(["now"], fromEnv)), / 250000000\n$/);
    ok(await cli(["--store", fromFlag, "advance", "1ms"], fromEnv));
    assert.match(ok(await cli(["now"], fromEnv)), / 250000000\n$/);
    assert.match(ok(await cli(["now", "--store", fromFlag], fromEnv)), / 1000000\n$/);
    assert.ok(!existsSync(join(cwd, "globalclock.db")), "the default store was used");
  });
});

describe("failures", () => {
  test("a bad duration is a usage error (2), found before the store is touched", async () => {
    const store = `sqlite:${join(cwd, "untouched.db")}`;
    failed(
      await cli(["--store", store, "advance", "5"]),
      2,
      /invalid duration "5": expected a number with a unit/,
    );
    failed(await cli(["--store", store, "advance", "1s junk"]), 2, /invalid duration "1s junk"/);
    failed(await cli(["--store", store, "advance", "1x"]), 2, /unknown unit "x"/);
    failed(await cli(["--store", store, "advance", "-1s"]), 2, /unknown option '-1s'/);
    assert.ok(!existsSync(join(cwd, "untouched.db")), "the store was opened for a bad duration");
  });

  test("a missing argument or unknown command is a usage error (2)", async () => {
    failed(await cli(["advance"]), 2, /missing required argument 'duration'/);
    failed(await cli(["tick"]), 2, /unknown command 'tick'/);
  });

  test("a bad store URL is a usage error (2), by --store or GLOBALCLOCK_STORE", async () => {
    failed(await cli(["--store", "foo:bar", "now"]), 2, /unknown store URL "foo:bar"/);
    failed(await cli(["now"], "foo:bar"), 2, /unknown store URL "foo:bar"/);
    failed(
      await cli(["--store", "sqlite:x.db?tabel=t", "now"]),
      2,
      /unknown sqlite store option "tabel"/,
    );
  });

  test("a file that cannot be opened is a failure (1)", async () => {
    const run = await cli(["--store", "sqlite:/nonexistent-dir/x.db", "now"]);
    failed(run, 1, /sqlite store: open failed: no database at \/nonexistent-dir\/x\.db/);
    failed(
      await cli(["advance", "1s"], "sqlite:/nonexistent-dir/x.db"),
      1,
      /cannot create \/nonexistent-dir\/x\.db: the folder \/nonexistent-dir does not exist\n/,
    );
  });

  test("a password in a store URL never reaches stderr", async () => {
    const urls = ["foo://user:s3cr3tpw@host/", "foo://user:s3cr3tpw@host/db?password=s3cr3tpw"];
    for (const url of urls) {
      for (const run of [
        await cli(["--store", url, "now"]),
        await cli(["advance", "1s"], url),
        await cli([`--store=${url}`, "advance", "1s"]),
      ]) {
        const line = failed(run, 2, /unknown store URL/);
        assert.ok(!line.includes("s3cr3tpw"), line);
        assert.match(line, /user:\*\*\*@host/);
      }
    }
  });

  test("a store that refuses the connection does not show its password either", async () => {
    // Port 1 on loopback refuses at once. Whether the store is registered yet or not,
    // the error must hide the password.
    const run = await cli(["--store", "postgres://user:s3cr3tpw@127.0.0.1:1/clock", "now"]);
    assert.ok(run.code === 1 || run.code === 2, `exit ${run.code}`);
    assert.match(run.stderr, /^globalclock: [^\n]+\n$/);
    assert.ok(!run.stderr.includes("s3cr3tpw"), run.stderr);
  });
});
