import { constants as osConstants } from "node:os";
import type { Command } from "commander";
import { toNanoseconds } from "../duration.js";
import { ConfigError, LeaseHeldError, LeaseLostError, StoreError } from "../errors.js";
import {
  acquire,
  type HoldSchedule,
  holdSchedule,
  keep,
  type ScheduleNames,
} from "../leases/hold.js";
import { uniqueHolder } from "../leases/holder.js";
import type { LeaseInfo } from "../leases/info.js";
import type { Lease } from "../leases/lease.js";
import { Leases } from "../leases/leases.js";
import { DEFAULT_STORE_URL, openStore } from "../open.js";
import { earlier } from "../time.js";
import { monotonicClock } from "../worker-clock.js";
import { startGuardian } from "./guardian-handle.js";
import { EXIT, ExitWith, type Io, storeUrl } from "./io.js";
import { type Job, signalExitCode, startJob, takeForeground, unrunnable } from "./process-group.js";

interface LockOptions {
  ttl: string;
  renewEvery?: string;
  grace?: string;
  holder?: string;
  wait: boolean;
  timeout?: string;
  clock: boolean;
  verbose?: boolean;
}

/** lock's flags for the schedule's fields, so that a refusal names what the user typed. */
const NAMES: ScheduleNames = {
  duration: "--ttl",
  renewEvery: "--renew-every",
  retryDelay: "--retry-delay",
  grace: "--grace",
};

/** --grace by default: a quarter of what a claim can count on, at most 5 s. */
const defaultGrace = (usable: bigint) =>
  usable / 4n < 5_000_000_000n ? usable / 4n : 5_000_000_000n;

/**
 * Every signal that ends a process by default and can be caught: `lock` passes them on to
 * its command's group instead of dying and orphaning it. (SIGKILL cannot be caught: the
 * guardian stops the command then.)
 */
const FORWARDED = (
  [
    "SIGHUP",
    "SIGINT",
    "SIGQUIT",
    "SIGTERM",
    "SIGUSR1",
    "SIGUSR2",
    "SIGALRM",
    "SIGVTALRM",
    "SIGPROF",
    "SIGXCPU",
    "SIGXFSZ",
    "SIGPWR",
  ] as const
).filter((s) => s in osConstants.signals);

/**
 * `globalclock lock <name> -- <command> [args…]`: runs a command while holding a lease, as
 * `consul lock`, `etcdctl lock` and `flock` do, with the fencing token in its environment.
 */
export function registerLock(program: Command, io: Io): void {
  program
    .command("lock")
    .description(
      "run a command while holding a lease; its fencing token is in GLOBALCLOCK_FENCING_TOKEN",
    )
    .argument("<name>", "the lease")
    .argument("<command...>", "the command and its arguments, after --")
    .option("--ttl <duration>", "the lease's duration (at least 3 × the cluster's maxStep)", "10s")
    .option(
      "--renew-every <duration>",
      "how often to renew (default: a third of what a claim can count on)",
    )
    .option(
      "--grace <duration>",
      "from SIGTERM to SIGKILL before the deadline (default: a quarter of what a claim can count on, at most 5s)",
    )
    .option("--holder <id>", "who holds it (default: host, process id and a random part)")
    .option("-w, --wait", "wait until the lease is free (the default)")
    .option("-n, --no-wait", "exit 4 at once if another holds the lease")
    .option("--timeout <duration>", "give up waiting after this long: exit 4")
    .option("--no-clock", "run no updater worker here (some other process keeps global time)")
    .option("--verbose", "say on stderr when it waits and when it acquires (always on a terminal)")
    .action(async (name: string, command: string[], opts: LockOptions, cmd: Command) => {
      // Everything the user typed is checked before the store is opened.
      toNanoseconds(opts.ttl, "--ttl");
      if (opts.renewEvery !== undefined) toNanoseconds(opts.renewEvery, "--renew-every");
      if (opts.grace !== undefined) toNanoseconds(opts.grace, "--grace");
      const timeout =
        opts.timeout === undefined ? undefined : toNanoseconds(opts.timeout, "--timeout");
      const file = command[0] ?? "";
      if (file === "")
        throw new ConfigError("command", "missing command: lock <name> -- <command> [args…]");
      const why = unrunnable(file, process.env);
      if (why) {
        io.err(
          `globalclock: ${file}: ${why === "not found" ? "command not found" : "permission denied (not executable)"}`,
        );
        throw new ExitWith(why === "not found" ? 127 : 126);
      }
      const say = (line: string) => {
        if (opts.verbose || io.errTty) io.err(`globalclock: ${line}`);
      };
      const code = await lock(storeUrl(cmd, io) ?? DEFAULT_STORE_URL, name, command, {
        options: opts,
        holder: opts.holder ?? uniqueHolder(),
        timeout,
        io,
        say,
      });
      if (code !== EXIT.ok) throw new ExitWith(code);
    });
}

interface Plan {
  options: LockOptions;
  holder: string;
  timeout: bigint | undefined;
  io: Io;
  say: (line: string) => void;
}

async function lock(url: string, name: string, command: string[], plan: Plan): Promise<number> {
  const { options } = plan;
  const store = await openStore(url);
  try {
    const leases = new Leases(store);
    // A stand-by while another process keeps global time; it takes over when the clock
    // stalls, so a dead holder's lease expires even with no `run` daemon anywhere.
    const worker = options.clock ? await leases.keepTime() : undefined;
    try {
      const waiting =
        plan.timeout === undefined
          ? undefined
          : AbortSignal.timeout(Number(plan.timeout / 1_000_000n));
      const hold = { duration: options.ttl, renewEvery: options.renewEvery, grace: options.grace };
      // The whole schedule, checked against the cluster's maxStep before anything is claimed.
      holdSchedule(
        hold,
        await retrying(() => leases.maxStep(), options.wait !== false, waiting),
        defaultGrace,
        NAMES,
      );
      const lease = await acquireOrReport(leases, name, plan, waiting);
      if (!lease) return EXIT.lease;
      plan.say(`acquired lease ${name}, fencing token ${lease.token}`);
      let schedule: HoldSchedule;
      try {
        schedule = holdSchedule(hold, lease.maxStep, defaultGrace, NAMES); // maxStep may have changed
      } catch (err) {
        await lease.release().catch(() => {});
        throw err;
      }
      return await runHolding(lease, schedule, command, plan);
    } finally {
      await worker?.stop();
    }
  } finally {
    await store.close();
  }
}

/** The lease, or undefined (said on stderr) when another holds it and lock does not wait, or waited too long. */
async function acquireOrReport(
  leases: Leases,
  name: string,
  plan: Plan,
  waiting: AbortSignal | undefined,
): Promise<Lease | undefined> {
  let last: LeaseInfo | undefined;
  try {
    return await acquire(leases, name, plan.holder, toNanoseconds(plan.options.ttl, "--ttl"), {
      wait: plan.options.wait !== false, // waits unless -n/--no-wait
      signal: waiting,
      onWaiting: (held) => {
        if (!held || (held.holder === last?.holder && held.token === last.token)) return;
        last = held;
        plan.say(`waiting for lease ${name}, held by ${held.holder} (token ${held.token})`);
      },
      retryDelay: 100_000_000n,
      maxRetryDelay: 2_000_000_000n,
    });
  } catch (err) {
    if (err instanceof LeaseHeldError) {
      plan.io.err(`globalclock: ${err.message}`);
      return undefined;
    }
    if (waiting?.aborted && err === waiting.reason) {
      const who = last ? `, held by ${last.holder} (token ${last.token})` : "";
      plan.io.err(
        `globalclock: gave up waiting for lease ${name} after ${plan.options.timeout}${who}`,
      );
      return undefined;
    }
    throw err;
  }
}

/** `fn`, tried again after errors that may mend while lock is willing to wait. */
async function retrying<T>(
  fn: () => Promise<T>,
  wait: boolean,
  signal: AbortSignal | undefined,
): Promise<T> {
  for (let pause = 100; ; pause = Math.min(pause * 2, 2000)) {
    try {
      return await fn();
    } catch (err) {
      if (!(wait && err instanceof StoreError && err.retryable)) throw err;
      if (!(await monotonicClock.sleep(BigInt(pause) * 1_000_000n, signal ?? NEVER)))
        throw signal?.reason;
    }
  }
}

/**
 * Runs the command as a job of its own under the guardian, and keeps the lease. The
 * guardian stops the job's group at the deadline (SIGTERM `grace` before it, SIGKILL at it)
 * unless a renewal moved it, whatever lock is doing. When the command exits, what is left
 * of its group is stopped before the lease is released. Exits with the command's code, or 4
 * if the lease was lost.
 */
async function runHolding(
  lease: Lease,
  schedule: HoldSchedule,
  command: string[],
  plan: Plan,
): Promise<number> {
  const guardian = await startGuardian();
  // The handlers come first: a signal that comes before the command runs is passed on once it does.
  let job: Job | undefined;
  let early: NodeJS.Signals | undefined;
  let running = false;
  const forward = (signal: NodeJS.Signals) => {
    if (job && running) signalGroupOf(job, signal);
    else early = signal;
  };
  for (const s of FORWARDED) process.on(s, forward);
  const done = new AbortController();
  try {
    job = startJob(command, {
      ...process.env,
      GLOBALCLOCK_LEASE: lease.name,
      GLOBALCLOCK_HOLDER: lease.holder,
      GLOBALCLOCK_FENCING_TOKEN: lease.token.toString(),
    });
    const child = job.child;
    const exited = new Promise<number>((resolve) => {
      child.once("error", (err: NodeJS.ErrnoException) => {
        plan.io.err(`globalclock: ${command[0]}: ${err.message}`);
        resolve(err.code === "ENOENT" ? 127 : 126);
      });
      child.once("exit", (code, signal) => resolve(code ?? (signal ? signalExitCode(signal) : 1)));
    });
    await guardian.arm(job.group, schedule.grace);
    guardian.deadline(lease.deadline - schedule.grace, lease.deadline);
    job.go();
    running = true;
    if (early) signalGroupOf(job, early);
    const kept = keep(lease, schedule, {
      clock: monotonicClock,
      signal: AbortSignal.any([done.signal, guardian.lost]),
      onRenewed: (l) => guardian.deadline(l.deadline - schedule.grace, l.deadline),
    });
    const first = await Promise.race([exited.then(() => undefined), kept]);
    let lost = false;
    let stopped: Promise<void> | undefined;
    if (first instanceof LeaseLostError || guardian.lost.aborted) {
      lost = true;
      const why = guardian.lost.aborted ? String(guardian.lost.reason) : first?.message;
      plan.io.err(`globalclock: lease ${lease.name}: ${why}; stopping the command`);
      // Lost outright (taken, released, its record deleted): at once; after the deadline the
      // guardian has stopped it already.
      if (guardian.lost.aborted) signalGroupOf(job, "SIGKILL");
      else stopped = guardian.stop(monotonicClock.now());
    }
    const code = await exited;
    done.abort();
    await kept;
    // What is left of the group (a background job, a member that ignored SIGTERM) is stopped
    // before the lease is released: nothing lock started may outlive it.
    const now = monotonicClock.now();
    const soon = earlier(now + schedule.grace, lease.deadline);
    if (!guardian.lost.aborted) await (stopped ?? guardian.stop(soon));
    if (job.foreground) takeForeground();
    if (lost) return EXIT.lease;
    await lease.release().catch((err: unknown) => {
      if (!(err instanceof LeaseLostError)) throw err;
    });
    return code;
  } finally {
    done.abort();
    guardian.done();
    for (const s of FORWARDED) process.off(s, forward);
  }
}

function signalGroupOf(job: Job, signal: NodeJS.Signals): void {
  try {
    process.kill(-job.group, signal);
  } catch {
    // the group is gone already
  }
}

const NEVER = new AbortController().signal;
