import type { Command } from "commander";
import { formatDuration } from "../duration.js";
import { GlobalClockError } from "../errors.js";
import { leaseInfos } from "../leases/info.js";
import { openReader, openStore } from "../open.js";
import { Reader } from "../reader.js";
import { formatGlobalTime, globalEpoch } from "../time.js";
import { NO_RECORD } from "./clock-commands.js";
import { type Io, storeUrl } from "./io.js";
import { infoLine, showInfo } from "./lease-commands.js";
import { durationFlag } from "./options.js";
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
      const pollIntervalMs = Number(durationFlag("--poll", opts.poll)) / 1e6;
      await using reader = await openReader(storeUrl(cmd, io));
      using stop = stopOnSignals(io.closed);
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
 * age of the last advance, and how much global time fell behind monotonic time during the
 * window. Exits 1 when there is no clock record, or no advance was seen (no worker running).
 */
export function registerStatus(program: Command, io: Io): void {
  program
    .command("status")
    .description(
      "report global time, the age of the last advance and the lag (watches for --window)",
    )
    .option("--window <duration>", "how long to watch for advances", "3s")
    .option("--json", "print one JSON object")
    .action(async (opts: { window: string; json?: boolean }, cmd: Command) => {
      const window = durationFlag("--window", opts.window);
      const store = await openStore(storeUrl(cmd, io), { readOnly: true });
      await using reader = new Reader(store, { onClose: () => store.close() });
      if ((await store.read()) === undefined) {
        const epoch = globalEpoch();
        if (opts.json)
          io.out(JSON.stringify({ record: false, time: formatGlobalTime(epoch), ns: "0" }));
        else io.out(`global time      none: no clock record (reads as ${formatGlobalTime(epoch)})`);
        throw new GlobalClockError(NO_RECORD);
      }
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
      latest ??= globalEpoch();
      const end = process.hrtime.bigint();
      // Global time counts from the epoch, not from any wall-clock date, so comparing it
      // with the wall clock says nothing; what it lost while watched does.
      const fellBehind = first && last ? last.at - first.at - (last.time - first.time) : undefined;
      // The leases kept beside the clock, judged against the time the watch ended on.
      const leases = store.leases
        ? leaseInfos((await store.leases.listLeases("")).leases, latest)
        : [];
      const report = {
        record: true,
        time: formatGlobalTime(latest),
        ns: latest.toString(),
        lastAdvanceAgeSeconds: last ? Number(end - last.at) / 1e9 : null,
        fellBehindInWindowSeconds: fellBehind === undefined ? null : Number(fellBehind) / 1e9,
        windowSeconds: Number(end - start) / 1e9,
        leases: leases.map(showInfo),
      };
      if (opts.json) io.out(JSON.stringify(report));
      else {
        io.out(`global time      ${report.time} (${report.ns} ns)`);
        io.out(
          `last advance     ${last ? `${formatDuration(end - last.at)} ago` : `none in ${formatDuration(window)}`}`,
        );
        if (fellBehind !== undefined)
          io.out(
            `fell behind      ${formatDuration(fellBehind)} during the window (monotonic time elapsed minus global time advanced)`,
          );
        if (leases.length === 0) io.out("leases           none");
        for (const info of leases) io.out(`lease            ${infoLine(info)}`);
      }
      if (!last) {
        throw new GlobalClockError(
          `no advance seen in ${formatDuration(window)}: is a \`globalclock run\` worker running on this store?`,
        );
      }
    });
}
