import { describe, expect, test } from 'vitest';
import type { TraceEvent } from '../../../src/sim/trace.ts';
import { fromColumns, toColumns } from '../../../src/sim/trace-columns.ts';

describe('trace columns', () => {
  const events: TraceEvent[] = [
    { seq: 7, time: 100, cat: 2, kind: 'esb.trigger', args: [0x21, 0, 2, 1] },
    { seq: 8, time: 100, cat: 4, kind: 'router.enqueue', args: [0, 0x38, 5, 0x8000_1001] },
    { seq: 9, time: 250.5, cat: 2, kind: 'esb.trigger', args: [0x22, 1, 3, 0] },
  ];

  test('each kind once, args flat, and back to the same events', () => {
    const c = toColumns(events);
    expect(c).toEqual({
      kinds: ['esb.trigger', 'router.enqueue'],
      seq: [7, 8, 9],
      time: [100, 100, 250.5],
      cat: [2, 4, 2],
      kind: [0, 1, 0],
      args: [0x21, 0, 2, 1, 0, 0x38, 5, 0x8000_1001, 0x22, 1, 3, 0],
    });
    expect(fromColumns(JSON.parse(JSON.stringify(c)))).toEqual(events);
  });
});
