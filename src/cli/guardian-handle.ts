/** `lock`'s side of its guardian (guardian.ts): starting it and telling it what to do. */
import { spawn } from "node:child_process";
import { fileURLToPath } from "node:url";

const MAIN = fileURLToPath(new URL("./guardian-main.js", import.meta.url));

export interface GuardianHandle {
  /** Hands it the group to guard; resolves once it has it. */
  arm(group: number, grace: bigint): Promise<void>;
  /** SIGTERM the group at `termAt`, SIGKILL it at `killAt` (monotonic ns). */
  deadline(termAt: bigint, killAt: bigint): void;
  /** SIGTERM the group now and SIGKILL it by `killAt`; resolves once the group is gone. */
  stop(killAt: bigint): Promise<void>;
  /** `lock` is done: the guardian exits. */
  done(): void;
  /** Aborted if the guardian exits before `done()`. */
  readonly lost: AbortSignal;
}

/** Starts the guardian in a session of its own and waits until it listens. */
export async function startGuardian(): Promise<GuardianHandle> {
  const child = spawn(process.execPath, [MAIN], {
    detached: true, // its own session: no signal for lock's terminal or group reaches it
    stdio: ["pipe", "pipe", "inherit"],
  });
  child.unref(); // lock's exit must not wait for it: it outlives lock on purpose
  const lost = new AbortController();
  let finished = false;
  child.once("exit", () => {
    if (!finished) lost.abort(new Error("lock's guardian process exited"));
  });
  child.stdin?.on("error", () => {});
  const answers: string[] = [];
  const waiting = new Map<string, () => void>();
  let buffered = "";
  child.stdout?.setEncoding("utf8");
  child.stdout?.on("data", (chunk: string) => {
    buffered += chunk;
    for (let at = buffered.indexOf("\n"); at >= 0; at = buffered.indexOf("\n")) {
      const line = buffered.slice(0, at);
      buffered = buffered.slice(at + 1);
      const resolve = waiting.get(line);
      if (resolve) {
        waiting.delete(line);
        resolve();
      } else answers.push(line);
    }
  });
  const answer = (line: string) =>
    new Promise<void>((resolve, reject) => {
      const at = answers.indexOf(line);
      if (at >= 0) {
        answers.splice(at, 1);
        return resolve();
      }
      if (lost.signal.aborted) return reject(lost.signal.reason);
      waiting.set(line, resolve);
      lost.signal.addEventListener("abort", () => reject(lost.signal.reason), { once: true });
    });
  const send = (line: string) => {
    if (!finished) child.stdin?.write(`${line}\n`);
  };
  await answer("ready");
  return {
    lost: lost.signal,
    arm: (group, grace) => {
      send(`group ${group} ${grace}`);
      return answer("armed");
    },
    deadline: (termAt, killAt) => send(`deadline ${termAt} ${killAt}`),
    stop: (killAt) => {
      send(`stop ${killAt}`);
      return answer("gone");
    },
    done: () => {
      send("done");
      finished = true;
      child.stdin?.end();
      child.stdout?.destroy(); // nothing more to hear; lock may exit
    },
  };
}
