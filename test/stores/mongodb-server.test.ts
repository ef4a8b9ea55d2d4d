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
import { startUpdater } from "../../src/worker.js";
import { checkHistory } from "../helpers/history.js";
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
  /** How long the double's elections take (the double only). */
  electionMs?: number;
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
      electionMs: 2000,
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
/** A stored int64, which must be a BSON Long. */
const int64 = (v: unknown): bigint =>
  v instanceof Long ? v.toBigInt() : assert.fail(`not a Long: ${String(v)}`);
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
        assert.equal(int64(docs[0]?.time), 0n);
        const sent = server.logged?.("findAndModify").filter((c) => c.findAndModify === collection);
        if (sent) assert.equal(sent.length, 2, "the findAndModify was retried");
      });
    }

    for (const [what, writeConcernError, retried] of [
      [
        "91 (ShutdownInProgress): retried, applied once",
        { code: 91, codeName: "ShutdownInProgress", errmsg: "shutting down" },
        true,
      ],
      [
        "64 (WriteConcernFailed): the updater turns invalid, the new value is stored",
        { code: 64, codeName: "WriteConcernFailed", errmsg: "waiting for replication timed out" },
        false,
      ],
    ] as const) {
      test(`a swap under write-concern error ${what}`, async () => {
        const store = await open();
        const updater = await Updater.create(store);
        const base = await updater.advance(1_000_000n);
        await failPoint({
          failCommands: ["update"],
          writeConcernError,
          ...(retried ? { errorLabels: ["RetryableWriteError"] } : {}),
        });
        if (retried) {
          assert.equal(await updater.advance(1_000_000n), base + 1_000_000n);
          assert.equal(updater.valid, true);
        } else {
          await assert.rejects(updater.advance(1_000_000n), InvalidUpdaterError);
        }
        const [doc] = await raw();
        assert.equal(int64(doc?.time), base + 1_000_000n, "applied exactly once");
        const next = await Updater.create(store);
        assert.equal(next.time, base + 1_000_000n);
      });
    }

    test("a swap whose connection is closed is retried and applied once", async () => {
      const store = await open();
      const updater = await Updater.create(store);
      const base = await updater.advance(1_000_000n);
      await failPoint({ failCommands: ["update"], closeConnection: true });
      assert.equal(await updater.advance(1_000_000n), base + 1_000_000n);
      const [doc] = await raw();
      assert.equal(int64(doc?.time), base + 1_000_000n);
    });

    test("ensure that meets a duplicate key and then reads nothing upserts again", async () => {
      const store = await open();
      // As when another process's insert is not yet visible to a majority read.
      await failPoint({ failCommands: ["findAndModify"], errorCode: 11000 });
      assert.equal(await store.ensure(), 0n);
      assert.equal((await raw()).length, 1);
    });

    for (const [type, planted, integer] of [
      ["Int32", new Int32(7), true],
      ["Double", new Double(7), false],
      ["Decimal128", Decimal128.fromString("7"), false],
      ["string", "7", false],
      ["missing", undefined, false],
    ] as const) {
      test(`a time stored as ${type}: read, ensure and swap`, async () => {
        await coll().insertOne(planted === undefined ? { _id: "g" } : { _id: "g", time: planted });
        const store = await open();
        const before = await raw();
        if (integer) {
          assert.equal(await store.read(), 7n);
          assert.equal(await store.ensure(), 7n);
          assert.equal(await store.compareAndSwap(7n, 8n), true);
          const [doc] = await raw();
          assert.ok(doc?.time instanceof Long, "written back as an int64");
          assert.equal(int64(doc?.time), 8n);
          return;
        }
        await assert.rejects(store.read(), CorruptRecordError);
        await assert.rejects(new Reader(store).now(), CorruptRecordError);
        await assert.rejects(store.ensure(), CorruptRecordError);
        assert.equal(await store.compareAndSwap(7n, 8n), false, "equal in value, not in type");
        assert.deepEqual(await raw(), before, "nothing was written");
      });
    }

    test("20 first-time ensures from separate clients all find the epoch, again after a drop", {
      timeout: 120_000,
    }, async () => {
      const clients = await Promise.all(Array.from({ length: 20 }, () => open()));
      for (const round of [1, 2]) {
        const times = await Promise.all(clients.map((c) => c.ensure()));
        assert.deepEqual(times, Array(20).fill(0n), `round ${round}`);
        const docs = await raw();
        assert.equal(docs.length, 1, `round ${round}: one clock document`);
        assert.ok(docs[0]?.time instanceof Long);
        await coll().drop();
      }
    });

    test("replSetStepDown during advance and read loops: no double advance, no reader sees time go back", {
      timeout: 180_000,
    }, async () => {
      const worker = await open("timeout=2s");
      const observers = await Promise.all([open("timeout=2s"), open("timeout=2s")]);
      const w = startUpdater(worker, {
        interval: "100ms",
        takeoverAfter: "300ms",
        retryDelay: "100ms",
        maxRetryDelay: "500ms",
      });
      const stop = new AbortController();
      const now = () => process.hrtime.bigint();
      const samples: Array<{ before: bigint; after: bigint; global: bigint; source: string }> = [];
      // One reads through a Reader (which has a floor), one straight from the store.
      const loops = observers.map(async (store, i) => {
        const reader = new Reader(store);
        const read = (signal: AbortSignal) =>
          i === 0 ? reader.now(signal) : store.read(signal).then((t) => t ?? 0n);
        let last = -1n;
        while (!stop.signal.aborted) {
          const before = now();
          try {
            const global = await read(stop.signal);
            samples.push({ before, after: now(), global, source: `reader ${i}` });
            assert.ok(global >= last, `reader ${i} saw ${global} after ${last}`);
            last = global;
          } catch (err) {
            if (err instanceof assert.AssertionError) throw err;
          }
          await new Promise((r) => setTimeout(r, 20));
        }
      });
      const progress = async (what: string, more: number) => {
        const target = w.snapshot().advances + more;
        const deadline = Date.now() + 60_000;
        while (w.snapshot().advances < target) {
          assert.ok(Date.now() < deadline, `no progress ${what}: ${w.snapshot().lastError}`);
          await new Promise((r) => setTimeout(r, 20));
        }
      };
      try {
        await progress("before the step-down", 3);
        const errorsBefore = w.snapshot().errors;
        await server.raw
          .db("admin")
          .command({ replSetStepDown: 1, secondaryCatchUpPeriodSecs: 0, force: true })
          .catch(() => {}); // an old server closes the connection that asked
        await progress("after the election", 5);
        if (server.electionMs !== undefined && server.electionMs > 2000) {
          // Longer than the store's timeout: the worker dropped its updater and built another.
          assert.ok(w.snapshot().errors > errorsBefore, "the election cost the worker its updater");
        }
      } finally {
        stop.abort();
        await w.stop();
        await Promise.all(loops);
      }
      assert.deepEqual(checkHistory(samples, w.settings.maxStep), []);
    });

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
