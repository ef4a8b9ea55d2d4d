import { type DurationInput, toNanoseconds } from "../duration.js";
import { ConfigError, LeaseHeldError, LeaseLostError } from "../errors.js";
import { latestValues } from "../push.js";
import type { WorkerClock } from "../worker-clock.js";
import type { LeaseInfo } from "./info.js";
import type { Lease } from "./lease.js";
import { checkLeaseText } from "./validate.js";

/** What a campaign needs of Leases. */
export interface CampaignLeases {
  readonly clock: WorkerClock;
  claim(
    name: string,
    holder: string,
    duration: DurationInput,
    options?: { signal?: AbortSignal },
  ): Promise<Lease>;
  waitUntilExpired(name: string, options?: { signal?: AbortSignal }): Promise<unknown>;
  keepTime?(options: { signal?: AbortSignal }): Promise<{ stop(): Promise<void> }>;
}

export interface CampaignOptions {
  /** This candidate's identity, as followers see it. */
  holder: string;
  /** The lease's duration (global time); at least 3 × the cluster's maxStep. */
  duration: DurationInput;
  /** How often the leader extends the lease. Default a third of `duration`. */
  renewEvery?: DurationInput;
  /** First pause after a store error; doubles up to `duration`. Default 100 ms. */
  retryDelay?: DurationInput;
  /** Stops the campaign (releasing the lease if held). */
  signal?: AbortSignal;
  /**
   * Runs a stand-by updater worker beside the campaign (Leases.keepTime), so that the lease
   * of a leader that died expires even where no `globalclock run` daemon keeps global time.
   * Default true.
   */
  keepTime?: boolean;
}

/**
 * Where a campaign stands. A leader's `lease.signal` fires when it is demoted (its
 * deadline passed without a renewal, or the campaign stopped): it must stop leading then.
 * A follower knows the leader it last saw (identity, fencing token, expiry), if any.
 */
export type ElectionState =
  | { readonly role: "leader"; readonly lease: Lease }
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
export class Campaign implements AsyncIterable<ElectionState> {
  readonly name: string;
  readonly holder: string;
  readonly #leases: CampaignLeases;
  readonly #duration: bigint;
  readonly #renewEvery: bigint;
  readonly #retryDelay: bigint;
  readonly #stop = new AbortController();
  readonly #listeners = new Set<(state: ElectionState) => void>();
  readonly #failed = new Set<(err: unknown) => void>();
  #failure: { err: unknown } | undefined;
  readonly #done: Promise<void>;
  #state: ElectionState = Object.freeze({ role: "follower", leader: undefined });
  #failures = 0;
  readonly #keepTime: boolean;

  constructor(leases: CampaignLeases, name: string, options: CampaignOptions) {
    this.#leases = leases;
    this.name = checkLeaseText("name", name);
    this.holder = checkLeaseText("holder", options.holder);
    this.#duration = toNanoseconds(options.duration, "duration");
    this.#renewEvery =
      options.renewEvery === undefined
        ? this.#duration / 3n
        : toNanoseconds(options.renewEvery, "renewEvery");
    if (this.#renewEvery <= 0n || this.#renewEvery >= this.#duration) {
      throw new ConfigError(
        "renewEvery",
        "renewEvery must be greater than 0 and less than duration",
      );
    }
    this.#keepTime = options.keepTime ?? true;
    this.#retryDelay = toNanoseconds(options.retryDelay ?? 100, "retryDelay");
    if (this.#retryDelay <= 0n) throw new ConfigError("retryDelay", "retryDelay must be > 0");
    const outer = options.signal;
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
  get state(): ElectionState {
    return this.#state;
  }

  /**
   * The current state, then each change, until the campaign stops; throws what stopped it
   * if that was an error no retry can mend (e.g. a duration the cluster's maxStep forbids).
   */
  [Symbol.asyncIterator](): AsyncIterator<ElectionState> {
    return latestValues<ElectionState>(this.#stop.signal, (push, fail) => {
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
    const worker = this.#keepTime ? await this.#leases.keepTime?.({ signal: stop }) : undefined;
    try {
      await this.#campaign(stop);
    } finally {
      await worker?.stop();
    }
  }

  async #campaign(stop: AbortSignal): Promise<void> {
    const clock = this.#leases.clock;
    while (!stop.aborted) {
      let lease: Lease;
      try {
        lease = await this.#leases.claim(this.name, this.holder, this.#duration, { signal: stop });
      } catch (err) {
        if (stop.aborted) break;
        if (err instanceof LeaseHeldError) {
          this.#failures = 0;
          this.#set({ role: "follower", leader: heldBy(err) });
          await this.#leases.waitUntilExpired(this.name, { signal: stop }).catch(() => {});
        } else if (err instanceof ConfigError) {
          throw err; // a duration the cluster's maxStep does not allow
        } else {
          await clock.sleep(this.#backoff(), stop); // unknown outcome: not leader
        }
        continue;
      }
      this.#failures = 0;
      this.#set({ role: "leader", lease });
      await this.#lead(lease, stop);
      if (stop.aborted) {
        await lease.release().catch(() => {}); // so that a successor takes over at once
        break;
      }
      this.#set({ role: "follower", leader: undefined });
    }
    this.#set({ role: "stopped" });
  }

  /** Renews until the lease is lost, its deadline passes, or the campaign stops. */
  async #lead(lease: Lease, stop: AbortSignal): Promise<void> {
    const clock = this.#leases.clock;
    const demoted = AbortSignal.any([lease.signal, stop]);
    let wait = this.#renewEvery;
    while (!demoted.aborted) {
      if (!(await clock.sleep(wait, demoted))) return;
      try {
        await lease.extend(this.#duration, demoted);
        this.#failures = 0;
        wait = this.#renewEvery;
      } catch (err) {
        if (err instanceof LeaseLostError || demoted.aborted) return;
        wait = this.#backoff(); // try again, until the deadline demotes this leader
      }
    }
  }

  #backoff(): bigint {
    const delay = this.#retryDelay << BigInt(Math.min(this.#failures++, 20));
    return delay < this.#duration ? delay : this.#duration;
  }

  #set(state: ElectionState): void {
    this.#state = Object.freeze(state);
    for (const listener of this.#listeners) listener(this.#state);
  }
}

function heldBy(err: LeaseHeldError): LeaseInfo {
  return Object.freeze({
    name: err.lease.name,
    holder: err.lease.holder,
    token: err.lease.token,
    start: 0n,
    expiry: err.lease.expiry,
    pins: [],
    time: err.time,
    free: false,
  });
}
