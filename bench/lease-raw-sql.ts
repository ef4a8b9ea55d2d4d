/** The leases' raw baselines on SQLite and PostgreSQL: the stores' own statement texts. */
import Database from "better-sqlite3";
import pg from "pg";
import { leaseStatements } from "../src/stores/postgres/lease-sql.js";
import { leaseChannelName } from "../src/stores/postgres/names.js";
import { leaseSql } from "../src/stores/sqlite/lease-sql.js";
import { asyncOps, type Fields, int, type RawLeases, type Read, syncOps } from "./lease-raw-ops.js";

/** The store's own SELECT … LEFT JOIN and UPDATE … RETURNING version, prepared, on the same file. */
export function sqliteLeases(path: string, table: string, d: bigint): RawLeases {
  const db = new Database(path, { timeout: 0 });
  db.pragma("journal_mode = WAL");
  db.pragma("synchronous = FULL");
  const sql = leaseSql(table);
  const select = db.prepare<[string]>(sql.read).safeIntegers();
  const update = db.prepare(sql.updateLease).safeIntegers().pluck();
  const nextToken = db.prepare(sql.nextToken).safeIntegers().pluck();
  const updateLease = (name: string, f: Fields, token: bigint, version: bigint) =>
    update.get(f.holder, token, f.start, f.expiry, f.pins, name, version) !== undefined;
  // A claim's new token and its write in one IMMEDIATE transaction, as the store sends them.
  const claim = db.transaction((name: string, f: Fields, read: bigint, version: bigint) =>
    updateLease(name, f, nextToken.get(read) as bigint, version),
  );
  // A claim's decision is the read token + 1; the store takes the next one from its counter.
  const tokens = new Map<string, bigint>();
  const ops = syncOps(
    {
      read: (name) => {
        const row = select.get(name) as Record<string, unknown>;
        tokens.set(name, row.token as bigint);
        return { time: row.time as bigint, lease: row as unknown as Read["lease"] };
      },
      write: (name, f, version) => {
        const read = tokens.get(name) ?? f.token;
        return f.token !== read
          ? claim.immediate(name, f, read, version)
          : updateLease(name, f, f.token, version);
      },
    },
    d,
  );
  return {
    sends:
      "the store's prepared SELECT of the clock and maxStep (scalar subqueries) LEFT JOIN the lease, then its prepared UPDATE … WHERE name = ? AND version = ? RETURNING version; a claim's new token from the settings' counter (UPDATE … RETURNING) in the same IMMEDIATE transaction (WAL, synchronous = FULL)",
    ...ops,
    close: async () => {
      db.close();
    },
  };
}

/** A pg.Pool sending the store's statement texts as named prepared statements. */
export function postgresLeases(url: string, table: string, d: bigint): RawLeases {
  const pool = new pg.Pool({ connectionString: url, max: 4 });
  pool.on("error", () => {});
  const { read, update } = leaseStatements({
    clock: `"${table}"`,
    settings: `"${table}_settings"`,
    leases: `"${table}_leases"`,
    tokens: `"${table}_tokens"`,
  });
  const channel = leaseChannelName(table);
  // A claim's decision is the read token + 1; the store sends the read one, with newToken.
  const tokens = new Map<string, bigint>();
  const ops = asyncOps(
    {
      read: async (name) => {
        const res = await pool.query({ name: "bench_raw_lease_read", text: read, values: [name] });
        const row = res.rows[0] as Record<string, unknown>;
        const token = int(row.token);
        tokens.set(name, token);
        return {
          time: int(row.time),
          lease: {
            holder: row.holder as string,
            token,
            start: int(row.start),
            expiry: int(row.expiry),
            pins: row.pins,
            version: int(row.version),
          },
        };
      },
      write: async (name, f, version) => {
        const read = tokens.get(name) ?? f.token;
        const newToken = f.token !== read;
        const token = `${newToken ? read : f.token}`;
        const values = [name, f.holder, token, `${f.start}`, `${f.expiry}`, f.pins, channel];
        const res = await pool.query({
          name: "bench_raw_lease_update",
          text: update,
          values: [...values, newToken, `${version}`],
        });
        return res.rowCount === 1;
      },
    },
    d,
  );
  return {
    sends:
      "the store's statements as named prepared statements on a pg.Pool: one SELECT of the clock and maxStep (scalar subqueries) LEFT JOIN the lease, then UPDATE … WHERE name = $1 AND version = $9 RETURNING version, token, pg_notify(…) (a claim's token from the sequence)",
    ...ops,
    close: () => pool.end(),
  };
}
