/**
 * A simulated fleet of updater processes on one clock, driven by a schedule, for the
 * property test. Time is a simulated monotonic clock shared by all processes; store
 * operations take no simulated time. Each process follows an updater rule, and after
 * every step the simulation checks the invariants, throwing on the first violation.
 */
import assert from "node:assert/strict";
import { setImmediate as yieldTurn } from "node:timers/promises";
import {
  type ClockStore,
  InvalidUpdaterError,
  OutOfSyncUpdateError,
  Updater,
} from "../../src/index.js";
import { MemoryStore, memoryCell } from "../../src/stores/memory/index.js";
import { FaultyStore } from "../helpers/faulty-store.js";

export type Fault = "none" | "before" | "after";

export type Step =
  | { kind: "tick"; ns: bigint }
  | { kind: "advance"; who: number; fault: Fault }
  | { kind: "race"; racers: Array<{ who: number; fault: Fault; yields: number }> }
  | { kind: "restart"; who: number };

/**
 * How a process chooses the base its next advance counts from. The documented rule resets
 * the base whenever the updater confirms its view; the broken rules exist to show that the
 * checks catch a clock that runs fast.
 */
export interface Rule {
  /** After OutOfSyncUpdateError the updater re-read the time: count from now. */
  resetOnOutOfSync: boolean;
  /** After a failure of unknown outcome, a new updater re-reads: count from now. */
  resetOnNewUpdater: boolean;
}

export const DOCUMENTED_RULE: Rule = { resetOnOutOfSync: true, resetOnNewUpdater: true };

/** The cap on one advance, as the worker applies it (docs/design.md, "The rules every updater keeps"). */
export const MAX_STEP = 150_000_000n;

/** What happened across runs, so the test can show its faults and races really occurred. */
export interface Tally {
  wins: number;
  /** Advances skipped because no time had passed since the last confirmation. */
  idle: number;
  outOfSync: number;
  /** Advances whose swap committed although the caller got an error. */
  unacknowledgedCommits: number;
  /** Advances that failed before reaching the store. */
  lostBeforeStore: number;
  /** Races in which at least two processes swapped from the current time. */
  contestedRaces: number;
}

export function newTally(): Tally {
  return {
    wins: 0,
    idle: 0,
    outOfSync: 0,
    unacknowledgedCommits: 0,
    lostBeforeStore: 0,
    contestedRaces: 0,
  };
}

interface Proc {
  conn: FaultyStore;
  updater: Updater;
  /** Simulated time at which the process last confirmed its view. */
  base: bigint;
}

let runs = 0;

/** Opens a new connection to the clock called `name`. */
export type Opener = (name: string) => ClockStore;

/** Separate connections to one clock in this process's memory. */
export const openMemory: Opener = (name) => new MemoryStore(name);

/**
 * Runs one schedule with `count` processes, each on its own connection from `open`;
 * throws an AssertionError on a violation.
 */
export async function simulate(
  count: number,
  steps: readonly Step[],
  rule: Rule,
  tally: Tally = newTally(),
  open: Opener = openMemory,
): Promise<void> {
  const name = `simulation-${process.pid}-${runs++}`;
  const observer = open(name);
  let now = 0n; // simulated monotonic clock, ns
  let stored = 0n;
  const procs: Proc[] = [];
  for (let i = 0; i < count; i++) {
    const conn = new FaultyStore(open(name));
    procs.push({ conn, updater: await Updater.create(conn), base: now });
  }

  /** One advance by process p, following `rule`. Resolves to what the caller saw. */
  const advance = async (p: Proc, fault: Fault): Promise<"won" | "lost" | "failed" | "idle"> => {
    const elapsed = now - p.base;
    if (elapsed === 0n) {
      tally.idle++; // nothing to add
      return "idle";
    }
    const step = elapsed < MAX_STEP ? elapsed : MAX_STEP;
    if (fault !== "none") p.conn.failNext("compareAndSwap", fault);
    const committedBefore = p.conn.committedSwaps;
    try {
      await p.updater.advance(step);
      p.base = now;
      tally.wins++;
      return "won";
    } catch (err) {
      if (err instanceof OutOfSyncUpdateError) {
        if (rule.resetOnOutOfSync) p.base = now;
        tally.outOfSync++;
        return "lost";
      }
      if (!(err instanceof InvalidUpdaterError)) throw err;
      if (p.conn.committedSwaps > committedBefore) tally.unacknowledgedCommits++;
      else tally.lostBeforeStore++;
      await p.updater.close();
      p.updater = await Updater.create(p.conn);
      if (rule.resetOnNewUpdater) p.base = now;
      return "failed";
    }
  };

  const check = async (what: string) => {
    const current = (await observer.read()) ?? 0n;
    assert.ok(current >= stored, `${what}: stored time went back from ${stored} to ${current}`);
    assert.ok(
      current <= now,
      `${what}: global elapsed ${current}ns exceeds simulated wall elapsed ${now}ns`,
    );
    for (const [i, p] of procs.entries()) {
      assert.ok(p.updater.time <= current, `${what}: process ${i} holds a view from the future`);
    }
    stored = current;
  };

  try {
    for (const [n, step] of steps.entries()) {
      const what = `step ${n} (${step.kind})`;
      if (step.kind === "tick") {
        now += step.ns;
      } else if (step.kind === "advance") {
        await advance(procs[step.who % count] as Proc, step.fault);
      } else if (step.kind === "restart") {
        const p = procs[step.who % count] as Proc;
        await p.updater.close();
        p.updater = await Updater.create(p.conn);
        p.base = now;
      } else {
        await race(step.racers, what);
      }
      await check(what);
    }
  } finally {
    for (const p of procs) await p.conn.close();
    await observer.close();
    if (open === openMemory) memoryCell(name).value = undefined;
  }

  /** Several processes advance at once; each waits `yields` event-loop turns first. */
  async function race(racers: Extract<Step, { kind: "race" }>["racers"], what: string) {
    const seen = new Set<number>();
    const entrants = racers.filter((r) => {
      const who = r.who % count;
      if (seen.has(who)) return false; // a process makes one call at a time
      seen.add(who);
      return true;
    });
    const start = (await observer.read()) ?? 0n;
    const committed = () => procs.reduce((sum, p) => sum + p.conn.committedSwaps, 0);
    const committedBefore = committed();
    // Contenders swap from the current time with something to add, and reach the store.
    const contenders = entrants.filter((r) => {
      const p = procs[r.who % count] as Proc;
      return p.updater.time === start && now > p.base && r.fault !== "before";
    });
    const outcomes = await Promise.all(
      entrants.map(async (r) => {
        for (let i = 0; i < r.yields; i++) await yieldTurn();
        return advance(procs[r.who % count] as Proc, r.fault);
      }),
    );
    const commits = committed() - committedBefore;
    const acknowledged = outcomes.filter((o) => o === "won").length;
    if (contenders.length >= 2) tally.contestedRaces++;
    assert.equal(
      commits,
      contenders.length > 0 ? 1 : 0,
      `${what}: ${contenders.length} contenders from ${start}ns, ${commits} swaps committed`,
    );
    assert.ok(acknowledged <= commits, `${what}: ${acknowledged} acknowledged wins`);
  }
}
