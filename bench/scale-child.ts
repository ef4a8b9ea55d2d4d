/**
 * One holder process of the scale part: `sessions` sessions on one store connection, each
 * renewing by itself (default renewEvery), claiming leases through it when told to. It
 * counts its own figures by wrapping its store's readLease and writeLease (the Leases it
 * uses call no other lease write), and answers each command with one JSON line on stdout.
 *
 * argv: store URL, process index, sessions, session ttl, processes, spread (ms). The
 * sessions of every process open staggered over the spread (one renewal period), session j
 * of process i at slot j × processes + i, so that renewals do not all fall at once.
 * Commands, one JSON line each on stdin:
 * - {"cmd":"claim","perSession":k}: every session claims leases until it holds k, the
 *   sessions in parallel (one claim in flight each); answers with the claims' latencies;
 * - {"cmd":"window","ms":n}: counts lease-record writes and times session renewals for n ms;
 * - {"cmd":"close"}: closes every session (one write each releases its leases) and exits.
 */
import { createInterface } from "node:readline";
import { describe, StoreError } from "../src/errors.js";
import { Leases, openStore, type Session } from "../src/index.js";
import { isSessionName } from "../src/leases/info.js";

export interface ClaimReport {
  event: "claimed";
  claims: number;
  /** Each claim's time, ms: session.claim from call to grant. */
  latenciesMs: number[];
  errors: number;
  lastError?: string;
  seconds: number;
  /** Sessions whose signal fired, or that were lost, while the claims ran; their leases. */
  lapsedSessions: number;
  lapsedLeases: number;
}

export interface WindowReport {
  event: "window";
  ms: number;
  /** writeLease calls made during the window (every one a session renewal's). */
  writes: number;
  /** Of them, those the store refused (a compare-and-swap lost). */
  refusedWrites: number;
  /** Session renewals: from the renewal's read of its record to its write completing, ms. */
  renewalsMs: number[];
  /** Sessions whose signal fired, or that were lost, during the window. */
  lapsedSessions: number;
  /** The leases those sessions held. */
  lapsedLeases: number;
  resumes: number;
  /** Renewals timed while the last claim command ran (ms), for comparison. */
  renewalsDuringClaimsMs: number[];
}

export interface Ready {
  event: "ready";
  sessions: Array<{ holder: string; name: string }>;
}

export interface Closed {
  event: "closed";
  lapsedSessions: number;
  resumes: number;
  errors: string[];
}

const [url, indexText, sessionsText, ttl, processesText, spreadText] = process.argv.slice(2);
if (!url || !indexText || !sessionsText || !ttl || !processesText || !spreadText)
  throw new Error("usage: scale-child <url> <index> <sessions> <ttl> <processes> <spreadMs>");
const index = Number(indexText);
const sessionCount = Number(sessionsText);
const sessionTtl: string = ttl;
const processes = Number(processesText);
const slotMs = Number(spreadText) / (processes * sessionCount);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const say = (line: unknown) => process.stdout.write(`${JSON.stringify(line)}\n`);

// --- the counters, fed by the wrapped store calls
type Phase = "idle" | "claims" | "window";
let phase: Phase = "idle";
let writes = 0;
let refusedWrites = 0;
let renewals: number[] = [];
let renewalsDuringClaims: number[] = [];
/** When the last read of each session record began (performance.now()). */
const readAt = new Map<string, number>();

const store = await openStore(url);
const leaseStore = store.leases;
if (!leaseStore) throw new Error(`the ${store.kind} store keeps no leases`);
const read = leaseStore.readLease.bind(leaseStore);
const write = leaseStore.writeLease.bind(leaseStore);
leaseStore.readLease = (name, signal) => {
  if (isSessionName(name)) readAt.set(name, performance.now());
  return read(name, signal);
};
leaseStore.writeLease = async (record, version, signal) => {
  const counting = phase === "window";
  const written = await write(record, version, signal);
  if (counting) {
    writes++;
    if (written === undefined) refusedWrites++;
  }
  const began = readAt.get(record.name);
  if (isSessionName(record.name) && began !== undefined && record.holder !== "") {
    readAt.delete(record.name);
    // A renewal keeps the session's token; its first claim is made before `opened` is set.
    if (opened && !record.newToken) {
      const ms = performance.now() - began;
      if (phase === "window") renewals.push(ms);
      else if (phase === "claims") renewalsDuringClaims.push(ms);
    }
  }
  return written;
};

const leases = new Leases(store);

// --- the sessions, and what becomes of them
let opened = false;
let closing = false;
let lapsedSessions = 0;
let lapsedLeases = 0;
let resumes = 0;
const held = new Map<Session, number>(); // leases held through each session
const errors: string[] = [];

function watch(session: Session): void {
  session.signal.addEventListener(
    "abort",
    () => {
      if (closing) return;
      lapsedSessions++;
      lapsedLeases += held.get(session) ?? 0;
      errors.push(`${session.holder}: ${describe(session.signal.reason)}`);
    },
    { once: true },
  );
}

/** Opens session j at its slot; a store error (a timeout) is retried, up to 10 times. */
async function open(j: number): Promise<Session> {
  await sleep((j * processes + index) * slotMs);
  for (let attempt = 1; ; attempt++) {
    try {
      return await leases.session(`c${index}s${j}`, {
        ttl: sessionTtl,
        onResume: (s) => {
          resumes++;
          watch(s);
        },
      });
    } catch (err) {
      if (!(err instanceof StoreError) || attempt >= 10) throw err;
      errors.push(`opening c${index}s${j}: ${describe(err)}`);
      await sleep(100 * attempt);
    }
  }
}
const sessions: Session[] = await Promise.all(
  Array.from({ length: sessionCount }, (_, j) => open(j)),
);
for (const s of sessions) {
  held.set(s, 0);
  watch(s);
}
opened = true;
say({
  event: "ready",
  sessions: sessions.map((s) => ({ holder: s.holder, name: s.name })),
} satisfies Ready);

async function claim(perSession: number): Promise<ClaimReport> {
  renewalsDuringClaims = [];
  const lapsedBefore = { sessions: lapsedSessions, leases: lapsedLeases };
  phase = "claims";
  const latenciesMs: number[] = [];
  let failures = 0;
  let lastError: string | undefined;
  const began = performance.now();
  await Promise.all(
    sessions.map(async (s) => {
      for (let i = held.get(s) ?? 0; i < perSession; i++) {
        const name = `scale/${s.holder}/${i}`;
        const t0 = performance.now();
        try {
          await s.claim(name);
          latenciesMs.push(performance.now() - t0);
          held.set(s, i + 1);
        } catch (err) {
          // A store error (a timeout) leaves the outcome unknown: the same session claims
          // again, which is safe. Anything else (the session lapsed) ends its claims.
          failures++;
          lastError = `${name}: ${describe(err)}`;
          if (!(err instanceof StoreError) || failures > 1000) return;
          await sleep(50);
          i--;
        }
      }
    }),
  );
  phase = "idle";
  return {
    event: "claimed",
    claims: latenciesMs.length,
    latenciesMs: latenciesMs.map(round),
    errors: failures,
    ...(lastError === undefined ? {} : { lastError }),
    seconds: (performance.now() - began) / 1000,
    lapsedSessions: lapsedSessions - lapsedBefore.sessions,
    lapsedLeases: lapsedLeases - lapsedBefore.leases,
  };
}

async function window(ms: number): Promise<WindowReport> {
  writes = 0;
  refusedWrites = 0;
  renewals = [];
  const lapsedBefore = { sessions: lapsedSessions, leases: lapsedLeases, resumes };
  phase = "window";
  await new Promise((r) => setTimeout(r, ms));
  phase = "idle";
  return {
    event: "window",
    ms,
    writes,
    refusedWrites,
    renewalsMs: renewals.map(round),
    lapsedSessions: lapsedSessions - lapsedBefore.sessions,
    lapsedLeases: lapsedLeases - lapsedBefore.leases,
    resumes: resumes - lapsedBefore.resumes,
    renewalsDuringClaimsMs: renewalsDuringClaims.map(round),
  };
}

function round(ms: number): number {
  return Math.round(ms * 1000) / 1000;
}

const lines = createInterface({ input: process.stdin });
for await (const text of lines) {
  const command = JSON.parse(text) as { cmd: string; perSession?: number; ms?: number };
  if (command.cmd === "claim") say(await claim(command.perSession ?? 0));
  else if (command.cmd === "window") say(await window(command.ms ?? 0));
  else if (command.cmd === "close") break;
}
closing = true;
for (const s of sessions) if (s.lost) errors.push(`${s.holder} lost: ${s.lost.message}`);
await Promise.all(sessions.map((s) => s.close().catch((err) => errors.push(describe(err)))));
await store.close();
say({ event: "closed", lapsedSessions, resumes, errors } satisfies Closed);
process.exit(0);
