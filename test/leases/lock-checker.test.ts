// The lock fault test's checker (checkTenures in lock-faults.ts) on hand-made records of
// writes: it passes a safe run and catches each fault it exists for (negative controls).
import assert from "node:assert/strict";
import { test } from "node:test";
import type { Write } from "../helpers/guarded.js";
import { checkTenures } from "./lock-faults.js";

const w = (at: number, holder: string, token: bigint, accepted = true): Write => ({
  at: BigInt(at),
  holder,
  token,
  pid: 1,
  accepted,
});

test("a safe run: each tenure ends before the next begins; refused writes only from frozen machines", () => {
  const writes = [w(1, "a", 1n), w(2, "a", 1n), w(3, "b", 2n), w(4, "a", 1n, false), w(5, "b", 2n)];
  assert.deepEqual(checkTenures(writes, new Set(["a"])), []);
});

test("caught: a live holder that wrote after its successor began (an injected overlap)", () => {
  const writes = [w(1, "a", 1n), w(3, "b", 2n), w(4, "a", 1n), w(5, "b", 2n)];
  assert.deepEqual(checkTenures(writes, new Set()), [
    "a (token 1) wrote 1 ns after b (token 2) began",
  ]);
});

test("caught: a refused write of a holder whose machine was never frozen", () => {
  const writes = [w(1, "a", 1n), w(3, "b", 2n), w(4, "a", 1n, false)];
  const found = checkTenures(writes, new Set());
  assert.ok(found.includes("a write of a (token 1) was refused, and its machine was never frozen"));
});

test("caught: a background job that outlived its holder (same holder and token, another pid)", () => {
  const job = { ...w(4, "a", 1n), pid: 2 };
  const writes = [w(1, "a", 1n), w(3, "b", 2n), job];
  assert.deepEqual(checkTenures(writes, new Set()), [
    "a (token 1) wrote 1 ns after b (token 2) began",
  ]);
});
