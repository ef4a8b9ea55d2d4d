import type { ClockStore } from "../../src/store.js";

export interface CasCall {
  old: bigint;
  next: bigint;
  won: boolean;
}

/**
 * Wraps a store, recording every compareAndSwap and injecting failures on request.
 * `failNext("before")` throws before the swap reaches the store; `failNext("after")`
 * performs the swap and then throws, like a write whose acknowledgement was lost.
 */
export class SpyStore implements ClockStore {
  readonly kind: string;
  readonly calls: CasCall[] = [];
  readonly #inner: ClockStore;
  #fail: Array<"before" | "after"> = [];
  watch?: (signal: AbortSignal) => AsyncIterable<bigint>;

  constructor(inner: ClockStore, options: { push?: boolean } = {}) {
    this.#inner = inner;
    this.kind = inner.kind;
    if (options.push !== false && inner.watch)
      this.watch = (signal) =>
        (inner.watch as NonNullable<ClockStore["watch"]>).call(inner, signal);
  }

  failNext(...how: Array<"before" | "after">): void {
    this.#fail.push(...how);
  }

  /** The advances that won, as step sizes. */
  get steps(): bigint[] {
    return this.calls.filter((c) => c.won).map((c) => c.next - c.old);
  }

  read(signal?: AbortSignal) {
    return this.#inner.read(signal);
  }

  ensure(signal?: AbortSignal) {
    return this.#inner.ensure(signal);
  }

  async compareAndSwap(old: bigint, next: bigint, signal?: AbortSignal): Promise<boolean> {
    const fail = this.#fail.shift();
    if (fail === "before") throw new Error("injected failure before the swap");
    const won = await this.#inner.compareAndSwap(old, next, signal);
    this.calls.push({ old, next, won });
    if (fail === "after") throw new Error("injected failure after the swap");
    return won;
  }

  close() {
    return this.#inner.close();
  }
}
