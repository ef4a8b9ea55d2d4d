import type { Server } from "node:http";
import { Leases } from "../leases/leases.js";
import { Reader } from "../reader.js";
import { type HealthJudge, operatorMessage } from "../service/health.js";
import { address, type ListenAddress, serve } from "../service/http.js";
import type { LeaseSeriesChoice } from "../service/lease-metrics.js";
import type { ClockStore } from "../store.js";
import type { UpdaterWorker, WorkerStatus } from "../worker.js";
import type { LagMeter } from "./lag.js";

/** The HTTP side of `run --listen`: /metrics, /healthz, /now and the live page. */
export interface DaemonService {
  /** HOST:PORT it listens on. */
  readonly address: string;
  readonly server: Server;
  /** Feeds a worker status into the metrics. */
  update(status: WorkerStatus): void;
  close(): Promise<void>;
}

/** What the daemon's endpoints read. */
export interface DaemonParts {
  worker: UpdaterWorker;
  store: ClockStore;
  lag: LagMeter;
  health: HealthJudge;
  /** Masks the store's passwords in a message. */
  mask: (text: string) => string;
  /** The store URL, which the live page shows only through safeUrl. */
  url?: string;
  /** Which leases get per-lease series in /metrics (none by default). */
  leaseSeries?: LeaseSeriesChoice;
}

/** Starts serving; resolves once listening, rejects if it cannot listen. */
export async function startService(
  listen: ListenAddress,
  parts: DaemonParts,
): Promise<DaemonService> {
  // prom-client is loaded only when metrics are served: it is most of an idle daemon's memory.
  const { WorkerMetrics } = await import("../service/metrics.js");
  const { worker, lag, mask } = parts;
  const { LiveState } = await import("../service/live.js");
  const { PAGE_HEADERS, PAGE_HTML } = await import("../service/page.js");
  const live = new LiveState({
    worker,
    settings: worker.settings,
    health: parts.health,
    store: parts.store,
    url: parts.url,
    mask,
  });
  const health = () => parts.health.judge(worker.snapshot());
  const metrics = new WorkerMetrics(worker, { lag: () => lag.read(), health });
  if (parts.store.leases) {
    const { leaseMetrics } = await import("../service/lease-metrics.js");
    const leases = new Leases(parts.store);
    leaseMetrics(metrics.registry, () => leases.list(""), { perLease: parts.leaseSeries });
  }
  const server = await serve(listen, {
    live: {
      page: { html: PAGE_HTML, headers: PAGE_HEADERS },
      state: () => live.json(),
      subscribe: (listener) => live.subscribe(listener),
    },
    reader: new Reader(parts.store),
    metrics: { text: () => metrics.text(), contentType: metrics.registry.contentType },
    mask,
    health: () => {
      const status = worker.snapshot();
      const judged = parts.health.judge(status);
      const reason = judged.reason === undefined ? undefined : mask(judged.reason);
      // In an operator's terms, as the reason is; the log keeps the error's own words.
      const lastError =
        status.lastError === undefined ? undefined : mask(operatorMessage(status.lastError));
      return {
        ok: judged.ok,
        body: { ...status, ...lag.read(), ...judged, reason, lastError },
      };
    },
  }).catch((err: unknown) => {
    live.close();
    throw err;
  });
  return {
    address: address(server),
    server,
    update: (status) => {
      metrics.update(status);
      live.update(status);
    },
    close: () =>
      new Promise<void>((resolve) => {
        live.close();
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
