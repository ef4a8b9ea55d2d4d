import type { DurationInput } from "../duration.js";
import { LeaseLostError } from "../errors.js";
import type { WorkerClock } from "../worker-clock.js";
import { MAX_DRIFT_PPM } from "./info.js";

/** What a claim or extend established, and when (the holder's monotonic clock). */
export interface Grant {
  readonly name: string;
  readonly holder: string;
  readonly token: bigint;
  readonly start: bigint;
  readonly expiry: bigint;
  /** The cluster's maxStep, read with the lease. */
  readonly maxStep: bigint;
  /** The global time read, no earlier than `t0`. */
  readonly time: bigint;
  /** The holder's monotonic time taken before anything was read. */
  readonly t0: bigint;
}

/** What a Lease needs from the Leases that made it. */
export interface LeaseOwner {
  readonly clock: WorkerClock;
  renew(grant: Grant, duration: DurationInput, signal?: AbortSignal): Promise<Grant>;
  release(grant: Grant, signal?: AbortSignal): Promise<void>;
}

const MILLION = 1_000_000n;

/**
 * The holder's deadline (docs/design.md, "The holder's deadline"): a rival can win only once
 * it reads a global time at or past `expiry`. From the holder's read (no earlier than `t0`),
 * global time moves at most one step of `maxStep` (the first write after the read) plus the
 * real time elapsed, that time as measured by updaters whose clocks may run fast by
 * MAX_DRIFT_PPM. So no rival wins before real time `t0 + (expiry − time − maxStep) / (1 + ρ)`,
 * which this machine's clock, slow by as much, reads as `(1 − ρ) / (1 + ρ)` of it.
 */
export function deadlineOf(grant: Grant): bigint {
  const left = grant.expiry - grant.time - grant.maxStep;
  return grant.t0 + (left * (MILLION - MAX_DRIFT_PPM)) / (MILLION + MAX_DRIFT_PPM);
}

/**
 * A held lease. `token` is the fencing token to hand to whatever the lease guards.
 * `deadline` is on this process's monotonic clock (`process.hrtime.bigint()`): the holder
 * must stop acting on the lease by then, and `signal` fires then, unless the lease was
 * extended in time. No wall clock is ever consulted.
 */
export class Lease {
  readonly #owner: LeaseOwner;
  /**
   * Made when `signal` is first asked for, and aborted when the lease stops; it also
   * cancels the deadline timer, which runs only while someone may listen. A lease whose
   * signal nobody asks for costs no controller, no timer and no error object: `held`
   * and `extend` read the clock themselves.
   */
  #controller: AbortController | undefined;
  /** Why the lease stopped, once it did (made when first needed). */
  #stopped: LeaseLostError | (() => LeaseLostError) | undefined;
  #grant: Grant;
  #deadline: bigint;
  #armed = false;

  constructor(owner: LeaseOwner, grant: Grant) {
    this.#owner = owner;
    this.#grant = grant;
    this.#deadline = deadlineOf(grant);
  }

  get name(): string {
    return this.#grant.name;
  }
  get holder(): string {
    return this.#grant.holder;
  }
  /** The fencing token: greater than any earlier holder's. */
  get token(): bigint {
    return this.#grant.token;
  }
  /** Global time the holder took the lease. */
  get start(): bigint {
    return this.#grant.start;
  }
  /** Global time from which others may take it. */
  get expiry(): bigint {
    return this.#grant.expiry;
  }
  /** The cluster's maxStep the deadline was computed with. */
  get maxStep(): bigint {
    return this.#grant.maxStep;
  }
  /** Monotonic time (ns, this process) by which the holder must stop acting on the lease. */
  get deadline(): bigint {
    return this.#deadline;
  }
  /** Fires at the deadline, or when the lease is released; the reason says which. */
  get signal(): AbortSignal {
    if (!this.#controller) {
      this.#controller = new AbortController();
      if (this.#stopped === undefined && this.#owner.clock.now() >= this.#deadline) {
        this.#stopped = this.#expired;
      }
      if (this.#stopped) this.#controller.abort(this.#reason());
      else this.#arm();
    }
    return this.#controller.signal;
  }
  /** True until the deadline passes (by the clock, whether or not its timer has fired yet) or the lease is released. */
  get held(): boolean {
    return this.#stopped === undefined && this.#owner.clock.now() < this.#deadline;
  }
  /** Nanoseconds left until the deadline (negative once it passed). */
  remaining(): bigint {
    return this.#deadline - this.#owner.clock.now();
  }

  /**
   * Extends the lease (never shortening it): the new expiry is the greater of the old one
   * and the global time read now plus `duration`. Throws LeaseLostError if the deadline
   * passed first (the holder had to stop; claim it again) or another took the lease.
   */
  async extend(duration: DurationInput, signal?: AbortSignal): Promise<this> {
    // `held` reads the clock, not only the timer: a process paused past its deadline may
    // run this before the timer's callback has had its turn.
    this.#checkHeld();
    const grant = await this.#owner.renew(this.#grant, duration, signal);
    this.#checkHeld(); // the deadline passed while the write was in flight
    this.#grant = grant;
    const deadline = deadlineOf(grant);
    // Stryker disable next-line EqualityOperator: an equal deadline set again is the same, and #arm does nothing while its timer is armed (always, while held)
    if (deadline > this.#deadline) {
      this.#deadline = deadline;
      this.#arm();
    }
    return this;
  }

  /** Releases the lease so another may take it at once; the token is kept, never reused. */
  async release(signal?: AbortSignal): Promise<void> {
    this.#stop(() => new LeaseLostError(this.name, "it was released by its holder"));
    await this.#owner.release(this.#grant, signal);
  }

  /** `await using lease = await leases.claim(…)` releases it at the end of the block. */
  async [Symbol.asyncDispose](): Promise<void> {
    await this.release().catch((err: unknown) => {
      if (!(err instanceof LeaseLostError)) throw err;
    });
  }

  /** Throws why the lease is gone, if it is: released, lost, or past its deadline by the clock. */
  #checkHeld(): void {
    if (this.held) return;
    this.#stop(this.#expired); // the deadline passed before its timer had its turn
    throw this.#reason();
  }

  /**
   * One timer at a time, cancelled by the lease's own signal: an extend that moves the
   * deadline later leaves it be, and when it fires before the (moved) deadline it waits
   * again for the rest.
   */
  #arm(): void {
    const controller = this.#controller;
    if (this.#armed || !controller) return; // no signal asked for: no timer either
    this.#armed = true;
    const wait = this.#deadline - this.#owner.clock.now();
    // Unref'd: a lease left unreleased must not keep its process alive until the deadline.
    void this.#owner.clock
      .sleep(
        // Stryker disable next-line EqualityOperator: `>=` differs only at wait === 0n, which passes 0n either way
        wait > 0n ? wait : 0n,
        controller.signal,
        { unref: true },
      )
      .then(this.#fired);
  }

  readonly #fired = (fired: boolean): void => {
    this.#armed = false;
    if (!fired) return; // the lease stopped
    if (this.#owner.clock.now() < this.#deadline) this.#arm();
    else this.#stop(this.#expired);
  };

  readonly #expired = (): LeaseLostError =>
    new LeaseLostError(
      this.name,
      "its deadline passed before it was extended; the holder must stop acting on it",
    );

  /** The first reason the lease stopped for, made now if it was not yet. */
  #reason(): LeaseLostError {
    const stopped = this.#stopped;
    if (typeof stopped !== "function") return stopped as LeaseLostError;
    const reason = stopped();
    this.#stopped = reason;
    return reason;
  }

  /** Stops the lease; the first reason stays. */
  #stop(reason: () => LeaseLostError): void {
    if (this.#stopped !== undefined) return;
    this.#stopped = reason;
    this.#controller?.abort(this.#reason());
  }
}
