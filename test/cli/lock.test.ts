/**
 * `globalclock lock` as a user meets it: what it waits for and says, the schedule it
 * refuses, the exit codes a shell would give, what becomes of the command's process group
 * (a background job, a signal, lock's own death), and a command that needs its terminal.
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { uniqueHolder } from "../../src/leases/holder.js";
import { BIN, buildIfStale, cli, type Run, startCli, underTerminal } from "../helpers/cli.js";
import { eventually } from "../helpers/daemon.js";
import { skipOrFail } from "../helpers/env.js";

let dir: string;
let n = 0;
/** A fresh store for each test. */
const store = () => `sqlite:${join(dir, `lock-${n++}.db`)}`;

before(() => {
  buildIfStale();
  dir = mkdtempSync(join(tmpdir(), "globalclock-lock-"));
});
after(() => rmSync(dir, { recursive: true, force: true }));

function code(run: Run, expected: number): Run {
  assert.equal(run.code, expected, `exit ${run.code}, expected ${expected}: ${run.stderr}`);
  return run;
}

/** Whether process `pid` is alive (a zombie counts as gone). */
function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  try {
    return !/^\S+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, "latin1"));
  } catch {
    return false;
  }
}

const sh = (url: string, name: string, script: string, flags: string[] = []) => [
  "--store",
  url,
  "lock",
  name,
  "--ttl",
  "6s",
  ...flags,
  "--",
  "sh",
  "-c",
  script,
];

describe("lock: waiting", { timeout: 120_000 }, () => {
  test("waits by default, saying for whom; -n exits 4 at once; --timeout gives up with 4", async () => {
    const url = store();
    const holder = startCli(sh(url, "job", "echo holding; sleep 3", ["--holder", "first"]));
    await eventually(() => holder.output().stdout.includes("holding"), "the first to hold it");
    const refused = code(await cli(sh(url, "job", "echo ran", ["-n"])), 4);
    assert.equal(refused.stdout, "", "the command did not run");
    assert.match(refused.stderr, /held by "first" \(token 1\)/);
    const timedOut = code(await cli(sh(url, "job", "echo ran", ["--timeout", "500ms"])), 4);
    assert.equal(timedOut.stdout, "");
    assert.match(
      timedOut.stderr,
      /gave up waiting for lease job after 500ms, held by first \(token 1\)/,
    );
    const waited = code(
      await cli(sh(url, "job", "echo $GLOBALCLOCK_FENCING_TOKEN", ["--verbose"])),
      0,
    );
    assert.equal(waited.stdout, "2\n", "it waited, and ran with the next token");
    assert.match(waited.stderr, /waiting for lease job, held by first \(token 1\)/);
    assert.match(waited.stderr, /acquired lease job, fencing token 2/);
    code(await holder.done, 0);
  });

  test("the default holder is unique to the process, even where host and pid repeat", async () => {
    assert.notEqual(uniqueHolder("worker:1"), uniqueHolder("worker:1"));
    assert.match(uniqueHolder(), /^.+:\d+:[0-9a-f]{8}$/);
    const run = code(await cli(sh(store(), "job", "echo $GLOBALCLOCK_HOLDER")), 0);
    assert.match(run.stdout, /^.+:\d+:[0-9a-f]{8}\n$/);
  });
});

describe("lock: the schedule is checked against maxStep before anything is claimed", () => {
  test("defaults fit any --ttl of at least 3 × maxStep; a schedule that cannot work is refused with the flags' names", async () => {
    const url = store();
    code(await cli(["--store", url, "lock", "job", "--ttl", "4.5s", "--", "true"]), 0);
    code(await cli(["--store", url, "lock", "job", "--ttl", "5s", "--", "true"]), 0);
    const grace = code(
      await cli(["--store", url, "lock", "job", "--ttl", "4.5s", "--grace", "3s", "--", "true"]),
      2,
    );
    assert.match(
      grace.stderr,
      /--grace 3s is not shorter than the 2\.99\d*s a claim of 4\.5s can count on/,
    );
    const renew = code(
      await cli([
        "--store",
        url,
        "lock",
        "job",
        "--ttl",
        "10s",
        "--renew-every",
        "5s",
        "--",
        "true",
      ]),
      2,
    );
    assert.match(renew.stderr, /--renew-every 5s leaves no time to renew twice/);
    const short = code(await cli(["--store", url, "lock", "job", "--ttl", "4s", "--", "true"]), 2);
    assert.match(short.stderr, /--ttl 4s is too short/);
    assert.equal(
      code(await cli(["--store", url, "lease", "get", "job"]), 0).stdout,
      "job  released  token 2  free\n",
      "the refused runs claimed nothing",
    );
  });
});

describe("lock: exit codes, as a shell gives them", { timeout: 120_000 }, () => {
  test("a command that cannot run: 127 (not found), 126 (not executable), 2 (empty); nothing held", async () => {
    const url = store();
    const missing = code(await cli(["--store", url, "lock", "job", "--", "./missing.sh"]), 127);
    assert.match(missing.stderr, /\.\/missing\.sh: command not found/);
    const plain = join(dir, "plain.txt");
    writeFileSync(plain, "echo hi\n");
    const notExec = code(await cli(["--store", url, "lock", "job", "--", plain]), 126);
    assert.match(notExec.stderr, /permission denied/);
    code(await cli(["--store", url, "lock", "job", "--", ""]), 2);
    // Refused before the store was opened: not even the database file was made.
    const get = code(await cli(["--store", url, "lease", "get", "job"]), 1);
    assert.match(get.stderr, /no database at .*a reader never creates one/);
  });

  test("a command ended by a signal: 128 + its number (SIGABRT 134, SIGUSR1 138, SIGSEGV 139)", async () => {
    const url = store();
    for (const [sig, exit] of [
      ["ABRT", 134],
      ["USR1", 138],
      ["SEGV", 139],
      ["KILL", 137],
    ] as const) {
      code(await cli(sh(url, `sig-${sig}`, `kill -${sig} $$`)), exit);
    }
  });

  test("every catchable terminating signal sent to lock reaches the command (SIGQUIT too), and lock exits as it does", async () => {
    const url = store();
    for (const sig of ["SIGQUIT", "SIGHUP", "SIGUSR2", "SIGTERM"] as const) {
      const marker = join(dir, `got-${sig}`);
      const name = sig.slice(3);
      const run = startCli(
        sh(
          url,
          `fwd-${sig}`,
          `trap 'touch ${marker}; exit 3' ${name}; echo started; while true; do sleep 0.05; done`,
        ),
      );
      await eventually(() => run.output().stdout.includes("started"), "the command to start");
      run.child.kill(sig);
      code(await run.done, 3);
      assert.ok(existsSync(marker), `${sig} did not reach the command`);
    }
  });
});

describe("lock: nothing it started outlives the lease", { timeout: 120_000 }, () => {
  test("a background job the command left behind is stopped before the lease is released", async () => {
    const url = store();
    const pidFile = join(dir, "bg.pid");
    // The job ignores SIGTERM: lock must escalate to SIGKILL (after --grace) before releasing.
    const script = `sh -c 'trap "" TERM; while true; do sleep 0.05; done' & echo $! > ${pidFile}; exit 0`;
    code(await cli(sh(url, "bg", script, ["--grace", "300ms"])), 0);
    const pid = Number(readFileSync(pidFile, "utf8"));
    assert.ok(!alive(pid), `the background job ${pid} outlived lock`);
    assert.match(code(await cli(["--store", url, "lease", "get", "bg"]), 0).stdout, /released/);
  });

  test("kill -9 of lock: its guardian stops the command's group at once", async () => {
    const url = store();
    const pidFile = join(dir, "orphan.pid");
    const run = startCli(
      sh(url, "orphan", `echo $$ > ${pidFile}; echo started; while true; do sleep 0.05; done`),
    );
    await eventually(() => run.output().stdout.includes("started"), "the command to start");
    const pid = Number(readFileSync(pidFile, "utf8"));
    run.child.kill("SIGKILL");
    await eventually(() => !alive(pid), "the orphaned command stopped", 10_000);
  });

  test("lock stopped (its loop can do nothing): the guardian stops the command at the deadline", async () => {
    const url = store();
    const pidFile = join(dir, "stopped.pid");
    const script = `trap '' TERM; echo $$ > ${pidFile}; echo started; while true; do sleep 0.05; done`;
    const run = startCli(sh(url, "stopped", script, ["--no-clock"]));
    await eventually(() => run.output().stdout.includes("started"), "the command to start");
    const pid = Number(readFileSync(pidFile, "utf8"));
    const t0 = Date.now();
    run.child.kill("SIGSTOP");
    try {
      // ttl 6s less maxStep 1.5s and drift: the deadline is 4.5 s after the claim at the most.
      await eventually(() => !alive(pid), "the command stopped at the deadline", 15_000);
      assert.ok(Date.now() - t0 < 6000, `stopped only after ${Date.now() - t0} ms`);
    } finally {
      run.child.kill("SIGCONT");
    }
    code(await run.done, 4);
  });
});

describe("lock: a command that needs its terminal", { timeout: 60_000 }, () => {
  test("under a pseudo-terminal the command has /dev/tty, in the foreground, and reads from it", async (t) => {
    if (spawnSync("script", ["--version"]).error) {
      skipOrFail(t, "no `script` (util-linux) to run lock under a pseudo-terminal");
      return;
    }
    const script = join(dir, "ask.sh");
    writeFileSync(
      script,
      '#!/bin/sh\nprintf "name? "\nread answer </dev/tty\necho "got:$answer"\n',
    );
    chmodSync(script, 0o755);
    const command = `exec '${process.execPath}' '${BIN}' --store '${store()}' lock tty -- '${script}'`;
    const terminal = underTerminal(command);
    await eventually(
      () => terminal.screen().includes("name? "),
      "the question on the terminal",
      20_000,
    );
    terminal.type("alice\r");
    const screen = terminal.screen();
    assert.equal(await terminal.exited, 0, screen);
    assert.match(terminal.screen(), /got:alice/);
  });
});
