import { createHash } from "node:crypto";
import { checkIdentifier } from "../../config.js";
import { ConfigError, LeaseLostError } from "../../errors.js";
import { checkLeaseText } from "../../leases/validate.js";
import type { PgQuery, PgResult } from "./client.js";
import { pgCode } from "./errors.js";
import { leaseTableName, relationName } from "./names.js";
import { DEFAULT_POSTGRES_TABLE } from "./store.js";
import { UNDEFINED_TABLE } from "./tables.js";

const statementNames = new Map<string, string>();

/** What checkFence needs of the caller's connection: a `pg.Client` or a pool's client. */
export interface PgFenceClient {
  query(config: PgQuery): Promise<PgResult>;
}

export interface PgFence {
  /** The lease's name. */
  name: string;
  /** Its holder, as claimed. */
  holder: string;
  /** The fencing token of the holder's grant (`lease.token`). */
  token: bigint;
  /** The store's clock table (its `table` option); leases are in `<table>_leases`. Default "globalclock". */
  table?: string;
  /** The store's schema, if it names one. */
  schema?: string;
}

/**
 * For data kept in the clock's own PostgreSQL database: throws LeaseLostError unless lease
 * `name` is still held by `holder` with `token`. Call it on the client of the transaction
 * that writes the guarded data (between BEGIN and COMMIT, never on a pool), and roll that
 * transaction back on the error. The check takes a share lock on the lease's row, so a
 * rival's claim waits until the transaction ends: the guarded writes commit before the next
 * holder's tenure begins. Keep such transactions short: a claim waits for them within its
 * own timeout. The check judges holder and token, not time: an expired lease that nobody has
 * taken over still passes.
 */
export async function checkFence(client: PgFenceClient, fence: PgFence): Promise<void> {
  if (typeof client?.query !== "function")
    throw new ConfigError("client", "missing client: pass the pg client of your transaction");
  checkLeaseText("name", fence.name);
  checkLeaseText("holder", fence.holder);
  if (typeof fence.token !== "bigint" || fence.token < 0n)
    throw new ConfigError("token", "invalid fencing token: use the lease's token, a bigint ≥ 0");
  const table = checkIdentifier("table", fence.table ?? DEFAULT_POSTGRES_TABLE);
  const schema = fence.schema === undefined ? undefined : checkIdentifier("schema", fence.schema);
  const leases = relationName(leaseTableName(table), schema);
  let res: PgResult | undefined;
  try {
    res = await client.query({
      text: `SELECT 1 AS held FROM ${leases} WHERE name = $1 AND holder = $2 AND token = $3 FOR SHARE`,
      values: [fence.name, fence.holder, fence.token.toString()],
      name: statementName(leases),
    });
  } catch (err) {
    if (pgCode(err) !== UNDEFINED_TABLE) throw err;
  }
  if (!res?.rows.length) {
    throw new LeaseLostError(
      fence.name,
      `it is not held by ${JSON.stringify(fence.holder)} with token ${fence.token} any more`,
    );
  }
}

/** Named, so that a connection parses and plans the check once. */
function statementName(leases: string): string {
  let name = statementNames.get(leases);
  if (!name) {
    name = `globalclock_${createHash("sha256").update(leases).digest("hex").slice(0, 16)}_fence`;
    statementNames.set(leases, name);
  }
  return name;
}
