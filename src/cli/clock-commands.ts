import type { Command } from "commander";
import { toNanoseconds } from "../duration.js";
import { openReader, openUpdater } from "../open.js";
import { formatGlobalTime } from "../time.js";
import { type Io, storeUrl } from "./io.js";

/** `globalclock now [--json]`: the stored global time. */
export function registerNow(program: Command, io: Io): void {
  program
    .command("now")
    .description("print global time: ISO 8601 with nanoseconds, and nanoseconds since the epoch")
    .option("--json", "print one JSON object")
    .action(async (opts: { json?: boolean }, cmd: Command) => {
      await using reader = await openReader(storeUrl(cmd, io));
      const time = await reader.now();
      io.out(showTime(time, opts.json));
    });
}

/** `globalclock advance <duration>`: one compare-and-swap advance. */
export function registerAdvance(program: Command, io: Io): void {
  program
    .command("advance")
    .description('advance global time once by a duration such as "1s" or "250ms"')
    .argument("<duration>", 'e.g. "1.5s", "250ms", "1s1ns"')
    .option("--json", "print one JSON object")
    .action(async (duration: string, opts: { json?: boolean }, cmd: Command) => {
      const step = toNanoseconds(duration, "duration"); // before touching the store
      await using updater = await openUpdater(storeUrl(cmd, io));
      const time = await updater.advance(step);
      io.out(showTime(time, opts.json));
    });
}

function showTime(time: bigint, json: boolean | undefined): string {
  return json
    ? JSON.stringify({ time: formatGlobalTime(time), ns: time.toString() })
    : `${formatGlobalTime(time)} ${time}`;
}
