/**
 * What an exploration found, execution by execution: how each one ended, the distinct
 * Mazurkiewicz traces, and the shortest counterexample (fewest steps, then fewest preemptions).
 */

import type { Execution } from './execution.ts';
import { formatSchedule } from './schedule.ts';
import type { RaceProgram } from './step.ts';

/** What went wrong in a counterexample. */
export type FailureKind = 'violation' | 'deadlock' | 'exception' | 'livelock';

/** One step of a counterexample. */
export interface CounterexampleStep {
  readonly thread: number;
  readonly threadName: string;
  readonly label: string;
  /** What the step changed ('' when nothing visible). */
  readonly effect: string;
}

/** An execution as a numbered step list, replayable from its schedule (a counterexample, or a replay). */
export interface Counterexample {
  readonly kind: FailureKind | 'ok';
  readonly message: string;
  /** Thread ids per step, as `--replay` takes them (`0.0.1.0`). */
  readonly schedule: string;
  readonly preemptions: number;
  readonly steps: readonly CounterexampleStep[];
  /** The state the execution left ({@link RaceProgram.digest}). */
  readonly digest: string;
}

/** How one execution ended, as the recorder classifies it. */
export interface Outcome {
  readonly kind: FailureKind | 'ok' | 'redundant';
  readonly message: string;
}

/**
 * Classify a finished execution: model exception, deadlock, livelock, a violated check, ok. The
 * message does not repeat the kind: every report prints it after the kind (`deadlock: fault
 * blocked at …`).
 */
export function outcomeOf<W>(program: RaceProgram<W>, ex: Execution<W>, livelock: boolean): Outcome {
  if (ex.end === 'exception') return { kind: 'exception', message: `the model threw: ${ex.error}` };
  if (livelock)
    return { kind: 'livelock', message: `no end after ${ex.events.length} steps (livelock guard)` };
  if (!ex.finished()) {
    const blocked: string[] = [];
    for (let t = 0; t < ex.n; t++) {
      const s = ex.pending[t];
      if (s) blocked.push(`${program.threads[t]} blocked at "${s.label}"`);
    }
    return { kind: 'deadlock', message: blocked.join(', ') };
  }
  const bad = program.check(ex.world);
  return bad === null ? { kind: 'ok', message: '' } : { kind: 'violation', message: bad };
}

/** An execution as a {@link Counterexample}. */
export function describeExecution<W>(
  program: RaceProgram<W>,
  ex: Execution<W>,
  schedule: readonly number[],
  preemptions: number,
  outcome: Outcome,
): Counterexample {
  return {
    kind: outcome.kind === 'redundant' ? 'ok' : outcome.kind,
    message: outcome.message,
    schedule: formatSchedule(schedule),
    preemptions,
    steps: ex.events.map((e) => ({
      thread: e.thread,
      threadName: program.threads[e.thread]!,
      label: e.step.label,
      effect: e.step.effect,
    })),
    digest: program.digest(ex.world),
  };
}

export class Recorder<W> {
  executions = 0;
  /** Executions that ran to the end (not cut by a sleep set or the preemption bound). */
  complete = 0;
  /** Executions DPOR cut because every enabled thread was asleep or beyond the bound. */
  redundant = 0;
  failures = 0;
  /** Execution count when the first failure was found (−1: none). */
  firstFailureAt = -1;
  firstFailureMs = -1;
  /** Per-thread step counts of the first complete execution that raised no exception. */
  stepCounts: number[] | null = null;
  shortest: Counterexample | null = null;
  private readonly traces = new Set<string>();
  private readonly program: RaceProgram<W>;
  private readonly now: () => number;
  private readonly t0: number;

  constructor(program: RaceProgram<W>, now: () => number) {
    this.program = program;
    this.now = now;
    this.t0 = now();
  }

  get distinctTraces(): number {
    return this.traces.size;
  }

  get elapsedMs(): number {
    return this.now() - this.t0;
  }

  /** Record one execution, its schedule and preemption count. */
  record(ex: Execution<W>, schedule: readonly number[], preemptions: number, outcome: Outcome): void {
    this.executions++;
    if (outcome.kind === 'redundant') {
      this.redundant++;
      return;
    }
    this.complete++;
    this.traces.add(ex.traceKey());
    if (this.stepCounts === null && outcome.kind !== 'exception') {
      const counts = new Array<number>(ex.n).fill(0);
      for (const e of ex.events) counts[e.thread]!++;
      this.stepCounts = counts;
    }
    if (outcome.kind === 'ok') return;
    this.failures++;
    if (this.firstFailureAt < 0) {
      this.firstFailureAt = this.executions;
      this.firstFailureMs = this.elapsedMs;
    }
    const s = this.shortest;
    if (
      s !== null &&
      (s.steps.length < schedule.length ||
        (s.steps.length === schedule.length && s.preemptions <= preemptions))
    )
      return;
    this.shortest = describeExecution(this.program, ex, schedule, preemptions, outcome);
  }

  /**
   * The number of interleavings a naive explorer would run: the multinomial of the threads' step
   * counts in the first complete execution (exact for programs without blocking or branching).
   */
  naiveInterleavings(): number {
    const c = this.stepCounts;
    if (c === null) return 0;
    let total = 0;
    let r = 1;
    for (const k of c) {
      for (let i = 1; i <= k; i++) r = (r * (total + i)) / i;
      total += k;
    }
    return Math.round(r);
  }
}
