/** Checks shared by the store tests. */
import assert from "node:assert/strict";
import { ConfigError, openStore, Reader, StoreError } from "../../src/index.js";
import type { ClockStore } from "../../src/store.js";

/** An `assert.rejects` predicate: a StoreError of `store` matching `pattern`, hiding `secrets`. */
export const isStoreError =
  (store: string, pattern: RegExp, ...secrets: string[]) =>
  (err: unknown): true => {
    assert.ok(err instanceof StoreError, `not a StoreError: ${err}`);
    assert.equal(err.store, store);
    assert.match(err.message, pattern);
    for (const secret of secrets) assert.ok(!err.message.includes(secret), err.message);
    return true;
  };

/** Opening `url` fails with a ConfigError on `field`, and the message hides `secret`. */
export async function rejectsAsConfigError(
  url: string,
  field: string,
  secret = "hunter22",
): Promise<void> {
  await assert.rejects(openStore(url), (err: unknown) => {
    assert.ok(err instanceof ConfigError, String(err));
    assert.equal(err.field, field);
    assert.ok(!err.message.includes(secret), err.message);
    return true;
  });
}

/**
 * Follows `store` through a Reader that would poll only once an hour, so that only a push
 * can deliver changes in time; ends once it has seen `last`.
 */
export function pushedUntil(
  store: ClockStore,
  last: bigint,
): { seen: bigint[]; done: Promise<void> } {
  const ac = new AbortController();
  const seen: bigint[] = [];
  const done = (async () => {
    for await (const time of new Reader(store).watch({
      signal: ac.signal,
      pollIntervalMs: 3_600_000,
    })) {
      seen.push(time);
      if (time === last) ac.abort();
    }
  })();
  return { seen, done };
}
