/**
 * Leases side by side with the raw driver: a holder extending its lease, and a claim of a
 * released lease followed by its release, through `Leases` against the same statements
 * sent directly (bench/lease-raw.ts), one operation in flight, in alternating rounds.
 *
 * Nothing advances the clock meanwhile, so an extend rewrites the same expiry (a new
 * version all the same), and every lease lasts an hour: none runs out while measured.
 */
import { openStore } from "../src/index.js";
import { Leases } from "../src/leases/leases.js";
import type { Context } from "./context.js";
import { RAW_CLAIM, RAW_EXTEND, RAW_HOLDER, type RawLeases, rawLeases } from "./lease-raw.js";
import { type Comparison, compare, type Side } from "./measure.js";
import { eachTarget, type Target, type Versions } from "./targets.js";

export interface LeaseRow {
  id: string;
  label: string;
  version: string;
  note?: string;
  /** What the raw side sends for one claim. */
  sends: string;
  /** The holder extends its lease (a claim by the same holder sends the same). */
  extend: Comparison;
  /** A claim of a released lease, then its release. */
  claimRelease: Comparison;
}

const HOUR = 3_600_000_000_000n;
const HOLDER = "gc";

async function measure(ctx: Context, target: Target): Promise<LeaseRow> {
  ctx.log(`  ${target.label}`);
  const store = await openStore(target.url);
  const leases = new Leases(store);
  let raw: RawLeases | undefined;
  try {
    await store.ensure();
    await leases.setMaxStep(undefined, await leases.maxStep()); // the default, stored
    const held = await leases.claim("gc-extend", HOLDER, HOUR);
    await (await leases.claim("gc-claim", HOLDER, HOUR)).release();
    if (target.driver.kind !== "memory") {
      // The raw side's own records, made through Leases so that they are what it makes.
      await leases.claim(RAW_EXTEND, RAW_HOLDER, HOUR);
      await (await leases.claim(RAW_CLAIM, RAW_HOLDER, HOUR)).release();
    }
    raw = await rawLeases(target.driver, HOUR);
    const options = {
      rounds: ctx.mode.rounds,
      roundMs: ctx.mode.roundMs,
      timeEvery: target.inProcess ? 16 : 1,
      warmMs: ctx.mode.leaseWarmMs,
    };
    const extendSides: Side[] = [
      { name: "raw", op: raw.extend },
      { name: "globalclock", op: { kind: "async", run: () => held.extend(HOUR) } },
    ];
    const claimSides: Side[] = [
      { name: "raw", op: raw.claimRelease },
      {
        name: "globalclock",
        op: {
          kind: "async",
          run: async () => {
            const lease = await leases.claim("gc-claim", HOLDER, HOUR);
            await lease.release();
          },
        },
      },
    ];
    if (raw.awaited) {
      extendSides.push({ name: "raw, awaited", op: raw.awaited.extend });
      claimSides.push({ name: "raw, awaited", op: raw.awaited.claimRelease });
    }
    const row: LeaseRow = {
      id: target.id,
      label: target.label,
      version: target.version,
      sends: raw.sends,
      extend: await compare(extendSides, options),
      claimRelease: await compare(claimSides, options),
    };
    if (target.note) row.note = target.note;
    return row;
  } finally {
    await raw?.close();
    await leases.close();
    await store.close();
  }
}

export async function leasesSection(ctx: Context, versions: Versions): Promise<LeaseRow[]> {
  const rows: LeaseRow[] = [];
  await eachTarget(ctx, versions, "leases", async (target) => {
    rows.push(await measure(ctx, target));
  });
  return rows;
}
