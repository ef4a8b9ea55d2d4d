/**
 * The baselines: for each store, the same statement, txn or command the globalclock store
 * sends, issued directly with the driver (or, for memory, a plain variable). Each keeps
 * its own view of the time, as an updater does, and refuses a lost swap: with one caller
 * there is none, so a lost swap would mean the benchmark itself is wrong.
 */
import Database from "better-sqlite3";
import { Etcd3 } from "etcd3";
import { Long, MongoClient, ReadPreference } from "mongodb";
import pg from "pg";
import type { Operation } from "./measure.js";

export interface RawDriver {
  /** What the baseline issues, for the report. */
  readonly readsWith: string;
  readonly advancesWith: string;
  readonly read: Operation;
  readonly advance: Operation;
  /**
   * For synchronous drivers: the same calls inside an awaited async function, the
   * fastest any promise-based API could be.
   */
  readonly awaited?: { read: Operation; advance: Operation };
  /** Re-reads the stored time into this driver's view (the other side moved it). */
  resync(): Promise<void>;
  close(): Promise<void>;
}

const ID = "g";

function lost(old: bigint): Error {
  return new Error(`raw baseline lost a swap from ${old}: another writer is running`);
}

function withAwaited(
  read: () => unknown,
  advance: () => void,
): { read: Operation; advance: Operation; awaited: { read: Operation; advance: Operation } } {
  return {
    read: { kind: "sync", run: read },
    advance: { kind: "sync", run: advance },
    awaited: {
      read: { kind: "async", run: async () => read() },
      advance: { kind: "async", run: async () => advance() },
    },
  };
}

/** A bigint variable and an if: what a compare-and-swap costs with no store at all. */
export function memoryRaw(): RawDriver {
  let time = 0n;
  let view = 0n;
  const cas = (old: bigint, next: bigint) => {
    if (time !== old) return false;
    time = next;
    return true;
  };
  return {
    readsWith: "read a bigint variable",
    advancesWith: "compare-and-swap on a bigint variable",
    ...withAwaited(
      () => time,
      () => {
        if (!cas(view, view + 1n)) throw lost(view);
        view += 1n;
      },
    ),
    resync: async () => {
      view = time;
    },
    close: async () => {},
  };
}

/** better-sqlite3 on the same file, with the store's pragmas and statements. */
export function sqliteRaw(path: string, table = "globalclock"): RawDriver {
  const db = new Database(path, { timeout: 0 });
  db.pragma("journal_mode = WAL");
  db.pragma("synchronous = FULL");
  const select = db
    .prepare<[string]>(`SELECT time FROM "${table}" WHERE id = ?`)
    .pluck()
    .safeIntegers();
  const update = db.prepare<[bigint, string, bigint]>(
    `UPDATE "${table}" SET time = ? WHERE id = ? AND time = ?`,
  );
  let view = 0n;
  return {
    readsWith: "prepared SELECT (pluck, safeIntegers)",
    advancesWith: "prepared UPDATE … WHERE id = ? AND time = ? (WAL, synchronous = FULL)",
    ...withAwaited(
      () => select.get(ID),
      () => {
        if (update.run(view + 1n, ID, view).changes !== 1) throw lost(view);
        view += 1n;
      },
    ),
    resync: async () => {
      view = select.get(ID) as bigint;
    },
    close: async () => {
      db.close();
    },
  };
}

/**
 * A pg.Pool sending the store's SELECT and its UPDATE … RETURNING pg_notify(…), as named
 * prepared statements (planned once per connection), as the store sends them.
 */
export function postgresRaw(url: string, channel: string, table = "globalclock"): RawDriver {
  const pool = new pg.Pool({ connectionString: url, max: 4 });
  pool.on("error", () => {});
  const select = `SELECT time FROM "${table}" WHERE id = $1`;
  const update = `UPDATE "${table}" SET time = $3 WHERE id = $1 AND time = $2
           RETURNING pg_notify($4, time::text)`;
  const readTime = async () => {
    const res = await pool.query<{ time: string }>({
      name: "bench_raw_read",
      text: select,
      values: [ID],
    });
    return BigInt(res.rows[0]?.time ?? "0");
  };
  let view = 0n;
  return {
    readsWith: "a named prepared SELECT time … WHERE id = $1 on a pg.Pool",
    advancesWith:
      "a named prepared UPDATE … WHERE id = $1 AND time = $2 RETURNING pg_notify(…) on a pg.Pool",
    read: { kind: "async", run: readTime },
    advance: {
      kind: "async",
      run: async () => {
        const next = view + 1n;
        const res = await pool.query({
          name: "bench_raw_cas",
          text: update,
          values: [ID, view.toString(), next.toString(), channel],
        });
        if (res.rowCount !== 1) throw lost(view);
        view = next;
      },
    },
    resync: async () => {
      view = await readTime();
    },
    close: () => pool.end(),
  };
}

/** etcd3 with its default options: a range read, and a compare-value-then-put txn. */
export function etcdRaw(endpoints: readonly string[], key = "/globalclock/g"): RawDriver {
  const client = new Etcd3({ hosts: endpoints.map((h) => `http://${h}`) });
  const readTime = async () => BigInt((await client.get(key).buffer())?.toString() ?? "0");
  let view = 0n;
  return {
    readsWith: "etcd3 get(key)",
    advancesWith: "etcd3 txn: if value == old then put next",
    read: { kind: "async", run: readTime },
    advance: {
      kind: "async",
      run: async () => {
        const next = view + 1n;
        const res = await client
          .if(key, "Value", "==", view.toString())
          .then(client.put(key).value(next.toString()))
          .commit();
        if (!res.succeeded) throw lost(view);
        view = next;
      },
    },
    resync: async () => {
      view = await readTime();
    },
    close: async () => client.close(),
  };
}

/** The official driver sending the store's findOne and updateOne, with its concerns. */
export async function mongoRaw(
  uri: string,
  database: string,
  collection: string,
): Promise<RawDriver> {
  const client = new MongoClient(uri, { serverSelectionTimeoutMS: 10_000 });
  await client.connect();
  const coll = client.db(database).collection<{ _id: string; time: Long }>(collection);
  const readTime = async () => {
    const doc = await coll.findOne(
      { _id: ID },
      {
        projection: { _id: 0, time: 1, timeType: { $type: "$time" } },
        useBigInt64: true,
        promoteLongs: true,
        promoteValues: true,
        readConcern: { level: "majority" },
        readPreference: ReadPreference.primary,
      },
    );
    return (doc?.time as unknown as bigint | undefined) ?? 0n;
  };
  let view = 0n;
  return {
    readsWith: "findOne by _id (majority read concern, primary)",
    advancesWith: "updateOne({ _id, time: old }, { $set: { time: next } }) with w: majority",
    read: { kind: "async", run: readTime },
    advance: {
      kind: "async",
      run: async () => {
        const next = view + 1n;
        const res = await coll.updateOne(
          { _id: ID, time: { $eq: Long.fromBigInt(view), $type: ["long", "int"] } } as never,
          { $set: { time: Long.fromBigInt(next) } },
          { writeConcern: { w: "majority" } },
        );
        if (res.matchedCount !== 1) throw lost(view);
        view = next;
      },
    },
    resync: async () => {
      view = await readTime();
    },
    close: () => client.close(),
  };
}
