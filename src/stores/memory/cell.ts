/**
 * One clock, its maxStep and its leases, in this process. Values are unknown so that tests
 * can plant corrupt data.
 */
export interface MemoryCell {
  value: unknown;
  readonly listeners: Set<(time: bigint) => void>;
  maxStep: unknown;
  /** Lease records by name, as stored (see RawLease). */
  readonly leases: Map<string, unknown>;
  leaseVersion: bigint;
  /** The last fencing token handed out, for any name: new ones are greater. */
  lastToken: bigint;
  readonly leaseListeners: Set<(name: string) => void>;
}

export function newCell(): MemoryCell {
  return {
    value: undefined,
    listeners: new Set(),
    maxStep: undefined,
    leases: new Map(),
    leaseVersion: 0n,
    lastToken: 0n,
    leaseListeners: new Set(),
  };
}

const named = new Map<string, MemoryCell>();

/**
 * The cell behind `memory:NAME`, shared by every store opened on that name in this
 * process. Exposed for tests that need to plant a corrupt record.
 */
export function memoryCell(name: string): MemoryCell {
  let cell = named.get(name);
  if (!cell) {
    cell = newCell();
    named.set(name, cell);
  }
  return cell;
}
