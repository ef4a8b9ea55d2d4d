/**
 * The parts of the `etcd3` client the store uses, as structural types: an `Etcd3` of the
 * caller's fits them, and the store never loads `etcd3` itself (the URL opener does).
 */

/** Per-call options; the store sets an absolute deadline (ms since the Unix epoch). */
export interface EtcdCallOptions {
  deadline: number;
}

/** A transaction being built: `if(…).and(…).then(…).else(…).options(…).commit()`. */
export interface EtcdTxn {
  and(
    key: string,
    column: "Create" | "Value" | "Mod" | "Version" | "Lease",
    cmp: "==" | "!=" | ">" | "<",
    value: string | number,
  ): EtcdTxn;
  then(...ops: unknown[]): EtcdTxn;
  else(...ops: unknown[]): EtcdTxn;
  options(options: EtcdCallOptions): EtcdTxn;
  commit(): Promise<EtcdTxnResult>;
}

/** A key as etcd returns it; revisions are int64 as decimal strings. */
export interface EtcdKeyValue {
  key: Buffer;
  value: Buffer;
  mod_revision: string;
}

export interface EtcdTxnResult {
  succeeded: boolean;
  /** `revision`: the store's revision once the txn was applied (a write's mod_revision). */
  header?: { revision: string } | null;
  responses: Array<{ response_range?: { kvs?: EtcdKeyValue[] } | null }>;
}

/** A range read inside a raw txn: one key, or [key, range_end). */
export interface EtcdRangeRequest {
  key: Buffer;
  range_end?: Buffer;
}

/**
 * The client's raw KV service. The builders cannot make a txn without a compare, which
 * is how several keys are read in one round trip; this can.
 */
export interface EtcdKV {
  txn(
    request: { compare: []; success: Array<{ request_range: EtcdRangeRequest }>; failure: [] },
    options: EtcdCallOptions,
  ): Promise<EtcdTxnResult>;
}

/** A running watch: emits "put" and "delete" (with the key-value), "connected" and "error". */
export interface EtcdWatcher {
  on(event: "put" | "delete", listener: (kv: { value: Buffer }) => void): unknown;
  on(event: "connected", listener: () => void): unknown;
  on(event: "error", listener: (err: Error) => void): unknown;
  removeAllListeners(): unknown;
  cancel(): Promise<void>;
}

export interface EtcdClient {
  readonly kv: EtcdKV;
  get(key: string): { options(options: EtcdCallOptions): { buffer(): Promise<Buffer | null> } };
  put(key: string): { value(value: string): unknown };
  if(
    key: string,
    column: "Create" | "Value" | "Mod" | "Version" | "Lease",
    cmp: "==" | "!=" | ">" | "<",
    value: string | number,
  ): EtcdTxn;
  watch(): {
    key(key: string): { watcher(): EtcdWatcher };
    prefix(prefix: string): { watcher(): EtcdWatcher };
  };
  close(): void;
}
