import { ClosedError } from "../errors.js";
import { latestValues } from "../push.js";
import { checkStoredTime, wrongType } from "../record.js";
import type { ClockStore } from "../store.js";

/** One clock record in this process. `value` is unknown so tests can plant corrupt data. */
export interface MemoryCell {
  value: unknown;
  readonly listeners: Set<(time: bigint) => void>;
}

const named = new Map<string, MemoryCell>();

/**
 * The cell behind `memory:NAME`, shared by every store opened on that name in this
 * process. Exposed for tests that need to plant a corrupt record.
 */
export function memoryCell(name: string): MemoryCell {
  let cell = named.get(name);
  if (!cell) {
    cell = { value: undefined, listeners: new Set() };
    named.set(name, cell);
  }
  return cell;
}

/**
 * A store in this process's memory, for tests and single-process use. `memory:` gives a
 * private clock; `memory:NAME` one shared by every store opened on NAME in this process.
 */
export class MemoryStore implements ClockStore {
  readonly kind = "memory";
  readonly #cell: MemoryCell;
  readonly #watches = new Set<() => void>();
  #closed = false;

  constructor(name?: string) {
    this.#cell = name ? memoryCell(name) : { value: undefined, listeners: new Set() };
  }

  async read(signal?: AbortSignal): Promise<bigint | undefined> {
    this.#check(signal);
    return this.#current("read");
  }

  async ensure(signal?: AbortSignal): Promise<bigint> {
    this.#check(signal);
    if (this.#cell.value === undefined) this.#set(0n);
    return this.#current("ensure") as bigint;
  }

  async compareAndSwap(old: bigint, next: bigint, signal?: AbortSignal): Promise<boolean> {
    this.#check(signal);
    if (typeof this.#cell.value !== "bigint" || this.#cell.value !== old) return false;
    this.#set(next);
    return true;
  }

  watch(signal: AbortSignal): AsyncIterable<bigint> {
    this.#check();
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
    this.#closed = true;
    for (const end of this.#watches) end();
  }

  #current(operation: string): bigint | undefined {
    const value = this.#cell.value;
    if (value === undefined) return undefined;
    if (typeof value !== "bigint") throw wrongType(this.kind, operation, value);
    return checkStoredTime(value, this.kind, operation);
  }

  #set(time: bigint): void {
    this.#cell.value = time;
    for (const listener of this.#cell.listeners) listener(time);
  }

  #check(signal?: AbortSignal): void {
    if (this.#closed) throw new ClosedError("memory store");
    signal?.throwIfAborted();
  }
}
