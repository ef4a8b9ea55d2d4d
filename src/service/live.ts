import { describe, safeUrl } from "../errors.js";
import type { LeaseInfo } from "../leases/info.js";
import { Leases } from "../leases/leases.js";
import { sleep } from "../sleep.js";
import type { ClockStore } from "../store.js";
import { formatGlobalTime } from "../time.js";
import type { UpdaterWorker, WorkerStatus } from "../worker.js";
import type { WorkerSettings } from "../worker-settings.js";
import { type HealthJudge, operatorMessage } from "./health.js";

/**
 * The state the live page (GET /) shows, GET /api/state answers and GET /api/events pushes.
 * Its field names and units are a stable API (README, "The live page"): bump API_VERSION on
 * any change that is not an added field.
 */
export const API_VERSION = 1;

/** Bounds and timings of what the daemon keeps for the page. */
export interface LiveLimits {
  /** How often a (wall, global) sample is taken for the rate chart. */
  readonly sampleMs: number;
  /** Samples kept: sampleMs × samples is the chart's span (5 minutes by default). */
  readonly samples: number;
  /** Handovers kept for the timeline. */
  readonly handovers: number;
  /** Pushes to the page are at most this often (a 10 ms interval does not mean 100 a second). */
  readonly pushMs: number;
  /** How often the leases are read where the store cannot push their changes (or its push broke). */
  readonly fallbackMs: number;
  /** The least time from one list of the leases to the next, however often changes are pushed. */
  readonly listEveryMs: number;
}

export const LIVE_LIMITS: LiveLimits = Object.freeze({
  sampleMs: 2_000,
  samples: 150,
  handovers: 50,
  pushMs: 100,
  fallbackMs: 3_000,
  listEveryMs: 1_000,
});

/** What the page's banner says: the first that applies, in this order. */
export type ClockState =
  | "record-missing"
  | "store-unreachable"
  | "stopped"
  | "stalled"
  | "starting"
  | "ok";

interface Sample {
  /** Monotonic time (process.hrtime.bigint()) the global time was seen at. */
  readonly mono: bigint;
  /** The same moment on the wall clock, ms since the Unix epoch. */
  readonly wallMs: number;
  readonly time: bigint;
}

/** A change of holder seen between two reads of the leases. */
export interface Handover {
  /** When this daemon saw it (wall clock), ms since the Unix epoch. */
  readonly seenAtMs: number;
  readonly lease: string;
  /** The holder before; null when this daemon never saw one (a new lease, or one released before it started). */
  readonly from: string | null;
  readonly to: string;
  readonly token: bigint;
  /** The new holder's start, in global time. */
  readonly start: bigint;
  /**
   * Global time between the old holder's end (its release, or its expiry) and the new
   * holder's start; null when it cannot be known (released unseen between two reads).
   */
  readonly gap: bigint | null;
  /**
   * Where `gap` is null after a holder: the most it can be, the global time between the
   * read that last saw the old holder and the new start (the release came between).
   */
  readonly gapAtMost: bigint | null;
  /** No record of this name at the read before: its first holder. */
  readonly newLease: boolean;
}

interface Seen {
  readonly holder: string;
  readonly token: bigint;
  readonly expiry: bigint;
  /** The last non-empty holder seen, for a release followed by a claim. */
  readonly lastHolder: string | null;
  /** The global time of the read that saw it. */
  readonly readAt: bigint;
}

export interface LiveParts {
  worker: UpdaterWorker;
  settings: WorkerSettings;
  health: HealthJudge;
  store: ClockStore;
  /** The store URL; shown only through safeUrl (no password). */
  url?: string;
  /** Masks the store's passwords in a message. */
  mask: (text: string) => string;
}

const iso = (ms: number) => new Date(ms).toISOString();
const globalIso = (ns: bigint) => {
  try {
    return formatGlobalTime(ns);
  } catch {
    return null; // beyond int64: shown as the number alone
  }
};
const str = (ns: bigint | undefined | null) => (ns === undefined || ns === null ? null : `${ns}`);

/**
 * What the daemon keeps for its live page: the worker's latest status (fed by `update`),
 * a bounded ring of (wall, global) samples, the leases as last read and a bounded ring of
 * the handovers seen between reads. Leases are read once at start and again at each change
 * the store pushes (watchLeases), or every `fallbackMs` where it pushes none. It only reads.
 */
export class LiveState {
  readonly #parts: LiveParts;
  readonly #limits: LiveLimits;
  readonly #leases: Leases | undefined;
  readonly #abort = new AbortController();
  readonly #listeners = new Set<(json: string) => void>();
  readonly #samples: Sample[] = [];
  readonly #handovers: Handover[] = [];
  readonly #seen = new Map<string, Seen>();
  readonly #timers: NodeJS.Timeout[] = [];
  #status: WorkerStatus;
  #leaseList:
    | { items: readonly LeaseInfo[]; time: bigint | undefined; readAtMs: number }
    | undefined;
  #leaseError: string | undefined;
  #pushError: string | undefined;
  #watching = false;
  #refreshing: Promise<void> | undefined;
  #again = false;
  /** When the last list of the leases began (performance.now()). */
  #lastList = Number.NEGATIVE_INFINITY;
  #pushTimer: NodeJS.Timeout | undefined;
  #stallTimer: NodeJS.Timeout | undefined;
  #lastPush = 0;

  constructor(parts: LiveParts, limits: Partial<LiveLimits> = {}) {
    this.#parts = parts;
    this.#limits = { ...LIVE_LIMITS, ...limits };
    this.#status = parts.worker.snapshot();
    this.#leases = parts.store.leases ? new Leases(parts.store) : undefined;
    const sampler = setInterval(() => this.#sample(), this.#limits.sampleMs);
    sampler.unref();
    this.#timers.push(sampler);
    this.#armStallTimer();
    if (this.#leases) void this.#follow(this.#abort.signal);
  }

  /** Feeds a worker status (every one the daemon sees). */
  update(status: WorkerStatus): void {
    const before = this.#status;
    this.#status = status;
    if (this.#samples.length === 0 && status.time !== undefined) this.#sample();
    if (status.lastChangeAt !== before.lastChangeAt) this.#armStallTimer();
    this.#changed();
  }

  /** Calls `listener` with the state's JSON at every change (at most every pushMs). */
  subscribe(listener: (json: string) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  get subscribers(): number {
    return this.#listeners.size;
  }

  /** The state as /api/state answers it. */
  json(): string {
    return JSON.stringify(this.state());
  }

  /** The state, with every bigint as a decimal string. */
  state(): Record<string, unknown> {
    const { settings, mask } = this.#parts;
    const status = this.#status;
    const nowMono = process.hrtime.bigint();
    const nowMs = Date.now();
    const judged = this.#parts.health.judge(status, nowMono);
    const clockState = this.#clockState(status, judged.stillForSeconds > judged.boundSeconds);
    const reason =
      clockState === "ok" || clockState === "starting"
        ? null
        : mask(judged.reason ?? "the worker is in error");
    const samples = this.#samples;
    const last = samples.at(-1);
    const beforeLast = samples.at(-2);
    const first = samples[0];
    const time = status.time;
    const listTime = this.#leaseList?.time;
    // Leases are judged against the newest global time known: the worker's or the read's.
    const judgeAt =
      time !== undefined && (listTime === undefined || time > listTime) ? time : listTime;
    return {
      api: API_VERSION,
      generatedAt: iso(nowMs),
      clock: {
        state: clockState,
        reason,
        time: str(time),
        timeIso: time === undefined ? null : globalIso(time),
        lastChangeAgoSeconds:
          status.lastChangeAt === undefined ? null : Number(nowMono - status.lastChangeAt) / 1e9,
        stillForSeconds: judged.stillForSeconds,
        rate: last && beforeLast ? rateOf(beforeLast, last) : null,
      },
      rate: {
        sampleSeconds: this.#limits.sampleMs / 1000,
        windowSeconds: first && last ? Number(last.mono - first.mono) / 1e9 : 0,
        average: first && last && first !== last ? rateOf(first, last) : null,
        samples: samples.map((s, i) => {
          const prev = samples[i - 1];
          return {
            wall: iso(s.wallMs),
            time: str(s.time),
            rate: prev ? rateOf(prev, s) : null,
          };
        }),
      },
      worker: {
        role: status.role,
        interval: str(settings.interval),
        takeoverAfter: str(settings.takeoverAfter),
        failoverBound: str(settings.failoverBound),
        maxStep: str(status.clusterMaxStep),
        ownMaxStep: str(settings.maxStep),
        advances: status.advances,
        conflicts: status.conflicts,
        errors: status.errors,
        takeovers: status.takeovers,
        regressions: status.regressions,
        recordMissing: status.recordMissing,
        // In an operator's terms, as /healthz words it.
        lastError: status.lastError === undefined ? null : mask(operatorMessage(status.lastError)),
      },
      store: {
        kind: this.#parts.store.kind,
        url: this.#parts.url === undefined ? null : mask(safeUrl(this.#parts.url)),
      },
      leases: {
        available: this.#leases !== undefined,
        pushed: this.#watching,
        pushError: this.#pushError === undefined ? null : mask(this.#pushError),
        readAt: this.#leaseList ? iso(this.#leaseList.readAtMs) : null,
        error: this.#leaseError === undefined ? null : mask(this.#leaseError),
        items: (this.#leaseList?.items ?? []).map((l) => leaseJson(l, judgeAt)),
      },
      handovers: [...this.#handovers].reverse().map((h) => ({
        seenAt: iso(h.seenAtMs),
        lease: h.lease,
        from: h.from,
        to: h.to,
        token: str(h.token),
        start: str(h.start),
        startIso: globalIso(h.start),
        gap: str(h.gap),
        gapAtMost: str(h.gapAtMost),
        newLease: h.newLease,
      })),
    };
  }

  /** Stops reading the store and the timers; listeners get nothing more. */
  close(): void {
    this.#abort.abort();
    for (const t of this.#timers) clearInterval(t);
    clearTimeout(this.#pushTimer);
    clearTimeout(this.#stallTimer);
    this.#listeners.clear();
  }

  #clockState(status: WorkerStatus, still: boolean): ClockState {
    if (status.role === "error") {
      return status.lastErrorName === "ClockRecordMissingError"
        ? "record-missing"
        : "store-unreachable";
    }
    if (status.role === "stopped") return "stopped";
    if (still) return "stalled";
    if (status.time === undefined || status.role === "starting") return "starting";
    return "ok";
  }

  /** A push once the clock has stood still for the failover bound: the page turns red then. */
  #armStallTimer(): void {
    clearTimeout(this.#stallTimer);
    const boundMs = Number(this.#parts.settings.failoverBound) / 1e6;
    this.#stallTimer = setTimeout(() => this.#changed(), boundMs + 5);
    this.#stallTimer.unref();
  }

  /** Schedules a push to the listeners, at most one every pushMs. */
  #changed(): void {
    if (this.#pushTimer !== undefined || this.#listeners.size === 0) return;
    const wait = Math.max(0, this.#lastPush + this.#limits.pushMs - performance.now());
    this.#pushTimer = setTimeout(() => {
      this.#pushTimer = undefined;
      this.#lastPush = performance.now();
      if (this.#abort.signal.aborted) return;
      const json = this.json();
      for (const listener of this.#listeners) listener(json);
    }, wait);
    this.#pushTimer.unref();
  }

  /**
   * A sample: where the time moved since the last one, the time with the moment the worker
   * saw it (so the rate between two is exact); where it did not, the time with now (so a
   * stall shows as a rate of 0).
   */
  #sample(): void {
    const status = this.#status;
    if (status.time === undefined) return;
    const last = this.#samples.at(-1);
    const now = process.hrtime.bigint();
    const moved = last === undefined || status.time !== last.time;
    const mono = moved && status.lastChangeAt !== undefined ? status.lastChangeAt : now;
    if (last && mono <= last.mono) return;
    const wallMs = Date.now() - Number(now - mono) / 1e6;
    this.#samples.push({ mono, wallMs, time: status.time });
    if (this.#samples.length > this.#limits.samples) this.#samples.shift();
    // A stall shows on the chart as it happens, even with no status change to push.
    if (!moved) this.#changed();
  }

  /** Reads the leases at every pushed change, or every fallbackMs where none is pushed. */
  async #follow(signal: AbortSignal): Promise<void> {
    const store = this.#parts.store.leases;
    const watch = store?.watchLeases?.bind(store);
    while (!signal.aborted) {
      if (watch) {
        try {
          const changes = watch("", signal)[Symbol.asyncIterator]();
          // Subscribed before the first read: no change goes unseen. A failure is awaited
          // below; the no-op handler only keeps it from counting as unhandled meanwhile.
          let next = changes.next();
          next.catch(() => {});
          this.#watching = true;
          this.#pushError = undefined;
          await this.#refresh();
          for (;;) {
            const { done } = await next;
            if (done) break;
            next = changes.next();
            next.catch(() => {});
            await this.#refresh();
          }
        } catch (err) {
          if (signal.aborted) return;
          this.#pushError = describe(err);
        }
        this.#watching = false;
        this.#changed();
      } else {
        await this.#refresh();
      }
      // No push (or it broke): read on a timer; a broken push is tried again after it.
      if (!(await sleep(this.#limits.fallbackMs, signal, true))) return;
      if (watch) await this.#refresh();
    }
  }

  /** One read of every lease; a read asked for while one runs makes one more, not one each. */
  #refresh(): Promise<void> {
    if (this.#refreshing) {
      this.#again = true;
      return this.#refreshing;
    }
    const run = async () => {
      do {
        // Pushes come at every lease write (every session's renewal among them): a list
        // waits out listEveryMs from the last one's start, so that a store of 10,000
        // leases renewed 20 times a second is listed once a second, not 20 times.
        const wait = this.#lastList + this.#limits.listEveryMs - performance.now();
        if (wait > 0 && !(await sleep(wait, this.#abort.signal, true))) return;
        this.#again = false;
        this.#lastList = performance.now();
        await this.#readLeases();
      } while (this.#again && !this.#abort.signal.aborted);
    };
    this.#refreshing = run().finally(() => {
      this.#refreshing = undefined;
    });
    return this.#refreshing;
  }

  async #readLeases(): Promise<void> {
    const leases = this.#leases;
    if (!leases) return;
    let items: LeaseInfo[];
    try {
      items = await leases.list("", {
        signal: AbortSignal.any([this.#abort.signal, AbortSignal.timeout(10_000)]),
      });
    } catch (err) {
      if (this.#abort.signal.aborted) return;
      this.#leaseError = describe(err);
      this.#changed();
      return;
    }
    const initial = this.#leaseList === undefined;
    this.#observe(items, initial);
    this.#leaseList = { items, time: items[0]?.time, readAtMs: Date.now() };
    this.#leaseError = undefined;
    this.#changed();
  }

  /** Notes every change of holder since the last read (not at the first read: no "before"). */
  #observe(items: readonly LeaseInfo[], initial: boolean): void {
    const names = new Set<string>();
    for (const l of items) {
      names.add(l.name);
      const before = this.#seen.get(l.name);
      const lastHolder = l.holder !== "" ? l.holder : (before?.lastHolder ?? null);
      const taken = before ? l.token > before.token : !initial;
      if (taken && l.holder !== "") {
        const gap = before ? gapOf(before, l) : null;
        const atMost = before && gap === null ? l.start - before.readAt : null;
        this.#handovers.push({
          seenAtMs: Date.now(),
          lease: l.name,
          from: before ? before.holder || before.lastHolder : null,
          to: l.holder,
          token: l.token,
          start: l.start,
          gap,
          gapAtMost: atMost !== null && atMost >= 0n ? atMost : null,
          newLease: before === undefined,
        });
        if (this.#handovers.length > this.#limits.handovers) this.#handovers.shift();
      }
      this.#seen.set(l.name, {
        holder: l.holder,
        token: l.token,
        expiry: l.expiry,
        lastHolder,
        readAt: l.time,
      });
    }
    for (const name of this.#seen.keys()) if (!names.has(name)) this.#seen.delete(name);
  }
}

/**
 * The global time between the old tenure's end and the new one's start: a release ends it
 * at the release's time (stored as its expiry), a lapse at its expiry. A new start before
 * the old expiry means a release this daemon did not see: when, it cannot know.
 */
function gapOf(before: Seen, after: LeaseInfo): bigint | null {
  const gap = after.start - before.expiry;
  return gap >= 0n ? gap : null;
}

/** Global ns per monotonic ns between two samples. */
function rateOf(a: Sample, b: Sample): number | null {
  const wall = b.mono - a.mono;
  return wall > 0n ? Number(b.time - a.time) / Number(wall) : null;
}

function leaseJson(l: LeaseInfo, at: bigint | undefined) {
  const time = at ?? l.time;
  const free = l.holder === "" || (l.pins.length === 0 && time >= l.expiry);
  return {
    name: l.name,
    holder: l.holder,
    token: str(l.token),
    start: str(l.start),
    startIso: globalIso(l.start),
    expiry: str(l.expiry),
    expiryIso: globalIso(l.expiry),
    pins: [...l.pins],
    free,
    released: l.holder === "",
    remaining: str(l.expiry - time),
    judgedAt: str(time),
  };
}
