/**
 * Growing pauses between reconnection attempts (a watch whose connection broke):
 * `initialMs`, doubling up to `maxMs`; `reset()` after a success.
 */
export class Backoff {
  readonly #initialMs: number;
  readonly #maxMs: number;
  #failures = 0;

  constructor(initialMs = 50, maxMs = 2000) {
    this.#initialMs = initialMs;
    this.#maxMs = maxMs;
  }

  /** The pause before the next attempt; each call doubles the one after. */
  next(): number {
    return Math.min(this.#maxMs, this.#initialMs * 2 ** Math.min(this.#failures++, 30));
  }

  reset(): void {
    this.#failures = 0;
  }
}
