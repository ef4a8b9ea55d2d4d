import { type ChildProcess, type SpawnOptions, spawn } from "node:child_process";
import { createConnection, createServer, type Socket } from "node:net";

/** A TCP port on 127.0.0.1 that was free a moment ago (the OS picked it). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.on("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      const port = typeof address === "object" && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

/**
 * A TCP server on 127.0.0.1 that accepts connections and never answers: a host whose
 * server hangs, for checking that a store gives up at its deadline.
 */
export async function blackHole(): Promise<{ port: number; close: () => Promise<void> }> {
  const sockets = new Set<Socket>();
  const server = createServer((socket) => {
    sockets.add(socket);
    socket.on("error", () => {});
    socket.on("close", () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const address = server.address();
  const port = typeof address === "object" && address ? address.port : 0;
  return {
    port,
    close: () =>
      new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  };
}

const running = new Set<ChildProcess>();
process.on("exit", () => {
  // A crashed test must not leave servers behind.
  for (const child of running) child.kill("SIGKILL");
});

/**
 * Spawns a server process, keeping the last lines of its output for error messages, and
 * resolving `ready` once `readyLine` appears (or rejecting if it exits first).
 */
export function spawnServer(
  command: string,
  args: string[],
  options: SpawnOptions & { readyLine: RegExp; name: string; timeoutMs?: number },
): {
  child: ChildProcess;
  ready: Promise<void>;
  exited: Promise<number | null>;
  log: () => string;
} {
  const child = spawn(command, args, { ...options, stdio: ["ignore", "pipe", "pipe"] });
  running.add(child);
  const lines: string[] = [];
  let seen = false;
  let onLine: () => void = () => {};
  const collect = (chunk: Buffer) => {
    for (const line of chunk.toString().split("\n")) {
      if (!line) continue;
      lines.push(line);
      if (lines.length > 40) lines.shift();
      if (!seen && options.readyLine.test(line)) {
        seen = true;
        onLine();
      }
    }
  };
  child.stdout?.on("data", collect);
  child.stderr?.on("data", collect);
  const log = () => lines.join("\n");
  const exited = new Promise<number | null>((resolve) => {
    child.on("exit", (code) => {
      running.delete(child);
      resolve(code);
    });
    child.on("error", () => {
      running.delete(child);
      resolve(null);
    });
  });
  const ready = new Promise<void>((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`${options.name} did not start in time:\n${log()}`)),
      options.timeoutMs ?? 30_000,
    );
    onLine = () => {
      clearTimeout(timer);
      resolve();
    };
    void exited.then((code) => {
      clearTimeout(timer);
      if (!seen)
        reject(new Error(`${options.name} exited (${code}) before it was ready:\n${log()}`));
    });
  });
  ready.catch(() => {}); // the caller awaits it; never an unhandled rejection
  return { child, ready, exited, log };
}

/** Sends `signal` and waits for the process to exit. */
export async function stopProcess(
  child: ChildProcess,
  exited: Promise<unknown>,
  signal: NodeJS.Signals = "SIGTERM",
): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  child.kill(signal);
  const timer = setTimeout(() => child.kill("SIGKILL"), 15_000);
  await exited;
  clearTimeout(timer);
}

/**
 * A TCP proxy on 127.0.0.1 in front of `port`, whose connections can be cut: `cut()`
 * destroys every open connection and refuses new ones, as a crashed host or a broken
 * network does; `heal()` accepts again.
 */
export async function tcpProxy(port: number): Promise<{
  port: number;
  cut: () => Promise<void>;
  heal: () => void;
  /** Stops forwarding without closing anything: every call through it hangs, new ones too. */
  freeze: () => void;
  thaw: () => void;
  close: () => Promise<void>;
}> {
  const sockets = new Set<Socket>();
  const pairs = new Set<[Socket, Socket]>();
  let cut = false;
  let frozen = false;
  const server = createServer((client) => {
    if (cut) {
      client.destroy();
      return;
    }
    const upstream = createConnection(port, "127.0.0.1");
    const pair: [Socket, Socket] = [client, upstream];
    pairs.add(pair);
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.on("error", () => {});
      s.on("close", () => {
        sockets.delete(s);
        pairs.delete(pair);
        client.destroy();
        upstream.destroy();
      });
    }
    if (frozen) {
      client.pause();
      upstream.pause();
    } else {
      client.pipe(upstream);
      upstream.pipe(client);
    }
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const address = server.address();
  const own = typeof address === "object" && address ? address.port : 0;
  const destroyAll = () => {
    for (const socket of sockets) socket.destroy();
  };
  return {
    port: own,
    cut: async () => {
      cut = true;
      destroyAll();
    },
    heal: () => {
      cut = false;
    },
    freeze: () => {
      frozen = true;
      for (const [client, upstream] of pairs) {
        client.unpipe(upstream);
        upstream.unpipe(client);
        client.pause();
        upstream.pause();
      }
    },
    thaw: () => {
      frozen = false;
      for (const [client, upstream] of pairs) {
        client.pipe(upstream);
        upstream.pipe(client);
      }
    },
    close: () =>
      new Promise<void>((resolve) => {
        destroyAll();
        server.close(() => resolve());
      }),
  };
}
