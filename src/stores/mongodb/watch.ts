import type { ChangeStream, Collection, Document } from "mongodb";
import { Backoff } from "../../backoff.js";
import { ClosedError, CorruptRecordError } from "../../errors.js";
import { latestValues, readOnWake } from "../../push.js";
import { sleep } from "../../sleep.js";
import { isFatalMongoError, mongoCode } from "./errors.js";

// Server codes meaning "no change streams here": not a replica set (40573), an unknown
// $changeStream stage (40324), no aggregate command at all (59, 115).
const NO_CHANGE_STREAMS = new Set([40573, 40324, 59, 115]);

export interface WatchChangesOptions {
  // biome-ignore lint/suspicious/noExplicitAny: any schema; only watch() is used
  collection: Collection<any>;
  /** The `$match` of change events that concern the watch, e.g. on `documentKey._id`. */
  match: Document;
  pollIntervalMs: number;
  maxAwaitTimeMs: number;
  /** Aborted when the store closes: the watch then fails with the reason. */
  closing: AbortSignal;
  /** Turns a failure into the store's error. */
  wrap: (err: unknown) => unknown;
}

export interface WatchClockOptions extends Omit<WatchChangesOptions, "match"> {
  /** The `_id` of the clock document. */
  documentId: string;
  /** Reads the clock (the store's read, with its read concern). */
  read: (signal: AbortSignal) => Promise<bigint | undefined>;
}

/**
 * Yields the clock after each change to its document, seen through a change stream,
 * or, where the server has none (a standalone mongod), read every pollIntervalMs. A
 * change only wakes a read: what is yielded always comes from `read`, never less than
 * what was yielded before.
 */
export function watchClock(signal: AbortSignal, options: WatchClockOptions): AsyncIterable<bigint> {
  const { documentId, read, ...rest } = options;
  return latestValues<bigint>(signal, (pushAny, fail) =>
    followChanges(signal, { ...rest, match: { "documentKey._id": documentId } }, fail, (stopped) =>
      // Reads now, or once more after the read in flight: a burst of changes costs two reads.
      readOnWake(() => read(stopped), pushAny, { signal: stopped }),
    ),
  );
}

/**
 * A notice (no read) after each change the stream reports, and each time a stream opens, as
 * a change made while none was open would go unseen. Where the server has no change streams
 * it is a notice every pollIntervalMs: the caller's read then polls at that pace.
 */
export function watchChanges(
  signal: AbortSignal,
  options: WatchChangesOptions,
): AsyncIterable<void> {
  return latestValues<void>(signal, (push, fail) =>
    followChanges(signal, options, fail, () => async () => push()),
  );
}

/**
 * Calls `changed` each time a change stream opens and after each change it reports or,
 * where the server has no change streams, every pollIntervalMs. Returns the stop function.
 *
 * The driver resumes a change stream by itself after one failure; when that fails too
 * (the server is away longer), or the server closed the stream (an invalidate event: the
 * collection or its database was dropped, or the collection renamed), the stream is opened
 * again after growing pauses (up to 2 s) until the signal aborts, with `changed` called each
 * time it opens, so no change is lost in between. A corrupt record, a refused login or a
 * closed store end the watch.
 */
function followChanges(
  signal: AbortSignal,
  options: WatchChangesOptions,
  fail: (err: unknown) => void,
  makeChanged: (stopped: AbortSignal) => () => Promise<void>,
): () => void {
  const { collection, match, pollIntervalMs, maxAwaitTimeMs, closing, wrap } = options;
  const stop = new AbortController();
  const stopped = AbortSignal.any([signal, closing, stop.signal]);
  let current: ChangeStream | undefined;
  const changed = makeChanged(stopped);
  const follow = async (stream: ChangeStream): Promise<void> => {
    // The first tryNext opens the stream; acting only then means that no change between
    // the caller's first read (or the last stream's end) and this start goes unseen.
    await stream.tryNext();
    await changed();
    while (!stopped.aborted) {
      if (await stream.tryNext()) {
        backoff.reset();
        await changed();
      } else if (stream.closed) {
        // Invalidated: the driver's tryNext now answers null at once, forever, without I/O.
        return;
      }
    }
  };
  const backoff = new Backoff();
  let polling = false;
  const run = async (): Promise<void> => {
    while (!stopped.aborted) {
      try {
        if (polling) {
          await changed();
          backoff.reset();
          if (!(await sleep(pollIntervalMs, stopped))) return;
          continue;
        }
        current = collection.watch([{ $match: match }], { maxAwaitTimeMS: maxAwaitTimeMs });
        await follow(current).finally(() => current?.close().catch(() => {}));
        if (!(await sleep(backoff.next(), stopped))) return;
      } catch (err) {
        if (stopped.aborted) return;
        if (!polling && NO_CHANGE_STREAMS.has(mongoCode(err) ?? -1)) {
          polling = true;
          continue;
        }
        if (err instanceof CorruptRecordError || isFatalMongoError(err)) throw err;
        if (!(await sleep(backoff.next(), stopped))) return;
      }
    }
  };
  const onClosing = () => fail(closing.reason ?? new ClosedError("mongodb store"));
  closing.addEventListener("abort", onClosing, { once: true });
  run().catch((err: unknown) => {
    if (!stopped.aborted) fail(wrap(err));
  });
  return () => {
    stop.abort();
    closing.removeEventListener("abort", onClosing);
    current?.close().catch(() => {});
    current = undefined;
  };
}
