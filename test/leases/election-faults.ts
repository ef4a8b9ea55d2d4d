/**
 * Three campaigner processes (test/fixtures/campaigner.ts) elect a leader on one lease
 * while the store fails under them (`faults`), and the leader is paused once. Checked
 * afterwards: among processes that were never paused, at most one led at any instant
 * (each led from its election to its last deadline, its release, or its death), every
 * leader had a greater token than the one before, and only a paused process had a write
 * refused by the guarded resource.
 */
import assert from "node:assert/strict";
import { type ChildProcess, spawn } from "node:child_process";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { openLeases } from "../../src/leases/leases.js";
import { GuardedResource, overlaps, type Span } from "../helpers/guarded.js";

const CAMPAIGNER = fileURLToPath(new URL("../fixtures/campaigner.ts", import.meta.url));
const now = () => process.hrtime.bigint();
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface Candidate {
  child: ChildProcess;
  holder: string;
  events: Array<Record<string, string>>;
  diedAt?: bigint;
  paused?: Span;
}

interface Term extends Span {
  holder: string;
  token: bigint;
}

function signal(pid: number | undefined, sig: NodeJS.Signals): void {
  if (pid === undefined) return;
  try {
    process.kill(pid, sig);
  } catch {
    // gone already
  }
}

/** The terms a candidate led, each ending at its last deadline, release or death. */
function termsOf(c: Candidate): Term[] {
  const terms: Term[] = [];
  let current: Term | undefined;
  const close = (at: bigint) => {
    if (current && at < current.to) current.to = at;
    current = undefined;
  };
  for (const e of c.events) {
    const at = BigInt(e.at ?? "0");
    if (e.event === "leader") {
      current = {
        holder: c.holder,
        token: BigInt(e.token ?? "0"),
        from: at,
        to: BigInt(e.deadline ?? "0"),
      };
      terms.push(current);
    } else if (e.event === "deadline" && current) current.to = BigInt(e.deadline ?? "0");
    else if (e.event === "demoted" || e.event === "stopping") close(at);
  }
  if (c.diedAt !== undefined) close(c.diedAt);
  return terms;
}

export async function electionUnderFaults(
  url: string,
  faults: () => Promise<void>,
  log: (line: string) => void,
): Promise<void> {
  // A short cluster maxStep, so that 3 s leases are allowed; the campaigners' own
  // updater workers step every 200 ms.
  const setup = await openLeases(url, { maxStep: "300ms" }); // closes its store
  assert.ok(await setup.setMaxStep(undefined, 300_000_000n), "a new store: maxStep stored");
  await setup.close();
  const resource = await GuardedResource.start();
  const candidates: Candidate[] = [];
  const spawnCandidate = (holder: string) => {
    const child = spawn(
      process.execPath,
      [
        "--import",
        "tsx",
        CAMPAIGNER,
        url,
        "leader",
        holder,
        "3s",
        "--clock",
        "--resource",
        String(resource.port),
      ],
      { stdio: ["ignore", "pipe", "pipe"] },
    );
    const c: Candidate = { child, holder, events: [] };
    createInterface({ input: child.stdout as NonNullable<ChildProcess["stdout"]> }).on(
      "line",
      (line) => c.events.push(JSON.parse(line)),
    );
    child.once("exit", () => {
      c.diedAt ??= now();
    });
    candidates.push(c);
    return c;
  };
  for (const holder of ["c0", "c1", "c2"]) spawnCandidate(holder);
  let next = 3;
  /** Ends the leader (SIGKILL, or SIGTERM: it releases), and starts a new candidate. */
  const replaceLeader = async (sig: NodeJS.Signals) => {
    const current = leader();
    if (!current) return;
    log(`${sig} to leader ${current.holder}`);
    if (sig === "SIGKILL") current.diedAt = now();
    signal(current.child.pid, sig);
    await new Promise((r) => current.child.once("exit", r));
    spawnCandidate(`c${next++}`);
  };
  const leader = () =>
    candidates.find((c) => {
      const last = c.events.findLast((e) => e.event === "leader" || e.event === "demoted");
      return last?.event === "leader" && c.diedAt === undefined;
    });
  try {
    const deadline = Date.now() + 60_000;
    while (!leader()) {
      assert.ok(Date.now() < deadline, "no leader within 60 s");
      await sleep(50);
    }
    await sleep(2000);
    await faults();
    // Pause the leader past its deadline, then let it go on.
    const paused = leader();
    if (paused) {
      log(`pausing leader ${paused.holder}`);
      const from = now();
      signal(paused.child.pid, "SIGSTOP");
      await sleep(5000);
      signal(paused.child.pid, "SIGCONT");
      paused.paused = { from, to: now() };
    }
    await sleep(4000);
    await faults();
    await sleep(3000);
    await replaceLeader("SIGKILL");
    await sleep(6000);
    await replaceLeader("SIGTERM");
    await sleep(3000);
  } finally {
    for (const c of candidates) signal(c.child.pid, "SIGTERM");
    await Promise.all(
      candidates.map((c) =>
        Promise.race([new Promise((r) => c.child.once("exit", r)), sleep(10_000)]).then(() =>
          signal(c.child.pid, "SIGKILL"),
        ),
      ),
    );
    await resource.close();
  }

  const terms = candidates.filter((c) => !c.paused).flatMap(termsOf);
  const all = candidates.flatMap(termsOf).sort((a, b) => (a.from < b.from ? -1 : 1));
  log(
    `terms: ${all.map((t) => `${t.holder}#${t.token}`).join(" ")}; ${resource.writes.filter((w) => !w.accepted).length} writes refused`,
  );
  assert.ok(
    new Set(all.map((t) => t.token)).size >= 2,
    "the lease never changed hands: nothing was tested",
  );
  for (let i = 0; i < terms.length; i++) {
    for (let j = i + 1; j < terms.length; j++) {
      const a = terms[i] as Term;
      const b = terms[j] as Term;
      if (a.token !== b.token)
        assert.ok(
          !overlaps(a, b),
          `${a.holder} (token ${a.token}) and ${b.holder} (token ${b.token}) led at once`,
        );
    }
  }
  for (let i = 1; i < all.length; i++) {
    const [a, b] = [all[i - 1] as Term, all[i] as Term];
    if (a.token !== b.token) assert.ok(b.token > a.token, `token ${b.token} came after ${a.token}`);
  }
  const pausedHolders = new Set(candidates.filter((c) => c.paused).map((c) => c.holder));
  for (const w of resource.writes.filter((x) => !x.accepted)) {
    assert.ok(
      pausedHolders.has(w.holder),
      `a live leader's write was refused: ${w.holder} token ${w.token}`,
    );
  }
}
