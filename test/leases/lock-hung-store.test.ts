/**
 * A `lock` whose renewal hangs: its store is reached through a proxy that stops forwarding
 * (a frozen network path, a stopped proxy), so its calls neither succeed nor fail for as
 * long as its store's timeout, again and again. A successor on a healthy path takes the
 * lease once it expires. The command under the hung lock must have stopped by then: its
 * guardian holds the deadline, whatever lock's calls are doing.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import { openLeases } from "../../src/leases/leases.js";
import { Daemon, eventually } from "../helpers/daemon.js";
import { skipOrFail } from "../helpers/env.js";
import { GuardedResource, lockedWriter } from "../helpers/guarded.js";
import { findPostgresBin, PostgresServer } from "../helpers/postgres-server.js";
import { tcpProxy } from "../helpers/server-process.js";

test("a lock whose renewals hang in the store: its command stops before the successor's first write", {
  timeout: 120_000,
}, async (t) => {
  if (!findPostgresBin()) return skipOrFail(t, "no PostgreSQL under /usr/lib/postgresql/*/bin");
  const server = await PostgresServer.start();
  const resource = await GuardedResource.start();
  const direct = server.url("postgres", "timeout=1s");
  const proxy = await tcpProxy(server.port);
  // The store's default timeout (2 s): each hung call ends only after that long.
  const proxied = server.url("postgres").replace(`:${server.port}/`, `:${proxy.port}/`);
  const setup = await openLeases(direct);
  assert.ok(await setup.setMaxStep(undefined, 300_000_000n));
  // When the successor's grant is first seen (the end of the read that saw it): its command
  // may act from then on.
  let granted: bigint | undefined;
  const watching = (async () => {
    while (granted === undefined) {
      const info = await setup.get("job").catch(() => undefined);
      if (info?.holder === "next") granted = process.hrtime.bigint();
      await new Promise((r) => setTimeout(r, 5));
    }
  })();
  const clock = new Daemon(direct, ["--interval", "200ms"]);
  const stderr: string[] = [];
  const lock = (url: string, holder: string, runMs: string) => {
    const child = lockedWriter(url, holder, resource, runMs, {
      flags: ["--no-clock"],
      writerFlags: ["--ignore-term"],
    });
    child.stderr?.on("data", (d) => stderr.push(`${holder}: ${d}`));
    return child;
  };
  const first = lock(proxied, "hung", "30000");
  let second: ReturnType<typeof lock> | undefined;
  try {
    await eventually(
      () => resource.writes.some((w) => w.holder === "hung"),
      "the first holder's writes",
      30_000,
    );
    proxy.freeze(); // its renewals hang from now on
    second = lock(direct, "next", "1000");
    await eventually(() => granted, "the successor's grant", 30_000);
    await eventually(
      () => resource.writes.some((w) => w.holder === "next"),
      "the successor's writes",
      30_000,
    );
    const grant = granted as bigint;
    const late = resource.writes.filter((w) => w.holder === "hung" && w.at >= grant);
    const last = resource.writes.findLast((w) => w.holder === "hung")?.at ?? 0n;
    t.diagnostic(
      `the hung holder's last write came ${Number(grant - last) / 1e6} ms before the successor's grant was seen`,
    );
    assert.deepEqual(late, [], "the hung lock's command wrote after its successor was granted");
    proxy.thaw();
    const code = await new Promise((resolve) => first.once("exit", resolve));
    assert.equal(code, 4, "the hung lock exits 4: the lease was lost");
  } catch (err) {
    t.diagnostic(stderr.join(""));
    throw err;
  } finally {
    granted ??= 0n;
    await watching;
    await setup.close();
    for (const child of [first, second]) child?.kill("SIGKILL");
    clock.kill("SIGKILL");
    proxy.thaw();
    await proxy.close();
    await resource.close();
    await server.close();
  }
});
