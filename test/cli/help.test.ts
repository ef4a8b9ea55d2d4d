// The help texts of `run` and `demo` show the worker defaults from WORKER_DEFAULTS.
import assert from "node:assert/strict";
import { test } from "node:test";
import type { Io } from "../../src/cli/io.js";
import { main } from "../../src/cli/main.js";
import { describeDefault } from "../../src/worker-settings.js";

async function help(command: string): Promise<string> {
  const lines: string[] = [];
  const io: Io = { out: (line) => lines.push(line), err: (line) => lines.push(line), env: {} };
  assert.equal(await main([command, "--help"], io), 0);
  return lines.join("\n").replace(/\s+/g, " ");
}

test("run --help states the defaults WORKER_DEFAULTS holds", async () => {
  const text = await help("run");
  assert.ok(text.includes(`(default: "${describeDefault("interval")}")`), text);
  assert.ok(text.includes(`(default ${describeDefault("takeoverAfter")})`), text);
  assert.ok(text.includes(`(default ${describeDefault("maxStep")})`), text);
});

test("demo --help states the default interval", async () => {
  const text = await help("demo");
  assert.ok(text.includes(`(default: "${describeDefault("interval")}")`), text);
});
