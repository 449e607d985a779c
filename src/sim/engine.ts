/**
 * The deterministic run loop over a {@link SimClock}: each step jumps to the next alarm time and
 * fires every alarm due then (events at the same virtual instant happen before anything reacts
 * to them), then lets the caller react (run vCPUs until quiescent). Nothing here reads the wall
 * clock or `Math.random`.
 */

import type { SimClock } from './clock.ts';

export class Engine {
  readonly clock: SimClock;
  /** Steps taken (virtual instants at which alarms fired). */
  steps: number;

  constructor(clock: SimClock) {
    this.clock = clock;
    this.steps = 0;
  }

  /**
   * Step until `stop()` is true or no alarm is left; `afterStep` runs after the alarms of each
   * instant have fired. Returns the number of steps taken by this call.
   */
  run(afterStep: () => void, stop: () => boolean): number {
    const first = this.steps;
    while (!stop()) {
      const t = this.clock.nextAt;
      if (t === Number.POSITIVE_INFINITY) break;
      this.clock.advanceTo(t);
      this.steps++;
      afterStep();
    }
    return this.steps - first;
  }
}
