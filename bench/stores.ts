/**
 * Every store side by side with its raw driver: `now` and `advance` through globalclock
 * against the same read and swap issued directly, sequentially (one operation in flight),
 * in alternating rounds of the same run.
 */
import { openStore, Reader, Updater } from "../src/index.js";
import type { ClockStore } from "../src/store.js";
import type { Context } from "./context.js";
import { type Comparison, compare, type Side } from "./measure.js";
import { etcdRaw, memoryRaw, mongoRaw, postgresRaw, type RawDriver, sqliteRaw } from "./raw.js";
import { eachTarget, type Target, type Versions } from "./targets.js";

export interface StoreRow {
  id: string;
  label: string;
  /** Server or engine version. */
  version: string;
  note?: string;
  readsWith: string;
  advancesWith: string;
  now: Comparison;
  advance: Comparison;
}

/** The channel the PostgreSQL store notifies on, so the baseline sends the same statement. */
function channelOf(store: ClockStore): string {
  const channel = (store as { channel?: unknown }).channel;
  if (typeof channel !== "string") throw new Error("the postgres store has no channel");
  return channel;
}

async function rawFor(target: Target, store: ClockStore): Promise<RawDriver> {
  const d = target.driver;
  switch (d.kind) {
    case "memory":
      return memoryRaw();
    case "sqlite":
      return sqliteRaw(d.path, d.table);
    case "postgres":
      return postgresRaw(d.url, channelOf(store), d.table);
    case "etcd":
      return etcdRaw(d.endpoints, d.key);
    case "mongodb":
      return mongoRaw(d.uri, d.database, d.collection);
  }
}

/** Measures one store: globalclock first creates the record, then both sides run. */
async function measure(ctx: Context, target: Target): Promise<StoreRow> {
  ctx.log(`  ${target.label}`);
  const store = await openStore(target.url);
  const updater = await Updater.create(store);
  const reader = new Reader(store);
  const raw = await rawFor(target, store);
  try {
    const options = {
      rounds: ctx.mode.rounds,
      roundMs: ctx.mode.roundMs,
      timeEvery: target.inProcess ? 16 : 1,
    };
    const nowSides: Side[] = [
      { name: "raw", op: raw.read },
      { name: "globalclock", op: { kind: "async", run: () => reader.now() } },
    ];
    const advanceSides: Side[] = [
      { name: "raw", op: raw.advance, before: () => raw.resync() },
      {
        name: "globalclock",
        op: { kind: "async", run: () => updater.advance(1n) },
        before: async () => {
          await updater.refresh();
        },
      },
    ];
    if (raw.awaited) {
      nowSides.push({ name: "raw, awaited", op: raw.awaited.read });
      advanceSides.push({
        name: "raw, awaited",
        op: raw.awaited.advance,
        before: () => raw.resync(),
      });
    }
    const now = await compare(nowSides, options);
    const advance = await compare(advanceSides, options);
    const row: StoreRow = {
      id: target.id,
      label: target.label,
      version: target.version,
      readsWith: raw.readsWith,
      advancesWith: raw.advancesWith,
      now,
      advance,
    };
    if (target.note) row.note = target.note;
    return row;
  } finally {
    await raw.close();
    await updater.close();
    await reader.close();
    await store.close();
  }
}

export async function storesSection(ctx: Context, versions: Versions): Promise<StoreRow[]> {
  const rows: StoreRow[] = [];
  await eachTarget(ctx, versions, "globalclock", async (target) => {
    rows.push(await measure(ctx, target));
  });
  return rows;
}
