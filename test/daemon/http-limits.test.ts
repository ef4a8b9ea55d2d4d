/**
 * The daemon's HTTP server is bounded: connections beyond maxConnections are refused, a
 * request whose headers never finish is cut off, and a crowd of /metrics scrapes costs one
 * collection. No timing is asserted: each check waits for what it expects.
 */
import assert from "node:assert/strict";
import { once } from "node:events";
import type { Server } from "node:http";
import { connect, type Socket } from "node:net";
import { afterEach, test } from "node:test";
import { Reader } from "../../src/reader.js";
import { HTTP_LIMITS, type HttpLimits, serve } from "../../src/service/http.js";
import { METRICS_CACHE_MS, WorkerMetrics } from "../../src/service/metrics.js";
import { MemoryStore } from "../../src/stores/memory/index.js";
import { startUpdater } from "../../src/worker.js";

const servers: Server[] = [];
const sockets: Socket[] = [];
afterEach(async () => {
  for (const s of sockets.splice(0)) s.destroy();
  for (const server of servers.splice(0)) {
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
  }
});

async function start(limits: Partial<HttpLimits> = {}) {
  let collections = 0;
  const server = await serve(
    { host: "127.0.0.1", port: 0 },
    {
      reader: new Reader(new MemoryStore()),
      metrics: {
        text: async () => `collection ${++collections}\n`,
        contentType: "text/plain",
      },
      health: () => ({ ok: true, body: {} }),
      mask: (text) => text,
    },
    limits,
  );
  servers.push(server);
  return server;
}

function open(server: Server): Promise<Socket> {
  const { port } = server.address() as { port: number };
  const socket = connect(port, "127.0.0.1");
  sockets.push(socket);
  socket.on("error", () => {});
  return once(socket, "connect").then(() => socket);
}

const connections = (server: Server) =>
  new Promise<number>((resolve, reject) =>
    server.getConnections((err, n) => (err ? reject(err) : resolve(n))),
  );

test("the server is created with its limits", async () => {
  const server = await start();
  assert.equal(server.maxConnections, HTTP_LIMITS.maxConnections);
  assert.equal(server.headersTimeout, HTTP_LIMITS.headersTimeoutMs);
  assert.equal(server.requestTimeout, HTTP_LIMITS.requestTimeoutMs);
  assert.equal(server.keepAliveTimeout, HTTP_LIMITS.keepAliveTimeoutMs);
  assert.ok(HTTP_LIMITS.headersTimeoutMs <= HTTP_LIMITS.requestTimeoutMs);
});

test("connections beyond maxConnections are refused; the ones held go on", async () => {
  const server = await start({ maxConnections: 2 });
  const held = [await open(server), await open(server)];
  while ((await connections(server)) < 2) await new Promise((r) => setTimeout(r, 10));
  const dropped = once(server, "drop");
  const extra = await open(server);
  await dropped;
  await once(extra, "close");
  held[0]?.write("GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
  const [answer] = (await once(held[0] as Socket, "data")) as [Buffer];
  assert.match(answer.toString(), /^HTTP\/1\.1 200 /);
});

test("a request whose headers never finish is cut off", async () => {
  const server = await start({ headersTimeoutMs: 200, requestTimeoutMs: 400, checkIntervalMs: 50 });
  const slow = await open(server);
  slow.write("GET /metrics HTTP/1.1\r\nHost: x\r\n"); // and never the blank line
  let answer = "";
  slow.on("data", (d) => {
    answer += d;
  });
  await once(slow, "close");
  assert.match(answer, /^HTTP\/1\.1 408 /);
});

test("concurrent scrapes share one collection, reused for a short while", async () => {
  const store = new MemoryStore();
  const worker = startUpdater(store);
  let now = 0;
  const metrics = new WorkerMetrics(
    worker,
    {
      lag: () => ({ lagSeconds: 0, lastAdvanceAgeSeconds: undefined }),
      health: () => ({ ok: true, reason: undefined, stillForSeconds: 0, boundSeconds: 3 }),
    },
    () => now,
  );
  let collections = 0;
  const collect = metrics.registry.metrics.bind(metrics.registry);
  metrics.registry.metrics = () => {
    collections++;
    return collect();
  };
  try {
    const texts = await Promise.all(Array.from({ length: 50 }, () => metrics.text()));
    assert.equal(collections, 1);
    assert.equal(new Set(texts).size, 1);
    assert.match(texts[0] as string, /^globalclock_advances_total /m);
    now += METRICS_CACHE_MS - 1;
    await metrics.text();
    assert.equal(collections, 1, "collected again within the cache time");
    now += 1;
    await metrics.text();
    assert.equal(collections, 2, "the cache outlived its time");
  } finally {
    await worker.stop();
    await store.close();
  }
});
