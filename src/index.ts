export { type DurationInput, formatDuration, toNanoseconds } from "./duration.js";
export {
  ClockRecordMissingError,
  ClosedError,
  ConcurrentUseError,
  ConfigError,
  CorruptRecordError,
  GlobalClockError,
  InvalidDurationError,
  InvalidUpdaterError,
  isFatal,
  LeaseHeldError,
  LeaseLostError,
  type LeaseState,
  MaxStepChangedError,
  OutOfSyncUpdateError,
  StoreError,
  type StoreErrorOptions,
} from "./errors.js";
export { checkHistory, type Sample } from "./history.js";
export type {
  LeaseContext,
  LeaseFields,
  LeaseRecord,
  LeaseStore,
} from "./lease-store.js";
export { Campaign, type CampaignOptions, type ElectionState } from "./leases/election.js";
export { uniqueHolder } from "./leases/holder.js";
export { DEFAULT_MAX_STEP, type LeaseInfo, MIN_DURATION_STEPS } from "./leases/info.js";
export { Lease } from "./leases/lease.js";
export { type CallOptions, Leases, type LeasesOptions, openLeases } from "./leases/leases.js";
export { Session, SessionLease, type SessionOptions } from "./leases/session.js";
export { DEFAULT_STORE_URL, openReader, openStore, openUpdater } from "./open.js";
export { Reader, type ReaderOptions, type WatchOptions } from "./reader.js";
export {
  type ClockStore,
  DEFAULT_TIMEOUT_MS,
  type OpenOptions,
  type StoreModule,
} from "./store.js";
export { MemoryStore } from "./stores/memory/index.js";
export { formatGlobalTime, type GlobalTime, globalEpoch, INT64_MAX, toDate } from "./time.js";
export { Updater, type UpdaterOptions } from "./updater.js";
export {
  type StartUpdaterOptions,
  startUpdater,
  UpdaterWorker,
  type WorkerRole,
  type WorkerStatus,
} from "./worker.js";
export type { WorkerClock } from "./worker-clock.js";
export {
  describeSettings,
  type IntervalMultiple,
  MIN_INTERVAL,
  type UpdaterWorkerOptions,
  WORKER_DEFAULTS,
  type WorkerDefaults,
  type WorkerSettings,
  workerSettings,
} from "./worker-settings.js";
