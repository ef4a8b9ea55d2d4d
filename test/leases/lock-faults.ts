/**
 * Several `globalclock lock` processes taking turns on one lease, each running a command
 * that writes its fencing token to a guarded resource (some leave a background job behind,
 * some ignore SIGTERM), while locks, their commands, their guardians and the clock daemon
 * are killed and paused. Every write that reaches the resource is recorded, accepted or not,
 * with its arrival time. What is checked afterwards (checkTenures):
 * - a tenure (the writes of one holder and token, background jobs included) that no frozen
 *   machine took part in ends before the next tenure's first write: nothing a lock started
 *   acts past its lease, whether lock exited, died, or was paused;
 * - every write the resource refused came from a tenure whose whole machine was frozen (the
 *   case fencing exists for), and the fencing was exercised at least once;
 * - after a holder died, the next one started no earlier than its expiry, and within maxStep
 *   and a couple of clock ticks of it, in global time.
 * Random choices come from one seed, printed first, so a failure can be replayed.
 */
import assert from "node:assert/strict";
import type { ChildProcess } from "node:child_process";
import { readdirSync, readFileSync } from "node:fs";
import { openLeases } from "../../src/leases/leases.js";
import { Daemon } from "../helpers/daemon.js";
import { GuardedResource, lockedWriter, type Write } from "../helpers/guarded.js";
import { prng } from "./sim/scheduler.js";

const S = 1_000_000_000n;
const now = () => process.hrtime.bigint();
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface Tenure {
  token: bigint;
  start: bigint;
  expiry: bigint;
  holder: string;
}

type Fault = "kill-lock" | "kill-both" | "pause-lock" | "freeze" | "stop-clock" | "kill-clock";
const FAULTS: Fault[] = [
  "kill-both",
  "pause-lock",
  "kill-lock",
  "freeze",
  "stop-clock",
  "kill-lock",
  "kill-clock",
  "pause-lock",
];

function signal(pid: number | undefined, sig: NodeJS.Signals): void {
  if (pid === undefined) return;
  try {
    process.kill(pid, sig);
  } catch {
    // gone already
  }
}

/** The guardian lock started (a child of lock running guardian-main), if it is there. */
function guardianOf(lock: number | undefined): number | undefined {
  if (lock === undefined) return undefined;
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, "latin1");
      const ppid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
      if (ppid !== lock) continue;
      if (readFileSync(`/proc/${entry}/cmdline`, "latin1").includes("guardian-main"))
        return Number(entry);
    } catch {
      // gone meanwhile
    }
  }
  return undefined;
}

export async function lockUnderFaults(
  url: string,
  log: (line: string) => void,
  seed = Math.floor(Math.random() * 2 ** 31),
): Promise<void> {
  log(`seed ${seed}`);
  const random = prng(seed);
  const resource = await GuardedResource.start();
  // A cluster with a short maxStep, so that short leases are allowed: its updaters step
  // every 200 ms (the locks' own stand-by workers follow the cluster's maxStep).
  const leases = await openLeases(url); // closes its store
  assert.ok(await leases.setMaxStep(undefined, 300_000_000n), "a new store: maxStep stored");
  const maxStep = await leases.maxStep();
  const locks = new Map<string, ChildProcess>(); // by holder name
  const frozen = new Set<string>(); // holders whose whole machine was frozen
  const died: Array<{ holder: string; at: bigint }> = [];
  const tenures: Tenure[] = [];
  const startClock = () => new Daemon(url, ["--interval", "200ms"]);
  let clock = startClock();
  const stop = new AbortController();

  // Who holds the lease, as the store says, every 20 ms (for the liveness check).
  const watching = (async () => {
    while (!stop.signal.aborted) {
      const info = await leases.get("job").catch(() => undefined);
      const last = tenures.at(-1);
      if (info && info.holder !== "" && info.token !== last?.token) tenures.push({ ...info });
      else if (info && last && info.token === last.token) last.expiry = info.expiry;
      await sleep(20);
    }
  })();

  let seq = 0;
  const loops = [0, 1, 2].map(async (i) => {
    while (!stop.signal.aborted) {
      const holder = `h${i}.${seq++}`;
      const runMs = String(1000 + Math.floor(random() * 3000));
      const variant = [
        random() < 0.3 ? ["--background"] : [],
        random() < 0.3 ? ["--ignore-term"] : [],
      ].flat();
      // --wait is the default; said for builds before it was.
      const child = lockedWriter(url, holder, resource, runMs, { writerFlags: variant });
      let stderr = "";
      child.stderr?.on("data", (d) => {
        stderr += d;
      });
      child.once("exit", (code) => {
        if (code !== 0 && code !== 4 && code !== null)
          log(`lock ${holder} exited ${code}: ${stderr.trim()}`);
      });
      locks.set(holder, child);
      await new Promise((resolve) => child.once("exit", resolve));
    }
  });

  /** Whether `done` came true within `ms`. */
  const within = async (ms: number, done: () => boolean) => {
    const deadline = Date.now() + ms;
    while (!done()) {
      if (Date.now() >= deadline) return false;
      await sleep(20);
    }
    return true;
  };
  const victims = new Set<string>();
  /** The holder that wrote a moment ago (never one a fault struck before), with its lock, guardian and command. */
  const currentHolder = async () => {
    const fresh = (w: Write) => w.accepted && !victims.has(w.holder);
    let last = resource.writes.findLast(fresh);
    for (let i = 0; i < 100 && (!last || now() - last.at > 100_000_000n); i++) {
      await sleep(50);
      last = resource.writes.findLast(fresh);
    }
    const lock = last && locks.get(last.holder);
    const command = last && resource.writes.find((w) => w.holder === last.holder)?.pid;
    return last && lock && command !== undefined
      ? { holder: last.holder, lock, command, guardian: guardianOf(lock.pid) }
      : undefined;
  };
  /** Freezes a whole machine's part in a tenure (lock, guardian, command group), as a frozen VM. */
  const freeze = (c: { lock: ChildProcess; guardian: number | undefined; command: number }) => {
    signal(c.lock.pid, "SIGSTOP");
    signal(c.guardian, "SIGSTOP");
    signal(-c.command, "SIGSTOP");
  };
  const thaw = async (c: { lock: ChildProcess; guardian: number | undefined; command: number }) => {
    signal(-c.command, "SIGCONT"); // the command first: it acts late, before anything stops it
    await sleep(300);
    signal(c.guardian, "SIGCONT");
    signal(c.lock.pid, "SIGCONT");
  };

  try {
    await sleep(3000);
    for (const fault of FAULTS) {
      await sleep(2000 + random() * 1500);
      // The holder is the one that wrote last, a moment ago (not one that died a while ago).
      const current = await currentHolder();
      log(
        `${fault} (holder ${current?.holder}, lock ${current?.lock.pid}, command ${current?.command}, guardian ${current?.guardian})`,
      );
      if (fault === "stop-clock") {
        signal(clock.pid, "SIGSTOP");
        await sleep(4000);
        signal(clock.pid, "SIGCONT");
        continue;
      }
      if (fault === "kill-clock") {
        signal(clock.pid, "SIGKILL");
        await sleep(3000);
        clock = startClock();
        continue;
      }
      if (!current) continue;
      victims.add(current.holder);
      // Judged by the successor: wait for its first write before the next fault.
      const succeeded = () =>
        within(20_000, () => resource.writes.some((w) => w.accepted && !victims.has(w.holder)));
      if (fault === "kill-lock") {
        // The command is orphaned and writes on for 6 s: the guardian must stop it now.
        signal(current.lock.pid, "SIGKILL");
        await succeeded();
      } else if (fault === "kill-both") {
        died.push({ holder: current.holder, at: now() });
        signal(current.lock.pid, "SIGKILL");
        signal(-current.command, "SIGKILL");
        await succeeded();
      } else if (fault === "pause-lock") {
        // lock's own loop is stuck past the deadline: the guardian stops the command then.
        signal(current.lock.pid, "SIGSTOP");
        await succeeded();
        signal(current.lock.pid, "SIGCONT");
      } else {
        frozen.add(current.holder);
        freeze(current);
        await sleep(5000);
        await thaw(current);
      }
    }
    // Last, for certain: a machine frozen until a successor has written, then its command
    // thawed first: its late writes carry an old token, which the resource must refuse. A
    // command whose run ended just as it was frozen writes nothing more, and a holder frozen
    // in the middle of a SQLite write stops everyone: then another is tried.
    let fenced = false;
    for (let attempt = 0; attempt < 3 && !fenced; attempt++) {
      await sleep(2000);
      const victim = await currentHolder();
      if (!victim) continue;
      victims.add(victim.holder);
      log(`fence check (holder ${victim.holder}, command ${victim.command})`);
      frozen.add(victim.holder);
      const token = resource.writes.findLast((w) => w.holder === victim.holder)?.token ?? 0n;
      freeze(victim);
      try {
        const succeeded = await within(15_000, () =>
          resource.writes.some((w) => w.accepted && w.token > token),
        );
        if (!succeeded) {
          log(`no successor wrote while ${victim.holder} was frozen (did it hold the write lock?)`);
          continue;
        }
        signal(-victim.command, "SIGCONT");
        fenced = await within(5_000, () =>
          resource.writes.some((w) => w.holder === victim.holder && !w.accepted),
        );
        if (!fenced)
          log(`${victim.holder}'s command wrote nothing once thawed (its run had ended)`);
      } finally {
        await thaw(victim);
      }
    }
    assert.ok(fenced, "no frozen holder's late write reached the resource in three tries");
    await sleep(3000);
  } finally {
    stop.abort();
    // Resumed first: a stopped process does not act on SIGTERM.
    for (const child of locks.values()) {
      signal(child.pid, "SIGCONT");
      signal(guardianOf(child.pid), "SIGCONT");
      signal(child.pid, "SIGTERM");
    }
    const ended = Promise.all(loops);
    if (!(await Promise.race([ended.then(() => true), sleep(15_000).then(() => false)]))) {
      log("a lock outlived SIGTERM by 15 s: SIGKILL");
      for (const child of locks.values()) signal(child.pid, "SIGKILL");
    }
    await ended;
    await sleep(500); // the guardians of locks that were killed stop their groups
    for (const w of resource.writes) signal(-w.pid, "SIGKILL");
    signal(clock.pid, "SIGKILL");
    await watching;
    await leases.close();
    await resource.close();
  }

  const refused = resource.writes.filter((w) => !w.accepted).length;
  log(
    `${resource.writes.length} writes, ${refused} refused (stale tokens), ${tenures.length} tenures`,
  );
  assert.ok(tenures.length >= 5, `too few turns to judge: ${tenures.length}`);
  assert.ok(refused > 0, "no stale write reached the resource: the fencing was never tested");
  assert.deepEqual(checkTenures(resource.writes, frozen), []);
  // After a holder died, the next started at its expiry, not before, and not much later.
  for (const d of died) {
    const at = tenures.findIndex((t) => t.holder === d.holder);
    const dead = tenures[at];
    const next = tenures[at + 1];
    if (!dead || !next) continue;
    assert.ok(next.start >= dead.expiry, `${next.holder} started before ${d.holder}'s expiry`);
    assert.ok(
      next.start - dead.expiry <= maxStep + 2n * S,
      `${next.holder} started ${next.start - dead.expiry} ns of global time after ${d.holder}'s expiry`,
    );
  }
}

/**
 * Violations in a resource's record of writes, accepted or not, by arrival: a tenure (one
 * holder and token) with a write after a later tenure's first write, unless its machine
 * was frozen (`frozen`: fencing's case); and a refused write from a tenure that was not.
 */
export function checkTenures(writes: readonly Write[], frozen: ReadonlySet<string>): string[] {
  const out: string[] = [];
  const spans = new Map<string, { holder: string; token: bigint; from: bigint; to: bigint }>();
  for (const w of writes) {
    const key = `${w.holder}#${w.token}`;
    const span = spans.get(key);
    if (span) span.to = w.at;
    else spans.set(key, { holder: w.holder, token: w.token, from: w.at, to: w.at });
    if (!w.accepted && !frozen.has(w.holder))
      out.push(
        `a write of ${w.holder} (token ${w.token}) was refused, and its machine was never frozen`,
      );
  }
  const list = [...spans.values()].sort((a, b) =>
    a.token < b.token ? -1 : a.token > b.token ? 1 : 0,
  );
  for (const a of list) {
    if (frozen.has(a.holder)) continue;
    for (const b of list) {
      if (b.token <= a.token) continue;
      if (a.to >= b.from)
        out.push(
          `${a.holder} (token ${a.token}) wrote ${a.to - b.from} ns after ${b.holder} (token ${b.token}) began`,
        );
    }
  }
  return out.slice(0, 5);
}
