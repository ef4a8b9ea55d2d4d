/**
 * The leases' baselines: for each store, the statements its lease records take for one
 * claim, sent directly with the driver. One read (the clock, maxStep and the lease, as the
 * store reads them together), then one conditional write on the version read, decided as
 * Leases decides it: an extend keeps holder and token and moves the expiry to
 * max(expiry, time + duration); a claim of a free lease takes token + 1; a release empties
 * the holder. The baseline checks only what it must to stay correct (the lease is its own),
 * decodes only the fields it writes back, and refuses a lost write: with one caller there
 * is none, so a lost write would mean the benchmark itself is wrong.
 */
import { Etcd3 } from "etcd3";
import { Long, MongoClient, ReadPreference } from "mongodb";
import { TOKEN_IS_REVISION } from "../src/stores/etcd/values.js";
import { asyncOps, int, memoryLeases, type RawLeases } from "./lease-raw-ops.js";
import { postgresLeases, sqliteLeases } from "./lease-raw-sql.js";
import type { Driver } from "./targets.js";

export { RAW_CLAIM, RAW_EXTEND, RAW_HOLDER, type RawLeases } from "./lease-raw-ops.js";

const ID = "g";

/**
 * etcd3 with its default options: a compare-free txn of three ranges, then a txn on the mod
 * revision. As the store, a claim's new token is the write's revision, stored as the marker.
 */
function etcdLeases(endpoints: readonly string[], key: string, d: bigint): RawLeases {
  const client = new Etcd3({ hosts: endpoints.map((h) => `http://${h}`) });
  const prefix = `${key}/leases/`;
  const ranges = [key, `${key}/maxStep`].map((k) => ({ request_range: { key: Buffer.from(k) } }));
  /** The token each lease was read with: a write of another one is a claim's, a new token. */
  const tokens = new Map<string, bigint>();
  const ops = asyncOps(
    {
      read: async (name) => {
        const success = [...ranges, { request_range: { key: Buffer.from(prefix + name) } }];
        const res = await client.kv.txn({ compare: [], success, failure: [] });
        const kv = (i: number) => res.responses[i]?.response_range?.kvs?.[0];
        const lease = kv(2);
        if (!lease) throw new Error(`no lease ${name}`);
        const v = JSON.parse(lease.value.toString()) as Record<string, unknown>;
        const token = int(v.token === TOKEN_IS_REVISION ? lease.mod_revision : v.token);
        tokens.set(name, token);
        return {
          time: int(kv(0)?.value.toString()),
          lease: {
            holder: v.holder as string,
            token,
            start: int(v.start),
            expiry: int(v.expiry),
            pins: v.pins,
            version: int(lease.mod_revision),
          },
        };
      },
      write: async (name, f, version) => {
        const value = JSON.stringify({
          holder: f.holder,
          token: f.token === tokens.get(name) ? `${f.token}` : TOKEN_IS_REVISION,
          start: `${f.start}`,
          expiry: `${f.expiry}`,
          pins: f.pins,
        });
        const k = prefix + name;
        const res = await client
          .if(k, "Mod", "==", `${version}`)
          .then(client.put(k).value(value))
          .commit();
        return res.succeeded;
      },
    },
    d,
  );
  return {
    sends:
      "etcd3, default options: one txn without a compare reading the clock, maxStep and lease keys, then a txn: if the lease's mod revision is the one read, put its JSON (a claim's token the marker for the txn's revision)",
    ...ops,
    close: async () => client.close(),
  };
}

/**
 * The official driver: the store's aggregate and updateOne, in a causally consistent session;
 * a claim's new token first, by the store's findAndModify on the counter in the clock
 * document.
 */
async function mongoLeases(
  uri: string,
  database: string,
  collection: string,
  d: bigint,
): Promise<RawLeases> {
  const client = new MongoClient(uri, { serverSelectionTimeoutMS: 10_000 });
  await client.connect();
  const session = client.startSession({ causalConsistency: true });
  const db = client.db(database);
  const clock = db.collection<{ _id: string; lastToken?: Long }>(collection);
  const leases = db.collection<{ _id: string }>(`${collection}_leases`);
  const leaseFields: Record<string, unknown> = { holder: 1, pins: 1 };
  for (const f of ["token", "start", "expiry", "version"])
    Object.assign(leaseFields, { [f]: 1, [`${f}Type`]: { $type: `$${f}` } });
  const writeConcern = { w: "majority" as const };
  /** The token each lease was read with: a write of another one is a claim's, a new token. */
  const tokens = new Map<string, bigint>();
  /** A claim's token, taken as the store takes it where the counter is at or above the read one. */
  const newToken = async (floor: bigint): Promise<bigint> => {
    const doc = await clock.findOneAndUpdate(
      { _id: ID, lastToken: { $gte: Long.fromBigInt(floor), $type: ["long", "int"] } } as never,
      { $inc: { lastToken: Long.ONE } },
      {
        returnDocument: "after",
        projection: { _id: 0, lastToken: 1, lastTokenType: { $type: "$lastToken" } },
        writeConcern,
        session,
      },
    );
    if (!doc) throw new Error("raw baseline: no token counter at or above the lease's token");
    return int(doc.lastToken);
  };
  const ops = asyncOps(
    {
      read: async (name) => {
        const pipeline = [
          { $match: { _id: ID } },
          {
            $project: {
              time: 1,
              timeType: { $type: "$time" },
              maxStep: 1,
              maxStepType: { $type: "$maxStep" },
            },
          },
          {
            $unionWith: {
              coll: leases.collectionName,
              pipeline: [{ $match: { _id: name } }, { $project: leaseFields }],
            },
          },
        ];
        const docs = await clock
          .aggregate(pipeline, {
            readConcern: { level: "majority" },
            readPreference: ReadPreference.primary,
            session,
          })
          .toArray();
        const l = docs.find((x) => "versionType" in x) as Record<string, unknown>;
        const c = docs.find((x) => !("versionType" in x)) as Record<string, unknown>;
        const token = int(l.token);
        tokens.set(name, token);
        return {
          time: int(c.time),
          lease: {
            holder: l.holder as string,
            token,
            start: int(l.start),
            expiry: int(l.expiry),
            pins: l.pins,
            version: int(l.version),
          },
        };
      },
      write: async (name, f, version) => {
        const read = tokens.get(name) ?? f.token;
        const token = f.token === read ? f.token : await newToken(read);
        const res = await leases.updateOne(
          { _id: name, version: { $eq: Long.fromBigInt(version), $type: "long" } } as never,
          {
            $set: {
              holder: f.holder,
              pins: f.pins,
              token: Long.fromBigInt(token),
              start: Long.fromBigInt(f.start),
              expiry: Long.fromBigInt(f.expiry),
              version: Long.fromBigInt(version + 1n),
            },
          },
          { writeConcern, session },
        );
        return res.matchedCount === 1;
      },
    },
    d,
  );
  return {
    sends:
      "the official driver in a causally consistent session, as the store: the store's aggregate ($match of the clock document with its time and maxStep, $unionWith the lease) with majority read concern, then, for a claim, findAndModify $inc of the token counter in the clock document, then updateOne({ _id, version }, { $set }) with w: majority",
    ...ops,
    close: async () => {
      await session.endSession();
      await client.close();
    },
  };
}

/** The raw side for `driver`, leases of `duration` ns. */
export function rawLeases(driver: Driver, duration: bigint): Promise<RawLeases> | RawLeases {
  switch (driver.kind) {
    case "memory":
      return memoryLeases(duration);
    case "sqlite":
      return sqliteLeases(driver.path, driver.table, duration);
    case "postgres":
      return postgresLeases(driver.url, driver.table, duration);
    case "etcd":
      return etcdLeases(driver.endpoints, driver.key, duration);
    case "mongodb":
      return mongoLeases(driver.uri, driver.database, driver.collection, duration);
  }
}
