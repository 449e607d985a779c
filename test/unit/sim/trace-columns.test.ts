import { describe, expect, test } from 'vitest';
import type { TraceEvent } from '../../../src/sim/trace.ts';
import { TraceColumns } from '../../../src/sim/trace-columns.ts';

describe('trace columns', () => {
  const events: TraceEvent[] = [
    { seq: 7, time: 100, cat: 2, kind: 'esb.trigger', args: [0x21, 0, 2, 1] },
    { seq: 8, time: 100, cat: 4, kind: 'router.enqueue', args: [0, 0x38, 5, 0x8000_1001] },
    { seq: 9, time: 250.5, cat: 2, kind: 'mm.insert_pfn', args: [2, 0x7fff_d9f1_0000, 0x6_0300_0013, -1] },
  ];

  test('each kind once, one typed array per field, args flat', () => {
    const c = TraceColumns.of(events);
    expect(c.kinds).toEqual(['esb.trigger', 'router.enqueue', 'mm.insert_pfn']);
    expect([...c.kind]).toEqual([0, 1, 2]);
    expect([...c.seq]).toEqual([7, 8, 9]);
    expect([...c.time]).toEqual([100, 100, 250.5]);
    expect([...c.cat]).toEqual([2, 4, 2]);
    expect([...c.args.subarray(8)]).toEqual([2, 0x7fff_d9f1_0000, 0x6_0300_0013, -1]);
    expect(c.kindOf(2)).toBe('mm.insert_pfn');
    expect([0, 1, 2].map((i) => c.event(i))).toEqual(events);
  });

  test('the wire form: a header, padding to 8, the columns; decoded as views, the same events', () => {
    const bytes = TraceColumns.of(events).encode(5);
    const header = '{"kinds":["esb.trigger","router.enqueue","mm.insert_pfn"],"length":3,"dropped":5}';
    expect(new DataView(bytes.buffer).getUint32(0, true)).toBe(header.length);
    expect(new TextDecoder().decode(bytes.subarray(4, 4 + header.length))).toBe(header);
    const body = (4 + header.length + 7) & ~7;
    expect(bytes.length).toBe(body + 3 * 8 * 6 + 3 * 2 * 2);
    // A copy in a fresh buffer, as fetch gives it.
    const { columns, dropped } = TraceColumns.decode(bytes.slice().buffer);
    expect(dropped).toBe(5);
    expect(columns.length).toBe(3);
    expect([0, 1, 2].map((i) => columns.event(i))).toEqual(events);
    expect(TraceColumns.decode(TraceColumns.of([]).encode(0).buffer).columns.length).toBe(0);
  });
});
