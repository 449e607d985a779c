/**
 * The passthrough invariants: I1 routing and I2 isolation on a hand-built host (a VM whose XIVE
 * device the VMM maps, entries planted or left stale by hand), and the pure parts: the PQ model,
 * I4/I5 findings, I6's first difference.
 */
import { describe, expect, it } from 'vitest';
import {
  deliveryFindings,
  firstDifference,
  isolationViolations,
  type PassthroughIrq,
  PqModel,
  routingViolations,
} from '../../../src/check/passthrough.ts';
import { Word64 } from '../../../src/hw/mmio.ts';
import { makeVm, mgmtGpa, P, run, type VmEnv } from '../host/kvm/host-env.ts';
import { createSource } from '../host/kvm/kvm-ioctls.ts';

/** A VM with guest irqs 0x100 and 0x101 (IPI-backed), and their EOI pages' pfns. */
function twoSources(): { e: VmEnv; a: number; b: number; irq: PassthroughIrq } {
  const e = makeVm();
  expect(createSource(e.vmm, e.devFd, 0x100)).toBe(0);
  expect(createSource(e.vmm, e.devFd, 0x101)).toBe(0);
  const xive = e.host.kvm.vms[0]!.devices[0]!.xive;
  const a = xive.irqState(0x100)!.ipiData.eoiPage / P;
  const b = xive.irqState(0x101)!.ipiData.eoiPage / P;
  return { e, a, b, irq: { label: 'nic0 vector 0', lisn: 0x100, mgmtGpa: mgmtGpa(0x100), retired: false } };
}

/** The VMM's own user address of girq `lisn`'s EOI page (file page 5 + 2·lisn). */
const vmmEoi = (e: VmEnv, lisn: number): number => e.esb + (2 * lisn + 1) * P;

describe('routingViolations (I1)', () => {
  it('clean: the guest’s EOI page (probed) and the VMM’s PTE both reach the IPI backing the irq', () => {
    const { e, a, irq } = twoSources();
    const vm = e.host.kvm.vms[0]!;
    const g = run(e, 0);
    const w = new Word64();
    expect(e.vmm.load(vmmEoi(e, 0x100) + 0x800, 8, w)).toBe(0);
    expect(routingViolations(e.host, vm, [irq], (gpa) => g.load(gpa, 8, w))).toEqual([]);
    expect(vm.pt.lookup(irq.mgmtGpa / P, false)).toBe(a);
  });

  it('one stale PTE: a process mapping of the device file still reaches the IPI after the backing changed without a zap', () => {
    const { e, a, b } = twoSources();
    const vm = e.host.kvm.vms[0]!;
    const w = new Word64();
    expect(e.vmm.load(vmmEoi(e, 0x100) + 0x800, 8, w)).toBe(0);
    // Girq 0x100 now backed by 0x101's HW irq, as a bind would publish it — but nothing zapped.
    const st = vm.devices[0]!.xive.irqState(0x100)!;
    const other = vm.devices[0]!.xive.irqState(0x101)!;
    st.ptNumber = other.ipiNumber;
    st.ptData = other.ipiData;
    expect(routingViolations(e.host, vm, [], () => {})).toEqual([
      `pid ${e.vmm.pid} maps LISN 0x100's EOI page (hw irq 0x${other.ipiNumber.toString(16)}) at 0x${vmmEoi(e, 0x100).toString(16)} to p9.ipi-esb pfn 0x${a.toString(16)}, not pfn 0x${b.toString(16)}`,
    ]);
  });

  it('one stale partition-scoped entry: the guest’s EOI page reaches another irq’s page; no process PTE is wrong', () => {
    const { e, b, a, irq } = twoSources();
    const vm = e.host.kvm.vms[0]!;
    vm.pt.insert(irq.mgmtGpa / P, b, false);
    expect(routingViolations(e.host, vm, [irq], () => {})).toEqual([
      `nic0 vector 0 (LISN 0x100, IPI): the guest's EOI page reaches p9.ipi-esb pfn 0x${b.toString(16)}, not pfn 0x${a.toString(16)}`,
    ]);
  });
});

describe('isolationViolations (I2)', () => {
  it('clean: nothing reaches a page of the function that left', () => {
    const { e, a } = twoSources();
    const w = new Word64();
    expect(e.vmm.load(vmmEoi(e, 0x100) + 0x800, 8, w)).toBe(0);
    expect(isolationViolations(e.host, e.host.kvm.vms[0]!, (pfn) => pfn === a + 1000, 'nic0')).toEqual([]);
  });

  it('one stale PTE: a process still maps the gone page', () => {
    const { e, a } = twoSources();
    const w = new Word64();
    expect(e.vmm.load(vmmEoi(e, 0x100) + 0x800, 8, w)).toBe(0);
    expect(isolationViolations(e.host, null, (pfn) => pfn === a, 'nic0')).toEqual([
      `pid ${e.vmm.pid} still maps nic0's page pfn 0x${a.toString(16)} at 0x${vmmEoi(e, 0x100).toString(16)}`,
    ]);
  });

  it('one stale partition-scoped entry: the VM still maps the gone page; without a VM only PTEs are checked', () => {
    const { e, b, irq } = twoSources();
    const vm = e.host.kvm.vms[0]!;
    vm.pt.insert(irq.mgmtGpa / P, b, false);
    expect(isolationViolations(e.host, vm, (pfn) => pfn === b, 'nic0')).toEqual([
      `partition-scoped entry gpa 0x${irq.mgmtGpa.toString(16)} → nic0's page pfn 0x${b.toString(16)}`,
    ]);
    expect(isolationViolations(e.host, null, (pfn) => pfn === b, 'nic0')).toEqual([]);
  });
});

describe('PqModel', () => {
  it('the first MSI delivers, further ones coalesce in Q, a take re-delivers once for Q', () => {
    const m = new PqModel();
    m.raise('nic:0'); // P: delivery 1
    m.raise('nic:0'); // Q
    m.raise('nic:0'); // still Q
    m.raise('nic:1'); // P: delivery 1
    m.take(); // nic:0 EOI finds Q: re-trigger, delivery 2; nic:1 just EOI'd
    m.raise('nic:1'); // P again: delivery 2
    m.take();
    expect([...m.expected]).toEqual([
      ['nic:0', 2],
      ['nic:1', 2],
    ]);
  });
});

describe('deliveryFindings', () => {
  it('fewer deliveries are lost (I4), more are spurious (I5), sorted by key', () => {
    const handled = new Map([
      ['b:1', 3],
      ['a:0', 1],
      ['c:2', 2],
    ]);
    const expected = new Map([
      ['a:0', 4],
      ['b:1', 3],
      ['d:3', 1],
    ]);
    expect(deliveryFindings(handled, expected)).toEqual({
      lost: ['a:0: 3 of 4 expected deliveries lost', 'd:3: 1 of 1 expected deliveries lost'],
      spurious: ['c:2: 2 spurious deliveries beyond the 0 expected'],
    });
  });
});

describe('firstDifference', () => {
  it('names the first differing entry, a missing one as (none), and null when equal', () => {
    expect(firstDifference('delivery', ['0 a', '1 b'], ['0 a', '1 b'])).toBe(null);
    expect(firstDifference('delivery', ['0 a', '1 c'], ['0 a', '1 b'])).toBe(
      'delivery #1: "1 c" where the emulated reference has "1 b"',
    );
    expect(firstDifference('guest view', ['x'], ['x', 'y'])).toBe(
      'guest view #1: "(none)" where the emulated reference has "y"',
    );
  });
});
