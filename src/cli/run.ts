import type { Command } from "commander";
import { DEFAULT_STORE_URL, openStore } from "../open.js";
import { parseListen } from "../service/http.js";
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
import { DaemonLog } from "./run-log.js";
import { startService } from "./run-service.js";
import { stopOnSignals } from "./signals.js";

interface RunOptions {
  interval: string;
  takeover?: string;
  maxStep?: string;
  listen?: string;
  json?: boolean;
}

/** What `run` was asked to do, validated before any store is opened. */
interface DaemonPlan {
  url: string;
  settings: WorkerSettings;
  listen: { host: string; port: number } | undefined;
}

/** `globalclock run`: keep the clock ticking until SIGINT or SIGTERM. */
export function registerRun(program: Command, io: Io): void {
  program
    .command("run")
    .description(
      "run an updater worker: advance global time every interval, take over when the active one stops",
    )
    .option("--interval <duration>", "how often to advance", describeDefault("interval"))
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
      "serve /metrics, /healthz and /now on PORT or HOST:PORT (loopback by default)",
    )
    .option("--json", "log JSON lines even on a terminal")
    .action(async (opts: RunOptions, cmd: Command) => {
      const plan = planDaemon(storeUrl(cmd, io) ?? DEFAULT_STORE_URL, opts);
      await runDaemon(plan, new DaemonLog(io, opts.json));
    });
}

/** Validates `run`'s options (ConfigError): a bad one fails before any store is opened. */
function planDaemon(url: string, opts: RunOptions): DaemonPlan {
  const options: UpdaterWorkerOptions = { interval: opts.interval };
  if (opts.takeover !== undefined) options.takeoverAfter = opts.takeover;
  if (opts.maxStep !== undefined) options.maxStep = opts.maxStep;
  const settings = workerSettings(options);
  const listen = opts.listen === undefined ? undefined : parseListen(opts.listen);
  return { url, settings, listen };
}

/** Opens the store and runs the worker on it until SIGINT or SIGTERM, or a failed start. */
async function runDaemon(plan: DaemonPlan, log: DaemonLog): Promise<void> {
  using stop = stopOnSignals();
  const store = await openStore(plan.url, { signal: stop.signal });
  let end: WorkerStatus;
  try {
    end = await work(store, plan, log, stop.signal);
  } finally {
    await store.close();
  }
  log.stopped(end);
}

/** Runs the worker, with the HTTP service if asked, until `signal` aborts; its last status. */
async function work(
  store: ClockStore,
  plan: DaemonPlan,
  log: DaemonLog,
  signal: AbortSignal,
): Promise<WorkerStatus> {
  const worker = startUpdater(store, { settings: plan.settings, signal });
  const lag = new LagMeter(worker);
  try {
    const service = plan.listen && (await startService(plan.listen, worker, store, lag));
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
  return worker.snapshot();
}
