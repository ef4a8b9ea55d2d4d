import { type Logger, pino } from "pino";
import { safeUrl } from "../config.js";
import { formatDuration } from "../duration.js";
import { formatGlobalTime } from "../time.js";
import type { UpdaterWorker, WorkerStatus } from "../worker.js";
import { describeSettings, type WorkerSettings } from "../worker-settings.js";
import type { Io } from "./io.js";
import type { Lag, LagMeter } from "./lag.js";

/**
 * What `run` tells its operator: JSON lines (pino) on stdout; on a terminal, the same
 * lines on stderr and a live status line on stdout.
 */
export class DaemonLog {
  readonly #io: Io;
  readonly #tty: boolean;
  readonly #log: Logger;
  #last: WorkerStatus | undefined;

  constructor(io: Io, json: boolean | undefined) {
    this.#io = io;
    this.#tty = Boolean(process.stdout.isTTY) && !json;
    this.#log = pino(
      { base: { pid: process.pid }, timestamp: pino.stdTimeFunctions.isoTime },
      pino.destination({ dest: this.#tty ? 2 : 1, sync: true }),
    );
  }

  started(url: string, settings: WorkerSettings, listen: string | undefined): void {
    this.#log.info(
      {
        event: "start",
        store: safeUrl(url),
        interval: formatDuration(settings.interval),
        takeoverAfter: formatDuration(settings.takeoverAfter),
        maxStep: formatDuration(settings.maxStep),
        failoverBound: formatDuration(settings.failoverBound),
        listen,
      },
      `globalclock running: ${describeSettings(settings)}`,
    );
  }

  /** Logs what changed since the previous status: the role, a takeover, a store error. */
  status(s: WorkerStatus): void {
    const last = this.#last;
    this.#last = s;
    if (s.role !== last?.role) {
      const fields = {
        event: "role",
        role: s.role,
        global: s.time?.toString(),
        takeovers: s.takeovers,
        conflicts: s.conflicts,
      };
      this.#log.info(fields, `role: ${s.role}`);
    }
    if (last && s.takeovers > last.takeovers) {
      this.#log.info(
        { event: "takeover", step: s.lastStep?.toString(), global: s.time?.toString() },
        "took over",
      );
    }
    if (s.errors > (last?.errors ?? 0)) {
      this.#log.warn(
        { event: "error", error: s.lastError, errors: s.errors },
        `store error: ${s.lastError}`,
      );
    }
  }

  /** On a terminal, redraws the status line until disposed; elsewhere does nothing. */
  statusLine(worker: UpdaterWorker, lag: LagMeter): Disposable {
    if (!this.#tty) return { [Symbol.dispose]() {} };
    const io = this.#io;
    const timer = setInterval(
      () => io.out(`\r\x1b[K${statusLine(worker.snapshot(), lag.read())}`),
      200,
    );
    return {
      [Symbol.dispose]() {
        clearInterval(timer);
        io.out("");
      },
    };
  }

  stopped(end: WorkerStatus): void {
    this.#log.info(
      { event: "stop", advances: end.advances, conflicts: end.conflicts, errors: end.errors },
      "stopped",
    );
  }
}

function statusLine(s: WorkerStatus, lag: Lag): string {
  const time = s.time === undefined ? "—" : formatGlobalTime(s.time);
  const age =
    lag.lastAdvanceAgeSeconds === undefined ? "—" : `${lag.lastAdvanceAgeSeconds.toFixed(1)}s ago`;
  return `${s.role.padEnd(8)} ${time}  lag ${lag.lagSeconds.toFixed(3)}s  last advance ${age}  advances ${s.advances} conflicts ${s.conflicts} errors ${s.errors}`;
}
