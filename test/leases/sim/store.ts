/**
 * The seams' contracts (src/store.ts, src/lease-store.ts) kept in memory, on simulated
 * time: every call is applied after a delay and answered after another, and a planner
 * (the scenario's adversary) picks the delays and the faults: an answer lost before or
 * after the call was applied, or a call that hangs until its caller gives up on it. Each
 * process talks to the store through its own connection, whose answers wait while the
 * process is frozen.
 */
import { StoreError } from "../../../src/errors.js";
import type {
  LeaseContext,
  LeaseRecord,
  LeaseStore,
  LeaseWrite,
  LeaseWritten,
} from "../../../src/lease-store.js";
import type { ClockStore } from "../../../src/store.js";
import { later } from "../../../src/time.js";
import type { Proc, Sim } from "./scheduler.js";

export type Fault = "none" | "lost-before" | "lost-after" | "hang";

/** When a call is applied and answered, and whether its answer arrives. */
export interface Plan {
  apply: bigint;
  answer: bigint;
  fault: Fault;
}

export type Op =
  | "read"
  | "ensure"
  | "compareAndSwap"
  | "readClock"
  | "advanceClock"
  | "readLease"
  | "listLeases"
  | "writeLease"
  | "ensureMaxStep"
  | "swapMaxStep";

export type Planner = (proc: Proc, op: Op) => Plan;

/** A clock write the store applied: when, the value before and after, by whom. */
export interface ClockWrite {
  at: bigint;
  from: bigint;
  to: bigint;
  by: string;
}

export class SimStore {
  time: bigint | undefined = undefined;
  maxStep: bigint | undefined = undefined;
  lastToken = 0n;
  #version = 0n;
  readonly records = new Map<string, LeaseRecord>();
  readonly clockWrites: ClockWrite[] = [];
  /** Every lease write applied: when, and what. */
  readonly leaseWrites: Array<{ at: bigint; record: LeaseRecord }> = [];
  /** Negative control: advances that do not compare the stored maxStep. */
  compareMaxStep = true;
  /**
   * How long a hung call takes to fail, as a store's own deadline ends it (a timeout of
   * unknown outcome); undefined: only the caller's signal ends it.
   */
  hangTimeout: bigint | undefined;
  /** Called once a call is applied (the adversary watches). */
  onApplied: ((proc: Proc, op: Op, result: unknown) => void) | undefined;

  constructor(
    readonly sim: Sim,
    readonly plan: Planner,
  ) {}

  /** A connection for `proc`. */
  connect(proc: Proc): ClockStore {
    const call = <T>(op: Op, signal: AbortSignal | undefined, fn: () => T) =>
      this.#call(proc, op, signal, fn);
    const leases: LeaseStore = {
      readClock: (signal) => call("readClock", signal, () => this.#context()),
      advanceClock: (old, next, maxStep, signal) =>
        call("advanceClock", signal, () => {
          if (this.time !== old) return false;
          if (this.compareMaxStep && this.maxStep !== maxStep) return false;
          this.#setTime(next, proc);
          return true;
        }),
      readLease: (name, signal) =>
        call("readLease", signal, () => ({ ...this.#context(), lease: this.records.get(name) })),
      listLeases: (prefix, signal) =>
        call("listLeases", signal, () => ({
          ...this.#context(),
          leases: [...this.records.values()]
            .filter((r) => r.name.startsWith(prefix))
            .sort((a, b) => (a.name < b.name ? -1 : 1)),
        })),
      writeLease: (write, version, signal) =>
        call("writeLease", signal, () => this.#writeLease(write, version)),
      ensureMaxStep: (value, signal) =>
        call("ensureMaxStep", signal, () => {
          this.maxStep ??= value;
          return this.maxStep;
        }),
      swapMaxStep: (old, next, signal) =>
        call("swapMaxStep", signal, () => {
          if (this.maxStep !== old) return false;
          this.maxStep = next;
          return true;
        }),
    };
    return {
      kind: "sim",
      read: (signal) => call("read", signal, () => this.time),
      ensure: (signal) =>
        call("ensure", signal, () => {
          this.time ??= 0n;
          return this.time;
        }),
      compareAndSwap: (old, next, signal) =>
        call("compareAndSwap", signal, () => {
          if (this.time !== old) return false;
          this.#setTime(next, proc);
          return true;
        }),
      leases,
      close: async () => {},
    };
  }

  /** An operator's change, applied at once. */
  operator = {
    setMaxStep: (value: bigint | undefined) => {
      this.maxStep = value;
    },
    deleteLease: (name: string) => this.records.delete(name),
  };

  #context(): LeaseContext {
    return { time: this.time, maxStep: this.maxStep };
  }

  #setTime(next: bigint, proc: Proc): void {
    this.clockWrites.push({ at: this.sim.now, from: this.time ?? 0n, to: next, by: proc.name });
    this.time = next;
  }

  #writeLease(write: LeaseWrite, version: bigint | undefined): LeaseWritten | undefined {
    if (this.records.get(write.name)?.version !== version) return undefined;
    let token = write.token;
    if (write.newToken) {
      token = later(write.token, this.lastToken) + 1n;
      this.lastToken = token;
    }
    const record: LeaseRecord = {
      name: write.name,
      holder: write.holder,
      token,
      start: write.start,
      expiry: write.expiry,
      pins: write.pins,
      version: ++this.#version,
    };
    this.records.set(write.name, record);
    this.leaseWrites.push({ at: this.sim.now, record });
    return { version: record.version, token };
  }

  #call<T>(proc: Proc, op: Op, signal: AbortSignal | undefined, fn: () => T): Promise<T> {
    const { sim } = this;
    return new Promise<T>((resolve, reject) => {
      if (signal?.aborted) return reject(signal.reason);
      const plan = this.plan(proc, op);
      let settled = false;
      const settle = (ok: boolean, value: unknown) => {
        if (settled) return;
        settled = true;
        signal?.removeEventListener("abort", onAbort);
        if (ok) resolve(value as T);
        else reject(value);
      };
      // The caller gives up at once; the call may still be applied (its outcome is unknown).
      const onAbort = () => settle(false, signal?.reason);
      signal?.addEventListener("abort", onAbort, { once: true });
      const lost = () => new StoreError("sim", op, "the answer was lost");
      if (plan.fault === "hang" && this.hangTimeout !== undefined) {
        const timedOut = new StoreError("sim", op, "timed out; the outcome is unknown");
        proc.deliver(sim.now + this.hangTimeout, () => settle(false, timedOut));
      }
      sim.at(sim.now + plan.apply, () => {
        if (plan.fault === "lost-before") {
          proc.deliver(sim.now + plan.answer, () => settle(false, lost()));
          return;
        }
        let ok = true;
        let result: unknown;
        try {
          result = fn();
        } catch (err) {
          ok = false;
          result = err;
        }
        this.onApplied?.(proc, op, result);
        if (plan.fault === "hang") return; // only the caller's signal ends it
        proc.deliver(sim.now + plan.answer, () =>
          plan.fault === "lost-after" ? settle(false, lost()) : settle(ok, result),
        );
      });
    });
  }
}
