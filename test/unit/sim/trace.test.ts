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

describe('Trace columns grow to the capacity', () => {
  test('past the first columns and around the ring: the last `capacity` events, in order, intact', () => {
    const t = new Trace(TRACE_ESB, 10_000);
    for (let i = 0; i < 25_000; i++) t.emit(TRACE_ESB, 'esb.trigger', i, i * 2, i % 4, 1);
    const events = t.events();
    expect(t.total).toBe(25_000);
    expect(events).toHaveLength(10_000);
    // Event s was emitted with args [s, 2s, s % 4, 1], at time 0.
    const emitted = (s: number) => ({
      seq: s,
      time: 0,
      cat: TRACE_ESB,
      kind: 'esb.trigger',
      args: [s, 2 * s, s % 4, 1],
    });
    expect([events[0], events[4_095], events[4_096], events[9_999]]).toEqual(
      [15_000, 19_095, 19_096, 24_999].map(emitted),
    );
    expect(events.every((e, i) => e.seq === 15_000 + i && e.args[0] === e.seq)).toBe(true);
  });

  test('a run that stops mid-way through a growth keeps every event', () => {
    const t = new Trace(TRACE_ESB, 1 << 18);
    for (let i = 0; i < 5_000; i++) t.emit(TRACE_ESB, 'esb.trigger', i, 0, 0, 0);
    expect(t.events().map((e) => e.args[0])).toEqual(Array.from({ length: 5_000 }, (_, i) => i));
  });
});
