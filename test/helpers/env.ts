import type { TestContext } from "node:test";

/**
 * A test that cannot run here (no server binary, no MONGODB_URI) says so loudly. Under
 * CI=true that is a failure, never a quiet pass.
 */
export function skipOrFail(t: TestContext, reason: string): void {
  if (process.env.CI === "true")
    throw new Error(`required under CI=true but unavailable: ${reason}`);
  process.stderr.write(`\n!!! SKIPPED: ${reason}\n`);
  t.skip(reason);
}
