/**
 * The stores the side-by-side parts measure (memory, SQLite, PostgreSQL, etcd with 1 and 3
 * members, the MongoDB test double, and a real MongoDB at MONGODB_URI), each with what its
 * raw baseline needs to reach the same data. `eachTarget` starts what a target needs (a
 * 3-member etcd cluster, the double), hands it over, and stops it afterwards.
 */
import { MongoClient } from "mongodb";
import { type Context, sharedUrl } from "./context.js";
import { etcdVersion, startEtcd, startMongoDouble } from "./servers.js";

/** Where the raw driver finds the same records the store keeps. */
export type Driver =
  | { kind: "memory" }
  | { kind: "sqlite"; path: string; table: string }
  | { kind: "postgres"; url: string; table: string }
  | { kind: "etcd"; endpoints: readonly string[]; key: string }
  | { kind: "mongodb"; uri: string; database: string; collection: string };

export interface Target {
  id: string;
  label: string;
  /** Server or engine version. */
  version: string;
  note?: string;
  /** The store's URL. */
  url: string;
  /** In-process stores time every 16th operation only; see CompareOptions.timeEvery. */
  inProcess: boolean;
  driver: Driver;
}

export interface Versions {
  sqlite: string;
  postgres?: string;
  etcd?: string;
}

const DOUBLE_NOTE =
  "a small TypeScript server of our own in another process: measures the driver and the store's code, not MongoDB";

/**
 * Calls `visit` with each target in turn, its records named `name` (a table, key or
 * collection of their own, so that parts do not share records).
 */
export async function eachTarget(
  ctx: Context,
  versions: Versions,
  name: string,
  visit: (target: Target) => Promise<void>,
): Promise<void> {
  await visit({
    id: "memory",
    label: "memory",
    version: "in-process",
    url: "memory:",
    inProcess: true,
    driver: { kind: "memory" },
  });
  await visit({
    id: "sqlite",
    label: "sqlite",
    version: versions.sqlite,
    url: ctx.scratch.sqliteUrl(name),
    inProcess: true,
    driver: { kind: "sqlite", path: ctx.scratch.path(name), table: "globalclock" },
  });
  const pgUrl = sharedUrl(ctx, "postgres", name);
  if (ctx.postgres && pgUrl && versions.postgres) {
    await visit({
      id: "postgres",
      label: "postgres",
      version: versions.postgres,
      url: pgUrl,
      inProcess: false,
      driver: { kind: "postgres", url: ctx.postgres.url("postgres"), table: name },
    });
  }
  if (ctx.etcd && versions.etcd) {
    const key = `/bench/${name}`;
    await visit({
      id: "etcd-1",
      label: "etcd, 1 member",
      version: versions.etcd,
      url: ctx.etcd.url(`key=${key}`),
      inProcess: false,
      driver: { kind: "etcd", endpoints: ctx.etcd.endpoints, key },
    });
    const cluster = await startEtcd(3);
    if (typeof cluster === "string") ctx.skipped["etcd-3"] = cluster;
    else {
      try {
        await visit({
          id: "etcd-3",
          label: "etcd, 3 members",
          version: await etcdVersion(cluster),
          url: cluster.url(`key=${key}`),
          inProcess: false,
          driver: { kind: "etcd", endpoints: cluster.endpoints, key },
        });
      } finally {
        await cluster.close();
      }
    }
  }
  const double = await startMongoDouble();
  try {
    await visit({
      id: "mongodb-double",
      label: "mongodb (TEST DOUBLE)",
      version: "wire-protocol test double, not a database",
      note: DOUBLE_NOTE,
      url: withCollection(double.uri, name),
      inProcess: false,
      driver: { kind: "mongodb", uri: double.uri, database: "globalclock", collection: name },
    });
  } finally {
    await double.stop();
  }
  const real = process.env.MONGODB_URI;
  if (!real) {
    ctx.skipped.mongodb =
      "MONGODB_URI is not set: MongoDB was measured only through the wire-protocol test double";
    return;
  }
  const collection = `bench_${name}_${process.pid}`;
  const path = /^mongodb(?:\+srv)?:\/\/[^/?]*\/([^?]*)/.exec(real)?.[1];
  const database = path ? decodeURIComponent(path) : "globalclock";
  try {
    await visit({
      id: "mongodb",
      label: "mongodb",
      version: "real server at MONGODB_URI",
      url: withCollection(real, collection),
      inProcess: false,
      driver: { kind: "mongodb", uri: real, database, collection },
    });
  } finally {
    const client = new MongoClient(real);
    const db = client.db(database);
    for (const c of [collection, `${collection}_leases`]) {
      await db
        .collection(c)
        .drop()
        .catch(() => false);
    }
    await client.close();
  }
}

function withCollection(uri: string, collection: string): string {
  return `${uri}${uri.includes("?") ? "&" : "?"}collection=${collection}`;
}
