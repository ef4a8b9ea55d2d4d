// What the live page is built from, without a browser: the state's secrets masked, the
// handovers seen between reads, the page's self-containment, and the event streams' bound.
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import { test } from "node:test";
import { fileURLToPath } from "node:url";
import { redact, safeUrl, urlSecrets } from "../../src/errors.js";
import { Leases, MemoryStore, workerSettings } from "../../src/index.js";
import type { LeaseStore } from "../../src/lease-store.js";
import { HealthJudge } from "../../src/service/health.js";
import { MAX_EVENT_STREAMS, serve } from "../../src/service/http.js";
import { LiveState } from "../../src/service/live.js";
import { PAGE_HEADERS, PAGE_HTML } from "../../src/service/page.js";
import type { ClockStore } from "../../src/store.js";
import type { UpdaterWorker, WorkerStatus } from "../../src/worker.js";
import { STARTING } from "../../src/worker-status.js";
import { eventually } from "../helpers/daemon.js";

const settings = workerSettings();

/** A worker that only answers snapshot(): the state is fed by update(), as the daemon does. */
const fakeWorker = (status: WorkerStatus = STARTING) =>
  ({ settings, snapshot: () => status }) as unknown as UpdaterWorker;

// biome-ignore lint/suspicious/noExplicitAny: the JSON under test
type Json = any;

test("no password of the store URL appears in the state, however it is spelled", () => {
  const password = "s3cr@t pass/w";
  const url = `postgres://clock:${encodeURIComponent(password)}@db.internal/app?sslpassword=hunter22&x=1`;
  const secrets = urlSecrets(url);
  const mask = (text: string) => redact(text, secrets); // as `run` masks every line
  const live = new LiveState({
    worker: fakeWorker(),
    settings,
    health: new HealthJudge(settings),
    store: new MemoryStore(),
    url,
    mask,
  });
  try {
    live.update({
      ...STARTING,
      role: "error",
      time: 5n,
      errors: 1,
      lastError: `connect to postgres://clock:${password}@db.internal failed: password authentication failed (password=${encodeURIComponent(password)}, sslpassword=hunter22)`,
      lastErrorName: "StoreError",
    });
    const json = live.json();
    for (const secret of [password, encodeURIComponent(password), "s3cr", "hunter22"])
      assert.ok(!json.includes(secret), `${secret} in ${json}`);
    const state: Json = JSON.parse(json);
    assert.equal(state.store.url, safeUrl(url));
    assert.equal(state.store.url, "postgres://clock:***@db.internal/app?sslpassword=***&x=1");
    assert.equal(state.clock.state, "store-unreachable");
    assert.match(state.clock.reason, /connect to postgres:\/\/clock:\*\*\*@db\.internal failed/);
    assert.match(state.worker.lastError, /password authentication failed/);
    // The page carries no data of its own: everything comes from the state above.
    for (const secret of [password, "hunter22"]) assert.ok(!PAGE_HTML.includes(secret));
  } finally {
    live.close();
  }
});

test("the state names the clock's trouble: record missing, store unreachable, stalled, ok", () => {
  const at = (patch: Partial<WorkerStatus>, still = 0n) => {
    const now = process.hrtime.bigint();
    const status = {
      ...STARTING,
      role: "active" as const,
      time: 1n,
      lastChangeAt: now - still,
      ...patch,
    };
    const live = new LiveState({
      worker: fakeWorker(status),
      settings,
      health: new HealthJudge(settings, now),
      store: new MemoryStore(),
      mask: (t) => t,
    });
    live.close();
    return (JSON.parse(live.json()) as Json).clock;
  };
  assert.equal(at({}).state, "ok");
  assert.equal(at({}).reason, null);
  assert.equal(
    at({ role: "starting", time: undefined, lastChangeAt: undefined }).state,
    "starting",
  );
  const stalled = at({ role: "standby" }, settings.failoverBound + 1_000_000n);
  assert.equal(stalled.state, "stalled");
  assert.match(stalled.reason, /has not moved/);
  assert.equal(
    at({ role: "error", lastErrorName: "ClockRecordMissingError", lastError: "gone" }).state,
    "record-missing",
  );
  assert.equal(
    at({ role: "error", lastErrorName: "StoreError", lastError: "down" }).state,
    "store-unreachable",
  );
  assert.equal(at({ role: "stopped" }).state, "stopped");
});

/** The memory store as one that cannot push lease changes: the page's state reads on a timer. */
function withoutLeasePush(store: MemoryStore): ClockStore {
  const leases = store.leases as LeaseStore;
  const bound = <T>(target: object, value: T) =>
    typeof value === "function" ? value.bind(target) : value;
  const noPush = new Proxy(leases, {
    get: (t, p) => (p === "watchLeases" ? undefined : bound(t, Reflect.get(t, p))),
  });
  return new Proxy(store, {
    get: (t, p) => (p === "leases" ? noPush : bound(t, Reflect.get(t, p))),
  });
}

for (const pushed of [true, false]) {
  test(`handovers seen between reads (${pushed ? "pushed" : "read every fallbackMs"}): old → new holder, token, gap; a bounded ring, newest first`, async () => {
    const store = new MemoryStore();
    const leases = new Leases(store);
    const live = new LiveState(
      {
        worker: fakeWorker(),
        settings,
        health: new HealthJudge(settings),
        store: pushed ? store : withoutLeasePush(store),
        mask: (t) => t,
      },
      { fallbackMs: 20, handovers: 3 },
    );
    const state = (): Json => JSON.parse(live.json());
    try {
      const alice = await leases.claim("job", "alice", "30s");
      // First seen after the daemon's first read: a new lease, its first holder.
      let h = await eventually(() => state().handovers[0], "alice's claim seen");
      assert.deepEqual(
        { from: h.from, to: h.to, token: h.token, gap: h.gap, newLease: h.newLease },
        { from: null, to: "alice", token: String(alice.token), gap: null, newLease: true },
      );
      await eventually(() => state().leases.items.length === 1, "the lease read");

      // A release seen, then a claim: the gap is the global time between them.
      await alice.release();
      await eventually(() => state().leases.items[0]?.released, "the release read");
      const now = (await store.read()) as bigint;
      assert.equal(await store.compareAndSwap(now, now + 1_000_000_000n), true);
      const bob = await leases.claim("job", "bob", "30s");
      h = await eventually(() => state().handovers.find((x: Json) => x.to === "bob"), "bob");
      assert.equal(h.from, "alice");
      assert.equal(h.token, String(bob.token));
      assert.equal(h.gap, "1000000000");
      assert.equal(h.newLease, false);

      // A lapse: bob's lease expires by global time, carol claims; the gap runs from its expiry.
      const t = (await store.read()) as bigint;
      assert.equal(await store.compareAndSwap(t, bob.expiry + 500_000_000n), true);
      const carol = await leases.claim("job", "carol", "30s");
      h = await eventually(() => state().handovers.find((x: Json) => x.to === "carol"), "carol");
      assert.equal(h.from, "bob");
      assert.equal(h.gap, String(carol.start - bob.expiry));
      assert.equal(h.gap, "500000000");

      // The ring keeps the newest 3.
      const dave = await leases.claim("other", "dave", "30s");
      await eventually(() => state().handovers[0]?.to === "dave", "dave"); // else merged unseen
      await dave.release();
      await leases.claim("other", "erin", "30s");
      await eventually(() => state().handovers[0]?.to === "erin", "erin");
      assert.deepEqual(
        state().handovers.map((x: Json) => x.to),
        ["erin", "dave", "carol"],
      );
      const lease = state().leases.items.find((l: Json) => l.name === "job");
      assert.equal(lease.holder, "carol");
      assert.equal(lease.free, false);
      assert.equal(BigInt(lease.remaining), carol.expiry - BigInt(lease.judgedAt));
      assert.equal(state().leases.pushed, pushed);
    } finally {
      live.close();
    }
  });
}

test("a release and a claim between two reads: the gap is not known, only its bound", async () => {
  const store = new MemoryStore();
  const leases = new Leases(store);
  let gate: Promise<void> = Promise.resolve();
  let open = () => {};
  const inner = store.leases as LeaseStore;
  const gated = new Proxy(inner, {
    get: (t, p) => {
      if (p === "watchLeases") return undefined;
      if (p === "listLeases")
        return async (prefix: string, signal?: AbortSignal) => {
          await gate;
          return inner.listLeases(prefix, signal);
        };
      const v = Reflect.get(t, p);
      return typeof v === "function" ? v.bind(t) : v;
    },
  });
  const proxied = new Proxy(store, {
    get: (t, p) => {
      if (p === "leases") return gated;
      const v = Reflect.get(t, p);
      return typeof v === "function" ? v.bind(t) : v;
    },
  });
  const alice = await leases.claim("job", "alice", "30s");
  const live = new LiveState(
    {
      worker: fakeWorker(),
      settings,
      health: new HealthJudge(settings),
      store: proxied,
      mask: (t) => t,
    },
    { fallbackMs: 10 },
  );
  const state = (): Json => JSON.parse(live.json());
  try {
    await eventually(() => state().leases.items[0]?.holder === "alice", "alice read");
    gate = new Promise((resolve) => {
      open = resolve;
    });
    await new Promise((r) => setTimeout(r, 30)); // a read is now waiting at the gate
    await alice.release();
    const now = (await store.read()) as bigint;
    assert.equal(await store.compareAndSwap(now, now + 2_000_000_000n), true);
    const bob = await leases.claim("job", "bob", "30s");
    open();
    const h = await eventually(() => state().handovers[0], "bob's claim seen");
    assert.deepEqual(
      { from: h.from, to: h.to, token: h.token, gap: h.gap, gapAtMost: h.gapAtMost },
      { from: "alice", to: "bob", token: String(bob.token), gap: null, gapAtMost: "2000000000" },
    );
  } finally {
    open();
    live.close();
  }
});

test("the page's state only reads the store: no call that writes, whatever changes", async () => {
  const store = new MemoryStore();
  const calls = new Set<string>();
  const spy = <T extends object>(target: T, prefix: string): T =>
    new Proxy(target, {
      get: (t, p) => {
        const v = Reflect.get(t, p);
        if (typeof v !== "function") return v;
        return (...args: unknown[]) => {
          calls.add(`${prefix}${String(p)}`);
          return v.apply(t, args);
        };
      },
    });
  const leasesSpy = spy(store.leases as LeaseStore, "leases.");
  const watched = new Proxy(spy(store, ""), {
    get: (t, p) => (p === "leases" ? leasesSpy : Reflect.get(t, p)),
  });
  const live = new LiveState(
    {
      worker: fakeWorker(),
      settings,
      health: new HealthJudge(settings),
      store: watched,
      mask: (t) => t,
    },
    { fallbackMs: 10, sampleMs: 10 },
  );
  try {
    const leases = new Leases(store); // the holders write through the store itself
    const a = await leases.claim("job", "alice", "30s");
    await a.release();
    await leases.claim("job", "bob", "30s");
    await leases.pin("job", "ops");
    live.update({ ...STARTING, role: "active", time: 1n, lastChangeAt: process.hrtime.bigint() });
    await eventually(
      () => (JSON.parse(live.json()) as Json).leases.items[0]?.pins.length,
      "the pin",
    );
    const reads = new Set(["leases.listLeases", "leases.watchLeases"]);
    assert.deepEqual(
      [...calls].filter((c) => !reads.has(c)),
      [],
      [...calls].join(", "),
    );
    assert.ok(calls.has("leases.listLeases"));
  } finally {
    live.close();
  }
});

test("the page is one self-contained document; its CSP allows its own script and style only", () => {
  assert.match(PAGE_HTML, /^<!doctype html>/);
  assert.match(PAGE_HTML, /<meta name="viewport" content="width=device-width, initial-scale=1">/);
  // Nothing is fetched from elsewhere: no src, no external href, no @import, no url().
  assert.doesNotMatch(PAGE_HTML, /\ssrc=/);
  assert.doesNotMatch(PAGE_HTML, /href="(?!api\/state"|data:,")/);
  assert.doesNotMatch(PAGE_HTML, /@import|url\(/);
  const csp = PAGE_HEADERS["content-security-policy"] ?? "";
  const sha = (text: string) => `'sha256-${createHash("sha256").update(text).digest("base64")}'`;
  const script = /<script>([\s\S]*)<\/script>/.exec(PAGE_HTML)?.[1] ?? "";
  const style = /<style>([\s\S]*)<\/style>/.exec(PAGE_HTML)?.[1] ?? "";
  assert.ok(csp.includes(`script-src ${sha(script)}`), csp);
  assert.ok(csp.includes(`style-src ${sha(style)}`), csp);
  assert.match(csp, /default-src 'none'/);
  assert.match(csp, /connect-src 'self'/);
  assert.ok(Buffer.byteLength(PAGE_HTML) < 40_000, `${Buffer.byteLength(PAGE_HTML)} bytes`);
});

test(`/api/events: the state at once and at each change; at most ${MAX_EVENT_STREAMS} streams`, async () => {
  const listeners = new Set<(json: string) => void>();
  let version = 0;
  const server = await serve(
    { host: "127.0.0.1", port: 0 },
    {
      reader: {} as never,
      metrics: { text: async () => "", contentType: "text/plain" },
      health: () => ({ ok: true, body: {} }),
      mask: (t) => t,
      live: {
        page: { html: PAGE_HTML, headers: PAGE_HEADERS },
        state: () => JSON.stringify({ version }),
        subscribe: (l) => {
          listeners.add(l);
          return () => listeners.delete(l);
        },
      },
    },
  );
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const aborts: AbortController[] = [];
  try {
    const page = await fetch(`${base}/`);
    assert.equal(page.status, 200);
    assert.equal(page.headers.get("content-type"), "text/html; charset=utf-8");
    assert.equal(await page.text(), PAGE_HTML);
    assert.equal((await fetch(`${base}/api/state`)).headers.get("cache-control"), "no-store");
    assert.equal((await fetch(`${base}/api/state`, { method: "POST" })).status, 405);

    const streams = [];
    for (let i = 0; i < MAX_EVENT_STREAMS; i++) {
      const abort = new AbortController();
      aborts.push(abort);
      const res = await fetch(`${base}/api/events`, { signal: abort.signal });
      assert.equal(res.status, 200);
      streams.push(res);
    }
    await eventually(() => listeners.size === MAX_EVENT_STREAMS, "every stream subscribed");
    const refused = await fetch(`${base}/api/events`);
    assert.equal(refused.status, 503);
    await refused.text();

    const first = streams[0] as Response;
    const reader = (first.body as ReadableStream<Uint8Array>).getReader();
    let text = "";
    const until = async (re: RegExp) => {
      while (!re.test(text)) text += Buffer.from((await reader.read()).value ?? []).toString();
    };
    await until(/event: state\ndata: \{"version":0\}\n\n/);
    version = 1;
    for (const l of listeners) l(JSON.stringify({ version }));
    await until(/event: state\ndata: \{"version":1\}\n\n/);

    // A closed stream frees its place.
    aborts.pop()?.abort();
    await eventually(() => listeners.size === MAX_EVENT_STREAMS - 1, "a stream unsubscribed");
    const again = new AbortController();
    aborts.push(again);
    assert.equal((await fetch(`${base}/api/events`, { signal: again.signal })).status, 200);
  } finally {
    for (const a of aborts) a.abort();
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  }
});

test("npm pack ships the page inside dist/, as built", () => {
  // dist/ was built by `npm test` (or `npm run build`); --ignore-scripts packs it as it is.
  const root = fileURLToPath(new URL("../..", import.meta.url));
  const out = execFileSync("npm", ["pack", "--ignore-scripts", "--dry-run", "--json"], {
    cwd: root,
    encoding: "utf8",
  });
  const files = (JSON.parse(out) as Array<{ files: Array<{ path: string }> }>)[0]?.files ?? [];
  const paths = files.map((f) => f.path);
  for (const p of ["dist/service/page.js", "dist/service/live.js", "dist/service/http.js"])
    assert.ok(paths.includes(p), `${p} not in the package`);
  const built = readFileSync(join(root, "dist/service/page.js"), "utf8");
  assert.ok(built.includes("EventSource"), "dist/service/page.js holds the page");
});

test("pushes at every lease write: the leases are listed at most once per listEveryMs, however many come", async () => {
  const store = new MemoryStore();
  const leases = new Leases(store);
  let lists = 0;
  const list = store.leases.listLeases.bind(store.leases);
  store.leases.listLeases = (prefix, signal) => {
    lists++;
    return list(prefix, signal);
  };
  const EVERY = 300;
  const live = new LiveState(
    {
      worker: fakeWorker(),
      settings,
      health: new HealthJudge(settings),
      store,
      mask: (t) => t,
    },
    { listEveryMs: EVERY },
  );
  const state = (): Json => JSON.parse(live.json());
  try {
    await eventually(() => state().leases.items, "the first list");
    const start = performance.now();
    const before = lists;
    for (let i = 0; i < 40; i++) {
      await leases.claim(`job-${i}`, "alice", "30s"); // a push each
      await new Promise((r) => setTimeout(r, 10));
    }
    await eventually(() => state().leases.items.length === 40, "every lease listed");
    const most = Math.ceil((performance.now() - start) / EVERY) + 1;
    assert.ok(lists - before <= most, `${lists - before} lists for 40 pushes; at most ${most}`);
    assert.ok(lists - before < 40, "not one list per push");
  } finally {
    live.close();
  }
});
