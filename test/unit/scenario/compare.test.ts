import { describe, expect, test } from 'vitest';
import {
  type CellRunner,
  COST_TABLE_NS,
  INVARIANTS,
  NO_COSTS,
  passed,
  type ScenarioRef,
} from '../../../src/scenario/cell.ts';
import {
  type CompareProgress,
  planCells,
  resultsDocument,
  runCells,
  runCellsSequential,
} from '../../../src/scenario/compare.ts';
import { checkScenario } from '../../../src/scenario/parse.ts';

function ref(name: string, msis: number, triggers: number, seed = 3): ScenarioRef {
  const scenario = checkScenario({
    name,
    vcpus: 2,
    devices: [{ name: 'd', msis }],
    workload: { triggers, streams: [{ device: 'd', rate: 1e6 }] },
    options: { seed },
  });
  return { name, file: `${name}.yaml`, scenario };
}

const a = ref('a', 4, 300);
const b = ref('b', 8, 400, 9);

describe('planCells', () => {
  test('scenarios outer, designs inner; --seed overrides, else each scenario’s own seed', () => {
    const p = planCells([a, b], ['x', 'y']);
    expect(p.map((c) => `${c.scenario.name}/${c.design}/${c.seed}`)).toEqual([
      'a/x/3',
      'a/y/3',
      'b/x/9',
      'b/y/9',
    ]);
    expect(planCells([a, b], ['x'], 42).map((c) => c.seed)).toEqual([42, 42]);
  });
});

describe('running cells', () => {
  test('sequential: a custom runner, results in plan order, one progress call per cell', () => {
    const seen: string[] = [];
    const fake: CellRunner = (s, design, seed) => {
      seen.push(`${s.name}/${design}/${seed}`);
      return {
        scenario: s.name,
        design,
        seed,
        invariants: Object.fromEntries(INVARIANTS.map((i) => [i, passed()])) as never,
        costs: { ...NO_COSTS, vmmExits: seed, modeledTimeNs: 0 },
        series: [],
        notes: [],
      };
    };
    const progress: CompareProgress[] = [];
    const out = runCellsSequential(planCells([a, b], ['x', 'y'], 7), fake, (p) => progress.push(p));
    expect(seen).toEqual(['a/x/7', 'a/y/7', 'b/x/7', 'b/y/7']);
    expect(out.map((c) => `${c.scenario}/${c.design}`)).toEqual(['a/x', 'a/y', 'b/x', 'b/y']);
    expect(progress.map((p) => [p.done, p.total, p.scenario, p.design, p.violations])).toEqual([
      [1, 4, 'a', 'x', 0],
      [2, 4, 'a', 'y', 0],
      [3, 4, 'b', 'x', 0],
      [4, 4, 'b', 'y', 0],
    ]);
  });

  test('2 worker threads give the same results as this thread, in plan order (emulated)', async () => {
    const plan = planCells([a, b, ref('c', 2, 200)], ['emulated'], 11);
    const seq = await runCells(plan, { jobs: 1 });
    const progress: CompareProgress[] = [];
    const par = await runCells(plan, { jobs: 2, onProgress: (p) => progress.push(p) });
    expect(JSON.stringify(par)).toBe(JSON.stringify(seq));
    expect(par.map((c) => c.scenario)).toEqual(['a', 'b', 'c']);
    expect(progress.map((p) => p.done)).toEqual([1, 2, 3]);
    expect(new Set(progress.map((p) => p.scenario))).toEqual(new Set(['a', 'b', 'c']));
  });

  test('a worker reports an unknown design as an error naming the cell', async () => {
    const plan = planCells([a, b], ['no-such'], 1);
    await expect(runCells(plan, { jobs: 2 })).rejects.toThrow(/^[ab] × no-such: unknown design "no-such"/);
  });
});

describe('resultsDocument', () => {
  test('carries the cost table, the seed and the row/column order', () => {
    const d = resultsDocument([], ['emulated'], ['a'], null);
    expect(d).toEqual({
      tool: 'xivelab',
      version: 1,
      seed: null,
      designs: ['emulated'],
      scenarios: ['a'],
      costTable: COST_TABLE_NS, // its values: cell.test.ts
      cells: [],
    });
  });
});
