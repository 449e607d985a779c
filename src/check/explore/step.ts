/**
 * What the interleaving explorer needs from the code it schedules: threads as generators of
 * {@link AtomicStep}s (the protocol is described there), and the checks on the state they leave.
 * Code before a thread's first `yield` must not touch shared state.
 */

import type { AtomicStep } from '../../host/atomic-step.ts';

/** A thread: yields each step before taking it. */
export type ThreadBody = Generator<AtomicStep, void, void>;

/** A closed program to explore: the threads and the checks on the state they leave. */
export interface RaceProgram<W> {
  /** Thread names, in thread-id order (schedule strings use these ids). */
  readonly threads: readonly string[];
  /** A fresh initial state; every execution starts from one. */
  setup(): W;
  /** Start thread `id` on `w`. */
  start(w: W, id: number): ThreadBody;
  /** The violated property at the end of a complete execution, or `null`. */
  check(w: W): string | null;
  /** A one-line digest of the state (replays must reproduce it). */
  digest(w: W): string;
  /**
   * `e`, thrown by a step, means the restore missed an object the step writes (the program
   * learns it): the execution is discarded and run again from a fresh {@link setup}.
   */
  restoreMiss?(e: unknown): boolean;
}

/** Whether two steps conflict (one writes what the other reads or writes). */
export function dependent(a: AtomicStep, b: AtomicStep): boolean {
  for (const o of a.writes) if (b.writes.includes(o) || b.reads.includes(o)) return true;
  for (const o of b.writes) if (a.reads.includes(o)) return true;
  return false;
}
