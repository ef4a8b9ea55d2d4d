import { Counter, Gauge, type Registry } from "prom-client";
import type { LeaseInfo } from "../leases/info.js";

/**
 * Lease series for /metrics, judged from the store at scrape time (one read of every lease
 * with the clock per collection): which leases are held, by which token, until when, and
 * the changes seen between scrapes (a new holder; a lease that lapsed instead of being
 * released). One series per lease name: meant for a handful of leases, not thousands.
 */
export function leaseMetrics(registry: Registry, list: () => Promise<readonly LeaseInfo[]>): void {
  const registers = [registry];
  const labelNames = ["lease"] as const;
  const seen = new Map<string, LeaseInfo>();
  let handovers: Counter<"lease">;
  let lapsed: Counter<"lease">;
  const observe = (leases: readonly LeaseInfo[]) => {
    for (const l of leases) {
      const before = seen.get(l.name);
      if (before && l.token > before.token && l.holder !== "") handovers.inc({ lease: l.name });
      if (l.free && l.holder !== "" && !(before?.free && before.token === l.token))
        lapsed.inc({ lease: l.name });
      seen.set(l.name, l);
    }
  };
  // prom-client collects every series of a scrape at once: they share one read, which has
  // counted what changed before any of them is rendered; the last of them lets it go. A
  // failed read (the store is down) shows no lease rather than fail the whole scrape.
  const SERIES = 5;
  let pending: { leases: Promise<readonly LeaseInfo[]>; users: number } | undefined;
  const snapshot = async (): Promise<readonly LeaseInfo[]> => {
    pending ??= {
      leases: list().then(
        (leases) => {
          observe(leases);
          return leases;
        },
        () => [],
      ),
      users: 0,
    };
    const current = pending;
    if (++current.users === SERIES) pending = undefined;
    return current.leases;
  };
  handovers = new Counter({
    name: "globalclock_lease_handovers_total",
    help: "Times a lease was seen taken by a new holder (its fencing token grew) between scrapes.",
    labelNames,
    registers,
    async collect() {
      await snapshot();
    },
  });
  lapsed = new Counter({
    name: "globalclock_lease_lapsed_total",
    help: "Times a lease was seen expired while still naming its holder: lost, not released.",
    labelNames,
    registers,
    async collect() {
      await snapshot();
    },
  });
  const gauge = (name: string, help: string, value: (l: LeaseInfo) => number) =>
    new Gauge({
      name,
      help,
      labelNames,
      registers,
      async collect() {
        const leases = await snapshot();
        this.reset();
        for (const l of leases) this.set({ lease: l.name }, value(l));
      },
    });
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
