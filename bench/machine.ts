/** The machine the figures come from, and how busy it was (it may be shared). */
import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import os from "node:os";
import Database from "better-sqlite3";

export interface Machine {
  cpus: number;
  cpuModel: string;
  memoryGb: number;
  os: string;
  node: string;
  commit: string | undefined;
  /** Engines and servers measured, by store. */
  stores: Record<string, string>;
  drivers: Record<string, string>;
}

function packageVersion(name: string): string {
  const file = new URL(`../node_modules/${name}/package.json`, import.meta.url);
  return (JSON.parse(readFileSync(file, "utf8")) as { version: string }).version;
}

export function sqliteVersion(): string {
  const db = new Database(":memory:");
  try {
    return `SQLite ${String(db.prepare("SELECT sqlite_version()").pluck().get())}`;
  } finally {
    db.close();
  }
}

export function describeMachine(stores: Record<string, string>): Machine {
  const git = spawnSync("git", ["rev-parse", "--short", "HEAD"], { encoding: "utf8" });
  return {
    cpus: os.availableParallelism(),
    cpuModel: os.cpus()[0]?.model.trim() ?? "unknown",
    memoryGb: Math.round((os.totalmem() / 2 ** 30) * 10) / 10,
    os: `${os.type()} ${os.release()}`,
    node: process.version,
    commit: git.status === 0 ? git.stdout.trim() : undefined,
    stores,
    drivers: Object.fromEntries(
      ["better-sqlite3", "pg", "etcd3", "mongodb"].map((n) => [n, packageVersion(n)]),
    ),
  };
}

/** Busy share of every CPU since the last call, from /proc/stat (the whole machine). */
export class CpuMeter {
  #last = CpuMeter.#read();

  static #read(): { idle: number; total: number } {
    const fields = readFileSync("/proc/stat", "utf8").split("\n")[0]?.trim().split(/\s+/).slice(1);
    const n = (fields ?? []).map(Number);
    const idle = (n[3] ?? 0) + (n[4] ?? 0); // idle + iowait
    return { idle, total: n.reduce((a, b) => a + b, 0) };
  }

  /** Share of CPU time (0..1) the machine spent busy since the previous call. */
  lap(): number {
    const now = CpuMeter.#read();
    const total = now.total - this.#last.total;
    const busy = total - (now.idle - this.#last.idle);
    this.#last = now;
    return total > 0 ? busy / total : 0;
  }
}

export interface Load {
  section: string;
  seconds: number;
  /** The whole machine's CPU busy share during the section, our own processes included. */
  cpuBusy: number;
  loadAverage1m: number;
}

/** Times sections and how busy the machine was during each. */
export class LoadLog {
  readonly entries: Load[] = [];
  readonly #meter = new CpuMeter();

  async section<T>(name: string, work: () => Promise<T>): Promise<T> {
    const start = performance.now();
    this.#meter.lap();
    try {
      return await work();
    } finally {
      this.entries.push({
        section: name,
        seconds: (performance.now() - start) / 1000,
        cpuBusy: this.#meter.lap(),
        loadAverage1m: os.loadavg()[0] ?? 0,
      });
    }
  }
}
