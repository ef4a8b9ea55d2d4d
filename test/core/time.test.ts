import assert from "node:assert/strict";
import { test } from "node:test";
import fc from "fast-check";
import { formatGlobalTime, globalEpoch, INT64_MAX, toDate } from "../../src/index.js";

test("the global epoch is the Unix epoch, 0ns", () => {
  assert.equal(globalEpoch(), 0n);
  assert.equal(toDate(globalEpoch()).getTime(), 0);
});

const cases: Array<[bigint, string]> = [
  [0n, "1970-01-01T00:00:00.000000000Z"],
  [1n, "1970-01-01T00:00:00.000000001Z"],
  [2_000_000_002n, "1970-01-01T00:00:02.000000002Z"],
  [999_999_999n, "1970-01-01T00:00:00.999999999Z"],
  [86_399_999_999_999n, "1970-01-01T23:59:59.999999999Z"],
  [1_700_000_000_123_456_789n, "2023-11-14T22:13:20.123456789Z"],
  [INT64_MAX, "2262-04-11T23:47:16.854775807Z"],
];
for (const [time, text] of cases) {
  test(`formatGlobalTime(${time}) is ${text}`, () => {
    assert.equal(formatGlobalTime(time), text);
  });
}

test("formatGlobalTime keeps all nine fractional digits and agrees with Date", () => {
  fc.assert(
    fc.property(fc.bigInt({ min: 0n, max: INT64_MAX }), (time) => {
      const text = formatGlobalTime(time);
      assert.match(text, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z$/);
      assert.equal(BigInt(text.slice(20, 29)), time % 1_000_000_000n);
      assert.equal(Date.parse(`${text.slice(0, 23)}Z`), Number(time / 1_000_000n));
    }),
  );
});

test("toDate truncates to the millisecond", () => {
  assert.equal(toDate(1_999_999n).getTime(), 1);
});

test("a time that is not a global time is refused, not printed as garbage", () => {
  assert.throws(() => formatGlobalTime(-1n), RangeError);
  assert.throws(() => formatGlobalTime(INT64_MAX + 1n), RangeError);
});
