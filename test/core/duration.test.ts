import assert from "node:assert/strict";
import { describe, test } from "node:test";
import fc from "fast-check";
import {
  type DurationInput,
  formatDuration,
  INT64_MAX,
  InvalidDurationError,
  toNanoseconds,
} from "../../src/index.js";

const S = 1_000_000_000n;

describe("toNanoseconds", () => {
  const valid: Array<[DurationInput, bigint]> = [
    // numbers are milliseconds, fractions down to the nanosecond
    [0, 0n],
    [1, 1_000_000n],
    [1.5, 1_500_000n],
    [0.000001, 1n],
    [0.1 + 0.2, 300_000n], // float noise is rounded away
    [250, 250_000_000n],
    // bigints are nanoseconds
    [0n, 0n],
    [1n, 1n],
    [INT64_MAX, INT64_MAX],
    [0.3, 300_000n],
    [1e-6 * 3, 3n], // 3.0000000000000004e-6 ms: noise, not a fraction
    [1e12, 1_000_000_000_000_000_000n],
    // strings with units
    ["0", 0n],
    ["0s", 0n],
    ["1.5s", 1_500_000_000n],
    ["250ms", 250_000_000n],
    ["1s1ns", S + 1n],
    ["2m30s", 150n * S],
    ["2m 30s", 150n * S],
    ["1h", 3600n * S],
    ["1d", 86_400n * S],
    ["17ns", 17n],
    ["3us", 3000n],
    ["3µs", 3000n],
    ["3μs", 3000n], // Greek mu as well as the micro sign
    [".5s", S / 2n],
    ["1.000000001s", S + 1n],
    [" 1s ", S],
    ["9223372036854775807ns", INT64_MAX], // one group is computed exactly
    ["9223372036.854775807s", INT64_MAX],
    ["106751d", 106_751n * 86_400n * S],
    ["12d23h59m59.999999999s", 12n * 86_400n * S + 86_399n * S + 999_999_999n],
  ];
  for (const [input, ns] of valid) {
    test(`${typeof input} ${JSON.stringify(String(input))} is ${ns}ns`, () => {
      assert.equal(toNanoseconds(input), ns);
    });
  }

  const invalid: Array<[unknown, RegExp]> = [
    [-1, /negative/],
    [-0.5, /negative/],
    [Number.NaN, /not a finite number/],
    [Number.POSITIVE_INFINITY, /not a finite number/],
    [Number.NEGATIVE_INFINITY, /not a finite number/],
    [2 ** 63 / 1e6, /beyond the int64/],
    [1e-7, /finer than a nanosecond/],
    [1.0000005, /finer than a nanosecond/],
    [0.0000015, /finer than a nanosecond/],
    [-1n, /negative/],
    [INT64_MAX + 1n, /beyond the int64/],
    ["5", /expected a number with a unit/],
    ["1.s", /expected a number with a unit/],
    ["1.5", /expected a number with a unit/],
    ["1s junk", /expected a number with a unit/],
    ["", /expected a number with a unit/],
    ["   ", /expected a number with a unit/],
    [".s", /expected a number with a unit/],
    ["s", /expected a number with a unit/],
    ["-1s", /negative/],
    ["1x", /unknown unit "x"/],
    ["1S", /unknown unit "S"/],
    ["1y", /unknown unit "y"/],
    ["1sjunk", /unknown unit "sjunk"/],
    ["1e-7", /exponents are not read; write the unit/],
    ["1e3ms", /exponents are not read/],
    ["2.5E+1s", /exponents are not read/],
    [".5e1s", /exponents are not read/],
    ["1constructor", /unknown unit "constructor"/],
    ["0.5ns", /finer than a nanosecond/],
    ["9223372036.8547758075s", /finer than a nanosecond/],
    ["1.s", /expected a number with a unit/],
    ["1.0000000005s", /finer than a nanosecond/],
    ["2562047h47m16.854775808s", /beyond the int64/],
    // parse-duration sums in floating point, which rounds int64's maximum up past it
    ["2562047h47m16.854775807s", /beyond the int64/],
    ["9223372036854775808ns", /beyond the int64/],
    ["106752d", /beyond the int64/],
    [`${"9".repeat(400)}s`, /beyond the int64/],
    [null, /expected milliseconds/],
    [undefined, /expected milliseconds/],
    [{}, /expected milliseconds/],
  ];
  for (const [input, why] of invalid) {
    const shown = typeof input === "string" ? JSON.stringify(input.slice(0, 30)) : String(input);
    test(`${typeof input} ${shown} is an InvalidDurationError naming the field`, () => {
      assert.throws(
        () => toNanoseconds(input as DurationInput, "lease duration"),
        (err: unknown) => {
          assert.ok(err instanceof InvalidDurationError, String(err));
          assert.equal(err.field, "lease duration");
          assert.match(err.message, /^invalid lease duration /);
          assert.match(err.message, why);
          return true;
        },
      );
    });
  }

  test("the field defaults to 'duration'", () => {
    assert.throws(() => toNanoseconds("5"), /^InvalidDurationError: invalid duration "5"/);
  });

  // Strings go through parse-duration, which sums in floating point: exact to the
  // nanosecond up to about 13 days (2^50 ns), within microseconds up to int64's limit.
  const units: Array<[string, bigint]> = [
    ["d", 86_400n * S],
    ["h", 3600n * S],
    ["m", 60n * S],
    ["s", S],
    ["ms", 1_000_000n],
    ["us", 1000n],
    ["ns", 1n],
  ];
  const inUnits = (ns: bigint) => {
    let rest = ns;
    let text = "";
    for (const [unit, size] of units) {
      if (rest >= size) {
        text += `${rest / size}${unit}`;
        rest %= size;
      }
    }
    return text || "0";
  };
  const asSeconds = (ns: bigint) => `${ns / S}.${(ns % S).toString().padStart(9, "0")}s`;

  test("any nanosecond count up to 2^50 written in units reads back exactly", () => {
    fc.assert(
      fc.property(fc.bigInt({ min: 0n, max: 1n << 50n }), (ns) => {
        assert.equal(toNanoseconds(inUnits(ns)), ns);
        assert.equal(toNanoseconds(asSeconds(ns)), ns);
      }),
    );
  });

  test("longer durations written in units read back within 4 µs; bigints stay exact", () => {
    fc.assert(
      fc.property(fc.bigInt({ min: 1n << 50n, max: INT64_MAX - 10_000n }), (ns) => {
        for (const text of [inUnits(ns), asSeconds(ns)]) {
          const got = toNanoseconds(text);
          const off = got > ns ? got - ns : ns - got;
          assert.ok(off <= 4_000n, `${text}: off by ${off}ns`);
        }
        assert.equal(toNanoseconds(ns), ns);
      }),
    );
  });
});

describe("formatDuration", () => {
  const cases: Array<[bigint, string]> = [
    [0n, "0ns"],
    [17n, "17ns"],
    [1500n, "1.5µs"],
    [250_000_000n, "250ms"],
    [1_500_000_000n, "1.5s"],
    [150n * S, "2.5m"],
    [3600n * S, "1h"],
    [-2n * S, "-2s"],
  ];
  for (const [ns, text] of cases) {
    test(`${ns}ns is "${text}"`, () => assert.equal(formatDuration(ns), text));
  }
});
