/**
 * MongoDB store behaviour that a real server decides: retried writes, invalidated change
 * streams, stored types, concurrent creation and elections. Every fault is injected with
 * mongod's own failCommand fail point, so each test runs unchanged against the test double
 * (a one-member replica set) and, when MONGODB_URI is set, against a real replica set
 * started with enableTestCommands=1.
 */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { after, afterEach, before, beforeEach, describe, test } from "node:test";
import { fileURLToPath } from "node:url";
import { Decimal128, type Document, Double, Int32, Long, MongoClient } from "mongodb";
import {
  type ClockStore,
  CorruptRecordError,
  InvalidUpdaterError,
  openStore,
  Reader,
  Updater,
} from "../../src/index.js";
import { MongoDouble } from "../mongo-double/server.js";

/** A server to run against: a URI without our options, and what the test may do to it. */
interface Server {
  name: string;
  /** The driver's URL of the server (with the database to use), no query of ours. */
  uri: string;
  database: string;
  /** A raw client for planting data and configuring fail points. */
  raw: MongoClient;
  /** Commands the double logged (the double only). */
  logged?: (name: string) => Document[];
  close(): Promise<void>;
}

const servers: Array<() => Promise<Server>> = [
  async () => {
    const double = await MongoDouble.start({ replicaSet: "rs0", electionMs: 2000 });
    const raw = new MongoClient(double.uri(), { serverSelectionTimeoutMS: 10_000 });
    await raw.connect();
    return {
      name: "test double (replica set)",
      uri: double.uri("globalclock_test"),
      database: "globalclock_test",
      raw,
      logged: (name) => double.commands(name).map((c) => c.command),
      close: async () => {
        await raw.close();
        await double.close();
      },
    };
  },
];
const realUri = process.env.MONGODB_URI;
if (realUri) {
  servers.push(async () => {
    const raw = new MongoClient(realUri, { serverSelectionTimeoutMS: 30_000 });
    await raw.connect();
    const path = /^mongodb(?:\+srv)?:\/\/[^/?]*\/([^?]*)/.exec(realUri)?.[1];
    return {
      name: "real server at MONGODB_URI",
      uri: realUri,
      database: path ? decodeURIComponent(path) : "globalclock_test",
      raw,
      close: () => raw.close(),
    };
  });
} else {
  test("MongoDB server behaviour against a real replica set", (t) => {
    // No mongod can be installed where this project is built: an ordinary skip, under CI too.
    const reason =
      "MONGODB_URI is not set: retried writes, invalidated change streams, stored types and " +
      "elections were tested only against the wire-protocol test double. Set " +
      "MONGODB_URI=mongodb://host:27017/db?replicaSet=rs0 (a replica set started with " +
      "enableTestCommands=1) to run them against a real server.";
    process.stderr.write(`\n!!! SKIPPED: ${reason}\n`);
    t.skip(reason);
  });
}

let serial = 0;
const sep = (uri: string) => (uri.includes("?") ? "&" : "?");

for (const startServer of servers) {
  describe("mongodb store against a server", () => {
    let server: Server;
    /** A fresh clock collection and application name per test. */
    let collection: string;
    let appName: string;
    const stores: ClockStore[] = [];
    const url = (query = "timeout=5s") =>
      `${server.uri}${sep(server.uri)}collection=${collection}&appName=${appName}&${query}`;
    const open = async (query?: string) => {
      const store = await openStore(url(query));
      stores.push(store);
      return store;
    };
    const coll = () =>
      server.raw.db(server.database).collection<{ _id: string; time?: unknown }>(collection);
    const raw = async () => coll().find({}, { promoteValues: false }).toArray();
    /** Strikes the next `times` commands named in `data.failCommands` from the store under test. */
    const failPoint = (data: Document, times = 1) =>
      server.raw.db("admin").command({
        configureFailPoint: "failCommand",
        mode: { times },
        data: { ...data, appName },
      });

    before(async () => {
      server = await startServer();
    });
    after(() => server?.close());
    beforeEach(() => {
      collection = `clock_${process.pid}_${++serial}`;
      appName = `globalclock-test-${process.pid}-${serial}`;
    });
    afterEach(async () => {
      await server.raw.db("admin").command({ configureFailPoint: "failCommand", mode: "off" });
      for (const store of stores.splice(0)) await store.close();
      await coll()
        .drop()
        .catch(() => false);
    });

    for (const [what, plant] of [
      ["on an empty collection", undefined],
      ["on a planted Int32 (Juju's first upsert)", new Int32(0)],
    ] as const) {
      test(`a retried ensure under a write-concern error ${what} returns 0n and leaves a Long`, async () => {
        if (plant !== undefined) await coll().insertOne({ _id: "g", time: plant });
        const store = await open();
        // Applied, then not acknowledged by a majority; mongod 4.4+ labels the reply, and
        // the driver retries with the same transaction number, answered from the oplog.
        await failPoint({
          failCommands: ["findAndModify"],
          writeConcernError: { code: 91, codeName: "ShutdownInProgress", errmsg: "shutting down" },
          errorLabels: ["RetryableWriteError"],
        });
        assert.equal(await store.ensure(), 0n);
        const docs = await raw();
        assert.equal(docs.length, 1);
        assert.ok(docs[0]?.time instanceof Long, `time is stored as ${String(docs[0]?.time)}`);
        assert.equal((docs[0]?.time as Long).toBigInt(), 0n);
        const sent = server.logged?.("findAndModify").filter((c) => c.findAndModify === collection);
        if (sent) assert.equal(sent.length, 2, "the findAndModify was retried");
      });
    }

    test("the watch survives a drop and a rename of its collection", {
      timeout: 120_000,
    }, async () => {
      const writer = await open();
      const updater = await Updater.create(writer);
      await updater.advance(5n);
      // In a process of its own: a watch that spins its event loop would freeze this one too.
      const child = spawn(
        process.execPath,
        [
          "--import",
          "tsx",
          fileURLToPath(new URL("../fixtures/mongodb-watcher.ts", import.meta.url)),
          url(),
        ],
        { stdio: ["ignore", "pipe", "pipe"] },
      );
      let ticks = 0;
      const values: bigint[] = [];
      let output = "";
      child.stdout.setEncoding("utf8").on("data", (chunk: string) => {
        output += chunk;
        for (const line of chunk.split("\n")) {
          const [word, n] = line.split(" ");
          if (word === "tick") ticks = Number(n);
          if (word === "value") values.push(BigInt(n as string));
        }
      });
      child.stderr.setEncoding("utf8").on("data", (chunk: string) => {
        output += chunk;
      });
      const waitFor = async (what: string, ok: () => boolean) => {
        const deadline = Date.now() + 30_000;
        while (!ok()) {
          assert.ok(
            Date.now() < deadline,
            `timed out waiting for ${what}; the watcher said: ${output.slice(-500)}`,
          );
          await new Promise((r) => setTimeout(r, 20));
        }
      };
      /** The watcher's timer keeps firing: 20 more ticks (about a second) after now. */
      const stillTicking = async (after: string) => {
        const from = ticks;
        await waitFor(
          `the watcher's timer to keep firing after ${after} (stuck at ${ticks} ticks)`,
          () => ticks >= from + 20,
        );
      };
      try {
        await waitFor("the first value", () => values.at(-1) === 5n);
        await coll().drop();
        await stillTicking("the drop");
        // The clock is made anew and passes what the watch saw before.
        let again = await Updater.create(writer);
        await again.advance(6n);
        await waitFor("a value after the clock was re-created", () => values.at(-1) === 6n);
        await server.raw.db("admin").command({
          renameCollection: `${server.database}.${collection}`,
          to: `${server.database}.${collection}_renamed`,
        });
        await server.raw.db(server.database).collection(`${collection}_renamed`).drop();
        await stillTicking("the rename");
        again = await Updater.create(writer);
        await again.advance(7n);
        await waitFor("a value after the clock was re-created", () => values.at(-1) === 7n);
        assert.deepEqual(values, [5n, 6n, 7n]);
      } finally {
        child.kill("SIGKILL");
      }
    });
  });
}
