import { describe, expect, test } from 'vitest';
import { costsCsv } from '../../../src/report/csv.ts';
import { evaluateHypotheses } from '../../../src/report/hypotheses.ts';
import {
  appliesTo,
  designLine,
  failureCounts,
  groupNotes,
  matrix,
  matrixCell,
} from '../../../src/report/summary.ts';
import { cell } from './fixtures.ts';

const scenarios = ['s1', 's2', 's3'];

describe('matrix cells', () => {
  test('the colour is the most severe kind; the text lists every failing invariant', () => {
    expect(matrixCell(cell('d', 's', { inv: { I7: 2, I6: 1 } }))).toEqual({
      design: 'd',
      scenario: 's',
      failing: ['I6', 'I7'],
      kind: 'abi',
      text: 'I6 I7',
    });
    expect(matrixCell(cell('d', 's', { inv: { I4: 1, I2: 3 } })).kind).toBe('routing');
    expect(matrixCell(cell('d', 's', { inv: { I5: 1 } })).kind).toBe('delivery');
    expect(matrixCell(cell('d', 's', { inv: { I7: 1 } })).kind).toBe('resources');
  });
  test('pass and all-n/a cells', () => {
    expect(matrixCell(cell('d', 's')).text).toBe('pass');
    const na = cell('d', 's', {
      inv: { I1: 'n/a', I2: 'n/a', I3: 'n/a', I4: 'n/a', I5: 'n/a', I6: 'n/a', I7: 'n/a' },
    });
    expect(matrixCell(na)).toMatchObject({ kind: 'na', text: 'n/a', failing: [] });
  });
  test('designs across and scenarios down, in run order; a pair that did not run is undefined', () => {
    const m = matrix([cell('b', 's2'), cell('a', 's2'), cell('b', 's1')]);
    expect(m.designs).toEqual(['b', 'a']);
    expect(m.scenarios).toEqual(['s2', 's1']);
    expect(m.cell('a', 's1')).toBeUndefined();
    expect(m.cell('b', 's1')?.text).toBe('pass');
  });
});

describe('counts a reader counts', () => {
  const cells = [
    ...scenarios.map((s) =>
      cell('walk', s, { inv: s === 's2' ? { I1: 40, I2: 7 } : s === 's3' ? { I2: 3 } : {} }),
    ),
    ...scenarios.map((s) => cell('rmap', s)),
  ];
  test('failing cells, not violations', () => {
    const f = failureCounts(cells);
    expect(f.cells).toBe(6);
    expect(f.failingCells).toBe(2);
    expect(f.designs[0]).toEqual({
      design: 'walk',
      cells: 3,
      failingCells: 2,
      byInvariant: [
        { invariant: 'I1', scenarios: ['s2'] },
        { invariant: 'I2', scenarios: ['s2', 's3'] },
      ],
    });
  });
  test('one line per design', () => {
    const [walk, rmap] = failureCounts(cells).designs;
    expect(designLine(walk!)).toBe('fails in 2 of 3 scenarios: I1 in 1 scenario, I2 in 2');
    expect(designLine(rmap!)).toBe('holds in all 3 scenarios');
  });
});

describe('notes', () => {
  const cells = [
    cell('emulated', 's1', { notes: ['kernel_irqchip=off', 'only here'] }),
    cell('emulated', 's2', { notes: ['kernel_irqchip=off'] }),
    cell('rmap', 's1', { notes: ['probe note', 'probe note'] }),
    cell('rmap', 's2', { notes: ['probe note'] }),
    cell('walk', 's1', { notes: ['probe note'] }),
  ];
  test('a sentence written for several cells appears once, with where it applies', () => {
    const g = groupNotes(cells);
    expect(g.shared.map((s) => s.note)).toEqual(['kernel_irqchip=off', 'probe note']);
    expect(appliesTo(g.shared[0]!, cells)).toBe('every cell of emulated');
    expect(appliesTo(g.shared[1]!, cells)).toBe('every cell of rmap, walk');
    const partial = { note: 'probe note', cells: ['s1 × rmap', 's1 × walk'] };
    expect(appliesTo(partial, cells)).toBe('2 cells');
    expect(g.own).toEqual([{ cell: 's1 × emulated', notes: ['only here'] }]);
  });
  test('a note on every cell says so', () => {
    const all = [cell('a', 's1', { notes: ['x'] }), cell('b', 's1', { notes: ['x'] })];
    expect(appliesTo(groupNotes(all).shared[0]!, all)).toBe('every cell');
  });
});

describe('hypothesis headlines', () => {
  test('H6 supported next to rmap failing I4/I6 says why in the same sentence', () => {
    const cells = [
      ...scenarios.map((s) => cell('rmap', s, { inv: s === 's1' ? {} : { I4: 16, I6: 1 } })),
      ...scenarios.map((s) => cell('rmap-fixed', s)),
    ];
    const h6 = evaluateHypotheses(cells).find((h) => h.id === 'H6')!;
    expect(h6.verdict).toBe('supported');
    expect(h6.headline).toBe(
      "rmap kept I1–I3 in all 3 scenarios; its other failures are not the zap's: I4 and I6 in 2 scenarios are latent bugs (rmap-fixed, the same zap with them fixed, holds there)",
    );
  });
  test('H6 tells latent bugs from a limit rmap-fixed shares', () => {
    const cells = [
      cell('rmap', 's1', { inv: { I4: 2, I7: 1 } }),
      cell('rmap', 's2', { inv: { I4: 1 } }),
      cell('rmap-fixed', 's1', { inv: { I7: 1 } }),
      cell('rmap-fixed', 's2'),
    ];
    expect(evaluateHypotheses(cells).find((h) => h.id === 'H6')!.headline).toBe(
      "rmap kept I1–I3 in all 2 scenarios; its other failures are not the zap's: I4 in 2 scenarios are latent bugs (rmap-fixed, the same zap with them fixed, holds there); I7 in 1 scenario a limit rmap-fixed hits too",
    );
  });
  test('H3 names the peak and the scenarios over the limit', () => {
    const cells = [
      cell('overlap-regions', 's1', { costs: { memslotsPeak: 20 } }),
      cell('overlap-regions', 's2', { inv: { I7: 1 }, costs: { memslotsPeak: 512 } }),
    ];
    const h3 = evaluateHypotheses(cells).find((h) => h.id === 'H3')!;
    expect(h3.headline).toBe(
      'overlap-regions used up to 512 memslots and exceeded the limit (I7) in 1 of 2 scenarios',
    );
  });
});

describe('costs.csv', () => {
  test('one row per cell, every cost under its results.json name', () => {
    const csv = costsCsv([
      cell('rmap', 'a,b', { costs: { memslotsPeak: 3, hostFaults: 12, modeledTimeNs: 12000 } }),
    ]);
    expect(csv).toBe(
      'scenario,design,seed,memslotsPeak,memslotUpdates,vmasPeak,hostFaults,partitionFaults,ptesZapped,vmasVisited,vmmExits,hcalls,modeledTimeNs\n' +
        '"a,b",rmap,1,3,0,0,12,0,0,0,0,0,12000\n',
    );
  });
});
