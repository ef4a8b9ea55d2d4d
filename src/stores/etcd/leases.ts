import { StoreError } from "../../errors.js";
import type { LeaseStore, LeaseWrite } from "../../lease-store.js";
import { latestValues } from "../../push.js";
import { INT64_MAX } from "../../time.js";
import type { StoreCalls } from "../call.js";
import type { EtcdClient, EtcdKeyValue, EtcdRangeRequest, EtcdTxnResult } from "./client.js";
import { decodeLease, decodeMaxStep, decodeTime, encodeLease } from "./values.js";
import { attachWatcher, type EndWatch } from "./watcher.js";

const KIND = "etcd";

/** Runs one operation with one absolute deadline (the store's `#call`). */
export type EtcdCall = <T>(
  operation: string,
  signal: AbortSignal | undefined,
  fn: (deadline: number) => Promise<T>,
) => Promise<T>;

export interface EtcdLeasesOptions {
  client: EtcdClient;
  /** The clock's key, K. */
  key: string;
  call: EtcdCall;
  calls: StoreCalls;
  /** The store's running watches, which close() ends. */
  watches: Set<EndWatch>;
}

/**
 * Leases beside the clock key K: each lease at `K/leases/<name>`, its value JSON
 * (see values.ts), its version the key's mod_revision; the cluster's maxStep at `K/maxStep`.
 *
 * Fencing tokens are etcd revisions, which etcd never hands out twice, not even after keys
 * (or every lease key) were deleted. A new token is the revision of the txn that writes it;
 * the value cannot hold its own revision, so it holds TOKEN_IS_REVISION instead. Every later
 * write that keeps the token writes its number, so the marker stands only in the write that
 * made the token, where it is the key's mod_revision.
 *
 * Round trips: every call but watchLeases takes one txn; watchLeases is one watch stream on
 * the prefix.
 *
 * Reads are linearizable (etcd's default), every key of one read from one revision.
 */
export class EtcdLeases implements LeaseStore {
  readonly #client: EtcdClient;
  readonly #clockKey: string;
  readonly #maxStepKey: string;
  /** `K/leases/`: every lease key starts with it. */
  readonly #leasePrefix: string;
  readonly #call: EtcdCall;
  readonly #calls: StoreCalls;
  readonly #watches: Set<EndWatch>;

  constructor(options: EtcdLeasesOptions) {
    this.#client = options.client;
    this.#clockKey = options.key;
    this.#maxStepKey = `${options.key}/maxStep`;
    this.#leasePrefix = `${options.key}/leases/`;
    this.#call = options.call;
    this.#calls = options.calls;
    this.#watches = options.watches;
  }

  /** One txn without a compare: the clock and maxStep, at one revision. */
  readClock(signal?: AbortSignal) {
    return this.#call("readClock", signal, async (deadline) =>
      this.#context(await this.#read(undefined, deadline), "readClock"),
    );
  }

  /**
   * One txn: if the clock's value is `old` and maxStep's is `maxStep`, put `next`. etcd fails
   * a Value compare on a missing key (whatever the operator), so a deleted clock or maxStep
   * refuses the advance. A retry of a committed attempt fails its compare, as in
   * compareAndSwap.
   */
  advanceClock(old: bigint, next: bigint, maxStep: bigint, signal?: AbortSignal) {
    return this.#call("advanceClock", signal, async (deadline) => {
      // A negative `old` or `maxStep` can only match a corrupt value, which is left alone.
      if (old < 0n || maxStep < 0n) return false;
      const c = this.#client;
      const key = this.#clockKey;
      const res = await c
        .if(key, "Value", "==", old.toString())
        .and(this.#maxStepKey, "Value", "==", maxStep.toString())
        .then(c.put(key).value(next.toString()))
        .options({ deadline })
        .commit();
      return res.succeeded;
    });
  }

  /** One txn without a compare: the clock, maxStep and the lease, at one revision. */
  readLease(name: string, signal?: AbortSignal) {
    return this.#call("readLease", signal, async (deadline) => {
      const key = Buffer.from(this.#leasePrefix + name);
      const res = await this.#read({ key }, deadline);
      const kv = res.responses[2]?.response_range?.kvs?.[0];
      return {
        ...this.#context(res, "readLease"),
        lease: kv && decodeLease(name, kv, "readLease"),
      };
    });
  }

  /** One txn: the clock, maxStep and every lease under the prefix, in key (byte) order. */
  listLeases(prefix: string, signal?: AbortSignal) {
    return this.#call("listLeases", signal, async (deadline) => {
      const key = Buffer.from(this.#leasePrefix + prefix);
      const res = await this.#read({ key, range_end: prefixEnd(key) }, deadline);
      const kvs = res.responses[2]?.response_range?.kvs ?? [];
      const skip = Buffer.byteLength(this.#leasePrefix);
      return {
        ...this.#context(res, "listLeases"),
        leases: kvs.map((kv: EtcdKeyValue) =>
          decodeLease(kv.key.subarray(skip).toString("utf8"), kv, "listLeases"),
        ),
      };
    });
  }

  /**
   * A txn comparing the key's create revision (0: no key) or its mod revision, then a put;
   * the new version is the revision the txn made, and so is a new token. That is above the
   * record's old token, an earlier revision; a token written by hand above the store's
   * revision would not be honoured. The client may retry a call whose first attempt
   * committed: the retry then loses its compare and reports `undefined`, as a lost race
   * does, and Leases re-reads, finding its own write (the marker read as its revision).
   */
  writeLease(write: LeaseWrite, version: bigint | undefined, signal?: AbortSignal) {
    return this.#call("writeLease", signal, async (deadline) => {
      const key = this.#leasePrefix + write.name;
      const c = this.#client;
      const txn =
        version === undefined
          ? c.if(key, "Create", "==", 0)
          : c.if(key, "Mod", "==", version.toString());
      const res = await txn
        .then(c.put(key).value(encodeLease(write, "writeLease")))
        .options({ deadline })
        .commit();
      if (!res.succeeded) return undefined;
      const revision = res.header?.revision;
      if (revision === undefined)
        throw new StoreError(KIND, "writeLease", "the txn answered without a revision");
      const written = BigInt(revision);
      return { version: written, token: write.newToken ? written : write.token };
    });
  }

  /** One txn: put `value` if the key was never created, else get it (as the clock's ensure). */
  ensureMaxStep(value: bigint, signal?: AbortSignal) {
    return this.#call("ensureMaxStep", signal, async (deadline) => {
      checkInt64(value, "ensureMaxStep");
      const c = this.#client;
      const key = this.#maxStepKey;
      const res = await c
        .if(key, "Create", "==", 0)
        .then(c.put(key).value(value.toString()))
        .else(c.get(key))
        .options({ deadline })
        .commit();
      if (res.succeeded) return value;
      const kv = res.responses[0]?.response_range?.kvs?.[0];
      // Deleted between the compare and the get is impossible (one txn); still, say so.
      if (!kv) throw new StoreError(KIND, "ensureMaxStep", "the key vanished inside a transaction");
      return decodeMaxStep(kv.value, "ensureMaxStep");
    });
  }

  swapMaxStep(old: bigint, next: bigint, signal?: AbortSignal) {
    return this.#call("swapMaxStep", signal, async (deadline) => {
      checkInt64(next, "swapMaxStep");
      if (old < 0n) return false; // only a corrupt value could match, and it is left alone
      const c = this.#client;
      const res = await c
        .if(this.#maxStepKey, "Value", "==", old.toString())
        .then(c.put(this.#maxStepKey).value(next.toString()))
        .options({ deadline })
        .commit();
      return res.succeeded;
    });
  }

  /**
   * A notice at every put or delete under `K/leases/<prefix>`, and one each time the watch
   * is (re)established, since a write made before that may have gone unseen. The client
   * re-establishes a broken watch stream by itself, as for the clock's watch.
   */
  watchLeases(prefix: string, signal: AbortSignal): AsyncIterable<void> {
    this.#calls.checkOpen();
    return latestValues<void>(signal, (push, fail) => {
      const watcher = this.#client
        .watch()
        .prefix(this.#leasePrefix + prefix)
        .watcher();
      const notice = () => push();
      watcher.on("put", notice);
      watcher.on("delete", notice);
      watcher.on("connected", notice);
      return attachWatcher(watcher, this.#watches, fail, (err) =>
        this.#calls.error("watchLeases", err),
      );
    });
  }

  /** The clock, maxStep and (where given) the lease range, in one txn without a compare. */
  #read(lease: EtcdRangeRequest | undefined, deadline: number): Promise<EtcdTxnResult> {
    const ranges: EtcdRangeRequest[] = [this.#clockKey, this.#maxStepKey].map((key) => ({
      key: Buffer.from(key),
    }));
    if (lease) ranges.push(lease);
    const success = ranges.map((range) => ({ request_range: range }));
    return this.#client.kv.txn({ compare: [], success, failure: [] }, { deadline });
  }

  #context(res: EtcdTxnResult, operation: string) {
    const clock = res.responses[0]?.response_range?.kvs?.[0];
    const maxStep = res.responses[1]?.response_range?.kvs?.[0];
    return {
      time: clock && decodeTime(clock.value, operation),
      maxStep: maxStep && decodeMaxStep(maxStep.value, operation),
    };
  }
}

/** The end of the range of keys that start with `key`: its last byte below 0xff, plus one. */
function prefixEnd(key: Buffer): Buffer {
  let end = key.length;
  while (end > 0 && key[end - 1] === 0xff) end--;
  const out = Buffer.from(key.subarray(0, end));
  out[end - 1] = (out[end - 1] as number) + 1;
  return out;
}

function checkInt64(value: bigint, operation: string): void {
  if (value < 0n || value > INT64_MAX) {
    throw new StoreError(KIND, operation, `maxStep ${value} is not a non-negative int64`, {
      retryable: false,
    });
  }
}
