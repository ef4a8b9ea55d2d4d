import type { Command } from "commander";
import { formatDuration, toNanoseconds } from "../duration.js";
import { ConfigError } from "../errors.js";
import type { LeaseInfo } from "../leases/info.js";
import type { Lease } from "../leases/lease.js";
import { openLeases } from "../leases/leases.js";
import { formatGlobalTime } from "../time.js";
import { type Io, storeUrl } from "./io.js";

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

function showLease(lease: Lease, json: boolean | undefined): string {
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
    });
  }
  return [
    `lease ${lease.name} held by ${lease.holder}, fencing token ${lease.token}`,
    `expires at global time ${global(lease.expiry)}`,
    `act on it for at most ${formatDuration(left > 0n ? left : 0n)} from now (the holder's deadline: expiry less the cluster's maxStep, ${formatDuration(lease.maxStep)})`,
  ].join("\n");
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
  };
}

/** A lease as one line: name, holder, token, and whether (or until when) it is held. */
export function infoLine(info: LeaseInfo): string {
  const who = info.holder === "" ? "released" : `held by ${info.holder}`;
  const state = info.free
    ? "free"
    : info.pins.length > 0
      ? `pinned by ${info.pins.join(", ")}`
      : `expires in ${formatDuration(info.expiry - info.time)} of global time`;
  return `${info.name}  ${who}  token ${info.token}  ${state}`;
}

/** `globalclock lease …`: claim, extend, revoke, get, list, wait, pin, unpin. */
export function registerLease(program: Command, io: Io): void {
  const lease = program
    .command("lease")
    .description("leases judged against global time, with fencing tokens (exit 4: held or lost)");
  const open = (cmd: Command) => openLeases(storeUrl(cmd, io));

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
      io.out(showLease(await leases.claim(name, opts.holder, d), opts.json));
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
      io.out(showLease(await leases.extend(name, opts.holder, token(opts.token), d), opts.json));
    });

  lease
    .command("revoke")
    .description("release a lease you hold, so another may take it at once")
    .argument("<name>")
    .requiredOption("--holder <id>", "who holds it")
    .requiredOption("--token <n>", "the fencing token the claim gave")
    .action(async (name: string, opts: { holder: string; token: string }, cmd: Command) => {
      const t = token(opts.token);
      await using leases = await open(cmd);
      await leases.revoke(name, opts.holder, t);
      io.out(`lease ${name} released (token ${t} is never given again)`);
    });

  lease
    .command("get")
    .description("show a lease, judged against the stored global time")
    .argument("<name>")
    .option("--json", "print one JSON object")
    .action(async (name: string, opts: { json?: boolean }, cmd: Command) => {
      await using leases = await open(cmd);
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
      await using leases = await open(cmd);
      for (const info of await leases.list(prefix))
        io.out(opts.json ? JSON.stringify(showInfo(info)) : infoLine(info));
    });

  lease
    .command("wait")
    .description("return once the lease is free: released, or expired by global time")
    .argument("<name>")
    .action(async (name: string, _opts: unknown, cmd: Command) => {
      await using leases = await open(cmd);
      const info = await leases.waitUntilExpired(name);
      io.out(info ? infoLine(info) : `${name}  never claimed`);
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
      .action(async (name: string, opts: { entity: string }, cmd: Command) => {
        await using leases = await open(cmd);
        await leases[verb](name, opts.entity);
        io.out(`lease ${name} ${verb}ned by ${opts.entity}`);
      });
  }
}

/** `globalclock max-step [--set d]`: the cluster's maxStep, which lease holders count on. */
export function registerMaxStep(program: Command, io: Io): void {
  program
    .command("max-step")
    .description("show (or change) the cluster's maxStep: the largest step any worker may take")
    .option("--set <duration>", "change it (raise it only once no lease is held with the old one)")
    .action(async (opts: { set?: string }, cmd: Command) => {
      const next = opts.set === undefined ? undefined : toNanoseconds(opts.set, "--set");
      if (next !== undefined && next <= 0n) throw new ConfigError("--set", "maxStep must be > 0");
      await using leases = await open(cmd);
      let current = await leases.maxStep();
      if (next !== undefined && next !== current) {
        if (!(await leases.setMaxStep(current, next))) {
          throw new ConfigError("--set", "the cluster's maxStep changed meanwhile; look again");
        }
        current = next;
      }
      io.out(formatDuration(current));
    });
  const open = (cmd: Command) => openLeases(storeUrl(cmd, io));
}
