/**
 * The races part of `xivelab compare`: every built-in race scenario (`scenarios/races/`) under
 * each of its designs, explored exhaustively (DPOR), as rows of race scenario × design → verdict,
 * executions, distinct traces and the shortest counterexample, whose Chrome trace (one track per
 * thread, one slice per step) the report links under `traces/`.
 */

import { z } from 'zod';
import { builtinRaceNames, loadRaceScenario } from '../../scenario/race-load.ts';
import type { RaceScenario } from '../../scenario/race-schema.ts';
import { explore } from './explore.ts';
import { kernelRaceProgram, raceDesigns } from './kernel/race-program.ts';
import type { Counterexample } from './recorder.ts';

/** One race scenario × design of results.json. */
export const RaceRow = z.strictObject({
  scenario: z.string(),
  summary: z.string(),
  design: z.string().describe('a race design: a registered design or a variant with flags'),
  verdict: z.enum(['violation', 'exhausted', 'none-within-bound', 'none-within-budget']),
  executions: z.int().min(0),
  traces: z.int().min(0).describe('distinct Mazurkiewicz traces'),
  counterexample: z
    .strictObject({
      kind: z.enum(['violation', 'deadlock', 'exception', 'livelock']),
      message: z.string(),
      schedule: z.string().describe('thread ids per step, as `xivelab explore --replay` takes them'),
      preemptions: z.int().min(0),
      steps: z.int().min(1),
      trace: z.string().describe('Chrome trace file under traces/'),
    })
    .nullable()
    .describe('the shortest one found (fewest steps, then fewest preemptions), or null'),
});
export type RaceRow = z.output<typeof RaceRow>;

/** The rows and the Chrome trace of each counterexample, by file name. */
export interface RaceTable {
  readonly rows: RaceRow[];
  readonly traces: Map<string, object>;
}

/** Explore every built-in race scenario × design (exhaustive DPOR, each scenario's bound). */
export function exploreBuiltinRaces(): RaceTable {
  const rows: RaceRow[] = [];
  const traces = new Map<string, object>();
  for (const name of builtinRaceNames()) {
    const s = loadRaceScenario(name).scenario;
    for (const d of raceDesigns(s)) {
      const r = explore(kernelRaceProgram(s, d), { bound: s.bound });
      const c = r.shortest;
      let counterexample: RaceRow['counterexample'] = null;
      if (c !== null && c.kind !== 'ok') {
        const file = `race-${s.name}-${d.name}.json`;
        traces.set(file, counterexampleTrace(s, d.name, c));
        counterexample = {
          kind: c.kind,
          message: c.message,
          schedule: c.schedule,
          preemptions: c.preemptions,
          steps: c.steps.length,
          trace: file,
        };
      }
      rows.push({
        scenario: s.name,
        summary: s.summary,
        design: d.name,
        verdict: r.verdict,
        executions: r.executions,
        traces: r.traces,
        counterexample,
      });
    }
  }
  return { rows, traces };
}

/** Chrome trace-event JSON of a counterexample: one track per thread, one slice per step. */
export function counterexampleTrace(s: RaceScenario, design: string, c: Counterexample): object {
  const events: object[] = s.threads.map((t, i) => ({
    name: 'thread_name',
    ph: 'M',
    pid: 1,
    tid: i,
    args: { name: t.name },
  }));
  c.steps.forEach((st, i) => {
    events.push({
      name: st.label,
      ph: 'X',
      ts: i * 10,
      dur: 10,
      pid: 1,
      tid: st.thread,
      args: { effect: st.effect, step: i + 1 },
    });
  });
  return {
    traceEvents: events,
    metadata: { scenario: s.name, design, kind: c.kind, message: c.message, schedule: c.schedule },
  };
}
