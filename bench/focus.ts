/**
 * A focused look at one `now` comparison, for trying a change to the store code before it
 * is made: `node --import tsx bench/focus.ts postgres|mongodb [--src DIR] [--rounds N]`.
 *
 * Starts the server (PostgreSQL, or the MongoDB test double), then measures the raw read
 * (bench/raw.ts) against Reader.now() of the library at `--src` (default: src/; point it at
 * a copy with the change), in alternating rounds of 300 ms as the benchmark does, and
 * prints the median ratio with this process's CPU time and garbage-collection time per
 * read. A copy's garbage weighs on every side of the process it runs in, so compare copies
 * in separate runs, each against its own raw side, and repeat: the machine may be shared.
 */
import { readFileSync } from "node:fs";
import { resolve } from "node:path";
import { PerformanceObserver } from "node:perf_hooks";
import { pathToFileURL } from "node:url";
import { parseArgs } from "node:util";
import { median } from "./measure.js";
import { mongoRaw, postgresRaw, type RawDriver } from "./raw.js";
import { startMongoDouble, startPostgres } from "./servers.js";

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: { src: { type: "string" }, rounds: { type: "string", default: "20" } },
});
const store = positionals[0];
if (store !== "postgres" && store !== "mongodb") throw new Error("use: focus.ts postgres|mongodb");
const src = pathToFileURL(resolve(values.src ?? new URL("../src", import.meta.url).pathname));
const lib = (await import(`${src.href}/index.js`)) as typeof import("../src/index.js");

let gcMs = 0;
new PerformanceObserver((list) => {
  for (const e of list.getEntries()) gcMs += e.duration;
}).observe({ entryTypes: ["gc"] });

let stopServer: () => Promise<void>;
let url: string;
let raw: RawDriver;
if (store === "postgres") {
  const server = await startPostgres();
  if (typeof server === "string") throw new Error(server);
  stopServer = () => server.close();
  url = server.url("postgres", "table=focus");
} else {
  const double = await startMongoDouble();
  stopServer = double.stop;
  url = `${double.uri}&collection=focus`;
}
const clock = await lib.openStore(url);
await clock.ensure();
const reader = new lib.Reader(clock);
if (store === "postgres") {
  const { channel } = clock as unknown as { channel: string };
  raw = postgresRaw(url.replace(/\?.*$/, ""), channel, "focus");
} else raw = await mongoRaw(url.replace(/&collection=.*$/, ""), "globalclock", "focus");

const sides = [
  { name: "raw", run: raw.read.run as () => Promise<unknown> },
  { name: "Reader.now", run: () => reader.now() },
];
const rounds = sides.map(() => [] as Array<{ rate: number; cpuUs: number; gcUs: number }>);
for (const side of sides)
  for (const t = performance.now(); performance.now() - t < 1000; ) await side.run();
for (let r = 0; r < Number(values.rounds); r++) {
  for (let k = 0; k < sides.length; k++) {
    const i = (r + k) % sides.length;
    const run = (sides[i] as (typeof sides)[number]).run;
    const [g0, c0, t0] = [gcMs, process.cpuUsage(), performance.now()];
    let n = 0;
    while (performance.now() - t0 < 300) {
      await run();
      n++;
    }
    const ms = performance.now() - t0;
    const cpu = process.cpuUsage(c0);
    await new Promise((r) => setImmediate(r)); // let the GC observer report
    rounds[i]?.push({
      rate: n / (ms / 1000),
      cpuUs: (cpu.user + cpu.system) / n,
      gcUs: ((gcMs - g0) * 1000) / n,
    });
  }
}
const base = rounds[0] ?? [];
const load = readFileSync("/proc/loadavg", "utf8").split(" ")[0];
process.stdout.write(`${store}, library at ${src.pathname}, load ${load}\n`);
sides.forEach((side, i) => {
  const mine = rounds[i] ?? [];
  const ratio = median(mine.map((x, r) => x.rate / (base[r]?.rate ?? Number.NaN)));
  process.stdout.write(
    `  ${side.name.padEnd(11)} ${Math.round(median(mine.map((x) => x.rate)))} reads/s, ÷ raw ${ratio.toFixed(3)}, CPU ${median(mine.map((x) => x.cpuUs)).toFixed(1)} µs/read, GC ${median(mine.map((x) => x.gcUs)).toFixed(2)} µs/read\n`,
  );
});
await raw.close();
await reader.close();
await clock.close();
await stopServer();
