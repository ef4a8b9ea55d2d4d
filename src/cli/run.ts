import type { Command } from "commander";
import { quote, redact, urlSecrets } from "../errors.js";
import { DEFAULT_STORE_URL, openStore } from "../open.js";
import { HealthJudge } from "../service/health.js";
import { type ListenAddress, resolveListen } from "../service/http.js";
import type { LeaseSeriesChoice } from "../service/lease-metrics.js";
import type { ClockStore } from "../store.js";
import { startUpdater, type WorkerStatus } from "../worker.js";
import {
  describeDefault,
  type UpdaterWorkerOptions,
  type WorkerSettings,
  workerSettings,
} from "../worker-settings.js";
import { type Io, storeUrl } from "./io.js";
import { LagMeter } from "./lag.js";
import { countFlag } from "./options.js";
import { DaemonLog } from "./run-log.js";
import { startService } from "./run-service.js";
import { stopOnSignals } from "./signals.js";

interface RunOptions {
  interval: string;
  takeover?: string;
  maxStep?: string;
  listen?: string;
  leaseSeries?: string;
  leaseSeriesSoonest?: string;
  json?: boolean;
}

/** What `run` was asked to do, validated before any store is opened. */
interface DaemonPlan {
  url: string;
  settings: WorkerSettings;
  listen: ListenAddress | undefined;
  /** Which leases /metrics gives series of their own (none unless asked). */
  leaseSeries: LeaseSeriesChoice;
  /** Masks the store's passwords in a message. */
  mask: (text: string) => string;
}

/** `globalclock run`: keep the clock ticking until SIGINT or SIGTERM. */
export function registerRun(program: Command, io: Io): void {
  program
    .command("run")
    .description(
      "run an updater worker: advance global time every interval, take over when the active one stops",
    )
    .option(
      "--interval <duration>",
      "how often to advance (at least 10ms: each step is a durable write)",
      describeDefault("interval"),
    )
    .option(
      "--takeover <duration>",
      `stand-by takes over after this long without an advance (default ${describeDefault("takeoverAfter")})`,
    )
    .option(
      "--max-step <duration>",
      `largest single advance; stalls are never made up (default ${describeDefault("maxStep")})`,
    )
    .option(
      "--listen <addr>",
      "serve /metrics, /healthz, /now and a live page (/) on PORT or HOST:PORT (loopback by default; no authentication)",
    )
    .option(
      "--lease-series <prefix>",
      'per-lease series in /metrics for leases whose name starts with PREFIX ("" for all; by default only the fleet\'s series)',
    )
    .option(
      "--lease-series-soonest <n>",
      "per-lease series in /metrics for the N held leases nearest their expiry",
    )
    .option("--json", "log JSON lines even on a terminal")
    .action(async (opts: RunOptions, cmd: Command) => {
      const plan = await planDaemon(storeUrl(cmd, io) ?? DEFAULT_STORE_URL, opts);
      await runDaemon(plan, new DaemonLog(io, { json: opts.json, mask: plan.mask }), io);
    });
}

/** Validates `run`'s options (ConfigError): a bad one fails before any store is opened. */
async function planDaemon(url: string, opts: RunOptions): Promise<DaemonPlan> {
  const options: UpdaterWorkerOptions = { interval: opts.interval };
  if (opts.takeover !== undefined) options.takeoverAfter = opts.takeover;
  if (opts.maxStep !== undefined) options.maxStep = opts.maxStep;
  const settings = workerSettings(options);
  const listen = opts.listen === undefined ? undefined : await resolveListen(opts.listen);
  const secrets = urlSecrets(url);
  const soonest = opts.leaseSeriesSoonest;
  const leaseSeries = {
    prefix: opts.leaseSeries,
    soonest:
      soonest === undefined ? undefined : countFlag("--lease-series-soonest", soonest, "leases"),
  };
  return { url, settings, listen, leaseSeries, mask: (text) => redact(text, secrets) };
}

/**
 * Opens the store and runs the worker on it until SIGINT or SIGTERM (or stdout closes).
 * A failure no retry can mend before the first successful call (wrong credentials, a
 * missing database) ends it with that error; after a healthy start everything is retried.
 */
async function runDaemon(plan: DaemonPlan, log: DaemonLog, io: Io): Promise<void> {
  using stop = stopOnSignals(io.closed);
  if (plan.listen && !plan.listen.loopback) {
    log.warn(
      "listen",
      `--listen ${quote(plan.listen.host)} is not a loopback address: /metrics, /healthz, /now and the live page have no authentication, so anyone who can reach port ${plan.listen.port} can read them`,
    );
  }
  const store = await openStore(plan.url, { signal: stop.signal });
  let end: { status: WorkerStatus; failure: unknown };
  try {
    end = await work(store, plan, log, stop.signal);
  } finally {
    await store.close();
  }
  if (end.failure !== undefined) throw end.failure;
  log.stopped(end.status);
}

/** Runs the worker, with the HTTP service if asked, until `signal` aborts or it fails. */
async function work(
  store: ClockStore,
  plan: DaemonPlan,
  log: DaemonLog,
  signal: AbortSignal,
): Promise<{ status: WorkerStatus; failure: unknown }> {
  const worker = startUpdater(store, { settings: plan.settings, signal });
  const lag = new LagMeter(worker);
  const health = new HealthJudge(plan.settings);
  try {
    const service =
      plan.listen &&
      (await startService(plan.listen, {
        worker,
        store,
        lag,
        health,
        mask: plan.mask,
        url: plan.url,
        leaseSeries: plan.leaseSeries,
      }));
    try {
      log.started(plan.url, plan.settings, service?.address);
      using _line = log.statusLine(worker, lag);
      for await (const status of worker.events()) {
        lag.observe(status);
        service?.update(status);
        log.status(status);
      }
    } finally {
      await service?.close();
    }
  } finally {
    await worker.stop();
  }
  return { status: worker.snapshot(), failure: worker.failure };
}
