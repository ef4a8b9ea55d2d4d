/**
 * Starts real etcd servers (Debian's `etcd-server`, /usr/bin/etcd) for tests: one member or
 * a cluster, on 127.0.0.1 and free ports, in a temporary folder that close() removes.
 */
import type { ChildProcess } from "node:child_process";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { freePort, spawnServer, stopProcess } from "./server-process.js";

const CANDIDATES = [process.env.ETCD_BIN, "/usr/bin/etcd", "/usr/local/bin/etcd"];

/** The etcd binary, or undefined when none is installed. */
export function findEtcd(): string | undefined {
  return CANDIDATES.find((p): p is string => !!p && existsSync(p));
}

interface Member {
  name: string;
  clientPort: number;
  peerPort: number;
  dataDir: string;
  proc?: { child: ChildProcess; exited: Promise<unknown>; log: () => string };
}

export class EtcdCluster {
  readonly #bin: string;
  readonly #dir: string;
  readonly #members: Member[];
  readonly #token: string;

  private constructor(bin: string, dir: string, members: Member[]) {
    this.#bin = bin;
    this.#dir = dir;
    this.#members = members;
    this.#token = `globalclock-test-${process.pid}-${Date.now()}`;
  }

  /** Starts `size` members and waits until the cluster has a leader. */
  static async start(size = 1): Promise<EtcdCluster> {
    const bin = findEtcd();
    if (!bin) throw new Error("etcd is not installed (apt-get install etcd-server)");
    const dir = mkdtempSync(join(tmpdir(), "globalclock-etcd-"));
    const members: Member[] = [];
    for (let i = 0; i < size; i++) {
      members.push({
        name: `m${i}`,
        clientPort: await freePort(),
        peerPort: await freePort(),
        dataDir: join(dir, `m${i}`),
      });
    }
    const cluster = new EtcdCluster(bin, dir, members);
    try {
      await Promise.all(members.map((_, i) => cluster.start(i)));
      await cluster.waitHealthy();
    } catch (err) {
      await cluster.close();
      throw err;
    }
    return cluster;
  }

  get size(): number {
    return this.#members.length;
  }

  /** `host:port` of every member's client endpoint. */
  get endpoints(): string[] {
    return this.#members.map((m) => `127.0.0.1:${m.clientPort}`);
  }

  /** An `etcd://` URL naming every member, with extra query options. */
  url(query = ""): string {
    return `etcd://${this.endpoints.join(",")}${query ? `?${query}` : ""}`;
  }

  /** (Re)starts member `i` on its data folder. */
  async start(i: number): Promise<void> {
    const m = this.#member(i);
    if (m.proc && m.proc.child.exitCode === null && m.proc.child.signalCode === null) return;
    const initial = this.#members.map((x) => `${x.name}=http://127.0.0.1:${x.peerPort}`).join(",");
    const client = `http://127.0.0.1:${m.clientPort}`;
    const peer = `http://127.0.0.1:${m.peerPort}`;
    const proc = spawnServer(
      this.#bin,
      [
        `--name=${m.name}`,
        `--data-dir=${m.dataDir}`,
        `--listen-client-urls=${client}`,
        `--advertise-client-urls=${client}`,
        `--listen-peer-urls=${peer}`,
        `--initial-advertise-peer-urls=${peer}`,
        `--initial-cluster=${initial}`,
        `--initial-cluster-token=${this.#token}`,
        "--initial-cluster-state=new", // ignored once the data folder exists
        "--logger=zap",
        "--log-outputs=stderr",
      ],
      { name: `etcd ${m.name}`, readyLine: /serving client|ready to serve client/i },
    );
    m.proc = proc;
    await proc.ready;
  }

  /** Sends `signal` (SIGKILL by default) to member `i` and waits for it to exit. */
  async kill(i: number, signal: NodeJS.Signals = "SIGKILL"): Promise<void> {
    const m = this.#member(i);
    if (m.proc) await stopProcess(m.proc.child, m.proc.exited, signal);
  }

  /** The index of the current leader, asking each live member; waits until one is known. */
  async leader(timeoutMs = 15_000): Promise<number> {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      for (let i = 0; i < this.#members.length; i++) {
        const status = await this.#status(i);
        if (status && status.leader !== "0" && status.leader === status.header.member_id) return i;
      }
      await new Promise((r) => setTimeout(r, 50));
    }
    throw new Error(`no etcd leader within ${timeoutMs} ms`);
  }

  /** Waits until every running member reports itself healthy (it sees a leader). */
  async waitHealthy(timeoutMs = 30_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (let i = 0; i < this.#members.length; i++) {
      const m = this.#member(i);
      if (!m.proc || m.proc.child.exitCode !== null || m.proc.child.signalCode !== null) continue;
      for (;;) {
        try {
          const res = await fetch(`http://127.0.0.1:${m.clientPort}/health`, {
            signal: AbortSignal.timeout(1000),
          });
          const body = (await res.json()) as { health?: string };
          if (body.health === "true") break;
        } catch {}
        if (Date.now() > deadline)
          throw new Error(`etcd ${m.name} is not healthy:\n${m.proc?.log() ?? ""}`);
        await new Promise((r) => setTimeout(r, 50));
      }
    }
  }

  /** The last lines each member wrote, for a failing test's message. */
  logs(): string {
    return this.#members.map((m) => `--- ${m.name}\n${m.proc?.log() ?? ""}`).join("\n");
  }

  async close(): Promise<void> {
    // The data is thrown away: no need for a graceful (and, in a cluster, slow) shutdown.
    await Promise.all(this.#members.map((_, i) => this.kill(i, "SIGKILL")));
    rmSync(this.#dir, { recursive: true, force: true });
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  async #status(i: number): Promise<{ leader: string; header: { member_id: string } } | undefined> {
    try {
      const res = await fetch(
        `http://127.0.0.1:${this.#member(i).clientPort}/v3/maintenance/status`,
        {
          method: "POST",
          body: "{}",
          signal: AbortSignal.timeout(500),
        },
      );
      return (await res.json()) as { leader: string; header: { member_id: string } };
    } catch {
      return undefined;
    }
  }

  #member(i: number): Member {
    const m = this.#members[i];
    if (!m) throw new Error(`no etcd member ${i}`);
    return m;
  }
}
