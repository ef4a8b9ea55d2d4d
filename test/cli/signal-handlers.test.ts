/**
 * `run` and `watch` install SIGINT/SIGTERM handlers while they work. Run in this process
 * through `main`, each exit path must leave the process with the handlers it had before:
 * a store that fails to open, a --listen address already taken, and a normal stop.
 */
import assert from "node:assert/strict";
import { once } from "node:events";
import { createServer } from "node:net";
import { test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import type { Io } from "../../src/cli/io.js";
import { main } from "../../src/cli/main.js";
import { MemoryStore } from "../../src/index.js";
import { eventually } from "../helpers/daemon.js";

const SIGNALS = ["SIGINT", "SIGTERM"] as const;

function captureIo(): Io & { errors: string[] } {
  const errors: string[] = [];
  return { out: () => {}, err: (line) => errors.push(line), env: {}, errors };
}

const handlers = () => SIGNALS.map((s) => process.listeners(s));

/** The handlers installed since `before`, for one signal. */
function added(before: ReturnType<typeof handlers>, signal: (typeof SIGNALS)[number]) {
  const old = before[SIGNALS.indexOf(signal)] ?? [];
  return process.listeners(signal).filter((l) => !old.includes(l));
}

test("run: a store that fails to open leaves no signal handler behind", async () => {
  const before = handlers();
  const io = captureIo();
  const code = await main(["--store", "sqlite:/nonexistent-dir/x.db", "run"], io);
  assert.equal(code, 1, io.errors.join("\n"));
  assert.match(
    io.errors.join("\n"),
    /cannot create .*: the folder \/nonexistent-dir does not exist/,
  );
  assert.deepEqual(handlers(), before);
});

test("run: a --listen address already taken leaves no signal handler behind", async () => {
  const taken = createServer().listen(0, "127.0.0.1");
  await once(taken, "listening");
  const { port } = taken.address() as { port: number };
  try {
    const before = handlers();
    const io = captureIo();
    const code = await main(["--store", "memory:", "run", "--listen", `127.0.0.1:${port}`], io);
    assert.equal(code, 1, io.errors.join("\n"));
    assert.match(io.errors.join("\n"), /EADDRINUSE/);
    assert.deepEqual(handlers(), before);
  } finally {
    taken.close();
  }
});

test("run: a bad option fails before any handler is installed", async () => {
  const before = handlers();
  const io = captureIo();
  assert.equal(await main(["--store", "memory:", "run", "--max-step", "1ms"], io), 2);
  assert.deepEqual(handlers(), before);
});

test("run: stopped by SIGTERM, it exits 0 and removes its handlers", async () => {
  const before = handlers();
  const io = captureIo();
  const running = main(["--store", "memory:signals-run", "run", "--interval", "50ms"], io);
  const clock = new MemoryStore("signals-run");
  while (((await clock.read()) ?? 0n) === 0n) await sleep(10); // the worker is active
  const [onTerm] = added(before, "SIGTERM");
  assert.ok(onTerm, "run installed no SIGTERM handler");
  onTerm("SIGTERM");
  assert.equal(await running, 0, io.errors.join("\n"));
  assert.deepEqual(handlers(), before);
  await clock.close();
});

test("watch: stopped by SIGINT, it exits 0 and removes its handlers", async () => {
  const before = handlers();
  const io = captureIo();
  const watching = main(["--store", "memory:signals-watch", "watch"], io);
  const [onInt] = await eventually(() => {
    const found = added(before, "SIGINT");
    return found.length > 0 && found;
  }, "watch's SIGINT handler");
  onInt?.("SIGINT");
  assert.equal(await watching, 0, io.errors.join("\n"));
  assert.deepEqual(handlers(), before);
});
