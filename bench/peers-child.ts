/**
 * One process of the peers part's crash handover:
 * `peers-child.ts holder|waiter SIDE TARGET NAME TTL HOLDER`, where SIDE is etcd3-lock
 * (TARGET: host:port,… of the etcd members), redlock (TARGET: the Redis port) or
 * globalclock (TARGET: a store URL), and TTL is milliseconds or "default" (the side's own).
 *
 * A holder takes the lock and keeps it as each library has it kept: etcd3's Lease sends its
 * keep-alives by itself (every third of the TTL); a redlock holder extends its lock, and a
 * globalclock holder its lease, every third of the TTL. A waiter tries until it gets it:
 * etcd3's Lock has no wait, so it tries again every 50 ms; redlock retries with its own
 * retry settings (and is called again when they run out); globalclock waits with
 * waitUntilExpired (woken by the store's pushes) and claims.
 *
 * It prints JSON lines with `at`, its CLOCK_MONOTONIC time (shared by every process on the
 * machine): "held" / "acquired" with the fencing token where the side has one (etcd3: the
 * lock key's create revision, read after acquiring; globalclock: the lease's token), and
 * "waiting" once the waiter found the lock taken.
 */
import { Etcd3, EtcdLockFailedError, type Lock } from "etcd3";
import { LeaseHeldError, openLeases } from "../src/index.js";
import { isLockError, REDLOCK_DEFAULTS, redisClient, redlockOn } from "./peers-redis.js";

const [role = "", side = "", target = "", name = "", ttlText = "", holder = ""] =
  process.argv.slice(2);
const ttlMs = ttlText === "default" ? undefined : Number(ttlText);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const say = (event: string, fields: Record<string, unknown> = {}) =>
  process.stdout.write(
    `${JSON.stringify({ event, at: process.hrtime.bigint().toString(), ...fields })}\n`,
  );
const ETCD_RETRY_MS = 50;

async function etcd3Lock(): Promise<void> {
  const client = new Etcd3({ hosts: target.split(",").map((h) => `http://${h}`) });
  const revision = async () => (await client.get(name).exec()).kvs[0]?.create_revision;
  let told = false;
  for (;;) {
    const lock: Lock = client.lock(name);
    if (ttlMs !== undefined) lock.ttl(Math.round(ttlMs / 1000));
    try {
      await lock.acquire();
    } catch (err) {
      if (!(err instanceof EtcdLockFailedError) || role === "holder") throw err;
      if (!told) say("waiting");
      told = true;
      await sleep(ETCD_RETRY_MS);
      continue;
    }
    say(role === "holder" ? "held" : "acquired", { token: await revision() });
    if (role === "waiter") {
      await lock.release();
      client.close();
      process.exit(0);
    }
    return; // the holder: etcd3's Lease keeps itself alive until the process dies
  }
}

async function redlock(): Promise<void> {
  const ttl = ttlMs ?? 1000;
  const client = redisClient(Number(target));
  const redlock = redlockOn([client], REDLOCK_DEFAULTS);
  if (role === "waiter") say("waiting");
  for (;;) {
    let lock: Awaited<ReturnType<typeof redlock.lock>>;
    try {
      lock = await redlock.lock(name, ttl);
    } catch (err) {
      if (isLockError(err) && role === "waiter") continue; // its retries ran out: again
      throw err;
    }
    say(role === "holder" ? "held" : "acquired");
    if (role === "waiter") {
      await lock.unlock();
      await client.quit();
      process.exit(0);
    }
    for (;;) {
      await sleep(ttl / 3);
      lock = await lock.extend(ttl);
    }
  }
}

async function globalclock(): Promise<void> {
  const ttl = ttlMs ?? 10_000;
  const leases = await openLeases(target);
  let told = false;
  for (;;) {
    let lease: Awaited<ReturnType<typeof leases.claim>>;
    try {
      lease = await leases.claim(name, holder, `${ttl}ms`);
    } catch (err) {
      if (!(err instanceof LeaseHeldError) || role === "holder") throw err;
      if (!told) say("waiting");
      told = true;
      await leases.waitUntilExpired(name);
      continue;
    }
    say(role === "holder" ? "held" : "acquired", { token: lease.token.toString() });
    if (role === "waiter") {
      await lease.release();
      await leases.close();
      process.exit(0);
    }
    for (;;) {
      await sleep(ttl / 3);
      await lease.extend(`${ttl}ms`);
    }
  }
}

const run = { "etcd3-lock": etcd3Lock, redlock, globalclock }[side];
if (!run || (role !== "holder" && role !== "waiter"))
  throw new Error("usage: peers-child.ts holder|waiter SIDE TARGET NAME TTL HOLDER");
await run();
