import type { Command } from "commander";
import { formatDuration, toNanoseconds } from "../duration.js";
import { GlobalClockError } from "../errors.js";
import { openReader } from "../open.js";
import { formatGlobalTime } from "../time.js";
import { type Io, storeUrl } from "./io.js";
import { stopOnSignals } from "./signals.js";

/** `globalclock watch`: one line per change of global time, until SIGINT/SIGTERM. */
export function registerWatch(program: Command, io: Io): void {
  program
    .command("watch")
    .description(
      "print global time at every change (pushed by the store where it can, else polled)",
    )
    .option("--json", "print JSON lines")
    .option("--poll <duration>", "poll interval for stores that cannot push", "250ms")
    .action(async (opts: { json?: boolean; poll: string }, cmd: Command) => {
      const pollIntervalMs = Number(toNanoseconds(opts.poll, "poll")) / 1e6;
      await using reader = await openReader(storeUrl(cmd, io));
      using stop = stopOnSignals();
      for await (const time of reader.watch({ signal: stop.signal, pollIntervalMs })) {
        io.out(
          opts.json
            ? JSON.stringify({ time: formatGlobalTime(time), ns: time.toString() })
            : `${formatGlobalTime(time)} ${time}`,
        );
      }
    });
}

/**
 * `globalclock status`: watches the clock for a short window and reports the time, the
 * age of the last advance, how far global time trails wall-clock time, and how much it
 * fell behind during the window. Exits 1 when no advance was seen (no worker running).
 */
export function registerStatus(program: Command, io: Io): void {
  program
    .command("status")
    .description(
      "report global time, last advance age and lag behind wall time (watches for --window)",
    )
    .option("--window <duration>", "how long to watch for advances", "3s")
    .option("--json", "print one JSON object")
    .action(async (opts: { window: string; json?: boolean }, cmd: Command) => {
      const window = toNanoseconds(opts.window, "window");
      await using reader = await openReader(storeUrl(cmd, io));
      const signal = AbortSignal.timeout(Number(window) / 1e6);
      const start = process.hrtime.bigint();
      // The first value is the current time, written at an unknown moment; only the
      // changes seen afterwards say when an advance happened.
      let first: { time: bigint; at: bigint } | undefined;
      let last: { time: bigint; at: bigint } | undefined;
      let latest: bigint | undefined;
      for await (const time of reader.watch({ signal, pollIntervalMs: 100 })) {
        const at = process.hrtime.bigint();
        if (latest !== undefined) {
          last = { time, at };
          first ??= last;
        }
        latest = time;
      }
      latest ??= 0n;
      const end = process.hrtime.bigint();
      const offset = BigInt(Date.now()) * 1_000_000n - latest;
      const report = {
        time: formatGlobalTime(latest),
        ns: latest.toString(),
        lastAdvanceAgeSeconds: last ? Number(end - last.at) / 1e9 : null,
        behindWallClockSeconds: Number(offset) / 1e9,
        fellBehindInWindowSeconds:
          first && last ? Number(last.at - first.at - (last.time - first.time)) / 1e9 : null,
        windowSeconds: Number(end - start) / 1e9,
      };
      if (opts.json) io.out(JSON.stringify(report));
      else {
        io.out(`global time      ${report.time} (${report.ns} ns)`);
        io.out(
          `last advance     ${last ? `${formatDuration(end - last.at)} ago` : `none in ${formatDuration(window)}`}`,
        );
        io.out(`behind wall time ${formatDuration(offset)} (wall-clock time minus global time)`);
        if (first && last)
          io.out(
            `fell behind      ${formatDuration(last.at - first.at - (last.time - first.time))} during the window`,
          );
      }
      if (!last) {
        throw new GlobalClockError(
          `no advance seen in ${formatDuration(window)}: is a \`globalclock run\` worker running on this store?`,
        );
      }
    });
}
