/** Keyboard stepping through a run's events. */

import type { TraceColumns } from '../../src/sim/trace-columns.ts';

/** Events a shift+arrow moves in a run without a clock. */
const UNTIMED_STEP = 10;

/**
 * The step one operation away from `k`: the next event at another virtual time (the first event
 * of the previous operation going back); in a run without a clock, {@link UNTIMED_STEP} events.
 */
export function operationStep(events: TraceColumns, k: number, dir: 1 | -1, timed: boolean): number {
  if (!timed) return Math.max(0, Math.min(events.length - 1, k + dir * UNTIMED_STEP));
  const time = events.time;
  const t = time[k];
  let i = k + dir;
  while (i >= 0 && i < events.length && time[i] === t) i += dir;
  if (dir === -1 && i >= 0) {
    // to the first event of the previous operation
    const t0 = time[i];
    while (i > 0 && time[i - 1] === t0) i--;
  }
  return Math.max(0, Math.min(events.length - 1, i));
}
