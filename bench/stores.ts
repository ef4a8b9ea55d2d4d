/**
 * Every store side by side with its raw driver: `now` and `advance` through globalclock
 * against the same read and swap issued directly, sequentially (one operation in flight),
 * in alternating rounds of the same run.
 */
import { MongoClient } from "mongodb";
import { openStore, Reader, Updater } from "../src/index.js";
import type { ClockStore } from "../src/store.js";
import { type Context, sharedUrl } from "./context.js";
import { type Comparison, compare, type Side } from "./measure.js";
import { etcdRaw, memoryRaw, mongoRaw, postgresRaw, type RawDriver, sqliteRaw } from "./raw.js";
import { etcdVersion, startEtcd, startMongoDouble } from "./servers.js";

export interface StoreRow {
  id: string;
  label: string;
  /** Server or engine version. */
  version: string;
  note?: string;
  readsWith: string;
  advancesWith: string;
  now: Comparison;
  advance: Comparison;
}

interface Target {
  id: string;
  label: string;
  version: string;
  note?: string;
  url: string;
  /** In-process stores time every 16th operation only; see CompareOptions.timeEvery. */
  inProcess: boolean;
  raw: (store: ClockStore) => Promise<RawDriver>;
  stop?: () => Promise<void>;
}

/** Measures one store: globalclock first creates the record, then both sides run. */
async function measure(ctx: Context, target: Target): Promise<StoreRow> {
  ctx.log(`  ${target.label}`);
  const store = await openStore(target.url);
  const updater = await Updater.create(store);
  const reader = new Reader(store);
  const raw = await target.raw(store);
  try {
    const options = {
      rounds: ctx.mode.rounds,
      roundMs: ctx.mode.roundMs,
      timeEvery: target.inProcess ? 16 : 1,
    };
    const nowSides: Side[] = [
      { name: "raw", op: raw.read },
      { name: "globalclock", op: { kind: "async", run: () => reader.now() } },
    ];
    const advanceSides: Side[] = [
      { name: "raw", op: raw.advance, before: () => raw.resync() },
      {
        name: "globalclock",
        op: { kind: "async", run: () => updater.advance(1n) },
        before: async () => {
          await updater.refresh();
        },
      },
    ];
    if (raw.awaited) {
      nowSides.push({ name: "raw, awaited", op: raw.awaited.read });
      advanceSides.push({
        name: "raw, awaited",
        op: raw.awaited.advance,
        before: () => raw.resync(),
      });
    }
    const now = await compare(nowSides, options);
    const advance = await compare(advanceSides, options);
    const row: StoreRow = {
      id: target.id,
      label: target.label,
      version: target.version,
      readsWith: raw.readsWith,
      advancesWith: raw.advancesWith,
      now,
      advance,
    };
    if (target.note) row.note = target.note;
    return row;
  } finally {
    await raw.close();
    await updater.close();
    await reader.close();
    await store.close();
  }
}

/** The channel the PostgreSQL store notifies on, so the baseline sends the same statement. */
function channelOf(store: ClockStore): string {
  const channel = (store as { channel?: unknown }).channel;
  if (typeof channel !== "string") throw new Error("the postgres store has no channel");
  return channel;
}

export async function storesSection(
  ctx: Context,
  versions: { sqlite: string; postgres?: string; etcd?: string },
): Promise<StoreRow[]> {
  const rows: StoreRow[] = [];
  const run = async (target: Target) => {
    try {
      rows.push(await measure(ctx, target));
    } finally {
      await target.stop?.();
    }
  };

  await run({
    id: "memory",
    label: "memory",
    version: "in-process",
    url: "memory:",
    inProcess: true,
    raw: async () => memoryRaw(),
  });
  await run({
    id: "sqlite",
    label: "sqlite",
    version: versions.sqlite,
    url: ctx.scratch.sqliteUrl("stores"),
    inProcess: true,
    raw: async () => sqliteRaw(ctx.scratch.path("stores")),
  });
  const pgUrl = sharedUrl(ctx, "postgres", "globalclock");
  if (pgUrl && versions.postgres) {
    await run({
      id: "postgres",
      label: "postgres",
      version: versions.postgres,
      url: pgUrl,
      inProcess: false,
      raw: async (store) => postgresRaw(pgUrl, channelOf(store)),
    });
  }
  if (ctx.etcd && versions.etcd) {
    const endpoints = ctx.etcd.endpoints;
    await run({
      id: "etcd-1",
      label: "etcd, 1 member",
      version: versions.etcd,
      url: ctx.etcd.url(),
      inProcess: false,
      raw: async () => etcdRaw(endpoints),
    });
    const cluster = await startEtcd(3);
    if (typeof cluster === "string") ctx.skipped["etcd-3"] = cluster;
    else {
      await run({
        id: "etcd-3",
        label: "etcd, 3 members",
        version: await etcdVersion(cluster),
        url: cluster.url(),
        inProcess: false,
        raw: async () => etcdRaw(cluster.endpoints),
        stop: () => cluster.close(),
      });
    }
  }
  const double = await startMongoDouble();
  await run({
    id: "mongodb-double",
    label: "mongodb (TEST DOUBLE)",
    version: "wire-protocol test double, not a database",
    note: "a small TypeScript server of our own in another process: measures the driver and the store's code, not MongoDB",
    url: double.uri,
    inProcess: false,
    raw: () => mongoRaw(double.uri, "globalclock", "globalclock"),
    stop: double.stop,
  });
  const real = process.env.MONGODB_URI;
  if (real) {
    const collection = `bench_${process.pid}`;
    const path = /^mongodb(?:\+srv)?:\/\/[^/?]*\/([^?]*)/.exec(real)?.[1];
    const database = path ? decodeURIComponent(path) : "globalclock";
    const joiner = real.includes("?") ? "&" : "?";
    await run({
      id: "mongodb",
      label: "mongodb",
      version: "real server at MONGODB_URI",
      url: `${real}${joiner}collection=${collection}`,
      inProcess: false,
      raw: () => mongoRaw(real, database, collection),
      stop: async () => {
        const client = new MongoClient(real);
        await client
          .db(database)
          .collection(collection)
          .drop()
          .catch(() => false);
        await client.close();
      },
    });
  } else {
    ctx.skipped.mongodb =
      "MONGODB_URI is not set: MongoDB was measured only through the wire-protocol test double";
  }
  return rows;
}
