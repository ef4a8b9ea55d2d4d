/**
 * The servers the benchmark measures, started by the same harness the tests use: on
 * 127.0.0.1, free ports, temporary folders. A missing server binary is a loud skip (under
 * CI=true, a failure), never a quiet gap in the table.
 */
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { EtcdCluster, findEtcd } from "../test/helpers/etcd-server.js";
import { findPostgresBin, PostgresServer } from "../test/helpers/postgres-server.js";
import { track } from "./processes.js";

export function skip(reason: string): string {
  if (process.env.CI === "true")
    throw new Error(`required under CI=true but unavailable: ${reason}`);
  process.stderr.write(`\n!!! SKIPPED: ${reason}\n`);
  return reason;
}

/** Starts a PostgreSQL server, or says why it cannot. */
export async function startPostgres(): Promise<PostgresServer | string> {
  if (!findPostgresBin()) return skip("PostgreSQL is not installed (apt-get install postgresql)");
  return PostgresServer.start();
}

/** Starts an etcd cluster of `size` members, or says why it cannot. */
export async function startEtcd(size: number): Promise<EtcdCluster | string> {
  if (!findEtcd()) return skip("etcd is not installed (apt-get install etcd-server)");
  return EtcdCluster.start(size);
}

export async function postgresVersion(server: PostgresServer): Promise<string> {
  const client = await server.client();
  try {
    const res = await client.query<{ v: string }>("SELECT current_setting('server_version') AS v");
    return `PostgreSQL ${res.rows[0]?.v ?? "?"}`;
  } finally {
    await client.end();
  }
}

export async function etcdVersion(cluster: EtcdCluster): Promise<string> {
  const res = await fetch(`http://${cluster.endpoints[0]}/version`);
  const body = (await res.json()) as { etcdserver?: string };
  return `etcd ${body.etcdserver ?? "?"}`;
}

/** The MongoDB wire-protocol test double, in a child process. */
export async function startMongoDouble(
  replicaSet?: string,
): Promise<{ uri: string; stop: () => Promise<void> }> {
  const script = fileURLToPath(new URL("./mongo-double-server.ts", import.meta.url));
  const args = ["--import", "tsx", script, ...(replicaSet ? [replicaSet] : [])];
  const child = track(spawn(process.execPath, args, { stdio: ["pipe", "pipe", "inherit"] }));
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  const lines = createInterface({ input: child.stdout });
  const first = await new Promise<string>((resolve, reject) => {
    lines.once("line", resolve);
    child.once("exit", (code) => reject(new Error(`the MongoDB test double exited (${code})`)));
  });
  const { uri } = JSON.parse(first) as { uri: string };
  return {
    uri,
    stop: async () => {
      child.stdin.end();
      const timer = setTimeout(() => child.kill("SIGKILL"), 5000);
      await exited;
      clearTimeout(timer);
    },
  };
}

/** A temporary folder for SQLite files, removed by close(). */
export class Scratch {
  readonly dir = mkdtempSync(join(tmpdir(), "globalclock-bench-"));

  sqliteUrl(name: string): string {
    return `sqlite:${join(this.dir, `${name}.db`)}`;
  }

  path(name: string): string {
    return join(this.dir, `${name}.db`);
  }

  close(): void {
    rmSync(this.dir, { recursive: true, force: true });
  }
}
