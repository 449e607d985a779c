import { describe, expect, test } from 'vitest';
import type { TraceEvent } from '../../../src/sim/trace.ts';
import { TraceColumns } from '../../../src/sim/trace-columns.ts';
import { formatRoute, parseRoute } from '../../../web/src/route.ts';
import { operationStep } from '../../../web/src/stepping.ts';

const at = (time: number, seq: number): TraceEvent => ({ seq, time, cat: 0, kind: 'k', args: [0, 0, 0, 0] });

describe('operation stepping', () => {
  // Three operations: t=10 (steps 0-2), t=20 (3-4), t=30 (5).
  const ev = TraceColumns.of([at(10, 0), at(10, 1), at(10, 2), at(20, 3), at(20, 4), at(30, 5)]);
  test('forward: the first event at the next virtual time; the last event stays', () => {
    expect(operationStep(ev, 0, 1, true)).toBe(3);
    expect(operationStep(ev, 1, 1, true)).toBe(3);
    expect(operationStep(ev, 3, 1, true)).toBe(5);
    expect(operationStep(ev, 5, 1, true)).toBe(5);
  });
  test('back: the first event of the previous operation; the first event stays', () => {
    expect(operationStep(ev, 5, -1, true)).toBe(3);
    expect(operationStep(ev, 4, -1, true)).toBe(0);
    expect(operationStep(ev, 0, -1, true)).toBe(0);
  });
  test('without a clock: 10 events, clamped', () => {
    const flat = TraceColumns.of(Array.from({ length: 25 }, (_, i) => at(0, i)));
    expect(operationStep(flat, 3, 1, false)).toBe(13);
    expect(operationStep(flat, 20, 1, false)).toBe(24);
    expect(operationStep(flat, 3, -1, false)).toBe(0);
  });
});

describe('deep links', () => {
  test('a cell and a step, both ways', () => {
    expect(parseRoute('#cell=pt-split-vma/vma-walk&step=812')).toEqual({
      cell: { scenario: 'pt-split-vma', design: 'vma-walk' },
      race: null,
      step: 812,
    });
    expect(
      formatRoute({ cell: { scenario: 'pt-split-vma', design: 'vma-walk' }, race: null, step: 812 }),
    ).toBe('#cell=pt-split-vma/vma-walk&step=812');
    expect(formatRoute({ cell: null, race: null, step: 3 })).toBe('#step=3');
    expect(formatRoute({ cell: null, race: null, step: null })).toBe('');
  });
  test("a report's race counterexample: a file name under traces/, nothing else", () => {
    const race = 'race--s12-fault-vs-bind--rmap.trace.json';
    expect(parseRoute(`#race=${race}&step=13`)).toEqual({ cell: null, race, step: 13 });
    expect(formatRoute({ cell: null, race, step: 13 })).toBe(`#race=${race}&step=13`);
    expect(parseRoute('#race=../results.json').race).toBeNull();
    expect(parseRoute('#race=.hidden').race).toBeNull();
    expect(parseRoute('#race=a%2Fb.json').race).toBeNull();
  });
  test('a bad step or a cell without a design is ignored', () => {
    expect(parseRoute('#cell=nodesign&step=x1')).toEqual({ cell: null, race: null, step: null });
    expect(parseRoute('')).toEqual({ cell: null, race: null, step: null });
  });
});
