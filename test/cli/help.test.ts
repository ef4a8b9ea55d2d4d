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

/** What `main(args)` prints on stdout and stderr, and its exit code. */
async function run(args: string[]): Promise<{ code: number; out: string; err: string }> {
  const out: string[] = [];
  const err: string[] = [];
  const io: Io = { out: (line) => out.push(line), err: (line) => err.push(line), env: {} };
  const code = await main(args, io);
  return { code, out: out.join("\n"), err: err.join("\n") };
}

test("help lease claim shows the subcommand's help, help lease the group's", async () => {
  const claim = await run(["help", "lease", "claim"]);
  assert.equal(claim.code, 0, claim.err);
  assert.match(claim.out, /^Usage: globalclock lease claim \[options\] <name>/);
  assert.equal(claim.out, (await run(["lease", "claim", "--help"])).out);
  const group = await run(["help", "lease"]);
  assert.equal(group.code, 0, group.err);
  assert.match(group.out, /^Usage: globalclock lease \[options\] \[command\]/);
  assert.match(group.out, /^ {2}claim \[options\] <name>/m);
  assert.match((await run(["help"])).out, /^Usage: globalclock \[options\] \[command\]/);
});

test("help of a command that does not exist is a usage error naming the commands there are", async () => {
  const top = await run(["help", "nope"]);
  assert.equal(top.code, 2);
  assert.equal(top.out, "");
  assert.match(top.err, /^globalclock: no command "nope": the commands are now, advance, run,/);
  const sub = await run(["help", "lease", "nope"]);
  assert.equal(sub.code, 2);
  assert.match(sub.err, /no command "nope" of lease: the commands are claim, extend, revoke,/);
});

test("--help marks the required options (required), and only those", async () => {
  const text = async (args: string[]) => (await run(args)).out.replace(/\s+/g, " ");
  const c = await text(["lease", "claim", "--help"]);
  assert.ok(c.includes("--holder <id> who holds it (required)"), c);
  assert.match(
    c,
    /--for <duration> for how long, in global time \(at least 3 × maxStep\) \(required\)/,
  );
  assert.ok(!c.includes("print one JSON object (required)"), c);
  const pin = await text(["lease", "pin", "--help"]);
  assert.ok(pin.includes("--entity <id> who pins it (required)"), pin);
  const extend = await text(["lease", "extend", "--help"]);
  assert.equal(extend.match(/\(required\)/g)?.length, 3, extend);
  const now = await text(["now", "--help"]);
  assert.doesNotMatch(now, /\(required\)/);
});
