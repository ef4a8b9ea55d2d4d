import { createHash } from "node:crypto";

/** PostgreSQL cuts identifiers (and channel names) at 63 bytes, NAMEDATALEN − 1. */
const MAX_NAME = 63;

/** `name` if it fits; else its start and a hash of the whole, so that no two names meet. */
function fit(name: string): string {
  if (Buffer.byteLength(name) <= MAX_NAME) return name;
  const hash = createHash("sha256").update(name).digest("hex").slice(0, 16);
  return `${name.slice(0, MAX_NAME - hash.length - 1)}_${hash}`;
}

/** The clock's LISTEN/NOTIFY channel, derived from its qualified table name. */
export function channelName(qualified: string): string {
  return fit(`globalclock.${qualified}`);
}

/** The leases' channel: the clock's, marked apart by a character no identifier has. */
export function leaseChannelName(qualified: string): string {
  return fit(`globalclock.${qualified}/leases`);
}

/** The table of lease records beside the clock table `table` (an ASCII identifier). */
export function leaseTableName(table: string): string {
  return fit(`${table}_leases`);
}

/** The table of settings (the cluster's maxStep) beside the clock table `table`. */
export function settingsTableName(table: string): string {
  return fit(`${table}_settings`);
}

/** The sequence of fencing tokens beside the clock table `table`. */
export function tokenSequenceName(table: string): string {
  return fit(`${table}_tokens`);
}

/** `"schema"."table"`, or `"table"` for the search_path to find. */
export function relationName(table: string, schema: string | undefined): string {
  return schema ? `"${schema}"."${table}"` : `"${table}"`;
}
