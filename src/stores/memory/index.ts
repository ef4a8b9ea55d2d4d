import { splitOpaqueUrl, urlOptions } from "../../config.js";
import { ClosedError } from "../../errors.js";
import { latestValues } from "../../push.js";

import type { ClockStore, OpenOptions } from "../../store.js";
import { StoreCalls } from "../call.js";
import { type MemoryCell, memoryCell, newCell } from "./cell.js";
import { cellTime, MemoryLeases } from "./leases.js";

export { type MemoryCell, memoryCell } from "./cell.js";

const KIND = "memory";

// Nothing here can fail but a corrupt cell, which is already a StoreError.
const explain = (err: unknown) => ({ message: String(err), retryable: false });

/**
 * A store in this process's memory, for tests and single-process use. `memory:` gives a
 * private clock; `memory:NAME` one shared by every store opened on NAME in this process.
 */
export class MemoryStore implements ClockStore {
  readonly kind = KIND;
  readonly #cell: MemoryCell;
  readonly #calls = new StoreCalls({ kind: KIND, explain });
  readonly #watches = new Set<() => void>();
  readonly #read = () => this.#current("read");
  readonly leases: MemoryLeases;

  constructor(name?: string) {
    this.#cell = name ? memoryCell(name) : newCell();
    this.leases = new MemoryLeases(this.#cell, this.#calls, this.#watches);
  }

  read(signal?: AbortSignal): Promise<bigint | undefined> {
    return this.#calls.run("read", signal, this.#read);
  }

  ensure(signal?: AbortSignal): Promise<bigint> {
    return this.#calls.run("ensure", signal, () => {
      if (this.#cell.value === undefined) this.#set(0n);
      return this.#current("ensure") as bigint;
    });
  }

  compareAndSwap(old: bigint, next: bigint, signal?: AbortSignal): Promise<boolean> {
    return this.#calls.run("compareAndSwap", signal, () => {
      // A negative `old` can only match a corrupt record, which is never overwritten.
      if (old < 0n || this.#cell.value !== old) return false;
      this.#set(next);
      return true;
    });
  }

  watch(signal: AbortSignal): AsyncIterable<bigint> {
    this.#calls.checkOpen();
    return latestValues<bigint>(signal, (push, fail) => {
      const end = () => fail(new ClosedError("memory store"));
      this.#cell.listeners.add(push);
      this.#watches.add(end);
      return () => {
        this.#cell.listeners.delete(push);
        this.#watches.delete(end);
      };
    });
  }

  async close(): Promise<void> {
    if (!this.#calls.close()) return;
    for (const end of this.#watches) end();
  }

  #current(operation: string): bigint | undefined {
    return cellTime(this.#cell.value, operation);
  }

  #set(time: bigint): void {
    this.#cell.value = time;
    for (const listener of this.#cell.listeners) listener(time);
  }
}

/** `memory:` (a private clock) or `memory:NAME` (shared by name within this process). */
export async function open(url: string, _options: OpenOptions = {}): Promise<MemoryStore> {
  const { path, params } = splitOpaqueUrl(url, "memory:");
  urlOptions(KIND, params, []);
  return new MemoryStore(path || undefined);
}
