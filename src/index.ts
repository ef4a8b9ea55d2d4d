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
  OutOfSyncUpdateError,
  StoreError,
  type StoreErrorOptions,
} from "./errors.js";
export { checkHistory, type Sample } from "./history.js";
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
  type UpdaterWorkerOptions,
  WORKER_DEFAULTS,
  type WorkerDefaults,
  type WorkerSettings,
  workerSettings,
} from "./worker-settings.js";
