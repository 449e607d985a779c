/**
 * The races part of `xivelab compare`: every built-in race scenario (`scenarios/races/`) under
 * each of its designs, explored exhaustively (DPOR), as rows of race scenario × design → verdict,
 * executions, distinct traces and the shortest counterexample, whose Chrome trace (one track per
 * thread, one slice per step) the report links under `traces/`.
 */

import { explore } from '../check/explore/explore.ts';
import { kernelRaceProgram, raceDesigns } from '../check/explore/kernel/race-program.ts';
import type { RaceScenario } from '../check/explore/race-schema.ts';
import type { Counterexample } from '../check/explore/recorder.ts';
import { builtinRaceNames, loadRaceScenario } from './race-load.ts';
import type { RaceRow } from './race-row.ts';

export type { RaceRow };

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
        const file = `race--${s.name}--${d.name}.trace.json`;
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
  // Thread i is tid i + 1: Perfetto's JSON importer takes tid 0 for its idle thread.
  const events: object[] = [
    { name: 'process_name', ph: 'M', pid: 1, tid: 0, args: { name: `race ${s.name} × ${design}` } },
    ...s.threads.map((t, i) => ({
      name: 'thread_name',
      ph: 'M',
      pid: 1,
      tid: i + 1,
      args: { name: t.name },
    })),
  ];
  c.steps.forEach((st, i) => {
    events.push({
      name: st.label,
      ph: 'X',
      ts: i * 10,
      dur: 10,
      pid: 1,
      tid: st.thread + 1,
      args: { effect: st.effect, step: i + 1 },
    });
  });
  return {
    traceEvents: events,
    metadata: { scenario: s.name, design, kind: c.kind, message: c.message, schedule: c.schedule },
  };
}
