/** What every part of the benchmark shares: the mode's sizes, the servers, a log. */
import type { EtcdCluster } from "../test/helpers/etcd-server.js";
import type { PostgresServer } from "../test/helpers/postgres-server.js";
import type { Scratch } from "./servers.js";

/** The multi-process parts run on the stores a fleet of daemons can share. */
export type SharedStore = "sqlite" | "postgres" | "etcd";
/** The handover also runs on the MongoDB test double, as a one-member replica set. */
export type HandoverStore = SharedStore | "mongodb";
/** The idle daemon's memory is read on the MongoDB test double too (a one-member replica set). */
export type MemoryStore = SharedStore | "mongodb";

export interface Mode {
  readonly name: "full" | "quick";
  /** Side-by-side rounds per side, and their length. */
  readonly rounds: number;
  readonly roundMs: number;
  /**
   * The leases part's warm-up per side: a new connection and code not yet optimised run
   * slower for a second or so, and a lease operation takes two round trips.
   */
  readonly leaseWarmMs: number;
  readonly contentionMs: number;
  readonly contentionWorkers: readonly number[];
  readonly contentionStores: readonly SharedStore[];
  readonly kills: number;
  readonly failoverStores: readonly SharedStore[];
  /** Leader stops (SIGTERM) and as many kills (SIGKILL) per store. */
  readonly handovers: number;
  readonly handoverStores: readonly HandoverStore[];
  readonly steadyMs: number;
  readonly rateStores: readonly SharedStore[];
  readonly memoryAfterMs: number;
  readonly memoryStores: readonly MemoryStore[];
}

const ALL: readonly SharedStore[] = ["sqlite", "postgres", "etcd"];

export const FULL: Mode = Object.freeze<Mode>({
  name: "full",
  rounds: 10,
  roundMs: 300,
  leaseWarmMs: 1500,
  contentionMs: 5000,
  contentionWorkers: [1, 2, 4, 8],
  contentionStores: ALL,
  kills: 10,
  failoverStores: ALL,
  handovers: 10,
  handoverStores: [...ALL, "mongodb"],
  steadyMs: 60_000,
  rateStores: ALL,
  memoryAfterMs: 60_000,
  memoryStores: [...ALL, "mongodb"],
});

export const QUICK: Mode = Object.freeze<Mode>({
  name: "quick",
  rounds: 4,
  roundMs: 100,
  leaseWarmMs: 500,
  contentionMs: 1500,
  contentionWorkers: [1, 2, 4, 8],
  contentionStores: ["sqlite"],
  kills: 3,
  failoverStores: ["sqlite"],
  handovers: 3,
  handoverStores: [...ALL, "mongodb"],
  steadyMs: 15_000,
  rateStores: ["sqlite"],
  memoryAfterMs: 15_000,
  memoryStores: ["sqlite"],
});

export interface Context {
  readonly mode: Mode;
  readonly scratch: Scratch;
  readonly postgres: PostgresServer | undefined;
  readonly etcd: EtcdCluster | undefined;
  /** Why a store or a part was not measured. */
  readonly skipped: Record<string, string>;
  log(line: string): void;
}

/**
 * A URL for a clock of its own (`name`) on a shared store, or undefined when that store's
 * server could not be started.
 */
export function sharedUrl(ctx: Context, store: SharedStore, name: string): string | undefined {
  switch (store) {
    case "sqlite":
      return ctx.scratch.sqliteUrl(name);
    case "postgres":
      return ctx.postgres?.url("postgres", `table=${name}`);
    case "etcd":
      return ctx.etcd?.url(`key=/bench/${name}`);
  }
}
