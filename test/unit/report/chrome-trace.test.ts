import { describe, expect, test } from 'vitest';
import { type ChromeEvent, toChromeTrace, violationTraceFile } from '../../../src/report/chrome-trace.ts';
import type { TraceEvent } from '../../../src/sim/trace.ts';
import { slicesNest } from './nested-slices.ts';
import { importChromeJson } from './perfetto-json.ts';

const ev = (seq: number, time: number, cat: number, kind: string, args: number[]): TraceEvent => ({
  seq,
  time,
  cat,
  kind,
  args: [args[0] ?? 0, args[1] ?? 0, args[2] ?? 0, args[3] ?? 0],
});

/** One notification of LISN 0x1300 from trigger to EOI on vCPU 1, then a fault in pid 2 (no KVM). */
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
];

const named = (doc: { traceEvents: ChromeEvent[] }, ph: string): ChromeEvent[] =>
  doc.traceEvents.filter((e) => e.ph === ph);

/** A named, sorted track's two metadata events as [name, pid, tid, value]. */
const track = (kind: 'process' | 'thread', pid: number, tid: number, name: string, sort: number) => [
  [`${kind}_name`, pid, tid, name],
  [`${kind}_sort_index`, pid, tid, sort],
];

describe('toChromeTrace', () => {
  test('tracks per vCPU, host process and hardware block, named in metadata', () => {
    const doc = toChromeTrace(events, { scenario: 's', design: 'rmap', seed: 4 });
    expect(named(doc, 'M').map((e) => [e.name, e.pid, e.tid, e.args!.name ?? e.args!.sort_index])).toEqual([
      ...track('process', 1, 0, 'guest vCPUs', 1),
      ...track('process', 2, 0, 'host processes', 2),
      ...track('process', 4, 0, 'XIVE hardware', 4),
      // Thread ids are unique across processes (Perfetto names threads by tid) and never 0.
      ...track('thread', 1, 10002, 'vCPU 1', 10002),
      ...track('thread', 2, 20002, 'pid 2', 20002),
      ...track('thread', 4, 40001, 'ESB sources', 40001),
      ...track('thread', 4, 40002, 'router (EAS/END)', 40002),
    ]);
    expect(doc.otherData).toEqual({
      tool: 'xivelab',
      scenario: 's',
      design: 'rmap',
      seed: 4,
      events: 10,
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
      ['irq handler lisn 0x1300', 'X', 1, 10002, 1.5, 0.5],
      ['page fault 0x7fff0000', 'X', 2, 20002, 2.25, 0],
    ]);
    expect(slicesNest(named(doc, 'X'))).toBe(true);
    // Point events are instants in virtual time.
    expect(new Set(doc.traceEvents.filter((e) => e.cat === 'event').map((e) => e.ph))).toEqual(
      new Set(['i']),
    );
  });

  test('a flow links the trigger to its enqueue, to the ACK and to the EOI, each step right after its event', () => {
    const doc = toChromeTrace(events, { scenario: 's', design: 'rmap', seed: 4 });
    const flow = doc.traceEvents.filter((e) => e.cat === 'flow');
    expect(flow).toEqual([
      { name: 'notification', cat: 'flow', ph: 's', id: 1, pid: 4, tid: 40001, ts: 1 },
      { name: 'notification', cat: 'flow', ph: 't', id: 1, pid: 4, tid: 40002, ts: 1, bp: 'e' },
      { name: 'notification', cat: 'flow', ph: 't', id: 1, pid: 1, tid: 10002, ts: 1.5, bp: 'e' },
      { name: 'notification', cat: 'flow', ph: 'f', id: 1, pid: 4, tid: 40001, ts: 2, bp: 'e' },
    ]);
    // The trigger and the forward share a ts and a track: the start follows the trigger, not the
    // forward, so Perfetto binds it to the trigger's slice.
    const after = (n: number) => doc.traceEvents[doc.traceEvents.indexOf(flow[n]!) - 1]!;
    expect([0, 1, 2, 3].map((n) => after(n).name)).toEqual([
      'esb.trigger',
      'router.enqueue',
      'tctx.accept',
      'esb.eoi',
    ]);
    const imported = importChromeJson(doc);
    expect(imported.issues).toEqual([]);
    expect(imported.flows.get(1)!.map(([a, b]) => `${a.name} → ${b.name}`)).toEqual([
      'esb.trigger → router.enqueue',
      'router.enqueue → tctx.accept',
      'tctx.accept → esb.eoi',
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
    expect(slicesNest(named(doc, 'X'))).toBe(true);
    // The violation: a global instant event on the run's own track, at the violating event.
    const violation = { name: 'violation I3', cat: 'violation', ph: 'i', s: 'g', pid: 0, tid: 0 };
    expect(doc.traceEvents.at(-1)).toEqual({ ...violation, ts: 9, args: { message: 'seed 1: VMA freed' } });
    expect(doc.otherData).toEqual({
      tool: 'xivelab',
      scenario: 's',
      design: 'vma-pointer',
      seed: 1,
      events: 10,
      timeline: 'event sequence (the run has no clock: ts is the event number, 1 µs per event)',
      dropped: 12,
      violation: 'seed 1: VMA freed',
    });
  });

  test('under KVM: thread contexts are hardware threads, the VMM is the process that made the VM, kernel threads', () => {
    const kvm = [
      ev(0, 0, 0x40, 'kvm.vm.create', [1, 7]),
      ev(1, 0, 0x40, 'kvm.memslot', [1, 0, 0, 1]),
      ev(2, 0, 0x20, 'mm.fault', [7, 0x7fff0000, 0x40, 2]),
      ev(3, 0, 0x20, 'mm.fork', [7, 8]),
      ev(4, 0, 0x4, 'router.present', [9, 16, 6]),
      ev(5, 0, 0x40, 'kvm.exit.hcall', [1, 0x3a8]),
      ev(6, 0, 0x40, 'host.irq', [0x20, 0x1300]),
      ev(7, 0, 0x40, 'kvm.irqfd.shutdown', [0x20]),
    ];
    const doc = toChromeTrace(kvm, { scenario: 's', design: 'vma-walk', seed: 1 });
    expect(doc.traceEvents.filter((e) => e.cat === 'event').map((e) => [e.name, e.pid, e.tid])).toEqual([
      ['kvm.vm.create', 2, 20007],
      ['kvm.memslot', 2, 20007],
      ['mm.fault', 2, 20007],
      ['mm.fork', 2, 20007],
      ['router.present', 5, 50010],
      ['kvm.exit.hcall', 1, 10002],
      ['host.irq', 3, 30001],
      ['kvm.irqfd.shutdown', 3, 30002],
    ]);
    expect(doc.traceEvents.filter((e) => e.name === 'thread_name').map((e) => e.args!.name)).toEqual([
      'vCPU 1',
      'pid 7 (VMM)',
      'hardirq (host XIVE)',
      'kworker (irqfd)',
      'hardware thread 9',
    ]);
    expect(doc.traceEvents.find((e) => e.name === 'mm.fork')!.args).toEqual({ seq: 3, pid: 7, child: 8 });
  });

  test('an unknown kind keeps positional arguments; an unknown category gets its own track', () => {
    const doc = toChromeTrace([ev(0, 0, 0x4000, 'x', [1, 2, 3, 4])], { scenario: 's', design: 'd', seed: 0 });
    expect(doc.traceEvents.find((e) => e.name === 'thread_name')).toEqual({
      name: 'thread_name',
      ph: 'M',
      pid: 4,
      tid: 40004,
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

describe('argsFromNamed', () => {
  test('reads back what namedArgs wrote: hex strings, decimal numbers, the contract order', async () => {
    const { argsFromNamed, namedArgs } = await import('../../../src/report/chrome-trace.ts');
    const e = {
      seq: 1,
      time: 0,
      cat: 0,
      kind: 'mm.zap',
      args: [2, 0x7fff_0000_0000, 0x7fff_0002_0000, 4] as const,
    };
    const named = namedArgs({ ...e, args: [...e.args] });
    expect(argsFromNamed('mm.zap', named)).toEqual([2, 0x7fff_0000_0000, 0x7fff_0002_0000, 4]);
    expect(argsFromNamed('esb.set_pq', { srcno: '0x1300', oldPq: 1, newPq: '-0x1' })).toEqual([
      0x1300, 1, -1, 0,
    ]);
  });
});
