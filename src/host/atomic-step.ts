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
 *
 * The text (label, object names, effect) is only read by the explorer and by error messages, so
 * the steps of hot paths (a guest's partition-scoped fault, run a million times at set-up) are
 * subclasses that keep the numbers their text is made of and format it on first read: the
 * sequential call builds no string and no array. A sequential driver ({@link driveSteps}) drops
 * each step once the next is announced, so while one runs those subclasses hand out recycled
 * instances ({@link StepPool}) rather than new ones: the sequential call allocates no step. It
 * reads nothing of a step but whether it can run and, when it cannot, its label; so a recycled
 * instance caches no text and records no effect (forgetting and storing them again cost a full
 * VM's million ESB faults about 80 ms).
 *
 * A sequential driver only acts on a step that cannot run (it reports it stuck); one that can
 * run it just resumes past. So a kernel path yields a step only when {@link mustYield} says so:
 * always for the explorer, and under a sequential driver only a step that cannot run. The
 * sequential call then runs its generators straight through: each announced step would cost a
 * resume of every generator delegating to it (`yield*`), most of a partition-scoped fault's time
 * when a full VM faults in a million ESB pages.
 */

/** No objects. */
const NONE: readonly string[] = Object.freeze([]);

/** Formats a step's effect from the numbers the thread recorded ({@link AtomicStep.explain}). */
export type EffectFormat = (n: number, m: number) => string;

/**
 * Sequential drivers ({@link driveSteps}) running. Nobody keeps the steps they are handed (each is
 * checked once, then dropped), so while one runs the hot paths' step classes reuse one instance
 * per kind; anything else that drives a step generator (the explorer, a test stepping by hand)
 * runs outside every sequential driver and gets new steps it may keep.
 */
let sequentialDrivers = 0;

/** One atomic step, announced before it runs. */
export class AtomicStep {
  private text: string | null;
  private readList: readonly string[] | null;
  private writeList: readonly string[] | null;
  private readonly readyFn: (() => boolean) | null;
  private effectText: string;
  private effectFormat: EffectFormat | null;
  private effectN: number;
  private effectM: number;
  /**
   * A recycled instance ({@link StepPool}): it caches no text and records no effect, as nobody
   * reads them (a sequential driver reads a step's `canRun`, and its `label` when it is stuck).
   */
  private recycled: boolean;

  /**
   * `label`: what the thread does; `reads` / `writes`: the shared objects (names such as
   * `pte:p0:0x20000`, `irq5.pt_data`, `lock:sb0`); `ready`: null (always runnable) or what must
   * hold for the step to run. A subclass passes nothing and describes itself instead.
   */
  constructor(
    label: string | null = null,
    reads: readonly string[] | null = null,
    writes: readonly string[] | null = null,
    ready: (() => boolean) | null = null,
  ) {
    this.text = label;
    this.readList = reads;
    this.writeList = writes;
    this.readyFn = ready;
    this.effectText = '';
    this.effectFormat = null;
    this.effectN = 0;
    this.effectM = 0;
    this.recycled = false;
  }

  /** What the thread does, for counterexamples (`take sb->lock`, `select irq 5`). */
  get label(): string {
    if (this.recycled) return this.describe();
    this.text ??= this.describe();
    return this.text;
  }

  /** Shared objects read. */
  get reads(): readonly string[] {
    if (this.recycled) return this.describeReads();
    this.readList ??= this.describeReads();
    return this.readList;
  }

  /** Shared objects written. */
  get writes(): readonly string[] {
    if (this.recycled) return this.describeWrites();
    this.writeList ??= this.describeWrites();
    return this.writeList;
  }

  /**
   * Whether the step can run now: the `ready` the step was made with (none: always), or a
   * subclass's own condition; the thread is blocked while this returns false.
   */
  canRun(): boolean {
    return this.readyFn === null || this.readyFn();
  }

  /** What the step changed, filled in by the thread while it runs (counterexample text). */
  get effect(): string {
    if (this.effectFormat !== null) {
      this.effectText = this.effectFormat(this.effectN, this.effectM);
      this.effectFormat = null;
    }
    return this.effectText;
  }

  set effect(text: string) {
    if (this.recycled) return;
    this.effectText = text;
    this.effectFormat = null;
  }

  /** Set the effect to `format(n, m)`, formatted when someone reads it. */
  explain(format: EffectFormat, n: number, m = 0): void {
    if (this.recycled) return;
    this.effectFormat = format;
    this.effectN = n;
    this.effectM = m;
  }

  /** Make this a recycled instance ({@link StepPool.keep}). */
  markRecycled(): void {
    this.recycled = true;
  }

  /** The label of a subclass that passed none to the constructor. */
  protected describe(): string {
    return '';
  }

  /** The objects read, of a subclass that passed none. */
  protected describeReads(): readonly string[] {
    return NONE;
  }

  /** The objects written, of a subclass that passed none. */
  protected describeWrites(): readonly string[] {
    return NONE;
  }
}

/** The plain twin of a step generator (see {@link driveSteps}). */
export type PlainTwin<T> = (this: unknown, a?: unknown, b?: unknown, c?: unknown, d?: unknown) => T;

/**
 * Run a step generator to its end sequentially, as a plain call does: nothing else runs, so a
 * step that cannot run waits on a lock nobody will drop; the call returns what `stuck` makes of
 * that step (the generator is left where it stopped). Its steps may be recycled
 * ({@link StepPool}).
 *
 * `g` may also be a generator's plain twin, called on `self` with arguments `a` … `d`: the build
 * derives a `fooPlain` from each step generator `fooSteps` and turns
 * `driveSteps(x.fooSteps(a, b), stuck)` into `driveSteps(x.fooPlain, stuck, x, a, b)`
 * (scripts/plain-twins.mjs). The twin does what the generator does without suspending; where the
 * generator would yield a step that cannot run, the twin throws it, and the call returns what
 * `stuck` makes of it.
 */
export function driveSteps<T>(
  g: Generator<AtomicStep, T, void> | PlainTwin<T>,
  stuck: (step: AtomicStep) => T,
  self?: unknown,
  a?: unknown,
  b?: unknown,
  c?: unknown,
  d?: unknown,
): T {
  sequentialDrivers++;
  try {
    if (typeof g === 'function') return g.call(self, a, b, c, d);
    for (let r = g.next(); ; r = g.next()) {
      if (r.done) return r.value;
      if (!r.value.canRun()) return stuck(r.value);
    }
  } catch (e) {
    if (e instanceof AtomicStep && typeof g === 'function') return stuck(e);
    throw e;
  } finally {
    sequentialDrivers--;
  }
}

/**
 * Whether a sequential driver runs ({@link driveSteps}): the objects a path hands down may be
 * reused then, as the driver keeps none ({@link StepPool}, the step-wise faults' `VmFault`).
 */
export function sequentialDriverRuns(): boolean {
  return sequentialDrivers > 0;
}

/**
 * Whether a kernel path must announce `step` (`if (mustYield(step)) yield step;`): always,
 * unless a sequential driver runs and the step can run, where the driver would resume past it.
 */
export function mustYield(step: AtomicStep): boolean {
  return sequentialDrivers === 0 || !step.canRun();
}

/** {@link driveSteps}'s `stuck` where a step that cannot run is a model bug: it throws. */
export function waitsForever(step: AtomicStep): never {
  throw new Error(`"${step.label}" waits forever`);
}

/**
 * One recycled instance per kind of a hot path's step class: while a sequential driver runs
 * ({@link driveSteps}), `of(kind, …)` takes the instance of that kind and sets its numbers;
 * otherwise (or the first time) it makes a new step and {@link keep}s it.
 */
export class StepPool<S extends AtomicStep> {
  private readonly steps: (S | undefined)[] = [];

  /** The instance of `kind` to set up again (it keeps no text); null: make a new step. */
  take(kind: number): S | null {
    const s = sequentialDriverRuns() ? this.steps[kind] : undefined;
    return s === undefined ? null : s;
  }

  /** A new step of `kind`, kept for recycling when a sequential driver made it. */
  keep(kind: number, s: S): S {
    if (sequentialDriverRuns()) {
      s.markRecycled();
      this.steps[kind] = s;
    }
    return s;
  }
}

/** The effect `pfn 0x…`. */
export const pfnEffect: EffectFormat = (pfn) => `pfn 0x${pfn.toString(16)}`;

/** The device file's reverse map (`i_mmap`): which VMAs a file-offset zap reaches. */
export const FILE_IMAP = 'file.i_mmap';
/** The MMU notifiers' invalidation state of the VMM's mm (`kvm->mmu_notifier_seq` / `_count`). */
export const MMU_NOTIFIERS = 'mm.mmu_notifiers';

/** Every PTE, in any process, that maps page `pgoff` of the (device) file. */
export function filePteObj(pgoff: number): string {
  return `pte:file-page-${pgoff}`;
}

/**
 * The PTE of virtual page `vpn` of process `pid`: {@link filePteObj} when a file's page `pgoff`
 * (≥ 0) is mapped there (a zap through the file's reverse map writes the same name).
 */
export function pteObj(pid: number, vpn: number, pgoff: number): string {
  return pgoff >= 0 ? filePteObj(pgoff) : `pte:${pid}:${vpn}`;
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
