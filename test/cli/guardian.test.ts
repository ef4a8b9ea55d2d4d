// lock's guardian (src/cli/guardian.ts) on a fake clock: what it sends the command's group,
// and when, whatever lock says or fails to say.
import assert from "node:assert/strict";
import { test } from "node:test";
import { Guardian } from "../../src/cli/guardian.js";

const MS = 1_000_000n;

function fake() {
  let now = 0n;
  const timers: Array<{ at: bigint; fn: () => void; live: boolean }> = [];
  const sent: Array<{ at: bigint; signal: string }> = [];
  const answers: string[] = [];
  const state = { running: true, exited: false };
  const guardian = new Guardian({
    now: () => now,
    signal: (_group, signal) => {
      sent.push({ at: now, signal });
      if (signal === "SIGKILL") state.running = false;
    },
    running: () => state.running,
    setTimer: (fn, ns) => {
      const timer = { at: now + ns, fn, live: true };
      timers.push(timer);
      return () => {
        timer.live = false;
      };
    },
    answer: (line) => answers.push(line),
    exit: () => {
      state.exited = true;
    },
  });
  /** Moves time to `to`, firing the timers due on the way. */
  const runTo = (to: bigint) => {
    for (;;) {
      const due = timers
        .filter((t) => t.live && t.at <= to)
        .sort((a, b) => (a.at < b.at ? -1 : 1))[0];
      if (!due) break;
      due.live = false;
      now = due.at;
      due.fn();
    }
    now = to;
  };
  return { guardian, sent, answers, state, runTo, at: () => now };
}

test("SIGTERM at the SIGTERM point, SIGKILL at the deadline, unless a renewal moved them", () => {
  const g = fake();
  g.guardian.line("group 4242 1000000000");
  assert.deepEqual(g.answers, ["armed"]);
  g.guardian.line(`deadline ${4000n * MS} ${5000n * MS}`);
  g.runTo(3000n * MS);
  g.guardian.line(`deadline ${7000n * MS} ${8000n * MS}`); // renewed
  g.runTo(6999n * MS);
  assert.deepEqual(g.sent, [], "nothing before the moved SIGTERM point");
  g.runTo(7000n * MS);
  assert.deepEqual(g.sent, [{ at: 7000n * MS, signal: "SIGTERM" }]);
  g.runTo(8000n * MS);
  assert.deepEqual(g.sent.at(-1), { at: 8000n * MS, signal: "SIGKILL" });
  g.runTo(9000n * MS);
  assert.equal(g.sent.length, 2, "nothing once the group is gone");
});

test("stop: SIGTERM now, SIGKILL by the time given; answers once the group is gone", () => {
  const g = fake();
  g.guardian.line("group 4242 1000000000");
  g.guardian.line(`deadline ${4000n * MS} ${5000n * MS}`);
  g.runTo(1000n * MS);
  g.guardian.line(`stop ${1300n * MS}`);
  assert.deepEqual(g.sent, [{ at: 1000n * MS, signal: "SIGTERM" }]);
  g.runTo(1299n * MS);
  assert.deepEqual(g.answers, ["armed"], "a member that ignores SIGTERM is still there");
  g.runTo(1320n * MS);
  assert.deepEqual(g.sent.at(-1), { at: 1300n * MS, signal: "SIGKILL" });
  assert.deepEqual(g.answers, ["armed", "gone"]);
  g.guardian.line("done");
  assert.ok(g.state.exited);
});

test("lock's death (its input ends): the group is stopped at once, SIGKILL after grace; then the guardian exits", () => {
  const g = fake();
  g.guardian.line("group 4242 1000000000");
  g.guardian.line(`deadline ${4000n * MS} ${5000n * MS}`);
  g.runTo(500n * MS);
  g.guardian.end();
  assert.deepEqual(g.sent, [{ at: 500n * MS, signal: "SIGTERM" }]);
  g.runTo(1600n * MS);
  assert.deepEqual(g.sent.at(-1), { at: 1500n * MS, signal: "SIGKILL" });
  assert.ok(g.state.exited);
});

test("a group that ends by itself is never signalled; a guardian whose lock says done exits", () => {
  const g = fake();
  g.guardian.line("group 4242 1000000000");
  g.guardian.line(`deadline ${4000n * MS} ${5000n * MS}`);
  g.state.running = false; // the command exited
  g.guardian.line(`stop ${1000n * MS}`);
  assert.deepEqual(g.answers, ["armed", "gone"]);
  assert.deepEqual(g.sent, []);
  g.guardian.line("done");
  assert.ok(g.state.exited);
});
