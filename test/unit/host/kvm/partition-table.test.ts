import { describe, expect, it } from 'vitest';
import { driveSteps, waitsForever } from '../../../../src/host/atomic-step.ts';
import { PartitionTable } from '../../../../src/host/kvm/partition-table.ts';
import {
  FAULT_FLAG_WRITE,
  MAP_ANONYMOUS,
  MAP_FIXED,
  MAP_PRIVATE,
  PROT_READ,
  PROT_WRITE,
  VM_FAULT_NOPAGE,
  VM_FAULT_SIGSEGV,
} from '../../../../src/host/mm/constants.ts';
import { faultSteps } from '../../../../src/host/mm/fault.ts';
import { PTE_WRITE } from '../../../../src/host/mm/page-table.ts';
import { Word64 } from '../../../../src/hw/mmio.ts';
import { PciDevice } from '../../../../src/hw/phb.ts';
import {
  eqGpa,
  makeVm,
  mgmtGpa,
  NR_IRQS,
  P,
  RecordingExits,
  run,
  TIMA_OS_GPA,
  trigGpa,
  type VmEnv,
} from './host-env.ts';
import { configSource, createSource } from './kvm-ioctls.ts';
import { irqfd, setIrqs } from './passthrough-env.ts';

const L = 0x1300;

const gfn = (gpa: number): number => Math.floor(gpa / P);

function devicePages(e: VmEnv): [number, number][] {
  const phb = e.host.phbs[0]!;
  return e.host.kvm.vms[0]!.pt.entriesPointingAt((pfn) => phb.pfnInSlot(0, pfn));
}

describe('partition-scoped entries: filled on guest access', () => {
  it('a RAM access faults once, installs gfn → the VMM frame; the VMM sees the guest’s write', () => {
    const e = makeVm({ xive: false });
    const vm = e.host.kvm.vms[0]!;
    const g = run(e);
    expect(vm.stats.partitionFaults).toBe(0);
    g.store(0x3_0008, 4, 0, 0xabcd_0123);
    expect(vm.stats.partitionFaults).toBe(1);
    const w = new Word64();
    g.load(0x3_0008, 4, w);
    expect(vm.stats.partitionFaults).toBe(1);
    expect(w.lo).toBe(0xabcd_0123);
    expect(e.vmm.load(e.ram + 0x3_0008, 4, w)).toBe(0);
    expect(w.lo).toBe(0xabcd_0123);
    const pfn = vm.pt.lookup(3, true);
    expect(pfn).toBe(e.vmm.proc.mm.pgtable.pfn(e.ram / P + 3));
    expect(e.host.frames.isAllocated(pfn)).toBe(true);
  });

  it('a read of anonymous memory maps writable when the host PTE is writable (one fault for read then write)', () => {
    const e = makeVm({ xive: false });
    const vm = e.host.kvm.vms[0]!;
    const g = run(e);
    e.vmm.store(e.ram + 5 * P, 8, 0, 1); // the VMM touches it first (writable PTE)
    const w = new Word64();
    g.load(5 * P, 8, w);
    g.store(5 * P, 8, 0, 2);
    expect(vm.stats.partitionFaults).toBe(1);
  });

  it('ESB and TIMA accesses go through the device’s vm_ops.fault to the chip’s MMIO pages', () => {
    const e = makeVm();
    expect(createSource(e.vmm, e.devFd, L)).toBe(0);
    const g = run(e);
    const w = new Word64();
    g.load(mgmtGpa(L) + 0x800, 8, w);
    expect(w.lo).toBe(1);
    g.load(TIMA_OS_GPA + 0x10, 8, w);
    const vm = e.host.kvm.vms[0]!;
    const names = vm.pt.dump().map(([, pfn]) => e.host.phys.ownerName(pfn * P));
    expect(names).toEqual(['p9.ipi-esb', 'p9.tima']);
    expect(vm.devices[0]!.xive.stats.esbFaults).toBe(1);
    expect(vm.devices[0]!.xive.stats.timaFaults).toBe(1);
  });
});

describe('partition-scoped faults of ESB pages: hva_to_pfn under mmap_read_lock', () => {
  it('a guest store to an ESB page the VMM maps read-only fails with -EFAULT before the device fault', () => {
    const e = makeVm();
    expect(createSource(e.vmm, e.devFd, L)).toBe(0);
    // fixup_user_fault() → vma_permits_fault(): a write fault on a read-only VMA is -EFAULT.
    // (The whole VMA: a split one would meet the merged handler's VMA-relative page offset.)
    expect(e.vmm.mprotect(e.esb, 2 * NR_IRQS * P, PROT_READ)).toBe(0);
    const exits = new RecordingExits();
    const g = run(e, 0, exits);
    const vm = e.host.kvm.vms[0]!;
    const xive = vm.devices[0]!.xive;
    g.store(trigGpa(L), 8, 0, 0);
    expect(exits.failures).toEqual([{ errno: -14, gpa: trigGpa(L) }]);
    expect(xive.stats.esbFaults).toBe(0);
    expect(vm.stats.partitionFaultErrors).toBe(1);
    expect(e.vmm.proc.mm.pgtable.pfn(e.esb / P + 2 * L)).toBe(-1);
    // A load faults the page in read-only; a store still cannot use it.
    const w = new Word64();
    g.load(mgmtGpa(L) + 0x800, 8, w);
    expect(w.lo).toBe(1);
    expect(xive.stats.esbFaults).toBe(1);
    expect(exits.failures).toHaveLength(1);
    g.store(mgmtGpa(L), 8, 0, 0);
    expect(exits.failures).toEqual([
      { errno: -14, gpa: trigGpa(L) },
      { errno: -14, gpa: mgmtGpa(L) },
    ]);
    expect(xive.stats.esbFaults).toBe(1);
  });

  it('do_page_fault as steps checks the access before the ESB fault handler too (access_error)', () => {
    const e = makeVm();
    expect(createSource(e.vmm, e.devFd, L)).toBe(0);
    expect(e.vmm.mprotect(e.esb, 2 * NR_IRQS * P, PROT_READ)).toBe(0);
    const mm = e.vmm.proc.mm;
    const xive = e.host.kvm.vms[0]!.devices[0]!.xive;
    const eoi = e.esb + (2 * L + 1) * P;
    expect(driveSteps(faultSteps(mm, eoi, FAULT_FLAG_WRITE, 'test'), waitsForever)).toBe(VM_FAULT_SIGSEGV);
    expect(xive.stats.esbFaults).toBe(0);
    expect(driveSteps(faultSteps(mm, eoi, 0, 'test'), waitsForever)).toBe(VM_FAULT_NOPAGE);
    expect(xive.stats.esbFaults).toBe(1);
    expect(mm.pgtable.flags(eoi / P) & PTE_WRITE).toBe(0);
  });
});

describe('partition-scoped entries: invalidated by the VMM mm', () => {
  it('munmap of guest RAM removes the entries (MMU notifier); a later access fails with -EFAULT', () => {
    const e = makeVm({ xive: false });
    const vm = e.host.kvm.vms[0]!;
    const exits = new RecordingExits();
    const g = run(e, 0, exits);
    for (let i = 0; i < 4; i++) g.store(i * P, 8, 0, i);
    expect(vm.pt.size).toBe(4);
    const inv = vm.stats.partitionInvalidations;
    expect(e.vmm.munmap(e.ram + P, 2 * P)).toBe(0);
    expect(vm.stats.partitionInvalidations).toBe(inv + 2);
    expect(vm.pt.lookup(1, false)).toBe(-1);
    expect(vm.pt.lookup(0, false)).toBeGreaterThanOrEqual(0);
    const w = new Word64();
    g.load(P, 8, w);
    expect(w.hi >>> 0).toBe(0xffff_ffff);
    expect(exits.failures).toEqual([{ errno: -14, gpa: P }]);
    expect(vm.stats.partitionFaultErrors).toBe(1);
    // Fresh memory mapped there again is reached (zero-filled).
    expect(
      e.vmm.mmap(e.ram + P, P, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0),
    ).toBe(e.ram + P);
    g.load(P, 8, w);
    expect([w.hi, w.lo]).toEqual([0, 0]);
  });

  it('MAP_FIXED over guest RAM replaces the frames: the entry is invalidated, not left stale', () => {
    const e = makeVm({ xive: false });
    const vm = e.host.kvm.vms[0]!;
    const g = run(e);
    g.store(7 * P, 4, 0, 0x5555);
    const faults = vm.stats.partitionFaults;
    e.vmm.mmap(e.ram + 7 * P, P, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
    expect(vm.pt.lookup(7, false)).toBe(-1);
    const w = new Word64();
    g.load(7 * P, 4, w);
    expect(w.lo).toBe(0);
    expect(vm.stats.partitionFaults).toBe(faults + 1);
  });

  it('a pinned EQ page survives the VMM unmapping it; the chip’s writes still land in that frame', () => {
    const e = makeVm();
    const eqPfn = e.vmm.proc.mm.pgtable.pfn(e.ram / P + gfn(eqGpa(0)));
    expect(e.host.frames.pinCount(eqPfn)).toBe(1);
    expect(e.vmm.munmap(e.ram + eqGpa(0), P)).toBe(0);
    expect(e.host.frames.isAllocated(eqPfn)).toBe(true);
    expect(createSource(e.vmm, e.devFd, L)).toBe(0);
    expect(configSource(e.vmm, e.devFd, L, 6, 0, 9)).toBe(0);
    const g = run(e);
    const w = new Word64();
    g.load(mgmtGpa(L) + 0xc00, 8, w);
    g.store(trigGpa(L), 8, 0, 0);
    expect(e.host.phys.loadBe32(eqPfn * P)).toBe(0x8000_0009);
  });
});

describe('passthrough: the XIVE zap of set_mapped / clr_mapped reaches the partition-scoped tree', () => {
  it('bind re-points the guest’s ESB entries to the device; after unbind no entry points at device pages', () => {
    const e = makeVm();
    const p = e.vmm;
    const vm = e.host.kvm.vms[0]!;
    const pdev = new PciDevice({ name: 'nic', msix: 1 });
    expect(e.host.phbs[0]!.plug(0, pdev)).toBe(true);
    const n = e.host.vfioBind(0, 0);
    const vfd = p.open(`/dev/vfio/devices/vfio${n}`);
    expect(vfd).toBeGreaterThanOrEqual(0);
    expect(createSource(p, e.devFd, L)).toBe(0);
    expect(configSource(p, e.devFd, L, 6, 0, 0x77)).toBe(0);
    const g = run(e);
    const w = new Word64();
    g.store(TIMA_OS_GPA + 0x11, 1, 0, 0xff);
    g.load(mgmtGpa(L) + 0xc00, 8, w); // unmask the IPI-backed source
    g.store(trigGpa(L), 8, 0, 0); // an IPI trigger: EQ entry 0
    expect(vm.pt.lookup(gfn(mgmtGpa(L)), false)).toBeGreaterThanOrEqual(0);
    expect(vm.pt.lookup(gfn(trigGpa(L)), true)).toBeGreaterThanOrEqual(0);
    const efd = p.eventfd();
    expect(irqfd(p, e.vmFd, efd, L)).toBe(0);
    const inv = vm.stats.partitionInvalidations;
    expect(setIrqs(p, vfd, [efd])).toBe(0); // irq bypass → kvmppc_xive_set_mapped → zap
    expect(vm.devices[0]!.xive.stats.setMapped).toBe(1);
    expect(vm.stats.partitionInvalidations).toBe(inv + 2);
    expect(vm.pt.lookup(gfn(mgmtGpa(L)), false)).toBe(-1);
    expect(vm.pt.lookup(gfn(trigGpa(L)), false)).toBe(-1);
    // The guest's next access faults onto the device's ESB pages.
    g.load(mgmtGpa(L) + 0xc00, 8, w); // the Linux guest's EOI/unmask
    expect(devicePages(e)).toEqual([[gfn(mgmtGpa(L)), e.host.phbs[0]!.msiTriggerPage(0, 0) / P + 1]]);
    // The device's MSI goes straight to the guest's EQ.
    pdev.setVectorMask(0, false);
    expect(pdev.raiseMsi(0)).toBe(true);
    g.load(eqGpa(0) + 4, 4, w);
    expect(w.lo >>> 0).toBe(0x8000_0000 + L); // mainline: EISN = state->number
    expect(g.externalInterrupt).toBe(true);
    // Unbind: SET_IRQS count 0 → clr_mapped → zap.
    expect(setIrqs(p, vfd, [])).toBe(0);
    expect(vm.devices[0]!.xive.stats.clrMapped).toBe(1);
    expect(devicePages(e)).toEqual([]);
    g.load(mgmtGpa(L) + 0x800, 8, w);
    expect(e.host.phys.ownerName(vm.pt.lookup(gfn(mgmtGpa(L)), false) * P)).toBe('p9.ipi-esb');
    expect(p.close(vfd)).toBe(0);
    expect(e.host.vfioUnbind(n)).toBe(0);
    expect(e.host.phbs[0]!.unplug(0)).toBe(pdev);
    expect(devicePages(e)).toEqual([]);
  });
});

describe('PartitionTable entries', () => {
  it('keep pfns up to 2^35 - 1 exactly with the writable bit, and refuse larger ones', () => {
    const pt = new PartitionTable();
    pt.insert(0x20_0000, 2 ** 35 - 1, false);
    pt.insert(3, 0x6_0100_0001, true);
    expect(pt.lookup(0x20_0000, false)).toBe(0x7_ffff_ffff);
    expect(pt.lookup(0x20_0000, true)).toBe(-1);
    expect(pt.lookup(3, true)).toBe(0x6_0100_0001);
    pt.writeProtectRange(0, 4);
    expect(pt.lookup(3, true)).toBe(-1);
    expect(pt.lookup(3, false)).toBe(0x6_0100_0001);
    expect(() => pt.insert(4, 2 ** 35, true)).toThrow(
      'PartitionTable.insert: pfn 0x800000000 is not a page below 2^51',
    );
    expect(pt.size).toBe(2);
  });

  it('dump in gfn order, across leaves created in any order', () => {
    const pt = new PartitionTable();
    pt.insert(0x5000, 3, true);
    pt.insert(9, 1, true);
    pt.insert(2, 2, true);
    pt.insert(2, 4, false); // an upgrade replaces the entry
    expect(pt.dump()).toEqual([
      [2, 4],
      [9, 1],
      [0x5000, 3],
    ]);
    expect(pt.unmapRange(9, 10)).toBe(1);
    pt.insert(0x4fff, 5, true);
    expect(pt.dump()).toEqual([
      [2, 4],
      [0x4fff, 5],
      [0x5000, 3],
    ]);
  });
});
