import { describe, expect, test } from 'vitest';
import { type ChromeEvent, toChromeTrace, violationTraceFile } from '../../../src/report/chrome-trace.ts';
import type { TraceEvent } from '../../../src/sim/trace.ts';

const ev = (seq: number, time: number, cat: number, kind: string, args: number[]): TraceEvent => ({
  seq,
  time,
  cat,
  kind,
  args: [args[0] ?? 0, args[1] ?? 0, args[2] ?? 0, args[3] ?? 0],
});

/** One notification of LISN 0x1300 from trigger to EOI on vCPU 1, then a fault in pid 2. */
const events: TraceEvent[] = [
  ev(7, 1000, 0x2, 'esb.trigger', [0x1300, 0, 2, 1]),
  ev(8, 1000, 0x2, 'esb.forward', [0x1300]),
  ev(9, 1000, 0x4, 'router.enqueue', [0, 6, 3, 0x80001300]),
  ev(10, 1000, 0x4, 'router.present', [1, 16, 6]),
  ev(11, 1500, 0x8, 'tctx.accept', [1, 16, 0x8006]),
  ev(12, 1500, 0x80, 'guest.irq', [1, 17, 0x1300]),
  ev(13, 2000, 0x2, 'esb.eoi', [0x1300, 2, 0, 0]),
  ev(14, 2000, 0x8, 'tctx.cppr', [1, 16, 6, 0xff]),
  ev(15, 2250, 0x20, 'mm.fault', [2, 0x7fff0000, 0x41, 3]),
  ev(16, 2250, 0x20, 'mm.insert_pfn', [2, 0x7fff0000, 0x605000001, 3]),
  ev(17, 2500, 0x40, 'host.irq', [0x20, 0x1300]),
];

const named = (doc: { traceEvents: ChromeEvent[] }, ph: string): ChromeEvent[] =>
  doc.traceEvents.filter((e) => e.ph === ph);

/** Every track's complete slices nest (none ends inside another it started after). */
function nested(xs: readonly ChromeEvent[]): boolean {
  const ns = (v: number): number => Math.round(v * 1000);
  const stacks = new Map<string, [number, number][]>();
  for (const x of xs) {
    const k = `${x.pid}:${x.tid}`;
    const st = stacks.get(k) ?? [];
    stacks.set(k, st);
    const [b, e] = [ns(x.ts!), ns(x.ts! + x.dur!)];
    while (st.length > 0 && st[st.length - 1]![1] <= b && st[st.length - 1]![0] < b) st.pop();
    const top = st[st.length - 1];
    if (top !== undefined && e > top[1]) return false;
    st.push([b, e]);
  }
  return true;
}

describe('toChromeTrace', () => {
  test('tracks per vCPU, host process, kernel thread and hardware block, named in metadata', () => {
    const doc = toChromeTrace(events, { scenario: 's', design: 'rmap', seed: 4 });
    expect(named(doc, 'M').map((e) => [e.name, e.pid, e.tid, e.args!.name ?? e.args!.sort_index])).toEqual([
      ['process_name', 0, 0, 'xivelab s × rmap (seed 4)'],
      ['process_name', 1, 0, 'guest vCPUs'],
      ['process_sort_index', 1, 0, 1],
      ['process_name', 2, 0, 'host processes'],
      ['process_sort_index', 2, 0, 2],
      ['process_name', 3, 0, 'host kernel threads'],
      ['process_sort_index', 3, 0, 3],
      ['process_name', 4, 0, 'XIVE hardware'],
      ['process_sort_index', 4, 0, 4],
      ['thread_name', 1, 2, 'vCPU 1'],
      ['thread_sort_index', 1, 2, 2],
      ['thread_name', 2, 2, 'pid 2'],
      ['thread_sort_index', 2, 2, 2],
      ['thread_name', 3, 1, 'hardirq (host XIVE)'],
      ['thread_sort_index', 3, 1, 1],
      ['thread_name', 4, 1, 'ESB sources'],
      ['thread_sort_index', 4, 1, 1],
      ['thread_name', 4, 2, 'router (EAS/END)'],
      ['thread_sort_index', 4, 2, 2],
    ]);
    expect(doc.otherData).toEqual({
      tool: 'xivelab',
      scenario: 's',
      design: 'rmap',
      seed: 4,
      events: 11,
      timeline: 'virtual time (ts in µs)',
    });
    expect(JSON.parse(JSON.stringify(doc))).toEqual(doc);
  });

  test('arguments are named; hardware numbers and addresses in hex, counts and ids in decimal', () => {
    const doc = toChromeTrace(events, { scenario: 's', design: 'rmap', seed: 4 });
    const args = (kind: string) => doc.traceEvents.find((e) => e.name === kind)!.args;
    expect(args('esb.trigger')).toEqual({ seq: 7, srcno: '0x1300', oldPq: '0x0', newPq: '0x2', forward: 1 });
    expect(args('router.enqueue')).toEqual({
      seq: 9,
      endBlk: '0x0',
      endIdx: '0x6',
      qindex: 3,
      qdata: '0x80001300',
    });
    expect(args('mm.insert_pfn')).toEqual({
      seq: 16,
      pid: 2,
      address: '0x7fff0000',
      pfn: '0x605000001',
      vma: 3,
    });
    expect(args('guest.irq')).toEqual({ seq: 12, cpu: 1, virq: '0x11', lisn: '0x1300' });
  });

  test('handler runs are slices in virtual time: the irq handler from ACK to CPPR restore, a fault to its PTE', () => {
    const doc = toChromeTrace(events, { scenario: 's', design: 'rmap', seed: 4 });
    expect(
      doc.traceEvents
        .filter((e) => e.cat === 'handler')
        .map((e) => [e.name, e.ph, e.pid, e.tid, e.ts, e.dur]),
    ).toEqual([
      ['irq handler lisn 0x1300', 'X', 1, 2, 1.5, 0.5],
      ['page fault 0x7fff0000', 'X', 2, 2, 2.25, 0],
    ]);
    expect(nested(named(doc, 'X'))).toBe(true);
    // Point events are instants, except the flow anchors (1 ns slices an arrow binds to).
    expect(
      doc.traceEvents.filter((e) => e.cat === 'event' && e.ph === 'X').map((e) => [e.name, e.dur]),
    ).toEqual([
      ['esb.trigger', 0.001],
      ['router.enqueue', 0.001],
      ['tctx.accept', 0.001],
      ['esb.eoi', 0.001],
    ]);
  });

  test('a flow links the trigger to its enqueue, to the ACK and to the EOI', () => {
    const doc = toChromeTrace(events, { scenario: 's', design: 'rmap', seed: 4 });
    const flow = doc.traceEvents.filter((e) => e.cat === 'flow');
    expect(flow).toEqual([
      { name: 'notification', cat: 'flow', ph: 's', id: 1, pid: 4, tid: 1, ts: 1 },
      { name: 'notification', cat: 'flow', ph: 't', id: 1, pid: 4, tid: 2, ts: 1, bp: 'e' },
      { name: 'notification', cat: 'flow', ph: 't', id: 1, pid: 1, tid: 2, ts: 1.5, bp: 'e' },
      { name: 'notification', cat: 'flow', ph: 'f', id: 1, pid: 4, tid: 1, ts: 2, bp: 'e' },
    ]);
  });

  test('a run with no clock is on the sequence timeline, said in the metadata; a violation ends it', () => {
    const flat = events.map((e) => ({ ...e, time: 0 }));
    const doc = toChromeTrace(flat, {
      scenario: 's',
      design: 'vma-pointer',
      seed: 1,
      dropped: 12,
      violation: { invariant: 'I3', message: 'seed 1: VMA freed' },
    });
    expect(doc.traceEvents.filter((e) => e.cat === 'event').map((e) => [e.ts, e.dur])).toEqual(
      flat.map((_, i) => [i, 1]),
    );
    expect(doc.traceEvents.filter((e) => e.cat === 'handler').map((e) => [e.name, e.ts, e.dur])).toEqual([
      ['irq handler lisn 0x1300', 4, 4],
      ['page fault 0x7fff0000', 8, 2],
    ]);
    expect(nested(named(doc, 'X'))).toBe(true);
    expect(doc.traceEvents.at(-1)).toEqual({
      name: 'violation I3',
      cat: 'violation',
      ph: 'i',
      s: 'g',
      pid: 0,
      tid: 0,
      ts: 10,
      args: { message: 'seed 1: VMA freed' },
    });
    expect(doc.otherData).toEqual({
      tool: 'xivelab',
      scenario: 's',
      design: 'vma-pointer',
      seed: 1,
      events: 11,
      timeline: 'event sequence (the run has no clock: ts is the event number, 1 µs per event)',
      dropped: 12,
      violation: 'seed 1: VMA freed',
    });
  });

  test('an unknown kind keeps positional arguments; an unknown category gets its own track', () => {
    const doc = toChromeTrace([ev(0, 0, 0x4000, 'x', [1, 2, 3, 4])], { scenario: 's', design: 'd', seed: 0 });
    expect(doc.traceEvents.find((e) => e.name === 'thread_name')).toEqual({
      name: 'thread_name',
      ph: 'M',
      pid: 4,
      tid: 4,
      args: { name: 'cat 0x4000' },
    });
    expect(doc.traceEvents.find((e) => e.name === 'x')!.args).toEqual({
      seq: 0,
      a0: '0x1',
      a1: '0x2',
      a2: '0x3',
      a3: '0x4',
    });
  });
});

test('violation trace file names keep safe characters only', () => {
  expect(violationTraceFile('nic hotplug/loop', 'vma-pointer', 'I3')).toBe(
    'nic_hotplug_loop--vma-pointer--I3.trace.json',
  );
});
