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

/**
 * Run a step generator to its end sequentially, as a plain call does: nothing else runs, so a
 * step that cannot run waits on a lock nobody will drop (a model bug: it throws).
 */
export function runSteps<T>(g: Generator<AtomicStep, T, void>): T {
  for (let r = g.next(); ; r = g.next()) {
    if (r.done) return r.value;
    const ready = r.value.ready;
    if (ready !== null && !ready()) throw new Error(`"${r.value.label}" waits forever`);
  }
}

/** The device file's reverse map (`i_mmap`): which VMAs a file-offset zap reaches. */
export const FILE_IMAP = 'file.i_mmap';
/** The MMU notifiers' invalidation state of the VMM's mm (`kvm->mmu_notifier_seq` / `_count`). */
export const MMU_NOTIFIERS = 'mm.mmu_notifiers';

/** Every PTE, in any process, that maps page `pgoff` of the (device) file. */
export function filePteObj(pgoff: number): string {
  return `pte:file-page-${pgoff}`;
}

/** `mmap_lock` of process `pid`. */
export function mmapLockObj(pid: number): string {
  return `lock:mmap_lock:${pid}`;
}

/** The VMA tree of process `pid`. */
export function vmasObj(pid: number): string {
  return `vmas:${pid}`;
}

/** The partition-scoped entry of guest frame `gfn` of VM `lpid`. */
export function partitionEntryObj(lpid: number, gfn: number): string {
  return `pt:${lpid}:${gfn}`;
}
