/**
 * An atomic step of a kernel path, announced before it runs: what it does, the shared objects it
 * reads and writes, and when it can run. Kernel paths that can race (the ESB fault, set/clr_mapped,
 * the zap) are generators yielding these, so the sequential call and the interleaving explorer
 * (`src/check/explore/`) run the same code: the sequential call drives the generator to its end,
 * the explorer interleaves several.
 *
 * Protocol: `yield step` announces the step; resuming the generator performs it and runs up to the
 * next `yield`. Two steps of different threads commute unless one writes an object the other reads
 * or writes; a lock is an object its acquire and release both write.
 */

/** One atomic step, announced before it runs. */
export class AtomicStep {
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
