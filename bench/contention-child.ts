/**
 * One contending process: an Updater advancing the clock in a tight loop (one call in
 * flight) between two moments of the shared monotonic clock, then its tally.
 * argv: store URL, step (ns). Speaks over the IPC channel of child_process.fork.
 */
import { describe } from "../src/errors.js";
import { OutOfSyncUpdateError, openStore, Updater } from "../src/index.js";

export interface Go {
  type: "go";
  /** process.hrtime.bigint() values, as decimal text: one clock for every process here. */
  start: string;
  end: string;
}

export interface Tally {
  type: "tally";
  advances: number;
  conflicts: number;
  errors: number;
  lastError?: string;
  /** The longest stretch without a successful advance, run edges included (ms). */
  longestDroughtMs: number;
}

const [url, stepText] = process.argv.slice(2);
if (!url || !stepText || !process.send)
  throw new Error("usage: fork(contention-child, [url, stepNs])");
const step = BigInt(stepText);
const send = (message: unknown) => process.send?.(message);

const store = await openStore(url);
let updater = await Updater.create(store);
const go = new Promise<Go>((resolve) => process.once("message", (m) => resolve(m as Go)));
send({ type: "ready" });
const start = BigInt((await go).start);
const end = BigInt((await go).end);
for (;;) {
  const left = Number(start - process.hrtime.bigint()) / 1e6;
  if (left <= 0) break;
  await new Promise((r) => (left > 2 ? setTimeout(r, left - 1) : setImmediate(r)));
}

const tally: Tally = { type: "tally", advances: 0, conflicts: 0, errors: 0, longestDroughtMs: 0 };
let drought = 0n;
let last = start;
for (;;) {
  if (process.hrtime.bigint() >= end) break;
  try {
    await updater.advance(step);
    tally.advances++;
    const now = process.hrtime.bigint();
    if (now - last > drought) drought = now - last;
    last = now;
  } catch (err) {
    if (err instanceof OutOfSyncUpdateError) {
      tally.conflicts++; // the updater re-read the clock; go again
      continue;
    }
    // Unknown outcome: the updater is spent. Count it and build a new one.
    tally.errors++;
    tally.lastError = describe(err);
    await updater.close();
    updater = await Updater.create(store);
  }
}
if (end - last > drought) drought = end - last;
tally.longestDroughtMs = Number(drought) / 1e6;
await updater.close();
await store.close();
send(tally);
process.disconnect();
