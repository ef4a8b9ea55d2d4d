import { randomBytes } from "node:crypto";
import { hostname } from "node:os";

/**
 * A holder identity unique to this process: host name, process id and a random part. The
 * first two alone repeat across containers (every container's first process is pid 1 on
 * a host often named alike), and two processes with one identity would each take the
 * other's claim for an extend of its own, and act on the lease at the same time.
 */
export function uniqueHolder(prefix = `${hostname()}:${process.pid}`): string {
  return `${prefix}:${randomBytes(4).toString("hex")}`;
}
