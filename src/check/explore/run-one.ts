/**
 * Drive one execution to its end with a per-step chooser: the shared loop of the random
 * strategies and of replay. Counts preemptions (a switch away from a thread that could have
 * continued) and stops at the livelock guard.
 */

import { Execution } from './execution.ts';
import { type Outcome, outcomeOf } from './recorder.ts';
import type { RaceProgram } from './step.ts';

/** Picks the next thread from the enabled ones (never empty); `prev` ran the last step (−1). */
export type Chooser = (enabled: readonly number[], step: number, prev: number) => number;

export interface OneRun<W> {
  readonly ex: Execution<W>;
  readonly schedule: number[];
  readonly preemptions: number;
  readonly outcome: Outcome;
}

export function runOne<W>(program: RaceProgram<W>, choose: Chooser, maxSteps: number): OneRun<W> {
  for (;;) {
    const one = runOnce(program, choose, maxSteps);
    // A restore miss: the program has learned the object, run again.
    if (one.ex.end !== 'retry') return one;
  }
}

function runOnce<W>(program: RaceProgram<W>, choose: Chooser, maxSteps: number): OneRun<W> {
  const ex = new Execution(program);
  const schedule: number[] = [];
  let preemptions = 0;
  let prev = -1;
  const enabled: number[] = [];
  let livelock = false;
  while (ex.end === 'running' && !ex.finished()) {
    enabled.length = 0;
    for (let t = 0; t < ex.n; t++) if (ex.enabled(t)) enabled.push(t);
    if (enabled.length === 0) break;
    if (schedule.length >= maxSteps) {
      livelock = true;
      break;
    }
    const t = choose(enabled, schedule.length, prev);
    if (prev >= 0 && t !== prev && enabled.includes(prev)) preemptions++;
    schedule.push(t);
    ex.run(t);
    prev = t;
  }
  return { ex, schedule, preemptions, outcome: outcomeOf(program, ex, livelock) };
}
