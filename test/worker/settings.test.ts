// Worker settings: WORKER_DEFAULTS holds the values workerSettings() fills in, the README's
// table says what it holds, and a worker uses validated settings without parsing them again.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { describe, test } from "node:test";
import {
  ConfigError,
  MemoryStore,
  startUpdater,
  WORKER_DEFAULTS,
  workerSettings,
} from "../../src/index.js";
import { describeDefault, type WorkerDefaults } from "../../src/worker-settings.js";
import { FakeClock } from "../helpers/fake-clock.js";

const MS = 1_000_000n;
const FIELDS = Object.keys(WORKER_DEFAULTS) as (keyof WorkerDefaults)[];

test("WORKER_DEFAULTS holds the real values, frozen all the way down", () => {
  assert.deepEqual(WORKER_DEFAULTS, {
    interval: 1000n * MS,
    takeoverAfter: { numerator: 2n, denominator: 1n },
    maxStep: { numerator: 3n, denominator: 2n },
    retryDelay: { numerator: 1n, denominator: 1n },
    maxRetryDelay: { numerator: 10n, denominator: 1n },
    pollInterval: { numerator: 1n, denominator: 1n },
  });
  assert.ok(Object.isFrozen(WORKER_DEFAULTS));
  for (const field of FIELDS) {
    const value = WORKER_DEFAULTS[field];
    if (typeof value === "object") assert.ok(Object.isFrozen(value), field);
  }
});

test("workerSettings() scales the defaults to the interval in use", () => {
  const plain = workerSettings();
  assert.equal(plain.interval, WORKER_DEFAULTS.interval);
  const s = workerSettings({ interval: "200ms" });
  assert.deepEqual(
    [s.takeoverAfter, s.maxStep, s.retryDelay, s.maxRetryDelay, s.pollInterval],
    [400n * MS, 300n * MS, 200n * MS, 2000n * MS, 200n * MS],
  );
});

test("defaults read as help texts and the README put them", () => {
  assert.deepEqual(
    FIELDS.map((field) => describeDefault(field)),
    ["1s", "2 × interval", "1.5 × interval", "interval", "10 × interval", "interval"],
  );
});

test("the README's worker options table shows WORKER_DEFAULTS", () => {
  const readme = readFileSync(new URL("../../README.md", import.meta.url), "utf8");
  const table = /^Worker options[^\n]*\n\n((?:\|[^\n]*\n)+)/m.exec(readme)?.[1];
  assert.ok(table, "the README has a worker options table");
  const rows = new Map(
    [...table.matchAll(/^\| `(\w+)` \| ([^|]+) \|/gm)].map((m) => [
      m[1],
      (m[2] as string).trim().replaceAll("`", ""),
    ]),
  );
  for (const field of FIELDS) assert.equal(rows.get(field), describeDefault(field), field);
});

describe("a worker given settings", () => {
  test("uses settings from workerSettings() as they are", async () => {
    const settings = workerSettings({ interval: "200ms" });
    const worker = startUpdater(new MemoryStore(), { settings, clock: new FakeClock() });
    assert.equal(worker.settings, settings);
    await worker.stop();
  });

  test("validates a hand-built object, and recomputes the bounds it claims", async () => {
    const made = workerSettings();
    assert.throws(
      () =>
        startUpdater(new MemoryStore(), {
          settings: { ...made, maxStep: 999n * MS },
          clock: new FakeClock(),
        }),
      (e) => e instanceof ConfigError && e.field === "maxStep",
    );
    const handBuilt = { ...made, failoverBound: 1n };
    const worker = startUpdater(new MemoryStore(), { settings: handBuilt, clock: new FakeClock() });
    assert.notEqual(worker.settings, handBuilt);
    assert.equal(worker.settings.failoverBound, made.failoverBound);
    assert.ok(Object.isFrozen(worker.settings));
    await worker.stop();
  });

  test("refuses settings together with an individual option", () => {
    assert.throws(
      () =>
        startUpdater(new MemoryStore(), {
          settings: workerSettings(),
          interval: "2s",
          clock: new FakeClock(),
        }),
      (e) => e instanceof ConfigError && e.field === "settings" && /interval/.test(e.message),
    );
  });
});
