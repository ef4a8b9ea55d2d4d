/**
 * Peers: globalclock side by side with what users would pick instead, on this machine.
 *
 * 1. On one etcd cluster of 3 members (its own, started here): etcd3's `Lock` (acquire +
 *    release, its default lease TTL of 30 s) against `leases.claim` + `lease.release()`
 *    (10 s, the CLI's default --ttl), and etcd3's `Election` (campaign until elected, then
 *    resign; its default TTL of 60 s) against `leases.campaign` (until leader, then stop;
 *    10 s, no clock worker of its own: keepTime false).
 * 2. On an in-memory Redis (bench/peers-redis.ts): node-redlock 4 with one ioredis client,
 *    `lock(resource, 10 s)` + `unlock()`, against globalclock claim + release on SQLite (a
 *    scratch file) and on PostgreSQL.
 *    Both: one operation in flight, sides in alternating rounds (bench/measure.ts `compare`),
 *    each side first run uncounted.
 * 3. Crash handover (bench/peers-child.ts): a holder process is SIGKILLed at a random moment
 *    of its renewal period (a third of the TTL) while a waiter in another process tries to
 *    take the lock; the time from the kill to the waiter's acquire, on CLOCK_MONOTONIC, which
 *    every process on the machine shares. Each side with its defaults, then all with a TTL of
 *    5 s. For globalclock an updater (default settings) runs in this process meanwhile, as a
 *    `globalclock run` daemon would: a lease expires only as global time moves.
 */
import { fileURLToPath } from "node:url";
import { Etcd3 } from "etcd3";
import { type Campaign, Leases, openStore, startUpdater } from "../src/index.js";
import type { ClockStore } from "../src/store.js";
import type { EtcdCluster } from "../test/helpers/etcd-server.js";
import { type Context, sharedUrl } from "./context.js";
import { num, ops } from "./format.js";
import { type Comparison, compare, median, type Side } from "./measure.js";
import {
  REDLOCK_DEFAULTS,
  type RedisServer,
  redisClient,
  redlockOn,
  startRedis,
} from "./peers-redis.js";
import { EventChild, type EventLine } from "./processes.js";
import { etcdVersion, skip, startEtcd } from "./servers.js";

/** One side of one side-by-side measurement. */
export interface PeersOpsRow {
  /** Which comparison: "lock" and "election" on etcd, "redlock" against Redis. */
  compare: "lock" | "election" | "redlock";
  store: string;
  side: string;
  /** What one operation is. */
  op: string;
  ttlSeconds: number;
  opsPerSecond: number;
  p50Ms: number;
  p99Ms: number;
  ops: number;
  seconds: number;
  /** The median over rounds of this side's ops/s ÷ the comparison's first side's. */
  ratioToFirst: number;
}

/** Crash handover: SIGKILL of the holder → the waiter's acquire. */
export interface PeersHandoverRow {
  side: string;
  store: string;
  ttlSeconds: number;
  /** Whether every setting is the side's own default (else: the same TTL for everyone). */
  defaults: boolean;
  /** How the waiter waits. */
  waits: string;
  handoverMs: number[];
  medianMs: number;
  maxMs: number;
  /** Whether the waiter's fencing token was greater than the dead holder's, every time; null: none. */
  tokenGrew: boolean | null;
}

export type PeersRow = PeersOpsRow | PeersHandoverRow;

export interface PeersResult {
  versions: Record<string, string>;
  ops: PeersOpsRow[];
  handover: PeersHandoverRow[];
  skipped: Record<string, string>;
}

const CHILD = fileURLToPath(new URL("./peers-child.ts", import.meta.url));
const GC_TTL_MS = 10_000; // `globalclock lock --ttl`'s default
const REDLOCK_OPS_TTL_MS = 10_000;
const REDLOCK_DEFAULT_TTL_MS = 1000; // redlock has none: its README's examples use 1000 ms
const ETCD3_LOCK_TTL_S = 30; // etcd3 1.1.2, lib/lock.js: this.leaseTTL = 30
const ETCD3_ELECTION_TTL_S = 60; // lib/election.js: constructor(parent, name, ttl = 60)
const SAME_TTL_MS = 5000;
const HOLDER = "gc";
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function sizes(ctx: Context) {
  const quick = ctx.mode.name === "quick";
  // About 10 s per side (quick: 2 s), in rounds of 500 ms.
  return { rounds: quick ? 4 : 20, roundMs: 500, warmMs: quick ? 500 : 1500, kills: quick ? 1 : 3 };
}

function rows(
  cmp: Comparison,
  compareName: PeersOpsRow["compare"],
  meta: Record<string, { store: string; op: string; ttlSeconds: number }>,
): PeersOpsRow[] {
  return cmp.sides.map((s, i) => {
    const m = meta[s.name] as { store: string; op: string; ttlSeconds: number };
    return {
      compare: compareName,
      store: m.store,
      side: s.name,
      op: m.op,
      ttlSeconds: m.ttlSeconds,
      opsPerSecond: s.opsPerSec,
      p50Ms: s.p50Us / 1000,
      p99Ms: s.p99Us / 1000,
      ops: s.ops,
      seconds: s.seconds,
      ratioToFirst: i === 0 ? 1 : (cmp.ratios[s.name] ?? Number.NaN),
    };
  });
}

/** Leases on a store whose clock record exists, and the store (closed by the caller). */
async function leasesOn(url: string): Promise<{ store: ClockStore; leases: Leases }> {
  const store = await openStore(url);
  await store.ensure();
  return { store, leases: new Leases(store) };
}

async function elect(campaign: Campaign): Promise<void> {
  for await (const state of campaign) {
    if (state.role === "leader") return;
    if (state.role === "stopped") throw new Error("the campaign stopped before it led");
  }
}

async function etcdOps(ctx: Context, cluster: EtcdCluster): Promise<PeersOpsRow[]> {
  const s = sizes(ctx);
  const options = { rounds: s.rounds, roundMs: s.roundMs, timeEvery: 1, warmMs: s.warmMs };
  const client = new Etcd3({ hosts: cluster.endpoints.map((h) => `http://${h}`) });
  const { store, leases } = await leasesOn(cluster.url("key=/bench/peers"));
  const store3 = "etcd (3 members)";
  try {
    ctx.log("  etcd3 Lock against globalclock claim + release");
    const lock = await compare(
      [
        {
          name: "etcd3 Lock",
          op: {
            kind: "async",
            run: async () => {
              const l = client.lock("peers-lock");
              await l.acquire();
              await l.release();
            },
          },
        },
        {
          name: "globalclock",
          op: {
            kind: "async",
            run: async () => {
              const lease = await leases.claim("peers-claim", HOLDER, `${GC_TTL_MS}ms`);
              await lease.release();
            },
          },
        },
      ],
      options,
    );
    ctx.log("  etcd3 Election against globalclock campaign");
    const election = await compare(
      [
        {
          name: "etcd3 Election",
          op: {
            kind: "async",
            run: async () => {
              const campaign = client.election("peers-election").campaign("v");
              await new Promise<void>((resolve, reject) => {
                campaign.once("elected", () => resolve());
                campaign.once("error", reject);
              });
              await campaign.resign();
            },
          },
        },
        {
          name: "globalclock",
          op: {
            kind: "async",
            run: async () => {
              const campaign = leases.campaign("peers-campaign", {
                holder: HOLDER,
                duration: `${GC_TTL_MS}ms`,
                keepTime: false,
              });
              await elect(campaign);
              await campaign.stop();
            },
          },
        },
      ],
      options,
    );
    return [
      ...rows(lock, "lock", {
        "etcd3 Lock": { store: store3, op: "acquire + release", ttlSeconds: ETCD3_LOCK_TTL_S },
        globalclock: { store: store3, op: "claim + release", ttlSeconds: GC_TTL_MS / 1000 },
      }),
      ...rows(election, "election", {
        "etcd3 Election": {
          store: store3,
          op: "campaign → elected → resign",
          ttlSeconds: ETCD3_ELECTION_TTL_S,
        },
        globalclock: {
          store: store3,
          op: "campaign → leader → stop",
          ttlSeconds: GC_TTL_MS / 1000,
        },
      }),
    ];
  } finally {
    client.close();
    await leases.close();
    await store.close();
  }
}

async function redisOps(ctx: Context, redis: RedisServer): Promise<PeersOpsRow[]> {
  const s = sizes(ctx);
  const client = redisClient(redis.port);
  const redlock = redlockOn([client], REDLOCK_DEFAULTS);
  const opened: { store: ClockStore; leases: Leases }[] = [];
  const sides: Side[] = [
    {
      name: "redlock",
      op: {
        kind: "async",
        run: async () => {
          const lock = await redlock.lock("peers-redlock", REDLOCK_OPS_TTL_MS);
          await lock.unlock();
        },
      },
    },
  ];
  const meta: Record<string, { store: string; op: string; ttlSeconds: number }> = {
    redlock: {
      store: `${redis.version}, in memory`,
      op: "lock + unlock",
      ttlSeconds: REDLOCK_OPS_TTL_MS / 1000,
    },
  };
  try {
    for (const kind of ["sqlite", "postgres"] as const) {
      const url = sharedUrl(ctx, kind, "peers");
      if (!url) continue;
      const gc = await leasesOn(url);
      opened.push(gc);
      const name = `globalclock (${kind})`;
      meta[name] = { store: kind, op: "claim + release", ttlSeconds: GC_TTL_MS / 1000 };
      sides.push({
        name,
        op: {
          kind: "async",
          run: async () => {
            const lease = await gc.leases.claim("peers-claim", HOLDER, `${GC_TTL_MS}ms`);
            await lease.release();
          },
        },
      });
    }
    ctx.log(
      `  redlock against ${sides
        .slice(1)
        .map((side) => side.name)
        .join(" and ")}`,
    );
    const cmp = await compare(sides, {
      rounds: s.rounds,
      roundMs: s.roundMs,
      timeEvery: 1,
      warmMs: s.warmMs,
    });
    return rows(cmp, "redlock", meta);
  } finally {
    for (const gc of opened) {
      await gc.leases.close();
      await gc.store.close();
    }
    await client.quit();
  }
}

type Line = EventLine;

class Child extends EventChild {
  constructor(args: string[]) {
    super(CHILD, args);
  }

  async line(event: string, timeoutMs: number): Promise<Line> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const found = this.lines.find((l) => l.event === event);
      if (found) return found;
      if (!this.alive && !this.lines.some((l) => l.event === event))
        throw new Error(`peers: the child exited before "${event}": ${this.stderr.slice(-800)}`);
      if (Date.now() > deadline)
        throw new Error(`peers: no "${event}" within ${timeoutMs} ms: ${this.stderr.slice(-800)}`);
      await sleep(5);
    }
  }

  async end(): Promise<void> {
    if (this.alive) this.child.kill("SIGKILL");
    await this.exited;
  }
}

interface HandoverSpec {
  side: "etcd3-lock" | "redlock" | "globalclock";
  label: string;
  store: string;
  target: string;
  /** undefined: the side's default. */
  ttlMs: number | undefined;
  ttlSeconds: number;
  waits: string;
}

async function handover(ctx: Context, spec: HandoverSpec, kills: number, prefix: string) {
  const ms: number[] = [];
  let tokenGrew: boolean | null = null;
  const ttl = spec.ttlMs === undefined ? "default" : String(spec.ttlMs);
  for (let k = 0; k < kills; k++) {
    const name = `${prefix}-${spec.side}-${ttl}-${k}`;
    const holder = new Child(["holder", spec.side, spec.target, name, ttl, "holder"]);
    let waiter: Child | undefined;
    try {
      const held = await holder.line("held", 30_000);
      waiter = new Child(["waiter", spec.side, spec.target, name, ttl, "waiter"]);
      await waiter.line("waiting", 30_000);
      await sleep((Math.random() * spec.ttlSeconds * 1000) / 3); // a moment of its renewal period
      const at = process.hrtime.bigint();
      holder.child.kill("SIGKILL");
      const got = await waiter.line("acquired", spec.ttlSeconds * 1000 + 30_000);
      const took = Number(got.at - at) / 1e6;
      ms.push(took);
      if (held.token !== undefined && got.token !== undefined) {
        const grew = BigInt(got.token) > BigInt(held.token);
        tokenGrew = (tokenGrew ?? true) && grew;
      }
      ctx.log(`    ${spec.label}, TTL ${spec.ttlSeconds} s: SIGKILL → acquired ${num(took)} ms`);
      await Promise.race([waiter.exited, sleep(10_000)]);
    } finally {
      await holder.end();
      await waiter?.end();
    }
  }
  return {
    side: spec.label,
    store: spec.store,
    ttlSeconds: spec.ttlSeconds,
    defaults: spec.ttlMs === undefined,
    waits: spec.waits,
    handoverMs: ms,
    medianMs: median(ms),
    maxMs: Math.max(...ms),
    tokenGrew,
  } satisfies PeersHandoverRow;
}

/** Handovers of globalclock leases on `url`, with an updater running here meanwhile. */
async function globalclockHandovers(
  ctx: Context,
  url: string,
  store: string,
  kills: number,
  prefix: string,
): Promise<PeersHandoverRow[]> {
  const clockStore = await openStore(url);
  const worker = startUpdater(clockStore);
  const out: PeersHandoverRow[] = [];
  try {
    const deadline = Date.now() + 30_000;
    while (worker.snapshot().role !== "active") {
      if (Date.now() > deadline) throw new Error(`peers: no active updater on ${store}`);
      await sleep(20);
    }
    for (const ttlMs of [undefined, SAME_TTL_MS]) {
      const spec: HandoverSpec = {
        side: "globalclock",
        label: "globalclock",
        store,
        target: url,
        ttlMs,
        ttlSeconds: (ttlMs ?? GC_TTL_MS) / 1000,
        waits: "waitUntilExpired (woken by the store's pushes), then claim",
      };
      out.push(await handover(ctx, spec, kills, prefix));
    }
  } finally {
    await worker.stop();
    await clockStore.close();
  }
  return out;
}

export async function peersSection(ctx: Context): Promise<PeersResult> {
  const { kills } = sizes(ctx);
  const result: PeersResult = { versions: {}, ops: [], handover: [], skipped: {} };
  const prefix = `h${Date.now().toString(36)}`;

  ctx.log("  starting an etcd cluster of 3 members");
  const cluster = await startEtcd(3);
  if (typeof cluster === "string") result.skipped.etcd = cluster;
  else {
    try {
      result.versions.etcd = `${await etcdVersion(cluster)}, 3 members`;
      result.ops.push(...(await etcdOps(ctx, cluster)));
      ctx.log(`  crash handover on etcd, ${kills} kill(s) per row`);
      const store = "etcd (3 members)";
      for (const ttlMs of [undefined, SAME_TTL_MS]) {
        const spec: HandoverSpec = {
          side: "etcd3-lock",
          label: "etcd3 Lock",
          store,
          target: cluster.endpoints.join(","),
          ttlMs,
          ttlSeconds: ttlMs === undefined ? ETCD3_LOCK_TTL_S : ttlMs / 1000,
          waits: "acquire again every 50 ms (the Lock has no wait)",
        };
        result.handover.push(await handover(ctx, spec, kills, prefix));
      }
      result.handover.push(
        ...(await globalclockHandovers(
          ctx,
          cluster.url("key=/bench/peers-handover"),
          store,
          kills,
          prefix,
        )),
      );
    } finally {
      await cluster.close();
    }
  }

  const redis = await startRedis(skip);
  if (typeof redis === "string") result.skipped.redis = redis;
  else {
    try {
      result.versions.redis = `${redis.version}, in memory (--save "" --appendonly no)`;
      result.ops.push(...(await redisOps(ctx, redis)));
      ctx.log(`  crash handover: redlock, and globalclock on SQLite and PostgreSQL`);
      for (const ttlMs of [undefined, SAME_TTL_MS]) {
        const spec: HandoverSpec = {
          side: "redlock",
          label: "redlock",
          store: `${redis.version}, in memory`,
          target: String(redis.port),
          ttlMs,
          ttlSeconds: (ttlMs ?? REDLOCK_DEFAULT_TTL_MS) / 1000,
          waits: `its retries (${REDLOCK_DEFAULTS.retryCount} × ${REDLOCK_DEFAULTS.retryDelay} ± ${REDLOCK_DEFAULTS.retryJitter} ms), called again when they run out`,
        };
        result.handover.push(await handover(ctx, spec, kills, prefix));
      }
    } finally {
      await redis.stop();
    }
  }
  for (const kind of ["sqlite", "postgres"] as const) {
    const url = sharedUrl(ctx, kind, "peers_handover");
    if (url) result.handover.push(...(await globalclockHandovers(ctx, url, kind, kills, prefix)));
    else result.skipped[kind] = ctx.skipped[kind] ?? `${kind} unavailable`;
  }
  return result;
}

const GUARANTEES = [
  "| | fencing token | durability here | whose clock ends a lease |",
  "|---|---|---|---|",
  "| globalclock | yes: `lease.token`, greater at every change of holder of a lease, never reused on the store | what the store gives: SQLite and PostgreSQL fsync each commit; etcd commits through Raft and fsyncs its log | global time, moved only by the updaters in steps of at most maxStep: no machine's wall clock can move it, and each holder's deadline is counted on its own monotonic clock |",
  "| etcd3 Lock / Election | none handed out: `acquire()` returns the Lock itself; the lock key's create revision (one more `get`) grows at every new holder and can serve as one | etcd fsyncs its Raft log before it answers (3 members: a majority) | the etcd leader's own clock: a lease expires by its TTL as the leader counts it (a new leader restarts the count) |",
  "| redlock 4 | none: the lock's value is a random string | none: this Redis is in memory (`--save \"\" --appendonly no`); a restart forgets every lock | every client's and server's wall clock: the lock is valid until the client's `Date.now()` at the start + TTL − drift (driftFactor 0.01 × TTL + 2 ms), and Redis expires the key by its own clock |",
];

export function peersTable(result: PeersResult): string {
  const lines = [
    "| store | comparison | side | one op | TTL | ops/s | p50 / p99 ms | ÷ first side |",
    "|---|---|---|---|--:|--:|--:|--:|",
  ];
  for (const r of result.ops) {
    lines.push(
      `| ${r.store} | ${r.compare} | ${r.side} | ${r.op} | ${r.ttlSeconds} s | ${ops(r.opsPerSecond)} | ${num(r.p50Ms, 2)} / ${num(r.p99Ms, 2)} | ${num(r.ratioToFirst, 2)} |`,
    );
  }
  lines.push(
    "",
    "| side | store | TTL | settings | the waiter | kills | SIGKILL → waiter acquires, median / max | fencing token grew |",
    "|---|---|--:|---|---|--:|--:|---|",
  );
  for (const h of result.handover) {
    const grew = h.tokenGrew === null ? "no token" : h.tokenGrew ? "yes" : "**no**";
    lines.push(
      `| ${h.side} | ${h.store} | ${h.ttlSeconds} s | ${h.defaults ? "its defaults" : "same TTL for all"} | ${h.waits} | ${h.handoverMs.length} | ${num(h.medianMs)} / ${num(h.maxMs)} ms | ${grew} |`,
    );
  }
  lines.push("", ...GUARANTEES, "");
  const skipped = Object.entries(result.skipped);
  if (skipped.length)
    lines.push(`**Not measured:** ${skipped.map(([k, v]) => `${k}: ${v}`).join("; ")}.`, "");
  lines.push(
    `Servers: ${Object.values(result.versions).join("; ")}. One operation in flight per side, sides in alternating rounds of 500 ms on the same machine, after an uncounted warm-up; a shared machine of 2 cores, so read the ratios rather than the absolute rates.`,
    "Defaults: etcd3 1.1.2 grants a Lock's lease for 30 s and an Election's for 60 s and keeps it alive every third of that; redlock has no default TTL (its README's examples use 1 s) and retries 10 times, 200 ± 200 ms apart; globalclock's `lock` command defaults to 10 s, and the cluster's maxStep to 1.5 s. With its defaults, a crashed holder's lock is free after its TTL, so the handover mostly measures the TTL: the same-TTL rows (5 s) compare the mechanisms. The kill comes at a random moment of the holder's renewal period (every third of the TTL), so a handover lies between about ⅔ and 1 TTL plus the waiter's detection. For globalclock, both ends move by up to one updater interval (1 s by default; one updater runs in this process, default settings): the expiry is counted from the stored global time at the renewal, which trails real time by up to an interval, and is passed only at an updater's step.",
    "Each side guarantees something different (table above): a globalclock lease cannot be ended early by any machine's wall clock and hands its successor a greater token; an etcd lease ends by the etcd leader's clock; a redlock lock's validity rests on wall clocks and a drift allowance, and carries no token for a resource to refuse a late writer.",
  );
  return lines.join("\n");
}
