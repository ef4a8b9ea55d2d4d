/**
 * Sessions (docs/design.md, "Sessions"): one record per holder with its own expiry, renewed
 * by one write however many leases are held through it. The record is a lease record whose
 * name begins with SESSION_PREFIX; a lease held through the session names that record as
 * its holder, and is free once the session is (ended, or expired at the stored global time).
 */
import { randomBytes } from "node:crypto";
import { type DurationInput, toNanoseconds } from "../duration.js";
import { LeaseLostError, StoreError } from "../errors.js";
import type { UpdaterWorker } from "../worker.js";
import type { WorkerClock } from "../worker-clock.js";
import type { Campaign } from "./election.js";
import { type HoldSchedule, holdSchedule, keep, retryPause } from "./hold.js";
import { SESSION_PREFIX } from "./info.js";
import type { Grant, Lease } from "./lease.js";
import { checkLeaseText } from "./validate.js";

/** What a Session needs of the Leases that opened it; names are not checked again here. */
export interface SessionOwner {
  readonly clock: WorkerClock;
  /** Claims the session's own record. */
  claim(name: string, holder: string, ttl: bigint, signal?: AbortSignal): Promise<Lease>;
  /** Renews the session's record held as `lease`, whatever its deadline: a new Lease. */
  extend(lease: Lease, ttl: bigint, signal?: AbortSignal): Promise<Lease>;
  /** Claims lease `name` through session record `session`. */
  claimThrough(name: string, session: string, signal?: AbortSignal): Promise<Grant>;
  /** Releases record `name` held by `holder` with `token`. */
  release(name: string, holder: string, token: bigint, signal?: AbortSignal): Promise<void>;
  /** A campaign on lease `name` through `session`. */
  campaign(name: string, session: Session, signal?: AbortSignal): Campaign<SessionLease>;
  /** A stand-by updater worker, stopped by `signal`. */
  keepTime(signal: AbortSignal): Promise<UpdaterWorker>;
}

export interface SessionOptions {
  /** The session's duration in global time; at least 3 × the cluster's maxStep. */
  ttl: DurationInput;
  /** How often it is renewed. Default a third of what a renewal can count on. */
  renewEvery?: DurationInput;
  /** First pause after a failed renewal; doubles up to half of renewEvery. Default 100 ms. */
  retryDelay?: DurationInput;
  /** Ends the opening claim (not the session: close() ends it). */
  signal?: AbortSignal;
  /**
   * Runs a stand-by updater worker while the session is open (Leases.keepTime), so that
   * leases held through dead sessions expire even where no `globalclock run` daemon keeps
   * global time. One per session, however many leases or campaigns. Default false.
   */
  keepTime?: boolean;
  /**
   * Called when a renewal, made after the session's deadline had passed (a store outage,
   * a paused process), found it still standing: nobody ended it because global time had
   * not reached its expiry. Every lease held through it is held again, with the same
   * tokens, until the new deadline; `signal` is a new one.
   */
  onResume?: (session: Session) => void;
}

/** The names a session's schedule errors use. */
const NAMES = {
  duration: "ttl",
  renewEvery: "renewEvery",
  retryDelay: "retryDelay",
  grace: "grace",
};

/**
 * A holder's session. `signal` fires at its `deadline` (this process's monotonic clock)
 * unless renewed in time, when it is lost, and when it is closed: every lease held through
 * it must then stop being acted on. A session whose deadline passed keeps trying to renew;
 * where nobody ended it meanwhile it resumes (`onResume`) with a new `signal`.
 */
export class Session {
  readonly #owner: SessionOwner;
  readonly #schedule: HoldSchedule;
  readonly #onResume: ((session: Session) => void) | undefined;
  /** Aborted by close(), and when the session is lost for good. */
  readonly #end = new AbortController();
  #lease: Lease;
  #signal: AbortSignal;
  #resumes = 0;
  #lost: LeaseLostError | undefined;
  readonly #running: Promise<void>;
  /** The stand-by updater worker, where keepTime. */
  #worker: Promise<UpdaterWorker> | undefined;
  #closing: Promise<void> | undefined;

  /** Claims the session's record and starts renewing it. */
  static async open(
    owner: SessionOwner,
    holder: string,
    options: SessionOptions,
  ): Promise<Session> {
    const ttl = toNanoseconds(options.ttl, "ttl");
    const name = `${SESSION_PREFIX}${holder}/${randomBytes(8).toString("hex")}`;
    const lease = await owner.claim(name, holder, ttl, options.signal);
    let schedule: HoldSchedule;
    try {
      schedule = holdSchedule(
        { duration: ttl, renewEvery: options.renewEvery, retryDelay: options.retryDelay },
        lease.maxStep,
        undefined,
        NAMES,
      );
    } catch (err) {
      await lease.release().catch(() => {});
      throw err;
    }
    const session = new Session(owner, lease, schedule, options.onResume);
    if (options.keepTime) session.#worker = owner.keepTime(session.#end.signal);
    return session;
  }

  private constructor(
    owner: SessionOwner,
    lease: Lease,
    schedule: HoldSchedule,
    onResume: ((session: Session) => void) | undefined,
  ) {
    this.#owner = owner;
    this.#schedule = schedule;
    this.#onResume = onResume;
    this.#lease = lease;
    this.#signal = AbortSignal.any([lease.signal, this.#end.signal]);
    this.#running = this.#run();
  }

  /** The session's record name: what a lease held through it names as its holder. */
  get name(): string {
    return this.#lease.name;
  }
  get holder(): string {
    return this.#lease.holder;
  }
  /** The session record's own token. */
  get token(): bigint {
    return this.#lease.token;
  }
  /** The session's duration in global time (nanoseconds). */
  get ttl(): bigint {
    return this.#schedule.duration;
  }
  /** Global time from which others may end the session, as last renewed. */
  get expiry(): bigint {
    return this.#lease.expiry;
  }
  /** Monotonic time (ns, this process) by which every lease held through it must stop. */
  get deadline(): bigint {
    return this.#lease.deadline;
  }
  /** Fires at the deadline, when lost, and when closed. After a resume, a new signal. */
  get signal(): AbortSignal {
    return this.#signal;
  }
  /** True until the deadline passes (by the clock), or the session is lost or closed. */
  get held(): boolean {
    return !this.#signal.aborted && this.#lease.held;
  }
  /** True until closed or lost (a passed deadline leaves it open: it may resume). */
  get open(): boolean {
    return !this.#end.signal.aborted;
  }
  /** How many times it resumed after its deadline had passed. */
  get resumes(): number {
    return this.#resumes;
  }
  /** Why it ended for good (ended by another, or its record deleted); undefined while not. */
  get lost(): LeaseLostError | undefined {
    return this.#lost;
  }

  /**
   * Claims lease `name` through this session: its token is its own (greater at every change
   * of holder), its deadline and signal the session's. LeaseHeldError while another holds
   * it; LeaseLostError when the session is not held (its deadline passed, or it ended).
   */
  async claim(name: string, options: { signal?: AbortSignal } = {}): Promise<SessionLease> {
    checkLeaseText("name", name);
    this.#checkHeld(name);
    const grant = await this.#owner.claimThrough(name, this.name, options.signal);
    return new SessionLease(this, this.#owner, name, grant.token);
  }

  /**
   * A leader election on lease `name` through this session (Campaign): the lease is claimed
   * through it and held while it lives, with no renewals of its own, so a process can
   * campaign for many leases at the cost of one session. Stop it with `signal` or stop().
   */
  campaign(name: string, options: { signal?: AbortSignal } = {}): Campaign<SessionLease> {
    checkLeaseText("name", name);
    this.#checkOpen();
    return this.#owner.campaign(name, this, options.signal);
  }

  /**
   * Renews the session now (its renewals run by themselves; this is for a holder that wants
   * one at once). After a passed deadline this is a resume, where nobody ended it.
   * LeaseLostError once it was ended by another, or its record deleted.
   */
  async renew(signal?: AbortSignal): Promise<void> {
    this.#checkOpen();
    try {
      if (this.#lease.held) await this.#lease.extend(this.#schedule.duration, signal);
      else await this.#resume(signal);
    } catch (err) {
      if (err instanceof LeaseLostError && !this.#lease.signal.aborted) this.#lose(err);
      throw err;
    }
  }

  /**
   * Ends the session: the renewals stop and its record is released, which frees every
   * lease held through it in one write. Closing twice is once.
   */
  close(signal?: AbortSignal): Promise<void> {
    this.#closing ??= (async () => {
      if (!this.#end.signal.aborted) {
        this.#end.abort(new LeaseLostError(this.name, "its session was closed by its holder"));
      }
      await this.#running;
      await (await this.#worker)?.stop();
      if (this.#lost) return;
      await this.#owner.release(this.name, this.holder, this.token, signal);
    })();
    return this.#closing;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  #checkOpen(): void {
    if (this.#lost) throw this.#lost;
    if (this.#end.signal.aborted) {
      throw new LeaseLostError(this.name, "its session was closed by its holder");
    }
  }

  /** A renewal after the deadline: where it finds the session standing, a new lease and signal. */
  async #resume(signal: AbortSignal | undefined): Promise<void> {
    const lease = await this.#owner.extend(this.#lease, this.#schedule.duration, signal);
    if (this.#end.signal.aborted) return;
    this.#lease = lease;
    this.#signal = AbortSignal.any([lease.signal, this.#end.signal]);
    this.#resumes++;
    this.#onResume?.(this);
  }

  #checkHeld(name: string): void {
    if (this.held) return;
    throw new LeaseLostError(
      name,
      this.#lost
        ? `its session ended: ${this.#lost.message}`
        : this.#end.signal.aborted
          ? "its session was closed"
          : "its session's deadline passed; it resumes if the store finds it still standing",
    );
  }

  /** Renews until closed or lost; after a passed deadline, keeps trying to resume. */
  async #run(): Promise<void> {
    const clock = this.#owner.clock;
    const end = this.#end.signal;
    for (;;) {
      const lost = await keep(this.#lease, this.#schedule, { clock, signal: end });
      if (lost === undefined || end.aborted) return; // closed
      // Its signal fired: the deadline passed. Anything else is the store saying it ended.
      if (!this.#lease.signal.aborted) return this.#lose(lost);
      for (let failures = 0; ; ) {
        try {
          // renew() may have resumed it meanwhile
          if (this.#lease.signal.aborted) await this.#resume(end);
          if (end.aborted) return;
          break;
        } catch (err) {
          if (end.aborted) return;
          if (err instanceof LeaseLostError) return this.#lose(err);
          if (!(err instanceof StoreError)) return this.#lose(asLost(this.name, err));
          const pause = retryPause(
            this.#schedule.retryDelay,
            this.#schedule.renewEvery,
            failures++,
          );
          if (!(await clock.sleep(pause, end))) return;
        }
      }
    }
  }

  #lose(err: LeaseLostError): void {
    this.#lost = err;
    this.#end.abort(err);
  }
}

function asLost(name: string, err: unknown): LeaseLostError {
  return new LeaseLostError(
    name,
    `its renewal failed: ${err instanceof Error ? err.message : String(err)}`,
  );
}

/** A lease held through a session: its own name and token, the session's deadline and signal. */
export class SessionLease {
  readonly name: string;
  /** The fencing token: greater than any earlier holder's. */
  readonly token: bigint;
  readonly session: Session;
  readonly #owner: SessionOwner;
  readonly #released = new AbortController();
  #signal: { of: AbortSignal; is: AbortSignal } | undefined;

  constructor(session: Session, owner: SessionOwner, name: string, token: bigint) {
    this.session = session;
    this.#owner = owner;
    this.name = name;
    this.token = token;
  }

  /** The session's deadline. */
  get deadline(): bigint {
    return this.session.deadline;
  }
  /** Fires with the session's signal, or when this lease is released. */
  get signal(): AbortSignal {
    const of = this.session.signal;
    if (this.#signal?.of !== of) {
      this.#signal = { of, is: AbortSignal.any([of, this.#released.signal]) };
    }
    return this.#signal.is;
  }
  get held(): boolean {
    return !this.#released.signal.aborted && this.session.held;
  }

  /** Releases this lease alone; the session goes on. Twice is once. */
  async release(signal?: AbortSignal): Promise<void> {
    if (!this.#released.signal.aborted) {
      this.#released.abort(new LeaseLostError(this.name, "it was released by its holder"));
    }
    await this.#owner.release(this.name, this.session.name, this.token, signal);
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.release().catch((err: unknown) => {
      if (!(err instanceof LeaseLostError)) throw err;
    });
  }
}
