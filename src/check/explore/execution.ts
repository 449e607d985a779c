/**
 * One execution of a {@link RaceProgram}: the threads run one step at a time in the order a
 * strategy picks, and every step becomes an event with its vector clock (happens-before over
 * program order and footprint conflicts), so DPOR can find races and the explorer can name the
 * Mazurkiewicz trace an execution belongs to.
 */

import type { AtomicStep } from '../../host/atomic-step.ts';
import { dependent, type RaceProgram, type ThreadBody } from './step.ts';

/** One executed step. */
export interface ExecEvent {
  readonly thread: number;
  /** Index of this event among its thread's events. */
  readonly local: number;
  readonly step: AtomicStep;
  /** Vector clock: `vc[t]` = how many of thread t's events happen before or are this one. */
  readonly vc: Int32Array;
}

/** Per shared object: the last write and the reads after it (event indices). */
class ObjectAccess {
  lastWrite = -1;
  readsSince: number[] = [];
}

/** How an execution ended (`retry`: discarded, see {@link RaceProgram.restoreMiss}). */
export type ExecEnd = 'running' | 'complete' | 'deadlock' | 'exception' | 'livelock' | 'retry';

export class Execution<W> {
  readonly world: W;
  readonly n: number;
  readonly events: ExecEvent[] = [];
  /** The step each thread announced next, or null once it has finished. */
  readonly pending: (AtomicStep | null)[];
  /** Vector clock of each thread's last event. */
  readonly clocks: Int32Array[];
  end: ExecEnd = 'running';
  /** The exception text when {@link end} is `'exception'`. */
  error = '';
  private readonly bodies: ThreadBody[];
  private readonly objects = new Map<string, ObjectAccess>();
  private readonly program: RaceProgram<W>;

  constructor(program: RaceProgram<W>) {
    this.program = program;
    this.world = program.setup();
    this.n = program.threads.length;
    this.bodies = [];
    this.pending = [];
    this.clocks = [];
    for (let t = 0; t < this.n; t++) {
      const body = program.start(this.world, t);
      this.bodies.push(body);
      this.clocks.push(new Int32Array(this.n));
      this.pending.push(null);
      this.advance(t);
    }
  }

  /** Thread `t` can take its next step now. */
  enabled(t: number): boolean {
    const s = this.pending[t];
    return s?.canRun() ?? false;
  }

  /** Every thread has finished. */
  finished(): boolean {
    return this.pending.every((s) => s === null);
  }

  /** Run thread `t`'s announced step. */
  run(t: number): void {
    const step = this.pending[t]!;
    const vc = this.clocks[t]!.slice();
    for (const o of step.reads) {
      const a = this.objects.get(o);
      if (a !== undefined && a.lastWrite >= 0) join(vc, this.events[a.lastWrite]!.vc);
    }
    for (const o of step.writes) {
      const a = this.objects.get(o);
      if (a === undefined) continue;
      if (a.lastWrite >= 0) join(vc, this.events[a.lastWrite]!.vc);
      for (const r of a.readsSince) join(vc, this.events[r]!.vc);
    }
    const local = this.clocks[t]![t]!;
    vc[t] = local + 1;
    const idx = this.events.length;
    this.events.push({ thread: t, local, step, vc });
    this.clocks[t] = vc;
    for (const o of step.reads) this.access(o).readsSince.push(idx);
    for (const o of step.writes) {
      const a = this.access(o);
      a.lastWrite = idx;
      a.readsSince = [];
    }
    this.advance(t);
  }

  /** Resume thread `t` up to its next announced step. */
  private advance(t: number): void {
    try {
      const r = this.bodies[t]!.next();
      this.pending[t] = r.done ? null : r.value;
    } catch (e) {
      this.pending[t] = null;
      if (this.end !== 'running') return;
      if (this.program.restoreMiss?.(e)) {
        this.end = 'retry';
        return;
      }
      this.end = 'exception';
      this.error = e instanceof Error ? e.message : String(e);
    }
  }

  /** Event `i` happens before (or is) the last event of thread `t`. */
  happensBeforeThread(i: number, t: number): boolean {
    const e = this.events[i]!;
    return this.clocks[t]![e.thread]! > e.local;
  }

  /** Event `i` happens before event `j`. */
  happensBefore(i: number, j: number): boolean {
    const e = this.events[i]!;
    return this.events[j]!.vc[e.thread]! > e.local;
  }

  /**
   * The events in an immediate conflict with `step` (the last write of each object it touches,
   * and for a write the reads since), latest first.
   */
  conflicts(step: AtomicStep): number[] {
    const out: number[] = [];
    for (const o of step.reads) {
      const a = this.objects.get(o);
      if (a !== undefined && a.lastWrite >= 0) out.push(a.lastWrite);
    }
    for (const o of step.writes) {
      const a = this.objects.get(o);
      if (a === undefined) continue;
      if (a.lastWrite >= 0) out.push(a.lastWrite);
      for (const r of a.readsSince) out.push(r);
    }
    return out;
  }

  /**
   * The Mazurkiewicz trace of this execution: each thread's events with their vector clocks, so
   * two executions that differ only in the order of commuting steps get the same key.
   */
  traceKey(): string {
    const parts: string[][] = Array.from({ length: this.n }, () => []);
    for (const e of this.events) parts[e.thread]!.push(`${e.step.label}@${e.vc.join(',')}`);
    return parts.map((p) => p.join(';')).join('|');
  }

  /** Whether `a` conflicts with any event in `idx`. */
  conflictsWithAny(a: AtomicStep, idx: readonly number[]): boolean {
    for (const i of idx) if (dependent(a, this.events[i]!.step)) return true;
    return false;
  }

  private access(o: string): ObjectAccess {
    let a = this.objects.get(o);
    if (a === undefined) {
      a = new ObjectAccess();
      this.objects.set(o, a);
    }
    return a;
  }
}

function join(into: Int32Array, from: Int32Array): void {
  for (let i = 0; i < into.length; i++) if (from[i]! > into[i]!) into[i] = from[i]!;
}
