export type WorkerRole = "starting" | "active" | "standby" | "error" | "stopped";

/** What a worker knows and has done; a new frozen object at every change. */
export interface WorkerStatus {
  readonly role: WorkerRole;
  /** The latest global time this worker wrote or saw (ns since the epoch). */
  readonly time: bigint | undefined;
  readonly advances: number;
  readonly conflicts: number;
  readonly errors: number;
  readonly takeovers: number;
  /** The size of this worker's last advance, in ns. */
  readonly lastStep: bigint | undefined;
  /** When (worker clock, ns) this worker last saw global time move, by its hand or another's. */
  readonly lastChangeAt: bigint | undefined;
  readonly lastError: string | undefined;
  /** The class of the last error, e.g. "StoreError", "ClockRecordMissingError". */
  readonly lastErrorName: string | undefined;
  /** Whether trying again may mend the last error (a lost connection: yes; a wrong password: no). */
  readonly lastErrorRetryable: boolean | undefined;
  /** Times the stored time was seen below what this worker had seen (a restore, a rollback). */
  readonly regressions: number;
  /** The last such regression: the time seen before, and the lower stored time. */
  readonly lastRegression: { readonly from: bigint; readonly to: bigint } | undefined;
  /** Times the clock record was found gone (deleted); the worker never re-creates it. */
  readonly recordMissing: number;
  /**
   * The cluster's maxStep as this worker last read it (undefined on a store that keeps no
   * leases); the worker steps within it, and within its own.
   */
  readonly clusterMaxStep: bigint | undefined;
  /** Advances refused because the cluster's maxStep had changed (the worker read it again). */
  readonly maxStepChanges: number;
}

/** A new worker's status. */
export const STARTING: WorkerStatus = Object.freeze({
  role: "starting",
  time: undefined,
  advances: 0,
  conflicts: 0,
  errors: 0,
  takeovers: 0,
  lastStep: undefined,
  lastChangeAt: undefined,
  lastError: undefined,
  lastErrorName: undefined,
  lastErrorRetryable: undefined,
  regressions: 0,
  lastRegression: undefined,
  recordMissing: 0,
  clusterMaxStep: undefined,
  maxStepChanges: 0,
});
