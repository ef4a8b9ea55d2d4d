import { abortable } from "../../abort.js";
import { ClosedError, ConfigError, quote, StoreError } from "../../errors.js";
import { catchingUp, latestValues } from "../../push.js";
import { type ClockStore, DEFAULT_TIMEOUT_MS } from "../../store.js";
import { StoreCalls } from "../call.js";
import type { EtcdClient } from "./client.js";
import { explainEtcdError } from "./errors.js";
import { EtcdLeases } from "./leases.js";
import { decodeTime as decode } from "./values.js";
import { attachWatcher, type EndWatch } from "./watcher.js";

export interface EtcdStoreOptions {
  /** The client: an `Etcd3`, the caller's own or one `open` made. */
  client: EtcdClient;
  /** The key holding the clock. Default "/globalclock/g". */
  key?: string;
  /**
   * Deadline of one operation, retries included, in ms. Default 2000 (DEFAULT_TIMEOUT_MS).
   * The etcd3 client's own default is none at all, which stalls a call for about 7 s after
   * a leader is killed.
   */
  timeoutMs?: number;
  /** Where the client connects, for messages. Default "etcd". */
  endpoints?: string;
  /** Passwords to mask in messages. */
  secrets?: readonly string[];
  /** Called once by close(), e.g. to close the client the store was opened with. */
  onClose?: () => void | Promise<void>;
}

const KIND = "etcd";
export const DEFAULT_ETCD_KEY = "/globalclock/g";
export const DEFAULT_ETCD_TIMEOUT_MS = DEFAULT_TIMEOUT_MS;

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
  readonly #client: EtcdClient;
  readonly #calls: StoreCalls;
  readonly #onClose: (() => void | Promise<void>) | undefined;
  /** Ends each running watch (the clock's and the leases'), failing it with the reason. */
  readonly #watches = new Set<EndWatch>();
  /** Lease records under `<key>/leases/`, and the cluster's maxStep at `<key>/maxStep`. */
  readonly leases: EtcdLeases;

  constructor(options: EtcdStoreOptions) {
    if (!options?.client)
      throw new ConfigError("client", "missing client: pass an Etcd3, or open an etcd:// URL");
    this.key = options.key ?? DEFAULT_ETCD_KEY;
    if (this.key === "" || this.key.length > 1024 || /\p{Cc}/u.test(this.key)) {
      throw new ConfigError(
        "key",
        `invalid etcd key ${quote(this.key, 60)}: use a non-empty printable key, e.g. ${DEFAULT_ETCD_KEY}`,
      );
    }
    this.timeoutMs = options.timeoutMs ?? DEFAULT_ETCD_TIMEOUT_MS;
    if (!(this.timeoutMs > 0)) throw new ConfigError("timeout", "invalid timeout: must be > 0");
    this.#client = options.client;
    this.#onClose = options.onClose;
    const where = options.endpoints ? `etcd at ${options.endpoints}` : "etcd";
    const secrets = options.secrets ?? [];
    // The client's own deadline (passed on every call) ends a call on the wire; this one is
    // the same, for a caller's client that ignores it.
    this.#calls = new StoreCalls({
      kind: KIND,
      timeoutMs: this.timeoutMs,
      explain: (err) => explainEtcdError(err, where, this.timeoutMs, secrets),
    });
    this.leases = new EtcdLeases({
      client: this.#client,
      key: this.key,
      call: (operation, signal, fn) => this.#call(operation, signal, fn),
      calls: this.#calls,
      watches: this.#watches,
    });
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
    this.#calls.checkOpen();
    return latestValues<bigint>(signal, (push, fail) => {
      const watcher = this.#client.watch().key(this.key).watcher();
      const { offer, catchUp } = catchingUp(() => this.read(signal), push);
      watcher.on("put", (kv) => {
        try {
          offer(decode(kv.value, "watch"));
        } catch (err) {
          fail(err);
        }
      });
      // Each time the watch is (re)established.
      watcher.on("connected", () => void catchUp());
      return attachWatcher(watcher, this.#watches, fail, (err) => this.#calls.error("watch", err));
    });
  }

  async close(): Promise<void> {
    if (!this.#calls.close()) return;
    // A watch left running would keep its stream, and so the process, alive.
    const cancels = [...this.#watches].map((end) => end(new ClosedError("etcd store")));
    await abortable(Promise.all(cancels), AbortSignal.timeout(this.timeoutMs)).catch(() => {});
    await this.#onClose?.();
  }

  /** One absolute deadline for the whole call: the client's own retries share it. */
  #call<T>(
    operation: string,
    signal: AbortSignal | undefined,
    fn: (deadline: number) => Promise<T>,
  ): Promise<T> {
    return this.#calls.run(operation, signal, () => fn(Date.now() + this.timeoutMs));
  }
}
