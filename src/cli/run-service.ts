import { Reader } from "../reader.js";
import { address, serve } from "../service/http.js";
import type { ClockStore } from "../store.js";
import type { UpdaterWorker, WorkerStatus } from "../worker.js";
import type { LagMeter } from "./lag.js";

/** The HTTP side of `run --listen`: /metrics, /healthz and /now. */
export interface DaemonService {
  /** HOST:PORT it listens on. */
  readonly address: string;
  /** Feeds a worker status into the metrics. */
  update(status: WorkerStatus): void;
  close(): Promise<void>;
}

/** Starts serving; resolves once listening, rejects if it cannot listen. */
export async function startService(
  listen: { host: string; port: number },
  worker: UpdaterWorker,
  store: ClockStore,
  lag: LagMeter,
): Promise<DaemonService> {
  // prom-client is loaded only when metrics are served: it is most of an idle daemon's memory.
  const { WorkerMetrics } = await import("../service/metrics.js");
  const details = () => lag.read();
  const metrics = new WorkerMetrics(worker, details);
  const server = await serve(listen, { worker, reader: new Reader(store), metrics, details });
  return {
    address: address(server),
    update: (status) => metrics.update(status),
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
