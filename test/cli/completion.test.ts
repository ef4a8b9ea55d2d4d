// `globalclock completion bash|zsh|fish`: a script generated from the program's commands. The
// bash one is sourced in a real bash and its function asked what it offers, as <TAB> would.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { main } from "../../src/cli/main.js";
import { recordingIo } from "../helpers/cli.js";

let dir: string;
before(() => {
  dir = mkdtempSync(join(tmpdir(), "globalclock-completion-"));
});
after(() => rmSync(dir, { recursive: true, force: true }));

async function script(shell: string): Promise<string> {
  const { io, out, err } = recordingIo();
  assert.equal(await main(["completion", shell], io), 0, err.join("\n"));
  return out.join("\n");
}

/** Every command path and its subcommands, as `--help` lists them. */
const COMMANDS = [
  "now",
  "advance",
  "run",
  "watch",
  "status",
  "demo",
  "lease",
  "lock",
  "max-step",
  "completion",
  "help",
];
const LEASE = ["claim", "extend", "revoke", "get", "list", "wait", "pin", "unpin"];

const has = (shell: string) => spawnSync(shell, ["-c", "exit 0"]).status === 0;

describe("bash", () => {
  let file: string;
  before(async () => {
    file = join(dir, "globalclock.bash");
    writeFileSync(file, await script("bash"));
  });

  /** What the completion function offers for `words`, the last one being completed. */
  function offers(...words: string[]): string[] {
    const body = [
      `source ${JSON.stringify(file)}`,
      `COMP_WORDS=(${words.map((w) => `'${w}'`).join(" ")})`,
      `COMP_CWORD=${words.length - 1}`,
      `COMP_LINE=${JSON.stringify(words.join(" "))}`,
      `COMP_POINT=\${#COMP_LINE}`,
      "_globalclock",
      `printf '%s\\n' "\${COMPREPLY[@]}"`,
    ].join("\n");
    const run = spawnSync("bash", ["--norc", "--noprofile", "-c", body], { encoding: "utf8" });
    assert.equal(run.status, 0, run.stderr);
    assert.equal(run.stderr, "");
    return run.stdout.split("\n").filter((l) => l !== "");
  }

  test("the script is bash and registers its function for globalclock", () => {
    const run = spawnSync("bash", ["--norc", "-c", `source ${file} && complete -p globalclock`], {
      encoding: "utf8",
    });
    assert.equal(run.status, 0, run.stderr);
    assert.equal(run.stdout.trim(), "complete -F _globalclock globalclock");
  });

  test("globalclock lea<TAB> offers lease, globalclock lease c<TAB> offers claim", () => {
    assert.deepEqual(offers("globalclock", "lea"), ["lease"]);
    assert.deepEqual(offers("globalclock", "lease", "c"), ["claim"]);
    assert.deepEqual(offers("globalclock", ""), COMMANDS);
    assert.deepEqual(offers("globalclock", "lease", ""), [...LEASE, "help"]);
  });

  test("options are a command's own and --store; an option's value is not a command", () => {
    assert.deepEqual(offers("globalclock", "lease", "claim", "--"), [
      "--holder",
      "--for",
      "--json",
      "--help",
      "--store",
    ]);
    assert.deepEqual(offers("globalclock", "--st"), ["--store"]);
    // --store's value is skipped: "lease" after it is still the command.
    assert.deepEqual(offers("globalclock", "--store", "sqlite", "lease", "pi"), ["pin"]);
    assert.deepEqual(offers("globalclock", "lease", "claim", "--holder", ""), []);
    assert.deepEqual(offers("globalclock", "lock", "job", "--", "--"), [], "lock's command");
  });

  test("help completes command paths, and completion the shells", () => {
    assert.deepEqual(offers("globalclock", "help", "lease", "un"), ["unpin"]);
    assert.deepEqual(
      offers("globalclock", "help", ""),
      COMMANDS.filter((c) => c !== "help"),
    );
    assert.deepEqual(offers("globalclock", "completion", ""), ["bash", "zsh", "fish"]);
  });
});

for (const shell of ["zsh", "fish"]) {
  test(`the ${shell} script names every command and option`, async () => {
    const text = await script(shell);
    for (const name of [...COMMANDS, ...LEASE]) assert.match(text, new RegExp(`'${name}'`), name);
    for (const flag of ["--holder", "--entity", "--store", "--no-wait"]) {
      const spelled = shell === "fish" ? `-l '${flag.slice(2)}'` : `'${flag}:`;
      assert.ok(text.includes(spelled), `${flag} in ${text.slice(0, 200)}…`);
    }
    const file = join(dir, `globalclock.${shell}`);
    writeFileSync(file, text);
    if (has(shell)) {
      const check = spawnSync(shell, ["-n", file], { encoding: "utf8" });
      assert.equal(check.status, 0, check.stderr);
    }
  });
}

test("an unknown shell is a usage error naming the choices", async () => {
  const { io, out, err } = recordingIo();
  assert.equal(await main(["completion", "tcsh"], io), 2);
  assert.deepEqual(out, []);
  assert.equal(err.length, 1);
  assert.match(err[0] as string, /^globalclock: .*'tcsh'.* bash, zsh, fish/);
});
