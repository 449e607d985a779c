import { describe, expect, test } from 'vitest';
import { toChromeTrace, violationTraceFile } from '../../../src/report/chrome-trace.ts';
import type { TraceEvent } from '../../../src/sim/trace.ts';

const events: TraceEvent[] = [
  { seq: 7, time: 1500, cat: 0x2, kind: 'esb.trigger', args: [4864, 0, 2, 1] },
  { seq: 8, time: 1500, cat: 0x4, kind: 'router.enqueue', args: [0, 6, 3, 2147488512] },
  { seq: 9, time: 2250, cat: 0x20, kind: 'mm.zap', args: [1, 2, 0, 0] },
];

describe('toChromeTrace', () => {
  test('instant events on one track per category, ts in µs of virtual time, metadata first', () => {
    const doc = toChromeTrace(events, { scenario: 's', design: 'rmap', seed: 4 });
    expect(doc).toEqual({
      displayTimeUnit: 'ns',
      otherData: {
        tool: 'xivelab',
        scenario: 's',
        design: 'rmap',
        seed: 4,
        events: 3,
        timeline: 'virtual time (ts in µs)',
      },
      traceEvents: [
        { name: 'process_name', ph: 'M', pid: 1, tid: 0, args: { name: 'xivelab s × rmap (seed 4)' } },
        { name: 'thread_name', ph: 'M', pid: 1, tid: 1, args: { name: 'ESB' } },
        { name: 'thread_sort_index', ph: 'M', pid: 1, tid: 1, args: { sort_index: 1 } },
        { name: 'thread_name', ph: 'M', pid: 1, tid: 2, args: { name: 'router' } },
        { name: 'thread_sort_index', ph: 'M', pid: 1, tid: 2, args: { sort_index: 2 } },
        { name: 'thread_name', ph: 'M', pid: 1, tid: 5, args: { name: 'mm' } },
        { name: 'thread_sort_index', ph: 'M', pid: 1, tid: 5, args: { sort_index: 5 } },
        {
          name: 'esb.trigger',
          cat: 'ESB',
          ph: 'i',
          s: 't',
          pid: 1,
          tid: 1,
          ts: 1.5,
          args: { seq: 7, a0: 4864, a1: 0, a2: 2, a3: 1 },
        },
        {
          name: 'router.enqueue',
          cat: 'router',
          ph: 'i',
          s: 't',
          pid: 1,
          tid: 2,
          ts: 1.5,
          args: { seq: 8, a0: 0, a1: 6, a2: 3, a3: 2147488512 },
        },
        {
          name: 'mm.zap',
          cat: 'mm',
          ph: 'i',
          s: 't',
          pid: 1,
          tid: 5,
          ts: 2.25,
          args: { seq: 9, a0: 1, a1: 2, a2: 0, a3: 0 },
        },
      ],
    });
    // Valid JSON round trip (what Perfetto loads).
    expect(JSON.parse(JSON.stringify(doc))).toEqual(doc);
  });

  test('a trace with no time uses the event sequence; a violation is a global instant at the end', () => {
    const flat = events.map((e) => ({ ...e, time: 0 }));
    const doc = toChromeTrace(flat, {
      scenario: 's',
      design: 'vma-pointer',
      seed: 1,
      dropped: 12,
      violation: { invariant: 'I3', message: 'seed 1: VMA freed' },
    });
    expect(doc.traceEvents.filter((e) => e.ph === 'i').map((e) => [e.name, e.ts, e.s])).toEqual([
      ['esb.trigger', 0, 't'],
      ['router.enqueue', 1, 't'],
      ['mm.zap', 2, 't'],
      ['violation I3', 2, 'g'],
    ]);
    expect(doc.otherData).toEqual({
      tool: 'xivelab',
      scenario: 's',
      design: 'vma-pointer',
      seed: 1,
      events: 3,
      timeline: 'event sequence (1 µs per event: the trace carries no time)',
      dropped: 12,
      violation: 'seed 1: VMA freed',
    });
  });

  test('an unknown category gets its own track', () => {
    const doc = toChromeTrace([{ seq: 0, time: 0, cat: 0x4000, kind: 'x', args: [0, 0, 0, 0] }], {
      scenario: 's',
      design: 'd',
      seed: 0,
    });
    expect(doc.traceEvents[1]).toEqual({
      name: 'thread_name',
      ph: 'M',
      pid: 1,
      tid: 10,
      args: { name: 'cat 0x4000' },
    });
  });
});

test('violation trace file names keep safe characters only', () => {
  expect(violationTraceFile('nic hotplug/loop', 'vma-pointer', 'I3')).toBe(
    'nic_hotplug_loop--vma-pointer--I3.trace.json',
  );
});
