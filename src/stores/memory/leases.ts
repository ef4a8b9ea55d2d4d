import { ClosedError } from "../../errors.js";
import type { LeaseRecord, LeaseStore, LeaseWrite } from "../../lease-store.js";
import { latestValues } from "../../push.js";
import {
  CLOCK_TIME,
  checkLease,
  checkStoredTime,
  checkWrite,
  MAX_STEP,
  type RawLease,
  wrongType,
} from "../../record.js";
import { later } from "../../time.js";
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

  readClock(signal?: AbortSignal) {
    return this.#calls.run("readClock", signal, () => this.#context("readClock"));
  }

  advanceClock(old: bigint, next: bigint, maxStep: bigint, signal?: AbortSignal) {
    return this.#calls.run("advanceClock", signal, () => {
      const cell = this.#cell;
      // A negative `old` can only match a corrupt record, which is never overwritten.
      if (old < 0n || cell.value !== old || cell.maxStep !== maxStep) return false;
      cell.value = next;
      for (const listener of cell.listeners) listener(next);
      return true;
    });
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

  writeLease(write: LeaseWrite, version: bigint | undefined, signal?: AbortSignal) {
    return this.#calls.run("writeLease", signal, () => {
      const cell = this.#cell;
      checkWrite(write, KIND, "writeLease");
      const stored = this.#lease(write.name, "writeLease"); // a corrupt record throws here
      if (stored?.version !== version) return undefined;
      let token = write.token;
      if (write.newToken) {
        token = later(write.token, cell.lastToken) + 1n;
        cell.lastToken = token;
      }
      const next = ++cell.leaseVersion;
      const raw: RawLease = {
        name: write.name,
        holder: write.holder,
        token,
        start: write.start,
        expiry: write.expiry,
        pins: [...write.pins],
        version: next,
      };
      cell.leases.set(write.name, raw);
      for (const listener of cell.leaseListeners) listener(write.name);
      return { version: next, token };
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
