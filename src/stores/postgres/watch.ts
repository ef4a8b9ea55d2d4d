import { Backoff } from "../../backoff.js";
import { latestValues } from "../../push.js";
import type { PgListenClient } from "./client.js";

export interface ListenOptions {
  /** Opens a connection to LISTEN on. */
  connect: () => Promise<PgListenClient>;
  channel: string;
  /** Errors no reconnection mends: the watch fails with them. */
  isFatal: (err: unknown) => boolean;
  /** The store's error for a failure. */
  error: (err: unknown) => unknown;
  /** The store's running watches: close() ends each with the reason. */
  watches: Set<(err: unknown) => void>;
}

/** What a watch makes of its channel: given the watch's push, once, when it starts. */
export interface Listener {
  /** A notification's payload; what it throws (a corrupt record) fails the watch. */
  notice(payload: string): void;
  /**
   * Called each time LISTEN is in place, the first time and after every reconnection, to
   * catch up on what changed while it was not.
   */
  subscribed(): Promise<void> | void;
}

/**
 * LISTEN on a connection of its own. When that connection breaks (server restart), it
 * reconnects with growing pauses until the signal aborts, and catches up after every
 * (re)subscription so that no change is lost in between.
 */
export function listen<T>(
  signal: AbortSignal,
  options: ListenOptions,
  start: (push: (value: T) => void) => Listener,
): AsyncIterable<T> {
  const { connect, channel, isFatal, error, watches } = options;
  return latestValues<T>(signal, (push, fail) => {
    const listener = start(push);
    const backoff = new Backoff();
    let stopped = false;
    let current: PgListenClient | undefined;
    let timer: NodeJS.Timeout | undefined;
    const retry = () => {
      if (!stopped) timer = setTimeout(() => void session(), backoff.next());
    };
    const session = async (): Promise<void> => {
      let client: PgListenClient;
      try {
        client = await connect();
      } catch (err) {
        if (isFatal(err)) fail(error(err));
        else retry();
        return;
      }
      if (stopped) {
        client.release(true);
        return;
      }
      current = client;
      let over = false;
      const lost = (err?: unknown) => {
        if (over || stopped) return;
        over = true;
        current = undefined;
        client.release(true);
        if (err !== undefined && isFatal(err)) fail(error(err));
        else retry();
      };
      client.on("error", lost);
      client.on("end", () => lost());
      client.on("notification", (msg) => {
        if (msg.channel !== channel || msg.payload === undefined) return;
        try {
          listener.notice(msg.payload);
        } catch (err) {
          fail(err);
        }
      });
      try {
        await client.query(`LISTEN "${channel}"`);
      } catch (err) {
        lost(err);
        return;
      }
      backoff.reset();
      await listener.subscribed();
    };
    const first = session();
    const stop = () => {
      stopped = true;
      clearTimeout(timer);
      current?.release(true);
      current = undefined;
      watches.delete(end);
    };
    const end = (err: unknown) => {
      stop();
      fail(err);
    };
    watches.add(end);
    // The first subscription is in place (or being retried) before values are awaited.
    return first.then(() => stop);
  });
}
