/**
 * `npm run bench [-- --quick] [-- --only stores,leases,contention,failover,handover,rate,scale,outage,peers]`
 *
 * Starts its own servers (PostgreSQL, etcd) with the test harness, measures, and writes
 * bench/results/<mode>.json and .md and the failover chart; a full run of every part
 * also regenerates the README's benchmark section. Needs `npm run build` first (the
 * daemons run the built CLI), which the npm script does.
 */
import { parseArgs } from "node:util";
import { contentionSection } from "./contention.js";
import { type Context, FULL, QUICK } from "./context.js";
import { failoverSection } from "./failover.js";
import { handoverSection } from "./handover.js";
import { leasesSection } from "./leases.js";
import { CpuMeter, describeMachine, LoadLog, sqliteVersion } from "./machine.js";
import { startMemoryProbe } from "./memory.js";
import { outageSection } from "./outage.js";
import { writeOutputs } from "./output.js";
import { peersSection } from "./peers.js";
import { killAll } from "./processes.js";
import { rateSection } from "./rate.js";
import type { BenchResults } from "./report.js";
import { scaleSection } from "./scale.js";
import { etcdVersion, postgresVersion, Scratch, startEtcd, startPostgres } from "./servers.js";
import { storesSection } from "./stores.js";

const PARTS = [
  "stores",
  "leases",
  "contention",
  "failover",
  "handover",
  "rate",
  "scale",
  "outage",
  "peers",
] as const;
type Part = (typeof PARTS)[number];

const { values } = parseArgs({
  options: { quick: { type: "boolean", default: false }, only: { type: "string" } },
});
const mode = values.quick ? QUICK : FULL;
const only = values.only?.split(",").map((p) => p.trim());
for (const p of only ?? []) {
  if (!PARTS.includes(p as Part)) throw new Error(`unknown part "${p}": use ${PARTS.join(", ")}`);
}
const runs = (part: Part) => !only || only.includes(part);

const began = performance.now();
const log = (line: string) =>
  process.stderr.write(
    `[${((performance.now() - began) / 1000).toFixed(0).padStart(4)} s] ${line}\n`,
  );

for (const signal of ["SIGINT", "SIGTERM"] as const) {
  process.once(signal, () => {
    log(`${signal}: stopping`);
    killAll();
    process.exit(130); // the harness kills its servers on exit
  });
}

log(`${mode.name} run; measuring how busy the machine is before starting`);
const meter = new CpuMeter();
await new Promise((r) => setTimeout(r, 2000));
const cpuBusyBefore = meter.lap();

const scratch = new Scratch();
const skipped: Record<string, string> = {};
log("starting PostgreSQL and etcd (the test harness)");
const [postgres, etcd] = await Promise.all([startPostgres(), startEtcd(1)]);
if (typeof postgres === "string") skipped.postgres = postgres;
if (typeof etcd === "string") skipped.etcd = etcd;
const ctx: Context = {
  mode,
  scratch,
  postgres: typeof postgres === "string" ? undefined : postgres,
  etcd: typeof etcd === "string" ? undefined : etcd,
  skipped,
  log,
};
const versions = {
  sqlite: sqliteVersion(),
  postgres: ctx.postgres ? await postgresVersion(ctx.postgres) : undefined,
  etcd: ctx.etcd ? await etcdVersion(ctx.etcd) : undefined,
};

const load = new LoadLog();
const results: BenchResults = {
  mode: mode.name,
  date: new Date().toISOString(),
  seconds: 0,
  machine: describeMachine({
    ...versions,
    mongodb: process.env.MONGODB_URI
      ? "MongoDB at MONGODB_URI, and the wire-protocol test double"
      : "MongoDB wire-protocol test double (no real server)",
  } as Record<string, string>),
  cpuBusyBefore,
  load: load.entries,
  stores: [],
  leases: [],
  contention: [],
  failover: [],
  handover: [],
  rate: [],
  memory: [],
  scale: [],
  outage: [],
  peers: undefined,
  skipped,
};
try {
  if (runs("stores")) {
    log("every store against its raw driver");
    results.stores = await load.section("stores", () => storesSection(ctx, versions));
  }
  if (runs("leases")) {
    log("leases: every store against its raw driver");
    results.leases = await load.section("leases", () => leasesSection(ctx, versions));
  }
  if (runs("contention")) {
    log("contention");
    results.contention = await load.section("contention", () => contentionSection(ctx));
  }
  if (runs("failover")) {
    log("failover");
    results.failover = await load.section("failover", () => failoverSection(ctx));
  }
  if (runs("handover")) {
    log("handover of a lease between campaigning processes");
    results.handover = await load.section("handover", () => handoverSection(ctx));
  }
  if (runs("rate")) {
    log("rate, and the idle daemons' memory meanwhile");
    const memory = await startMemoryProbe(ctx);
    results.rate = await load.section("rate", () => rateSection(ctx));
    results.memory = await memory.finish();
  }
  if (runs("scale")) {
    log("scale: many holders, many leases, through sessions");
    results.scale = await load.section("scale", () => scaleSection(ctx));
  }
  if (runs("outage")) {
    log("outage: the store down, and every updater stopped, for 3 × the TTL");
    results.outage = await load.section("outage", () => outageSection(ctx));
  }
  if (runs("peers")) {
    log("peers: etcd3's Lock and Election, node-redlock on Redis");
    results.peers = await load.section("peers", () => peersSection(ctx));
  }
} finally {
  await ctx.etcd?.close();
  await ctx.postgres?.close();
  scratch.close();
}
results.seconds = (performance.now() - began) / 1000;

const name = `${mode.name === "full" ? "bench" : "quick"}${only ? "-partial" : ""}`;
process.stdout.write(writeOutputs(results, name));
log(`done: bench/results/${name}.json, .md${results.failover.length ? " and the chart" : ""}`);
