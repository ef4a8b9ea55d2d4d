/**
 * `globalclock lease …`, `max-step` and `lock`, run as a user runs them, on a SQLite file.
 */
import assert from "node:assert/strict";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, beforeEach, describe, test } from "node:test";
import Database from "better-sqlite3";
import { buildIfStale, type Run, startCli } from "../helpers/cli.js";

before(buildIfStale);

let cwd: string;
const dirs: string[] = [];
beforeEach(() => {
  cwd = mkdtempSync(join(tmpdir(), "globalclock-lease-cli-"));
  dirs.push(cwd);
});
after(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

/** Runs the CLI in the test's own directory, on its default store there. */
const start = (args: string[]) => startCli(args, {}, cwd);
const cli = (args: string[]) => start(args).done;

function code(run: Run, expected: number): Run {
  assert.equal(run.code, expected, `exit ${run.code}, not ${expected}: ${run.stdout}${run.stderr}`);
  return run;
}

async function waitFor(what: string, check: () => boolean, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`gave up waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe("globalclock lease", { timeout: 120_000 }, () => {
  test("claim, get, list, extend, revoke, with exit code 4 for a lease held or lost", async () => {
    const claim = JSON.parse(
      code(await cli(["lease", "claim", "job", "--holder", "alice", "--for", "10s", "--json"]), 0)
        .stdout,
    );
    assert.equal(claim.token, "1");
    assert.equal(claim.expiry, "10000000000");
    assert.ok(BigInt(claim.safeForNs) > 0n && BigInt(claim.safeForNs) < 8_500_000_000n);
    const held = code(await cli(["lease", "claim", "job", "--holder", "bob", "--for", "10s"]), 4);
    assert.match(held.stderr, /^globalclock: lease "job" is held by "alice" \(token 1\)/);
    assert.match(
      code(await cli(["lease", "get", "job"]), 0).stdout,
      /^job {2}held by alice {2}token 1/,
    );
    code(await cli(["lease", "claim", "jobs/b", "--holder", "alice", "--for", "10s"]), 0);
    const listed = code(await cli(["lease", "list", "jobs/", "--json"]), 0)
      .stdout.trim()
      .split("\n");
    assert.deepEqual(
      listed.map((l) => JSON.parse(l).name),
      ["jobs/b"],
    );
    code(
      await cli(["lease", "extend", "job", "--holder", "alice", "--token", "1", "--for", "20s"]),
      0,
    );
    code(
      await cli(["lease", "extend", "job", "--holder", "bob", "--token", "1", "--for", "20s"]),
      4,
    );
    code(await cli(["lease", "revoke", "job", "--holder", "bob", "--token", "1"]), 4);
    code(await cli(["lease", "revoke", "job", "--holder", "alice", "--token", "1"]), 0);
    const next = JSON.parse(
      code(await cli(["lease", "claim", "job", "--holder", "bob", "--for", "10s", "--json"]), 0)
        .stdout,
    );
    assert.ok(BigInt(next.token) > BigInt(claim.token), "a new holder, a greater token");
  });

  test("pin and unpin say what they did; unpin by an entity that holds no pin is exit 4 and changes nothing", async () => {
    code(await cli(["lease", "claim", "p", "--holder", "a", "--for", "10s"]), 0);
    assert.equal(
      code(await cli(["lease", "pin", "p", "--entity", "e"]), 0).stdout,
      "lease p pinned by e\n",
    );
    const typo = code(await cli(["lease", "unpin", "p", "--entity", "nobody"]), 4);
    assert.equal(
      typo.stderr,
      "globalclock: lease p is not pinned by nobody (pinned by e); nothing changed\n",
    );
    assert.deepEqual(JSON.parse(code(await cli(["lease", "get", "p", "--json"]), 0).stdout).pins, [
      "e",
    ]);
    assert.equal(
      code(await cli(["lease", "unpin", "p", "--entity", "e"]), 0).stdout,
      "lease p unpinned by e\n",
    );
    assert.match(
      code(await cli(["lease", "unpin", "p", "--entity", "e"]), 4).stderr,
      /is not pinned by e \(no pins\); nothing changed/,
    );
    assert.match(
      code(await cli(["lease", "unpin", "never", "--entity", "e"]), 4).stderr,
      /lease never is not pinned by e \(no pins\)/,
    );
  });

  test("bad input is a usage error (2)", async () => {
    code(await cli(["lease", "claim", "job", "--holder", "a", "--for", "1s"]), 2); // < 3 × maxStep
    code(await cli(["lease", "extend", "job", "--holder", "a", "--token", "x1", "--for", "9s"]), 2);
    code(await cli(["lease", "claim", "job", "--for", "9s"]), 2); // no holder
    code(await cli(["max-step", "--set", "-1s"]), 2);
  });

  test("wait returns once the lease is released; max-step shows and sets the cluster's", async () => {
    code(await cli(["lease", "claim", "w", "--holder", "a", "--for", "30s"]), 0);
    const waiting = cli(["lease", "wait", "w"]);
    await new Promise((r) => setTimeout(r, 500));
    code(await cli(["lease", "revoke", "w", "--holder", "a", "--token", "1"]), 0);
    assert.match(code(await waiting, 0).stdout, /^w {2}released {2}token 1 {2}free/);
    assert.equal(code(await cli(["max-step"]), 0).stdout, "1.5s\n");
    assert.equal(code(await cli(["max-step", "--set", "1s"]), 0).stdout, "1s\n");
    assert.equal(code(await cli(["max-step"]), 0).stdout, "1s\n");
  });

  test("list prints a table under column headers, aligned; --json prints the same JSON lines as before", async () => {
    code(await cli(["lease", "claim", "a", "--holder", "alice", "--for", "10s"]), 0);
    code(await cli(["lease", "claim", "build/long-name", "--holder", "b", "--for", "90s"]), 0);
    code(await cli(["lease", "claim", "p", "--holder", "carol", "--for", "10s"]), 0);
    code(await cli(["lease", "pin", "p", "--entity", "ops"]), 0);
    code(await cli(["lease", "pin", "p", "--entity", "audit"]), 0);
    code(await cli(["lease", "claim", "r", "--holder", "dave", "--for", "10s"]), 0);
    code(await cli(["lease", "revoke", "r", "--holder", "dave", "--token", "4"]), 0);
    // No updater runs here: global time stands still, so the time left is the full duration.
    assert.equal(
      code(await cli(["lease", "list"]), 0).stdout,
      [
        "NAME             HOLDER  TOKEN  EXPIRES IN  PINS",
        "a                alice   1      10s         -",
        "build/long-name  b       2      1.5m        -",
        "p                carol   3      pinned      ops,audit",
        "r                -       4      released    -",
        "",
      ].join("\n"),
    );
    assert.equal(
      code(await cli(["lease", "list", "build/"]), 0).stdout,
      "NAME             HOLDER  TOKEN  EXPIRES IN  PINS\nbuild/long-name  b       2      1.5m        -\n",
    );
    assert.equal(
      code(await cli(["lease", "list", "zz"]), 0).stdout,
      "no leases whose names start with zz\n",
    );
    const lines = code(await cli(["lease", "list", "--json"]), 0)
      .stdout.trim()
      .split("\n");
    assert.deepEqual(
      lines.map((l) => Object.keys(JSON.parse(l))),
      Array(4).fill(["name", "holder", "token", "start", "expiry", "pins", "free", "time"]),
    );
    const released = JSON.parse(lines[3] as string);
    assert.deepEqual(
      [released.name, released.holder, released.pins, released.free],
      ["r", "", [], true],
    );
  });
});

describe("globalclock lock", { timeout: 120_000 }, () => {
  /** `lock <name> --ttl 6s --grace <grace> [flags…] -- sh -c <script>` */
  const lock = (name: string, script: string, { grace = "2s", flags = [] as string[] } = {}) => [
    "lock",
    name,
    "--ttl",
    "6s",
    "--grace",
    grace,
    ...flags,
    "--",
    "sh",
    "-c",
    script,
  ];

  test("runs the command with the lease in its environment, passes its exit code on, and releases", async () => {
    const run = code(
      await cli(
        lock(
          "job",
          'echo "$GLOBALCLOCK_LEASE $GLOBALCLOCK_HOLDER $GLOBALCLOCK_FENCING_TOKEN"; exit 7',
          {
            flags: ["--holder", "me"],
          },
        ),
      ),
      7,
    );
    assert.equal(run.stdout, "job me 1\n");
    assert.match(code(await cli(["lease", "get", "job"]), 0).stdout, /released {2}token 1 {2}free/);
  });

  test("a held lease: exit 4 at once with -n, or (waiting, the default) run once it is free with the next token", async () => {
    const holder = start(lock("job", "echo holding; sleep 2"));
    await waitFor("the first lock to hold the lease", () =>
      holder.output().stdout.includes("holding"),
    );
    const refused = code(await cli(lock("job", "echo ran", { flags: ["-n"] })), 4);
    assert.equal(refused.stdout, "", "the command did not run");
    const waited = code(
      await cli(lock("job", "echo $GLOBALCLOCK_FENCING_TOKEN", { flags: ["--wait"] })),
      0,
    );
    assert.equal(waited.stdout, "2\n");
    code(await holder.done, 0);
  });

  test("SIGTERM to lock reaches the command; a command killed by a signal exits 128 + its number", async () => {
    const marker = join(cwd, "got-term");
    const run = start(
      lock(
        "job",
        `trap 'touch ${marker}; exit 3' TERM; echo started; while true; do sleep 0.05; done`,
      ),
    );
    await waitFor("the command to start", () => run.output().stdout.includes("started"));
    run.child.kill("SIGTERM");
    code(await run.done, 3);
    assert.ok(existsSync(marker));
    code(await cli(["lock", "job2", "--", "sh", "-c", "kill -KILL $$"]), 137);
  });

  test("a lease that cannot be kept: SIGTERM to the command before the deadline, SIGKILL after --grace, exit 4", async () => {
    code(await cli(["advance", "0s"]), 0);
    const log = join(cwd, "log");
    // The command ignores SIGTERM: only SIGKILL stops it.
    const ignoresTerm = `trap 'echo term >> ${log}' TERM; echo started >> ${log}; while true; do sleep 0.05; done`;
    const run = start(lock("job", ignoresTerm, { grace: "1s" }));
    await waitFor("the command to start", () => existsSync(log));
    // Another process takes the database's write lock and keeps it: renewals fail.
    const db = new Database(join(cwd, "globalclock.db"), { timeout: 5000 });
    db.exec("BEGIN IMMEDIATE");
    try {
      const result = code(await run.done, 4);
      assert.match(result.stderr, /lease job: .*its deadline passed before it was extended/);
    } finally {
      db.exec("ROLLBACK");
      db.close();
    }
    assert.deepEqual(readFileSync(log, "utf8").trim().split("\n"), ["started", "term"]);
    // The command's process group is gone: nothing appends to the log any more.
    const size = readFileSync(log, "utf8").length;
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(readFileSync(log, "utf8").length, size);
  });
});
