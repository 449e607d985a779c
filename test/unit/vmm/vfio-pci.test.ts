/**
 * The VMM's vfio-pci (QEMU hw/vfio/pci.c in KVM mode) on a KVM sPAPR machine with the guest
 * booted: plug/unplug through the machine's VMM process, error unwinding, MSIs of the function
 * delivered to the guest, nothing left on the function's pages after unplug.
 */
import { describe, expect, it } from 'vitest';
import { rmapFixed } from '../../../src/designs/rmap-fixed.ts';
import { EINVAL, EMFILE, ENODEV, ENOSPC } from '../../../src/host/errno.ts';
import { createHost, type Host } from '../../../src/host/host.ts';
import type { XiveNativeFlags } from '../../../src/host/kvm/xive-native-flags.ts';
import { Word64 } from '../../../src/hw/mmio.ts';
import { PciDevice } from '../../../src/hw/phb.ts';
import { bootGuestOnSlots } from '../../../src/scenario/guest-port.ts';
import { NULL_TRACE } from '../../../src/sim/trace-sink.ts';
import { SpaprMachine } from '../../../src/vmm/spapr-machine.ts';
import { SPAPR_XIVE_VC_BASE } from '../../../src/vmm/spapr-xive.ts';
import { type VfioPciSeam, VmmVfioPci } from '../../../src/vmm/vfio-pci.ts';

const P = 0x1_0000;
const NVEC = 4;

/** Guest physical address of the EOI page of `lisn`. */
const mgmtGpa = (lisn: number): number => SPAPR_XIVE_VC_BASE + (2 * lisn + 1) * P;

function setup(xiveFlags: Partial<XiveNativeFlags> = {}): { host: Host; m: SpaprMachine; lisns: number[] } {
  const host = createHost({ xiveFlags });
  const m = new SpaprMachine({
    smp: 2,
    ramSize: 0x800_0000,
    devices: [{ name: 'nic', msis: NVEC, lsis: 0 }],
    trace: NULL_TRACE,
    accel: { kind: 'kvm', host },
  });
  return { host, m, lisns: [...m.devices[0]!.msis] };
}

/** Every PTE of any process and every partition-scoped entry on the function's pages. */
function leftOnSlot(host: Host, slot: number): string[] {
  const phb = host.phbs[0]!;
  const out: string[] = [];
  for (const p of host.mm.processes)
    p.mm.pgtable.scan(0, Number.MAX_SAFE_INTEGER, (vpn, pfn) => {
      if (phb.pfnInSlot(slot, pfn)) out.push(`pid ${p.pid} va ${(vpn * P).toString(16)}`);
    });
  for (const [gfn] of host.kvm.vms[0]!.pt.entriesPointingAt((pfn) => phb.pfnInSlot(slot, pfn)))
    out.push(`gpa ${(gfn * P).toString(16)}`);
  return out;
}

describe('VmmVfioPci', () => {
  it('plug binds every vector through the VMM process (irqfd GSI = LISN, SET_IRQS → set_mapped); unplug undoes it all and frees the slot', () => {
    const { host, m, lisns } = setup();
    const pdev = new PciDevice({ name: 'vf0', msix: NVEC });
    const fdsBefore = m.kvm!.proc.proc.openFds().length;
    const dev = VmmVfioPci.plug(m, { phb: 0, slot: 1, pdev }, lisns, null);
    if (typeof dev === 'number') throw new Error(`plug: ${dev}`);
    expect(dev.plugged).toBe(true);
    expect(dev.lisns).toEqual(lisns);
    expect(pdev.phb).toBe(host.phbs[0]);
    expect(pdev.slot).toBe(1);
    expect(dev.eventfds.length).toBe(NVEC);
    expect(dev.stats.irqfdsAssigned).toBe(NVEC);
    // vfio fd + 4 eventfds in the VMM.
    expect(m.kvm!.proc.proc.openFds().length).toBe(fdsBefore + 1 + NVEC);
    const x = host.kvm.vms[0]!.devices[0]!.xive;
    expect(x.stats.setMapped).toBe(NVEC);
    expect(lisns.map((l) => x.irqState(l)!.ptNumber)).toEqual(
      lisns.map((_, v) => host.phbs[0]!.msiHwIrq(1, v)),
    );
    expect(host.vfio.stats.vectorsSet).toBe(NVEC);

    expect(dev.unplug()).toBe(0);
    expect(dev.plugged).toBe(false);
    expect(x.stats.clrMapped).toBe(NVEC);
    for (const l of lisns) expect(x.irqState(l)!.ptNumber).toBe(0);
    expect(dev.stats.irqfdsDeassigned).toBe(NVEC);
    expect(m.kvm!.proc.proc.openFds().length).toBe(fdsBefore);
    expect(pdev.phb).toBe(null);
    expect(host.phbs[0]!.slots[1]!.device).toBe(null);
    expect(host.vfio.devices.length).toBe(0);
    expect(dev.unplug()).toBe(-ENODEV);
  });

  it('a function already plugged in its slot (by the host admin) is taken as it is', () => {
    const { host, m, lisns } = setup();
    const pdev = new PciDevice({ name: 'vf0', msix: NVEC });
    expect(host.phbs[0]!.plug(2, pdev)).toBe(true);
    const dev = VmmVfioPci.plug(m, { phb: 0, slot: 2, pdev }, lisns, null) as VmmVfioPci;
    expect(typeof dev).toBe('object');
    expect(dev.unplug()).toBe(0);
    expect(host.phbs[0]!.slots[2]!.device).toBe(null);
    // … but not one plugged elsewhere, an unknown PHB, an emulated machine, or no vector.
    const q = new PciDevice({ name: 'vf1', msix: NVEC });
    expect(host.phbs[0]!.plug(3, q)).toBe(true);
    expect(VmmVfioPci.plug(m, { phb: 0, slot: 1, pdev: q }, lisns, null)).toBe(-EINVAL);
    expect(
      VmmVfioPci.plug(m, { phb: 7, slot: 1, pdev: new PciDevice({ name: 'x', msix: 1 }) }, lisns, null),
    ).toBe(-EINVAL);
    expect(VmmVfioPci.plug(m, { phb: 0, slot: 3, pdev: q }, [], null)).toBe(-EINVAL);
    const emu = new SpaprMachine({ smp: 1, ramSize: 0x400_0000, devices: [], trace: NULL_TRACE });
    expect(VmmVfioPci.plug(emu, { phb: 0, slot: 3, pdev: q }, lisns, null)).toBe(-EINVAL);
  });

  it('errors unwind what was done: too few MSI-X vectors (GET_IRQ_INFO), RLIMIT_NOFILE at the third eventfd, a seam failing on bind or on unbind', () => {
    const { host, m, lisns } = setup();
    const x = host.kvm.vms[0]!.devices[0]!.xive;
    const fds = m.kvm!.proc.proc.openFds().length;
    const clean = (): void => {
      expect(m.kvm!.proc.proc.openFds().length).toBe(fds);
      expect(host.phbs[0]!.slots[1]!.device).toBe(null);
      expect(host.vfio.devices.length).toBe(0);
      for (const l of lisns) expect(x.irqState(l)!.ptNumber).toBe(0);
    };
    // A 2-vector function for 4 irqs.
    expect(
      VmmVfioPci.plug(m, { phb: 0, slot: 1, pdev: new PciDevice({ name: 'a', msix: 2 }) }, lisns, null),
    ).toBe(-EINVAL);
    clean();
    // RLIMIT_NOFILE reached at the third eventfd: −EMFILE; two irqfds deassigned, fds closed.
    const mmHost = host.mm as unknown as { nrOpen: number };
    const nrOpen = mmHost.nrOpen;
    mmHost.nrOpen = fds + 3; // the device fd + 2 eventfds
    expect(
      VmmVfioPci.plug(m, { phb: 0, slot: 1, pdev: new PciDevice({ name: 'b', msix: NVEC }) }, lisns, null),
    ).toBe(-EMFILE);
    mmHost.nrOpen = nrOpen;
    expect(host.kvm.vms[0]!.irqfds.items.length).toBe(0);
    clean();
    // A seam failing on vector 2: vectors 1 and 0 get `unbinding`, in that order, then the rest.
    const calls: string[] = [];
    const seam: VfioPciSeam = {
      bound: (_d, v) => {
        calls.push(`bound ${v.vector}`);
        return v.vector === 2 ? -ENOSPC : 0;
      },
      unbinding: (_d, v) => {
        calls.push(`unbinding ${v.vector}`);
        return 0;
      },
    };
    expect(
      VmmVfioPci.plug(m, { phb: 0, slot: 1, pdev: new PciDevice({ name: 'c', msix: NVEC }) }, lisns, seam),
    ).toBe(-ENOSPC);
    expect(calls).toEqual(['bound 0', 'bound 1', 'bound 2', 'unbinding 1', 'unbinding 0']);
    expect(x.stats.setMapped).toBe(NVEC);
    expect(x.stats.clrMapped).toBe(NVEC);
    clean();
    // A seam failing on unbind: unplug goes on and returns the first error.
    calls.length = 0;
    const seam2: VfioPciSeam = { bound: () => 0, unbinding: (_d, v) => (v.vector === 1 ? -EINVAL : 0) };
    const dev = VmmVfioPci.plug(
      m,
      { phb: 0, slot: 1, pdev: new PciDevice({ name: 'd', msix: NVEC }) },
      lisns,
      seam2,
    );
    if (typeof dev === 'number') throw new Error(`plug: ${dev}`);
    expect(dev.unplug()).toBe(-EINVAL);
    expect(dev.stats.seamErrors).toBe(1);
    expect(dev.lastError).toContain('vector 1');
    clean();
  });

  it("mainline set_mapped: the function's MSIs reach the guest's queue with EISN = the LISN, which this guest does not know (it configured EISN = virq)", () => {
    const { m, lisns } = setup();
    const guest = bootGuestOnSlots(m, NULL_TRACE).kernel;
    const pdev = new PciDevice({ name: 'vf0', msix: NVEC });
    expect(typeof VmmVfioPci.plug(m, { phb: 0, slot: 0, pdev }, lisns, null)).toBe('object');
    const w = new Word64();
    for (const l of lisns) m.cpus[0]!.load(mgmtGpa(l) + 0xc00, 8, w);
    pdev.raiseMsi(0);
    for (let c = 0; c < 2; c++) guest.takePendingInterrupts(c);
    expect(guest.delivered(lisns[0]!)).toBe(0);
    expect([...guest.unknownEisns()]).toEqual([[lisns[0]!, 1]]);
  });

  it('the guest gets the MSIs the function raises (irq bypass: no VMM exit, no eventfd), and after unplug nothing maps the function', () => {
    // set_mapped with the EISN the guest configured and the PQ carried over (rmap-fixed's flags).
    const { host, m, lisns } = setup(rmapFixed.xiveFlags);
    const guest = bootGuestOnSlots(m, NULL_TRACE).kernel;
    const got: string[] = [];
    guest.drivers[0]!.onInterrupt = (kind, v, cpu) => got.push(`${kind} ${v} cpu ${cpu}`);
    const pdev = new PciDevice({ name: 'vf0', msix: NVEC });
    const dev = VmmVfioPci.plug(m, { phb: 0, slot: 0, pdev }, lisns, null) as VmmVfioPci;
    // The guest's PQ 00 was carried over to the function's sources by set_mapped.
    expect(host.phbs[0]!.slots[0]!.msiSource.getPq(0)).toBe(0);
    const vm = host.kvm.vms[0]!;
    const exits = vm.stats.mmioExits;
    for (let v = 0; v < NVEC; v++) expect(pdev.raiseMsi(v)).toBe(true);
    for (let c = 0; c < 2; c++) guest.takePendingInterrupts(c);
    expect(got).toEqual(['msi 0 cpu 0', 'msi 2 cpu 0', 'msi 1 cpu 1', 'msi 3 cpu 1']);
    for (const l of lisns) expect(guest.delivered(l)).toBe(1);
    expect(vm.stats.mmioExits).toBe(exits);
    // Through the bypass the host handler never ran (no eventfd signal).
    expect(host.vfio.stats.hostIrqs).toBe(0);
    // The guest reached the function's EOI pages while bound.
    for (let v = 0; v < NVEC; v++)
      expect(vm.pt.lookup(mgmtGpa(lisns[v]!) / P, false)).toBe(host.phbs[0]!.msiTriggerPage(0, v) / P + 1);
    expect(leftOnSlot(host, 0).length).toBeGreaterThan(0);
    expect(dev.unplug()).toBe(0);
    expect(leftOnSlot(host, 0)).toEqual([]);
  });
});

describe('VmmVfioPci without KVM (kernel_irqchip=off: the VMM relays the MSIs)', () => {
  it('each MSI of the function reaches the guest through its eventfd and the emulated source; unplug removes the relay', () => {
    const host = createHost();
    const m = new SpaprMachine({
      smp: 1,
      ramSize: 0x800_0000,
      devices: [{ name: 'nic', msis: NVEC, lsis: 0 }],
      trace: NULL_TRACE,
      vfioHost: host,
    });
    expect(m.kvm).toBe(null);
    const g = bootGuestOnSlots(m, NULL_TRACE).kernel;
    const got: number[] = [];
    g.drivers[0]!.onInterrupt = (_kind, v) => got.push(v);
    const pdev = new PciDevice({ name: 'vf0', msix: NVEC });
    const dev = VmmVfioPci.plug(m, { phb: 0, slot: 0, pdev }, m.devices[0]!.msis, null);
    if (typeof dev === 'number') throw new Error(`plug: ${dev}`);
    expect(dev.stats.irqfdsAssigned).toBe(0);
    for (let v = 0; v < NVEC; v++) pdev.setVectorMask(v, false);
    for (const v of [2, 0, 3]) {
      expect(pdev.raiseMsi(v)).toBe(true);
      g.takePendingInterrupts(0);
    }
    expect(got).toEqual([2, 0, 3]);
    // The emulated source was pulsed: QEMU's own XIVE saw the events.
    expect(m.xive.source.getPq(m.devices[0]!.msis[2]!)).toBe(0);
    expect(dev.unplug()).toBe(0);
    expect(host.phbs[0]!.slots[0]!.device).toBe(null);
    expect(pdev.raiseMsi(1)).toBe(false);
    g.takePendingInterrupts(0);
    expect(got).toEqual([2, 0, 3]);
    // Without a host at all there is nothing to pass through.
    const bare = new SpaprMachine({ smp: 1, ramSize: 0x400_0000, devices: [], trace: NULL_TRACE });
    expect(
      VmmVfioPci.plug(bare, { phb: 0, slot: 1, pdev: new PciDevice({ name: 'x', msix: 1 }) }, [0x1300], null),
    ).toBe(-EINVAL);
  });
});
