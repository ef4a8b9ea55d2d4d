/**
 * `lock`'s guardian: a small process of its own (its own session, so neither the terminal's
 * signals nor a signal to `lock`'s group reach it) that holds the deadline of the lease
 * `lock` runs its command under, and stops the command's process group at it, whatever
 * `lock` is doing: waiting on a store call that hangs, blocked, stopped, or dead. It has
 * nothing else to do, so its timers are on time.
 *
 * `lock` talks to it in lines on its stdin; it answers on its stdout. Times are
 * CLOCK_MONOTONIC nanoseconds (`process.hrtime.bigint()`), the same in every process of
 * the machine.
 *   group <pgid> <grace>        the group to guard, and how long SIGTERM may take (answer: armed)
 *   deadline <termAt> <killAt>  SIGTERM the group at termAt, SIGKILL it at killAt
 *   stop <killAt>               SIGTERM now, SIGKILL at killAt (if sooner) (answer: gone, once it is)
 *   done                        lock has finished: exit
 * End of input without `done` means `lock` died: the group is stopped at once (SIGTERM,
 * then SIGKILL after grace or at the deadline, whichever is sooner).
 */
import { groupRunning, signalGroup } from "./process-group.js";

/** What the guardian does to the world: signals, the clock, timers, answers. */
export interface GuardianIo {
  now(): bigint;
  signal(group: number, signal: NodeJS.Signals): void;
  /** Whether a process of the group can still run. */
  running(group: number): boolean;
  setTimer(fn: () => void, ns: bigint): () => void;
  answer(line: string): void;
  exit(): void;
}

/** How often a group being stopped is looked at, until it is gone. */
const POLL_NS = 10_000_000n;
/** After SIGKILL, how long to look for the group before taking it as gone (a member stuck in the kernel). */
const AFTER_KILL_NS = 5_000_000_000n;

export class Guardian {
  readonly #io: GuardianIo;
  #group = 0;
  #grace = 0n;
  #termAt: bigint | undefined;
  #killAt: bigint | undefined;
  #termSent: bigint | undefined;
  #killedAt: bigint | undefined;
  #stopAsked = false;
  #lockGone = false;
  #finished = false;
  #cancel: (() => void) | undefined;

  constructor(io: GuardianIo) {
    this.#io = io;
  }

  /** One line from `lock`. */
  line(text: string): void {
    const [verb, ...args] = text.trim().split(/\s+/);
    const ns = (i: number) => BigInt(args[i] ?? "0");
    if (verb === "group") {
      this.#group = Number(args[0]);
      this.#grace = ns(1);
      this.#io.answer("armed");
    } else if (verb === "deadline") {
      this.#termAt = ns(0);
      this.#killAt = ns(1);
      this.#termSent = undefined; // a renewal moved the deadline: a new SIGTERM point
    } else if (verb === "stop") {
      this.#stopAsked = true;
      if (this.#group <= 0) this.#io.answer("gone"); // gone already (or never given)
      this.#killAt = this.#killAt === undefined || ns(0) < this.#killAt ? ns(0) : this.#killAt;
      this.#termAt = this.#io.now();
    } else if (verb === "done") {
      this.#finished = true;
    }
    this.#tick();
  }

  /** The end of `lock`'s input: it exited (or died). */
  end(): void {
    if (!this.#finished) {
      this.#lockGone = true;
      const now = this.#io.now();
      const killAt = now + this.#grace;
      if (this.#killAt === undefined || killAt < this.#killAt) this.#killAt = killAt;
      this.#termAt = now;
    }
    this.#tick();
  }

  /**
   * Does what is due, and sets a timer for what comes next. The group is looked at only
   * once it is being stopped: before that, a missing group may simply not be made yet.
   */
  #tick = (): void => {
    this.#cancel?.();
    this.#cancel = undefined;
    if (this.#finished || this.#group <= 0) {
      if (this.#finished || this.#lockGone) this.#io.exit();
      return;
    }
    const now = this.#io.now();
    const killing = this.#killAt !== undefined && now >= this.#killAt;
    const terming = this.#termAt !== undefined && now >= this.#termAt;
    if (killing || terming) {
      const stuck = this.#killedAt !== undefined && now - this.#killedAt >= AFTER_KILL_NS;
      if (stuck || !this.#io.running(this.#group)) {
        this.#gone();
        return;
      }
      if (killing) {
        this.#io.signal(this.#group, "SIGKILL");
        this.#killedAt ??= now;
      } else if (this.#termSent !== this.#termAt) {
        this.#io.signal(this.#group, "SIGTERM");
        this.#termSent = this.#termAt;
      }
    }
    let next = killing || terming ? now + POLL_NS : undefined;
    for (const at of [this.#termAt, this.#killAt]) {
      if (at !== undefined && at > now && (next === undefined || at < next)) next = at;
    }
    if (next !== undefined) this.#cancel = this.#io.setTimer(this.#tick, next - now);
  };

  #gone(): void {
    if (this.#stopAsked) this.#io.answer("gone");
    this.#group = 0;
    if (this.#lockGone) this.#io.exit();
  }
}

/** The guardian process: lines on stdin, answers on stdout. */
export function runGuardian(): void {
  for (const s of ["SIGINT", "SIGTERM", "SIGHUP", "SIGQUIT"] as const) process.on(s, () => {});
  process.stdout.on("error", () => {}); // lock is gone: nobody to answer
  const guardian = new Guardian({
    now: () => process.hrtime.bigint(),
    signal: (group, signal) => void signalGroup(group, signal),
    running: groupRunning,
    setTimer: (fn, ns) => {
      const timer = setTimeout(fn, Math.ceil(Number(ns) / 1e6));
      return () => clearTimeout(timer);
    },
    answer: (line) => process.stdout.write(`${line}\n`),
    exit: () => process.exit(0),
  });
  let buffered = "";
  process.stdin.setEncoding("utf8");
  process.stdin.on("data", (chunk: string) => {
    buffered += chunk;
    for (let at = buffered.indexOf("\n"); at >= 0; at = buffered.indexOf("\n")) {
      guardian.line(buffered.slice(0, at));
      buffered = buffered.slice(at + 1);
    }
  });
  process.stdin.on("end", () => guardian.end());
  process.stdin.on("error", () => guardian.end());
  process.stdout.write("ready\n");
}
