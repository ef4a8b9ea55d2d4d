import { watch as watchFiles } from "node:fs";
import { basename, dirname } from "node:path";
import { ClosedError } from "../../errors.js";
import { latestValues } from "../../push.js";

/**
 * Delays of the re-reads after a file event, while the commit may not be visible yet: the
 * write that wakes a watch comes before the commit is published (in the shared-memory
 * index, which makes no file event).
 */
export const COMMIT_RETRY_MS = [1, 4, 15, 40];

export interface CommitWatchOptions {
  /** The database file. */
  path: string;
  /** The store's running watches: close() calls each. */
  watches: Set<() => void>;
  /** The store's error for a failure of the file watch. */
  error: (err: unknown) => unknown;
}

/**
 * SQLite cannot push, but the operating system can: every commit by any process writes the
 * database file or its WAL, so a directory watch (inotify) wakes the watch. `start` gets
 * the watch's push and returns its `wake`, which is called once at the start and then at
 * every such write; `wake` decides what to push (it may read, see readOnWake), and a
 * failure it returns ends the watch.
 */
export function watchCommits<T>(
  signal: AbortSignal,
  options: CommitWatchOptions,
  start: (push: (value: T) => void) => () => Promise<void>,
): AsyncIterable<T> {
  const { path, watches, error } = options;
  const names = new Set([basename(path), `${basename(path)}-wal`]);
  return latestValues<T>(signal, (push, fail) => {
    const wake = start(push);
    const check = () =>
      wake().catch((err: unknown) => {
        if (!signal.aborted) fail(err);
      });
    const watchFailed = (err: unknown) => fail(error(err));
    let watcher: ReturnType<typeof watchFiles>;
    try {
      watcher = watchFiles(dirname(path), (_event, file) => {
        if (file !== null && names.has(file)) void check();
      });
    } catch (err) {
      watchFailed(err); // e.g. ENOSPC: the inotify watch limit is reached
      return () => {};
    }
    watcher.on("error", watchFailed);
    // close() ends the watch: the file watch would otherwise keep the process alive.
    const end = () => {
      watcher.close();
      fail(new ClosedError("sqlite store"));
    };
    watches.add(end);
    void check();
    return () => {
      watches.delete(end);
      watcher.close();
    };
  });
}
