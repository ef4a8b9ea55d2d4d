import type { Command } from "commander";
import { pino } from "pino";
import { safeUrl } from "../config.js";
import { formatDuration } from "../duration.js";
import { DEFAULT_STORE_URL, openStore } from "../open.js";
import { Reader } from "../reader.js";
import { address, parseListen, serve } from "../service/http.js";
import type { WorkerMetrics } from "../service/metrics.js";
import { formatGlobalTime } from "../time.js";
import { startUpdater, type WorkerStatus } from "../worker.js";
import {
  describeDefault,
  describeSettings,
  type UpdaterWorkerOptions,
  workerSettings,
} from "../worker-settings.js";
import { type Io, storeUrl } from "./io.js";

interface RunOptions {
  interval: string;
  takeover?: string;
  maxStep?: string;
  listen?: string;
  json?: boolean;
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
    .action(async (opts: RunOptions, cmd: Command) =>
      runDaemon(storeUrl(cmd, io) ?? DEFAULT_STORE_URL, opts, io),
    );
}

async function runDaemon(url: string, opts: RunOptions, io: Io): Promise<void> {
  const options: UpdaterWorkerOptions = { interval: opts.interval };
  if (opts.takeover !== undefined) options.takeoverAfter = opts.takeover;
  if (opts.maxStep !== undefined) options.maxStep = opts.maxStep;
  const settings = workerSettings(options); // a bad option fails before any store is opened
  const listen = opts.listen === undefined ? undefined : parseListen(opts.listen);

  const stop = new AbortController();
  const onSignal = () => stop.abort();
  process.once("SIGINT", onSignal);
  process.once("SIGTERM", onSignal);

  const store = await openStore(url, { signal: stop.signal });
  const worker = startUpdater(store, { settings, signal: stop.signal });
  const startedAt = process.hrtime.bigint();
  let startGlobal: bigint | undefined;
  const lag = () => {
    const s = worker.snapshot();
    const now = process.hrtime.bigint();
    const globalElapsed =
      s.time !== undefined && startGlobal !== undefined ? s.time - startGlobal : 0n;
    return {
      lagSeconds: Number(now - startedAt - globalElapsed) / 1e9,
      lastAdvanceAgeSeconds:
        s.lastChangeAt === undefined ? undefined : Number(now - s.lastChangeAt) / 1e9,
    };
  };
  // prom-client is loaded only when metrics are served: it is most of an idle daemon's memory.
  let metrics: WorkerMetrics | undefined;
  let server: Awaited<ReturnType<typeof serve>> | undefined;
  if (listen) {
    try {
      const { WorkerMetrics } = await import("../service/metrics.js");
      metrics = new WorkerMetrics(worker, lag);
      server = await serve(listen, { worker, reader: new Reader(store), metrics, details: lag });
    } catch (err) {
      stop.abort();
      await worker.stop();
      await store.close();
      throw err;
    }
  }

  const tty = Boolean(process.stdout.isTTY) && !opts.json;
  const log = pino(
    { base: { pid: process.pid }, timestamp: pino.stdTimeFunctions.isoTime },
    pino.destination({ dest: tty ? 2 : 1, sync: true }),
  );
  log.info(
    {
      event: "start",
      store: safeUrl(url),
      interval: formatDuration(settings.interval),
      takeoverAfter: formatDuration(settings.takeoverAfter),
      maxStep: formatDuration(settings.maxStep),
      failoverBound: formatDuration(settings.failoverBound),
      listen: server ? address(server) : undefined,
    },
    `globalclock running: ${describeSettings(settings)}`,
  );

  const line = tty
    ? setInterval(() => io.out(`\r\x1b[K${statusLine(worker.snapshot(), lag())}`), 200)
    : undefined;
  let last: WorkerStatus | undefined;
  for await (const s of worker.events()) {
    metrics?.update(s);
    if (startGlobal === undefined && s.time !== undefined) startGlobal = s.time;
    if (s.role !== last?.role) {
      const fields = {
        event: "role",
        role: s.role,
        global: s.time?.toString(),
        takeovers: s.takeovers,
        conflicts: s.conflicts,
      };
      log.info(fields, `role: ${s.role}`);
    }
    if (last && s.takeovers > last.takeovers) {
      log.info(
        { event: "takeover", step: s.lastStep?.toString(), global: s.time?.toString() },
        "took over",
      );
    }
    if (s.errors > (last?.errors ?? 0))
      log.warn(
        { event: "error", error: s.lastError, errors: s.errors },
        `store error: ${s.lastError}`,
      );
    last = s;
  }
  if (line) clearInterval(line);
  if (tty) io.out("");
  await new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()));
  await store.close();
  const end = worker.snapshot();
  log.info(
    { event: "stop", advances: end.advances, conflicts: end.conflicts, errors: end.errors },
    "stopped",
  );
  process.off("SIGINT", onSignal);
  process.off("SIGTERM", onSignal);
}

function statusLine(
  s: WorkerStatus,
  lag: { lagSeconds: number; lastAdvanceAgeSeconds: number | undefined },
): string {
  const time = s.time === undefined ? "—" : formatGlobalTime(s.time);
  const age =
    lag.lastAdvanceAgeSeconds === undefined ? "—" : `${lag.lastAdvanceAgeSeconds.toFixed(1)}s ago`;
  return `${s.role.padEnd(8)} ${time}  lag ${lag.lagSeconds.toFixed(3)}s  last advance ${age}  advances ${s.advances} conflicts ${s.conflicts} errors ${s.errors}`;
}
