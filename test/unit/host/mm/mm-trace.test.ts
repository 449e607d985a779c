import { describe, expect, it } from 'vitest';
import { MAP_SHARED, MREMAP_FIXED, MREMAP_MAYMOVE } from '../../../../src/host/mm/constants.ts';
import type { Process } from '../../../../src/host/mm/process.ts';
import { Word64 } from '../../../../src/hw/mmio.ts';
import { Trace } from '../../../../src/sim/trace.ts';
import { TRACE_MM } from '../../../../src/sim/trace-sink.ts';
import { ANON, FakeDevice, makeHost, P, RW } from './helpers.ts';

const A = 0x3000_0000;
const B = 0x4000_0000;
const C = 0x5000_0000;

/** Map two device pages and one anonymous page, touch them, fork, pass the fd, move, unmap, exit. */
function story(trace: Trace): Process {
  const { host } = makeHost({}, trace);
  const p = host.spawn();
  const dev = new FakeDevice();
  const fd = p.installFd(host.newFile('fake', dev.fops, null));
  const w = new Word64();
  expect(p.mmap(A, 2 * P, RW, MAP_SHARED, fd, 3 * P)).toBe(A);
  expect(p.mmap(B, P, RW, ANON, -1, 0)).toBe(B);
  expect(p.load(A + P, 8, w)).toBe(0);
  expect(p.store(B, 8, 0, 1)).toBe(0);
  const child = p.fork();
  if (typeof child === 'number') throw new Error(`fork: ${child}`);
  expect(p.sendFd(child, fd)).toBe(1);
  expect(p.mremap(A, 2 * P, 2 * P, MREMAP_MAYMOVE | MREMAP_FIXED, C)).toBe(C);
  expect(p.munmap(C, 2 * P)).toBe(0);
  child.exit();
  return p;
}

describe('memory-manager trace events', () => {
  it('mmap, faults and the PTEs they install, fork and its copied PTEs, SCM_RIGHTS, mremap, munmap, exit', () => {
    const trace = new Trace(TRACE_MM, 1024);
    story(trace);
    expect(trace.events().map((e) => `${e.kind} ${e.args.map((a) => a.toString(16)).join(' ')}`)).toEqual([
      'mm.mmap 1 30000000 30020000 3',
      'mm.mmap 1 40000000 40010000 4000',
      'mm.fault 1 30010000 40 1',
      'mm.insert_pfn 1 30010000 601000004 1',
      'mm.fault 1 40000000 41 2',
      'mm.set_pte 1 40000000 1000 2',
      'mm.fork 1 2 0 0',
      // The device page is shared; the private page is copied to a new frame (COW, eagerly).
      'mm.copy_pte 2 30010000 601000004 3',
      'mm.notify.start 1 40000000 40010000 3',
      'mm.copy_pte 2 40000000 1001 4',
      'mm.scm_rights 1 2 0 1',
      'mm.mmap 1 50000000 50020000 3',
      'mm.notify.start 1 30000000 30020000 0',
      'mm.mremap 1 30000000 30020000 50000000',
      'mm.notify.start 1 30000000 30020000 0',
      'mm.munmap 1 30000000 30020000 0',
      'mm.notify.start 1 50000000 50020000 0',
      'mm.munmap 1 50000000 50020000 1',
      'mm.notify.start 2 0 800000000000 0',
      'mm.exit 2 2 0 0',
    ]);
  });

  it('cost nothing when the category is off: no event recorded', () => {
    const trace = new Trace(0, 16);
    story(trace);
    expect(trace.total).toBe(0);
  });
});
