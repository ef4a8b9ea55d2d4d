// What every store calls a corrupt record (src/record.ts, src/stores/lease-rows.ts): the
// checks, their boundaries and their messages, without a store.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { CorruptRecordError, StoreError } from "../../src/errors.js";
import {
  CLOCK_TIME,
  checkLease,
  checkStoredTime,
  checkWrite,
  describeValue,
  MAX_STEP,
  parseStoredDecimal,
  type RawLease,
  wrongType,
} from "../../src/record.js";
import { leaseRows, type RowDecoding } from "../../src/stores/lease-rows.js";
import { INT64_MAX } from "../../src/time.js";

const corrupt =
  (re: RegExp, record = "clock record") =>
  (e: unknown) => {
    assert.ok(e instanceof CorruptRecordError, String(e));
    assert.equal(e.retryable, false);
    assert.equal(e.store, "kind");
    assert.equal(e.operation, "op");
    assert.match(e.message, re);
    assert.ok(e.message.includes(`corrupt ${record}`), e.message);
    return true;
  };

describe("stored integers", () => {
  test("0 to int64's maximum pass; below or beyond is corrupt, naming the field and the record", () => {
    assert.equal(checkStoredTime(0n, "kind", "op"), 0n);
    assert.equal(checkStoredTime(INT64_MAX, "kind", "op"), INT64_MAX);
    assert.throws(() => checkStoredTime(-1n, "kind", "op"), corrupt(/time is negative \(-1\)/));
    assert.throws(
      () => checkStoredTime(INT64_MAX + 1n, "kind", "op", MAX_STEP),
      corrupt(/maxStep 9223372036854775808 is beyond int64/, "maxStep record"),
    );
    assert.deepEqual(CLOCK_TIME, { field: "time", record: "clock record" });
  });

  test("a value of another type is corrupt, with its type and a glimpse of it", () => {
    const err = wrongType("kind", "op", 1.5, MAX_STEP);
    assert.ok(err instanceof CorruptRecordError);
    assert.match(
      err.message,
      /corrupt maxStep record: maxStep is a number \("1\.5"\), not an integer/,
    );
    assert.match(wrongType("kind", "op", "x").message, /corrupt clock record: time is a string/);
  });

  test("decimal text: strict digits, an optional minus, at most 20 digits; then the range", () => {
    assert.equal(parseStoredDecimal("42", "kind", "op"), 42n);
    assert.equal(parseStoredDecimal("9223372036854775807", "kind", "op"), INT64_MAX);
    for (const bad of ["", " 1", "1 ", "1e3", "0x10", "+1", "1.0", "123456789012345678901"])
      assert.throws(() => parseStoredDecimal(bad, "kind", "op"), corrupt(/not an integer/));
    assert.throws(() => parseStoredDecimal("-3", "kind", "op"), corrupt(/time is negative \(-3\)/));
    assert.throws(
      () => parseStoredDecimal("99999999999999999999", "kind", "op"),
      corrupt(/beyond int64/),
    );
  });

  test("describeValue: blobs as hex (16 bytes at most, then …), strings quoted, others by type", () => {
    assert.equal(describeValue(Uint8Array.from([1, 2])), "a blob of 2 bytes (0102)");
    const long = new Uint8Array(17).fill(255);
    assert.equal(describeValue(long), `a blob of 17 bytes (${"ff".repeat(16)}…)`);
    assert.equal(describeValue(new Uint8Array(16)), `a blob of 16 bytes (${"00".repeat(16)})`);
    assert.equal(describeValue("a\nb"), 'a string ("a\\x0ab")');
    assert.equal(describeValue(true), 'a boolean ("true")');
    assert.equal(describeValue(null), 'a object ("null")');
  });
});

const raw = (fields: Partial<RawLease> = {}): RawLease => ({
  name: "job",
  holder: "alice",
  token: 7n,
  start: 1n,
  expiry: 2n,
  pins: ["m"],
  version: 3n,
  ...fields,
});

describe("lease records", () => {
  test("a good record comes back frozen, with safe numbers as bigints", () => {
    const r = checkLease(raw({ token: 7, start: 1, expiry: 2, version: 3 }), "kind", "op");
    assert.deepEqual(r, {
      name: "job",
      holder: "alice",
      token: 7n,
      start: 1n,
      expiry: 2n,
      pins: ["m"],
      version: 3n,
    });
    assert.ok(Object.isFrozen(r) && Object.isFrozen(r.pins));
    assert.equal(
      checkLease(raw({ start: 2n, expiry: 2n }), "kind", "op").start,
      2n,
      "start may equal expiry",
    );
    const edge = checkLease(
      raw({ token: INT64_MAX, expiry: INT64_MAX, version: INT64_MAX }),
      "kind",
      "op",
    );
    assert.deepEqual(
      [edge.token, edge.expiry, edge.version],
      [INT64_MAX, INT64_MAX, INT64_MAX],
      "int64's largest value is valid",
    );
  });

  test("every way a record can be corrupt names the lease and what is wrong", () => {
    const lease = 'lease record "job"';
    const cases: Array<[Partial<RawLease>, RegExp]> = [
      [{ name: 5 }, /name is a number/],
      [{ holder: null }, /holder is a object/],
      [{ token: "7" }, /token is a string \("7"\), not an integer/],
      [{ start: 1.5 }, /start is a number \("1\.5"\), not an integer/],
      [{ expiry: 2 ** 60 }, /expiry is a number/],
      [{ version: -1n }, /version -1 is not a non-negative int64/],
      [{ token: INT64_MAX + 1n }, /token 9223372036854775808 is not a non-negative int64/],
      [{ pins: "m" }, /pins are a string \("m"\), not a list of names/],
      [{ pins: ["m", 1] }, /pins are a object/],
      [{ start: 3n, expiry: 2n }, /start 3 is after expiry 2/],
    ];
    for (const [fields, re] of cases) {
      const record = fields.name === 5 ? 'lease record "5"' : lease;
      assert.throws(() => checkLease(raw(fields), "kind", "op"), corrupt(re, record));
    }
  });

  test("checkWrite: a write whose integers are not non-negative int64s is refused, not retryable", () => {
    const fields = { name: "job", holder: "a", token: 0n, start: 0n, expiry: INT64_MAX, pins: [] };
    checkWrite(fields, "kind", "op");
    for (const field of ["token", "start", "expiry"] as const) {
      for (const bad of [-1n, INT64_MAX + 1n]) {
        assert.throws(
          () => checkWrite({ ...fields, [field]: bad }, "kind", "op"),
          (e: unknown) =>
            e instanceof StoreError &&
            !e.retryable &&
            e.message === `kind store: op failed: ${field} ${bad} is not a non-negative int64`,
        );
      }
    }
  });
});

describe("lease rows (SQL stores)", () => {
  const decoding: RowDecoding = {
    kind: "kind",
    stored: (value, operation, what) =>
      value === null || value === undefined
        ? undefined
        : checkStoredTime(BigInt(value as bigint), "kind", operation, what),
    integer: (value) => value,
    pins: (value) => (typeof value === "string" ? JSON.parse(value) : value),
  };
  const row = (fields: Record<string, unknown> = {}) => ({
    time: 5n,
    max_step: 9n,
    name: "job",
    holder: "alice",
    token: 7n,
    start: 1n,
    expiry: 2n,
    pins: '["m"]',
    version: 3n,
    ...fields,
  });

  test("the clock and maxStep of the first row; a lease from every row whose join matched", () => {
    const read = leaseRows([row(), row({ name: "b", time: 99n })], "op", decoding);
    assert.equal(read.time, 5n);
    assert.equal(read.maxStep, 9n);
    assert.deepEqual(
      read.leases.map((l) => [l.name, l.pins]),
      [
        ["job", ["m"]],
        ["b", ["m"]],
      ],
    );
    const none = leaseRows([row({ name: null })], "op", decoding);
    assert.deepEqual(none, { time: 5n, maxStep: 9n, leases: [] });
    assert.deepEqual(leaseRows([], "op", decoding), {
      time: undefined,
      maxStep: undefined,
      leases: [],
    });
  });

  test("a corrupt maxStep is named as such, not as the clock", () => {
    assert.throws(
      () => leaseRows([row({ max_step: -1n })], "op", decoding),
      corrupt(/maxStep is negative/, "maxStep record"),
    );
    assert.throws(
      () => leaseRows([row({ time: -1n })], "op", decoding),
      corrupt(/time is negative/),
    );
  });
});
