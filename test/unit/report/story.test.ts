import { describe, expect, test } from 'vitest';
import { STORY_MAX, violationStory } from '../../../src/report/story.ts';
import type { TraceEvent } from '../../../src/sim/trace.ts';

const ev = (seq: number, kind: string, args: number[]): TraceEvent => ({
  seq,
  time: 0,
  cat: 0x20,
  kind,
  args: [args[0] ?? 0, args[1] ?? 0, args[2] ?? 0, args[3] ?? 0],
});

const PAGE = 0x7fffd9f10000;
const PFN = 0x605000001;

/** pid 1 faults nic0's page in; an unrelated fault; the zap of pid 1's range; triggers of other irqs. */
const trace: TraceEvent[] = [
  ev(1, 'mm.fault', [1, PAGE + 0x800, 0x40, 2]),
  ev(2, 'kvm.xive.esb_fault', [0x1300, 1, PFN]),
  ev(3, 'mm.insert_pfn', [1, PAGE, PFN, 2]),
  ev(4, 'mm.fault', [1, 0x7fff99ed0000, 0x40, 4]),
  ev(5, 'kvm.xive.esb_fault', [0x1306, 0, 0x60500000c]),
  ev(6, 'mm.zap', [1, 0x7fffd9f00000, 0x7fffd9f20000, 1]),
  ev(7, 'esb.trigger', [0x1307, 0, 2, 1]),
];

describe('violationStory', () => {
  test('keeps the events touching the named page, pfn and irq, in order, as sentences', () => {
    const story = violationStory(
      trace,
      `pid 2 still maps nic0's page pfn 0x${PFN.toString(16)} at 0x${PAGE.toString(16)}`,
    );
    expect(story.map((l) => l.text)).toEqual([
      '#1 page fault (mm.fault): pid 1, address 0x7fffd9f10800, flags 0x40, vma 2',
      '#2 KVM XIVE device: ESB page fault (kvm.xive.esb_fault): irq 0x1300, odd 1, pfn 0x605000001',
      '#3 PTE installed (vmf_insert_pfn) (mm.insert_pfn): pid 1, address 0x7fffd9f10000, pfn 0x605000001, vma 2',
      '#6 PTEs zapped (mm.zap): pid 1, start 0x7fffd9f00000, end 0x7fffd9f20000, ptes 1',
      // padded to five with the trace's last event
      '#7 ESB trigger (esb.trigger): srcno 0x1307, oldPq 0x0, newPq 0x2, forward 1',
    ]);
  });

  test('a pfn written as one does not match its neighbours by page', () => {
    const story = violationStory(trace.slice(0, 5), `page pfn 0x${PFN.toString(16)}`);
    expect(story.map((l) => l.seq)).toEqual([1, 2, 3, 4, 5]);
    // Only the fault handler and the PTE carry the pfn; the tail pads to five.
    const only = violationStory(trace, `page pfn 0x${PFN.toString(16)}`).map((l) => l.seq);
    expect(only).toEqual([2, 3, 5, 6, 7]);
  });

  test('a long history keeps the first event of each kind and the latest ones, at most 15', () => {
    const long = Array.from({ length: 40 }, (_, i) =>
      ev(i, i % 2 === 0 ? 'mm.fault' : 'mm.insert_pfn', [1, PAGE, PFN, 2]),
    );
    const story = violationStory(
      [ev(100, 'mm.zap', [1, PAGE, PAGE + 0x10000, 0]), ...long],
      `0x${PAGE.toString(16)}`,
    );
    expect(story).toHaveLength(STORY_MAX);
    expect(story.map((l) => l.seq)).toEqual([100, 0, 1, ...Array.from({ length: 12 }, (_, i) => 28 + i)]);
  });
});
