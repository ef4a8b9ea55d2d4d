import { VirtualClock } from "../../src/testing/virtual-clock.js";

export { settle } from "../../src/testing/virtual-clock.js";

/**
 * A monotonic clock that moves only when the test says so: the test kit's VirtualClock,
 * whose `advance` here jumps (every timer due fires late, together, as a paused process
 * sees it) and takes milliseconds as a number.
 */
export class FakeClock extends VirtualClock {
  /** Moves time forward by `ms` (or `ns` when a bigint) in one jump; see VirtualClock.jump. */
  override advance(by: number | bigint): Promise<void> {
    return this.jump(typeof by === "bigint" ? by : BigInt(Math.round(by * 1e6)));
  }

  /** Moves forward in small ticks, firing each timer at (about) its own deadline. */
  async run(totalMs: number, tickMs = 10): Promise<void> {
    for (let t = 0; t < totalMs; t += tickMs) await this.advance(tickMs);
  }
}
