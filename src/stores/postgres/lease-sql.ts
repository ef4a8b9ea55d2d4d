/**
 * The SQL of the PostgreSQL store's leases (./leases.ts), on the relations PgTables names:
 * the clock's table (the clock alone, row `g`), `<table>_settings` (the cluster's maxStep,
 * row `maxStep`), `<table>_leases` (one row per lease) and the sequence `<table>_tokens`.
 */
import type { PgTables } from "./tables.js";

export type Read = "clock" | "read" | "list" | "listAll";

/** Which of the three tables exist, for a read that must do without the others. */
export interface Present {
  readonly clock: boolean;
  readonly settings: boolean;
  readonly leases: boolean;
}

/** The relations' names, as PgTables holds them. */
export type Relations = Pick<PgTables, "clock" | "settings" | "leases" | "tokens">;

const ALL: Present = { clock: true, settings: true, leases: true };
const COLUMNS = "l.name, l.holder, l.token, l.start, l.expiry, to_json(l.pins) AS pins, l.version";

/**
 * A read as one statement: the clock and maxStep as scalar subqueries, the leases by a LEFT
 * JOIN, so that a row comes back even when no lease matches. A table not `present` reads as
 * NULL; without the lease table there are no parameters either.
 */
export function readSql(t: Relations, kind: Read, present = ALL): string {
  const time = present.clock ? `(SELECT time FROM ${t.clock} WHERE id = 'g')` : "NULL";
  const maxStep = present.settings
    ? `(SELECT value FROM ${t.settings} WHERE name = 'maxStep')`
    : "NULL";
  const context = `SELECT ${time} AS time, ${maxStep} AS max_step`;
  if (kind === "clock" || !present.leases) return context;
  const join = `${context}, ${COLUMNS} FROM (VALUES (1)) AS one LEFT JOIN ${t.leases} AS l`;
  const order = `ORDER BY l.name COLLATE "C"`;
  if (kind === "read") return `${join} ON l.name = $1`;
  if (kind === "list")
    return `${join} ON l.name COLLATE "C" >= $1 AND l.name COLLATE "C" < $2 ${order}`;
  return `${join} ON l.name COLLATE "C" >= $1 ${order}`;
}

/**
 * A new record's first version: random (1 to 2^52), so that a record made anew after an
 * operator deleted one never takes the version the deleted one had, and a writer that read
 * the deleted one cannot overwrite the new one.
 */
const NEW_VERSION = "floor(random() * 4503599627370496)::bigint + 1";

/**
 * The statements' text, made once per store (and by the benchmark's raw baseline). A lease
 * write's values: $1 name, $2 holder, $3 token, $4 start, $5 expiry, $6 pins, $7 the leases'
 * channel, $8 newToken, and for an update $9 the version it was read at.
 */
export function leaseStatements(t: Relations) {
  // Evaluated only where the row is written (CASE never evaluates the branch not taken).
  // An insert that meets a conflict has drawn from the sequence for nothing: a gap.
  const token = `CASE WHEN $8 THEN GREATEST(nextval('${t.tokens}'), $3::bigint + 1) ELSE $3::bigint END`;
  return {
    clock: readSql(t, "clock"),
    read: readSql(t, "read"),
    list: readSql(t, "list"),
    listAll: readSql(t, "listAll"),
    present: `SELECT to_regclass($1) IS NOT NULL AS clock, to_regclass($2) IS NOT NULL AS settings,
      to_regclass($3) IS NOT NULL AS leases`,
    relations: [t.clock, t.settings, t.leases],
    // Under READ COMMITTED a plain subquery would compare against the statement's snapshot,
    // so a change of maxStep committed while the UPDATE waited on the clock's row would go
    // unseen. Locked, the setting is read at its latest version (waiting for a change in
    // flight), and a change that comes later waits until this advance commits.
    advance: `WITH s AS (SELECT value FROM ${t.settings} WHERE name = 'maxStep' FOR SHARE)
      UPDATE ${t.clock} SET time = $2 WHERE id = 'g' AND time = $1 AND (SELECT value FROM s) = $3
      RETURNING pg_notify($4, time::text)`,
    insert: `INSERT INTO ${t.leases} (name, holder, token, start, expiry, pins, version)
      VALUES ($1, $2, ${token}, $4, $5, $6, ${NEW_VERSION}) ON CONFLICT (name) DO NOTHING
      RETURNING version, token, pg_notify($7, name)`,
    update: `UPDATE ${t.leases} SET holder = $2, token = ${token}, start = $4, expiry = $5,
      pins = $6, version = version + 1 WHERE name = $1 AND version = $9
      RETURNING version, token, pg_notify($7, name)`,
    ensureMaxStep: `INSERT INTO ${t.settings} AS s (name, value) VALUES ('maxStep', $1)
      ON CONFLICT (name) DO UPDATE SET value = s.value RETURNING value`,
    swapMaxStep: `UPDATE ${t.settings} SET value = $2 WHERE name = 'maxStep' AND value = $1`,
  };
}
