/**
 * With --json, a command's error is one JSON object on stderr, {"error": {message, code,
 * kind}}, passwords masked; and every command that prints takes --json.
 */
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { main } from "../../src/cli/main.js";
import { buildIfStale, type Run, recordingIo, startCli } from "../helpers/cli.js";

let cwd: string;
before(() => {
  buildIfStale();
  cwd = mkdtempSync(join(tmpdir(), "globalclock-json-errors-"));
});
after(() => rmSync(cwd, { recursive: true, force: true }));

/** Runs the CLI in the test's directory, on its default store there. */
const cli = (args: string[], env: NodeJS.ProcessEnv = {}) => startCli(args, env, cwd).done;

interface JsonError {
  error: { message: string; code: number; kind: string };
}

/** The run's stderr as the one JSON error it must be, with its exit code and kind. */
function jsonError(run: Run, code: number, kind: string): JsonError["error"] {
  assert.equal(run.code, code, `exit ${run.code}: ${run.stderr}`);
  assert.match(run.stderr, /^\{[^\n]*\}\n$/, `not one JSON line: ${JSON.stringify(run.stderr)}`);
  const parsed = JSON.parse(run.stderr) as JsonError;
  assert.deepEqual(Object.keys(parsed), ["error"]);
  assert.deepEqual(Object.keys(parsed.error), ["message", "code", "kind"]);
  assert.equal(parsed.error.code, code);
  assert.equal(parsed.error.kind, kind);
  assert.doesNotMatch(parsed.error.message, /^globalclock:|^error:/);
  return parsed.error;
}

describe("--json errors", { timeout: 120_000 }, () => {
  test("a store error (1), a usage error (2) and a lease held (4) are JSON objects", async () => {
    const missing = jsonError(
      await cli(["--store", `sqlite:${join(cwd, "none.db")}`, "now", "--json"]),
      1,
      "StoreError",
    );
    assert.match(missing.message, /no database at .*none\.db/);
    // commander's own errors too: a missing required option, an unknown one.
    assert.match(
      jsonError(await cli(["lease", "claim", "job", "--for", "9s", "--json"]), 2, "CommanderError")
        .message,
      /^required option '--holder <id>' not specified$/,
    );
    assert.match(
      jsonError(await cli(["now", "--json", "--nope"]), 2, "CommanderError").message,
      /unknown option '--nope'/,
    );
    jsonError(await cli(["advance", "not-a-duration", "--json"]), 2, "InvalidDurationError");
    assert.equal((await cli(["lease", "claim", "job", "--holder", "a", "--for", "9s"])).code, 0);
    const held = jsonError(
      await cli(["lease", "claim", "job", "--holder", "b", "--for", "9s", "--json"]),
      4,
      "LeaseHeldError",
    );
    assert.match(held.message, /^lease "job" is held by "a" \(token 1\)/);
  });

  test("the CLI's own failures: unpin by another entity, wait that times out", async () => {
    assert.equal((await cli(["lease", "claim", "w", "--holder", "a", "--for", "9s"])).code, 0);
    assert.equal(
      jsonError(await cli(["lease", "unpin", "w", "--entity", "x", "--json"]), 4, "NotPinnedError")
        .message,
      "lease w is not pinned by x (no pins); nothing changed",
    );
    assert.match(
      jsonError(
        await cli(["lease", "wait", "w", "--timeout", "200ms", "--json"]),
        4,
        "WaitTimeoutError",
      ).message,
      /^lease w is still held after 200ms \(held by a, token \d+\)$/,
    );
  });

  test("without --json, or with --json only for lock's command, errors stay one text line", async () => {
    const text = await cli(["lease", "unpin", "w2", "--entity", "x"]);
    assert.equal(text.code, 4);
    assert.equal(
      text.stderr,
      "globalclock: lease w2 is not pinned by x (no pins); nothing changed\n",
    );
    const usage = await cli(["lease", "claim", "job", "--for", "9s"]);
    assert.equal(usage.stderr, "globalclock: required option '--holder <id>' not specified\n");
    // After --, --json is lock's command's; lock itself takes none.
    const lock = await cli(["lock", "nolock", "--no-clock", "--nope", "--", "true", "--json"]);
    assert.equal(lock.code, 2);
    assert.equal(lock.stderr, "globalclock: unknown option '--nope'\n");
    // A --json before the command is not the command's.
    const early = await cli(["--json", "now"]);
    assert.equal(early.stderr, "globalclock: unknown option '--json'\n");
    const unknown = await cli(["lock", "nolock", "--json", "--", "true"]);
    assert.equal(unknown.stderr, "globalclock: unknown option '--json'\n");
  });

  test("a password is masked in a JSON error, even one with a quote and a space", async () => {
    const url = 'postgres://clock:se"cret word@db.internal/app';
    const run = await cli(["lease", "claim", "job", "--holder", "a", "--for", url, "--json"]);
    const error = jsonError(run, 2, "InvalidDurationError");
    assert.ok(!run.stderr.includes("cret word"), run.stderr);
    assert.match(error.message, /clock:\*\*\*@db\.internal/);
    const env = await cli(["now", "--json"], {
      GLOBALCLOCK_STORE: "postgres://clock:p4ss%20word@127.0.0.1:1/app",
    });
    const e = jsonError(env, 1, "StoreError");
    assert.ok(!env.stderr.includes("p4ss"), env.stderr);
    assert.ok(e.message.length > 0);
  });
});

describe("every command that prints takes --json", () => {
  /** The commands and their flags, from --help. */
  async function helpOf(args: string[]): Promise<string> {
    const { io, out } = recordingIo();
    assert.equal(await main([...args, "--help"], io), 0);
    return out.join("\n");
  }

  test("now, advance, run, watch, status, demo, max-step and every lease subcommand", async () => {
    const commands = [
      ["now"],
      ["advance"],
      ["run"],
      ["watch"],
      ["status"],
      ["demo"],
      ["max-step"],
      ...["claim", "extend", "revoke", "get", "list", "wait", "pin", "unpin"].map((c) => [
        "lease",
        c,
      ]),
    ];
    for (const args of commands)
      assert.match(await helpOf(args), /^ {2}--json /m, `${args.join(" ")} --help`);
  });

  test("revoke, pin, unpin and wait print one JSON object with it; text without it is unchanged", async () => {
    const claimed = JSON.parse(
      (await cli(["lease", "claim", "jp", "--holder", "a", "--for", "9s", "--json"])).stdout,
    );
    const pin = await cli(["lease", "pin", "jp", "--entity", "e", "--json"]);
    assert.deepEqual(JSON.parse(pin.stdout), { name: "jp", entity: "e", pinned: true });
    const unpin = await cli(["lease", "unpin", "jp", "--entity", "e", "--json"]);
    assert.deepEqual(JSON.parse(unpin.stdout), { name: "jp", entity: "e", pinned: false });
    const revoke = await cli(["lease", "revoke", "jp", "--holder", "a", "--token", claimed.token]);
    assert.equal(
      revoke.stdout,
      `lease jp released (token ${claimed.token} is never given again)\n`,
    );
    const again = JSON.parse(
      (await cli(["lease", "claim", "jp", "--holder", "a", "--for", "9s", "--json"])).stdout,
    );
    const revoked = await cli([
      "lease",
      "revoke",
      "jp",
      "--holder",
      "a",
      "--token",
      again.token,
      "--json",
    ]);
    assert.deepEqual(JSON.parse(revoked.stdout), {
      name: "jp",
      released: true,
      token: again.token,
    });
    const waited = await cli(["lease", "wait", "jp", "--json"]);
    assert.equal(waited.code, 0, waited.stderr);
    const info = JSON.parse(waited.stdout);
    assert.equal(info.name, "jp");
    assert.equal(info.free, true);
    assert.equal(JSON.parse((await cli(["lease", "wait", "never", "--json"])).stdout), null);
  });
});
