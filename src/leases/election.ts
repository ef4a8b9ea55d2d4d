import { whenAborted } from "../abort.js";
import { type DurationInput, toNanoseconds } from "../duration.js";
import { ConfigError } from "../errors.js";
import { latestValues } from "../push.js";
import { acquire, type Claimer, type HoldSchedule, holdSchedule, keep } from "./hold.js";
import type { LeaseInfo } from "./info.js";
import type { Lease } from "./lease.js";
import { checkLeaseText } from "./validate.js";

/** What a campaign needs of Leases. */
export interface CampaignLeases extends Claimer {
  keepTime?(options: { signal?: AbortSignal }): Promise<{ stop(): Promise<void> }>;
}

export interface CampaignOptions {
  /** This candidate's identity, as followers see it. */
  holder: string;
  /** The lease's duration (global time); at least 3 × the cluster's maxStep. */
  duration: DurationInput;
  /**
   * How often the leader extends the lease. Default a third of what a claim can count on
   * (`duration` less the cluster's maxStep and clock drift), at most a third of `duration`.
   * It must leave time for a second attempt before the deadline: checked against the
   * cluster's maxStep at every claim (a ConfigError stops the campaign).
   */
  renewEvery?: DurationInput;
  /** First pause after a store error; doubles (up to `duration` while claiming, half of renewEvery while renewing). Default 100 ms. */
  retryDelay?: DurationInput;
  /** Stops the campaign (releasing the lease if held). */
  signal?: AbortSignal;
  /**
   * Runs a stand-by updater worker beside the campaign (Leases.keepTime), so that the lease
   * of a leader that died expires even where no `globalclock run` daemon keeps global time.
   * Default true (false for a campaign through a session: the session's own `keepTime`
   * decides, so that many campaigns on one session run one worker).
   */
  keepTime?: boolean;
  /**
   * Campaign through this session (Session.campaign): the lease is claimed through it and
   * held while it lives; the session's renewals are the leader's, and `holder` and
   * `duration` are the session's.
   */
  session?: CampaignSession;
}

/** A lease as a campaign holds it: its signal, and a release. */
export interface HeldLease {
  readonly signal: AbortSignal;
  release(): Promise<void>;
}

/** What a campaign through a session needs of it (Session). */
export interface CampaignSession {
  /** Why it ended for good; undefined while it lives. */
  readonly lost: Error | undefined;
  /** False once closed by its holder or lost: its campaigns stop. */
  readonly open: boolean;
  claim(name: string, options?: { signal?: AbortSignal }): Promise<HeldLease>;
}

/**
 * Where a campaign stands. A leader's `lease.signal` fires when it is demoted (its
 * deadline passed without a renewal, or the campaign stopped): it must stop leading then.
 * A follower knows the leader it last saw (identity, fencing token, expiry), if any.
 */
export type ElectionState<L = Lease> =
  | { readonly role: "leader"; readonly lease: L }
  | { readonly role: "follower"; readonly leader: LeaseInfo | undefined }
  | { readonly role: "stopped" };

/**
 * A leader election on one lease: claim it; while leader, extend it every `renewEvery`;
 * when renewals keep failing, step down at the lease's deadline, before any rival can win
 * it; while follower, wait (woken by the store's pushes) until the lease is free and claim
 * again; on stop, release it so that a successor takes over at once.
 *
 * Iterate it for the current state and each change:
 *   for await (const state of campaign) if (state.role === "leader") lead(state.lease);
 */
export class Campaign<L extends HeldLease = Lease> implements AsyncIterable<ElectionState<L>> {
  readonly name: string;
  readonly holder: string;
  readonly #leases: CampaignLeases;
  readonly #options: CampaignOptions;
  readonly #duration: bigint;
  readonly #retryDelay: bigint;
  readonly #stop = new AbortController();
  readonly #listeners = new Set<(state: ElectionState<L>) => void>();
  readonly #failed = new Set<(err: unknown) => void>();
  #failure: { err: unknown } | undefined;
  readonly #done: Promise<void>;
  #state: ElectionState<L> = Object.freeze({ role: "follower", leader: undefined });
  readonly #keepTime: boolean;
  readonly #session: CampaignSession | undefined;

  constructor(leases: CampaignLeases, name: string, options: CampaignOptions) {
    this.#leases = leases;
    this.name = checkLeaseText("name", name);
    this.holder = checkLeaseText("holder", options.holder);
    this.#options = options;
    this.#duration = toNanoseconds(options.duration, "duration");
    // What needs no maxStep is checked at once; the rest at every claim (holdSchedule).
    if (options.renewEvery !== undefined) {
      const renewEvery = toNanoseconds(options.renewEvery, "renewEvery");
      if (renewEvery <= 0n || renewEvery >= this.#duration) {
        throw new ConfigError(
          "renewEvery",
          "renewEvery must be greater than 0 and less than duration",
        );
      }
    }
    this.#session = options.session;
    this.#keepTime = options.keepTime ?? options.session === undefined;
    this.#retryDelay = toNanoseconds(options.retryDelay ?? 100, "retryDelay");
    if (this.#retryDelay <= 0n) throw new ConfigError("retryDelay", "retryDelay must be > 0");
    const outer = options.signal;
    // Stryker disable next-line OptionalChaining: onAbort runs only where there is an `outer` (aborted, or its listener)
    const onAbort = () => this.#stop.abort(outer?.reason);
    if (outer?.aborted) onAbort();
    else outer?.addEventListener("abort", onAbort, { once: true });
    this.#done = this.#run()
      .catch((err: unknown) => {
        this.#failure = { err };
        this.#set({ role: "stopped" });
        for (const fail of this.#failed) fail(err);
      })
      .finally(() => outer?.removeEventListener("abort", onAbort));
  }

  /** The current state. */
  get state(): ElectionState<L> {
    return this.#state;
  }

  /**
   * The current state, then each change, until the campaign stops; throws what stopped it
   * if that was an error no retry can mend (e.g. a duration the cluster's maxStep forbids).
   */
  [Symbol.asyncIterator](): AsyncIterator<ElectionState<L>> {
    return latestValues<ElectionState<L>>(this.#stop.signal, (push, fail) => {
      if (this.#failure) fail(this.#failure.err);
      this.#listeners.add(push);
      this.#failed.add(fail);
      push(this.#state);
      return () => {
        this.#listeners.delete(push);
        this.#failed.delete(fail);
      };
    })[Symbol.asyncIterator]();
  }

  /** Stops campaigning; a leader releases the lease first. Throws what stopped it, if anything did. */
  async stop(): Promise<void> {
    this.#stop.abort();
    await this.#done;
    if (this.#failure) throw this.#failure.err;
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.stop();
  }

  async #run(): Promise<void> {
    const stop = this.#stop.signal;
    // The worker retries store errors by itself: a store that is down at the start delays
    // the campaign, it does not end it.
    const worker = this.#keepTime ? await this.#leases.keepTime?.({ signal: stop }) : undefined;
    try {
      if (this.#session) await this.#campaignThrough(this.#session, stop);
      else await this.#campaign(stop);
    } finally {
      await worker?.stop();
    }
  }

  /**
   * Claims (waiting as a follower while another leads), leads until the lease is lost or its
   * deadline passes, and claims again. Every error but a ConfigError (a duration or schedule
   * the cluster's maxStep forbids) is tried again: the outcome of a failed claim is unknown,
   * so the candidate is a follower meanwhile.
   */
  async #campaign(stop: AbortSignal): Promise<void> {
    while (!stop.aborted) {
      let lease: Lease;
      try {
        lease = await acquire(this.#leases, this.name, this.holder, this.#duration, {
          wait: true,
          signal: stop,
          onWaiting: (leader) => this.#follow(leader),
          retry: (err) => !(err instanceof ConfigError),
          retryDelay: this.#retryDelay,
          maxRetryDelay: this.#duration,
        });
      } catch (err) {
        if (stop.aborted) break;
        throw err;
      }
      let schedule: HoldSchedule;
      try {
        schedule = holdSchedule(
          { ...this.#options, duration: this.#duration, retryDelay: this.#retryDelay },
          lease.maxStep,
        );
      } catch (err) {
        await lease.release().catch(() => {});
        throw err;
      }
      // Without a session, L is Lease (see Leases.campaign).
      this.#set({ role: "leader", lease: lease as HeldLease as L });
      await keep(lease, schedule, { clock: this.#leases.clock, signal: stop });
      if (stop.aborted) {
        await lease.release().catch(() => {}); // so that a successor takes over at once
        break;
      }
      this.#set({ role: "follower", leader: undefined });
    }
    this.#set({ role: "stopped" });
  }

  /**
   * The same through a session: no renewals of its own (the session's are the leader's).
   * The leader steps down when the session's signal fires; a session whose deadline passed
   * is claimed through again (with backoff) until it resumes, when the same holder's claim
   * keeps its token. A session lost for good stops the campaign with the session's error.
   */
  async #campaignThrough(session: CampaignSession, stop: AbortSignal): Promise<void> {
    const leases = this.#leases;
    const claimer: Claimer<HeldLease> = {
      clock: leases.clock,
      claim: (name, _holder, _duration, options) => session.claim(name, options),
      waitUntilExpired: (name, options) => leases.waitUntilExpired(name, options),
    };
    while (!stop.aborted) {
      let lease: HeldLease;
      try {
        lease = await acquire(claimer, this.name, this.holder, this.#duration, {
          wait: true,
          signal: stop,
          onWaiting: (leader) => this.#follow(leader),
          retry: (err) => !(err instanceof ConfigError) && session.open,
          retryDelay: this.#retryDelay,
          maxRetryDelay: this.#duration,
        });
      } catch (err) {
        if (stop.aborted || (!session.open && !session.lost)) break; // closed: stop too
        throw session.lost ?? err;
      }
      this.#set({ role: "leader", lease: lease as L });
      await whenAborted(AbortSignal.any([lease.signal, stop]));
      if (stop.aborted) {
        await lease.release().catch(() => {}); // so that a successor takes over at once
        break;
      }
      this.#set({ role: "follower", leader: undefined });
      if (session.lost) throw session.lost;
      if (!session.open) break;
    }
    this.#set({ role: "stopped" });
  }

  /** A follower of `leader`: a new state only when the leader or its token changed. */
  #follow(leader: LeaseInfo | undefined): void {
    const now = this.#state;
    if (
      now.role === "follower" &&
      now.leader?.holder === leader?.holder &&
      now.leader?.token === leader?.token
    )
      return;
    this.#set({ role: "follower", leader });
  }

  #set(state: ElectionState<L>): void {
    this.#state = Object.freeze(state);
    for (const listener of this.#listeners) listener(this.#state);
  }
}
