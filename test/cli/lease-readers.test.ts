// `lease get|list|wait` and `max-step` only read: a mistyped SQLite path is an error, never a
// new file. And a claim on a clock that nobody advances says that the lease will not expire.
import assert from "node:assert/strict";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { buildIfStale, cli } from "../helpers/cli.js";
import { Daemon } from "../helpers/daemon.js";

let dir: string;
before(() => {
  buildIfStale();
  dir = mkdtempSync(join(tmpdir(), "globalclock-readers-"));
});
after(() => rmSync(dir, { recursive: true, force: true }));

describe("readers never write", { timeout: 60_000 }, () => {
  test("lease get, list, wait and max-step on a path that does not exist: exit 1, and no file", async () => {
    const path = join(dir, "typo.db");
    for (const args of [
      ["lease", "get", "job"],
      ["lease", "list"],
      ["lease", "wait", "job"],
      ["max-step"],
      ["max-step", "--json"],
    ]) {
      const run = await cli(["--store", `sqlite:${path}`, ...args]);
      assert.equal(run.code, 1, `${args.join(" ")}: ${run.stderr}`);
      assert.match(run.stderr, /no database at .*typo\.db/);
      assert.equal(existsSync(path), false, `${args.join(" ")} created the file`);
    }
  });

  test("max-step shows the default until one is stored, and stores one only with --set", async () => {
    const url = `sqlite:${join(dir, "steps.db")}`;
    assert.equal((await cli(["--store", url, "now"])).code, 1, "no file yet");
    assert.equal((await cli(["--store", url, "advance", "0s"])).code, 0); // a clock, a default maxStep
    assert.equal((await cli(["--store", url, "max-step"])).stdout, "1.5s\n");
    assert.equal((await cli(["--store", url, "max-step", "--set", "300ms"])).stdout, "300ms\n");
    assert.deepEqual(JSON.parse((await cli(["--store", url, "max-step", "--json"])).stdout), {
      maxStep: "300000000",
      stored: true,
    });
  });
});

describe("a claim says whether global time moves", { timeout: 60_000 }, () => {
  test("with no updater the lease will not expire, and the claim says so; with one it does not", async () => {
    const url = `sqlite:${join(dir, "still.db")}`;
    const still = await cli([
      "--store",
      url,
      "lease",
      "claim",
      "job",
      "--holder",
      "a",
      "--for",
      "10s",
    ]);
    assert.equal(still.code, 0, still.stderr);
    assert.match(
      still.stdout,
      /note: global time did not move in 1\.5s: no updater keeps it .* will not expire/,
    );
    const json = await cli([
      "--store",
      url,
      "lease",
      "claim",
      "j2",
      "--holder",
      "a",
      "--for",
      "10s",
      "--json",
    ]);
    assert.equal(JSON.parse(json.stdout).clockMoving, false);
    const daemon = new Daemon(url, ["--interval", "100ms"]);
    try {
      await daemon.waitFor((l) => l.event === "role" && l.role === "active");
      const moving = await cli([
        "--store",
        url,
        "lease",
        "claim",
        "j3",
        "--holder",
        "a",
        "--for",
        "10s",
      ]);
      assert.equal(moving.code, 0, moving.stderr);
      assert.doesNotMatch(moving.stdout, /note:/);
    } finally {
      daemon.kill("SIGTERM");
      await daemon.exited;
    }
  });
});
