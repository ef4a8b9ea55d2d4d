/**
 * Several `globalclock lock` processes taking turns on one lease, each running a command
 * that writes its fencing token to a guarded resource, while holders and clock workers
 * are SIGKILLed and SIGSTOPped. What is checked afterwards:
 * - holders that were never paused (nor orphaned by the death of their `lock`) never
 *   acted at the same time as another holder;
 * - every write the resource refused came from a paused or orphaned command (fencing
 *   caught it), and none from a live holder;
 * - after a holder died, the next one started no earlier than the dead one's expiry and
 *   within maxStep and a couple of clock ticks of it, in global time.
 */
import assert from "node:assert/strict";
import { type ChildProcess, spawn } from "node:child_process";
import { fileURLToPath } from "node:url";
import { openLeases } from "../../src/leases/leases.js";
import { BIN, Daemon } from "../helpers/daemon.js";
import { GuardedResource, overlaps, type Span } from "../helpers/guarded.js";

const WRITER = fileURLToPath(new URL("../fixtures/guarded-writer.ts", import.meta.url));
const S = 1_000_000_000n;
const now = () => process.hrtime.bigint();
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface Tenure {
  token: bigint;
  start: bigint;
  expiry: bigint;
  holder: string;
}

type Fault = "kill-lock" | "kill-both" | "pause" | "stop-clock" | "kill-clock";
const FAULTS: Fault[] = [
  "kill-both",
  "pause",
  "kill-lock",
  "stop-clock",
  "kill-both",
  "kill-clock",
  "pause",
];

function signal(pid: number | undefined, sig: NodeJS.Signals): void {
  if (pid === undefined) return;
  try {
    process.kill(pid, sig);
  } catch {
    // gone already
  }
}

export async function lockUnderFaults(url: string, log: (line: string) => void): Promise<void> {
  const resource = await GuardedResource.start();
  // A cluster with a short maxStep, so that short leases are allowed: its updaters step
  // every 200 ms (the locks' own stand-by workers follow the cluster's maxStep).
  const leases = await openLeases(url, { maxStep: "300ms" }); // closes its store
  assert.ok(await leases.setMaxStep(undefined, 300_000_000n), "a new store: maxStep stored");
  const maxStep = await leases.maxStep();
  const locks = new Map<string, ChildProcess>(); // by holder name
  const excluded = new Set<number>(); // command pids that were paused or orphaned
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
      const runMs = String(1000 + Math.floor(Math.random() * 3000));
      const child = spawn(
        process.execPath,
        [
          BIN,
          "--store",
          url,
          "lock",
          "job",
          "--ttl",
          "3s",
          "--grace",
          "1s",
          "--wait",
          "--holder",
          holder,
          "--",
          process.execPath,
          "--import",
          "tsx",
          WRITER,
          String(resource.port),
          runMs,
        ],
        { stdio: ["ignore", "ignore", "pipe"] },
      );
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

  const commandOf = (holder: string) =>
    resource.writes.findLast((w) => w.holder === holder && w.accepted)?.pid;
  /** Whether `done` came true within `ms`. */
  const within = async (ms: number, done: () => boolean) => {
    const deadline = Date.now() + ms;
    while (!done()) {
      if (Date.now() >= deadline) return false;
      await sleep(20);
    }
    return true;
  };
  /** The holder that wrote a moment ago, with its lock and command. */
  const currentHolder = async () => {
    let last = resource.writes.findLast((w) => w.accepted);
    for (let i = 0; i < 100 && (!last || now() - last.at > 100_000_000n); i++) {
      await sleep(50);
      last = resource.writes.findLast((w) => w.accepted);
    }
    const lock = last && locks.get(last.holder);
    const command = last && commandOf(last.holder);
    return last && lock && command !== undefined
      ? { holder: last.holder, lock, command }
      : undefined;
  };

  try {
    await sleep(3000);
    for (const fault of FAULTS) {
      await sleep(2000 + Math.random() * 1500);
      // The holder is the one that wrote last, a moment ago (not one that died a while ago).
      const current = await currentHolder();
      const holder = current?.holder;
      const lock = current?.lock;
      const command = current?.command;
      log(`${fault} (holder ${holder}, lock ${lock?.pid}, command ${command})`);
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
      if (!lock || command === undefined || holder === undefined) continue;
      if (fault === "kill-lock") {
        excluded.add(command); // it goes on writing with its token: fencing must refuse it
        signal(lock.pid, "SIGKILL");
        setTimeout(() => signal(-command, "SIGKILL"), 4000);
      } else if (fault === "kill-both") {
        died.push({ holder, at: now() });
        signal(lock.pid, "SIGKILL");
        signal(-command, "SIGKILL");
      } else {
        excluded.add(command); // paused past its deadline, then resumed
        signal(lock.pid, "SIGSTOP");
        signal(-command, "SIGSTOP");
        await sleep(5000);
        signal(-command, "SIGCONT"); // the command first: it acts late before its lock stops it
        await sleep(300);
        signal(lock.pid, "SIGCONT");
      }
    }
    // Last, for certain: a holder paused until a successor has written, then its command
    // resumed before its lock: its late writes carry an old token, which the resource must
    // refuse. A command whose run ended just as it was paused writes nothing more, and a
    // holder paused in the middle of a SQLite write stops everyone: then another is tried.
    let fenced = false;
    for (let attempt = 0; attempt < 3 && !fenced; attempt++) {
      await sleep(2000);
      const victim = await currentHolder();
      if (!victim) continue;
      const { holder, lock, command } = victim;
      log(`fence check (holder ${holder}, command ${command})`);
      excluded.add(command);
      const token = resource.writes.findLast((w) => w.pid === command)?.token ?? 0n;
      signal(lock.pid, "SIGSTOP");
      signal(-command, "SIGSTOP");
      try {
        const succeeded = await within(15_000, () =>
          resource.writes.some((w) => w.accepted && w.token > token),
        );
        if (!succeeded) {
          // On SQLite a process stopped in the middle of a write keeps the file's write
          // lock: nobody can take the lease until it runs again.
          log(`no successor wrote while ${holder} was paused (did it hold the write lock?)`);
          continue;
        }
        signal(-command, "SIGCONT");
        fenced = await within(5_000, () =>
          resource.writes.some((w) => w.pid === command && !w.accepted),
        );
        if (!fenced) log(`${holder}'s command wrote nothing once resumed (its run had ended)`);
      } finally {
        signal(-command, "SIGCONT");
        signal(lock.pid, "SIGCONT");
      }
    }
    assert.ok(fenced, "no paused holder's late write reached the resource in three tries");
    await sleep(3000);
  } finally {
    stop.abort();
    // Resumed first: a stopped process does not act on SIGTERM.
    for (const child of locks.values()) {
      signal(child.pid, "SIGCONT");
      signal(child.pid, "SIGTERM");
    }
    const ended = Promise.all(loops);
    if (!(await Promise.race([ended.then(() => true), sleep(15_000).then(() => false)]))) {
      log("a lock outlived SIGTERM by 15 s: SIGKILL");
      for (const child of locks.values()) signal(child.pid, "SIGKILL");
    }
    await ended;
    for (const w of resource.writes) signal(-w.pid, "SIGKILL");
    signal(clock.pid, "SIGKILL");
    await watching;
    await leases.close();
    await resource.close();
  }

  const accepted = resource.writes.filter((w) => w.accepted);
  const refused = resource.writes.length - accepted.length;
  log(
    `${resource.writes.length} writes, ${refused} refused (stale tokens), ${tenures.length} tenures`,
  );
  assert.ok(tenures.length >= 5, `too few turns to judge: ${tenures.length}`);
  assert.ok(refused > 0, "no stale write reached the resource: the fencing was never tested");

  // 1. Live holders never overlapped.
  const spans = new Map<number, Span & { token: bigint }>();
  for (const w of accepted) {
    if (excluded.has(w.pid)) continue;
    const span = spans.get(w.pid);
    if (span) {
      assert.equal(span.token, w.token, `command ${w.pid} wrote two tokens`);
      span.to = w.at;
    } else spans.set(w.pid, { from: w.at, to: w.at, token: w.token });
  }
  const list = [...spans.entries()];
  for (let i = 0; i < list.length; i++) {
    for (let j = i + 1; j < list.length; j++) {
      const [pa, a] = list[i] as [number, Span & { token: bigint }];
      const [pb, b] = list[j] as [number, Span & { token: bigint }];
      assert.ok(
        !overlaps(a, b),
        `commands ${pa} (token ${a.token}) and ${pb} (token ${b.token}) acted at once`,
      );
    }
  }
  // 2. Only paused or orphaned commands were refused.
  for (const w of resource.writes.filter((x) => !x.accepted)) {
    assert.ok(
      excluded.has(w.pid),
      `a live holder's write was refused: ${w.holder} token ${w.token}`,
    );
  }
  // 3. After a holder died, the next started at its expiry, not before, and not much later.
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
