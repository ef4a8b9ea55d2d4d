// What each lease operation writes (src/leases/records.ts), decided without a store: the
// pure functions that Leases reads around and writes the result of.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { InvalidDurationError, LeaseHeldError, LeaseLostError } from "../../src/errors.js";
import type { LeaseRecord } from "../../src/lease-store.js";
import {
  claimed,
  expiryOf,
  extended,
  pinned,
  released,
  unpinned,
} from "../../src/leases/records.js";
import { INT64_MAX } from "../../src/time.js";

const S = 1_000_000_000n;
const record = (fields: Partial<LeaseRecord> = {}): LeaseRecord => ({
  name: "job",
  holder: "alice",
  token: 7n,
  start: 10n * S,
  expiry: 20n * S,
  pins: [],
  version: 3n,
  ...fields,
});
/** The error `fn` throws. */
function thrown(fn: () => unknown): unknown {
  try {
    fn();
  } catch (err) {
    return err;
  }
  assert.fail("nothing was thrown");
}

describe("claimed", () => {
  test("a new record: a new token above 0, from now for the duration, no pins", () => {
    assert.deepEqual(claimed(undefined, "job", "bob", 5n * S, 9n * S), {
      name: "job",
      holder: "bob",
      token: 0n,
      newToken: true,
      start: 5n * S,
      expiry: 14n * S,
      pins: [],
    });
  });

  test("a free record (released, or expired) goes to a new holder with a token above its old one, keeping its pins", () => {
    const free = record({ holder: "", pins: [] });
    const write = claimed(free, "job", "bob", 30n * S, 9n * S);
    assert.equal(write.newToken, true);
    assert.equal(write.token, 7n, "the floor the store's new token must pass");
    assert.equal(write.holder, "bob");
    assert.equal(write.start, 30n * S);
    const expired = claimed(record(), "job", "bob", 20n * S, 9n * S);
    assert.equal(expired.holder, "bob", "expired at exactly its expiry");
    assert.equal(expired.expiry, 29n * S);
    const unpinnedFree = claimed(
      record({ holder: "", pins: ["m"] }),
      "job",
      "bob",
      30n * S,
      9n * S,
    );
    assert.deepEqual(unpinnedFree.pins, ["m"], "pins stay with the record");
  });

  test("held by another: LeaseHeldError with its holder, token and expiry, judged at `time`", () => {
    const err = thrown(() => claimed(record(), "job", "bob", 20n * S - 1n, 9n * S));
    assert.ok(err instanceof LeaseHeldError);
    assert.deepEqual(err.lease, {
      name: "job",
      holder: "alice",
      token: 7n,
      expiry: 20n * S,
      pinned: false,
    });
    assert.equal(err.time, 20n * S - 1n);
    const pinnedErr = thrown(() => claimed(record({ pins: ["m"] }), "job", "bob", 99n * S, 9n * S));
    assert.ok(pinnedErr instanceof LeaseHeldError && pinnedErr.lease.pinned, "a pin keeps it held");
  });

  test("the same holder: its token and start kept, the expiry never shortened", () => {
    assert.deepEqual(claimed(record(), "job", "alice", 12n * S, 1n * S), {
      name: "job",
      holder: "alice",
      token: 7n,
      newToken: false,
      start: 10n * S,
      expiry: 20n * S,
      pins: [],
    });
    assert.equal(claimed(record(), "job", "alice", 15n * S, 9n * S).expiry, 24n * S);
  });
});

describe("extended", () => {
  test("by its holder and token: the later expiry, everything else kept", () => {
    const r = record({ pins: ["m"] });
    assert.deepEqual(extended(r, "job", "alice", 7n, 15n * S, 9n * S), {
      name: "job",
      holder: "alice",
      token: 7n,
      newToken: false,
      start: 10n * S,
      expiry: 24n * S,
      pins: ["m"],
    });
    assert.equal(extended(r, "job", "alice", 7n, 11n * S, 1n * S).expiry, 20n * S, "never shorter");
  });

  test("not held by the caller: LeaseLostError that says why, with the lease as stored", () => {
    const gone = thrown(() => extended(undefined, "job", "alice", 7n, 0n, S));
    assert.ok(gone instanceof LeaseLostError);
    assert.match(gone.message, /lease "job" was lost: it was released/);
    assert.equal(gone.lease, undefined, "nothing stored");
    const released = thrown(() => extended(record({ holder: "" }), "job", "alice", 7n, 0n, S));
    assert.ok(released instanceof LeaseLostError);
    assert.match(released.message, /it was released/);
    assert.equal(released.lease?.holder, "", "the record as read");
    const other = thrown(() => extended(record({ holder: "bob" }), "job", "alice", 7n, 0n, S));
    assert.ok(other instanceof LeaseLostError);
    assert.match(other.message, /it is held by "bob" with token 7 now/);
    assert.equal(other.lease?.holder, "bob");
    // Another holder with another token: still another's lease, not a later grant of alice's.
    const later = thrown(() =>
      extended(record({ holder: "bob", token: 8n }), "job", "alice", 7n, 0n, S),
    );
    assert.ok(later instanceof LeaseLostError);
    assert.match(later.message, /it is held by "bob" with token 8 now$/);
    const stale = thrown(() => extended(record(), "job", "alice", 6n, 0n, S));
    assert.ok(stale instanceof LeaseLostError);
    assert.match(
      stale.message,
      /token 6 is not "alice"'s current grant: it holds the lease with token 7/,
    );
  });
});

describe("released", () => {
  test('by its holder: holder "", the token kept, the expiry brought to now', () => {
    assert.deepEqual(released(record(), "job", "alice", 7n, 15n * S), {
      name: "job",
      holder: "",
      token: 7n,
      newToken: false,
      start: 10n * S,
      expiry: 15n * S,
      pins: [],
    });
    const late = released(record(), "job", "alice", 7n, 25n * S);
    assert.equal(late?.expiry, 20n * S, "an expiry already passed stays");
    const early = released(record({ start: 18n * S }), "job", "alice", 7n, 15n * S);
    assert.equal(early?.start, 15n * S, "the start never after the expiry");
  });

  test("twice is once; a release with another token is no release of the caller's", () => {
    assert.equal(released(record({ holder: "" }), "job", "alice", 7n, 15n * S), undefined);
    assert.throws(
      () => released(record({ holder: "" }), "job", "alice", 6n, 15n * S),
      LeaseLostError,
    );
    assert.throws(
      () => released(record({ holder: "bob", token: 8n }), "job", "alice", 7n, 0n),
      LeaseLostError,
    );
  });
});

describe("pinned and unpinned", () => {
  test("a pin on no record makes one, held by nobody, at `time`, token 0", () => {
    assert.deepEqual(pinned(undefined, "job", "m", 5n * S), {
      name: "job",
      holder: "",
      token: 0n,
      newToken: false,
      start: 5n * S,
      expiry: 5n * S,
      pins: ["m"],
    });
  });

  test("a pin is added once; unpin removes only that entity's; absent: nothing to write", () => {
    const r = record({ pins: ["m"] });
    assert.equal(pinned(r, "job", "m", 0n), undefined);
    assert.deepEqual(pinned(r, "job", "n", 0n)?.pins, ["m", "n"]);
    assert.deepEqual(pinned(r, "job", "n", 0n)?.token, 7n);
    assert.deepEqual(unpinned(record({ pins: ["m", "n"] }), "m")?.pins, ["n"]);
    assert.equal(unpinned(r, "nobody"), undefined);
    assert.equal(unpinned(undefined, "m"), undefined);
    assert.equal(unpinned(r, "m")?.holder, "alice", "the holder stays");
  });
});

describe("expiryOf", () => {
  test("up to int64's last nanosecond; one past it is refused, naming the duration", () => {
    assert.equal(expiryOf(INT64_MAX - 5n, 5n), INT64_MAX);
    const err = thrown(() => expiryOf(INT64_MAX - 5n, 6n));
    assert.ok(err instanceof InvalidDurationError && err.field === "duration");
    assert.match(err.message, /beyond the largest global time/);
  });
});
