import { lookup } from "node:dns/promises";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
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
  /** The live page (GET /), its state (GET /api/state) and its pushes (GET /api/events). */
  live?: LiveEndpoints;
}

/** What the live page's three paths serve. */
export interface LiveEndpoints {
  /** The page and the headers it is served with (its Content-Security-Policy). */
  page: { readonly html: string; readonly headers: Readonly<Record<string, string>> };
  /** The state as JSON. */
  state(): string;
  /** Calls `listener` with the state's JSON at each change; returns the unsubscribe. */
  subscribe(listener: (json: string) => void): () => void;
}

/**
 * Event streams open at once, across clients: each holds a connection (of maxConnections)
 * for as long as a page is open. More are answered 503.
 */
export const MAX_EVENT_STREAMS = 16;

/** A comment line sent on an idle event stream, so that proxies and browsers keep it. */
export const EVENT_HEARTBEAT_MS = 15_000;

const json = (value: unknown) =>
  JSON.stringify(value, (_k, v) => (typeof v === "bigint" ? v.toString() : v));

/**
 * Serves /metrics (Prometheus text), /healthz and /now (JSON), and with `live` the page
 * (/), /api/state and /api/events. Resolves once listening.
 */
export async function serve(
  listen: { host: string; port: number },
  e: ServiceEndpoints,
  limits: Partial<HttpLimits> = {},
): Promise<Server> {
  const l = { ...HTTP_LIMITS, ...limits };
  const streams = { open: 0 };
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
        } else if (e.live && path === "/") {
          res.writeHead(200, e.live.page.headers).end(e.live.page.html);
        } else if (e.live && path === "/api/state") {
          res
            .writeHead(200, { ...NO_STORE, "content-type": "application/json" })
            .end(e.live.state());
        } else if (e.live && path === "/api/events") {
          streamEvents(req, res, e.live, streams);
        } else if (path === "/now") {
          const time = await e.reader.now(AbortSignal.timeout(5000));
          res
            .writeHead(200, { "content-type": "application/json" })
            .end(json({ time: formatGlobalTime(time), ns: time }));
        } else {
          res
            .writeHead(404, { "content-type": "application/json" })
            .end(json({ error: "not found", paths: e.live ? [...PATHS, ...LIVE_PATHS] : PATHS }));
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

const PATHS = ["/metrics", "/healthz", "/now"];
const LIVE_PATHS = ["/", "/api/state", "/api/events"];
const NO_STORE = { "cache-control": "no-store", "x-content-type-options": "nosniff" };

/**
 * Server-sent events: the state at once, then at each change. A client that reads slowly
 * gets the newest state when it has taken the last one, never a backlog.
 */
function streamEvents(
  req: IncomingMessage,
  res: ServerResponse,
  live: LiveEndpoints,
  streams: { open: number },
): void {
  if (streams.open >= MAX_EVENT_STREAMS) {
    res
      .writeHead(503, { ...NO_STORE, "content-type": "application/json", "retry-after": "10" })
      .end(json({ error: `too many event streams open (${MAX_EVENT_STREAMS})` }));
    return;
  }
  res.writeHead(200, {
    ...NO_STORE,
    "content-type": "text/event-stream; charset=utf-8",
    connection: "keep-alive",
  });
  if (req.method === "HEAD") return void res.end();
  streams.open++;
  let waiting: string | undefined;
  let blocked = false;
  const send = (data: string) => {
    if (blocked) {
      waiting = data;
      return;
    }
    blocked = !res.write(data);
  };
  res.on("drain", () => {
    blocked = false;
    const data = waiting;
    waiting = undefined;
    if (data !== undefined) send(data);
  });
  const event = (state: string) => send(`event: state\ndata: ${state}\n\n`);
  send("retry: 2000\n\n");
  event(live.state());
  const unsubscribe = live.subscribe(event);
  const heartbeat = setInterval(() => send(": heartbeat\n\n"), EVENT_HEARTBEAT_MS);
  heartbeat.unref();
  res.once("close", () => {
    streams.open--;
    clearInterval(heartbeat);
    unsubscribe();
  });
}

export function address(server: Server): string {
  const a = server.address() as AddressInfo;
  return a.family === "IPv6" ? `[${a.address}]:${a.port}` : `${a.address}:${a.port}`;
}
