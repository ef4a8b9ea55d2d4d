import { Backoff } from "../../backoff.js";
import { catchingUp, latestValues } from "../../push.js";
import type { PgListenClient } from "./client.js";

export interface ListenOptions {
  /** Opens a connection to LISTEN on. */
  connect: () => Promise<PgListenClient>;
  channel: string;
  /** The store's read, for the catch-up after each (re)subscription. */
  read: (signal: AbortSignal) => Promise<bigint | undefined>;
  /** A notification's payload as a time (throws CorruptRecordError). */
  decode: (payload: string) => bigint;
  /** Errors no reconnection mends: the watch fails with them. */
  isFatal: (err: unknown) => boolean;
  /** The store's error for a failure. */
  error: (err: unknown) => unknown;
  /** The store's running watches: close() ends each with the reason. */
  watches: Set<(err: unknown) => void>;
}

/**
 * LISTEN on a connection of its own. When that connection breaks (server restart), it
 * reconnects with growing pauses until the signal aborts, and reads the time after every
 * (re)subscription so that no change is lost in between.
 */
export function listen(signal: AbortSignal, options: ListenOptions): AsyncIterable<bigint> {
  const { connect, channel, read, decode, isFatal, error, watches } = options;
  return latestValues<bigint>(signal, (push, fail) => {
    const { offer, catchUp } = catchingUp(() => read(signal), push);
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
          offer(decode(msg.payload));
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
      await catchUp();
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
