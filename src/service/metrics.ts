import { Counter, collectDefaultMetrics, Gauge, Registry } from "prom-client";
import type { UpdaterWorker, WorkerRole, WorkerStatus } from "../worker.js";
import type { Health } from "./health.js";

const ROLES: readonly WorkerRole[] = ["starting", "active", "standby", "error", "stopped"];

/** How long one collection answers every scrape (concurrent or not) before a new one runs. */
export const METRICS_CACHE_MS = 1000;

/** What the gauges read when scraped. */
export interface MetricsSources {
  lag: () => { lagSeconds: number; lastAdvanceAgeSeconds: number | undefined };
  health: () => Health;
}

type CounterField =
  | "advances"
  | "conflicts"
  | "errors"
  | "takeovers"
  | "regressions"
  | "recordMissing";

const COUNTERS: ReadonlyArray<readonly [CounterField, string, string]> = [
  ["advances", "globalclock_advances_total", "Advances this worker made."],
  [
    "conflicts",
    "globalclock_conflicts_total",
    "Advances this worker lost to another updater (compare-and-swap conflicts).",
  ],
  ["errors", "globalclock_errors_total", "Store errors this worker hit."],
  [
    "takeovers",
    "globalclock_takeovers_total",
    "Times this worker took over from a stalled active worker.",
  ],
  [
    "regressions",
    "globalclock_regressions_total",
    "Times the stored time was found below what this worker had seen (a restored backup, a rollback, a manual edit).",
  ],
  [
    "recordMissing",
    "globalclock_record_missing_total",
    "Times this worker found the clock record gone (deleted); it never re-creates it.",
  ],
];

/**
 * Prometheus metrics of one worker. Gauges that depend on "now" (lag, ages, health) are
 * computed when scraped; counters follow the worker's status changes. A collection is
 * shared by every scrape in flight and reused for METRICS_CACHE_MS, so a crowd of scrapers
 * costs one collection, not one each.
 */
export class WorkerMetrics {
  readonly registry = new Registry();
  readonly #counters: ReadonlyArray<readonly [CounterField, Counter]>;
  readonly #now: () => number;
  #last: WorkerStatus;
  #cached: { at: number; text: Promise<string> } | undefined;

  constructor(worker: UpdaterWorker, sources: MetricsSources, now = () => performance.now()) {
    const registers = [this.registry];
    this.#now = now;
    this.#last = worker.snapshot();
    this.#counters = COUNTERS.map(
      ([field, name, help]) => [field, new Counter({ name, help, registers })] as const,
    );
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
      name: "globalclock_healthy",
      help: "1 when /healthz answers 200, 0 when it answers 503.",
      registers,
      collect() {
        this.set(sources.health().ok ? 1 : 0);
      },
    });
    new Gauge({
      name: "globalclock_lag_seconds",
      help: "How far global time has fallen behind monotonic wall time since this process started.",
      registers,
      collect() {
        this.set(sources.lag().lagSeconds);
      },
    });
    new Gauge({
      name: "globalclock_last_advance_age_seconds",
      help: "Seconds since this worker last saw global time move.",
      registers,
      collect() {
        const age = sources.lag().lastAdvanceAgeSeconds;
        if (age !== undefined) this.set(age);
      },
    });
    collectDefaultMetrics({ register: this.registry, prefix: "globalclock_" });
  }

  /** Feeds a status change into the counters. */
  update(status: WorkerStatus): void {
    const last = this.#last;
    for (const [field, counter] of this.#counters) {
      const delta = status[field] - last[field];
      if (delta > 0) counter.inc(delta);
    }
    this.#last = status;
  }

  /** The Prometheus text: one collection shared by concurrent scrapes, kept a short while. */
  text(): Promise<string> {
    const now = this.#now();
    const cached = this.#cached;
    if (cached && now - cached.at < METRICS_CACHE_MS) return cached.text;
    const text = this.registry.metrics();
    const entry = { at: now, text };
    this.#cached = entry;
    text.catch(() => {
      if (this.#cached === entry) this.#cached = undefined; // a failed collection is not kept
    });
    return text;
  }
}
