import type { EtcdWatcher } from "./client.js";

/** What close() calls to end a running watch, failing it with the reason. */
export type EndWatch = (err: unknown) => Promise<void>;

/**
 * Ties a watcher to its store: an error fails the watch (`fail(wrap(err))`), and close()
 * ends it through `watches`. Returns the function that stops it (for latestValues). A
 * watch left running would keep its stream, and so the process, alive.
 */
export function attachWatcher(
  watcher: EtcdWatcher,
  watches: Set<EndWatch>,
  fail: (err: unknown) => void,
  wrap: (err: unknown) => unknown,
): () => void {
  watcher.on("error", (err) => fail(wrap(err)));
  // Once: close() stops it, then the watch's own cleanup does again, and a second
  // removeAllListeners() would take away what the first cancel() waits on (close() then
  // lingered for the store's whole timeout).
  let stopped: Promise<void> | undefined;
  const stop = () => {
    if (stopped) return stopped;
    watches.delete(end);
    watcher.removeAllListeners();
    watcher.on("error", () => {});
    stopped = watcher.cancel().catch(() => {});
    return stopped;
  };
  const end: EndWatch = (err) => {
    fail(err);
    return stop();
  };
  watches.add(end);
  return () => void stop();
}
