/**
 * Running `lock`'s command as a job of its own: a process group that can be stopped as a
 * whole, in `lock`'s session, so that it keeps the controlling terminal (and gets the
 * terminal's foreground, as a shell's foreground job does, when `lock` has it).
 *
 * Node can neither setpgid() nor tcsetpgrp(), so a few lines of Perl (Perl's POSIX module
 * ships with every Debian, Ubuntu and macOS base system) make the group, take the
 * foreground, wait for `lock` to say go (by then the guardian knows the group), and exec
 * the command; an exec that fails exits 127 (not found) or 126 (not runnable), as shells
 * do. Where there is no Perl, Node's `detached` puts the command in a new session instead:
 * a group of its own, without a controlling terminal.
 */
import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { accessSync, constants as fsConstants, readdirSync, readFileSync, statSync } from "node:fs";
import { constants as osConstants } from "node:os";
import { delimiter, isAbsolute, join } from "node:path";
import type { Writable } from "node:stream";

const SETUP = `
use POSIX ();
my $fg = 0;
if (open(my $tty, "<", "/dev/tty")) {
  $fg = POSIX::tcgetpgrp(fileno($tty)) == POSIX::getpgrp();
  close($tty);
}
POSIX::setpgid(0, 0) or die "globalclock lock: setpgid: $!\\n";
if ($fg && open(my $tty, "<", "/dev/tty")) {
  local $SIG{TTOU} = "IGNORE";
  POSIX::tcsetpgrp(fileno($tty), POSIX::getpgrp());
  close($tty);
}
open(my $go, "<&=", 3) or exit 125;
my $line = <$go>;
exit 125 unless defined $line && $line eq "go\\n";
close($go);
exec { $ARGV[0] } @ARGV;
my $err = $!;
print STDERR "globalclock lock: $ARGV[0]: $err\\n";
exit($!{ENOENT} ? 127 : 126);
`;

/** Perl, if this machine has it (looked up once). */
let perl: string | null | undefined;
function findPerl(): string | null {
  if (perl === undefined) {
    const found = spawnSync("perl", ["-MPOSIX", "-e", "exit 0"], { stdio: "ignore" });
    perl = found.status === 0 ? "perl" : null;
  }
  return perl;
}

/** A command started as a job of its own: its process group, and how to let it run. */
export interface Job {
  readonly child: ChildProcess;
  /** The process group's id (the command's pid). */
  readonly group: number;
  /** Lets the command run (it waits for this where Perl made the group). */
  go(): void;
  /** Whether the command got the terminal's foreground (lock should take it back after). */
  readonly foreground: boolean;
}

/**
 * Starts `command` in a process group of its own, with `env`, stdio inherited. It does not
 * run until `go()`; a `lock` that dies before that leaves nothing running.
 */
export function startJob(command: readonly string[], env: NodeJS.ProcessEnv): Job {
  const [file, ...args] = command as [string, ...string[]];
  const runner = findPerl();
  if (runner === null) {
    const child = spawn(file, args, { stdio: "inherit", env, detached: true });
    return { child, group: child.pid ?? -1, go: () => {}, foreground: false };
  }
  // Asked here, of a child in lock's own group: the job takes the foreground only if lock has it.
  const foreground =
    spawnSync(runner, ["-MPOSIX", "-e", FOREGROUND], { stdio: "ignore" }).status === 0;
  const child = spawn(runner, ["-e", SETUP, "--", file, ...args], {
    stdio: ["inherit", "inherit", "inherit", "pipe"],
    env,
  });
  const gate = child.stdio[3] as Writable | null;
  gate?.on("error", () => {}); // the helper died first: its exit says why
  return { child, group: child.pid ?? -1, go: () => gate?.end("go\n"), foreground };
}

/** Exits 0 when the caller's process group is the foreground of its controlling terminal. */
const FOREGROUND =
  'open(my $t, "<", "/dev/tty") or exit 1; exit(POSIX::tcgetpgrp(fileno($t)) == POSIX::getpgrp() ? 0 : 1);';

/**
 * Gives the terminal's foreground back to `lock`'s own group, after a job that took it has
 * ended (a shell does the same when its foreground job ends).
 */
export function takeForeground(): void {
  const runner = findPerl();
  if (runner === null) return;
  spawnSync(
    runner,
    [
      "-MPOSIX",
      "-e",
      'open(my $t, "<", "/dev/tty") or exit 0; $SIG{TTOU} = "IGNORE"; POSIX::tcsetpgrp(fileno($t), POSIX::getpgrp());',
    ],
    { stdio: "ignore" },
  );
}

/** Sends `signal` to every process of the group; false once the group is gone. */
export function signalGroup(group: number, signal: NodeJS.Signals | 0): boolean {
  if (group <= 0) return false;
  try {
    process.kill(-group, signal);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === "EPERM"; // there, but not ours to signal
  }
}

/**
 * Whether any process of the group can still run: signal 0 reaches it, and, where /proc
 * shows the members (Linux), one of them is not a zombie (a killed member that nobody has
 * reaped yet, as happens under a container's init that does not reap, runs nothing).
 */
export function groupRunning(group: number): boolean {
  if (!signalGroup(group, 0)) return false;
  let entries: string[];
  try {
    entries = readdirSync("/proc");
  } catch {
    return true; // no /proc: signal 0 is all there is to go by
  }
  for (const entry of entries) {
    if (!/^\d+$/.test(entry)) continue;
    let stat: string;
    try {
      stat = readFileSync(`/proc/${entry}/stat`, "latin1");
    } catch {
      continue; // gone meanwhile
    }
    // pid (comm) state ppid pgrp …: comm may hold spaces and parentheses, so from the last ")".
    const [state, , pgrp] = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    if (Number(pgrp) === group && state !== "Z" && state !== "X") return true;
  }
  return false;
}

/** The exit code a shell gives for a command that `signal` ended: 128 + its number. */
export function signalExitCode(signal: NodeJS.Signals): number {
  return 128 + (osConstants.signals[signal] ?? 0);
}

/**
 * Why `file` cannot be run, before anything is claimed for it: "not found" (exit 127, as a
 * shell says) or "not executable" (126); undefined when it looks runnable. Searched on
 * PATH unless it names a path. The exec itself still decides: this only spares a lease
 * taken for a command that cannot start.
 */
export function unrunnable(
  file: string,
  env: NodeJS.ProcessEnv,
): "not found" | "not executable" | undefined {
  const candidates =
    file.includes("/") || isAbsolute(file)
      ? [file]
      : (env.PATH ?? "").split(delimiter).map((dir) => join(dir || ".", file));
  let found = false;
  for (const path of candidates) {
    try {
      if (!statSync(path).isFile()) continue;
    } catch {
      continue;
    }
    found = true;
    try {
      accessSync(path, fsConstants.X_OK);
      return undefined;
    } catch {
      // found, but not executable: look further along PATH, as execvp does
    }
  }
  return found ? "not executable" : "not found";
}
