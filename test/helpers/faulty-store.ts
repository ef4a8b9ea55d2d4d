import { StoreError } from "../../src/errors.js";
import type { ClockStore } from "../../src/store.js";

/**
 * Where an injected failure strikes:
 * - "before": the operation throws without reaching the store (nothing written);
 * - "after": the operation is performed, then throws, as when a write commits but its
 *   acknowledgement is lost (the caller cannot tell this from "before").
 */
export type FaultPoint = "before" | "after";

type Operation = "read" | "ensure" | "compareAndSwap";

/** One compareAndSwap that reached the inner store, and whether it won. */
export interface SwapCall {
  old: bigint;
  next: bigint;
  won: boolean;
}

/**
 * Wraps a ClockStore and, on command, makes its next operations fail. Without a pending
 * fault it forwards everything unchanged, `watch` included when the inner store has it.
 */
export class FaultyStore implements ClockStore {
  readonly inner: ClockStore;
  readonly kind: string;
  readonly #pending: Array<{ operation: Operation; point: FaultPoint }> = [];
  /** Swaps the inner store performed and reported as won, acknowledged or not. */
  committedSwaps = 0;
  /** Failures injected so far. */
  injected = 0;
  /** Calls received per operation, failed ones included. */
  readonly calls: Record<Operation, number> = { read: 0, ensure: 0, compareAndSwap: 0 };
  /** Every swap that reached the inner store, in order. */
  readonly swaps: SwapCall[] = [];

  /** `push: false` hides the inner store's watch, so callers must poll. */
  constructor(inner: ClockStore, options: { push?: boolean } = {}) {
    this.inner = inner;
    this.kind = inner.kind;
    const watch = inner.watch;
    if (watch && options.push !== false) this.watch = (signal) => watch.call(inner, signal);
  }

  /** The sizes of the swaps that won. */
  get steps(): bigint[] {
    return this.swaps.filter((c) => c.won).map((c) => c.next - c.old);
  }

  /** Makes the next call of `operation` fail at `point`. Several faults queue in order. */
  failNext(operation: Operation, point: FaultPoint): void {
    this.#pending.push({ operation, point });
  }

  /** Faults queued but not yet triggered. */
  get pendingFaults(): number {
    return this.#pending.length;
  }

  read(signal?: AbortSignal): Promise<bigint | undefined> {
    return this.#run("read", () => this.inner.read(signal));
  }

  ensure(signal?: AbortSignal): Promise<bigint> {
    return this.#run("ensure", () => this.inner.ensure(signal));
  }

  compareAndSwap(old: bigint, next: bigint, signal?: AbortSignal): Promise<boolean> {
    return this.#run("compareAndSwap", async () => {
      const won = await this.inner.compareAndSwap(old, next, signal);
      this.swaps.push({ old, next, won });
      if (won) this.committedSwaps++;
      return won;
    });
  }

  watch?: (signal: AbortSignal) => AsyncIterable<bigint>;

  close(): Promise<void> {
    return this.inner.close();
  }

  async #run<T>(operation: Operation, fn: () => Promise<T>): Promise<T> {
    this.calls[operation]++;
    const at = this.#pending.findIndex((f) => f.operation === operation);
    const fault = at < 0 ? undefined : this.#pending.splice(at, 1)[0];
    if (!fault) return fn();
    const { point } = fault;
    this.injected++;
    if (point === "after") await fn();
    throw new StoreError(
      this.kind,
      operation,
      point === "after"
        ? "injected fault: performed, then the answer was lost"
        : "injected fault: failed before reaching the store",
    );
  }
}
