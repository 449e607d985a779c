import { expect, it } from 'vitest';
import { Trace } from '../../../../src/sim/trace.ts';
import { TRACE_KVM } from '../../../../src/sim/trace-sink.ts';
import { makeVm, P, RAM_SIZE } from './host-env.ts';
import { setRegion } from './kvm-ioctls.ts';

it('KVM traces memslot create/move/delete with their ranges and partition-scoped inserts and invalidations', () => {
  const trace = new Trace(TRACE_KVM, 256);
  const e = makeVm({ trace, xive: false });
  const vm = e.host.kvm.vms[0]!;
  const pfn = vm.partitionFault(3, true);
  expect(pfn).toBeGreaterThan(0);
  expect(e.vmm.munmap(e.ram + 3 * P, P)).toBe(0);
  expect(vm.partitionFault(4, false)).toBeGreaterThan(0);
  expect(setRegion(e.vmm, e.vmFd, 0, 0x1000_0000, RAM_SIZE, e.ram)).toBe(0);
  expect(setRegion(e.vmm, e.vmFd, 0, 0x1000_0000, 0, e.ram)).toBe(0);
  const kinds = /^kvm\.(?:memslot|pt\.)/;
  expect(
    trace
      .events()
      .filter((x) => kinds.test(x.kind))
      .map((x) => `${x.kind} ${x.args.map((a) => a.toString(16)).join(' ')}`),
  ).toEqual([
    // slot 0 created: 0x400 pages of guest RAM at gfn 0, backed by the VMM's mapping
    'kvm.memslot 1 0 0 1',
    'kvm.memslot.range 0 0 400 7ffff4000000',
    'kvm.pt.insert 1 3 1 1',
    // munmap of the page behind gfn 3: the MMU notifier invalidates it
    'kvm.pt.invalidate 1 3 4 1',
    'kvm.pt.insert 1 4 1 1',
    // KVM_MR_MOVE (2) to gfn 0x1000: the old range is flushed
    'kvm.pt.invalidate 1 0 400 1',
    'kvm.memslot 1 0 2 1',
    'kvm.memslot.range 0 1000 400 7ffff4000000',
    // KVM_MR_DELETE (1): the removed range
    'kvm.pt.invalidate 1 1000 1400 0',
    'kvm.memslot 1 0 1 0',
    'kvm.memslot.range 0 1000 400 7ffff4000000',
  ]);
});
