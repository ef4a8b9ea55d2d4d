import { createHash } from "node:crypto";
import type { PgPool, PgResult } from "./client.js";
import { pgCode } from "./errors.js";
import { leaseTableName, relationName, settingsTableName, tokenSequenceName } from "./names.js";

// Every column comes back as the server's text: the store parses the bigint itself, exactly,
// without touching pg's process-wide type parsers (other code may rely on them).
const AS_TEXT = { getTypeParser: () => (text: string) => text };

export const UNDEFINED_TABLE = "42P01";
const CACHED_PLAN_CHANGED = "0A000";

/**
 * The store's tables, the clock's (the clock alone) and beside it the settings', the
 * leases' and the sequence of fencing tokens, and the one way the store queries them: on
 * its pool, every value as text.
 */
export class PgTables {
  /** The clock table's relation, `"schema"."table"` or `"table"`. */
  readonly clock: string;
  /** The settings' table (the cluster's maxStep), `<table>_settings` in the same schema. */
  readonly settings: string;
  /** The lease records' table, `<table>_leases` in the same schema. */
  readonly leases: string;
  /** The sequence the fencing tokens come from, `<table>_tokens` in the same schema. */
  readonly tokens: string;
  readonly #pool: PgPool;
  readonly #statementPrefix: string;
  readonly #created = new Map<string, Promise<void>>();

  constructor(pool: PgPool, table: string, schema: string | undefined) {
    this.#pool = pool;
    this.clock = relationName(table, schema);
    this.settings = relationName(settingsTableName(table), schema);
    this.leases = relationName(leaseTableName(table), schema);
    this.tokens = relationName(tokenSequenceName(table), schema);
    this.#statementPrefix = `globalclock_${createHash("sha256").update(this.clock).digest("hex").slice(0, 16)}`;
  }

  /**
   * `prepare` names a hot statement (read, CAS, readLease, writeLease): each pooled
   * connection then parses and plans it once, instead of on every call.
   */
  query(text: string, values?: unknown[], prepare?: string): Promise<PgResult> {
    if (!prepare) return this.#pool.query({ text, values, types: AS_TEXT });
    return this.prepared(text, values, prepare).catch((err: unknown) =>
      this.unprepared(err, text, values),
    );
  }

  /** A named statement with no fallback: the caller passes its errors to `unprepared`. */
  prepared(text: string, values: unknown[] | undefined, prepare: string): Promise<PgResult> {
    const name = `${this.#statementPrefix}_${prepare}`;
    return this.#pool.query({ text, values, types: AS_TEXT, name });
  }

  /** After a prepared statement failed: the same, unprepared, if its plan went stale; else `err`. */
  unprepared(err: unknown, text: string, values: unknown[] | undefined): Promise<PgResult> {
    // The table's column types changed under a prepared plan: ask again, unprepared.
    if (pgCode(err) !== CACHED_PLAN_CHANGED) return Promise.reject(err);
    return this.#pool.query({ text, values, types: AS_TEXT });
  }

  createClock(): Promise<void> {
    return this.#createTable(this.clock, "id text PRIMARY KEY, time bigint NOT NULL");
  }

  createSettings(): Promise<void> {
    return this.#createTable(this.settings, "name text PRIMARY KEY, value bigint NOT NULL");
  }

  /** Names in byte order ("C"), so that listing by prefix is a range of the primary key. */
  createLeases(): Promise<void> {
    return this.#createTable(
      this.leases,
      `name text COLLATE "C" PRIMARY KEY, holder text NOT NULL, token bigint NOT NULL,
       start bigint NOT NULL, expiry bigint NOT NULL, pins text[] NOT NULL,
       version bigint NOT NULL`,
    );
  }

  /**
   * The token sequence, once the lease table exists. A new one starts above every token
   * still stored (it may have been dropped under running stores); of two processes making
   * it at once, one makes it and the other finds it made, so it is never set back.
   */
  createTokens(): Promise<void> {
    return this.#create(this.tokens, async () => {
      const top = await this.query(
        `SELECT GREATEST(max(token), 0) + 1 AS start FROM ${this.leases}`,
      );
      const start = BigInt(String(top.rows[0]?.start));
      await this.query(`CREATE SEQUENCE IF NOT EXISTS ${this.tokens} START WITH ${start}`);
    });
  }

  /** Every table a lease write needs (the settings' too: a read of the lease is one statement). */
  async createAll(): Promise<void> {
    await Promise.all([this.createClock(), this.createSettings(), this.createLeases()]);
    await this.createTokens();
  }

  /** After a relation was dropped under the store: each is made again by its next create. */
  forget(): void {
    this.#created.clear();
  }

  #createTable(relation: string, columns: string): Promise<void> {
    return this.#create(relation, async () => {
      await this.query(`CREATE TABLE IF NOT EXISTS ${relation} (${columns})`);
    });
  }

  /** `make` (a `CREATE … IF NOT EXISTS`), once per store and relation; retried after a failure. */
  #create(relation: string, make: () => Promise<void>): Promise<void> {
    let created = this.#created.get(relation);
    if (created) return created;
    created = make().catch(async (err: unknown) => {
      // Two processes creating the relation at once: one of them loses on the catalog.
      if (pgCode(err) === "42P07" || pgCode(err) === "23505") return;
      // PostgreSQL checks the CREATE privilege before it looks for the relation, so a user
      // that may only use an existing one is refused even with IF NOT EXISTS.
      if (pgCode(err) === "42501") {
        const found = await this.query("SELECT to_regclass($1) IS NOT NULL AS found", [
          relation,
        ]).catch(() => undefined);
        if (found?.rows[0]?.found === "t") return;
      }
      if (this.#created.get(relation) === created) this.#created.delete(relation);
      throw err;
    });
    this.#created.set(relation, created);
    return created;
  }
}
