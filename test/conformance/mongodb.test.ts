/**
 * The MongoDB store through the official driver, its clock and its leases: against the
 * wire-protocol test double, as a standalone server (watch polls) and as a one-member
 * replica set (watch uses a change stream), and against a real server when MONGODB_URI is set.
 */
import { test } from "node:test";
import { Double, Long, MongoClient } from "mongodb";
import { openStore } from "../../src/index.js";
import { MongoDouble } from "../mongo-double/server.js";
import { type LeaseHarness, leaseConformance } from "./leases-suite.js";
import { conformance, type StoreHarness, throughProxy } from "./suite.js";

const COLLECTION = "clock_conf";

/**
 * The port of a server that `uri` names as its one host, on this machine: the proxy that
 * breaks connections (tcpProxy) reaches 127.0.0.1 only. Undefined for any other URI.
 */
function localPort(uri: string): number | undefined {
  const m = /^mongodb:\/\/(?:[^@/]*@)?(?:127\.0\.0\.1|localhost)(?::(\d+))?(?:[/?]|$)/.exec(uri);
  return m ? Number(m[1] ?? 27017) : undefined;
}

/**
 * `uri` through a proxy on `port`, connected directly (a replica set would tell the driver
 * to reach its members by their own addresses, around the proxy); credentials and other
 * options kept.
 */
function proxied(uri: string, port: number, collection: string): string {
  const url = new URL(uri);
  url.host = `127.0.0.1:${port}`;
  url.searchParams.delete("replicaSet");
  url.searchParams.set("directConnection", "true");
  url.searchParams.set("collection", collection);
  url.searchParams.set("timeout", "1s");
  return url.toString();
}

/**
 * A harness on any server the driver can reach at `uri` (a URL without our options); it can
 * break connections to the server listening on `port` of 127.0.0.1.
 */
async function harness(
  uri: string,
  database: string,
  collection: string,
  stop: () => Promise<void>,
  port: number | undefined,
): Promise<StoreHarness> {
  const raw = new MongoClient(uri, { serverSelectionTimeoutMS: 5000 });
  await raw.connect();
  const coll = raw.db(database).collection<{ _id: string; time: unknown }>(collection);
  const plant = async (time: unknown) => {
    await coll.deleteMany({});
    await coll.insertOne({ _id: "g", time });
  };
  const joiner = uri.includes("?") ? "&" : "?";
  return {
    open: () => openStore(`${uri}${joiner}collection=${collection}&timeout=5s`),
    reset: async () => {
      await coll.deleteMany({});
    },
    plantWrongType: () => plant(new Double(5)), // equal to Long 5 in a query: the type must decide
    plantNegative: () => plant(Long.fromNumber(-5)),
    raw: () => coll.find({}, { promoteValues: false }).toArray(),
    breakable:
      port === undefined
        ? undefined
        : () => throughProxy(port, (through) => proxied(uri, through, collection)),
    unbreakable:
      port === undefined
        ? "MONGODB_URI names no single server on 127.0.0.1 or localhost, which the proxy that breaks connections needs"
        : undefined,
    close: async () => {
      await raw.close();
      await stop();
    },
  };
}

/** A lease harness on any server the driver can reach at `uri`. */
async function leaseHarness(
  uri: string,
  database: string,
  collection: string,
  stop: () => Promise<void>,
): Promise<LeaseHarness> {
  const raw = new MongoClient(uri, { serverSelectionTimeoutMS: 5000 });
  await raw.connect();
  const db = raw.db(database);
  // maxStep and the token counter are fields of the clock document.
  const clock = db.collection<{ _id: string; maxStep?: unknown }>(collection);
  const leases = db.collection<{ _id: string } & Record<string, unknown>>(`${collection}_leases`);
  const joiner = uri.includes("?") ? "&" : "?";
  return {
    open: () => openStore(`${uri}${joiner}collection=${collection}&timeout=5s`),
    reset: async () => {
      await clock.deleteMany({});
      await leases.deleteMany({});
    },
    deleteClock: async () => {
      await clock.deleteOne({ _id: "g" });
    },
    deleteMaxStep: async () => {
      await clock.updateOne({ _id: "g" }, { $unset: { maxStep: "" } });
    },
    deleteLease: async (name) => {
      await leases.deleteOne({ _id: name });
    },
    // The next insert makes the collection again, as MongoDB creates one on its first write.
    dropLeases: async () => {
      await leases.drop();
    },
    plantCorruptLease: async (name) => {
      await leases.insertOne({
        _id: name,
        holder: "alice",
        token: Long.fromNumber(-1),
        start: Long.ZERO,
        expiry: Long.fromNumber(5),
        pins: [],
        version: Long.ONE,
      });
    },
    rawLease: (name) => leases.findOne({ _id: name }, { promoteValues: false }),
    close: async () => {
      await raw.close();
      await stop();
    },
  };
}

conformance("mongodb (test double, standalone)", async () => {
  const double = await MongoDouble.start();
  return harness(double.uri(), "globalclock", COLLECTION, () => double.close(), double.port);
});

conformance("mongodb (test double, replica set)", async () => {
  const double = await MongoDouble.start({ replicaSet: "rs0" });
  return harness(double.uri(), "globalclock", COLLECTION, () => double.close(), double.port);
});

leaseConformance("mongodb (test double, standalone)", async () => {
  const double = await MongoDouble.start();
  return leaseHarness(double.uri(), "globalclock", COLLECTION, () => double.close());
});

leaseConformance("mongodb (test double, replica set)", async () => {
  const double = await MongoDouble.start({ replicaSet: "rs0" });
  return leaseHarness(double.uri(), "globalclock", COLLECTION, () => double.close());
});

const realUri = process.env.MONGODB_URI;
if (realUri) {
  const path = /^mongodb(?:\+srv)?:\/\/[^/?]*\/([^?]*)/.exec(realUri)?.[1];
  const database = path ? decodeURIComponent(path) : "globalclock";
  /** Drops the test's collections once the suite is done. */
  const dropping = (collections: string[]) => async () => {
    const dropper = new MongoClient(realUri);
    for (const name of collections) {
      await dropper
        .db(database)
        .collection(name)
        .drop()
        .catch(() => false);
    }
    await dropper.close();
  };
  conformance("mongodb (real server at MONGODB_URI)", async () => {
    const collection = `clock_conf_${process.pid}`;
    return harness(realUri, database, collection, dropping([collection]), localPort(realUri));
  });
  leaseConformance("mongodb (real server at MONGODB_URI)", async () => {
    const collection = `lease_conf_${process.pid}`;
    return leaseHarness(
      realUri,
      database,
      collection,
      dropping([collection, `${collection}_leases`]),
    );
  });
} else {
  test("mongodb store conformance against a real server", (t) => {
    // No mongod can be installed on the machines this project is built on, so a missing
    // MONGODB_URI is an ordinary skip, under CI too. The test double covered the above.
    const reason =
      "MONGODB_URI is not set: the MongoDB store was tested only against the wire-protocol " +
      "test double, not a real mongod. Set MONGODB_URI=mongodb://host:27017/db?replicaSet=rs0 " +
      "to run the same suite against a real server.";
    process.stderr.write(`\n!!! SKIPPED: ${reason}\n`);
    t.skip(reason);
  });
}
