/**
 * The etcd store's lease values: what it writes, and which values it refuses as corrupt
 * (no server needed: the codec alone).
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import { CorruptRecordError, StoreError } from "../../src/index.js";
import {
  decodeLease,
  decodeMaxStep,
  encodeLease,
  TOKEN_IS_REVISION,
} from "../../src/stores/etcd/values.js";

const kv = (value: string, modRevision = "42") => ({
  key: Buffer.from("/globalclock/g/leases/job"),
  value: Buffer.from(value),
  mod_revision: modRevision,
});
const lease = {
  name: "job",
  holder: "h",
  token: 3n,
  start: 10n,
  expiry: 2n ** 63n - 1n,
  pins: ["p"],
};
const write = { ...lease, newToken: false };

test("a lease round-trips exactly, its version the key's mod_revision", () => {
  const text = encodeLease(write, "writeLease");
  assert.equal(
    text,
    '{"holder":"h","token":"3","start":"10","expiry":"9223372036854775807","pins":["p"]}',
  );
  assert.deepEqual(decodeLease("job", kv(text), "readLease"), { ...lease, version: 42n });
});

test("a new token is written as the marker, and read back as the key's mod_revision", () => {
  const text = encodeLease({ ...write, newToken: true }, "writeLease");
  assert.equal(JSON.parse(text).token, TOKEN_IS_REVISION);
  assert.deepEqual(decodeLease("job", kv(text, "77"), "readLease"), {
    ...lease,
    token: 77n,
    version: 77n,
  });
});

test("values that do not decode are CorruptRecordErrors naming the lease", () => {
  const good = JSON.parse(encodeLease(write, "writeLease"));
  const { token: _token, ...noToken } = good;
  const bad: Array<[string, RegExp]> = [
    ["not json", /is not JSON/],
    ["[1]", /not a JSON object/],
    [JSON.stringify({ ...good, token: 3 }), /token is a number/],
    [JSON.stringify({ ...good, token: "03" }), /token is a string \("03"\)/],
    [JSON.stringify(noToken), /token is a undefined/],
    [JSON.stringify({ ...good, token: null }), /token is a object/],
    [JSON.stringify({ ...good, token: "" }), /token is a string \(""\)/],
    [JSON.stringify({ ...good, token: "Mod_Revision" }), /token is a string/],
    [JSON.stringify({ ...good, token: " mod_revision" }), /token is a string/],
    [JSON.stringify({ ...good, start: "mod_revision" }), /start is a string/],
    [JSON.stringify({ ...good, start: "-1" }), /start is a string/],
    [
      JSON.stringify({ ...good, expiry: "9223372036854775808" }),
      /expiry 9223372036854775808 is not/,
    ],
    [JSON.stringify({ ...good, holder: 7 }), /holder is a number/],
    [JSON.stringify({ ...good, pins: "p" }), /pins are/],
    [JSON.stringify({ ...good, start: "11", expiry: "10" }), /start 11 is after expiry 10/],
  ];
  for (const [value, message] of bad) {
    assert.throws(
      () => decodeLease("job", kv(value), "readLease"),
      (err: unknown) =>
        err instanceof CorruptRecordError &&
        /lease record "job"/.test(err.message) &&
        message.test(err.message),
      value,
    );
  }
});

test("maxStep is a canonical decimal, else a corrupt maxStep record", () => {
  assert.equal(decodeMaxStep(Buffer.from("1500000000"), "readLease"), 1_500_000_000n);
  for (const value of ["", "01", "-1", "1.5", "9223372036854775808", " 1"]) {
    assert.throws(
      () => decodeMaxStep(Buffer.from(value), "readLease"),
      (err: unknown) => err instanceof CorruptRecordError && /maxStep record/.test(err.message),
      JSON.stringify(value),
    );
  }
});

test("a time beyond int64 is refused before it is written", () => {
  assert.throws(
    () => encodeLease({ ...write, expiry: 2n ** 63n }, "writeLease"),
    (err: unknown) => err instanceof StoreError && !err.retryable,
  );
});
