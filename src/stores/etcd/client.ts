/**
 * The parts of the `etcd3` client the store uses, as structural types: an `Etcd3` of the
 * caller's fits them, and the store never loads `etcd3` itself (the URL opener does).
 */

/** Per-call options; the store sets an absolute deadline (ms since the Unix epoch). */
export interface EtcdCallOptions {
  deadline: number;
}

/** A transaction being built: `if(…).then(…).else(…).options(…).commit()`. */
export interface EtcdTxn {
  then(...ops: unknown[]): EtcdTxn;
  else(...ops: unknown[]): EtcdTxn;
  options(options: EtcdCallOptions): EtcdTxn;
  commit(): Promise<EtcdTxnResult>;
}

export interface EtcdTxnResult {
  succeeded: boolean;
  responses: Array<{ response_range?: { kvs?: Array<{ value: Buffer }> } | null }>;
}

/** A running watch: emits "put" (with the key-value), "connected" and "error". */
export interface EtcdWatcher {
  on(event: "put", listener: (kv: { value: Buffer }) => void): unknown;
  on(event: "connected", listener: () => void): unknown;
  on(event: "error", listener: (err: Error) => void): unknown;
  removeAllListeners(): unknown;
  cancel(): Promise<void>;
}

export interface EtcdClient {
  get(key: string): { options(options: EtcdCallOptions): { buffer(): Promise<Buffer | null> } };
  put(key: string): { value(value: string): unknown };
  if(
    key: string,
    column: "Create" | "Value" | "Mod" | "Version" | "Lease",
    cmp: "==" | "!=" | ">" | "<",
    value: string | number,
  ): EtcdTxn;
  watch(): { key(key: string): { watcher(): EtcdWatcher } };
  close(): void;
}
