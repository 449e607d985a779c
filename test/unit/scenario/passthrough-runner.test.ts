/**
 * The passthrough runner's memslot series under option 2 (overlap-regions): the slots in use as
 * functions are bound, and past the KVM memslot limit, where binds are refused, the slots the
 * VM would need for every vector asked for — the curve goes on past the limit.
 */
import { describe, expect, test } from 'vitest';
import { overlapRegions } from '../../../src/designs/overlap-regions.ts';
import { rmap } from '../../../src/designs/rmap.ts';
import { SERIES } from '../../../src/scenario/cell.ts';
import { parseScenario } from '../../../src/scenario/parse.ts';
import { runPassthrough } from '../../../src/scenario/passthrough-runner.ts';

/** Six functions of 8 vectors each; KVM with 30 memslots (RAM, ESB and TIMA take 3). */
const scenario = parseScenario(
  [
    'name: pt-memslot-limit',
    'vcpus: 2',
    'devices:',
    ...[0, 1, 2, 3, 4, 5].map((i) => `  - {name: fn${i}, msis: 8}`),
    'passthrough:',
    '  devices: [fn0, fn1, fn2, fn3, fn4, fn5]',
    '  cycles: 1',
    '  msisPerCycle: 12',
    '  maxMemslots: 30',
    'workload: {triggers: 4}',
  ].join('\n'),
  'pt-memslot-limit.yaml',
);

const points = (r: ReturnType<typeof runPassthrough>, name: string) =>
  r.series.find((s) => s.name === name)!.points;

describe('memslots vs vectors bound, up to and past the memslot limit', () => {
  const run = runPassthrough(scenario, overlapRegions, 1);

  test('in use: 8 contiguous irqs per function split the ESB slot into one more piece each (3 + 1 + 8k)', () => {
    expect(points(run, SERIES.memslotsVsVectors)).toEqual([
      [8, 12],
      [16, 20],
      [24, 28],
    ]);
  });

  test('refused: the slots the VM would need for every vector asked for, past the limit, sorted by x', () => {
    const wanted = points(run, SERIES.memslotsWantedVsVectors);
    expect(wanted).toEqual([
      [32, 36],
      [40, 44],
      [48, 52],
    ]);
    expect(wanted.every(([, y]) => y > 30)).toBe(true);
    expect(wanted.map(([x]) => x)).toEqual([...wanted.map(([x]) => x)].sort((a, b) => a - b));
    expect(run.violations.I7.map((v) => v.message)).toEqual([
      'fn3: passthrough set-up failed: -28 (the VM would need 36 memslots, KVM has 30) (cycle 0, seed 1)',
      'fn4: passthrough set-up failed: -28 (the VM would need 44 memslots, KVM has 30) (cycle 0, seed 1)',
      'fn5: passthrough set-up failed: -28 (the VM would need 52 memslots, KVM has 30) (cycle 0, seed 1)',
    ]);
  });

  test('a design whose binds cost no memslot has no refused point', () => {
    const r = runPassthrough(scenario, rmap, 1);
    expect(points(r, SERIES.memslotsVsVectors).map(([, y]) => y)).toEqual([3, 3, 3, 3, 3, 3]);
    expect(points(r, SERIES.memslotsWantedVsVectors)).toEqual([]);
  });
});
