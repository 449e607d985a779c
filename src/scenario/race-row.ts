/**
 * One row of the "Races" part of `xivelab compare`'s results.json: a built-in race scenario
 * (`scenarios/races/`) under one design, explored exhaustively — the verdict, executions,
 * distinct traces and the shortest counterexample with its Chrome trace under `traces/`.
 */

import { z } from 'zod';

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
      trace: z.string().describe('Chrome trace file under traces/, one track per thread'),
    })
    .nullable()
    .describe('the shortest one found (fewest steps, then fewest preemptions), or null'),
});
export type RaceRow = z.output<typeof RaceRow>;
