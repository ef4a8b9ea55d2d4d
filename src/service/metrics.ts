import { Counter, collectDefaultMetrics, Gauge, Registry } from "prom-client";
import type { UpdaterWorker, WorkerRole, WorkerStatus } from "../worker.js";

const ROLES: readonly WorkerRole[] = ["starting", "active", "standby", "error", "stopped"];

/**
 * Prometheus metrics of one worker. Gauges that depend on "now" (lag, ages) are computed
 * when scraped; counters follow the worker's status changes.
 */
export class WorkerMetrics {
  readonly registry = new Registry();
  readonly #advances: Counter;
  readonly #conflicts: Counter;
  readonly #errors: Counter;
  readonly #takeovers: Counter;
  #last: WorkerStatus;

  constructor(
    worker: UpdaterWorker,
    lag: () => { lagSeconds: number; lastAdvanceAgeSeconds: number | undefined },
  ) {
    const registers = [this.registry];
    this.#last = worker.snapshot();
    this.#advances = new Counter({
      name: "globalclock_advances_total",
      help: "Advances this worker made.",
      registers,
    });
    this.#conflicts = new Counter({
      name: "globalclock_conflicts_total",
      help: "Advances this worker lost to another updater (compare-and-swap conflicts).",
      registers,
    });
    this.#errors = new Counter({
      name: "globalclock_errors_total",
      help: "Store errors this worker hit.",
      registers,
    });
    this.#takeovers = new Counter({
      name: "globalclock_takeovers_total",
      help: "Times this worker took over from a stalled active worker.",
      registers,
    });
    new Gauge({
      name: "globalclock_time_seconds",
      help: "The latest global time this worker saw, in seconds since the global epoch.",
      registers,
      collect() {
        const time = worker.snapshot().time;
        if (time !== undefined) this.set(Number(time) / 1e9);
      },
    });
    new Gauge({
      name: "globalclock_role",
      help: "1 for the worker's current role, 0 for the others.",
      labelNames: ["role"],
      registers,
      collect() {
        const role = worker.snapshot().role;
        for (const r of ROLES) this.set({ role: r }, r === role ? 1 : 0);
      },
    });
    new Gauge({
      name: "globalclock_lag_seconds",
      help: "How far global time has fallen behind monotonic wall time since this process started.",
      registers,
      collect() {
        this.set(lag().lagSeconds);
      },
    });
    new Gauge({
      name: "globalclock_last_advance_age_seconds",
      help: "Seconds since this worker last saw global time move.",
      registers,
      collect() {
        const age = lag().lastAdvanceAgeSeconds;
        if (age !== undefined) this.set(age);
      },
    });
    collectDefaultMetrics({ register: this.registry, prefix: "globalclock_" });
  }

  /** Feeds a status change into the counters. */
  update(status: WorkerStatus): void {
    const last = this.#last;
    this.#advances.inc(status.advances - last.advances);
    this.#conflicts.inc(status.conflicts - last.conflicts);
    this.#errors.inc(status.errors - last.errors);
    this.#takeovers.inc(status.takeovers - last.takeovers);
    this.#last = status;
  }
}
