/**
 * `globalclock demo` leaves no worker behind, whichever way it ends: the end of the story,
 * an error, SIGINT or SIGTERM, or a closed stdout (`| head -1`). Its workers get the store
 * URL through their environment, never on their command line, and it prints it safely.
 */
import assert from "node:assert/strict";
import { type ChildProcess, spawn } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { createServer, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { BIN, buildIfStale, startCli } from "../helpers/cli.js";
import { eventually } from "../helpers/daemon.js";

let dir: string;
before(() => {
  buildIfStale();
  dir = mkdtempSync(join(tmpdir(), "globalclock-demo-test-"));
});
after(() => rmSync(dir, { recursive: true, force: true }));

interface Demo {
  child: ChildProcess;
  stdout: string;
  stderr: string;
  /** The workers' pids, as the demo announced them. */
  pids: () => number[];
  /**
   * Each worker's command line and environment, read the moment its pid was announced: the
   * story kills the active worker a few intervals later, and a dead one's are gone.
   */
  seen: Map<number, { cmdline: string[]; environ: string[] }>;
  exited: Promise<number | null>;
}

function demo(args: string[], env: NodeJS.ProcessEnv = {}): Demo {
  const child = spawn(process.execPath, [BIN, ...args, "demo", "--interval", "100ms"], {
    env: { ...process.env, ...env },
  });
  const d: Demo = {
    child,
    stdout: "",
    stderr: "",
    pids: () => [...d.stdout.matchAll(/started worker \w \(pid (\d+)\)/g)].map((m) => Number(m[1])),
    seen: new Map(),
    exited: new Promise((resolve) => child.once("close", resolve)),
  };
  child.stdout?.setEncoding("utf8").on("data", (s: string) => {
    d.stdout += s;
    for (const pid of d.pids()) {
      if (d.seen.has(pid)) continue;
      try {
        const read = (f: string) => readFileSync(`/proc/${pid}/${f}`, "utf8").split("\0");
        d.seen.set(pid, { cmdline: read("cmdline"), environ: read("environ") });
      } catch {
        // Gone already: the test finds it missing from `seen`.
      }
    }
  });
  child.stderr?.setEncoding("utf8").on("data", (s: string) => {
    d.stderr += s;
  });
  return d;
}

/** Whether `pid` is a live process (a zombie is not). */
function running(pid: number): boolean {
  const stat = `/proc/${pid}/stat`;
  if (!existsSync(stat)) return false;
  try {
    return readFileSync(stat, "utf8").split(") ")[1]?.[0] !== "Z";
  } catch {
    return false;
  }
}

/** Processes whose environment holds `marker`. */
function withEnv(marker: string): number[] {
  return readdirSync("/proc")
    .filter((p) => /^\d+$/.test(p))
    .filter((p) => {
      try {
        return readFileSync(`/proc/${p}/environ`, "utf8").includes(marker);
      } catch {
        return false;
      }
    })
    .map(Number)
    .filter(running);
}

test("to the end: a failover told and checked, workers stopped, the URL only in their environment", {
  timeout: 120_000,
}, async () => {
  const url = `sqlite:${join(dir, "end.db")}`;
  const d = demo(["--store", url]);
  const pids = await eventually(() => d.pids().length === 3 && d.pids(), "three workers");
  for (const pid of pids) {
    const seen = d.seen.get(pid);
    assert.ok(seen, `worker ${pid} was gone before its command line could be read`);
    const { cmdline, environ } = seen;
    assert.ok(cmdline.includes("run"), cmdline.join(" "));
    assert.ok(!cmdline.some((a) => a.includes("end.db") || a === "--store"), cmdline.join(" "));
    assert.ok(environ.includes(`GLOBALCLOCK_STORE=${url}`));
  }
  assert.equal(await d.exited, 0, d.stderr);
  assert.match(d.stdout, /took over/);
  assert.match(d.stdout, /on every pair of reads: hold$/m);
  assert.deepEqual(pids.filter(running), []);
});

test("--json: a start, each event and a summary, one JSON object a line", {
  timeout: 120_000,
}, async () => {
  const url = `sqlite:${join(dir, "json.db")}`;
  const run = await startCli(["--store", url, "demo", "--interval", "100ms", "--json"]).done;
  assert.equal(run.code, 0, run.stderr);
  const lines = run.stdout
    .trim()
    .split("\n")
    .map((l) => JSON.parse(l) as Record<string, unknown>);
  assert.deepEqual(lines[0], {
    event: "start",
    store: "a SQLite file",
    intervalNs: "100000000",
    takeoverAfterNs: lines[0]?.takeoverAfterNs,
    maxStepNs: lines[0]?.maxStepNs,
  });
  const progress = lines.slice(1, -1);
  assert.ok(progress.every((l) => l.event === "progress" && typeof l.atSeconds === "number"));
  assert.ok(progress.some((l) => /^worker \w is active now$/.test(String(l.message))));
  const summary = lines.at(-1) as Record<string, unknown>;
  assert.equal(summary.event, "summary");
  assert.equal(summary.invariantsHold, true);
  assert.equal(summary.ok, true);
  assert.deepEqual(summary.violations, []);
  assert.ok(Number(summary.reads) > 0);
});

test("GLOBALCLOCK_STORE in the environment is not the demo's store: only --store on its command line is", {
  timeout: 120_000,
}, async () => {
  // Most often a live cluster, whose workers the demo would kill; here one that refuses.
  const d = demo([], { GLOBALCLOCK_STORE: "postgres://clock:pw@127.0.0.1:1/db?timeout=500ms" });
  const pids = await eventually(() => d.pids().length === 3 && d.pids(), "three workers");
  for (const pid of pids) {
    const seen = d.seen.get(pid);
    assert.ok(seen, `worker ${pid} was gone before its environment could be read`);
    const store = seen.environ.find((e) => e.startsWith("GLOBALCLOCK_STORE="));
    assert.match(store ?? "", /^GLOBALCLOCK_STORE=sqlite:.*demo\.db$/);
  }
  assert.equal(await d.exited, 0, d.stderr);
  assert.match(d.stdout, /share one clock on a SQLite file/);
  assert.match(d.stdout, /took over/);
});

test("an error (no worker ever becomes active): workers killed, the password never shown", {
  timeout: 120_000,
}, async () => {
  // A server that accepts connections and never answers: the workers wait and retry.
  const sockets = new Set<Socket>();
  const silent = createServer((s) => sockets.add(s.on("error", () => {}))).listen(0, "127.0.0.1");
  await new Promise((r) => silent.once("listening", r));
  const { port } = silent.address() as { port: number };
  const url = `postgres://clock:x9z q7w@127.0.0.1:${port}/db?timeout=500ms`;
  try {
    const d = demo(["--store", url]);
    const pids = await eventually(() => d.pids().length === 3 && d.pids(), "three workers");
    for (const pid of pids)
      assert.ok(
        !readFileSync(`/proc/${pid}/cmdline`, "utf8").includes("x9z"),
        "password on a command line",
      );
    assert.equal(await d.exited, 1);
    assert.match(
      d.stderr,
      /^globalclock: demo: gave up after \d+ ms waiting for a worker to become active\n$/,
    );
    assert.match(d.stdout, /share one clock on postgres:\/\/clock:\*\*\*@127\.0\.0\.1/);
    assert.ok(!`${d.stdout}${d.stderr}`.includes("x9z"), d.stdout);
    assert.deepEqual(pids.filter(running), []);
  } finally {
    for (const s of sockets) s.destroy();
    silent.close();
  }
});

for (const signal of ["SIGINT", "SIGTERM"] as const) {
  test(`${signal}: the demo stops its workers before it exits`, { timeout: 120_000 }, async () => {
    const d = demo(["--store", `sqlite:${join(dir, `${signal}.db`)}`]);
    await eventually(() => /worker \w: active/.test(d.stdout), "an active worker");
    const pids = d.pids();
    assert.equal(pids.length, 3);
    d.child.kill(signal);
    assert.equal(await d.exited, 1);
    assert.match(d.stderr, /demo stopped before it finished; its workers were stopped too/);
    assert.deepEqual(pids.filter(running), []);
  });
}

test("globalclock demo | head -1 leaves no worker running", { timeout: 120_000 }, async () => {
  const marker = join(dir, "head.db");
  // The subshell keeps the pipe open a while after head has left, so that the workers are
  // surely running when the demo's stdout closes.
  const shell = spawn(
    "sh",
    [
      "-c",
      `'${process.execPath}' '${BIN}' --store 'sqlite:${marker}' demo --interval 100ms | (head -1; sleep 2)`,
    ],
    { env: process.env },
  );
  let out = "";
  shell.stdout.setEncoding("utf8").on("data", (s: string) => {
    out += s;
  });
  const code = await new Promise((resolve) => shell.once("close", resolve));
  assert.equal(code, 0);
  assert.match(out, /^Three `globalclock run` workers share one clock on a SQLite file\.\n$/);
  assert.ok(existsSync(marker), "the workers never opened their store");
  assert.deepEqual(withEnv(marker), [], "workers outlived the demo");
});
