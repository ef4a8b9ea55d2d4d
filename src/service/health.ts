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

  judge(status: WorkerStatus, now: bigint = process.hrtime.bigint()): Health {
    const still = now - (status.lastChangeAt ?? this.#startedAt);
    const result = (reason: string | undefined): Health => ({
      ok: reason === undefined,
      reason,
      stillForSeconds: Number(still) / 1e9,
      boundSeconds: Number(this.#bound) / 1e9,
    });
    if (status.role === "error") return result(`store error: ${status.lastError ?? "unknown"}`);
    if (status.role === "stopped") return result("the worker has stopped");
    if (still > this.#bound) {
      return result(
        `global time has not moved for ${formatDuration(still)}, longer than the failover bound (${formatDuration(this.#bound)})`,
      );
    }
    return result(undefined);
  }
}
