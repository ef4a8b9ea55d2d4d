import { formatDuration } from "../duration.js";
import type { WorkerStatus } from "../worker.js";
import type { WorkerSettings } from "../worker-settings.js";

/** What /healthz answers: healthy or not, and why not. */
export interface Health {
  readonly ok: boolean;
  /** Why it is unhealthy; undefined when healthy. */
  readonly reason: string | undefined;
  /** Seconds since this worker last saw global time move (or since it started). */
  readonly stillForSeconds: number;
  /** The longest the clock may stand still before this worker is unhealthy, in seconds. */
  readonly boundSeconds: number;
  /**
   * When this worker last saw global time move, by this process's wall clock (ISO 8601);
   * null if it never has. The worker's own `lastChangeAt` is a monotonic reading, which
   * means nothing outside the process: this replaces it on /healthz.
   */
  readonly lastChangeAt?: string | null;
  /** How long ago that was, in milliseconds, by the monotonic clock; null if never. */
  readonly lastChangeAgoMs?: number | null;
}

/**
 * Judges one worker's health, as client-go's leader-election health check does: a process
 * is unhealthy when the thing it exists for has stopped, whatever its role. Here, when the
 * worker is in error (the store refuses it, the record is gone), or when it has not seen
 * global time move for longer than the failover bound of its settings (`failoverBound`,
 * which exceeds a takeover's worst case by one poll): a healthy active worker advances every
 * interval, and a healthy stand-by sees it, or takes over within that bound.
 */
export class HealthJudge {
  readonly #bound: bigint;
  readonly #startedAt: bigint;

  constructor(settings: WorkerSettings, startedAt: bigint = process.hrtime.bigint()) {
    this.#bound = settings.failoverBound;
    this.#startedAt = startedAt;
  }

  /**
   * `now` is the monotonic clock the worker's `lastChangeAt` was read on, `wallNowMs` the
   * wall clock (ms since 1970) at the same moment.
   */
  judge(
    status: WorkerStatus,
    now: bigint = process.hrtime.bigint(),
    wallNowMs: number = Date.now(),
  ): Health {
    const still = now - (status.lastChangeAt ?? this.#startedAt);
    const agoMs =
      status.lastChangeAt === undefined
        ? null
        : Math.max(0, Math.round(Number(now - status.lastChangeAt) / 1e6));
    const result = (reason: string | undefined): Health => ({
      ok: reason === undefined,
      reason,
      stillForSeconds: Number(still) / 1e9,
      boundSeconds: Number(this.#bound) / 1e9,
      lastChangeAt: agoMs === null ? null : new Date(wallNowMs - agoMs).toISOString(),
      lastChangeAgoMs: agoMs,
    });
    if (status.role === "error") {
      const what = operatorMessage(status.lastError ?? "the store failed for an unknown reason");
      return result(
        status.lastErrorRetryable === false
          ? `${what}; the daemon keeps retrying, but this will not mend by itself: fix the store or its configuration`
          : `${what}; the daemon keeps retrying`,
      );
    }
    if (status.role === "stopped")
      return result("the daemon is stopping: it keeps the clock no more");
    if (still > this.#bound) {
      return result(
        `global time has not moved for ${formatDuration(still)}, longer than the failover bound (${formatDuration(this.#bound)}), within which a stand-by would have taken over: no daemon advances this clock, or this one cannot see it move`,
      );
    }
    return result(undefined);
  }
}

/** What the daemon was doing, for each operation a store names in its errors. */
const DOING: Readonly<Record<string, string>> = {
  open: "open the store",
  ensure: "create the clock record",
  read: "read the clock",
  readClock: "read the clock",
  create: "read the clock",
  resume: "read the clock",
  watch: "watch the clock",
  compareAndSwap: "advance the clock",
  advanceClock: "advance the clock",
  advance: "advance the clock",
  ensureMaxStep: "store the cluster's maxStep",
  swapMaxStep: "change the cluster's maxStep",
  readLease: "read a lease",
  writeLease: "write a lease",
  listLeases: "list the leases",
  watchLeases: "watch the leases",
};

/**
 * A worker's error message in an operator's terms. The worker reports errors as the library
 * words them for a programmer: an updater that failed says to "create a new updater" (the
 * daemon does that itself, with backoff), and a store error names the method that failed
 * (`postgres store: ensureMaxStep failed: …`). Here the first is dropped and the second says
 * what the daemon could not do (`could not store the cluster's maxStep (postgres store): …`);
 * the store's own words, which say what to fix, are kept.
 */
export function operatorMessage(message: string): string {
  let text = message;
  for (;;) {
    const m = /^updater is no longer valid: ([\s\S]*); create a new updater$/.exec(text);
    if (!m) break;
    text = m[1] as string;
  }
  return text
    .replace(
      /^watch failed, reading instead: /,
      "watching the clock failed, so the daemon reads it instead: ",
    )
    .replace(
      /\b([a-z0-9]+) store: ([A-Za-z]+) failed: /g,
      (_all, kind: string, operation: string) =>
        `could not ${DOING[operation] ?? "use the store"} (${kind} store): `,
    );
}
