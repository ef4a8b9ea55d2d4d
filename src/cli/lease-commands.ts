import type { Command } from "commander";
import { formatDuration, toNanoseconds } from "../duration.js";
import { ConfigError } from "../errors.js";
import type { LeaseInfo } from "../leases/info.js";
import type { Lease } from "../leases/lease.js";
import { openLeases } from "../leases/leases.js";
import { openReader } from "../open.js";
import { formatGlobalTime } from "../time.js";
import { type Io, NotPinnedError, storeUrl, WaitTimeoutError } from "./io.js";
import { durationFlag } from "./options.js";

interface Holding {
  holder: string;
  for: string;
  json?: boolean;
}

/** A fencing token as given on the command line: a decimal int64. */
function token(text: string): bigint {
  if (!/^\d{1,19}$/.test(text)) {
    throw new ConfigError(
      "token",
      `invalid --token ${JSON.stringify(text.slice(0, 40))}: use the decimal token the claim printed`,
    );
  }
  return BigInt(text);
}

const global = (t: bigint) => `${formatGlobalTime(t)} (${t} ns)`;

function showLease(lease: Lease, json: boolean | undefined, moving: boolean): string {
  const left = lease.remaining();
  if (json) {
    return JSON.stringify({
      name: lease.name,
      holder: lease.holder,
      token: lease.token.toString(),
      start: lease.start.toString(),
      expiry: lease.expiry.toString(),
      maxStep: lease.maxStep.toString(),
      safeForNs: left.toString(),
      clockMoving: moving,
    });
  }
  return [
    `lease ${lease.name} held by ${lease.holder}, fencing token ${lease.token}`,
    `expires at global time ${global(lease.expiry)}`,
    `act on it for at most ${formatDuration(left > 0n ? left : 0n)} from now (the holder's deadline: expiry less the cluster's maxStep, ${formatDuration(lease.maxStep)}, and clock drift)`,
    ...(moving
      ? []
      : [
          `note: global time did not move in ${formatDuration(lease.maxStep)}: no updater keeps it (globalclock run, lock, or a campaign), so this lease will not expire, nor free the name, until one runs`,
        ]),
  ].join("\n");
}

/**
 * Whether global time moves: a running worker advances it at least once per maxStep, so a
 * change is awaited for that long (a lease judged against a clock that stands still never
 * expires, which its holder should be told).
 */
async function clockMoving(url: string | undefined, within: bigint): Promise<boolean> {
  const signal = AbortSignal.timeout(Number(within / 1_000_000n) + 200);
  try {
    await using reader = await openReader(url, { signal });
    let first: bigint | undefined;
    for await (const time of reader.watch({ signal })) {
      if (first === undefined) first = time;
      else if (time > first) return true;
    }
  } catch {
    // the wait ran out, or the store could not say: not known to move
  }
  return false;
}

/** A lease as one JSON object. */
export function showInfo(info: LeaseInfo): Record<string, unknown> {
  return {
    name: info.name,
    holder: info.holder,
    token: info.token.toString(),
    start: info.start.toString(),
    expiry: info.expiry.toString(),
    pins: info.pins,
    free: info.free,
    time: info.time.toString(),
    // The session's record name, without its leading control character.
    ...(info.session === undefined ? {} : { session: info.session.slice(1) }),
  };
}

/** A lease as one line: name, holder, token, and whether (or until when) it is held. */
export function infoLine(info: LeaseInfo): string {
  const through = info.session === undefined ? "" : ` through ${info.session.slice(1)}`;
  const who = info.holder === "" ? "released" : `held by ${info.holder}${through}`;
  const state = info.free
    ? "free"
    : info.pins.length > 0
      ? `pinned by ${info.pins.join(", ")}`
      : `expires in ${formatDuration(info.expiry - info.time)} of global time`;
  return `${info.name}  ${who}  token ${info.token}  ${state}`;
}

/**
 * Leases as a table with a header, its columns aligned: NAME, HOLDER ("-" once released),
 * TOKEN, EXPIRES IN (global time left, or the state: pinned, expired, released) and PINS.
 */
export function leaseTable(infos: readonly LeaseInfo[]): string[] {
  const header = ["NAME", "HOLDER", "TOKEN", "EXPIRES IN", "PINS"];
  const rows = [
    header,
    ...infos.map((info) => [
      info.name,
      info.holder === "" ? "-" : info.holder,
      info.token.toString(),
      info.holder === ""
        ? "released"
        : info.pins.length > 0
          ? "pinned"
          : info.free
            ? "expired"
            : formatDuration(info.expiry - info.time),
      info.pins.length === 0 ? "-" : info.pins.join(","),
    ]),
  ];
  const widths = header.map((_, i) => Math.max(...rows.map((r) => (r[i] as string).length)));
  return rows.map((r) =>
    r.map((cell, i) => (i === r.length - 1 ? cell : cell.padEnd(widths[i] as number))).join("  "),
  );
}

/** `globalclock lease …`: claim, extend, revoke, get, list, wait, pin, unpin. */
export function registerLease(program: Command, io: Io): void {
  const lease = program
    .command("lease")
    .description("leases judged against global time, with fencing tokens (exit 4: held or lost)");
  const open = (cmd: Command) => openLeases(storeUrl(cmd, io));
  // Readers never write: on SQLite a mistyped path is an error, not a new file.
  const openToRead = (cmd: Command) => openLeases(storeUrl(cmd, io), { readOnly: true });
  const show = async (held: Lease, cmd: Command, json?: boolean) =>
    io.out(showLease(held, json, await clockMoving(storeUrl(cmd, io), held.maxStep)));

  lease
    .command("claim")
    .description("take a lease for a holder (the same holder again extends it)")
    .argument("<name>")
    .requiredOption("--holder <id>", "who holds it")
    .requiredOption("--for <duration>", "for how long, in global time (at least 3 × maxStep)")
    .option("--json", "print one JSON object")
    .action(async (name: string, opts: Holding, cmd: Command) => {
      const d = toNanoseconds(opts.for, "--for");
      await using leases = await open(cmd);
      await show(await leases.claim(name, opts.holder, d), cmd, opts.json);
    });

  lease
    .command("extend")
    .description("extend a lease you hold (never shortens it)")
    .argument("<name>")
    .requiredOption("--holder <id>", "who holds it")
    .requiredOption("--token <n>", "the fencing token the claim gave")
    .requiredOption("--for <duration>", "from now, in global time")
    .option("--json", "print one JSON object")
    .action(async (name: string, opts: Holding & { token: string }, cmd: Command) => {
      const d = toNanoseconds(opts.for, "--for");
      await using leases = await open(cmd);
      await show(await leases.extend(name, opts.holder, token(opts.token), d), cmd, opts.json);
    });

  lease
    .command("revoke")
    .description("release a lease you hold, so another may take it at once")
    .argument("<name>")
    .requiredOption("--holder <id>", "who holds it")
    .requiredOption("--token <n>", "the fencing token the claim gave")
    .option("--json", "print one JSON object")
    .action(
      async (
        name: string,
        opts: { holder: string; token: string; json?: boolean },
        cmd: Command,
      ) => {
        const t = token(opts.token);
        await using leases = await open(cmd);
        await leases.revoke(name, opts.holder, t);
        io.out(
          opts.json
            ? JSON.stringify({ name, released: true, token: t.toString() })
            : `lease ${name} released (token ${t} is never given again)`,
        );
      },
    );

  lease
    .command("get")
    .description("show a lease, judged against the stored global time")
    .argument("<name>")
    .option("--json", "print one JSON object")
    .action(async (name: string, opts: { json?: boolean }, cmd: Command) => {
      await using leases = await openToRead(cmd);
      const info = await leases.get(name);
      if (opts.json) io.out(JSON.stringify(info ? showInfo(info) : null));
      else io.out(info ? infoLine(info) : `${name}  never claimed`);
    });

  lease
    .command("list")
    .description("list the leases whose names start with a prefix")
    .argument("[prefix]", "name prefix", "")
    .option("--json", "print JSON lines")
    .action(async (prefix: string, opts: { json?: boolean }, cmd: Command) => {
      await using leases = await openToRead(cmd);
      const infos = await leases.list(prefix);
      if (opts.json) for (const info of infos) io.out(JSON.stringify(showInfo(info)));
      else if (infos.length === 0)
        io.out(prefix === "" ? "no leases" : `no leases whose names start with ${prefix}`);
      else for (const line of leaseTable(infos)) io.out(line);
    });

  lease
    .command("wait")
    .description("return once the lease is free: released, or expired by global time")
    .argument("<name>")
    .option("--timeout <duration>", "give up after this long: exit 4")
    .option("--json", "print one JSON object")
    .action(async (name: string, opts: { timeout?: string; json?: boolean }, cmd: Command) => {
      const timeout =
        opts.timeout === undefined ? undefined : durationFlag("--timeout", opts.timeout);
      await using leases = await openToRead(cmd);
      const signal =
        timeout === undefined ? undefined : AbortSignal.timeout(Number(timeout / 1_000_000n));
      let last: LeaseInfo | undefined;
      const info = await leases
        .waitUntilExpired(name, {
          signal,
          onChange: (held) => {
            last = held;
          },
        })
        .catch((err: unknown) => {
          if (!signal?.aborted) throw err;
          const who = last ? ` (held by ${last.holder}, token ${last.token})` : "";
          throw new WaitTimeoutError(`lease ${name} is still held after ${opts.timeout}${who}`);
        });
      if (opts.json) io.out(JSON.stringify(info ? showInfo(info) : null));
      else io.out(info ? infoLine(info) : `${name}  never claimed`);
    });

  for (const [verb, what] of [
    ["pin", "pin a lease so that it does not expire"],
    ["unpin", "remove a pin"],
  ] as const) {
    lease
      .command(verb)
      .description(what)
      .argument("<name>")
      .requiredOption("--entity <id>", "who pins it")
      .option("--json", "print one JSON object")
      .action(async (name: string, opts: { entity: string; json?: boolean }, cmd: Command) => {
        await using leases = await open(cmd);
        if (verb === "unpin") {
          // The library's unpin is idempotent; on the command line a mistyped entity would
          // leave the pin in place without a word.
          const pins = (await leases.get(name))?.pins ?? [];
          if (!pins.includes(opts.entity)) {
            const others = pins.length === 0 ? "no pins" : `pinned by ${pins.join(", ")}`;
            throw new NotPinnedError(
              `lease ${name} is not pinned by ${opts.entity} (${others}); nothing changed`,
            );
          }
        }
        await leases[verb](name, opts.entity);
        io.out(
          opts.json
            ? JSON.stringify({ name, entity: opts.entity, pinned: verb === "pin" })
            : `lease ${name} ${verb}ned by ${opts.entity}`,
        );
      });
  }
}

/** `globalclock max-step [--set d]`: the cluster's maxStep, which lease holders count on. */
export function registerMaxStep(program: Command, io: Io): void {
  program
    .command("max-step")
    .description("show (or change) the cluster's maxStep: the largest step any worker may take")
    .option(
      "--set <duration>",
      "change it, either way, at any time (running workers follow; held leases stay safe)",
    )
    .option("--json", "print one JSON object")
    .action(async (opts: { set?: string; json?: boolean }, cmd: Command) => {
      const next =
        opts.set === undefined ? undefined : durationFlag("--set", opts.set, { timer: false });
      const url = storeUrl(cmd, io);
      // Without --set it only reads: on SQLite a mistyped path is an error, not a new file.
      await using leases = await openLeases(url, { readOnly: next === undefined });
      const stored = await leases.storedMaxStep();
      let current = stored;
      if (next !== undefined && next !== stored) {
        if (!(await leases.setMaxStep(stored, next))) {
          throw new ConfigError("--set", "the cluster's maxStep changed meanwhile; look again");
        }
        current = next;
      }
      const shown = current ?? (await leases.maxStep());
      if (opts.json)
        io.out(JSON.stringify({ maxStep: shown.toString(), stored: current !== undefined }));
      else
        io.out(
          current === undefined
            ? `${formatDuration(shown)} (none stored yet: the default, which the first worker or lease holder stores)`
            : formatDuration(shown),
        );
    });
}
