/**
 * The SQL of the SQLite store's leases (./leases.ts), on three tables: the clock's
 * `<table>`, which holds the clock alone, `<table>_settings` (the cluster's maxStep, row
 * `maxStep`, and the last fencing token handed out, row `token`) and `<table>_leases` (one
 * row per lease, pins as a JSON array of strings).
 */

/** Which of the three tables exist, for a read that must do without the others. */
export interface Present {
  readonly clock: boolean;
  readonly settings: boolean;
  readonly leases: boolean;
}

export type Read = "clock" | "read" | "list" | "listAll";

const ALL: Present = { clock: true, settings: true, leases: true };
const COLUMNS = "l.name, l.holder, l.token, l.start, l.expiry, l.pins, l.version";

interface Tables {
  clock: string;
  settings: string;
  leases: string;
}

/**
 * A read as one statement, so one snapshot: the clock and maxStep as scalar subqueries,
 * the leases by a LEFT JOIN, so that a row comes back even when no lease matches. A table
 * not `present` reads as NULL; without the lease table there are no parameters either.
 */
export function readSql(t: Tables, kind: Read, present = ALL): string {
  const time = present.clock ? `(SELECT time FROM ${t.clock} WHERE id = 'g')` : "NULL";
  const maxStep = present.settings
    ? `(SELECT value FROM ${t.settings} WHERE name = 'maxStep')`
    : "NULL";
  const context = `SELECT ${time} AS time, ${maxStep} AS max_step`;
  if (kind === "clock" || !present.leases) return context;
  const join = `${context}, ${COLUMNS} FROM (SELECT 1) LEFT JOIN ${t.leases} AS l`;
  if (kind === "read") return `${join} ON l.name = ?`;
  if (kind === "list") return `${join} ON l.name >= ? AND l.name < ? ORDER BY l.name`;
  return `${join} ON l.name >= ? ORDER BY l.name`;
}

/** The statements' text for the clock table `table` (a checked identifier), made once per store. */
export function leaseSql(table: string) {
  const t: Tables = {
    clock: `"${table}"`,
    settings: `"${table}_settings"`,
    leases: `"${table}_leases"`,
  };
  // SQLite's names are case-insensitive, as the catalogue's lookups are.
  const exists = (name: string) =>
    `EXISTS (SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = '${name}' COLLATE NOCASE)`;
  return {
    tables: t,
    clock: readSql(t, "clock"),
    read: readSql(t, "read"),
    list: readSql(t, "list"),
    listAll: readSql(t, "listAll"),
    present: `SELECT ${exists(table)} AS clock, ${exists(`${table}_settings`)} AS settings,
      ${exists(`${table}_leases`)} AS leases`,
    createSettings: `CREATE TABLE IF NOT EXISTS ${t.settings}
      (name TEXT NOT NULL PRIMARY KEY, value INTEGER NOT NULL)`,
    createLeases: `CREATE TABLE IF NOT EXISTS ${t.leases} (name TEXT NOT NULL PRIMARY KEY,
      holder TEXT NOT NULL, token INTEGER NOT NULL, start INTEGER NOT NULL,
      expiry INTEGER NOT NULL, pins TEXT NOT NULL, version INTEGER NOT NULL)`,
    // A new record's first version is random (1 to 2^52): a record made anew after an
    // operator deleted one never takes the deleted one's version, which a writer may hold.
    insertLease: `INSERT INTO ${t.leases} (holder, token, start, expiry, pins, name, version)
      VALUES (?, ?, ?, ?, ?, ?, (random() & 4503599627370495) + 1)
      ON CONFLICT (name) DO NOTHING RETURNING version`,
    updateLease: `UPDATE ${t.leases} SET holder = ?, token = ?, start = ?, expiry = ?, pins = ?,
      version = version + 1 WHERE name = ? AND version = ? RETURNING version`,
    // The clock's compare-and-swap for updaters, on the maxStep they read too: one statement
    // in one write transaction, so no change of maxStep can come between the two.
    advance: `UPDATE ${t.clock} SET time = ? WHERE id = 'g' AND time = ? AND typeof(time) = 'integer'
      AND (SELECT value FROM ${t.settings} WHERE name = 'maxStep' AND typeof(value) = 'integer') = ?`,
    // A new token: above the last one handed out and above the record's own.
    nextToken: `UPDATE ${t.settings} SET value = max(value, ?) + 1 WHERE name = 'token'
      RETURNING value`,
    // The counter row gone (or never made): started again above every token still stored.
    seedToken: `INSERT INTO ${t.settings} (name, value)
      SELECT 'token', max(?, coalesce((SELECT max(token) FROM ${t.leases}), 0)) + 1
      RETURNING value`,
    maxStep: `SELECT value FROM ${t.settings} WHERE name = 'maxStep'`,
    insertMaxStep: `INSERT INTO ${t.settings} (name, value) VALUES ('maxStep', ?)
      ON CONFLICT (name) DO NOTHING`,
    // In SQLite a REAL 5.0 equals the INTEGER 5: the type must match too.
    swapMaxStep: `UPDATE ${t.settings} SET value = ?
      WHERE name = 'maxStep' AND value = ? AND typeof(value) = 'integer'`,
    dataVersion: "PRAGMA data_version",
  };
}
