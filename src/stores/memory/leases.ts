import { ClosedError } from "../../errors.js";
import type { LeaseFields, LeaseRecord, LeaseStore } from "../../lease-store.js";
import { latestValues } from "../../push.js";
import {
  CLOCK_TIME,
  checkLease,
  checkStoredTime,
  MAX_STEP,
  type RawLease,
  wrongType,
} from "../../record.js";
import type { StoreCalls } from "../call.js";
import type { MemoryCell } from "./cell.js";

const KIND = "memory";

/** The stored time of a cell's clock (or maxStep), checked as every store checks it. */
export function cellTime(value: unknown, operation: string, what = CLOCK_TIME): bigint | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== "bigint") throw wrongType(KIND, operation, value, what);
  return checkStoredTime(value, KIND, operation, what);
}

/** Leases in a memory cell, beside its clock. */
export class MemoryLeases implements LeaseStore {
  readonly #cell: MemoryCell;
  readonly #calls: StoreCalls;

  readonly #watches: Set<() => void>;

  /** `watches`: the store's running watches, which its close() ends. */
  constructor(cell: MemoryCell, calls: StoreCalls, watches: Set<() => void>) {
    this.#cell = cell;
    this.#calls = calls;
    this.#watches = watches;
  }

  readLease(name: string, signal?: AbortSignal) {
    return this.#calls.run("readLease", signal, () => ({
      ...this.#context("readLease"),
      lease: this.#lease(name, "readLease"),
    }));
  }

  listLeases(prefix: string, signal?: AbortSignal) {
    return this.#calls.run("listLeases", signal, () => ({
      ...this.#context("listLeases"),
      leases: [...this.#cell.leases.keys()]
        .filter((name) => name.startsWith(prefix))
        .sort()
        .map((name) => this.#lease(name, "listLeases") as LeaseRecord),
    }));
  }

  writeLease(lease: LeaseFields, version: bigint | undefined, signal?: AbortSignal) {
    return this.#calls.run("writeLease", signal, () => {
      const stored = this.#lease(lease.name, "writeLease"); // a corrupt record throws here
      if (stored?.version !== version) return undefined;
      const next = ++this.#cell.leaseVersion;
      const raw: RawLease = { ...lease, pins: [...lease.pins], version: next };
      this.#cell.leases.set(lease.name, raw);
      for (const listener of this.#cell.leaseListeners) listener(lease.name);
      return next;
    });
  }

  ensureMaxStep(value: bigint, signal?: AbortSignal) {
    return this.#calls.run("ensureMaxStep", signal, () => {
      if (this.#cell.maxStep === undefined) this.#cell.maxStep = value;
      return cellTime(this.#cell.maxStep, "ensureMaxStep", MAX_STEP) as bigint;
    });
  }

  swapMaxStep(old: bigint, next: bigint, signal?: AbortSignal) {
    return this.#calls.run("swapMaxStep", signal, () => {
      if (old < 0n || this.#cell.maxStep !== old) return false;
      this.#cell.maxStep = next;
      return true;
    });
  }

  watchLeases(prefix: string, signal: AbortSignal): AsyncIterable<void> {
    this.#calls.checkOpen();
    return latestValues<void>(signal, (push, fail) => {
      const listener = (name: string) => {
        if (name.startsWith(prefix)) push();
      };
      const end = () => fail(new ClosedError("memory store"));
      this.#cell.leaseListeners.add(listener);
      this.#watches.add(end);
      return () => {
        this.#cell.leaseListeners.delete(listener);
        this.#watches.delete(end);
      };
    });
  }

  #context(operation: string) {
    return {
      time: cellTime(this.#cell.value, operation),
      maxStep: cellTime(this.#cell.maxStep, operation, MAX_STEP),
    };
  }

  #lease(name: string, operation: string): LeaseRecord | undefined {
    const raw = this.#cell.leases.get(name);
    return raw === undefined ? undefined : checkLease(raw as RawLease, KIND, operation);
  }
}
