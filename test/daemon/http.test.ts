import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { type Leases, openLeases } from "../../src/index.js";
import { Daemon } from "../helpers/daemon.js";

describe("globalclock run: HTTP endpoints and shutdown", () => {
  let dir: string;
  let daemon: Daemon;
  let base: string;
  let leases: Leases;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), "globalclock-http-"));
    daemon = new Daemon(`sqlite:${join(dir, "clock.db")}`, [
      "--interval",
      "200ms",
      "--listen",
      "127.0.0.1:0",
      "--lease-series",
      "job",
    ]);
    const start = await daemon.waitFor((l) => l.event === "start");
    assert.match(String(start.listen), /^127\.0\.0\.1:\d+$/);
    base = `http://${start.listen}`;
    const role = await daemon.waitFor((l) => l.event === "role" && l.role === "active");
    // The log's own timestamp and the global time are separate fields.
    assert.match(String(role.time), /^\d{4}-\d\d-\d\dT/);
    assert.match(String(role.global), /^\d+$/);
    // Two leases, held before the first scrape (a scrape's answer is kept for a second).
    leases = await openLeases(`sqlite:${join(dir, "clock.db")}`);
    await leases.claim("job", "a", "1h");
    await leases.claim("other", "a", "1h");
  });

  after(async () => {
    await leases?.close();
    daemon?.kill("SIGKILL");
    await daemon?.exited;
    rmSync(dir, { recursive: true, force: true });
  });

  test("/metrics answers in the Prometheus text format", async () => {
    const res = await fetch(`${base}/metrics`);
    assert.equal(res.status, 200);
    assert.match(res.headers.get("content-type") ?? "", /^text\/plain; version=0\.0\.4/);
    const body = await res.text();
    assert.match(body, /^# TYPE globalclock_advances_total counter$/m);
    assert.match(body, /^globalclock_advances_total [1-9]\d*$/m);
    assert.match(body, /^globalclock_conflicts_total 0$/m);
    assert.match(body, /^globalclock_role\{role="active"\} 1$/m);
    assert.match(body, /^globalclock_role\{role="standby"\} 0$/m);
    assert.match(body, /^globalclock_time_seconds \d+(\.\d+)?(e[-+]?\d+)?$/m);
    assert.match(body, /^globalclock_lag_seconds -?\d/m);
    assert.match(body, /^globalclock_process_resident_memory_bytes \d+/m);
  });

  test("/metrics: the fleet's lease series, and a lease's own only for --lease-series names", async () => {
    const body = await (await fetch(`${base}/metrics`)).text();
    assert.match(body, /^globalclock_leases_held 2$/m);
    assert.match(body, /^globalclock_lease_held\{lease="job"\} 1$/m);
    assert.doesNotMatch(body, /lease="other"/);
  });

  test("/healthz and /now answer JSON", async () => {
    const health = await fetch(`${base}/healthz`);
    assert.equal(health.status, 200);
    const h = (await health.json()) as { ok: boolean; role: string; advances: number };
    assert.equal(h.ok, true);
    assert.equal(h.role, "active");
    assert.ok(h.advances >= 1);
    const first = (await (await fetch(`${base}/now`)).json()) as { time: string; ns: string };
    assert.match(first.time, /^1970-01-01T00:00:\d\d\.\d{9}Z$/);
    let later = first;
    const deadline = Date.now() + 20_000;
    while (BigInt(later.ns) <= BigInt(first.ns) && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 50));
      later = (await (await fetch(`${base}/now`)).json()) as { time: string; ns: string };
    }
    assert.ok(BigInt(later.ns) > BigInt(first.ns), "/now moves while the daemon runs");
    assert.equal((await fetch(`${base}/nope`)).status, 404);
  });

  test("SIGTERM stops the daemon cleanly with exit code 0", async () => {
    daemon.kill("SIGTERM");
    const { code, signal } = await daemon.exited;
    assert.equal(signal, null);
    assert.equal(code, 0, daemon.stderr);
    assert.ok(daemon.lines.some((l) => l.event === "stop"));
    assert.equal(daemon.stderr, "");
  });
});
