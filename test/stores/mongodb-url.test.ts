/**
 * `mongodb://` store URLs: options validated before any connection, durability options
 * the driver would take replaced by ours, and an unreachable server a prompt StoreError.
 */
import assert from "node:assert/strict";
import { createServer, type Server, type Socket } from "node:net";
import { after, before, describe, test } from "node:test";
import { ConfigError, openStore, StoreError } from "../../src/index.js";
import { parseMongoUrl } from "../../src/juju/mongodb.js";

const configError = (pattern: RegExp) => (err: unknown) =>
  err instanceof ConfigError && pattern.test(err.message) && !err.message.includes("s3cret");

describe("mongodb store URLs", () => {
  test("defaults: database and collection globalclock, majority concerns, 10 s timeout", () => {
    const url = parseMongoUrl("mongodb://127.0.0.1:27017");
    assert.equal(url.database, "globalclock");
    assert.equal(url.collection, "globalclock");
    assert.equal(url.timeoutMs, 2_000); // one default on every store
    assert.equal(url.store.writeConcern, undefined, "the store's default, majority");
    assert.equal(url.store.readConcern, undefined, "the store's default, majority");
    assert.equal(url.store.pollIntervalMs, 250);
    assert.equal(url.driverUrl, "mongodb://127.0.0.1:27017");
  });

  test("a Juju controller: database from the path, driver options passed through", () => {
    const url = parseMongoUrl(
      "mongodb://machine-0:s3cret@10.0.0.1:37017,10.0.0.2:37017/juju?replicaSet=juju&authSource=admin&tls=true&tlsAllowInvalidCertificates=true&collection=globalclock&writeConcern=majority&readConcern=linearizable&timeout=2s&pollInterval=1s",
    );
    assert.equal(url.database, "juju");
    assert.equal(url.collection, "globalclock");
    assert.equal(url.timeoutMs, 2000);
    assert.equal(url.store.readConcern, "linearizable");
    assert.equal(url.store.writeConcern, "majority");
    assert.equal(url.store.pollIntervalMs, 1000);
    assert.equal(
      url.driverUrl,
      "mongodb://machine-0:s3cret@10.0.0.1:37017,10.0.0.2:37017/juju?replicaSet=juju&authSource=admin&tls=true&tlsAllowInvalidCertificates=true",
    );
  });

  test("mongodb+srv and numeric write concerns", () => {
    const url = parseMongoUrl("mongodb+srv://cluster0.example.net/clock?writeConcern=2");
    assert.equal(url.database, "clock");
    assert.equal(url.store.writeConcern, 2);
    assert.equal(url.driverUrl, "mongodb+srv://cluster0.example.net/clock");
  });

  test("driver options that would weaken a guarantee are refused, naming ours", () => {
    for (const [option, ours] of [
      ["journal=false", /use writeConcern/],
      ["readPreference=secondary", /always read from the primary/],
      ["serverSelectionTimeoutMS=60000", /use timeout/],
      ["socketTimeoutMS=0", /use timeout/],
    ] as const) {
      assert.throws(
        () => parseMongoUrl(`mongodb://u:s3cret@h/?${option}`),
        configError(ours),
        option,
      );
    }
  });

  test("the driver's w and readConcernLevel are taken as writeConcern and readConcern", () => {
    const url = parseMongoUrl(
      "mongodb+srv://c.example.net/?retryWrites=true&w=majority&readConcernLevel=local",
    );
    assert.equal(url.store.writeConcern, "majority");
    assert.equal(url.store.readConcern, "local");
    assert.equal(url.driverUrl, "mongodb+srv://c.example.net/?retryWrites=true");
    assert.equal(parseMongoUrl("mongodb://h/?w=2").store.writeConcern, 2);
    assert.throws(
      () => parseMongoUrl("mongodb://h/?w=1&writeConcern=majority"),
      configError(/both w and writeConcern/),
    );
  });

  test("bad options are ConfigErrors that never show the password", async () => {
    const base = "mongodb://admin:s3cret@127.0.0.1:1/";
    for (const [query, pattern] of [
      ["colection=x", /unknown mongodb store option "colection"/],
      ["collection=a.b", /invalid collection/],
      ["writeConcern=0", /invalid writeConcern 0/],
      ["w=0", /invalid writeConcern 0/],
      ["writeConcern=most", /invalid writeConcern "most"/],
      ["readConcern=snapshot", /invalid readConcern "snapshot"/],
      ["timeout=0", /timeout/],
      ["timeout=soon", /invalid timeout "soon"/],
      ["pollInterval=-1s", /pollInterval/],
    ] as const) {
      // Through openStore: refused before any connection is attempted.
      await assert.rejects(openStore(`${base}?${query}`), configError(pattern), query);
    }
    // mongodb+srv:// goes through the same opener, and is checked before any DNS lookup.
    await assert.rejects(
      openStore("mongodb+srv://admin:s3cret@cluster0.example.invalid/?journal=true"),
      configError(/use writeConcern/),
    );
    assert.throws(() => parseMongoUrl("mongodb://h/bad.name"), configError(/invalid database/));
    assert.throws(() => parseMongoUrl("mongodb://u:s3cret@h/#x"), configError(/malformed/));
  });
});

describe("mongodb store: an unreachable server fails fast with a clear StoreError", () => {
  let silent: Server;
  let silentPort: number;
  const sockets = new Set<Socket>();
  let closedPort: number;

  before(async () => {
    // Accepts connections and never answers: a hung host, not a refused one.
    silent = createServer((socket) => {
      sockets.add(socket);
      socket.on("close", () => sockets.delete(socket));
    });
    await new Promise<void>((resolve) => silent.listen(0, "127.0.0.1", resolve));
    silentPort = (silent.address() as { port: number }).port;
    const probe = createServer();
    await new Promise<void>((resolve) => probe.listen(0, "127.0.0.1", resolve));
    closedPort = (probe.address() as { port: number }).port;
    await new Promise((resolve) => probe.close(resolve));
  });
  after(async () => {
    for (const socket of sockets) socket.destroy();
    await new Promise((resolve) => silent?.close(resolve));
  });

  const opensWithin = { timeout: 20_000 }; // the driver's own default would wait 30 s

  test("connection refused: said at once, not after the timeout", opensWithin, async () => {
    // A 60 s timeout: waiting for it would outlast the test's own 20 s.
    const err = await openStore(
      `mongodb://admin:s3cret@127.0.0.1:${closedPort}/?timeout=60s&directConnection=true`,
    ).catch((e: unknown) => e);
    assert.ok(err instanceof StoreError, String(err));
    assert.equal(err.store, "mongodb");
    assert.equal(err.operation, "open");
    assert.equal(err.retryable, true);
    assert.match(err.message, /cannot reach MongoDB/);
    assert.match(err.message, /ECONNREFUSED/);
    assert.doesNotMatch(err.message, /s3cret/);
  });

  test("a host that accepts and never answers", opensWithin, async () => {
    const err = await openStore(
      `mongodb://127.0.0.1:${silentPort}/?timeout=500ms&directConnection=true`,
    ).catch((e: unknown) => e);
    assert.ok(err instanceof StoreError, String(err));
    assert.match(err.message, /no MongoDB server answered in time/);
  });

  test("an aborted open rejects with the signal's reason", opensWithin, async () => {
    const ac = new AbortController();
    const opening = openStore(`mongodb://127.0.0.1:${silentPort}/?timeout=10s`, {
      signal: ac.signal,
    });
    ac.abort(new Error("stop waiting"));
    await assert.rejects(opening, /stop waiting/);
  });
});
