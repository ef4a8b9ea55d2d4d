import { type Logger, pino } from "pino";
import { formatDuration } from "../duration.js";
import { safeUrl } from "../errors.js";
import { formatGlobalTime } from "../time.js";
import type { UpdaterWorker, WorkerStatus } from "../worker.js";
import { describeSettings, type WorkerSettings } from "../worker-settings.js";
import type { Io } from "./io.js";
import type { Lag, LagMeter } from "./lag.js";

type Level = "info" | "warn" | "error";
type Fields = Record<string, unknown>;

export interface DaemonLogOptions {
  /** JSON lines even on a terminal. */
  json?: boolean;
  /** Masks the store's passwords in a message. */
  mask: (text: string) => string;
}

const CLEAR_LINE = "\r\x1b[K";
const LABELS: Record<Level, string> = {
  info: "INFO ",
  warn: "\x1b[33mWARN\x1b[0m ",
  error: "\x1b[31mERROR\x1b[0m",
};

/**
 * What `run` tells its operator. Not on a terminal (or with --json): JSON lines (pino) on
 * stdout. On a terminal: readable lines on stderr, and a status line on stdout redrawn in
 * place, cleared before each log line and drawn again after it.
 */
export class DaemonLog {
  readonly #io: Io;
  readonly #mask: (text: string) => string;
  readonly #pino: Logger | undefined;
  #last: WorkerStatus | undefined;
  /** The status line on screen, if one is drawn. */
  #line: string | undefined;

  constructor(io: Io, options: DaemonLogOptions) {
    this.#io = io;
    this.#mask = options.mask;
    const tty = io.tty === true && !options.json;
    this.#pino = tty
      ? undefined
      : pino(
          { base: { pid: process.pid }, timestamp: pino.stdTimeFunctions.isoTime },
          { write: (text: string) => io.out(text.replace(/\n$/, "")) },
        );
  }

  started(url: string, settings: WorkerSettings, listen: string | undefined): void {
    const where = listen
      ? `; serving the live page at http://${listen}/, and /metrics, /healthz and /now`
      : "";
    this.#log(
      "info",
      {
        event: "start",
        store: safeUrl(url),
        interval: formatDuration(settings.interval),
        takeoverAfter: formatDuration(settings.takeoverAfter),
        maxStep: formatDuration(settings.maxStep),
        failoverBound: formatDuration(settings.failoverBound),
        listen,
      },
      `globalclock running on ${safeUrl(url)}: ${describeSettings(settings)}${where}`,
    );
  }

  /** A warning the operator should read, e.g. an endpoint open to the network. */
  warn(event: string, message: string): void {
    this.#log("warn", { event }, message);
  }

  /** Logs what changed since the previous status: the role, a takeover, a store error. */
  status(s: WorkerStatus): void {
    const last = this.#last;
    this.#last = s;
    if (s.role !== last?.role) {
      const at = s.time === undefined ? "" : ` at ${formatGlobalTime(s.time)}`;
      this.#log(
        "info",
        {
          event: "role",
          role: s.role,
          global: s.time?.toString(),
          takeovers: s.takeovers,
          conflicts: s.conflicts,
        },
        `role: ${s.role}${at}`,
      );
    }
    if (last && s.takeovers > last.takeovers) {
      this.#log(
        "info",
        { event: "takeover", step: s.lastStep?.toString(), global: s.time?.toString() },
        `took over, advancing by ${formatDuration(s.lastStep ?? 0n)}`,
      );
    }
    if (s.regressions > (last?.regressions ?? 0) && s.lastRegression) {
      const { from, to } = s.lastRegression;
      this.#log(
        "error",
        {
          event: "regression",
          from: from.toString(),
          to: to.toString(),
          regressions: s.regressions,
        },
        `the stored time went back from ${formatGlobalTime(from)} (${from} ns) to ${formatGlobalTime(to)} (${to} ns), ${formatDuration(from - to)} earlier: a restored backup, a rollback or a manual edit; the clock goes on from the lower time once it has stood still for takeoverAfter`,
      );
    }
    if (s.errors > (last?.errors ?? 0)) {
      const error = this.#mask(s.lastError ?? "unknown error");
      const missing = s.recordMissing > (last?.recordMissing ?? 0);
      // What may mend by itself (a lost connection, a timeout) is a warning; what needs an
      // operator (a wrong password, a missing privilege, a deleted record) is an error.
      this.#log(
        missing || s.lastErrorRetryable === false ? "error" : "warn",
        {
          event: missing ? "record-missing" : "error",
          error,
          errorName: s.lastErrorName,
          errors: s.errors,
        },
        missing ? `the clock record is missing: ${error}` : `store error: ${error}`,
      );
    }
  }

  /** On a terminal, redraws the status line until disposed; elsewhere does nothing. */
  statusLine(worker: UpdaterWorker, lag: LagMeter): Disposable {
    const write = this.#io.write;
    if (this.#pino || !write) return { [Symbol.dispose]() {} };
    const draw = () => {
      const width = this.#io.columns?.() || 120; // 0 where the terminal has no size yet
      this.#line = statusLine(worker.snapshot(), lag.read()).slice(0, Math.max(width - 1, 20));
      write(`${CLEAR_LINE}${this.#line}`);
    };
    draw();
    const timer = setInterval(draw, 200);
    return {
      [Symbol.dispose]: () => {
        clearInterval(timer);
        this.#line = undefined;
        write("\n");
      },
    };
  }

  stopped(end: WorkerStatus): void {
    this.#log(
      "info",
      { event: "stop", advances: end.advances, conflicts: end.conflicts, errors: end.errors },
      `stopped after ${end.advances} advances, ${end.conflicts} conflicts, ${end.errors} errors`,
    );
  }

  #log(level: Level, fields: Fields, message: string): void {
    if (this.#pino) {
      this.#pino[level](fields, message);
      return;
    }
    const write = this.#io.write;
    if (this.#line !== undefined) write?.(CLEAR_LINE);
    const time = new Date().toISOString().slice(11, 23);
    this.#io.err(`${time} ${LABELS[level]} ${message}`);
    if (this.#line !== undefined) write?.(this.#line);
  }
}

function statusLine(s: WorkerStatus, lag: Lag): string {
  const time = s.time === undefined ? "—" : formatGlobalTime(s.time);
  const age =
    lag.lastAdvanceAgeSeconds === undefined ? "—" : `${lag.lastAdvanceAgeSeconds.toFixed(1)}s ago`;
  return `${s.role.padEnd(8)} ${time}  lag ${lag.lagSeconds.toFixed(3)}s  last advance ${age}  advances ${s.advances} conflicts ${s.conflicts} errors ${s.errors}`;
}
