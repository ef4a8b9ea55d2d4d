/**
 * The parts of node-postgres (`pg`) the store uses, as structural types: a `pg.Pool` of
 * the caller's fits them, and the store never loads `pg` itself (the URL opener does).
 */

export interface PgQuery {
  text: string;
  values?: unknown[];
  /** A prepared statement's name: parsed and planned once per connection. */
  name?: string;
  /** Per-query type parsers (pg's `types`). */
  types?: unknown;
}

export interface PgResult {
  rows: Array<Record<string, unknown>>;
  rowCount: number | null;
}

/** A connection held for LISTEN: a pooled client, or one of its own. */
export interface PgListenClient {
  query(text: string): Promise<unknown>;
  on(
    event: "notification",
    listener: (msg: { channel: string; payload?: string }) => void,
  ): unknown;
  on(event: "error", listener: (err: Error) => void): unknown;
  on(event: "end", listener: () => void): unknown;
  /** Gives the connection up; the store always passes `true`, so a pool destroys it. */
  release(destroy?: Error | boolean): void;
}

/** What the store needs of a pool: `pg.Pool` has it. */
export interface PgPool {
  query(config: PgQuery): Promise<PgResult>;
  connect(): Promise<PgListenClient>;
}
