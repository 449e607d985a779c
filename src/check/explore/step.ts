/**
 * What an interleaving explorer needs from the code it schedules: threads as generators that
 * announce each atomic step (its label, the shared objects it reads and writes, and when it may
 * run) before they perform it.
 *
 * Protocol: a thread body `yield`s the {@link Step} it is about to take; resuming it performs
 * that step and runs up to the next `yield` (or the end). Code before the first `yield` must not
 * touch shared state. Two steps of different threads commute unless one writes an object the
 * other reads or writes; a lock is an object its acquire and release both write.
 */

/** One atomic step, announced before it runs. */
export class Step {
  /** What the thread does, for counterexamples (`take sb->lock`, `select irq 5`). */
  readonly label: string;
  /** Shared objects read (names such as `pte:p0:0x20000`, `irq5.pt_data`, `lock:sb0`). */
  readonly reads: readonly string[];
  /** Shared objects written. */
  readonly writes: readonly string[];
  /** `null`: always runnable; otherwise the thread is blocked while this returns false. */
  readonly ready: (() => boolean) | null;
  /** What the step changed, filled in by the thread while it runs (counterexample text). */
  effect = '';

  constructor(
    label: string,
    reads: readonly string[],
    writes: readonly string[],
    ready: (() => boolean) | null = null,
  ) {
    this.label = label;
    this.reads = reads;
    this.writes = writes;
    this.ready = ready;
  }
}

/** A thread: yields each step before taking it. */
export type ThreadBody = Generator<Step, void, void>;

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
}

/** Whether two steps conflict (one writes what the other reads or writes). */
export function dependent(a: Step, b: Step): boolean {
  for (const o of a.writes) if (b.writes.includes(o) || b.reads.includes(o)) return true;
  for (const o of b.writes) if (a.reads.includes(o)) return true;
  return false;
}
