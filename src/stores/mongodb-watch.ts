import type { Collection } from "mongodb";
import { latestValues } from "../push.js";
import { sleep } from "../sleep.js";
import { codeOf } from "./mongodb-errors.js";

// Server codes meaning "no change streams here": not a replica set (40573), an unknown
// $changeStream stage (40324), no aggregate command at all (59, 115).
const NO_CHANGE_STREAMS = new Set([40573, 40324, 59, 115]);

export interface WatchClockOptions {
  // biome-ignore lint/suspicious/noExplicitAny: any schema; only watch() is used
  collection: Collection<any>;
  /** The `_id` of the clock document. */
  documentId: string;
  /** Reads the clock (the store's read, with its read concern). */
  read: (signal: AbortSignal) => Promise<bigint | undefined>;
  pollIntervalMs: number;
  maxAwaitTimeMs: number;
  /** Turns a failure into the store's error. */
  wrap: (err: unknown) => Error;
}

/**
 * Yields the clock after each change to its document, seen through a change stream,
 * or, where the server has none (a standalone mongod), read every pollIntervalMs. A
 * change only wakes a read: what is yielded always comes from `read`.
 */
export function watchClock(signal: AbortSignal, options: WatchClockOptions): AsyncIterable<bigint> {
  const { collection, documentId, read, pollIntervalMs, maxAwaitTimeMs, wrap } = options;
  return latestValues<bigint>(signal, (push, fail) => {
    const stop = new AbortController();
    const stopped = AbortSignal.any([signal, stop.signal]);
    let reading = false;
    let again = false;
    const check = async () => {
      if (reading) {
        again = true;
        return;
      }
      reading = true;
      try {
        do {
          again = false;
          const time = await read(stopped);
          if (time !== undefined) push(time);
        } while (again && !stopped.aborted);
      } finally {
        reading = false;
      }
    };
    const poll = async () => {
      do await check();
      while (await sleep(pollIntervalMs, stopped));
    };
    const stream = collection.watch([{ $match: { "documentKey._id": documentId } }], {
      maxAwaitTimeMS: maxAwaitTimeMs,
    });
    const follow = async () => {
      try {
        // The first tryNext opens the stream; reading only then means that no change
        // between the caller's first read and the stream's start goes unseen.
        let opened = false;
        while (!stopped.aborted) {
          const change = await stream.tryNext();
          if (!opened || change) await check();
          opened = true;
        }
      } catch (err) {
        if (stopped.aborted) return;
        if (!NO_CHANGE_STREAMS.has(codeOf(err) ?? -1)) throw err;
        await stream.close().catch(() => {});
        await poll();
      }
    };
    follow().catch((err: unknown) => {
      if (!stopped.aborted) fail(wrap(err));
    });
    return () => {
      stop.abort();
      stream.close().catch(() => {});
    };
  });
}
