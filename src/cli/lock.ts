import { type ChildProcess, spawn } from "node:child_process";
import { hostname } from "node:os";
import type { Command } from "commander";
import { Backoff } from "../backoff.js";
import { formatDuration, toNanoseconds } from "../duration.js";
import { ConfigError, LeaseHeldError, LeaseLostError, StoreError } from "../errors.js";
import type { Lease } from "../leases/lease.js";
import { Leases } from "../leases/leases.js";
import { DEFAULT_STORE_URL, openStore } from "../open.js";
import { sleep } from "../sleep.js";
import { earlier } from "../time.js";
import type { UpdaterWorker } from "../worker.js";
import { monotonicClock } from "../worker-clock.js";
import { EXIT, ExitWith, type Io, storeUrl } from "./io.js";

interface LockOptions {
  ttl: string;
  holder?: string;
  wait?: boolean;
  grace: string;
  clock: boolean;
}

const FORWARDED = ["SIGINT", "SIGTERM", "SIGHUP"] as const;

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
    .option("--ttl <duration>", "the lease's duration, renewed every third of it", "10s")
    .option("--holder <id>", "who holds it (default: host name and process id)")
    .option("--wait", "wait until the lease is free, instead of exiting 4 at once")
    .option("--grace <duration>", "from SIGTERM to SIGKILL when the lease cannot be kept", "5s")
    .option("--no-clock", "run no updater worker here (some other process keeps global time)")
    .action(async (name: string, command: string[], opts: LockOptions, cmd: Command) => {
      const ttl = toNanoseconds(opts.ttl, "--ttl");
      const grace = toNanoseconds(opts.grace, "--grace");
      if (grace * 2n > ttl) {
        throw new ConfigError(
          "--grace",
          `--grace (${opts.grace}) must be at most half of --ttl (${opts.ttl}): the command gets SIGTERM that long before the deadline`,
        );
      }
      const holder = opts.holder ?? `${hostname()}:${process.pid}`;
      const code = await lock(storeUrl(cmd, io) ?? DEFAULT_STORE_URL, name, holder, command, {
        ttl,
        grace,
        wait: opts.wait ?? false,
        clock: opts.clock,
        io,
      });
      if (code !== EXIT.ok) throw new ExitWith(code);
    });
}

interface Plan {
  ttl: bigint;
  grace: bigint;
  wait: boolean;
  clock: boolean;
  io: Io;
}

async function lock(
  url: string,
  name: string,
  holder: string,
  command: string[],
  plan: Plan,
): Promise<number> {
  const store = await openStore(url);
  let worker: UpdaterWorker | undefined;
  try {
    const leases = new Leases(store);
    // A stand-by while another process keeps global time; it takes over when the clock
    // stalls, so a dead holder's lease expires even with no `run` daemon anywhere.
    if (plan.clock) worker = await leases.keepTime();
    const lease = await acquire(leases, name, holder, plan);
    if (!lease) return EXIT.lease;
    return await runHolding(lease, command, plan);
  } finally {
    await worker?.stop();
    await store.close();
  }
}

/**
 * Claims the lease. With --wait, waits until it is free and tries again, and rides out
 * store errors that may mend (a restarting server, a database locked for a while).
 */
async function acquire(
  leases: Leases,
  name: string,
  holder: string,
  plan: Plan,
): Promise<Lease | undefined> {
  const backoff = new Backoff(100, 2000);
  for (;;) {
    try {
      return await leases.claim(name, holder, plan.ttl);
    } catch (err) {
      if (plan.wait && err instanceof StoreError && err.retryable) {
        await sleep(backoff.next());
        continue;
      }
      if (!(err instanceof LeaseHeldError)) throw err;
      if (!plan.wait) {
        plan.io.err(`globalclock: ${err.message}`);
        return undefined;
      }
      backoff.reset();
      await leases.waitUntilExpired(name).catch((e: unknown) => {
        if (!(e instanceof StoreError && e.retryable)) throw e;
      });
    }
  }
}

/**
 * Runs the command in a process group of its own and keeps the lease: renews every third
 * of the ttl; when it cannot, sends SIGTERM to the group `grace` before the deadline and
 * SIGKILL at it (at once when the lease is lost outright), then exits 4. Otherwise exits
 * with the command's code and releases the lease.
 */
async function runHolding(lease: Lease, command: string[], plan: Plan): Promise<number> {
  const [file, ...args] = command as [string, ...string[]];
  // The handlers come first: the command may run, and be seen running, before the line
  // after spawn() does. A signal that comes before the command exists is passed on to it.
  let child: ChildProcess | undefined;
  let early: NodeJS.Signals | undefined;
  const forward = (signal: NodeJS.Signals) => {
    if (child) killGroup(child, signal);
    else early = signal;
  };
  for (const s of FORWARDED) process.on(s, forward);
  try {
    child = spawn(file, args, {
      stdio: "inherit",
      detached: true, // its own process group, so that the whole of it can be stopped
      env: {
        ...process.env,
        GLOBALCLOCK_LEASE: lease.name,
        GLOBALCLOCK_HOLDER: lease.holder,
        GLOBALCLOCK_FENCING_TOKEN: lease.token.toString(),
      },
    });
  } catch (err) {
    for (const s of FORWARDED) process.off(s, forward);
    throw err;
  }
  const running = child;
  if (early) killGroup(running, early);
  const exited = new Promise<number>((resolve, reject) => {
    running.once("error", reject);
    running.once("exit", (code, signal) => resolve(code ?? 128 + signalNumber(signal)));
  });
  const done = new AbortController();
  let lost = false;
  const keeping = keep(
    lease,
    plan,
    done.signal,
    (why) => {
      lost = true;
      plan.io.err(`globalclock: lease ${lease.name}: ${why}; stopping the command`);
    },
    running,
  );
  try {
    const code = await exited;
    done.abort();
    await keeping;
    if (lost) return EXIT.lease;
    await lease.release().catch((err: unknown) => {
      if (!(err instanceof LeaseLostError)) throw err;
    });
    return code;
  } finally {
    done.abort();
    for (const s of FORWARDED) process.off(s, forward);
  }
}

/** Renews the lease until `done`; when it cannot be kept, stops the command in time. */
async function keep(
  lease: Lease,
  plan: Plan,
  done: AbortSignal,
  onLost: (why: string) => void,
  child: ChildProcess,
): Promise<void> {
  const clock = monotonicClock;
  const every = plan.ttl / 3n;
  let next = clock.now() + every;
  while (!done.aborted) {
    const termAt = lease.deadline - plan.grace;
    const wake = earlier(next, termAt);
    const wait = wake - clock.now();
    if (wait > 0n && !(await clock.sleep(wait, done))) return;
    if (clock.now() >= lease.deadline - plan.grace) {
      onLost(
        `not renewed in time (the last renewals failed); ${formatDuration(plan.grace)} before its deadline`,
      );
      break;
    }
    try {
      await lease.extend(plan.ttl, done);
      next = clock.now() + every;
    } catch (err) {
      if (done.aborted) return;
      if (err instanceof LeaseLostError) {
        onLost(err.message);
        break;
      }
      next = clock.now() + plan.ttl / 20n; // no answer: try again soon, until termAt
    }
  }
  if (done.aborted) return;
  killGroup(child, "SIGTERM");
  const left = lease.deadline - clock.now();
  const until = earlier(left, plan.grace);
  if (until > 0n) await sleep(Number(until) / 1e6, done);
  if (!done.aborted) killGroup(child, "SIGKILL");
}

function killGroup(child: ChildProcess, signal: NodeJS.Signals): void {
  if (child.pid === undefined || child.exitCode !== null || child.signalCode !== null) return;
  try {
    process.kill(-child.pid, signal);
  } catch {
    // the group is gone already
  }
}

function signalNumber(signal: NodeJS.Signals | null): number {
  const numbers: Partial<Record<NodeJS.Signals, number>> = {
    SIGHUP: 1,
    SIGINT: 2,
    SIGKILL: 9,
    SIGTERM: 15,
  };
  return (signal && numbers[signal]) || 0;
}
