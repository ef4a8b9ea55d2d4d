/**
 * What the leases' raw baselines share: Leases' decisions on what a baseline read (an
 * extend keeps holder and token and moves the expiry to max(expiry, time + duration); a
 * claim of a free lease takes token + 1; a release empties the holder), and the loops that
 * read and write with them. See bench/lease-raw.ts.
 */
import { earlier, later } from "../src/time.js";
import type { Operation } from "./measure.js";

/** What the baseline reads of a lease: the integers decoded, `pins` as the driver gave it. */
export interface Fields {
  holder: string;
  token: bigint;
  start: bigint;
  expiry: bigint;
  pins: unknown;
}
export interface Read {
  time: bigint;
  lease: Fields & { version: bigint };
}

export interface RawLeases {
  /** What one claim sends, for the report. */
  readonly sends: string;
  /** The holder extends its lease: one read, one write. */
  readonly extend: Operation;
  /** A claim of the released lease, then its release: two reads, two writes. */
  readonly claimRelease: Operation;
  /** For synchronous drivers: the same calls inside an awaited async function. */
  readonly awaited?: { extend: Operation; claimRelease: Operation };
  close(): Promise<void>;
}

/** The names the raw side owns: created by the benchmark through Leases before it runs. */
export const RAW_HOLDER = "raw";
export const RAW_EXTEND = "raw-extend";
export const RAW_CLAIM = "raw-claim";

function lost(name: string): Error {
  return new Error(`raw baseline lost a write of ${name}: another writer is running`);
}

/** Leases' decisions, on what the baseline read. */
const decide = {
  extend: (r: Read, d: bigint): Fields => {
    const l = r.lease;
    const expiry = later(l.expiry, r.time + d);
    return { holder: RAW_HOLDER, token: l.token, start: l.start, expiry, pins: l.pins };
  },
  claim: (r: Read, d: bigint): Fields => {
    const l = r.lease;
    if (l.holder !== "") throw new Error(`${RAW_CLAIM} is held by ${l.holder}`);
    return {
      holder: RAW_HOLDER,
      token: l.token + 1n,
      start: r.time,
      expiry: r.time + d,
      pins: l.pins,
    };
  },
  release: (r: Read): Fields => {
    const l = r.lease;
    const expiry = earlier(r.time, l.expiry);
    const start = earlier(l.start, expiry);
    return { holder: "", token: l.token, start, expiry, pins: l.pins };
  },
};

export type SyncIo = {
  read: (name: string) => Read;
  write: (name: string, f: Fields, version: bigint) => boolean;
};
export type AsyncIo = {
  read: (name: string) => Promise<Read>;
  write: (name: string, f: Fields, version: bigint) => Promise<boolean>;
};

export function syncOps(io: SyncIo, d: bigint) {
  const step = (name: string, how: (r: Read) => Fields) => {
    const r = io.read(name);
    if (!io.write(name, how(r), r.lease.version)) throw lost(name);
  };
  const extend = () => step(RAW_EXTEND, (r) => decide.extend(r, d));
  const claimRelease = () => {
    step(RAW_CLAIM, (r) => decide.claim(r, d));
    step(RAW_CLAIM, decide.release);
  };
  return {
    extend: { kind: "sync", run: extend } as Operation,
    claimRelease: { kind: "sync", run: claimRelease } as Operation,
    awaited: {
      extend: { kind: "async", run: async () => extend() } as Operation,
      claimRelease: { kind: "async", run: async () => claimRelease() } as Operation,
    },
  };
}

export function asyncOps(io: AsyncIo, d: bigint) {
  const step = async (name: string, how: (r: Read) => Fields) => {
    const r = await io.read(name);
    if (!(await io.write(name, how(r), r.lease.version))) throw lost(name);
  };
  return {
    extend: { kind: "async", run: () => step(RAW_EXTEND, (r) => decide.extend(r, d)) } as Operation,
    claimRelease: {
      kind: "async",
      run: async () => {
        await step(RAW_CLAIM, (r) => decide.claim(r, d));
        await step(RAW_CLAIM, decide.release);
      },
    } as Operation,
  };
}

export const int = (v: unknown): bigint => BigInt(String(v));

/** A Map of records and a version compare: what the lease logic costs with no store. */
export function memoryLeases(d: bigint): RawLeases {
  const time = 1_000_000_000n;
  type Rec = Read["lease"];
  const records = new Map<string, Rec>([
    [
      RAW_EXTEND,
      { holder: RAW_HOLDER, token: 1n, start: 0n, expiry: time + d, pins: [], version: 1n },
    ],
    [RAW_CLAIM, { holder: "", token: 1n, start: 0n, expiry: 0n, pins: [], version: 1n }],
  ]);
  const ops = syncOps(
    {
      read: (name) => ({ time, lease: records.get(name) as Rec }),
      write: (name, f, version) => {
        if (records.get(name)?.version !== version) return false;
        records.set(name, { ...f, version: version + 1n });
        return true;
      },
    },
    d,
  );
  return { sends: "a Map of records and a version compare", ...ops, close: async () => {} };
}
