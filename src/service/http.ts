import { lookup } from "node:dns/promises";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { ConfigError, describe, quote } from "../errors.js";
import type { Reader } from "../reader.js";
import { formatGlobalTime } from "../time.js";

/** Where to listen: a resolved address, and whether only this machine can reach it. */
export interface ListenAddress {
  readonly host: string;
  readonly port: number;
  readonly loopback: boolean;
}

/**
 * The server's bounds. The endpoints answer from memory in microseconds (only /now reads
 * the store), and their clients are a few scrapers and probes: a crowd of connections, or
 * one that sends its request slowly, is refused or cut off rather than allowed to eat the
 * memory and the event loop of the process that keeps the clock.
 */
export interface HttpLimits {
  /** Connections beyond this are closed as soon as they are accepted. */
  readonly maxConnections: number;
  /** The request's headers must arrive within this. */
  readonly headersTimeoutMs: number;
  /** The whole request must arrive within this. */
  readonly requestTimeoutMs: number;
  /** An idle kept-alive connection is closed after this. */
  readonly keepAliveTimeoutMs: number;
  /** How often the two timeouts above are checked (Node's default is 30 s). */
  readonly checkIntervalMs: number;
  /** Largest request headers, in bytes. */
  readonly maxHeaderSize: number;
}

export const HTTP_LIMITS: HttpLimits = Object.freeze({
  maxConnections: 128,
  headersTimeoutMs: 5_000,
  requestTimeoutMs: 10_000,
  keepAliveTimeoutMs: 5_000,
  checkIntervalMs: 1_000,
  maxHeaderSize: 8_192,
});

/** `PORT`, `HOST:PORT` or `[V6]:PORT`; a bare port listens on loopback. */
export function parseListen(text: string): { host: string; port: number } {
  const m = /^(?:(\[[0-9a-f:.]+\]|[^:\s]+):)?(\d{1,5})$/i.exec(text.trim());
  const port = Number(m?.[2]);
  if (!m || port > 65535) {
    throw new ConfigError(
      "listen",
      `invalid --listen ${quote(text)}: use PORT or HOST:PORT, e.g. 127.0.0.1:9464`,
    );
  }
  return { host: (m[1] ?? "127.0.0.1").replace(/^\[|\]$/g, ""), port };
}

/** Resolves --listen's host to one address (a ConfigError if it does not resolve). */
export async function resolveListen(text: string): Promise<ListenAddress> {
  const { host, port } = parseListen(text);
  let address: string;
  try {
    address = (await lookup(host, { verbatim: true })).address;
  } catch (err) {
    throw new ConfigError(
      "listen",
      `invalid --listen ${quote(text)}: cannot resolve host ${quote(host)} (${describe(err)})`,
    );
  }
  const loopback = /^127\./.test(address) || address === "::1" || /^::ffff:127\./i.test(address);
  return { host: address, port, loopback };
}

export interface ServiceEndpoints {
  reader: Reader;
  /** The Prometheus text and its content type. */
  metrics: { text(): Promise<string>; readonly contentType: string };
  /** Whether this daemon is healthy, and the JSON body /healthz shows. */
  health: () => { ok: boolean; body: Record<string, unknown> };
  /** Masks the store's passwords in an error message. */
  mask: (text: string) => string;
}

const json = (value: unknown) =>
  JSON.stringify(value, (_k, v) => (typeof v === "bigint" ? v.toString() : v));

/** Serves /metrics (Prometheus text), /healthz and /now (JSON). Resolves once listening. */
export async function serve(
  listen: { host: string; port: number },
  e: ServiceEndpoints,
  limits: Partial<HttpLimits> = {},
): Promise<Server> {
  const l = { ...HTTP_LIMITS, ...limits };
  const server = createServer(
    {
      headersTimeout: l.headersTimeoutMs,
      requestTimeout: l.requestTimeoutMs,
      keepAliveTimeout: l.keepAliveTimeoutMs,
      connectionsCheckingInterval: l.checkIntervalMs,
      maxHeaderSize: l.maxHeaderSize,
    },
    async (req, res) => {
      try {
        const path = (req.url ?? "/").split("?")[0];
        if (req.method !== "GET" && req.method !== "HEAD") {
          res.writeHead(405, { allow: "GET, HEAD" }).end();
        } else if (path === "/metrics") {
          const body = await e.metrics.text();
          res.writeHead(200, { "content-type": e.metrics.contentType }).end(body);
        } else if (path === "/healthz") {
          const { ok, body } = e.health();
          res
            .writeHead(ok ? 200 : 503, { "content-type": "application/json" })
            .end(json({ ok, ...body }));
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
        if (res.headersSent) return void res.destroy();
        res
          .writeHead(503, { "content-type": "application/json" })
          .end(json({ error: e.mask(describe(err)) }));
      }
    },
  );
  server.maxConnections = l.maxConnections;
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(listen.port, listen.host, () => {
      server.off("error", reject);
      // Once listening, an error is a connection that could not be accepted (EMFILE): that
      // client is refused, and the clock must not stop over it.
      server.on("error", () => {});
      resolve();
    });
  });
  return server;
}

export function address(server: Server): string {
  const a = server.address() as AddressInfo;
  return a.family === "IPv6" ? `[${a.address}]:${a.port}` : `${a.address}:${a.port}`;
}
