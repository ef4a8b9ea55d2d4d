/**
 * Handover: three campaigner processes (test/fixtures/campaigner.ts, each with a stand-by
 * clock worker, as `globalclock lock` runs) elect a leader on one lease. The leader is
 * stopped (SIGTERM: it releases the lease) or killed (SIGKILL), and we time how long until
 * another process prints "leader", on CLOCK_MONOTONIC, which every process on the machine
 * shares. A replacement candidate is started after each, so there are always three.
 *
 * The cluster gets a short maxStep (its workers then step every 200 ms) so that short
 * leases are allowed and a run does not take long.
 */
import { fileURLToPath } from "node:url";
import { openLeases } from "../src/leases/leases.js";
import { later } from "../src/time.js";
import { type Context, type HandoverStore, sharedUrl } from "./context.js";
import { median } from "./measure.js";
import { EventChild, type EventLine } from "./processes.js";
import { startMongoDouble } from "./servers.js";

const MAX_STEP_MS = 300;
const DURATION_MS = 1000;
export const HANDOVER = Object.freeze({
  candidates: 3,
  maxStepMs: MAX_STEP_MS,
  durationMs: DURATION_MS,
  /** The campaigners' renewal period: a third of the lease (Campaign's default). */
  renewMs: Math.floor(DURATION_MS / 3),
  /** Their clock workers' interval: 2/3 of maxStep (the campaigner's rule). */
  clockIntervalMs: (MAX_STEP_MS * 2) / 3,
});
/** The target for a SIGKILL: the lease, one maxStep, and a second for the rest. */
export const KILL_BOUND_MS = HANDOVER.durationMs + HANDOVER.maxStepMs + 1000;
export const GRACEFUL_TARGET_MS = 100;

const CAMPAIGNER = fileURLToPath(new URL("../test/fixtures/campaigner.ts", import.meta.url));
const LEASE = "leader";
const now = () => process.hrtime.bigint();
const ms = (ns: bigint) => Number(ns) / 1e6;
const sleep = (t: number) => new Promise((r) => setTimeout(r, t));

export interface Handover {
  /** Graceful: from the leader's "stopping" line; SIGKILL: from the kill. */
  ms: number;
  /** Graceful: from our SIGTERM, signal delivery included. */
  fromSignalMs?: number;
  /** Graceful: from the leader's "stopping" line to its "released" line (its release's write). */
  releaseMs?: number;
  /** SIGKILL: how long after the dead leader's last announced deadline the next one led. */
  afterDeadlineMs?: number;
  from: string;
  to: string;
}

export interface HandoverResult {
  store: string;
  /** How a follower learns that the lease was released. */
  wakes: string;
  graceful: Handover[];
  kills: Handover[];
  medianGracefulMs: number;
  maxGracefulMs: number;
  medianKillMs: number;
  maxKillMs: number;
  /** Every new leader's token was greater than the one before. */
  tokensGrew: boolean;
}

type Line = EventLine;

class Candidate extends EventChild {
  readonly holder: string;

  constructor(url: string, holder: string) {
    super(CAMPAIGNER, [url, LEASE, holder, `${HANDOVER.durationMs}ms`, "--clock"]);
    this.holder = holder;
  }

  /** Its last line that says where it stands. */
  get role(): string | undefined {
    const roles = ["ready", "leader", "follower", "demoted", "stopping"];
    return this.lines.findLast((l) => roles.includes(l.event))?.event;
  }

  last(event: string): Line | undefined {
    return this.lines.findLast((l) => l.event === event);
  }
}

async function until<T>(find: () => T | undefined, what: string, timeoutMs = 30_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const found = find();
    if (found !== undefined) return found;
    if (Date.now() > deadline) throw new Error(`handover: no ${what} within ${timeoutMs} ms`);
    await sleep(5);
  }
}

/** One leader that has renewed at least once, every other live candidate a follower. */
function steady(candidates: readonly Candidate[]): Candidate | undefined {
  const live = candidates.filter((c) => c.alive);
  const leaders = live.filter((c) => c.role === "leader");
  const leader = leaders[0];
  if (leaders.length !== 1 || !leader) return undefined;
  if ((leader.last("deadline")?.at ?? 0n) < (leader.last("leader")?.at ?? 0n)) return undefined;
  return live.every((c) => c === leader || c.role === "follower") ? leader : undefined;
}

function nextLeader(candidates: readonly Candidate[], old: Candidate, after: bigint) {
  for (const c of candidates) {
    if (c === old) continue;
    const line = c.lines.find((l) => l.event === "leader" && l.at > after);
    if (line) return { candidate: c, line };
  }
  return undefined;
}

async function runStore(ctx: Context, label: string, url: string, wakes: string) {
  const setup = await openLeases(url, { maxStep: `${HANDOVER.maxStepMs}ms` }); // closes its store
  await setup.setMaxStep(undefined, BigInt(HANDOVER.maxStepMs) * 1_000_000n);
  const maxStep = await setup.maxStep();
  await setup.close();
  if (maxStep !== BigInt(HANDOVER.maxStepMs) * 1_000_000n)
    throw new Error(`handover: ${label} already had a maxStep of ${maxStep} ns`);
  let seq = 0;
  const candidates: Candidate[] = [];
  const add = () => candidates.push(new Candidate(url, `c${seq++}`));
  for (let i = 0; i < HANDOVER.candidates; i++) add();
  const graceful: Handover[] = [];
  const kills: Handover[] = [];
  let tokensGrew = true;
  try {
    for (let round = 0; round < 2 * ctx.mode.handovers; round++) {
      const kill = round % 2 === 1;
      const leader = await until(() => steady(candidates), "steady leader and followers", 60_000);
      await sleep(Math.random() * HANDOVER.renewMs); // a random moment of its renewal period
      const token = BigInt(leader.last("leader")?.token ?? "0");
      const at = now();
      leader.child.kill(kill ? "SIGKILL" : "SIGTERM");
      const next = await until(() => nextLeader(candidates, leader, at), "new leader");
      if (BigInt(next.line.token ?? "0") <= token) tokensGrew = false;
      const h: Handover = {
        ms: ms(next.line.at - at),
        from: leader.holder,
        to: next.candidate.holder,
      };
      if (kill) {
        const deadline = [leader.last("leader"), leader.last("deadline")]
          .map((l) => BigInt(l?.deadline ?? "0"))
          .reduce(later);
        h.afterDeadlineMs = ms(next.line.at - deadline);
        kills.push(h);
      } else {
        const stopping = await until(() => leader.last("stopping"), "stopping line");
        const released = await until(() => leader.last("released"), "released line");
        h.fromSignalMs = h.ms;
        h.ms = ms(next.line.at - stopping.at);
        h.releaseMs = ms(released.at - stopping.at);
        graceful.push(h);
      }
      const release = h.releaseMs === undefined ? "" : ` (release ${h.releaseMs.toFixed(0)} ms)`;
      ctx.log(
        `    ${kill ? "SIGKILL" : "SIGTERM"} ${h.from} → ${h.to}: ${h.ms.toFixed(0)} ms${release}`,
      );
      await leader.exited;
      add();
    }
  } catch (err) {
    const tails = candidates.map((c) => `${c.holder}: ${c.stderr.trim().slice(-500)}`);
    throw new Error(`${(err as Error).message}\n${tails.join("\n")}`);
  } finally {
    for (const c of candidates) if (c.alive) c.child.kill("SIGTERM");
    await Promise.all(
      candidates.map((c) =>
        Promise.race([c.exited, sleep(10_000)]).then(() => {
          if (c.alive) c.child.kill("SIGKILL");
        }),
      ),
    );
  }
  const g = graceful.map((h) => h.ms);
  const k = kills.map((h) => h.ms);
  return {
    store: label,
    wakes,
    graceful,
    kills,
    medianGracefulMs: median(g),
    maxGracefulMs: Math.max(...g),
    medianKillMs: median(k),
    maxKillMs: Math.max(...k),
    tokensGrew,
  };
}

const WAKES: Record<HandoverStore, string> = {
  sqlite: "a watch on the database file",
  postgres: "LISTEN/NOTIFY",
  etcd: "an etcd watch",
  mongodb: "a change stream (the double as a one-member replica set)",
};

export async function handoverSection(ctx: Context): Promise<HandoverResult[]> {
  const out: HandoverResult[] = [];
  for (const store of ctx.mode.handoverStores) {
    ctx.log(`  ${store}: ${ctx.mode.handovers} stops and ${ctx.mode.handovers} kills`);
    if (store === "mongodb") {
      const double = await startMongoDouble("rs0");
      try {
        const url = `${double.uri}&collection=handover`;
        out.push(await runStore(ctx, "mongodb (TEST DOUBLE)", url, WAKES.mongodb));
      } finally {
        await double.stop();
      }
      continue;
    }
    const url = sharedUrl(ctx, store, "handover");
    if (url) out.push(await runStore(ctx, store, url, WAKES[store]));
  }
  return out;
}
