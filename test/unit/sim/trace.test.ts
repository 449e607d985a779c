import { describe, expect, test } from 'vitest';
import { Trace } from '../../../src/sim/trace.ts';
import { TRACE_ESB, TRACE_ROUTER } from '../../../src/sim/trace-sink.ts';

describe('Trace.capture', () => {
  test('records one run into a fresh ring: the events still held, oldest first, and how many were overwritten', () => {
    const { events, dropped } = Trace.capture(
      TRACE_ESB,
      (t) => {
        for (let i = 0; i < 6; i++) t.emit(TRACE_ESB, 'esb.trigger', i, 0, 2, 1);
      },
      4,
    );
    expect(dropped).toBe(2);
    expect(events.map((e) => [e.seq, e.kind, e.args[0]])).toEqual([
      [2, 'esb.trigger', 2],
      [3, 'esb.trigger', 3],
      [4, 'esb.trigger', 4],
      [5, 'esb.trigger', 5],
    ]);
  });

  test('the ring gets the mask; a run that fits drops nothing', () => {
    let mask = 0;
    const { events, dropped } = Trace.capture(TRACE_ESB | TRACE_ROUTER, (t) => {
      mask = t.mask;
      t.emit(TRACE_ROUTER, 'router.enqueue', 0, 6, 0, 16);
    });
    expect(mask).toBe(TRACE_ESB | TRACE_ROUTER);
    expect([events.length, dropped]).toEqual([1, 0]);
  });
});
