/**
 * The explorer's entry points: {@link explore} a {@link RaceProgram} with a strategy (exhaustive
 * DPOR, PCT or uniform random) and summarise what it found; {@link replay} one schedule exactly.
 */

import { Rng } from '../../sim/rng.ts';
import { exploreDpor } from './dpor.ts';
import { pctChooser, uniformChooser } from './randomized.ts';
import { type Counterexample, describeExecution, Recorder } from './recorder.ts';
import { type Chooser, runOne } from './run-one.ts';
import { ScheduleError } from './schedule.ts';
import type { RaceProgram } from './step.ts';

export const STRATEGIES = ['dpor', 'pct', 'random'] as const;
export type Strategy = (typeof STRATEGIES)[number];

export interface ExploreOptions {
  readonly strategy: Strategy;
  /** DPOR: preemption bound (null: none). */
  readonly bound: number | null;
  /** PCT / random: executions to run; DPOR: cap on executions. */
  readonly runs: number;
  readonly seed: number;
  /** PCT bug depth d (priority change points + 1). */
  readonly depth: number;
  /** Livelock guard: steps per execution. */
  readonly maxSteps: number;
  /** Milliseconds clock (injected; the core never reads the time itself). */
  readonly now: () => number;
}

export const EXPLORE_DEFAULTS: ExploreOptions = {
  strategy: 'dpor',
  bound: null,
  runs: 1_000_000,
  seed: 1,
  depth: 3,
  maxSteps: 10_000,
  now: () => 0,
};

/**
 * - `violation`: some execution failed (see the counterexample);
 * - `exhausted`: DPOR covered every schedule, no failure;
 * - `none-within-bound`: DPOR covered every schedule up to the preemption bound;
 * - `none-within-budget`: the run budget ran out (random strategies, or DPOR's cap).
 */
export type Verdict = 'violation' | 'exhausted' | 'none-within-bound' | 'none-within-budget';

export interface ExploreReport {
  readonly strategy: Strategy;
  readonly verdict: Verdict;
  readonly executions: number;
  /** Executions that ran to the end (DPOR also counts the ones a sleep set cut). */
  readonly complete: number;
  readonly redundant: number;
  /** Distinct Mazurkiewicz traces among the complete executions. */
  readonly traces: number;
  readonly failures: number;
  /** Naive interleaving count ({@link Recorder.naiveInterleavings}). */
  readonly naive: number;
  /** naive / executions. */
  readonly reduction: number;
  /** Execution number of the first failure (−1: none) and the time it took (ms). */
  readonly firstFailureAt: number;
  readonly firstFailureMs: number;
  readonly elapsedMs: number;
  readonly shortest: Counterexample | null;
}

export function explore<W>(program: RaceProgram<W>, options: Partial<ExploreOptions> = {}): ExploreReport {
  const o: ExploreOptions = { ...EXPLORE_DEFAULTS, ...options };
  if (o.strategy === 'dpor') {
    const r = exploreDpor(program, {
      bound: o.bound,
      maxExecutions: o.runs,
      maxSteps: o.maxSteps,
      now: o.now,
    });
    const rec = r.recorder;
    const verdict: Verdict =
      rec.failures > 0
        ? 'violation'
        : r.truncated
          ? 'none-within-budget'
          : r.boundHit
            ? 'none-within-bound'
            : 'exhausted';
    return summary(o.strategy, verdict, rec);
  }
  const rec = new Recorder(program, o.now);
  const rng = new Rng(o.seed);
  let k = 0;
  for (let run = 0; run < o.runs; run++) {
    // PCT needs the execution length k: the first run is non-preemptive and measures it.
    const choose: Chooser =
      o.strategy === 'random'
        ? uniformChooser(rng)
        : run === 0
          ? (enabled, _step, prev) => (enabled.includes(prev) ? prev : enabled[0]!)
          : pctChooser(rng, program.threads.length, k, o.depth);
    const one = runOne(program, choose, o.maxSteps);
    k = Math.max(k, one.schedule.length);
    rec.record(one.ex, one.schedule, one.preemptions, one.outcome);
  }
  return summary(o.strategy, rec.failures > 0 ? 'violation' : 'none-within-budget', rec);
}

function summary<W>(strategy: Strategy, verdict: Verdict, rec: Recorder<W>): ExploreReport {
  const naive = rec.naiveInterleavings();
  return {
    strategy,
    verdict,
    executions: rec.executions,
    complete: rec.complete,
    redundant: rec.redundant,
    traces: rec.distinctTraces,
    failures: rec.failures,
    naive,
    reduction: rec.executions > 0 ? naive / rec.executions : 0,
    firstFailureAt: rec.firstFailureAt,
    firstFailureMs: rec.firstFailureMs,
    elapsedMs: rec.elapsedMs,
    shortest: rec.shortest,
  };
}

/**
 * Run `schedule` exactly (each id must name an enabled thread at its step); past its end the
 * execution continues without preemption (the previous thread, else the lowest enabled one).
 * @throws ScheduleError when a step names a thread that cannot run there.
 */
export function replay<W>(
  program: RaceProgram<W>,
  schedule: readonly number[],
  maxSteps = 10_000,
): Counterexample {
  const refuse = (step: number): ScheduleError => {
    const t = schedule[step]!;
    return new ScheduleError(
      `schedule step ${step + 1}: thread ${t} (${program.threads[t]}) cannot run there`,
    );
  };
  const choose: Chooser = (enabled, step, prev) => {
    if (step < schedule.length) {
      if (!enabled.includes(schedule[step]!)) throw refuse(step);
      return schedule[step]!;
    }
    return enabled.includes(prev) ? prev : enabled[0]!;
  };
  const one = runOne(program, choose, maxSteps);
  if (one.schedule.length < schedule.length) throw refuse(one.schedule.length);
  return describeExecution(program, one.ex, one.schedule, one.preemptions, one.outcome);
}
