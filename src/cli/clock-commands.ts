import type { Command } from "commander";
import { formatDuration, toNanoseconds } from "../duration.js";
import { ConfigError } from "../errors.js";
import { Leases } from "../leases/leases.js";
import { openStore } from "../open.js";
import type { ClockStore } from "../store.js";
import { formatGlobalTime, globalEpoch } from "../time.js";
import { Updater } from "../updater.js";
import { workerSettings } from "../worker-settings.js";
import { type Io, storeUrl } from "./io.js";

/** What `now` and `status` say on stderr when the store holds no clock record. */
export const NO_RECORD =
  "there is no clock record in this store: no updater has created one yet, or it was deleted (once a store has had a clock, nothing re-creates it; restore it from a backup, or, to start a new clock on purpose, empty the store and run `globalclock advance 0s`)";

/** `globalclock now [--json]`: the stored global time. */
export function registerNow(program: Command, io: Io): void {
  program
    .command("now")
    .description("print global time: ISO 8601 with nanoseconds, and nanoseconds since the epoch")
    .option("--json", "print one JSON object")
    .action(async (opts: { json?: boolean }, cmd: Command) => {
      const store = await openStore(storeUrl(cmd, io), { readOnly: true });
      try {
        const stored = await store.read();
        // A missing record reads as the epoch (Juju's rule); the note says why it is 0.
        if (stored === undefined) io.err(`globalclock: note: ${NO_RECORD}`);
        io.out(showTime(stored ?? globalEpoch(), opts.json));
      } finally {
        await store.close();
      }
    });
}

/** `globalclock advance <duration> [--force]`: one compare-and-swap advance. */
export function registerAdvance(program: Command, io: Io): void {
  program
    .command("advance")
    .description('advance global time once by a duration such as "1s" or "250ms"')
    .argument("<duration>", 'e.g. "1.5s", "250ms", "1s1ns"')
    .option("--force", "advance by more than the cluster's maxStep")
    .option("--json", "print one JSON object")
    .action(async (duration: string, opts: { json?: boolean; force?: boolean }, cmd: Command) => {
      const step = toNanoseconds(duration, "duration"); // before touching the store
      const store = await openStore(storeUrl(cmd, io));
      try {
        if (!opts.force) await checkStep(store, step);
        await using updater = await Updater.create(store);
        io.out(showTime(await updater.advance(step), opts.json));
      } finally {
        await store.close();
      }
    });
}

/**
 * Refuses a step beyond the cluster's maxStep: lease holders count on no step being larger
 * (docs/design.md, "The holder's deadline"), so one such advance could end every lease at once, before its holder's
 * deadline. The maxStep is the one stored beside the clock where the store keeps leases,
 * else the workers' default.
 */
async function checkStep(store: ClockStore, step: bigint): Promise<void> {
  let maxStep = workerSettings().maxStep;
  if (store.leases) {
    const leases = new Leases(store);
    try {
      maxStep = await leases.maxStep();
    } finally {
      await leases.close();
    }
  }
  if (step <= maxStep) return;
  throw new ConfigError(
    "duration",
    `advancing by ${formatDuration(step)} at once is more than the cluster's maxStep (${formatDuration(maxStep)}): lease holders count on no step being larger, so every lease could expire at once, before its holder's deadline; pass --force to do it anyway`,
  );
}

function showTime(time: bigint, json: boolean | undefined): string {
  return json
    ? JSON.stringify({ time: formatGlobalTime(time), ns: time.toString() })
    : `${formatGlobalTime(time)} ${time}`;
}
