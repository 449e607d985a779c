import { describe, expect, test } from 'vitest';
import { notificationFlows, toChromeTrace } from '../../../src/report/chrome-trace.ts';
import { violationStory } from '../../../src/report/story.ts';
import { traceEmulated } from '../../../src/scenario/cell-emulated.ts';
import { runPassthroughCell } from '../../../src/scenario/cell-passthrough.ts';
import { loadScenario } from '../../../src/scenario/load.ts';
import type { TraceEvent } from '../../../src/sim/trace.ts';
import { slicesNest } from '../report/nested-slices.ts';

const ref = (file: string) => {
  const scenario = loadScenario(file);
  return { name: scenario.name, file, scenario };
};

/** The stale page of pid 2 the I2 violation names. */
const PAGE = 0x7fffd9f10000;
const PFN = 0x605000001;

const is = (e: TraceEvent, kind: string, ...args: number[]): boolean =>
  e.kind === kind && args.every((a, i) => e.args[i] === a);
const covers = (e: TraceEvent): boolean => e.args[1]! <= PAGE && PAGE < e.args[2]!;

describe('a violation trace keeps the causal history of what it names (pt-late-mapping × vma-walk, seed 1)', () => {
  const cell = runPassthroughCell(ref('scenarios/pt-late-mapping.yaml'), 'vma-walk', 1);
  const i2 = cell.invariants.I2;
  const trace = i2.first!.trace;
  const at = (p: (e: TraceEvent) => boolean): number => trace.findIndex(p);

  test('the mapping, the fork, the fault that filled the stale PTE, the zaps that missed it', () => {
    expect(i2.status).toBe('fail');
    expect(i2.first!.message).toBe(
      "pid 2 still maps nic0's page pfn 0x605000001 at 0x7fffd9f10000 (cycle 0, seed 1)",
    );
    const mmap = at((e) => e.kind === 'mm.mmap' && e.args[0] === 1 && covers(e));
    const fork = at((e) => is(e, 'mm.fork', 1, 2));
    const fault = at((e) => is(e, 'mm.fault', 2) && Math.floor(e.args[1]! / 65536) === PAGE / 65536);
    const fill = at((e) => is(e, 'mm.insert_pfn', 2, PAGE, PFN));
    const zaps = trace.filter((e) => e.kind === 'mm.zap' && covers(e));
    expect([mmap, fork, fault, fill].every((i) => i >= 0)).toBe(true);
    expect(mmap < fork && fork < fault && fault < fill).toBe(true);
    // vma-walk zaps the VMM's own VMAs only: every zap of the page is in pid 1, none in pid 2.
    expect(zaps.filter((e) => e.seq > trace[fill]!.seq).map((e) => e.args[0])).toEqual([1]);
    expect(zaps.some((e) => e.args[0] === 2)).toBe(false);
    // The partition-scoped entry KVM made for the page, by pfn.
    expect(trace.some((e) => e.kind === 'kvm.pt.insert' && e.args[2] === PFN)).toBe(true);
  });

  test('its story, in order', () => {
    expect(violationStory(trace, i2.first!.message).map((l) => l.text)).toEqual([
      '#34 mmap (mm.mmap): pid 1, start 0x7fffb3f00000, end 0x7ffff3f00000, pgoff 0x4',
      '#228 mmu notifier: invalidate range (mm.notify.start): pid 1, start 0x7fffd9f00000, end 0x7fffd9f20000, event 1',
      '#230 PTEs zapped (mm.zap): pid 1, start 0x7fffd9f00000, end 0x7fffd9f20000, ptes 0',
      '#417 fork: the child copies the VMAs (mm.fork): pid 1, child 2',
      '#429 KVM XIVE device: ESB page fault (kvm.xive.esb_fault): irq 0x1300, odd 1, pfn 0x605000001',
      '#476 page fault (mm.fault): pid 2, address 0x7fffd9f10800, flags 0x40, vma 7',
      '#478 PTE installed (vmf_insert_pfn) (mm.insert_pfn): pid 2, address 0x7fffd9f10000, pfn 0x605000001, vma 7',
      '#525 page fault (mm.fault): pid 1, address 0x7fffd9f10000, flags 0x0, vma 2',
      '#526 KVM XIVE device: ESB page fault (kvm.xive.esb_fault): irq 0x1300, odd 1, pfn 0x605000001',
      '#527 PTE installed (vmf_insert_pfn) (mm.insert_pfn): pid 1, address 0x7fffd9f10000, pfn 0x605000001, vma 2',
      '#528 KVM installs a partition-scoped entry (kvm.pt.insert): lpid 1, gfn 0x601002601, pfn 0x605000001, writable 1',
      '#1237 mmu notifier: invalidate range (mm.notify.start): pid 1, start 0x7fffd9f00000, end 0x7fffd9f20000, event 1',
      '#1239 PTEs zapped (mm.zap): pid 1, start 0x7fffd9f00000, end 0x7fffd9f20000, ptes 2',
      '#1610 page fault (mm.fault): pid 1, address 0x7fffd9f10000, flags 0x0, vma 2',
      '#1612 PTE installed (vmf_insert_pfn) (mm.insert_pfn): pid 1, address 0x7fffd9f10000, pfn 0x601000033, vma 2',
    ]);
  });

  test('its Chrome trace: named hex arguments, process tracks, balanced slices', () => {
    const doc = toChromeTrace(trace, { scenario: 'pt-late-mapping', design: 'vma-walk', seed: 1 });
    const fill = doc.traceEvents.find((e) => e.name === 'mm.insert_pfn' && e.args!.pid === 2)!;
    expect(fill.args).toEqual({
      seq: fill.args!.seq,
      pid: 2,
      address: '0x7fffd9f10000',
      pfn: '0x605000001',
      vma: 7,
    });
    expect([fill.pid, fill.tid]).toEqual([2, 20002]);
    expect(
      doc.traceEvents.filter((e) => e.name === 'thread_name' && e.pid === 2).map((e) => e.args!.name),
    ).toEqual(['pid 1 (VMM)', 'pid 2']);
    expect(doc.otherData.timeline).toBe(
      'event sequence (the run has no clock: ts is the event number, 1 µs per event)',
    );
    expect(slicesNest(doc.traceEvents.filter((e) => e.ph === 'X'))).toBe(true);
  });
});

test('an emulated run: each forwarded trigger flows to its enqueue, the ACK that takes it and its EOI', () => {
  const r = ref('scenarios/demo.yaml');
  const s = { ...r.scenario, workload: { ...r.scenario.workload, triggers: 40 } };
  const { events } = traceEmulated({ ...r, scenario: s }, 1);
  const flows = notificationFlows(events);
  expect(flows.length).toBe(30);
  const shapes = new Set(flows.map((f) => f.map((i) => events[i]!.kind).join(' ')));
  // The guest EOIs an MSI by resetting its PQ bits (SET_PQ_00), an LSI by an EOI load; an entry
  // the handler drains from its queue after another ACK has no ACK of its own.
  expect([...shapes].sort()).toEqual([
    'esb.lsi router.enqueue tctx.accept esb.eoi',
    'esb.trigger router.enqueue esb.set_pq',
    'esb.trigger router.enqueue tctx.accept esb.set_pq',
  ]);
  const doc = toChromeTrace(events, { scenario: 'demo', design: 'emulated', seed: 1 });
  expect(doc.traceEvents.filter((e) => e.cat === 'flow').length).toBe(flows.flat().length);
  expect(slicesNest(doc.traceEvents.filter((e) => e.ph === 'X'))).toBe(true);
});
