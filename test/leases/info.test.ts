// The small pure rules of leases: when a record is free, what a lease name may be, how long
// a lease must last, and the holder's deadline to the nanosecond.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { ConfigError } from "../../src/errors.js";
import type { LeaseRecord } from "../../src/lease-store.js";
import { retryPause, usableTime } from "../../src/leases/hold.js";
import {
  checkDuration,
  isFree,
  leaseInfo,
  MAX_DRIFT_PPM,
  MIN_DURATION_STEPS,
} from "../../src/leases/info.js";
import { deadlineOf } from "../../src/leases/lease.js";
import { checkLeaseText } from "../../src/leases/validate.js";

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

describe("isFree and leaseInfo", () => {
  test("free: no record, released, or expired (at its expiry, not before) and unpinned", () => {
    assert.equal(isFree(undefined, 0n), true);
    assert.equal(isFree(record({ holder: "" }), 0n), true);
    assert.equal(isFree(record(), 20n * S - 1n), false);
    assert.equal(isFree(record(), 20n * S), true);
    assert.equal(isFree(record({ pins: ["m"] }), 99n * S), false, "a pin keeps it held");
    assert.equal(
      isFree(record({ holder: "", pins: ["m"] }), 0n),
      true,
      "released is free, pinned or not",
    );
  });

  test("leaseInfo: the record's fields, the time judged against, and a frozen object", () => {
    const info = leaseInfo(record({ pins: ["m"] }), 25n * S);
    assert.deepEqual(
      { ...info },
      {
        name: "job",
        holder: "alice",
        token: 7n,
        start: 10n * S,
        expiry: 20n * S,
        pins: ["m"],
        time: 25n * S,
        free: false,
      },
    );
    assert.ok(Object.isFrozen(info));
    assert.equal(leaseInfo(record(), 25n * S).free, true);
  });
});

describe("checkDuration", () => {
  test(`at least ${MIN_DURATION_STEPS} × maxStep; the message names the caller's field`, () => {
    checkDuration(3n * S, S); // exactly enough
    assert.throws(
      () => checkDuration(3n * S - 1n, S),
      (e: unknown) => {
        assert.ok(e instanceof ConfigError && e.field === "duration");
        assert.match(
          e.message,
          /^a lease of 2\.999s is too short: .*maxStep \(1s\) at once, so a lease must last at least 3 × maxStep \(3s\)$/,
        );
        return true;
      },
    );
    assert.throws(
      () => checkDuration(S, S, "--ttl"),
      (e: unknown) =>
        e instanceof ConfigError && e.field === "--ttl" && /^--ttl 1s is too short/.test(e.message),
    );
  });
});

describe("checkLeaseText", () => {
  test("1 to 256 printable characters (a prefix may be empty); the value comes back", () => {
    assert.equal(checkLeaseText("name", "a"), "a");
    assert.equal(checkLeaseText("name", "x".repeat(256)), "x".repeat(256));
    assert.equal(checkLeaseText("prefix", ""), "");
    assert.equal(checkLeaseText("holder", "dépôt ☃ 1:%_*"), "dépôt ☃ 1:%_*");
  });

  test("refused with a ConfigError naming the field: empty, too long, control or invisible characters, not a string", () => {
    const refused = (field: "name" | "holder" | "entity" | "prefix", value: unknown, re: RegExp) =>
      assert.throws(
        () => checkLeaseText(field, value),
        (e: unknown) => e instanceof ConfigError && e.field === field && re.test(e.message),
      );
    refused("name", "", /invalid lease name "": use 1 to 256 printable characters/);
    refused("holder", "x".repeat(257), /invalid lease holder .*use 1 to 256/);
    refused("prefix", "x".repeat(257), /use 0 to 256/);
    for (const bad of ["a\nb", "a\tb", "a\u200bb", "a\u2028b", "a\u2029b", "\ud800"])
      refused("entity", bad, /invalid lease entity/);
    refused("name", 42, /invalid lease name 42/);
    refused("name", undefined, /invalid lease name undefined/);
  });
});

describe("the holder's deadline", () => {
  test("t0 + (expiry − time − maxStep) × (1 − ρ)/(1 + ρ), to the nanosecond", () => {
    assert.equal(MAX_DRIFT_PPM, 500n);
    const grant = {
      name: "job",
      holder: "a",
      token: 1n,
      start: 0n,
      expiry: 100n * S,
      maxStep: 10n * S,
      time: 80n * S,
      t0: 5n * S,
    };
    // (100 − 80 − 10) s = 10 s; × 999500 / 1000500.
    assert.equal(deadlineOf(grant), 5n * S + (10n * S * 999_500n) / 1_000_500n);
    assert.equal(deadlineOf(grant), 5n * S + 9_990_004_997n);
    assert.equal(
      usableTime(20n * S, 10n * S),
      9_990_004_997n,
      "the same time, from a claim's start",
    );
  });
});

describe("retryPause", () => {
  test("the first delay, doubling, capped; a count past 30 doublings stays capped", () => {
    assert.deepEqual(
      [0, 1, 2, 3, 4].map((f) => retryPause(100n, 1_000n, f)),
      [100n, 200n, 400n, 800n, 1_000n],
    );
    assert.equal(retryPause(1n, 1n << 40n, 1_000), 1n << 30n);
  });
});
