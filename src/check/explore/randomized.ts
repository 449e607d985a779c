/**
 * PCT, probabilistic concurrency testing (Burckhardt, Kothari, Musuvathi, Nagarakatte, "A
 * randomized scheduler with probabilistic guarantees of finding bugs", ASPLOS 2010): random
 * distinct thread priorities, d − 1 random change points over the estimated execution length,
 * and at each step the highest-priority enabled thread runs. A bug of depth d is found in each
 * run with probability at least 1/(n·k^(d−1)).
 */

import type { Rng } from '../../sim/rng.ts';
import type { Chooser } from './run-one.ts';

/** The chooser of one PCT run of a program of `n` threads and about `k` steps, at depth `d`. */
export function pctChooser(rng: Rng, n: number, k: number, d: number): Chooser {
  // Initial priorities d .. d+n−1 in random order; change point j lowers to priority j.
  const prio = Array.from({ length: n }, (_, i) => d + i);
  for (let i = n - 1; i > 0; i--) {
    const j = rng.int(0, i);
    [prio[i], prio[j]] = [prio[j]!, prio[i]!];
  }
  const change = new Map<number, number>();
  for (let j = 1; j < d; j++) change.set(rng.int(0, Math.max(0, k - 1)), j);
  return (enabled, step) => {
    let best = highest(enabled, prio);
    const lowered = change.get(step);
    if (lowered !== undefined) {
      prio[best] = lowered;
      best = highest(enabled, prio);
    }
    return best;
  };
}

function highest(enabled: readonly number[], prio: readonly number[]): number {
  let best = enabled[0]!;
  for (const t of enabled) if (prio[t]! > prio[best]!) best = t;
  return best;
}

/** Uniform random scheduling: any enabled thread, equally likely, at every step. */
export function uniformChooser(rng: Rng): Chooser {
  return (enabled) => enabled[rng.index(enabled.length)]!;
}
