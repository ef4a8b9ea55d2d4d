/**
 * Leader election under faults. Candidate processes (test/fixtures/campaigner.ts) campaign
 * for one lease, and the leader writes its fencing token to a guarded resource every 20 ms
 * until its lease's signal fires. Every write that reaches the resource is recorded,
 * accepted or not, with its arrival time. Faults strike in an order drawn from one seed,
 * printed first, so a failure can be replayed:
 * - "store": the store fails under everyone (a server restart, an etcd leader killed);
 * - "kill": the leader is killed (SIGKILL); "term": stopped (SIGTERM: it releases);
 * - "hang", "cut": the leader's calls to the store hang, or its connections are cut (each
 *   candidate reaches the store through proxies of its own), while it still runs: it must
 *   stop at its deadline, before the successor takes over;
 * - "freeze": the leader's whole process is frozen (SIGSTOP, as a frozen machine) until a
 *   successor has written, then resumed: its late writes carry an old token, which the
 *   resource must refuse (fencing's case). If no freeze drew a refused write, up to three
 *   more are tried.
 * Each fault is judged by a successor's first write before the next one. What is checked
 * afterwards is checkElection's. ELECTION_SEED=n draws the faults' order and pauses of a run
 * again (not its timing).
 *
 * The timing is chosen so that the checks see a leader acting past its deadline: a
 * successor must take over soon after the expiry. The lease is the shortest the cluster
 * allows (3 × maxStep), and one `globalclock run` daemon, on a direct path and never struck,
 * keeps global time, stepping every quarter of the lease: global time then passes an expiry
 * at a step, a few store latencies after the real time it stands for (each step loses its
 * write's latency), and the successor takes over then. A leader that acted up to maxStep
 * past its deadline (a deadline without −maxStep) writes after it in most handovers; a
 * correct one stops at least maxStep − interval (500 ms) before. The candidates keep no
 * time of their own (no --clock): a stand-by worker that won a step would step at its own
 * interval, and a clock stepped every 200 ms ran 10–20 % slow on these stores, which hid such
 * a leader.
 */
import assert from "node:assert/strict";
import { type ChildProcess, spawn } from "node:child_process";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { openLeases } from "../../src/leases/leases.js";
import { Daemon } from "../helpers/daemon.js";
import { GuardedResource, type Write } from "../helpers/guarded.js";
import { tcpProxy } from "../helpers/server-process.js";
import {
  checkElection,
  type ElectionRecord,
  type ElectionScenario,
  type Fault,
  summary,
  type Tenure,
  type Term,
  termKey,
} from "./election-check.js";
import { prng } from "./sim/scheduler.js";

const CAMPAIGNER = fileURLToPath(new URL("../fixtures/campaigner.ts", import.meta.url));
const LEASE = "leader";
const MAX_STEP = 2_000_000_000n;
const DURATION = "6s"; // 3 × MAX_STEP
const CLOCK = ["--interval", "1500ms", "--max-step", "2s"]; // DURATION / 4; MAX_STEP
const MS = 1_000_000n;
const _S = 1_000_000_000n;
const now = () => process.hrtime.bigint();
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface Candidate {
  holder: string;
  child: ChildProcess;
  proxies: Array<Awaited<ReturnType<typeof tcpProxy>>>;
  exited: Promise<unknown>;
}

function signal(pid: number | undefined, sig: NodeJS.Signals): void {
  if (pid === undefined) return;
  try {
    process.kill(pid, sig);
  } catch {
    // gone already
  }
}

/** Whether `done` came true within `ms`. */
async function within(ms: number, done: () => boolean): Promise<boolean> {
  const deadline = Date.now() + ms;
  while (!done()) {
    if (Date.now() >= deadline) return false;
    await sleep(20);
  }
  return true;
}

export async function electionUnderFaults(scenario: ElectionScenario): Promise<ElectionRecord> {
  const { url, log } = scenario;
  const seed =
    scenario.seed ?? (Number(process.env.ELECTION_SEED) || Math.floor(Math.random() * 2 ** 31));
  log(`seed ${seed}${scenario.brokenDeadline ? " (candidates with a broken deadline)" : ""}`);
  const random = prng(seed);
  const faults = [...scenario.faults];
  for (let i = faults.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [faults[i], faults[j]] = [faults[j] as Fault, faults[i] as Fault];
  }
  const leases = await openLeases(url); // closes its store
  assert.ok(await leases.setMaxStep(undefined, MAX_STEP), "a new store: maxStep stored");
  const maxStep = await leases.maxStep();
  const clock = new Daemon(url, CLOCK);
  const resource = await GuardedResource.start();
  const ports = [...new Set([...url.matchAll(/127\.0\.0\.1:(\d+)/g)].map((m) => Number(m[1])))];
  const elections: Array<Term & { at: bigint }> = [];
  const tenures: Tenure[] = [];
  const frozen = new Set<string>();
  const lapsed: Term[] = [];
  const struck = new Map<string, Fault>();
  const candidates = new Map<string, Candidate>();
  const stop = new AbortController();
  const pace: Array<{ at: bigint; time: bigint }> = []; // global time read, and when

  // Who holds the lease, as the store says, every 20 ms (for the liveness check).
  const watching = (async () => {
    while (!stop.signal.aborted) {
      const info = await leases.get(LEASE).catch(() => undefined);
      if (info) pace.push({ at: now(), time: info.time });
      const last = tenures.at(-1);
      if (info && info.holder !== "" && info.token !== last?.token) tenures.push({ ...info });
      else if (info && last && info.token === last.token) last.expiry = info.expiry;
      await sleep(20);
    }
  })();

  let next = 0;
  const spawnCandidate = async () => {
    const holder = `c${next++}`;
    const proxies = await Promise.all(ports.map((port) => tcpProxy(port)));
    const own = new Map(ports.map((port, i) => [port, proxies[i]?.port]));
    const proxied = url.replace(/127\.0\.0\.1:(\d+)/g, (_, p) => `127.0.0.1:${own.get(Number(p))}`);
    const args = [CAMPAIGNER, proxied, LEASE, holder, DURATION];
    const child = spawn(
      process.execPath,
      ["--import", "tsx", ...args, "--resource", String(resource.port)],
      {
        stdio: ["ignore", "pipe", "pipe"],
        env: { ...process.env, CAMPAIGNER_BROKEN_DEADLINE: scenario.brokenDeadline ? "1" : "" },
      },
    );
    let stderr = "";
    child.stderr?.on("data", (d) => {
      stderr += d;
    });
    const exited = new Promise((resolve) => child.once("exit", resolve));
    child.once("exit", (code) => {
      if (code !== 0 && code !== null) log(`candidate ${holder} exited ${code}: ${stderr.trim()}`);
    });
    createInterface({ input: child.stdout as NonNullable<ChildProcess["stdout"]> }).on(
      "line",
      (line) => {
        const e = JSON.parse(line) as Record<string, string>;
        if (e.event === "leader")
          elections.push({ holder, token: BigInt(e.token ?? "0"), at: BigInt(e.at ?? "0") });
      },
    );
    candidates.set(holder, { holder, child, proxies, exited });
  };

  /** The leader: the term that wrote a moment ago, never one a fault struck before. */
  const currentLeader = async (fault: Fault) => {
    const fresh = (w: Write) => w.accepted && !struck.has(termKey(w));
    const found = await within(20_000, () => {
      const last = resource.writes.findLast(fresh);
      return !!last && now() - last.at < 100n * MS;
    });
    const last = resource.writes.findLast(fresh);
    const candidate = last && candidates.get(last.holder);
    assert.ok(
      found && last && candidate,
      `no leader wrote in the 20 s before the ${fault}: a leader fault must strike a leader`,
    );
    struck.set(termKey(last), fault);
    return { term: { holder: last.holder, token: last.token }, candidate };
  };
  /** Waits for a successor's first write (a greater token accepted). */
  const succeeded = async (term: Term, fault: Fault) => {
    const ok = await within(30_000, () => resource.highest > term.token);
    assert.ok(ok, `nobody wrote within 30 s of the ${fault} of ${termKey(term)}: no successor`);
  };
  const lateWriteRefused = (term: Term) =>
    resource.writes.some((w) => !w.accepted && termKey(w) === termKey(term));

  /** Freezes the leader until a successor wrote, then resumes it: whether a late write was refused. */
  const freeze = async () => {
    const { term, candidate } = await currentLeader("freeze");
    log(`freeze ${termKey(term)} (pid ${candidate.child.pid})`);
    frozen.add(termKey(term));
    lapsed.push(term);
    signal(candidate.child.pid, "SIGSTOP");
    try {
      await succeeded(term, "freeze");
    } finally {
      signal(candidate.child.pid, "SIGCONT");
    }
    const fenced = await within(3000, () => lateWriteRefused(term));
    log(fenced ? "  its late write was refused" : "  it wrote nothing once resumed");
    return fenced;
  };

  let storeRounds = 0;
  try {
    await clock.waitFor((l) => l.event === "role" && l.role === "active");
    for (let i = 0; i < 3; i++) await spawnCandidate();
    assert.ok(await within(60_000, () => resource.highest > 0n), "no leader wrote within 60 s");
    let fenced = false;
    for (const fault of faults) {
      await sleep(1500 + random() * 1500);
      if (fault === "store") {
        const before = resource.highest;
        log(`store fault ${storeRounds}`);
        await scenario.storeFault?.(storeRounds++);
        // Judged once global time moves again (the daemon may be backing off) and a leader
        // writes: the next fault then waits on the lease, not on the clock.
        const [since, seen] = [now(), pace.at(-1)?.time ?? 0n];
        const led = await within(30_000, () => {
          const last = resource.writes.at(-1);
          return (pace.at(-1)?.time ?? 0n) > seen && !!last && last.accepted && last.at > since;
        });
        assert.ok(led, `no leader wrote within 30 s of the store's recovery (token ${before})`);
        continue;
      }
      if (fault === "freeze") {
        fenced = (await freeze()) || fenced;
        continue;
      }
      const { term, candidate } = await currentLeader(fault);
      log(`${fault} ${termKey(term)} (pid ${candidate.child.pid})`);
      if (fault === "kill" || fault === "term") {
        if (fault === "kill") lapsed.push(term);
        signal(candidate.child.pid, fault === "kill" ? "SIGKILL" : "SIGTERM");
        await succeeded(term, fault);
        await candidate.exited;
        await spawnCandidate();
      } else {
        lapsed.push(term);
        for (const p of candidate.proxies) {
          if (fault === "hang") p.freeze();
          else await p.cut();
        }
        try {
          await succeeded(term, fault);
        } finally {
          for (const p of candidate.proxies) {
            if (fault === "hang") p.thaw();
            else p.heal();
          }
        }
      }
    }
    for (let attempt = 0; attempt < 3 && !fenced; attempt++) {
      await sleep(1500 + random() * 1500);
      fenced = await freeze();
    }
    await sleep(2000);
  } finally {
    stop.abort();
    // Resumed first: a stopped process does not act on SIGTERM.
    for (const c of candidates.values()) {
      for (const p of c.proxies) p.thaw();
      signal(c.child.pid, "SIGCONT");
      signal(c.child.pid, "SIGTERM");
    }
    const ended = Promise.all([...candidates.values()].map((c) => c.exited));
    if (!(await Promise.race([ended.then(() => true), sleep(10_000).then(() => false)]))) {
      log("a candidate outlived SIGTERM by 10 s: SIGKILL");
      for (const c of candidates.values()) signal(c.child.pid, "SIGKILL");
    }
    await ended;
    clock.kill("SIGKILL");
    await watching;
    await leases.close();
    await Promise.all([...candidates.values()].flatMap((c) => c.proxies.map((p) => p.close())));
    await resource.close();
  }
  const record = { writes: resource.writes, frozen, lapsed, elections, tenures, maxStep, struck };
  for (const line of summary(record)) log(line);
  const [first, last] = [pace[0], pace.at(-1)];
  const roles = clock.lines.filter((l) => l.event === "role").map((l) => l.role);
  if (first && last)
    log(
      `global time ran at ${(Number(last.time - first.time) / Number(last.at - first.at)).toFixed(3)} of real time; the daemon's roles: ${roles.join(" ")}`,
    );
  return record;
}

export type { ElectionRecord, ElectionScenario, Fault, Tenure, Term };
export { checkElection, summary };
