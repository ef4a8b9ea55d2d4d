import type { UpdaterWorker, WorkerStatus } from "../worker.js";

export type Lag = { lagSeconds: number; lastAdvanceAgeSeconds: number | undefined };

/**
 * How far global time has fallen behind monotonic time since the daemon started, and how
 * long ago its worker last saw global time move.
 */
export class LagMeter {
  readonly #worker: UpdaterWorker;
  readonly #startedAt = process.hrtime.bigint();
  #startGlobal: bigint | undefined;

  constructor(worker: UpdaterWorker) {
    this.#worker = worker;
  }

  /** The first global time the worker reports is where the lag is counted from. */
  observe(status: WorkerStatus): void {
    this.#startGlobal ??= status.time;
  }

  read(): Lag {
    const s = this.#worker.snapshot();
    const now = process.hrtime.bigint();
    const start = this.#startGlobal;
    const globalElapsed = s.time !== undefined && start !== undefined ? s.time - start : 0n;
    return {
      lagSeconds: Number(now - this.#startedAt - globalElapsed) / 1e9,
      lastAdvanceAgeSeconds:
        s.lastChangeAt === undefined ? undefined : Number(now - s.lastChangeAt) / 1e9,
    };
  }
}
