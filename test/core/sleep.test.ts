// Waits longer than Node's timers hold (about 24.8 days): one timer would fire after 1 ms,
// and a lease's deadline timer, a wait or a renewal loop would spin. They are slept in parts.
import assert from "node:assert/strict";
import { mock, test } from "node:test";
import { MAX_TIMER_MS } from "../../src/duration.js";
import { sleep } from "../../src/sleep.js";

test("a wait beyond Node's timer range lasts as long as asked, in parts", async () => {
  mock.timers.enable({ apis: ["setTimeout"] });
  try {
    let fired = false;
    const done = sleep(2 * MAX_TIMER_MS + 5, undefined).then((v) => {
      fired = v;
    });
    mock.timers.tick(1);
    await Promise.resolve();
    assert.equal(fired, false, "not after 1 ms (an overflowed timer would fire then)");
    mock.timers.tick(MAX_TIMER_MS);
    await Promise.resolve();
    assert.equal(fired, false, "not after one timer's worth");
    // The mock runs a part's callback at the end of its tick: the last part needs one more.
    mock.timers.tick(MAX_TIMER_MS + 10);
    mock.timers.tick(10);
    await done;
    assert.equal(fired, true);
  } finally {
    mock.timers.reset();
  }
});

test("an abort ends a long wait at once, in any part", async () => {
  mock.timers.enable({ apis: ["setTimeout"] });
  try {
    const stop = new AbortController();
    const done = sleep(3 * MAX_TIMER_MS, stop.signal);
    mock.timers.tick(MAX_TIMER_MS + 10);
    stop.abort();
    assert.equal(await done, false);
  } finally {
    mock.timers.reset();
  }
});
