// The live page of `globalclock run --listen`, in a real browser (Debian's chromium driven by
// playwright-core) against a real daemon on a SQLite file: what a person sees.
import assert from "node:assert/strict";
import { existsSync, mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import Database from "better-sqlite3";
import { type Browser, chromium, type Locator, type Page } from "playwright-core";
import { type Leases, openLeases } from "../../src/index.js";
import { Daemon, eventually } from "../helpers/daemon.js";
import { skipOrFail } from "../helpers/env.js";

const CHROMIUM = process.env.GLOBALCLOCK_TEST_CHROMIUM ?? "/usr/bin/chromium";
/** Set to a path (docs/page.png) to save the first test's screenshot there too. */
const DOC_SCREENSHOT = process.env.GLOBALCLOCK_PAGE_SCREENSHOT;

/** A page whose console errors and uncaught exceptions are collected. */
async function open(
  browser: Browser,
  url: string,
  viewport = { width: 1100, height: 900 },
): Promise<{ page: Page; errors: string[] }> {
  const page = await browser.newPage({ viewport });
  const errors: string[] = [];
  page.on("console", (m) => {
    if (m.type() === "error") errors.push(`console: ${m.text()}`);
  });
  page.on("pageerror", (err) => errors.push(`pageerror: ${err.message}`));
  await page.goto(url);
  return { page, errors };
}

/** The text a person sees in an element (innerText: as laid out, not the DOM's text). */
// biome-ignore lint/performance/useDomNodeTextContent: what is shown is what is asserted
const seen = (locator: Locator) => locator.innerText();

/** The daemon's base URL, once it listens. */
async function baseOf(daemon: Daemon): Promise<string> {
  const start = await daemon.waitFor((l) => l.event === "start");
  return `http://${start.listen}`;
}

describe("the live page (GET /), in chromium", { timeout: 120_000 }, () => {
  let dir: string;
  let browser: Browser | undefined;
  const daemons: Daemon[] = [];

  before(() => {
    dir = mkdtempSync(join(tmpdir(), "globalclock-page-"));
  });

  after(async () => {
    await browser?.close();
    for (const d of daemons) d.kill("SIGTERM");
    await Promise.all(daemons.map((d) => d.exited));
    // The screenshots are kept for a person to look at; the databases are not.
    for (const f of readdirSync(dir)) if (!f.endsWith(".png")) rmSync(join(dir, f));
    process.stderr.write(`page test screenshots: ${dir}\n`);
  });

  /** The daemon most tests share: default timing, on its own SQLite file. */
  let shared: { daemon: Daemon; path: string; base: string } | undefined;
  async function sharedDaemon() {
    if (!shared) {
      const path = join(dir, "shared.db");
      const daemon = new Daemon(`sqlite:${path}`, ["--listen", "127.0.0.1:0"]);
      daemons.push(daemon);
      shared = { daemon, path, base: await baseOf(daemon) };
    }
    await shared.daemon.waitFor((l) => l.event === "role" && l.role === "active");
    return shared;
  }

  /** The browser, launched once; a missing chromium is a loud skip (a failure under CI=true). */
  async function launch(t: Parameters<typeof skipOrFail>[0]): Promise<Browser | undefined> {
    if (!existsSync(CHROMIUM)) {
      skipOrFail(t, `no chromium at ${CHROMIUM} (apt-get install chromium)`);
      return undefined;
    }
    browser ??= await chromium.launch({ executablePath: CHROMIUM, args: ["--no-sandbox"] });
    return browser;
  }

  test("a handover shows on the timeline within a second, countdowns move, no console error", async (t) => {
    const b = await launch(t);
    if (!b) return;
    const { path, base } = await sharedDaemon();
    let leases: Leases | undefined;
    try {
      leases = await openLeases(`sqlite:${path}`);
      const alice = await leases.claim("job", "alice", "30s");
      await leases.claim("reports/nightly", "worker-7", "5m");
      await leases.pin("reports/nightly", "ops");

      const { page, errors } = await open(b, `${base}/`);
      const banner = page.locator("#banner");
      await page.locator('#banner[data-state="ok"]').waitFor({ timeout: 10_000 });
      assert.equal(await banner.getAttribute("class"), "ok");
      assert.match(await seen(banner), /Global time is advancing/);
      assert.match(await seen(page.locator("#time")), /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z$/);
      assert.equal(await seen(page.locator("#role")), "active");
      assert.equal(await seen(page.locator("#maxstep")), "1.50 s");
      assert.equal(await seen(page.locator("#interval")), "1.00 s");
      assert.equal(await seen(page.locator("#bound")), "3.00 s");

      // alice's lease, its token and a countdown that moves between two pushes.
      const row = page.locator('#leases tr[data-lease="job"]');
      await row.waitFor({ timeout: 5_000 });
      assert.equal(await seen(row.locator(".holder")), "alice");
      assert.equal(await seen(row.locator(".token")), String(alice.token));
      const cell = row.locator("td.countdown");
      const first = BigInt((await cell.getAttribute("data-left-ns")) ?? "0");
      assert.ok(first > 20_000_000_000n && first <= 30_000_000_000n, `${first} ns left`);
      assert.match(await seen(cell), /^\d+\.\d s$/);
      const firstText = await seen(cell);
      const moved = `(() => {
        const c = document.querySelector('#leases tr[data-lease="job"] td.countdown');
        return BigInt(c.getAttribute("data-left-ns")) < ${first}n && c.textContent !== ${JSON.stringify(firstText)};
      })()`;
      // Polled from here: page.waitForFunction evaluates a string with eval inside the page,
      // which the page's CSP (rightly) forbids.
      for (const end = Date.now() + 3_000; !(await page.evaluate(moved)); ) {
        assert.ok(Date.now() < end, "the countdown did not move within 3 s");
        await new Promise((r) => setTimeout(r, 50));
      }
      const pinned = page.locator('#leases tr[data-lease="reports/nightly"]');
      assert.equal(await seen(pinned.locator("td.countdown")), "pinned (no expiry)");
      assert.equal(await seen(pinned.locator(".pins")), "ops");

      // The handover: alice releases, bob claims; the page shows it within a second.
      await alice.release();
      const bob = await leases.claim("job", "bob", "30s");
      const claimedAt = performance.now();
      const entry = page.locator(`#handovers li[data-lease="job"][data-token="${bob.token}"]`);
      await entry.waitFor({ timeout: 1_000 });
      const shownMs = performance.now() - claimedAt;
      t.diagnostic(`handover shown ${shownMs.toFixed(0)} ms after bob's claim returned`);
      assert.equal(await seen(entry.locator(".from")), "alice");
      assert.equal(await seen(entry.locator(".to")), "bob");
      // A release and a claim a moment apart may fall between two reads: then only a bound.
      assert.match(await seen(entry), new RegExp(`token ${bob.token}, gap (≤ )?\\d`));
      assert.equal(await seen(row.locator(".holder")), "bob");
      assert.ok(bob.token > alice.token);

      const shot = join(dir, "page.png");
      await page.screenshot({ path: shot, fullPage: true });
      if (DOC_SCREENSHOT) await page.screenshot({ path: DOC_SCREENSHOT, fullPage: true });
      t.diagnostic(`screenshot: ${shot}`);

      // Readable on a phone: nothing wider than the screen.
      await page.setViewportSize({ width: 390, height: 844 });
      const width = await page.evaluate("document.documentElement.scrollWidth");
      assert.ok(Number(width) <= 390, `page is ${width} px wide on a 390 px screen`);
      await page.screenshot({ path: join(dir, "page-phone.png"), fullPage: true });

      assert.deepEqual(errors, []);
      await page.close();
    } finally {
      await leases?.close();
    }
  });

  test("/api/state: the documented shape, global times as decimal strings with ISO beside", async () => {
    const { path, base } = await sharedDaemon();
    const get = async () => {
      const res = await fetch(`${base}/api/state`);
      assert.equal(res.status, 200);
      assert.equal(res.headers.get("content-type"), "application/json");
      // biome-ignore lint/suspicious/noExplicitAny: a JSON document whose shape is under test
      return (await res.json()) as Record<string, any>;
    };
    const leases = await openLeases(`sqlite:${path}`);
    try {
      const alice = await leases.claim("shape", "alice", "30s");
      // Seen before it goes: a claim and release between two reads would never be seen.
      await eventually(
        async () =>
          (await get()).leases.items.some(
            (l: { name: string; holder: string }) => l.name === "shape" && l.holder === "alice",
          ),
        "alice's claim in /api/state",
      );
      await alice.release();
      await leases.claim("shape", "bob", "30s");
    } finally {
      await leases.close();
    }
    const s = await eventually(async () => {
      const state = await get();
      const seen = (h: { lease: string; to: string }) => h.lease === "shape" && h.to === "bob";
      return state.handovers.some(seen) && state;
    }, "bob's claim of shape in /api/state");
    const ns = /^\d+$/;
    const iso9 = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z$/;
    const wall = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/;
    assert.deepEqual(Object.keys(s), [
      "api",
      "generatedAt",
      "clock",
      "rate",
      "worker",
      "store",
      "leases",
      "handovers",
    ]);
    assert.equal(s.api, 1);
    assert.match(s.generatedAt, wall);
    assert.equal(s.clock.state, "ok");
    assert.equal(s.clock.reason, null);
    assert.match(s.clock.time, ns);
    assert.match(s.clock.timeIso, iso9);
    assert.equal(typeof s.clock.lastChangeAgoSeconds, "number");
    assert.equal(typeof s.clock.stillForSeconds, "number");
    assert.equal(typeof s.rate.sampleSeconds, "number");
    for (const sample of s.rate.samples) {
      assert.match(sample.wall, wall);
      assert.match(sample.time, ns);
      assert.ok(sample.rate === null || typeof sample.rate === "number");
    }
    assert.equal(s.worker.role, "active");
    for (const k of ["interval", "takeoverAfter", "failoverBound", "maxStep", "ownMaxStep"])
      assert.match(s.worker[k], ns, k);
    assert.equal(s.worker.maxStep, "1500000000");
    assert.equal(s.worker.failoverBound, "3000000000");
    assert.deepEqual(s.store, { kind: "sqlite", url: `sqlite:${path}` });
    assert.equal(s.leases.available, true);
    assert.equal(s.leases.pushed, true);
    const job = s.leases.items.find((l: { name: string }) => l.name === "shape");
    assert.deepEqual(Object.keys(job), [
      "name",
      "holder",
      "token",
      "start",
      "startIso",
      "expiry",
      "expiryIso",
      "pins",
      "free",
      "released",
      "remaining",
      "judgedAt",
    ]);
    assert.equal(job.holder, "bob");
    for (const k of ["token", "start", "expiry", "judgedAt"]) assert.match(job[k], ns, k);
    assert.match(job.remaining, /^-?\d+$/);
    assert.match(job.expiryIso, iso9);
    const handover = s.handovers.find(
      (h: { lease: string; to: string }) => h.lease === "shape" && h.to === "bob",
    );
    assert.deepEqual(Object.keys(handover), [
      "seenAt",
      "lease",
      "from",
      "to",
      "token",
      "start",
      "startIso",
      "gap",
      "gapAtMost",
      "newLease",
    ]);
    assert.equal(handover.from, "alice");
    // The release was seen (an exact gap) or fell between two reads (a bound).
    assert.match(handover.gap ?? handover.gapAtMost, ns);
    assert.match(handover.seenAt, wall);

    // The same state pushed as server-sent events.
    const events = await fetch(`${base}/api/events`);
    assert.equal(events.headers.get("content-type"), "text/event-stream; charset=utf-8");
    const reader = (events.body as ReadableStream<Uint8Array>).getReader();
    let text = "";
    while (!/\n\n.*event: state\ndata: .*\n\n/s.test(text)) {
      const { value, done } = await reader.read();
      if (done) break;
      text += Buffer.from(value).toString();
    }
    await reader.cancel();
    const data = /event: state\ndata: (.*)\n\n/.exec(text)?.[1] ?? "{}";
    assert.equal(JSON.parse(data).api, 1);
  });

  test("a clock that stands still turns the page red: stalled, store unreachable, record missing; then green", async (t) => {
    const b = await launch(t);
    if (!b) return;
    const path = join(dir, "stall.db");
    // Writes wait up to 1 s for the lock before failing: first a stall, then a store error.
    const daemon = new Daemon(`sqlite:${path}?busyTimeout=1s`, [
      "--interval",
      "100ms",
      "--listen",
      "127.0.0.1:0",
    ]);
    daemons.push(daemon);
    const base = await baseOf(daemon);
    await daemon.waitFor((l) => l.event === "role" && l.role === "active");
    const { page, errors } = await open(b, `${base}/`, { width: 390, height: 844 });
    const banner = page.locator("#banner");
    const state = (name: string, timeout: number) =>
      page.locator(`#banner[data-state="${name}"]`).waitFor({ timeout });
    // A red banner in state `name` that says `text`, read at once. While the lock is held the
    // worker goes back and forth between a stall (its write waits) and an error (it gave up).
    const red = async (name: string, text: RegExp, timeout: number) => {
      await page
        .locator(`#banner.bad[data-state="${name}"]`, { hasText: text })
        .waitFor({ timeout });
      const color = await page.evaluate(
        "getComputedStyle(document.getElementById('banner')).backgroundColor",
      );
      assert.equal(color, "rgb(253, 228, 225)"); // --badbg
    };
    await state("ok", 10_000);
    assert.equal(await seen(page.locator("#bound")), "300 ms");

    const db = new Database(path);
    try {
      db.exec("BEGIN IMMEDIATE"); // the write lock: no advance can be written
      // /healthz's reason, as src/service/health.ts words it.
      await red("stalled", /Clock stalled.*has not moved for .*300ms/s, 3_000);
      const frozen = await seen(page.locator("#time"));
      await page.screenshot({ path: join(dir, "stalled.png"), fullPage: true });
      await red("store-unreachable", /Store unreachable.*(locked|busy)/is, 5_000);
      assert.equal(await seen(page.locator("#time")), frozen, "global time stood still");
      db.exec("COMMIT");
      await state("ok", 5_000);
      assert.equal(await banner.getAttribute("class"), "ok");
      assert.notEqual(await seen(page.locator("#time")), frozen, "global time moves again");

      db.exec("DELETE FROM globalclock");
      await red("record-missing", /Clock record missing/, 5_000);
      await page.screenshot({ path: join(dir, "record-missing.png"), fullPage: true });
    } catch (err) {
      t.diagnostic(daemon.lines.map((l) => JSON.stringify(l)).join("\n"));
      throw err;
    } finally {
      if (db.inTransaction) db.exec("ROLLBACK");
      db.close();
    }
    assert.deepEqual(errors, []);
    await page.close();
  });
});
