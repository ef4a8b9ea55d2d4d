import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { ConfigError } from "../errors.js";
import type { Reader } from "../reader.js";
import { formatGlobalTime } from "../time.js";
import type { UpdaterWorker } from "../worker.js";
import type { WorkerMetrics } from "./metrics.js";

/** `PORT`, `HOST:PORT` or `[V6]:PORT`; a bare port listens on loopback. */
export function parseListen(text: string): { host: string; port: number } {
  const m = /^(?:(\[[0-9a-f:.]+\]|[^:\s]+):)?(\d{1,5})$/i.exec(text.trim());
  const port = Number(m?.[2]);
  if (!m || port > 65535) {
    throw new ConfigError(
      "listen",
      `invalid --listen ${JSON.stringify(text)}: use PORT or HOST:PORT, e.g. 127.0.0.1:9464`,
    );
  }
  return { host: (m[1] ?? "127.0.0.1").replace(/^\[|\]$/g, ""), port };
}

export interface ServiceEndpoints {
  worker: UpdaterWorker;
  reader: Reader;
  metrics: WorkerMetrics;
  /** Extra fields for /healthz (lag, ages). */
  details: () => Record<string, unknown>;
}

const json = (value: unknown) =>
  JSON.stringify(value, (_k, v) => (typeof v === "bigint" ? v.toString() : v));

/** Serves /metrics (Prometheus text), /healthz and /now (JSON). Resolves once listening. */
export async function serve(
  listen: { host: string; port: number },
  e: ServiceEndpoints,
): Promise<Server> {
  const server = createServer(async (req, res) => {
    try {
      const path = (req.url ?? "/").split("?")[0];
      if (req.method !== "GET" && req.method !== "HEAD") {
        res.writeHead(405, { allow: "GET, HEAD" }).end();
      } else if (path === "/metrics") {
        const body = await e.metrics.registry.metrics();
        res.writeHead(200, { "content-type": e.metrics.registry.contentType }).end(body);
      } else if (path === "/healthz") {
        const status = e.worker.snapshot();
        const ok = status.role === "active" || status.role === "standby";
        res
          .writeHead(ok ? 200 : 503, { "content-type": "application/json" })
          .end(json({ ok, ...status, ...e.details() }));
      } else if (path === "/now") {
        const time = await e.reader.now(AbortSignal.timeout(5000));
        res
          .writeHead(200, { "content-type": "application/json" })
          .end(json({ time: formatGlobalTime(time), ns: time }));
      } else {
        res
          .writeHead(404, { "content-type": "application/json" })
          .end(json({ error: "not found", paths: ["/metrics", "/healthz", "/now"] }));
      }
    } catch (err) {
      res
        .writeHead(503, { "content-type": "application/json" })
        .end(json({ error: String(err instanceof Error ? err.message : err) }));
    }
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(listen.port, listen.host, () => {
      server.off("error", reject);
      resolve();
    });
  });
  return server;
}

export function address(server: Server): string {
  const a = server.address() as AddressInfo;
  return a.family === "IPv6" ? `[${a.address}]:${a.port}` : `${a.address}:${a.port}`;
}
