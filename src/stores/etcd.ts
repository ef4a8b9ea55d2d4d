import { Etcd3, type IOptions } from "etcd3";
import { durationMs } from "../config.js";
import { ClosedError, ConfigError, CorruptRecordError, StoreError } from "../errors.js";
import { latestValues } from "../push.js";
import { parseStoredDecimal } from "../record.js";
import type { ClockStore } from "../store.js";
import { abortable, safeMessage } from "./deadline.js";
import { etcdFaultHandling } from "./etcd-policy.js";

export interface EtcdStoreOptions {
  /** Client endpoints as `host:port` (plain HTTP/2). At least one. */
  hosts: string[];
  /** The key holding the clock. Default "/globalclock/g". */
  key?: string;
  /**
   * Deadline of one operation, retries included, in ms. Default 1000. The etcd3 client's
   * own default is none at all, which stalls a call for about 7 s after a leader is killed.
   */
  timeoutMs?: number;
  /** etcd user (role-based auth), if the cluster has auth enabled. */
  username?: string;
  password?: string;
}

const KIND = "etcd";
export const DEFAULT_ETCD_KEY = "/globalclock/g";
export const DEFAULT_ETCD_TIMEOUT_MS = 1000;

/**
 * The clock as one etcd key whose value is the decimal int64. Every operation is one
 * linearizable request (a range, or a txn); CAS compares the value and puts in one txn.
 *
 * The client retries a failed call by itself (within the deadline), possibly after the
 * first attempt committed: a CAS whose compare then fails reports `false`, and the Updater
 * re-reads and reports out-of-sync. It never counts as a success.
 */
export class EtcdStore implements ClockStore {
  readonly kind = KIND;
  readonly key: string;
  readonly timeoutMs: number;
  readonly #hosts: string[];
  readonly #client: Etcd3;
  readonly #secrets: string[];
  /** Ends each running watch, failing it with the reason. */
  readonly #watches = new Set<(err: unknown) => Promise<void>>();
  #closed = false;

  constructor(options: EtcdStoreOptions) {
    const hosts = options.hosts ?? [];
    if (hosts.length === 0) {
      throw new ConfigError("hosts", "missing etcd hosts: use etcd://host:port[,host:port…]");
    }
    for (const host of hosts) {
      if (!/^[^\s:/?#@,]+:\d{1,5}$|^\[[0-9a-f:.]+\]:\d{1,5}$/i.test(host)) {
        throw new ConfigError("hosts", `invalid etcd host ${JSON.stringify(host)}: use host:port`);
      }
    }
    this.key = options.key ?? DEFAULT_ETCD_KEY;
    if (this.key === "" || this.key.length > 1024 || /\p{Cc}/u.test(this.key)) {
      throw new ConfigError(
        "key",
        `invalid etcd key ${JSON.stringify(this.key)}: use a non-empty printable key, e.g. ${DEFAULT_ETCD_KEY}`,
      );
    }
    this.timeoutMs = options.timeoutMs ?? DEFAULT_ETCD_TIMEOUT_MS;
    if (!(this.timeoutMs > 0)) throw new ConfigError("timeout", "invalid timeout: must be > 0");
    if ((options.username === undefined) !== (options.password === undefined)) {
      throw new ConfigError("password", "etcd auth needs both a user name and a password");
    }
    this.#hosts = hosts;
    this.#secrets = options.password ? [options.password] : [];
    const config: IOptions = {
      hosts: hosts.map((h) => `http://${h}`),
      dialTimeout: this.timeoutMs,
      faultHandling: etcdFaultHandling(hosts.length, this.timeoutMs),
    };
    if (options.username !== undefined && options.password !== undefined) {
      config.auth = {
        username: options.username,
        password: options.password,
        callOptions: () => ({ deadline: Date.now() + this.timeoutMs }),
      };
    }
    this.#client = new Etcd3(config);
  }

  read(signal?: AbortSignal): Promise<bigint | undefined> {
    return this.#call("read", signal, async (deadline) => {
      const value = await this.#client.get(this.key).options({ deadline }).buffer();
      return value === null ? undefined : decode(value, "read");
    });
  }

  /** One txn: create the key at "0" if it has never been created, else read it. */
  ensure(signal?: AbortSignal): Promise<bigint> {
    return this.#call("ensure", signal, async (deadline) => {
      const c = this.#client;
      const res = await c
        .if(this.key, "Create", "==", 0)
        .then(c.put(this.key).value("0"))
        .else(c.get(this.key))
        .options({ deadline })
        .commit();
      if (res.succeeded) return 0n;
      const kv = res.responses[0]?.response_range?.kvs?.[0];
      // Deleted between the compare and the get is impossible (one txn); still, say so.
      if (!kv) throw new StoreError(KIND, "ensure", "the key vanished inside a transaction");
      return decode(kv.value, "ensure");
    });
  }

  compareAndSwap(old: bigint, next: bigint, signal?: AbortSignal): Promise<boolean> {
    return this.#call("compareAndSwap", signal, async (deadline) => {
      // A negative `old` can only match a corrupt record, which is never overwritten.
      if (old < 0n) return false;
      const c = this.#client;
      const res = await c
        .if(this.key, "Value", "==", old.toString())
        .then(c.put(this.key).value(next.toString()))
        .options({ deadline })
        .commit();
      return res.succeeded;
    });
  }

  /**
   * etcd's watch on the key. The client re-establishes a broken watch stream by itself
   * (resuming from the last revision it saw, with pauses of at most max(timeout, 1 s)).
   * A watch that etcd cancels (e.g. its revision was compacted) fails the iterator with a
   * StoreError.
   */
  watch(signal: AbortSignal): AsyncIterable<bigint> {
    if (this.#closed) throw new ClosedError("etcd store");
    return latestValues<bigint>(signal, (pushAny, fail) => {
      const watcher = this.#client.watch().key(this.key).watcher();
      // A catch-up read may answer after a newer event: never yield an older time.
      let highest = -1n;
      const push = (time: bigint) => {
        if (time < highest) return;
        highest = time;
        pushAny(time);
      };
      const onValue = (value: Buffer) => {
        try {
          push(decode(value, "watch"));
        } catch (err) {
          fail(err);
        }
      };
      watcher.on("put", (kv) => onValue(kv.value));
      // Read once each time the watch is (re)established: a change made while it was
      // being set up, or while it was disconnected, is then not lost.
      watcher.on("connected", () => {
        this.read(signal).then(
          (time) => {
            if (time !== undefined) push(time);
          },
          () => {}, // the watch itself is up; the next change brings the time
        );
      });
      watcher.on("error", (err) => {
        fail(new StoreError(KIND, "watch", this.#describe(err), { cause: err }));
      });
      const stop = () => {
        this.#watches.delete(end);
        watcher.removeAllListeners();
        watcher.on("error", () => {});
        return watcher.cancel().catch(() => {});
      };
      const end = (err: unknown) => {
        fail(err);
        return stop();
      };
      this.#watches.add(end);
      return () => void stop();
    });
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    // A watch left running would keep its stream, and so the process, alive.
    const cancels = [...this.#watches].map((end) => end(new ClosedError("etcd store")));
    await abortable(Promise.all(cancels), AbortSignal.timeout(this.timeoutMs)).catch(() => {});
    this.#client.close();
  }

  async #call<T>(
    operation: string,
    signal: AbortSignal | undefined,
    fn: (deadline: number) => Promise<T>,
  ): Promise<T> {
    if (this.#closed) throw new ClosedError("etcd store");
    signal?.throwIfAborted();
    // One absolute deadline for the whole call: the client's own retries share it.
    const deadline = Date.now() + this.timeoutMs;
    try {
      return await abortable(fn(deadline), signal);
    } catch (err) {
      if (signal?.aborted && err === signal.reason) throw err;
      if (err instanceof StoreError) throw err;
      throw new StoreError(KIND, operation, this.#describe(err), { cause: err });
    }
  }

  #describe(err: unknown): string {
    const text = safeMessage(err, this.#secrets);
    const where = this.#hosts.join(",");
    if (/DEADLINE_EXCEEDED|deadline exceeded/i.test(text))
      return `no answer from etcd at ${where} within ${this.timeoutMs} ms (${text})`;
    if (/UNAVAILABLE|ECONNREFUSED|No connection established|circuit breaker is open/i.test(text))
      return `cannot reach etcd at ${where} (${text}); is it running, and does it have a leader?`;
    if (/authentication failed|invalid user ID or password|user name is empty/i.test(text))
      return `${text}: check the user and password in the etcd URL`;
    if (/permission denied/i.test(text))
      return `${text}: the etcd user needs read and write access to the clock key`;
    return text;
  }
}

/** An etcd value must be the canonical decimal of a non-negative int64 ("7", never "007"). */
function decode(value: Buffer, operation: string): bigint {
  const text = value.toString("utf8");
  const time = parseStoredDecimal(text, KIND, operation);
  if (time.toString() !== text) {
    throw new CorruptRecordError(
      KIND,
      operation,
      `value ${JSON.stringify(text.slice(0, 40))} is not a canonical decimal integer`,
    );
  }
  return time;
}

/** Options from `etcd://[user:password@]host:port[,host:port…][?key=…&timeout=…]`. */
export function etcdOptionsFromUrl(url: string, params: Map<string, string>): EtcdStoreOptions {
  const malformed = (why: string) => new ConfigError("store", `malformed etcd URL: ${why}`);
  const m = /^etcd:\/\/([^/?#]*)\/?(?:[?#].*)?$/i.exec(url);
  if (!m) throw malformed("use etcd://host:port[,host:port…][?key=…&timeout=…]");
  let authority = m[1] ?? "";
  const options: EtcdStoreOptions = { hosts: [] };
  const at = authority.lastIndexOf("@");
  if (at >= 0) {
    const userinfo = authority.slice(0, at);
    authority = authority.slice(at + 1);
    const colon = userinfo.indexOf(":");
    try {
      options.username = decodeURIComponent(colon < 0 ? userinfo : userinfo.slice(0, colon));
      options.password = colon < 0 ? "" : decodeURIComponent(userinfo.slice(colon + 1));
    } catch {
      throw malformed("the user or password is not valid percent-encoding");
    }
  }
  if (authority === "") throw malformed("no host: use etcd://host:port");
  options.hosts = authority.split(",");
  if (options.hosts.includes("")) throw malformed("an empty host in the list");
  const key = params.get("key");
  if (key !== undefined) options.key = key;
  const timeout = params.get("timeout");
  if (timeout !== undefined) options.timeoutMs = durationMs("timeout", timeout);
  return options;
}
