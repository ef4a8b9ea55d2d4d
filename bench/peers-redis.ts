/**
 * A Redis server for the peers part only (it is no store of globalclock's): Debian's
 * redis-server on 127.0.0.1, a free port, a temporary folder, in memory (`--save ""
 * --appendonly no`: nothing reaches the disk), stopped by its pid. Also node-redlock 4 and
 * ioredis 4, which ship no types: the little of them used here, typed by hand.
 */
import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { createRequire } from "node:module";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { track } from "./processes.js";

export const REDIS_SERVER = "/usr/bin/redis-server";

export interface RedisClient {
  ping(): Promise<string>;
  quit(): Promise<unknown>;
  disconnect(): void;
}

export interface RedlockLock {
  readonly value: string;
  readonly expiration: number;
  unlock(): Promise<void>;
  extend(ttlMs: number): Promise<RedlockLock>;
}

export interface RedlockOptions {
  driftFactor?: number;
  retryCount?: number;
  retryDelay?: number;
  retryJitter?: number;
}

export interface Redlock {
  lock(resource: string, ttlMs: number): Promise<RedlockLock>;
  on(event: "clientError", listener: (err: Error) => void): void;
}

interface RedlockModule {
  new (clients: RedisClient[], options?: RedlockOptions): Redlock;
  LockError: new (...args: never[]) => Error;
}

type RedisModule = new (options: {
  host: string;
  port: number;
  lazyConnect?: boolean;
  maxRetriesPerRequest?: number;
}) => RedisClient;

const require = createRequire(import.meta.url);

/** node-redlock 4's defaults, as its source (redlock.js) sets them. */
export const REDLOCK_DEFAULTS = Object.freeze({
  driftFactor: 0.01,
  retryCount: 10,
  retryDelay: 200,
  retryJitter: 200,
});

export function redisClient(port: number): RedisClient {
  const Redis = require("ioredis") as RedisModule;
  return new Redis({ host: "127.0.0.1", port, maxRetriesPerRequest: 1 });
}

export function redlockOn(clients: RedisClient[], options?: RedlockOptions): Redlock {
  const RedlockClass = require("redlock") as RedlockModule;
  return new RedlockClass(clients, options);
}

/** Whether `err` is redlock's "could not lock in its retries". */
export function isLockError(err: unknown): boolean {
  const RedlockClass = require("redlock") as RedlockModule;
  return err instanceof RedlockClass.LockError;
}

export function redisVersion(): string {
  const text = execFileSync(REDIS_SERVER, ["--version"], { encoding: "utf8" });
  return `Redis ${/v=(\S+)/.exec(text)?.[1] ?? "?"}`;
}

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const address = server.address();
  await new Promise((resolve) => server.close(resolve));
  if (!address || typeof address === "string") throw new Error("no free port");
  return address.port;
}

export class RedisServer {
  readonly port: number;
  readonly version: string;
  readonly #child: ChildProcess;
  readonly #dir: string;
  readonly #exited: Promise<void>;

  private constructor(port: number, child: ChildProcess, dir: string) {
    this.port = port;
    this.#child = child;
    this.#dir = dir;
    this.version = redisVersion();
    this.#exited = new Promise((resolve) => {
      if (child.exitCode !== null || child.signalCode !== null) resolve();
      else child.once("exit", () => resolve());
    });
  }

  static async start(): Promise<RedisServer> {
    const dir = mkdtempSync(join(tmpdir(), "globalclock-redis-"));
    const port = await freePort();
    const args = [
      ...["--port", String(port), "--bind", "127.0.0.1", "--dir", dir],
      ...["--save", "", "--appendonly", "no", "--daemonize", "no"],
    ];
    const child = track(spawn(REDIS_SERVER, args, { stdio: ["ignore", "pipe", "pipe"] }));
    let output = "";
    child.stdout?.on("data", (d) => {
      output += d;
    });
    child.stderr?.on("data", (d) => {
      output += d;
    });
    const server = new RedisServer(port, child, dir);
    const deadline = Date.now() + 10_000;
    while (!output.includes("Ready to accept connections")) {
      if (child.exitCode !== null || Date.now() > deadline) {
        await server.stop();
        throw new Error(`redis-server did not start:\n${output.slice(-1000)}`);
      }
      await new Promise((r) => setTimeout(r, 20));
    }
    return server;
  }

  get pid(): number | undefined {
    return this.#child.pid;
  }

  async stop(): Promise<void> {
    if (this.#child.exitCode === null && this.#child.signalCode === null) {
      this.#child.kill("SIGTERM");
      const timer = setTimeout(() => this.#child.kill("SIGKILL"), 5000);
      await this.#exited;
      clearTimeout(timer);
    }
    rmSync(this.#dir, { recursive: true, force: true });
  }
}

/** Starts the in-memory Redis, or says loudly why it cannot (skip() throws under CI=true). */
export async function startRedis(skip: (reason: string) => string): Promise<RedisServer | string> {
  if (!existsSync(REDIS_SERVER))
    return skip(`redis-server is not installed at ${REDIS_SERVER} (apt-get install redis-server)`);
  return RedisServer.start();
}
