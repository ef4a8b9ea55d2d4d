/**
 * What a new user and an operator meet first: --version and --help, the bounds on input
 * (each refused with exit 2 and a line that names the flag and says why), and passwords
 * masked in every error line, spaces and all.
 */
import assert from "node:assert/strict";
import { chmodSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { main } from "../../src/cli/main.js";
import { Leases } from "../../src/leases/leases.js";
import { MemoryStore } from "../../src/stores/memory/index.js";
import { startUpdater } from "../../src/worker.js";
import { buildIfStale, cli, failed, ROOT, recordingIo } from "../helpers/cli.js";
import { Daemon } from "../helpers/daemon.js";

let dir: string;
before(() => {
  buildIfStale();
  dir = mkdtempSync(join(tmpdir(), "globalclock-operator-cli-"));
});
after(() => rmSync(dir, { recursive: true, force: true }));

describe("--version and --help", () => {
  test("--version and -v print the version in package.json", async () => {
    const { version } = JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8"));
    for (const flag of ["--version", "-v"]) {
      const run = await cli([flag]);
      assert.equal(run.code, 0);
      assert.equal(run.stdout, `${version}\n`);
    }
  });

  test("--help shows examples and every exit code", async () => {
    const run = await cli(["--help"]);
    assert.equal(run.code, 0);
    assert.match(run.stdout, /^Examples:\n {2}globalclock run /m);
    for (const code of ["0  ok", "1  failure", "2  usage", "3  out of sync"])
      assert.ok(run.stdout.includes(`  ${code}`), code);
    assert.match(run.stdout, /GLOBALCLOCK_STORE/);
  });

  test("a warning is one line of the command's own, not Node's two (a clock file others may write)", async () => {
    const path = join(dir, "shared.db");
    assert.equal((await cli(["--store", `sqlite:${path}`, "advance", "1s"])).code, 0);
    chmodSync(path, 0o666);
    const run = await cli(["--store", `sqlite:${path}`, "now"]);
    assert.equal(run.code, 0, run.stderr);
    assert.equal(
      run.stderr,
      `globalclock: warning: the clock database ${path} is writable by its group or by others: whoever can write it can set global time\n`,
    );
  });

  test("status on a clock that started at the epoch reports no meaningless wall-time gap", async () => {
    const store = new MemoryStore("status-epoch");
    const worker = startUpdater(store, { interval: "20ms" });
    try {
      const { io, out, err } = recordingIo();
      const code = await main(
        ["--store", "memory:status-epoch", "status", "--window", "300ms"],
        io,
      );
      assert.equal(code, 0, err.join("\n"));
      const text = out.join("\n");
      assert.match(text, /^global time {6}1970-01-01T/m);
      assert.match(text, /^last advance {5}\S+ ago$/m);
      assert.doesNotMatch(text, /wall time|\d{4,}h/);
    } finally {
      await worker.stop();
      await store.close();
    }
  });
});

describe("input bounds", () => {
  test("run --interval below 10ms is refused, saying why", async () => {
    failed(
      await cli(["--store", "memory:", "run", "--interval", "1ms"]),
      2,
      /interval 1ms is below the minimum of 10ms: each step is a durable write/,
    );
  });

  test("run --lease-series-soonest that is not a whole number is refused, naming it", async () => {
    failed(
      await cli(["--store", "memory:", "run", "--lease-series-soonest", "-3"]),
      2,
      /--lease-series-soonest must be a whole number of leases, not "-3"/,
    );
  });

  test("status --window beyond Node's timers is refused, naming --window", async () => {
    failed(
      await cli(["--store", "memory:", "status", "--window", "25d"]),
      2,
      /--window "25d" is longer than Node's timers allow/,
    );
  });

  test("watch --poll 0 names --poll", async () => {
    const line = failed(
      await cli(["--store", "memory:", "watch", "--poll", "0"]),
      2,
      /invalid --poll "0": must be greater than 0/,
    );
    assert.doesNotMatch(line, /pollIntervalMs/);
  });

  test("--listen with a host that does not resolve is a usage error", async () => {
    failed(
      await cli(["--store", "memory:", "run", "--listen", "no-such-host.invalid:9464"]),
      2,
      /invalid --listen "no-such-host\.invalid:9464": cannot resolve host/,
    );
  });

  test("--listen on a non-loopback address warns that the endpoints have no authentication", async () => {
    const daemon = new Daemon("memory:", ["--listen", "0.0.0.0:0"]);
    try {
      const warning = await daemon.waitFor((l) => l.event === "listen");
      assert.equal(warning.level, 40);
      assert.match(String(warning.msg), /not a loopback address: .*no authentication/);
      const local = new Daemon("memory:", ["--listen", "127.0.0.1:0"]);
      await local.waitFor((l) => l.event === "start");
      local.kill("SIGTERM");
      await local.exited;
      assert.ok(!local.lines.some((l) => l.event === "listen"), "a warning on loopback");
    } finally {
      daemon.kill("SIGTERM");
      await daemon.exited;
    }
  });

  test("advance beyond the cluster's maxStep needs --force", async () => {
    const store = `sqlite:${join(dir, "force.db")}`;
    failed(
      await cli(["--store", store, "advance", "1.6s"]),
      2,
      /advancing by 1\.6s at once is more than the cluster's maxStep \(1\.5s\).*every lease could expire at once.*--force/,
    );
    const forced = await cli(["--store", store, "advance", "1.6s", "--force"]);
    assert.equal(forced.code, 0, forced.stderr);
    assert.match(forced.stdout, / 1600000000\n$/);
  });

  test("advance reads the maxStep stored for the cluster, not a default", async () => {
    const store = new MemoryStore("stored-max-step");
    const leases = new Leases(store, { maxStep: "5s" });
    assert.ok(await leases.setMaxStep(undefined, 5_000_000_000n));
    try {
      const ok = recordingIo();
      assert.equal(await main(["--store", "memory:stored-max-step", "advance", "4s"], ok.io), 0);
      const refused = recordingIo();
      assert.equal(
        await main(["--store", "memory:stored-max-step", "advance", "6s"], refused.io),
        2,
      );
      assert.match(refused.err.join("\n"), /the cluster's maxStep \(5s\)/);
    } finally {
      await leases.close();
      await store.close();
    }
  });
});

describe("secrets in error lines", () => {
  // Port 1 on loopback refuses at once.
  const urls = [
    { url: "postgres://u:x9z q7w@127.0.0.1:1/db", secret: "x9z q7w" },
    { url: "postgres://u@127.0.0.1:1/db?password=k8s pw5", secret: "k8s pw5" },
    { url: "postgres://u:x9z%20q7w@127.0.0.1:1/db", secret: "x9z q7w" },
  ];

  for (const { url, secret } of urls) {
    test(`never shown: ${url.replace(secret, "***")}`, async () => {
      const pieces = [secret, ...secret.split(" "), encodeURIComponent(secret)];
      for (const run of [
        await cli(["--store", url, "now"]),
        await cli(["advance", "1s"], { GLOBALCLOCK_STORE: url }),
        await cli([`--store=${url}`, "status"]),
        // Usage errors echo what was typed: a URL given without --store, a misspelt flag.
        await cli([url, "now"]),
        await cli([`--stor=${url}`, "now"]),
      ]) {
        assert.ok(run.code === 1 || run.code === 2, `exit ${run.code}: ${run.stderr}`);
        assert.match(run.stderr, /^globalclock: [^\n]+\n$/);
        for (const piece of pieces)
          assert.ok(!`${run.stdout}${run.stderr}`.includes(piece), `${piece}: ${run.stderr}`);
      }
    });
  }

  test("a malformed URL is echoed short and escaped", async () => {
    const url = `postgres://u:pw@[${"\x1b[31m".repeat(2000)}/db`;
    const line = failed(await cli(["--store", url, "now"]), 2, /malformed PostgreSQL URL/);
    assert.ok(line.length < 400, `${line.length} characters`);
    assert.ok(!line.includes("\x1b"), "a raw escape reached the terminal");
    assert.match(line, /\\x1b\[31m/);
    assert.match(line, /more characters/);
  });
});
