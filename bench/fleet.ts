/** `globalclock run` daemons on one store, through the test helper that parses their logs. */
import { Daemon, type LogLine } from "../test/helpers/daemon.js";
import { track } from "./processes.js";

export class Fleet {
  readonly daemons: Daemon[] = [];
  readonly #url: string;
  readonly #args: string[];

  constructor(url: string, args: string[] = []) {
    this.#url = url;
    this.#args = args;
  }

  /** Starts one more daemon; resolves once it has logged its start. */
  async add(): Promise<Daemon> {
    const daemon = new Daemon(this.#url, this.#args);
    track(daemon.child);
    this.daemons.push(daemon);
    await daemon.waitFor((l) => l.event === "start", 60_000);
    return daemon;
  }

  get alive(): Daemon[] {
    return this.daemons.filter((d) => d.child.exitCode === null && d.child.signalCode === null);
  }

  /** The live daemon that last logged itself active, once there is exactly one. */
  async active(timeoutMs = 30_000): Promise<Daemon> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const active = this.alive.filter((d) => d.role === "active");
      if (active.length === 1) return active[0] as Daemon;
      if (Date.now() > deadline)
        throw new Error(`${active.length} active daemons after ${timeoutMs} ms`);
      await new Promise((r) => setTimeout(r, 10));
    }
  }

  /** Sends SIGTERM to every live daemon and waits; returns each one's "stop" line. */
  async stop(): Promise<LogLine[]> {
    const live = this.alive;
    for (const d of live) d.kill("SIGTERM");
    await Promise.all(live.map((d) => d.exited));
    return live.map((d) => d.lines.find((l) => l.event === "stop") ?? {});
  }

  /** Every log line of every daemon with this event. */
  lines(event: string): LogLine[] {
    return this.daemons.flatMap((d) => d.lines.filter((l) => l.event === event));
  }
}
