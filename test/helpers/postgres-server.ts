/**
 * Starts a real PostgreSQL server for tests, from the system binaries (the newest
 * /usr/lib/postgresql/<version>/bin), on 127.0.0.1 and a free port, in a temporary folder
 * that close() removes. initdb and postgres refuse to run as root, so when the tests run
 * as root they run as the `postgres` user (or `nobody`), owning the temporary folder.
 */
import type { ChildProcess } from "node:child_process";
import { spawnSync } from "node:child_process";
import {
  chownSync,
  existsSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pg from "pg";
import { freePort, spawnServer, stopProcess } from "./server-process.js";

/** The newest installed PostgreSQL's bin folder, or undefined when there is none. */
export function findPostgresBin(): string | undefined {
  const root = "/usr/lib/postgresql";
  if (!existsSync(root)) return undefined;
  const versions = readdirSync(root)
    .filter(
      (v) =>
        existsSync(join(root, v, "bin", "postgres")) && existsSync(join(root, v, "bin", "initdb")),
    )
    .sort((a, b) => Number.parseFloat(b) - Number.parseFloat(a));
  return versions[0] === undefined ? undefined : join(root, versions[0], "bin");
}

/** uid and gid to run the server as: ourselves, or an unprivileged user when we are root. */
function serverIdentity(): { uid: number; gid: number } | undefined {
  if (process.getuid?.() !== 0) return undefined;
  const passwd = readFileSync("/etc/passwd", "utf8").split("\n");
  for (const name of ["postgres", "nobody"]) {
    const fields = passwd.find((line) => line.startsWith(`${name}:`))?.split(":");
    if (fields?.[2] && fields[3]) return { uid: Number(fields[2]), gid: Number(fields[3]) };
  }
  throw new Error("running as root, and there is no postgres or nobody user to run PostgreSQL as");
}

export class PostgresServer {
  readonly user = "globalclock";
  readonly password = "s3cret-Pässword";
  readonly port: number;
  readonly #bin: string;
  readonly #dir: string;
  readonly #identity: { uid: number; gid: number } | undefined;
  #proc: { child: ChildProcess; exited: Promise<unknown>; log: () => string } | undefined;

  private constructor(bin: string, dir: string, port: number) {
    this.#bin = bin;
    this.#dir = dir;
    this.port = port;
    this.#identity = serverIdentity();
  }

  /** initdb (password auth over TCP), then start the server. */
  static async start(): Promise<PostgresServer> {
    const bin = findPostgresBin();
    if (!bin) throw new Error("PostgreSQL is not installed (apt-get install postgresql)");
    const dir = mkdtempSync(join(tmpdir(), "globalclock-pg-"));
    const server = new PostgresServer(bin, dir, await freePort());
    try {
      server.#initdb();
      await server.start();
    } catch (err) {
      await server.close();
      throw err;
    }
    return server;
  }

  /** A URL for `database` with the right password, plus extra query options. */
  url(database = "postgres", query = ""): string {
    const password = encodeURIComponent(this.password);
    return `postgres://${this.user}:${password}@127.0.0.1:${this.port}/${database}${query ? `?${query}` : ""}`;
  }

  /** A raw pg client, for planting data behind the store's back. */
  async client(database = "postgres"): Promise<pg.Client> {
    const client = new pg.Client({ connectionString: this.url(database) });
    await client.connect();
    return client;
  }

  /** Starts (or restarts) the server on its data folder and port. */
  async start(): Promise<void> {
    if (this.#proc && this.#proc.child.exitCode === null && this.#proc.child.signalCode === null)
      return;
    const proc = spawnServer(
      join(this.#bin, "postgres"),
      [
        "-D",
        join(this.#dir, "data"),
        "-p",
        String(this.port),
        "-c",
        "listen_addresses=127.0.0.1",
        "-c",
        `unix_socket_directories=${this.#dir}`,
      ],
      {
        name: "postgres",
        readyLine: /database system is ready to accept connections/,
        ...this.#identity,
        env: { PATH: process.env.PATH ?? "/usr/bin:/bin", LANG: "C" },
      },
    );
    this.#proc = proc;
    await proc.ready;
  }

  /** Stops the server: "fast" (SIGINT, clean) or "immediate" (SIGQUIT, crash-like). */
  async stop(mode: "fast" | "immediate" = "fast"): Promise<void> {
    if (!this.#proc) return;
    await stopProcess(this.#proc.child, this.#proc.exited, mode === "fast" ? "SIGINT" : "SIGQUIT");
  }

  async restart(mode: "fast" | "immediate" = "fast"): Promise<void> {
    await this.stop(mode);
    await this.start();
  }

  log(): string {
    return this.#proc?.log() ?? "";
  }

  async close(): Promise<void> {
    await this.stop("immediate");
    rmSync(this.#dir, { recursive: true, force: true });
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  #initdb(): void {
    const pwfile = join(this.#dir, "pw");
    writeFileSync(pwfile, `${this.password}\n`);
    if (this.#identity) {
      chownSync(this.#dir, this.#identity.uid, this.#identity.gid);
      chownSync(pwfile, this.#identity.uid, this.#identity.gid);
    }
    const run = spawnSync(
      join(this.#bin, "initdb"),
      [
        "-D",
        join(this.#dir, "data"),
        "-U",
        this.user,
        `--pwfile=${pwfile}`,
        "--auth-local=trust",
        "--auth-host=scram-sha-256",
        "--encoding=UTF8",
        "--no-locale",
        "--no-sync",
      ],
      {
        ...this.#identity,
        env: { PATH: process.env.PATH ?? "/usr/bin:/bin", LANG: "C" },
        encoding: "utf8",
      },
    );
    if (run.status !== 0)
      throw new Error(`initdb failed (${run.status ?? run.error}):\n${run.stdout}\n${run.stderr}`);
  }
}
