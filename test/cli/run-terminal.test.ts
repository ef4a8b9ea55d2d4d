/**
 * `run` on a terminal: one status line redrawn in place (written without a newline) and
 * readable log lines; JSON lines when stdout is not a terminal, or with --json. Checked in
 * this process with an Io that says it is a terminal, and under a real pseudo-terminal
 * (`script`).
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { main } from "../../src/cli/main.js";
import { MemoryStore } from "../../src/stores/memory/index.js";
import { BIN, buildIfStale, recordingIo, underTerminal } from "../helpers/cli.js";
import { eventually } from "../helpers/daemon.js";
import { skipOrFail } from "../helpers/env.js";

const CLEAR = "\r\x1b[K"; // carriage return, then erase to the end of the line
/** A log line without its colours. */
const plain = (line: string) =>
  line
    .split("\x1b")
    .map((part, i) => (i === 0 ? part : part.replace(/^\[\d+m/, "")))
    .join("");

/** Runs `run` on a memory store through `main` until the clock has moved, then stops it. */
async function runUntilActive(name: string, args: string[], tty: boolean) {
  const recorded = recordingIo({ tty });
  const before = process.listeners("SIGTERM");
  const running = main(
    ["--store", `memory:${name}`, "run", "--interval", "20ms", ...args],
    recorded.io,
  );
  const clock = new MemoryStore(name);
  await eventually(async () => ((await clock.read()) ?? 0n) > 0n, "an advance");
  await eventually(
    () => recorded.writes.some((w) => w.includes("active")) || !tty || args.includes("--json"),
    "a status line showing the active role",
  );
  const onTerm = process.listeners("SIGTERM").find((l) => !before.includes(l));
  assert.ok(onTerm, "run installed no SIGTERM handler");
  onTerm("SIGTERM");
  assert.equal(await running, 0, recorded.err.join("\n"));
  await clock.close();
  return recorded;
}

test("on a terminal: a status line redrawn in place, and readable log lines", async () => {
  const { out, err, writes } = await runUntilActive("tty-run", [], true);
  assert.deepEqual(out, [], "nothing went through line output");
  const status = writes.filter((w) => w.startsWith(CLEAR) && w.length > CLEAR.length);
  assert.ok(status.length >= 2, `status lines: ${JSON.stringify(writes)}`);
  for (const w of status)
    assert.ok(!w.includes("\n"), `a status line scrolls: ${JSON.stringify(w)}`);
  assert.ok(status.some((w) => /^active +1970-01-01T/.test(w.slice(CLEAR.length))));
  assert.equal(writes.at(-1), "\n", "the last status line is left on screen");
  assert.ok(err.length >= 3, err.join("\n"));
  for (const line of err) {
    assert.match(plain(line), /^\d\d:\d\d:\d\d\.\d{3} (INFO |WARN |ERROR) /);
    assert.ok(!line.includes("{"), `not readable: ${line}`);
  }
  assert.ok(err.some((l) => /INFO {2}role: active at 1970-01-01T/.test(l)));
  assert.ok(err.some((l) => /INFO {2}stopped after \d+ advances/.test(l)));
});

test("not on a terminal, or with --json: JSON lines and no status line", async () => {
  for (const [tty, args] of [
    [false, []],
    [true, ["--json"]],
  ] as const) {
    const { out, err, writes } = await runUntilActive(`json-run-${tty}`, [...args], tty);
    assert.deepEqual(writes, []);
    assert.deepEqual(err, []);
    const events = out.map((line) => JSON.parse(line) as { event: string; level: number });
    assert.equal(events[0]?.event, "start");
    assert.ok(events.some((e) => e.event === "role"));
    assert.equal(events.at(-1)?.event, "stop");
  }
});

test("under a pseudo-terminal: the status line is redrawn without scrolling", {
  timeout: 60_000,
}, async (t) => {
  if (spawnSync("script", ["--version"]).error) {
    skipOrFail(t, "no `script` (util-linux) to run the CLI under a pseudo-terminal");
    return;
  }
  buildIfStale();
  const dir = mkdtempSync(join(tmpdir(), "globalclock-pty-"));
  try {
    // `script` runs the command with `$SHELL -c`; `exec` leaves node alone in the terminal's
    // foreground group. Without it a shell that does not exec its last command (dash) waits
    // there too, and the Ctrl-C kills it: exit 130 while node stops cleanly.
    const command = `exec '${process.execPath}' '${BIN}' --store 'sqlite:${dir}/clock.db' run --interval 50ms`;
    const terminal = underTerminal(command);
    // Two redraws of the active status line in a row, with no newline between them.
    const redrawn = () =>
      terminal
        .screen()
        .split(`${CLEAR}active `)
        .slice(1, -1)
        .some((s) => !s.includes("\n"));
    await eventually(redrawn, "the status line redrawn in place", 30_000);
    terminal.type("\x03"); // Ctrl-C, through the terminal: SIGINT
    const screen = terminal.screen();
    assert.equal(await terminal.exited, 0, screen);
    assert.match(screen, /^\d\d:\d\d:\d\d\.\d{3} INFO {2}globalclock running on sqlite:/m);
    assert.match(screen, /INFO {2}role: active at 1970-01-01T/);
    assert.doesNotMatch(screen, /"level":/, "JSON on a terminal");
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
