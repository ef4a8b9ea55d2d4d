/**
 * A resource guarded by fencing tokens, as docs/design.md ("Fencing tokens") describes: an HTTP server on
 * 127.0.0.1 that keeps the highest token it has seen and refuses writes with a lower one.
 * Every write is recorded with the time it arrived (CLOCK_MONOTONIC, comparable with the
 * times child processes print).
 */
import { type ChildProcess, spawn } from "node:child_process";
import { createServer, type Server } from "node:http";
import { fileURLToPath } from "node:url";
import { BIN } from "./daemon.js";

const WRITER = fileURLToPath(new URL("../fixtures/guarded-writer.ts", import.meta.url));

export interface Write {
  at: bigint;
  holder: string;
  token: bigint;
  pid: number;
  accepted: boolean;
}

export class GuardedResource {
  readonly writes: Write[] = [];
  highest = 0n;
  readonly #server: Server;
  port = 0;

  private constructor(server: Server) {
    this.#server = server;
  }

  static async start(): Promise<GuardedResource> {
    const server = createServer();
    const resource = new GuardedResource(server);
    server.on("request", (req, res) => {
      const url = new URL(req.url ?? "/", "http://x");
      const token = BigInt(url.searchParams.get("token") ?? "0");
      const accepted = token >= resource.highest;
      if (accepted) resource.highest = token;
      resource.writes.push({
        at: process.hrtime.bigint(),
        holder: url.searchParams.get("holder") ?? "",
        token,
        pid: Number(url.searchParams.get("pid") ?? 0),
        accepted,
      });
      res.writeHead(accepted ? 200 : 409).end();
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    const address = server.address();
    resource.port = typeof address === "object" && address ? address.port : 0;
    return resource;
  }

  close(): Promise<void> {
    return new Promise((resolve) => {
      this.#server.closeAllConnections();
      this.#server.close(() => resolve());
    });
  }
}

/** A span of real time a process acted in, or was paused (CLOCK_MONOTONIC ns). */
export interface Span {
  from: bigint;
  to: bigint;
}

export const overlaps = (a: Span, b: Span) => a.from < b.to && b.from < a.to;

/**
 * `globalclock lock job --ttl 3s --grace 1s --wait [flags…] --holder <holder> --` the
 * writer of ../fixtures/guarded-writer.ts, writing to `resource` for `runMs`, with
 * `writerFlags` (`--background`, `--ignore-term`). Its stderr is piped.
 */
export function lockedWriter(
  url: string,
  holder: string,
  resource: GuardedResource,
  runMs: string,
  { flags = [] as string[], writerFlags = [] as string[] } = {},
): ChildProcess {
  const lock = ["lock", "job", "--ttl", "3s", "--grace", "1s", "--wait", ...flags];
  const writer = ["--import", "tsx", WRITER, String(resource.port), runMs, ...writerFlags];
  return spawn(
    process.execPath,
    [BIN, "--store", url, ...lock, "--holder", holder, "--", process.execPath, ...writer],
    { stdio: ["ignore", "ignore", "pipe"] },
  );
}
