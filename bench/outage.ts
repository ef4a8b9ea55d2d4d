/**
 * Outage: what a fleet of lease holders goes through when global time cannot move for
 * 3 × the TTL, against the same fleet on a lease table judged by a wall clock.
 *
 * Per store, in one process: `holders` sessions (Leases.session) each claim `perHolder`
 * leases; `rivals` more sessions keep trying to claim every lease (a lease that becomes
 * free does change holder, as in a real fleet); one updater (startUpdater) keeps global
 * time. Beside them, on the same store and server, the same fleet on a wall-clock table
 * `(name, holder, token, expiry)` where a lease is free once `expiry < now()` by the
 * server's clock, the way Juju 3.x and most SQL lease libraries do it: each holder renews
 * all its rows in one write every TTL/3; a renewal extends only rows not yet expired (once
 * expired a lease is free, as Juju's expiry worker deletes it), so a holder whose rows
 * expired claims them again like anyone, racing the rivals, with a new token; rivals claim
 * any row whose expiry passed. On etcd the
 * baseline is etcd's own leases (`client.lease(ttl)`, keys attached, etcd's clock revokes
 * them); on the MongoDB test double a document whose `expiry` field is compared with the
 * client's `Date.now()` (there is no server clock to ask). Then two outages of 3 × TTL:
 *
 * - "updaters stopped": the updater is stopped and started again. The wall clock cannot
 *   be stopped, so the baseline lives through it untouched; it is there as a control.
 * - "store down": clients reach the server through a TCP proxy (test/helpers tcpProxy)
 *   that stops forwarding (calls hang, then time out after the store's 2 s), then forwards
 *   again. Not on SQLite: an embedded store has no server to lose.
 *
 * Figures (snapshots read before the outage and once every lease is held again plus one
 * TTL of settling): leases whose holder differs, leases with the same token, the seconds
 * from the outage's end until a reader first saw every lease held (by anyone), and the
 * holders whose local deadline passed during the outage (the session's signal fired; for
 * the baseline, TTL after the start of its last successful renewal).
 */
import { performance } from "node:perf_hooks";
import Database from "better-sqlite3";
import * as etcd3 from "etcd3";
import { MongoClient } from "mongodb";
import pg from "pg";
import { type Leases, openLeases } from "../src/leases/leases.js";
import type { Session, SessionLease } from "../src/leases/session.js";
import { openStore } from "../src/open.js";
import type { ClockStore } from "../src/store.js";
import { etcdFaultHandling } from "../src/stores/etcd/policy.js";
import { startUpdater, type UpdaterWorker } from "../src/worker.js";
import { tcpProxy } from "../test/helpers/server-process.js";
import type { Context } from "./context.js";
import { num } from "./format.js";
import { startMongoDouble } from "./servers.js";

export type OutageStore = "sqlite" | "postgres" | "etcd" | "mongodb";
export type OutageKind = "updaters stopped" | "store down";

export interface OutageSizes {
  holders: number;
  perHolder: number;
  rivals: number;
  ttlMs: number;
}

export const OUTAGE_FULL: OutageSizes = { holders: 10, perHolder: 10, rivals: 2, ttlMs: 15_000 };
export const OUTAGE_QUICK: OutageSizes = { holders: 3, perHolder: 4, rivals: 1, ttlMs: 6_000 };
const FULL_STORES: readonly OutageStore[] = ["sqlite", "postgres", "etcd", "mongodb"];
const QUICK_STORES: readonly OutageStore[] = ["sqlite", "postgres"];
/** Every call of either side gives up after this (the stores' default timeout). */
const CALL_TIMEOUT_MS = 2000;
/** A member's pause between passes over the leases it wants. */
const PASS_PAUSE_MS = 100;
/** The readers' pause between reads. */
const READ_PAUSE_MS = 50;
const PREFIX = "o/";

export interface OutageRow {
  store: string;
  kind: OutageKind;
  /** How the outage was made. */
  how: string;
  /** What the wall-clock baseline is on this store. */
  baseline: string;
  ttlSeconds: number;
  outageSeconds: number;
  holders: number;
  rivals: number;
  leases: number;
  /** globalclock: leases whose holder after recovery differs from before (or none holds). */
  changedHolder: number;
  /** globalclock: leases held after recovery with the token they had before. */
  sameTokens: number;
  /** From the outage's end until a reader's read first showed every lease held; null: never. */
  secondsUntilAllHeld: number | null;
  /** Holders whose session's signal fired between the outage's start and the after read. */
  signalsFired: number;
  /** Holders whose session resumed (same tokens) after its signal fired. */
  resumed: number;
  /** Holders whose session was ended by a rival. */
  lost: number;
  baselineChangedHolder: number;
  baselineSameTokens: number;
  baselineSecondsUntilAllHeld: number | null;
  /** Baseline holders whose local deadline (TTL after their last renewal began) passed. */
  baselineSignalsFired: number;
  /**
   * Every quarter second from 2 s before the outage to the after read: [seconds from the
   * outage's start, globalclock leases held, of which by their holder from before, the same
   * two on the wall clock]; null where the reader had no answer in the last second.
   */
  timeline: Array<[number, number | null, number | null, number | null, number | null]>;
}

// ---------------------------------------------------------------------------------------
// What a reader sees, and the members of each side.

interface Entry {
  holder: string;
  token: string;
  held: boolean;
}
type View = Map<string, Entry>;

const sleep = (ms: number, signal?: AbortSignal) =>
  new Promise<void>((resolve) => {
    if (signal?.aborted) return resolve();
    const timer = setTimeout(done, ms);
    function done() {
      clearTimeout(timer);
      signal?.removeEventListener("abort", done);
      resolve();
    }
    signal?.addEventListener("abort", done, { once: true });
  });

/** `p`, or a rejection after `ms` (the call itself is left to finish or fail on its own). */
function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: no answer within ${ms} ms`)), ms);
  });
  p.catch(() => {});
  return Promise.race([p, timeout]).finally(() => clearTimeout(timer));
}

interface Member {
  readonly holder: string;
  /** performance.now() of each time its deadline passed without a renewal. */
  readonly fired: number[];
  readonly resumedAt: number[];
  readonly lostAt: number[];
  stop(): Promise<void>;
}

/** A globalclock member: one session, claiming through it every lease it wants. */
class ClockMember implements Member {
  readonly fired: number[] = [];
  readonly resumedAt: number[] = [];
  readonly lostAt: number[] = [];
  readonly #held = new Map<string, SessionLease>();
  readonly #stop = new AbortController();
  #session: Session | undefined;
  readonly #loop: Promise<void>;

  constructor(
    readonly leases: Leases,
    readonly holder: string,
    readonly wanted: readonly string[],
    readonly ttlMs: number,
  ) {
    this.#loop = this.#run();
  }

  #watch(s: Session): void {
    s.signal.addEventListener(
      "abort",
      () => {
        if (this.#stop.signal.aborted) return;
        if (s.lost) this.lostAt.push(performance.now());
        else this.fired.push(performance.now());
      },
      { once: true },
    );
  }

  async #run(): Promise<void> {
    const stop = this.#stop.signal;
    while (!stop.aborted) {
      try {
        if (!this.#session || this.#session.lost) {
          this.#held.clear();
          const s = await this.leases.session(this.holder, {
            ttl: `${this.ttlMs}ms`,
            signal: stop,
            onResume: (r) => {
              this.resumedAt.push(performance.now());
              this.#watch(r);
            },
          });
          this.#session = s;
          this.#watch(s);
        }
        const s = this.#session;
        for (const name of this.wanted) {
          if (stop.aborted || !s.held) break;
          if (this.#held.has(name)) continue;
          try {
            this.#held.set(name, await s.claim(name, { signal: stop }));
          } catch {
            // held by another, or the store did not answer: next pass
          }
        }
      } catch {
        // the session could not be opened: next pass
      }
      await sleep(PASS_PAUSE_MS, stop);
    }
  }

  async stop(): Promise<void> {
    this.#stop.abort();
    await this.#loop;
    await this.#session?.close().catch(() => {});
  }
}

/** The wall-clock table of one store. */
interface WallDriver {
  /** The token when `holder` got the lease (it was free by the server's clock), else undefined. */
  claim(name: string, holder: string): Promise<string | undefined>;
  /** Extends every lease `holder` holds: the names it still holds, or undefined for "all of them". */
  renew(holder: string): Promise<string[] | undefined>;
  read(): Promise<View>;
  close(): Promise<void>;
}

/** A baseline member: renews every TTL/3, and between renewals claims what it wants and lacks. */
class WallMember implements Member {
  readonly fired: number[] = [];
  readonly resumedAt: number[] = [];
  readonly lostAt: number[] = [];
  #held = new Set<string>();
  readonly #stop = new AbortController();
  #deadline: NodeJS.Timeout | undefined;
  readonly #loop: Promise<void>;

  constructor(
    readonly driver: WallDriver,
    readonly holder: string,
    readonly wanted: readonly string[],
    readonly ttlMs: number,
  ) {
    this.#loop = this.#run();
  }

  /** Its local deadline: TTL after the start of a successful renewal or claim. */
  #arm(t0: number): void {
    clearTimeout(this.#deadline);
    this.#deadline = setTimeout(
      () => {
        if (this.#held.size > 0 && !this.#stop.signal.aborted) this.fired.push(performance.now());
      },
      Math.max(0, t0 + this.ttlMs - performance.now()),
    );
  }

  async #run(): Promise<void> {
    const stop = this.#stop.signal;
    let nextRenew = 0;
    while (!stop.aborted) {
      if (performance.now() >= nextRenew) {
        nextRenew = performance.now() + this.ttlMs / 3;
        const t0 = performance.now();
        try {
          const kept = await this.driver.renew(this.holder);
          if (kept) this.#held = new Set(kept);
          if (this.#held.size > 0) this.#arm(t0);
        } catch {
          // no answer: try again at the next period
        }
      }
      for (const name of this.wanted) {
        if (stop.aborted || performance.now() >= nextRenew) break;
        if (this.#held.has(name)) continue;
        const t0 = performance.now();
        try {
          if ((await this.driver.claim(name, this.holder)) !== undefined) {
            if (this.#held.size === 0) this.#arm(t0);
            this.#held.add(name);
          }
        } catch {
          // next pass
        }
      }
      await sleep(PASS_PAUSE_MS, stop);
    }
  }

  async stop(): Promise<void> {
    this.#stop.abort();
    clearTimeout(this.#deadline);
    await this.#loop;
  }
}

// ---------------------------------------------------------------------------------------
// The wall-clock tables.

function sqliteWall(path: string, names: readonly string[], ttlMs: number): WallDriver {
  const db = new Database(path);
  db.pragma("journal_mode = WAL");
  db.pragma(`busy_timeout = ${CALL_TIMEOUT_MS}`);
  db.exec(
    "CREATE TABLE wall (name TEXT PRIMARY KEY, holder TEXT NOT NULL DEFAULT '', token INTEGER NOT NULL DEFAULT 0, expiry REAL NOT NULL DEFAULT 0)",
  );
  const insert = db.prepare("INSERT INTO wall (name) VALUES (?)");
  db.transaction(() => {
    for (const n of names) insert.run(n);
  })();
  const ttl = ttlMs / 1000;
  const claim = db.prepare<[string, number, string], { token: number }>(
    "UPDATE wall SET holder = ?, token = token + 1, expiry = unixepoch('subsec') + ? WHERE name = ? AND expiry < unixepoch('subsec') RETURNING token",
  );
  const renew = db.prepare<[number, string], { name: string }>(
    "UPDATE wall SET expiry = unixepoch('subsec') + ? WHERE holder = ? AND expiry >= unixepoch('subsec') RETURNING name",
  );
  const read = db.prepare<[], { name: string; holder: string; token: number; held: number }>(
    "SELECT name, holder, token, expiry >= unixepoch('subsec') AS held FROM wall",
  );
  return {
    claim: async (name, holder) => {
      const row = claim.get(holder, ttl, name);
      return row ? String(row.token) : undefined;
    },
    renew: async (holder) => renew.all(ttl, holder).map((r) => r.name),
    read: async () =>
      new Map(
        read
          .all()
          .map((r) => [r.name, { holder: r.holder, token: String(r.token), held: r.held === 1 }]),
      ),
    close: async () => {
      db.close();
    },
  };
}

async function postgresWall(url: string, names: readonly string[], ttlMs: number) {
  const pool = new pg.Pool({
    connectionString: url,
    max: 4,
    connectionTimeoutMillis: CALL_TIMEOUT_MS,
    query_timeout: CALL_TIMEOUT_MS,
    statement_timeout: CALL_TIMEOUT_MS,
  });
  pool.on("error", () => {});
  await pool.query("DROP TABLE IF EXISTS outage_wall");
  await pool.query(
    "CREATE TABLE outage_wall (name text PRIMARY KEY, holder text NOT NULL DEFAULT '', token bigint NOT NULL DEFAULT 0, expiry timestamptz NOT NULL DEFAULT '-infinity')",
  );
  await pool.query("INSERT INTO outage_wall (name) SELECT unnest($1::text[])", [names]);
  const ttl = ttlMs / 1000;
  const driver: WallDriver = {
    claim: async (name, holder) => {
      const res = await pool.query<{ token: string }>(
        "UPDATE outage_wall SET holder = $2, token = token + 1, expiry = clock_timestamp() + make_interval(secs => $3) WHERE name = $1 AND expiry < clock_timestamp() RETURNING token",
        [name, holder, ttl],
      );
      return res.rows[0]?.token;
    },
    renew: async (holder) => {
      const res = await pool.query<{ name: string }>(
        "UPDATE outage_wall SET expiry = clock_timestamp() + make_interval(secs => $2) WHERE holder = $1 AND expiry >= clock_timestamp() RETURNING name",
        [holder, ttl],
      );
      return res.rows.map((r) => r.name);
    },
    read: async () => {
      const res = await pool.query<Entry & { name: string }>(
        "SELECT name, holder, token::text AS token, expiry >= clock_timestamp() AS held FROM outage_wall",
      );
      return new Map(res.rows.map((r) => [r.name, r]));
    },
    close: () => pool.end(),
  };
  return driver;
}

async function etcdWall(endpoint: string, _names: readonly string[], ttlMs: number) {
  const client = new etcd3.Etcd3({
    hosts: [`http://${endpoint}`],
    dialTimeout: CALL_TIMEOUT_MS,
    faultHandling: etcdFaultHandling(etcd3, 1, CALL_TIMEOUT_MS),
    defaultCallOptions: (c) => (c.isStream ? {} : { deadline: Date.now() + CALL_TIMEOUT_MS }),
  });
  const prefix = "/outage-wall/";
  await client.delete().prefix(prefix);
  const ttlSec = Math.round(ttlMs / 1000);
  const leases = new Map<string, { lease: etcd3.Lease; id: string }>();
  const mine = new Map<string, Set<string>>();
  const leaseOf = async (holder: string) => {
    let l = leases.get(holder);
    if (!l) {
      const lease = client.lease(ttlSec, { autoKeepAlive: false });
      lease.on("lost", () => {});
      const id = await lease.grant();
      l = { lease, id };
      leases.set(holder, l);
      mine.set(holder, new Set());
    }
    return l;
  };
  const driver: WallDriver = {
    claim: async (name, holder) => {
      const { id } = await leaseOf(holder);
      const key = prefix + name;
      const res = await client
        .if(key, "Create", "==", 0)
        .then(client.put(key).value(holder).lease(id))
        .commit();
      if (!res.succeeded) return undefined;
      mine.get(holder)?.add(name);
      return res.header.revision;
    },
    renew: async (holder) => {
      const l = leases.get(holder);
      if (!l) return [];
      try {
        await within(l.lease.keepaliveOnce(), CALL_TIMEOUT_MS, "keepalive");
        return undefined;
      } catch (err) {
        if (!(err instanceof etcd3.EtcdLeaseInvalidError)) throw err;
        leases.delete(holder); // etcd revoked it: every key on it is gone
        return [];
      }
    },
    read: async () => {
      const res = await client.getAll().prefix(prefix).exec();
      return new Map(
        res.kvs.map((kv) => [
          kv.key.toString().slice(prefix.length),
          { holder: kv.value.toString(), token: kv.create_revision, held: true },
        ]),
      );
    },
    close: async () => client.close(),
  };
  return driver;
}

interface WallDoc {
  _id: string;
  holder: string;
  token: number;
  expiry: number;
}

async function mongoWall(uri: string, names: readonly string[], ttlMs: number) {
  const client = new MongoClient(uri, {
    serverSelectionTimeoutMS: CALL_TIMEOUT_MS,
    connectTimeoutMS: CALL_TIMEOUT_MS,
    socketTimeoutMS: CALL_TIMEOUT_MS,
  });
  await client.connect();
  const col = client.db("outage").collection<WallDoc>("wall");
  await col.deleteMany({});
  await col.insertMany(names.map((n) => ({ _id: n, holder: "", token: 0, expiry: 0 })));
  const driver: WallDriver = {
    claim: async (name, holder) => {
      const now = Date.now();
      const doc = await col.findOneAndUpdate(
        { _id: name, expiry: { $lt: now } },
        { $set: { holder, expiry: now + ttlMs }, $inc: { token: 1 } },
        { returnDocument: "after" },
      );
      return doc ? String(doc.token) : undefined;
    },
    renew: async (holder) => {
      const now = Date.now();
      await col.updateMany({ holder, expiry: { $gte: now } }, { $set: { expiry: now + ttlMs } });
      return (await col.find({ holder, expiry: { $gte: now } }).toArray()).map((d) => d._id);
    },
    read: async () => {
      const now = Date.now();
      const docs = await col.find({}).toArray();
      return new Map(
        docs.map((d) => [
          d._id,
          { holder: d.holder, token: String(d.token), held: d.expiry >= now },
        ]),
      );
    },
    close: () => client.close(),
  };
  return driver;
}

// ---------------------------------------------------------------------------------------
// One store: both fleets, the outages, the figures.

interface Reading {
  start: number;
  end: number;
  view: View | undefined;
}

/** Reads again and again until stopped, keeping every reading. */
class Reader {
  readonly readings: Reading[] = [];
  readonly #stop = new AbortController();
  readonly #loop: Promise<void>;
  constructor(readonly read: () => Promise<View>) {
    this.#loop = this.#run();
  }
  async #run(): Promise<void> {
    while (!this.#stop.signal.aborted) {
      const start = performance.now();
      let view: View | undefined;
      try {
        view = await within(this.read(), CALL_TIMEOUT_MS + 500, "read");
      } catch {
        view = undefined;
      }
      this.readings.push({ start, end: performance.now(), view });
      await sleep(READ_PAUSE_MS, this.#stop.signal);
    }
  }
  /**
   * The first reading that ended after `ended` and saw all `names` held, begun after
   * `began`: one begun while the proxy held every byte was answered after it forwarded again.
   */
  allHeldAfter(began: number, ended: number, names: readonly string[]): Reading | undefined {
    return this.readings.find(
      (r) => r.start >= began && r.end >= ended && r.view && allHeld(r.view, names),
    );
  }
  async stop(): Promise<void> {
    this.#stop.abort();
    await this.#loop;
  }
}

const allHeld = (view: View, names: readonly string[]) =>
  names.every((n) => view.get(n)?.held === true);

async function readUntil(read: () => Promise<View>, what: string): Promise<View> {
  const deadline = performance.now() + 60_000;
  for (;;) {
    try {
      return await read();
    } catch (err) {
      if (performance.now() > deadline) throw new Error(`outage: ${what}: ${String(err)}`);
      await sleep(200);
    }
  }
}

interface Setup {
  label: string;
  kinds: OutageKind[];
  how: Partial<Record<OutageKind, string>>;
  baseline: string;
  /** The globalclock store's URL (through the proxy where there is one). */
  url: string;
  wall: WallDriver;
  freeze?: () => void;
  thaw?: () => void;
  close: () => Promise<void>;
}

function diff(before: View, after: View, names: readonly string[]) {
  let changed = 0;
  let same = 0;
  for (const n of names) {
    const b = before.get(n);
    const a = after.get(n);
    if (!a?.held || a.holder !== b?.holder) changed++;
    if (a?.held && a.token === b?.token) same++;
  }
  return { changed, same };
}

const within2 = (times: readonly number[], from: number, to: number) =>
  times.some((t) => t >= from && t <= to);

async function runStore(ctx: Context, setup: Setup, sizes: OutageSizes): Promise<OutageRow[]> {
  const { ttlMs } = sizes;
  const names: string[] = [];
  const own: string[][] = [];
  for (let h = 0; h < sizes.holders; h++) {
    own.push([]);
    for (let i = 0; i < sizes.perHolder; i++) {
      const name = `${PREFIX}${h}-${i}`;
      names.push(name);
      own[h]?.push(name);
    }
  }
  const rows: OutageRow[] = [];
  const stores: ClockStore[] = [];
  const opened: Leases[] = [];
  const members: { clock: Member[]; wall: Member[]; rivals: Member[] } = {
    clock: [],
    wall: [],
    rivals: [],
  };
  let updater: UpdaterWorker | undefined;
  const readers: Reader[] = [];
  try {
    const clockStore = await openStore(setup.url);
    stores.push(clockStore);
    updater = startUpdater(clockStore);
    const holdersLeases = await openLeases(setup.url);
    const rivalsLeases = await openLeases(setup.url);
    const readerLeases = await openLeases(setup.url);
    opened.push(holdersLeases, rivalsLeases, readerLeases);
    const clockRead = async (): Promise<View> =>
      new Map(
        (await readerLeases.list(PREFIX)).map((l) => [
          l.name,
          { holder: l.holder, token: String(l.token), held: !l.free },
        ]),
      );
    // The holders first, then the rivals once every lease is held.
    for (let h = 0; h < sizes.holders; h++) {
      const wanted = own[h] ?? [];
      members.clock.push(new ClockMember(holdersLeases, `h${h}`, wanted, ttlMs));
      members.wall.push(new WallMember(setup.wall, `h${h}`, wanted, ttlMs));
    }
    const start = performance.now();
    for (;;) {
      const [c, w] = await Promise.all([
        clockRead().catch(() => undefined),
        setup.wall.read().catch(() => undefined),
      ]);
      if (c && w && allHeld(c, names) && allHeld(w, names)) break;
      if (performance.now() - start > 60_000) throw new Error("outage: the holders got no leases");
      await sleep(200);
    }
    for (let r = 0; r < sizes.rivals; r++) {
      members.rivals.push(new ClockMember(rivalsLeases, `r${r}`, names, ttlMs));
      members.rivals.push(new WallMember(setup.wall, `r${r}`, names, ttlMs));
    }
    const clockReader = new Reader(clockRead);
    const wallReader = new Reader(() => setup.wall.read());
    readers.push(clockReader, wallReader);
    await sleep(ttlMs); // the rivals find every lease held

    for (const kind of setup.kinds) {
      const before = await readUntil(clockRead, "reading the leases before");
      const wallBefore = await readUntil(() => setup.wall.read(), "reading the baseline before");
      if (!allHeld(before, names) || !allHeld(wallBefore, names)) {
        ctx.log(`    ${setup.label}: not every lease held before the outage`);
      }
      ctx.log(`    ${setup.label}, ${kind}: ${num((3 * ttlMs) / 1000)} s`);
      const began = performance.now();
      if (kind === "updaters stopped") {
        await updater.stop();
        updater = undefined;
        await sleep(3 * ttlMs);
        updater = startUpdater(clockStore);
      } else {
        setup.freeze?.();
        await sleep(3 * ttlMs);
        setup.thaw?.();
      }
      const ended = performance.now();
      // Until both sides' readers saw every lease held, then one TTL to settle.
      let clockHeld: Reading | undefined;
      let wallHeld: Reading | undefined;
      while (performance.now() - ended < 5 * ttlMs) {
        clockHeld ??= clockReader.allHeldAfter(began, ended, names);
        wallHeld ??= wallReader.allHeldAfter(began, ended, names);
        if (clockHeld && wallHeld) break;
        await sleep(100);
      }
      await sleep(ttlMs);
      const after = await readUntil(clockRead, "reading the leases after");
      const wallAfter = await readUntil(() => setup.wall.read(), "reading the baseline after");
      const done = performance.now();
      const c = diff(before, after, names);
      const w = diff(wallBefore, wallAfter, names);
      const fired = (ms: Member[], pick: (m: Member) => number[]) =>
        ms.filter((m) => within2(pick(m), began, done)).length;
      const row: OutageRow = {
        store: setup.label,
        kind,
        how: setup.how[kind] ?? kind,
        baseline: setup.baseline,
        ttlSeconds: ttlMs / 1000,
        outageSeconds: round((ended - began) / 1000),
        holders: sizes.holders,
        rivals: sizes.rivals,
        leases: names.length,
        changedHolder: c.changed,
        sameTokens: c.same,
        secondsUntilAllHeld: clockHeld ? round((clockHeld.end - ended) / 1000) : null,
        signalsFired: fired(members.clock, (m) => m.fired),
        resumed: fired(members.clock, (m) => m.resumedAt),
        lost: fired(members.clock, (m) => m.lostAt),
        baselineChangedHolder: w.changed,
        baselineSameTokens: w.same,
        baselineSecondsUntilAllHeld: wallHeld ? round((wallHeld.end - ended) / 1000) : null,
        baselineSignalsFired: fired(members.wall, (m) => m.fired),
        timeline: timeline(clockReader, wallReader, before, wallBefore, names, began, done),
      };
      ctx.log(
        `      globalclock: ${row.changedHolder}/${row.leases} changed holder, ${row.sameTokens} same tokens, all held ${row.secondsUntilAllHeld ?? "never"} s after, ${row.signalsFired} signals fired, ${row.resumed} resumed; wall clock: ${row.baselineChangedHolder} changed holder, ${row.baselineSameTokens} same tokens, all held ${row.baselineSecondsUntilAllHeld ?? "never"} s after, ${row.baselineSignalsFired} deadlines passed`,
      );
      rows.push(row);
    }
  } finally {
    for (const r of readers) await r.stop();
    const all = [...members.rivals, ...members.clock, ...members.wall];
    await Promise.all(all.map((m) => m.stop()));
    await updater?.stop();
    for (const l of opened) await l.close().catch(() => {});
    for (const s of stores) await s.close().catch(() => {});
    await setup.wall.close().catch(() => {});
    await setup.close();
  }
  return rows;
}

const round = (n: number) => Math.round(n * 100) / 100;

/** Held counts every quarter second from the outage's start, each side. */
function timeline(
  clock: Reader,
  wall: Reader,
  before: View,
  wallBefore: View,
  names: readonly string[],
  from: number,
  to: number,
): OutageRow["timeline"] {
  const count = (r: Reading | undefined, b: View) => {
    if (!r?.view) return [null, null] as const;
    const v = r.view;
    const held = names.filter((n) => v.get(n)?.held).length;
    const same = names.filter((n) => v.get(n)?.held && v.get(n)?.holder === b.get(n)?.holder);
    return [held, same.length] as const;
  };
  const out: OutageRow["timeline"] = [];
  for (let t = from - 2000; t <= to; t += 250) {
    const at = (rs: Reading[]) => rs.findLast((r) => r.end <= t && r.end > t - 1000);
    const [ch, cs] = count(at(clock.readings), before);
    const [wh, ws] = count(at(wall.readings), wallBefore);
    out.push([round((t - from) / 1000), ch, cs, wh, ws]);
  }
  return out;
}

// ---------------------------------------------------------------------------------------
// The stores.

type Proxy = Awaited<ReturnType<typeof tcpProxy>>;

async function setupStore(
  ctx: Context,
  store: OutageStore,
  sizes: OutageSizes,
  names: readonly string[],
): Promise<Setup | undefined> {
  const down = (what: string) =>
    `the store's port behind a TCP proxy that stops forwarding for 3 × TTL (${what}'s calls hang and time out after ${CALL_TIMEOUT_MS / 1000} s)`;
  const updaters = "the only updater stopped for 3 × TTL, then started again";
  switch (store) {
    case "sqlite": {
      return {
        label: "sqlite",
        kinds: ["updaters stopped"],
        how: { "updaters stopped": updaters },
        baseline: "a table judged by unixepoch('subsec')",
        url: ctx.scratch.sqliteUrl("outage"),
        wall: sqliteWall(ctx.scratch.path("outage-wall"), names, sizes.ttlMs),
        close: async () => {},
      };
    }
    case "postgres": {
      const server = ctx.postgres;
      if (!server) return undefined;
      const proxy = await tcpProxy(server.port);
      const via = (u: string) => u.replace(`:${server.port}/`, `:${proxy.port}/`);
      return withProxy(proxy, {
        label: "postgres",
        kinds: ["updaters stopped", "store down"],
        how: { "updaters stopped": updaters, "store down": down("every client") },
        baseline: "a table judged by clock_timestamp()",
        url: via(server.url("postgres", "table=outage")),
        wall: await postgresWall(via(server.url("postgres")), names, sizes.ttlMs),
        close: async () => {},
      });
    }
    case "etcd": {
      const endpoint = ctx.etcd?.endpoints[0];
      if (!ctx.etcd || !endpoint) return undefined;
      const port = Number(endpoint.split(":").at(-1));
      const proxy = await tcpProxy(port);
      const via = `127.0.0.1:${proxy.port}`;
      return withProxy(proxy, {
        label: "etcd",
        kinds: ["updaters stopped", "store down"],
        how: { "updaters stopped": updaters, "store down": down("every client") },
        baseline: "etcd's own leases (TTL judged by the etcd server)",
        url: `etcd://${via}?key=/bench/outage`,
        wall: await etcdWall(via, names, sizes.ttlMs),
        close: async () => {},
      });
    }
    case "mongodb": {
      const double = await startMongoDouble();
      try {
        const port = Number(/:(\d+)\//.exec(double.uri)?.[1]);
        const proxy = await tcpProxy(port);
        const uri = double.uri.replace(`:${port}/`, `:${proxy.port}/`);
        return withProxy(proxy, {
          label: "mongodb (TEST DOUBLE)",
          kinds: ["updaters stopped", "store down"],
          how: { "updaters stopped": updaters, "store down": down("every client") },
          baseline: "a document whose expiry is compared with the client's Date.now()",
          url: `${uri}&collection=outage`,
          wall: await mongoWall(uri, names, sizes.ttlMs),
          close: () => double.stop(),
        });
      } catch (err) {
        await double.stop();
        throw err;
      }
    }
  }
}

function withProxy(proxy: Proxy, setup: Setup): Setup {
  return {
    ...setup,
    freeze: () => proxy.freeze(),
    thaw: () => proxy.thaw(),
    close: async () => {
      await proxy.close();
      await setup.close();
    },
  };
}

export async function outageSection(
  ctx: Context,
  only?: readonly OutageStore[],
): Promise<OutageRow[]> {
  const quick = ctx.mode.name === "quick";
  const sizes = quick ? OUTAGE_QUICK : OUTAGE_FULL;
  const stores = only ?? (quick ? QUICK_STORES : FULL_STORES);
  const names: string[] = [];
  for (let h = 0; h < sizes.holders; h++) {
    for (let i = 0; i < sizes.perHolder; i++) names.push(`${PREFIX}${h}-${i}`);
  }
  const rows: OutageRow[] = [];
  for (const store of stores) {
    ctx.log(
      `  ${store}: ${sizes.holders} holders × ${sizes.perHolder} leases, ${sizes.rivals} rivals, TTL ${num(sizes.ttlMs / 1000)} s`,
    );
    const setup = await setupStore(ctx, store, sizes, names);
    if (!setup) {
      ctx.log(`  ${store}: no server, skipped`);
      continue;
    }
    rows.push(...(await runStore(ctx, setup, sizes)));
  }
  return rows;
}

// ---------------------------------------------------------------------------------------
// The table and the chart.

const secs = (s: number | null) => (s === null ? "never" : `${num(s, 2)} s`);

export function outageTable(rows: readonly OutageRow[]): string {
  const lines = [
    "| store | outage | leases | changed holder: globalclock / wall clock | same tokens: globalclock / wall clock | every lease held again after the outage: globalclock / wall clock | holders whose deadline passed: globalclock (resumed) / wall clock |",
    "|---|---|--:|--:|--:|--:|--:|",
  ];
  for (const r of rows) {
    lines.push(
      `| ${r.store} | ${r.kind}, ${num(r.outageSeconds)} s (TTL ${num(r.ttlSeconds)} s) | ${r.leases} | ${r.changedHolder} / ${r.baselineChangedHolder} | ${r.sameTokens} / ${r.baselineSameTokens} | ${secs(r.secondsUntilAllHeld)} / ${secs(r.baselineSecondsUntilAllHeld)} | ${r.signalsFired} (${r.resumed}) / ${r.baselineSignalsFired} |`,
    );
  }
  const first = rows[0];
  const notes = [
    first
      ? `Per store, ${first.holders} holders each hold ${first.leases / Math.max(1, first.holders)} leases (one session each) while ${first.rivals} rival${first.rivals === 1 ? "" : "s"} per side keep trying to claim every lease; the same fleet runs beside it on a wall-clock lease table (\`expiry < now()\` by the server's clock, renewed every TTL/3) on the same server: ${[...new Set(rows.map((r) => `${r.store}: ${r.baseline}`))].join("; ")}.`
      : "",
    `"store down": ${rows.find((r) => r.kind === "store down")?.how ?? "not measured"}; "updaters stopped": the only updater stopped, then started again (a wall clock cannot be stopped: the baseline is a control there; and the store still answers, so each globalclock renewal reads the same global time and grants a fresh deadline: no holder has to stop). SQLite has no "store down": an embedded store has no server to lose.`,
    "Changed holder counts leases whose holder after recovery (once every lease was held again, plus one TTL) differs from before; same tokens, those still held with the token they had. \"Held again\" is the first read answered after the outage's end that showed every lease held, by anyone; it counts the reader's own reconnection too (on PostgreSQL every pool's connections had timed out during the outage, so both sides' first reads wait for new ones, and the two figures are close). A globalclock holder whose deadline passed stopped acting (its session's signal fired) and resumed with the same tokens when a renewal found its session standing: global time had not moved, so nobody could end it.",
  ];
  return [lines.join("\n"), ...notes.filter((n) => n !== "")].join("\n\n");
}
