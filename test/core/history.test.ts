/** The history checker must pass good histories and catch every bad pair, or it proves nothing. */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import fc from "fast-check";
import { checkHistory, recordReads, type Sample } from "../helpers/history.js";

const MS = 1_000_000n;
const read = (before: bigint, after: bigint, global: bigint): Sample => ({ before, after, global });

/** A clock that advanced `step` every `step` of wall time from 0, read every ms for `n` ms. */
function steadyHistory(n: number, step: bigint): Sample[] {
  const out: Sample[] = [];
  for (let i = 0n; i < BigInt(n); i++) {
    const before = i * MS;
    const after = before + MS / 2n;
    out.push(read(before, after, (before / step) * step));
  }
  return out;
}

describe("checkHistory", () => {
  test("a clock that keeps pace with wall time passes", () => {
    assert.deepEqual(checkHistory(steadyHistory(2000, 10n * MS), 10n * MS), []);
  });

  test("a clock that stalls and then resumes without catching up passes", () => {
    const h = [
      read(0n, MS, 0n),
      read(1000n * MS, 1001n * MS, 0n),
      read(1002n * MS, 1003n * MS, 5n * MS),
    ];
    assert.deepEqual(checkHistory(h, 5n * MS), []);
  });

  test("a decrease between reads that do not overlap is caught", () => {
    const h = steadyHistory(100, MS);
    h.push(read(200n * MS, 201n * MS, 50n * MS));
    const found = checkHistory(h, MS);
    assert.ok(found.length > 0);
    assert.ok(
      found.some((v) => v.startsWith("decrease: ") && v.includes("saw 50000000 after")),
      found.join("\n"),
    );
  });

  test("overlapping reads may see two values in either order", () => {
    const h = [read(0n, 10n * MS, 5n * MS), read(1n * MS, 9n * MS, 4n * MS)];
    assert.deepEqual(checkHistory(h, MS), []);
  });

  test("a catch-up jump after a stall is caught", () => {
    // Stalled for 10 s, then the whole 10 s added at once (Juju's worker after its backoff).
    const h = [read(0n, MS, 0n), read(10_000n * MS, 10_001n * MS, 0n)];
    h.push(read(10_002n * MS, 10_003n * MS, 10_002n * MS));
    const found = checkHistory(h, 100n * MS);
    assert.equal(found.length, 1, found.join("\n"));
    assert.match(found[0] as string, /^jump: global advanced 10002000000ns/);
  });

  test("a jump of exactly maxStep beyond wall time passes, one nanosecond more does not", () => {
    const wall = 5n * MS; // after2 − before1
    const ok = [read(0n, MS, 0n), read(4n * MS, wall, wall + 7n)];
    assert.deepEqual(checkHistory(ok, 7n), []);
    const bad = [read(0n, MS, 0n), read(4n * MS, wall, wall + 8n)];
    assert.equal(checkHistory(bad, 7n).length, 1);
  });

  test("reads from two sources are compared with each other", () => {
    const a = steadyHistory(50, MS).map((s) => ({ ...s, source: "a" }));
    const b = [{ ...read(20n * MS, 21n * MS, 10n * MS), source: "b" }];
    const found = checkHistory([...a, ...b], MS);
    assert.ok(
      found.some((v) => v.startsWith("decrease:") && v.includes("by b")),
      found.join("\n"),
    );
  });

  test("a read that ends before it begins is reported", () => {
    assert.match(checkHistory([read(5n, 4n, 0n)], 0n).join("\n"), /ends before it begins/);
  });

  test("a long list of violations is cut short and counted", () => {
    const h = Array.from({ length: 100 }, (_, i) =>
      read(BigInt(i) * MS, BigInt(i) * MS + 1n, BigInt(100 - i)),
    );
    const found = checkHistory(h, 1000n * MS); // large enough that only decreases count
    assert.equal(found.length, 21);
    assert.match(found.at(-1) as string, /^… and 79 more violations$/);
  });

  test("agrees with the definition, checked pair by pair, on random histories", () => {
    const sample = fc
      .tuple(
        fc.bigInt({ min: 0n, max: 100n }),
        fc.bigInt({ min: 0n, max: 20n }),
        fc.bigInt({ min: 0n, max: 120n }),
      )
      .map(([before, length, global]) => read(before, before + length, global));
    fc.assert(
      fc.property(
        fc.array(sample, { maxLength: 30 }),
        fc.bigInt({ min: 0n, max: 30n }),
        (h, maxStep) => {
          assert.equal(checkHistory(h, maxStep).length > 0, bruteForce(h, maxStep));
        },
      ),
      { numRuns: 2000 },
    );
  });
});

/** docs/design.md, "The invariants", 1 and 3, literally, over every ordered pair. */
function bruteForce(h: Sample[], maxStep: bigint): boolean {
  for (const a of h) {
    for (const b of h) {
      if (a.after < b.before && b.global < a.global) return true;
      if (b.global > a.global && b.global - a.global > b.after - a.before + maxStep) return true;
    }
  }
  return false;
}

describe("recordReads", () => {
  test("times each read on the monotonic clock and stops on abort", async () => {
    const ac = new AbortController();
    let n = 0n;
    const samples = await recordReads(
      async () => {
        if (++n === 5n) ac.abort();
        return n;
      },
      { signal: ac.signal, intervalMs: 0, source: "test" },
    );
    assert.deepEqual(
      samples.map((s) => s.global),
      [1n, 2n, 3n, 4n, 5n],
    );
    for (const [i, s] of samples.entries()) {
      assert.ok(s.before <= s.after);
      if (i > 0) assert.ok((samples[i - 1] as Sample).after <= s.before);
      assert.equal(s.source, "test");
    }
  });

  test("a failing read ends the recording with its error", async () => {
    const ac = new AbortController();
    await assert.rejects(
      recordReads(
        async () => {
          throw new Error("store down");
        },
        { signal: ac.signal },
      ),
      /store down/,
    );
  });
});
