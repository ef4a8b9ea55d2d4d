import { Counter, Gauge, type Registry } from "prom-client";
import { ConfigError } from "../errors.js";
import type { LeaseInfo } from "../leases/info.js";
import { formatDuration } from "../time.js";

/** Which leases get series of their own, beside the fleet's. */
export interface LeaseSeriesChoice {
  /** Leases whose name starts with this (`""`: every lease). */
  readonly prefix?: string;
  /** The N held leases nearest their expiry (not pinned; ties by name), at each scrape. */
  readonly soonest?: number;
}

export interface LeaseMetricsOptions {
  /** Per-lease series, off by default: a label per lease name is one series per lease. */
  readonly perLease?: LeaseSeriesChoice;
  /** A held lease this close to its expiry (global ns) counts as expiring soon; 10 s by default. */
  readonly soon?: bigint;
}

export const LEASE_METRICS_DEFAULTS = Object.freeze({ soon: 10_000_000_000n });

/**
 * Lease series for /metrics, judged from the store at scrape time (one read of every lease
 * with the clock per collection). Always the fleet's: leases held, expiring soon, and the
 * changes seen between scrapes (a new holder; a lease that lapsed instead of being
 * released). Per lease (held, token, expiry, handovers, lapses) only for the leases chosen,
 * so that the number of series stays bounded with thousands of leases.
 */
export function leaseMetrics(
  registry: Registry,
  list: () => Promise<readonly LeaseInfo[]>,
  options: LeaseMetricsOptions = {},
): void {
  const registers = [registry];
  const labelNames = ["lease"] as const;
  const soon = options.soon ?? LEASE_METRICS_DEFAULTS.soon;
  if (soon < 0n) throw new ConfigError("soon", "soon must be >= 0");
  const chosen = chooser(options.perLease);
  // prom-client collects every series of a scrape at once: they share one read, which has
  // counted what changed before any of them is rendered; the last of them lets it go. A
  // failed read (the store is down) shows no lease rather than fail the whole scrape.
  let series = 0; // every series made below collects through `snapshot`, once a scrape
  const none: Scrape = { leases: [], mine: new Set() };
  let pending: { scrape: Promise<Scrape>; users: number } | undefined;
  const snapshot = async (): Promise<Scrape> => {
    pending ??= { scrape: list().then(observe, () => none), users: 0 };
    const current = pending;
    if (++current.users === series) pending = undefined;
    return current.scrape;
  };
  const counter = <L extends string>(name: string, help: string, labels: readonly L[]) => {
    series++;
    return new Counter<L>({
      name,
      help,
      labelNames: labels,
      registers,
      async collect() {
        await snapshot();
      },
    });
  };
  const fleetHandovers = counter(
    "globalclock_leases_handovers_total",
    "Times any lease was seen taken by a new holder (its fencing token grew) between scrapes.",
    [],
  );
  const fleetLapsed = counter(
    "globalclock_leases_lapsed_total",
    "Times any lease was seen expired while still naming its holder: lost, not released.",
    [],
  );
  const handovers = counter(
    "globalclock_lease_handovers_total",
    "Times this lease was seen taken by a new holder between scrapes (chosen leases only).",
    labelNames,
  );
  const lapsed = counter(
    "globalclock_lease_lapsed_total",
    "Times this lease was seen expired while still naming its holder (chosen leases only).",
    labelNames,
  );
  const seen = new Map<string, LeaseInfo>();
  const observe = (leases: readonly LeaseInfo[]): Scrape => {
    const mine = chosen(leases);
    for (const l of leases) {
      const before = seen.get(l.name);
      if (before && l.token > before.token && l.holder !== "") {
        fleetHandovers.inc();
        if (mine.has(l.name)) handovers.inc({ lease: l.name });
      }
      if (l.free && l.holder !== "" && !(before?.free && before.token === l.token)) {
        fleetLapsed.inc();
        if (mine.has(l.name)) lapsed.inc({ lease: l.name });
      }
      seen.set(l.name, l);
    }
    return { leases, mine };
  };
  const fleet = (name: string, help: string, count: (l: LeaseInfo) => boolean) => {
    series++;
    return new Gauge({
      name,
      help,
      registers,
      async collect() {
        const { leases } = await snapshot();
        let n = 0;
        for (const l of leases) if (count(l)) n++;
        this.set(n);
      },
    });
  };
  fleet(
    "globalclock_leases_held",
    "Leases held now (not released, not expired, or pinned).",
    (l) => !l.free,
  );
  fleet(
    "globalclock_leases_expiring_soon",
    `Held leases, not pinned, within ${formatDuration(soon)} of global time of their expiry.`,
    (l) => !l.free && l.pins.length === 0 && l.expiry - l.time <= soon,
  );
  const gauge = (name: string, help: string, value: (l: LeaseInfo) => number) => {
    series++;
    return new Gauge({
      name,
      help,
      labelNames,
      registers,
      async collect() {
        const { leases, mine } = await snapshot();
        this.reset();
        for (const l of leases) if (mine.has(l.name)) this.set({ lease: l.name }, value(l));
      },
    });
  };
  gauge(
    "globalclock_lease_held",
    "1 while the lease is held (not released, not expired, or pinned), else 0.",
    (l) => (l.free ? 0 : 1),
  );
  gauge(
    "globalclock_lease_token",
    "The lease's fencing token (grows at every change of holder).",
    (l) => Number(l.token),
  );
  gauge(
    "globalclock_lease_expiry_seconds",
    "The lease's expiry, in global seconds since the epoch (compare globalclock_time_seconds).",
    (l) => Number(l.expiry) / 1e9,
  );
}

/** One scrape's read, and the names that get series of their own. */
interface Scrape {
  readonly leases: readonly LeaseInfo[];
  readonly mine: ReadonlySet<string>;
}

/** The names a choice picks from one read. */
function chooser(
  choice: LeaseSeriesChoice | undefined,
): (leases: readonly LeaseInfo[]) => Set<string> {
  const { prefix, soonest = 0 } = choice ?? {};
  if (!Number.isSafeInteger(soonest) || soonest < 0)
    throw new ConfigError("soonest", `soonest must be a whole number >= 0, not ${soonest}`);
  return (leases) => {
    const mine = new Set<string>();
    if (prefix !== undefined)
      for (const l of leases) if (l.name.startsWith(prefix)) mine.add(l.name);
    if (soonest > 0) {
      const held = leases.filter((l) => !l.free && l.pins.length === 0);
      held.sort((a, b) =>
        a.expiry < b.expiry ? -1 : a.expiry > b.expiry ? 1 : a.name < b.name ? -1 : 1,
      );
      for (const l of held.slice(0, soonest)) mine.add(l.name);
    }
    return mine;
  };
}
