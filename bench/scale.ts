/**
 * Scale: 100 holders — 100 sessions (ttl 15 s, default renewEvery) spread over 4 holder
 * processes (bench/scale-child.ts, 25 sessions each on one store connection), opened
 * staggered over one renewal period so that their renewals do not all fall at once — holding
 * 100, then 1,000, then 10,000 leases between them, while one updater (startUpdater, in
 * this process) keeps global time moving. The leases are claimed step by step, the 25
 * sessions of a process claiming in parallel (100 claims in flight in all), so the claim
 * latency is under that load. After each step the holders just hold for a window (60 s at
 * 10,000 leases, 20 s at the smaller steps; quick: 10 s) and each process counts, by
 * wrapping its store's readLease and writeLease:
 * - every lease-record write made during the window, divided by the renewal periods the
 *   window spans: with sessions, about one per holder, whatever the number of leases;
 * - each session renewal's time, from its read of the session record to its write done;
 * - lapses: the leases of a session whose signal fired or that was lost (must be 0), in
 *   the window and, apart, while the step's claims ran.
 * The MongoDB test double stops at 1,000 leases (DOUBLE_MAX_LEASES, below).
 * After each window a separate reader lists every lease: each must be held, by its holder.
 * The store server's CPU over the window is read from /proc (utime + stime of the server
 * processes and their children) for PostgreSQL and etcd; SQLite has no server, and the
 * MongoDB test double is a Node process standing in for one, so its CPU says nothing.
 * Finally, at each store's largest step, a `globalclock run` daemon with its HTTP service (default
 * settings: fleet-level lease series only) joins the store and /metrics is fetched 5 times,
 * more than its 1 s cache apart: each scrape lists every lease.
 */
import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { readdirSync, readFileSync } from "node:fs";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { describe } from "../src/errors.js";
import { Leases, openStore, startUpdater } from "../src/index.js";
import { holdSchedule } from "../src/leases/hold.js";
import type { EtcdCluster } from "../test/helpers/etcd-server.js";
import { type Context, sharedUrl } from "./context.js";
import { Fleet } from "./fleet.js";
import { num } from "./format.js";
import { percentile } from "./measure.js";
import { track } from "./processes.js";
import type { ClaimReport, Closed, Ready, WindowReport } from "./scale-child.js";
import { startEtcd, startMongoDouble } from "./servers.js";

export type ScaleStore = "sqlite" | "postgres" | "etcd" | "mongodb";

const PROCESSES = 4;
const SESSIONS_PER_PROCESS = 25;
const HOLDERS = PROCESSES * SESSIONS_PER_PROCESS;
const TTL = "15s";
const ETCD_MEMBERS = 3;
const SCRAPES = 5;
/** More than the daemon's METRICS_CACHE_MS, so that every scrape is a fresh one. */
const SCRAPE_GAP_MS = 1200;

/** The lease counts and each one's window, by mode. */
const STEPS = {
  full: [
    { leases: 100, windowMs: 20_000 },
    { leases: 1_000, windowMs: 20_000 },
    { leases: 10_000, windowMs: 60_000 },
  ],
  quick: [
    { leases: 100, windowMs: 10_000 },
    { leases: 1_000, windowMs: 10_000 },
  ],
} as const;

/**
 * The MongoDB test double scans its whole collection for every command
 * (test/mongo-double/collections.ts), so with 10,000 leases it, not the store's code, is
 * what falls behind (tried: its sessions lapsed during the claims): it stops at 1,000.
 */
const DOUBLE_MAX_LEASES = 1_000;

/** The figures at one number of leases. */
export interface ScalePoint {
  leases: number;
  windowSeconds: number;
  /** Every lease-record write the holders made in the window. */
  writes: number;
  /** Of them, writes the store refused (a lost compare-and-swap). */
  refusedWrites: number;
  /** The window ÷ the sessions' renewEvery. */
  renewalPeriods: number;
  writesPerRenewalPeriod: number;
  renewals: number;
  renewalP50Ms: number;
  renewalP99Ms: number;
  renewalMaxMs: number;
  /** Claims made to reach this step (from the step before), 100 in flight. */
  claims: number;
  claimP50Ms: number;
  claimP99Ms: number;
  claimsPerSec: number;
  claimErrors: number;
  /** Session renewals made while those claims ran, p99. */
  renewalP99DuringClaimsMs: number;
  /** Leases of sessions whose signal fired or that were lost, during the window. */
  lapses: number;
  /** The same while this step's claims ran (100 in flight). */
  lapsesDuringClaims: number;
  lapsedSessions: number;
  resumes: number;
  /** After the window, as a reader listed them: held by the session's holder. */
  heldAtEnd: number;
  /** Missing, free, or held by another. */
  notHeldAtEnd: number;
  /** The store server's processes' CPU over the window, % of one core; null: see storeCpuNote. */
  storeCpuPercent: number | null;
}

export interface ScaleRow extends ScalePoint {
  store: ScaleStore;
  /** What the store ran on. */
  server: string;
  holders: number;
  processes: number;
  sessionTtl: string;
  renewEveryMs: number;
  /** Sessions whose signal fired or that were lost at any time, claims included; resumes. */
  lapsedSessionsInRun: number;
  resumesInRun: number;
  /** The same figures at every number of leases, the last one being the row's own. */
  curve: ScalePoint[];
  /** The /metrics body at the largest step, bytes; null where it was not scraped. */
  metricsBytes: number | null;
  /** Mean of the scrapes' times (fetch to the end of the body), ms. */
  metricsMs: number | null;
  metricsScrapesMs: number[];
  /** globalclock_leases_held in the last scrape. */
  metricsLeasesHeld: number | null;
  /** The daemon's CPU while it was scraped, % of one core. */
  daemonCpuPercent: number | null;
  storeCpuNote?: string;
}

const CHILD = fileURLToPath(new URL("./scale-child.ts", import.meta.url));
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

// ------------------------------------------------------------------------------------------
// CPU of server processes, from /proc

const CLK_TCK = Number(spawnSync("getconf", ["CLK_TCK"], { encoding: "utf8" }).stdout) || 100;

interface ProcStat {
  ppid: number;
  /** utime + stime, and cutime + cstime (children that exited and were waited for). */
  own: number;
  children: number;
}

function procStat(pid: number): ProcStat | undefined {
  try {
    const text = readFileSync(`/proc/${pid}/stat`, "utf8");
    const f = text.slice(text.lastIndexOf(")") + 2).split(" ");
    const n = (i: number) => Number(f[i] ?? 0);
    return { ppid: n(1), own: n(11) + n(12), children: n(13) + n(14) };
  } catch {
    return undefined; // it exited
  }
}

function pids(): number[] {
  return readdirSync("/proc")
    .filter((d) => /^\d+$/.test(d))
    .map(Number);
}

function argv(pid: number): string[] {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0").filter(Boolean);
  } catch {
    return [];
  }
}

/** CPU ticks of `roots` and all their descendants, those that exited and were waited for included. */
function treeTicks(roots: readonly number[]): number {
  const stats = new Map<number, ProcStat>();
  for (const pid of pids()) {
    const s = procStat(pid);
    if (s) stats.set(pid, s);
  }
  const kids = new Map<number, number[]>();
  for (const [pid, s] of stats) kids.set(s.ppid, [...(kids.get(s.ppid) ?? []), pid]);
  let ticks = 0;
  for (const root of roots) ticks += stats.get(root)?.children ?? 0;
  const queue = [...roots];
  const seen = new Set<number>();
  while (queue.length > 0) {
    const pid = queue.pop() as number;
    if (seen.has(pid)) continue;
    seen.add(pid);
    ticks += stats.get(pid)?.own ?? 0;
    queue.push(...(kids.get(pid) ?? []));
  }
  return ticks;
}

/** A CPU meter over some processes' trees: start(), then percent() (of one core). */
class TreeCpu {
  readonly #roots: readonly number[];
  #ticks = 0;
  #at = 0;
  constructor(roots: readonly number[]) {
    this.#roots = roots;
  }
  start(): void {
    this.#ticks = treeTicks(this.#roots);
    this.#at = performance.now();
  }
  percent(): number {
    const ticks = treeTicks(this.#roots) - this.#ticks;
    const seconds = (performance.now() - this.#at) / 1000;
    return ((ticks / CLK_TCK) * 100) / seconds;
  }
}

function postgresRoots(port: number): number[] {
  return pids().filter((pid) => {
    const a = argv(pid);
    const p = a.indexOf("-p");
    return (a[0] ?? "").endsWith("postgres") && p >= 0 && a[p + 1] === String(port);
  });
}

function etcdRoots(cluster: EtcdCluster): number[] {
  const flags = new Set(cluster.endpoints.map((e) => `--listen-client-urls=http://${e}`));
  return pids().filter((pid) => argv(pid).some((a) => flags.has(a)));
}

// ------------------------------------------------------------------------------------------
// The holder processes

class Holders {
  readonly child: ChildProcess;
  readonly #lines: Array<{ event: string }> = [];
  readonly #waiters: Array<() => void> = [];
  stderr = "";

  constructor(url: string, index: number, spreadMs: number) {
    const args = [url, index, SESSIONS_PER_PROCESS, TTL, PROCESSES, Math.round(spreadMs)];
    this.child = track(
      spawn(process.execPath, ["--import", "tsx", CHILD, ...args.map(String)], {
        stdio: ["pipe", "pipe", "pipe"],
      }),
    );
    this.child.stderr?.on("data", (d) => {
      this.stderr = (this.stderr + d).slice(-4000);
    });
    createInterface({ input: this.child.stdout as NonNullable<ChildProcess["stdout"]> }).on(
      "line",
      (text) => {
        this.#lines.push(JSON.parse(text) as { event: string });
        for (const wake of this.#waiters.splice(0)) wake();
      },
    );
    this.child.once("exit", () => {
      for (const wake of this.#waiters.splice(0)) wake();
    });
  }

  send(command: unknown): void {
    this.child.stdin?.write(`${JSON.stringify(command)}\n`);
  }

  /** The next line with this event (each is taken once). */
  async next<T>(event: string, timeoutMs: number): Promise<T> {
    const deadline = performance.now() + timeoutMs;
    for (;;) {
      const i = this.#lines.findIndex((l) => l.event === event);
      if (i >= 0) return this.#lines.splice(i, 1)[0] as T;
      if (this.child.exitCode !== null || this.child.signalCode !== null)
        throw new Error(`scale: a holder process exited before "${event}":\n${this.stderr}`);
      const left = deadline - performance.now();
      if (left <= 0)
        throw new Error(`scale: no "${event}" within ${timeoutMs} ms:\n${this.stderr}`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.#waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  }

  async stop(): Promise<Closed | undefined> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return undefined;
    const exited = new Promise<void>((resolve) => this.child.once("exit", () => resolve()));
    this.send({ cmd: "close" });
    const timer = setTimeout(() => this.child.kill("SIGKILL"), 60_000);
    try {
      return await this.next<Closed>("closed", 60_000);
    } finally {
      await exited;
      clearTimeout(timer);
    }
  }
}

const p = (values: number[], q: number) =>
  percentile(
    [...values].sort((a, b) => a - b),
    q,
  );
const round = (n: number, digits = 2) => Math.round(n * 10 ** digits) / 10 ** digits;

/** Lists every lease of the part: held, by the session holder its name says. */
async function verify(reader: Leases, leases: number): Promise<{ held: number; not: number }> {
  const infos = await reader.list("scale/");
  let held = 0;
  for (const info of infos) {
    if (!info.free && info.holder === info.name.split("/")[1]) held++;
  }
  return { held, not: leases - held };
}

async function scrape(
  ctx: Context,
  url: string,
): Promise<
  Pick<
    ScaleRow,
    "metricsBytes" | "metricsMs" | "metricsScrapesMs" | "metricsLeasesHeld" | "daemonCpuPercent"
  >
> {
  const fleet = new Fleet(url, ["--listen", "127.0.0.1:0"]);
  try {
    const daemon = await fleet.add();
    const listen = fleet.lines("start")[0]?.listen;
    if (typeof listen !== "string") throw new Error("scale: the daemon logged no listen address");
    const cpu = new TreeCpu([daemon.pid]);
    cpu.start();
    const times: number[] = [];
    let text = "";
    for (let i = 0; i < SCRAPES; i++) {
      if (i > 0) await sleep(SCRAPE_GAP_MS);
      const t0 = performance.now();
      const res = await fetch(`http://${listen}/metrics`);
      text = await res.text();
      times.push(performance.now() - t0);
      if (!res.ok) throw new Error(`scale: /metrics answered ${res.status}`);
    }
    const daemonCpuPercent = cpu.percent();
    const held = /^globalclock_leases_held\s+(\S+)/m.exec(text)?.[1];
    ctx.log(
      `    /metrics: ${num(Buffer.byteLength(text))} bytes, ${times.map((t) => num(t)).join(" / ")} ms`,
    );
    return {
      metricsBytes: Buffer.byteLength(text),
      metricsMs: round(times.reduce((a, b) => a + b, 0) / times.length),
      metricsScrapesMs: times.map((t) => round(t)),
      metricsLeasesHeld: held === undefined ? null : Number(held),
      daemonCpuPercent: round(daemonCpuPercent, 1),
    };
  } finally {
    await fleet.stop();
  }
}

interface Target {
  store: ScaleStore;
  server: string;
  url: string;
  /** The most leases measured on it; every step by default. */
  maxLeases?: number;
  /** The server's processes, or why there is no CPU figure. */
  cpu: number[] | string;
}

async function runStore(ctx: Context, target: Target): Promise<ScaleRow> {
  const steps = STEPS[ctx.mode.name].filter((s) => s.leases <= (target.maxLeases ?? Infinity));
  const store = await openStore(target.url);
  const updater = startUpdater(store);
  const reader = new Leases(store);
  const holders: Holders[] = [];
  const curve: ScalePoint[] = [];
  let metrics: Awaited<ReturnType<typeof scrape>> | undefined;
  let renewEveryMs = Number.NaN;
  const run = { lapsedSessions: 0, resumes: 0 };
  try {
    const leaseStore = store.leases;
    if (!leaseStore) throw new Error(`scale: the ${target.store} store keeps no leases`);
    for (let waited = 0; ; waited += 50) {
      const { time, maxStep } = await leaseStore.readClock();
      if (time !== undefined && maxStep !== undefined) {
        renewEveryMs = Number(holdSchedule({ duration: TTL }, maxStep).renewEvery) / 1e6;
        break;
      }
      if (waited > 30_000) throw new Error("scale: the updater made no clock in 30 s");
      await sleep(50);
    }
    for (let i = 0; i < PROCESSES; i++) holders.push(new Holders(target.url, i, renewEveryMs));
    await Promise.all(holders.map((h) => h.next<Ready>("ready", 120_000)));
    const cpu = typeof target.cpu === "string" ? undefined : new TreeCpu(target.cpu);
    for (const step of steps) {
      const perSession = step.leases / HOLDERS;
      for (const h of holders) h.send({ cmd: "claim", perSession });
      const claimed = await Promise.all(
        holders.map((h) => h.next<ClaimReport>("claimed", 600_000)),
      );
      const claimMs = claimed.flatMap((c) => c.latenciesMs);
      const claimSeconds = Math.max(...claimed.map((c) => c.seconds));
      ctx.log(
        `    ${num(step.leases)} leases: ${claimMs.length} claims in ${num(claimSeconds, 1)} s; holding ${num(step.windowMs / 1000)} s`,
      );
      cpu?.start();
      for (const h of holders) h.send({ cmd: "window", ms: step.windowMs });
      await sleep(step.windowMs);
      const storeCpu = cpu ? cpu.percent() : null;
      const windows = await Promise.all(holders.map((h) => h.next<WindowReport>("window", 60_000)));
      const check = await verify(reader, step.leases);
      const writes = windows.reduce((n, w) => n + w.writes, 0);
      const renewals = windows.flatMap((w) => w.renewalsMs);
      const periods = step.windowMs / renewEveryMs;
      const point: ScalePoint = {
        leases: step.leases,
        windowSeconds: step.windowMs / 1000,
        writes,
        refusedWrites: windows.reduce((n, w) => n + w.refusedWrites, 0),
        renewalPeriods: round(periods),
        writesPerRenewalPeriod: round(writes / periods, 1),
        renewals: renewals.length,
        renewalP50Ms: round(p(renewals, 50)),
        renewalP99Ms: round(p(renewals, 99)),
        renewalMaxMs: round(Math.max(...renewals)),
        claims: claimMs.length,
        claimP50Ms: round(p(claimMs, 50)),
        claimP99Ms: round(p(claimMs, 99)),
        claimsPerSec: round(claimMs.length / claimSeconds, 1),
        claimErrors: claimed.reduce((n, c) => n + c.errors, 0),
        renewalP99DuringClaimsMs: round(
          p(
            windows.flatMap((w) => w.renewalsDuringClaimsMs),
            99,
          ),
        ),
        lapses: windows.reduce((n, w) => n + w.lapsedLeases, 0),
        lapsesDuringClaims: claimed.reduce((n, c) => n + c.lapsedLeases, 0),
        lapsedSessions: windows.reduce((n, w) => n + w.lapsedSessions, 0),
        resumes: windows.reduce((n, w) => n + w.resumes, 0),
        heldAtEnd: check.held,
        notHeldAtEnd: check.not,
        storeCpuPercent: storeCpu === null ? null : round(storeCpu, 1),
      };
      curve.push(point);
      ctx.log(
        `    ${num(point.writesPerRenewalPeriod, 1)} writes per renewal period; renewal p99 ${num(point.renewalP99Ms, 1)} ms; claim p99 ${num(point.claimP99Ms, 1)} ms; lapses ${point.lapses} (during claims ${point.lapsesDuringClaims}); held ${point.heldAtEnd}/${step.leases}; store CPU ${storeCpu === null ? "—" : `${num(storeCpu, 1)}%`}`,
      );
    }
    metrics = await scrape(ctx, target.url);
  } finally {
    const closed = await Promise.all(holders.map((h) => h.stop().catch(() => undefined)));
    for (const c of closed) {
      run.lapsedSessions += c?.lapsedSessions ?? 0;
      run.resumes += c?.resumes ?? 0;
      if (c && c.errors.length > 0)
        ctx.log(`    holder errors: ${c.errors.slice(0, 3).join("; ")}`);
    }
    await updater.stop();
    await store.close();
  }
  const last = curve.at(-1);
  if (!last || !metrics) throw new Error("scale: no figures");
  return {
    store: target.store,
    server: target.server,
    holders: HOLDERS,
    processes: PROCESSES,
    sessionTtl: TTL,
    renewEveryMs: round(renewEveryMs),
    ...last,
    lapsedSessionsInRun: run.lapsedSessions,
    resumesInRun: run.resumes,
    curve,
    ...metrics,
    ...(typeof target.cpu === "string" ? { storeCpuNote: target.cpu } : {}),
  };
}

export async function scaleSection(ctx: Context): Promise<ScaleRow[]> {
  const rows: ScaleRow[] = [];
  const run = async (target: Target) => {
    ctx.log(`  ${target.store} (${target.server})`);
    try {
      rows.push(await runStore(ctx, target));
    } catch (err) {
      // Said in the results' skipped list, and the other stores are still measured.
      ctx.skipped[`scale: ${target.store}`] = `FAILED: ${describe(err).slice(0, 500)}`;
      ctx.log(`  ${target.store}: FAILED ${describe(err)}`);
    }
  };

  const sqlite = sharedUrl(ctx, "sqlite", "scale");
  if (sqlite) {
    await run({
      store: "sqlite",
      server: "a file (no server: the holders' processes do the work)",
      url: sqlite,
      cpu: "no server: SQLite runs inside the holder processes",
    });
  }

  const postgres = sharedUrl(ctx, "postgres", "scale");
  if (postgres && ctx.postgres) {
    await run({
      store: "postgres",
      server: "one local server",
      url: postgres,
      cpu: postgresRoots(ctx.postgres.port),
    });
  }

  const cluster = await startEtcd(ETCD_MEMBERS);
  if (typeof cluster === "string") {
    ctx.skipped["scale: etcd"] = cluster;
  } else {
    try {
      await run({
        store: "etcd",
        server: `${ETCD_MEMBERS} local members`,
        url: cluster.url("key=/bench/scale"),
        cpu: etcdRoots(cluster),
      });
    } finally {
      await cluster.close();
    }
  }

  const double = await startMongoDouble("rs0");
  try {
    await run({
      store: "mongodb",
      server: "the wire-protocol TEST DOUBLE (no real MongoDB)",
      url: `${double.uri}&collection=scale`,
      maxLeases: DOUBLE_MAX_LEASES,
      cpu: "the test double is a Node process standing in for MongoDB: its CPU says nothing about a real server",
    });
  } finally {
    await double.stop();
  }
  return rows;
}

const lapses = (n: number) => (n === 0 ? "0" : `**${num(n)}**`);

export function scaleTable(rows: readonly ScaleRow[]): string {
  const first = rows.find((r) => r.curve.length === Math.max(...rows.map((x) => x.curve.length)));
  const lines = [
    "| store | leases | window | lease writes per renewal period (raw) | renewal p50 / p99 | claim p50 / p99 (claims/s) | lapses: window / claims | held at the end | store CPU |",
    "|---|--:|--:|--:|--:|--:|--:|--:|--:|",
  ];
  for (const r of rows) {
    for (const c of r.curve) {
      lines.push(
        `| ${r.store} | ${num(c.leases)} | ${num(c.windowSeconds)} s | ${num(c.writesPerRenewalPeriod, 1)} (${num(c.writes)}) | ${num(c.renewalP50Ms, 1)} / ${num(c.renewalP99Ms, 1)} ms | ${num(c.claimP50Ms, 1)} / ${num(c.claimP99Ms, 1)} ms (${num(c.claimsPerSec)}) | ${lapses(c.lapses)} / ${lapses(c.lapsesDuringClaims)} | ${num(c.heldAtEnd)} of ${num(c.leases)} | ${c.storeCpuPercent === null ? "—" : `${num(c.storeCpuPercent, 1)}%`} |`,
      );
    }
  }
  lines.push(
    "",
    `| store | server | leases | /metrics body | scrape, mean of ${SCRAPES} (each) | leases held, as scraped | daemon CPU while scraped |`,
    "|---|---|--:|--:|--:|--:|--:|",
  );
  for (const r of rows) {
    lines.push(
      `| ${r.store} | ${r.server} | ${num(r.leases)} | ${r.metricsBytes === null ? "—" : `${num(r.metricsBytes)} bytes`} | ${r.metricsMs === null ? "—" : `${num(r.metricsMs)} ms (${r.metricsScrapesMs.map((t) => num(t)).join(" / ")})`} | ${r.metricsLeasesHeld === null ? "—" : num(r.metricsLeasesHeld)} | ${r.daemonCpuPercent === null ? "—" : `${num(r.daemonCpuPercent)}%`} |`,
    );
  }
  const windows = first?.curve.map((c) => `${num(c.windowSeconds)} s`).join(", ") ?? "";
  lines.push(
    "",
    `${num(first?.holders ?? HOLDERS)} holders: sessions (ttl ${TTL}, renewed every ${num(first?.renewEveryMs ?? 0)} ms by default) spread over ${PROCESSES} processes of ${SESSIONS_PER_PROCESS}, holding the leases between them; one updater keeps global time moving. Each step's leases are claimed through the sessions (${SESSIONS_PER_PROCESS} in parallel per process, ${HOLDERS} in flight in all, so the claim times are under that load), then held for the window (${windows}; the largest step is the headline). With sessions the writes per renewal period stay about the number of holders however many leases they hold; a renewal is timed from its read of the session record to its write done. Lapses count the leases of any session whose signal fired or that was lost (must be 0), in the window and while that step's claims ran; after each window a reader listed every lease, held by its holder. The MongoDB test double stops at ${num(DOUBLE_MAX_LEASES)} leases: it scans its whole collection for every command, so at 10,000 it is the double that falls behind.`,
    "Store CPU is the server's processes (and their children) over the window, % of one core, from /proc; SQLite has no server, and the MongoDB row runs on the wire-protocol test double, whose CPU says nothing about MongoDB (—). /metrics is a `globalclock run --listen` daemon joining the same store at each store's largest step with default settings (fleet-level lease series), scraped more than its 1 s cache apart: every scrape lists every lease. etcd is a 3-member cluster on this machine.",
  );
  return lines.join("\n");
}
