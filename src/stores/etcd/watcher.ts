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
  const stop = () => {
    watches.delete(end);
    watcher.removeAllListeners();
    watcher.on("error", () => {});
    return watcher.cancel().catch(() => {});
  };
  const end: EndWatch = (err) => {
    fail(err);
    return stop();
  };
  watches.add(end);
  return () => void stop();
}
