/**
 * The VMM-seam designs (the debate's options 2–4) on a KVM sPAPR machine with the Linux-like
 * guest booted, through the VMM's vfio-pci: where the guest's ESB page of a passthrough irq
 * leads while bound and after unbind, what each design costs in memslots and VMAs per irq, what
 * happens at the memslot and vm.max_map_count limits, and what option 3 needs from the VMM and
 * the kernel.
 */
import { describe, expect, it } from 'vitest';
import { type DedicatedIrqsSeam, dedicatedIrqs } from '../../../src/designs/dedicated-irqs.ts';
import { type Design, DesignStats } from '../../../src/designs/design.ts';
import { emulated } from '../../../src/designs/emulated.ts';
import { type OverlapRegionsSeam, overlapRegions } from '../../../src/designs/overlap-regions.ts';
import { type QemuRemapSeam, qemuRemap } from '../../../src/designs/qemu-remap.ts';
import type { GuestKernel } from '../../../src/guest/kernel.ts';
import { EINVAL, ENOMEM, ENOSPC } from '../../../src/host/errno.ts';
import { createHost, type Host } from '../../../src/host/host.ts';
import type { KvmVm } from '../../../src/host/kvm/kvm.ts';
import type { KvmXiveNative } from '../../../src/host/kvm/xive-native.ts';
import { MAP_FIXED, MAP_SHARED, PROT_READ, PROT_WRITE } from '../../../src/host/mm/constants.ts';
import { Word64 } from '../../../src/hw/mmio.ts';
import { PciDevice } from '../../../src/hw/phb.ts';
import { bootGuestOnSlots } from '../../../src/scenario/guest-port.ts';
import { NULL_TRACE } from '../../../src/sim/trace-sink.ts';
import { type SpaprDeviceConfig, SpaprMachine } from '../../../src/vmm/spapr-machine.ts';
import { SPAPR_XIVE_VC_BASE } from '../../../src/vmm/spapr-xive.ts';
import { type VfioPciSeam, VmmVfioPci } from '../../../src/vmm/vfio-pci.ts';

const P = 0x1_0000;
const NVEC = 4;
/** A dedicated range above what the MSI bitmap hands out (option 4). */
const DEDICATED = [0x1800, 0x1801, 0x1802, 0x1803];

const mgmtGpa = (lisn: number): number => SPAPR_XIVE_VC_BASE + (2 * lisn + 1) * P;
const trigGpa = (lisn: number): number => SPAPR_XIVE_VC_BASE + 2 * lisn * P;

interface Env {
  host: Host;
  m: SpaprMachine;
  vm: KvmVm;
  x: KvmXiveNative;
  stats: DesignStats;
  lisns: number[];
  guest: GuestKernel | null;
}

interface EnvOptions {
  maxMemslots?: number;
  maxMapCount?: number;
  /** Boot the guest at creation (default true). */
  boot?: boolean;
  devices?: SpaprDeviceConfig[];
}

/** A KVM machine under design `d`: its flags and kernel seam in the host, its LISN range. */
function env(d: Design, o: EnvOptions = {}): Env {
  const stats = new DesignStats();
  const host = createHost({
    xiveFlags: d.xiveFlags,
    ...(o.maxMemslots !== undefined ? { maxMemslots: o.maxMemslots } : {}),
    ...(o.maxMapCount !== undefined ? { maxMapCount: o.maxMapCount } : {}),
  });
  const rec = d.kernelSeam(stats);
  if (rec !== null) host.kvm.xiveRecordMapping = rec;
  const nic: SpaprDeviceConfig =
    d.lisnRange === 'dedicated'
      ? { name: 'nic', msis: NVEC, lsis: 0, lisns: DEDICATED }
      : { name: 'nic', msis: NVEC, lsis: 0 };
  const m = new SpaprMachine({
    smp: 2,
    ramSize: 0x800_0000,
    devices: o.devices ?? [nic],
    trace: NULL_TRACE,
    accel: { kind: 'kvm', host },
  });
  const vm = host.kvm.vms[0]!;
  const e: Env = { host, m, vm, x: vm.devices[0]!.xive, stats, lisns: [...m.devices[0]!.msis], guest: null };
  if (o.boot !== false) boot(e);
  return e;
}

function boot(e: Env): void {
  e.guest = bootGuestOnSlots(e.m, NULL_TRACE).kernel;
}

function plug(e: Env, seam: VfioPciSeam | null, lisns = e.lisns, slot = 0): VmmVfioPci {
  const pdev = new PciDevice({ name: `vf${slot}`, msix: lisns.length });
  const dev = VmmVfioPci.plug(e.m, { phb: 0, slot, pdev }, lisns, seam);
  if (typeof dev === 'number') throw new Error(`plug failed: ${dev}`);
  return dev;
}

/** A guest PQ GET on the EOI page of `lisn`; the partition-scoped entry it leaves (pfn, −1 none). */
function probe(e: Env, lisn: number): number {
  e.m.cpus[0]!.load(mgmtGpa(lisn) + 0x800, 8, new Word64());
  return e.vm.pt.lookup(mgmtGpa(lisn) / P, false);
}

const devEoi = (e: Env, slot: number, v: number): number => e.host.phbs[0]!.msiTriggerPage(slot, v) / P + 1;
const ipiEoi = (e: Env, lisn: number): number => e.x.irqState(lisn)!.ipiData.eoiPage / P;
const vmas = (e: Env): number => e.m.kvm!.proc.proc.mm.vmas.count;
const slots = (e: Env): number => e.vm.stats.memslotsUsed;

/** Every PTE and partition-scoped entry on the pages of the function in `slot`. */
function leftOnSlot(e: Env, slot: number): number {
  const phb = e.host.phbs[0]!;
  let n = 0;
  for (const p of e.host.mm.processes)
    p.mm.pgtable.scan(0, Number.MAX_SAFE_INTEGER, (_vpn, pfn) => {
      if (phb.pfnInSlot(slot, pfn)) n++;
    });
  return n + e.vm.pt.entriesPointingAt((pfn) => phb.pfnInSlot(slot, pfn)).length;
}

describe('VMM-seam designs: where the guest ESB page of a passthrough irq leads', () => {
  for (const d of [overlapRegions, qemuRemap]) {
    it(`${d.name}: IPI before the bind, the device while bound, the IPI again after unbind — the kernel zaps nothing`, () => {
      const e = env(d);
      const before = e.lisns.map((l) => probe(e, l));
      expect(before).toEqual(e.lisns.map((l) => ipiEoi(e, l)));
      const dev = plug(e, d.vmmSeam!());
      expect(e.lisns.map((l) => probe(e, l))).toEqual(e.lisns.map((_, v) => devEoi(e, 0, v)));
      // The trigger page too.
      e.m.cpus[0]!.load(trigGpa(e.lisns[1]!), 8, new Word64());
      expect(e.vm.pt.lookup(trigGpa(e.lisns[1]!) / P, false)).toBe(devEoi(e, 0, 1) - 1);
      expect(dev.unplug()).toBe(0);
      expect(leftOnSlot(e, 0)).toBe(0);
      expect(e.lisns.map((l) => probe(e, l))).toEqual(before);
      // The kernel was asked to re-point 4 irqs twice and zapped nothing.
      expect(e.stats.repoints).toBe(2 * NVEC);
      expect(e.stats.zaps).toBe(0);
      expect(e.x.stats.setMapped).toBe(NVEC);
      expect(e.x.stats.clrMapped).toBe(NVEC);
      // Plug again: the same switch.
      const again = plug(e, d.vmmSeam!());
      expect(e.lisns.map((l) => probe(e, l))).toEqual(e.lisns.map((_, v) => devEoi(e, 0, v)));
      expect(again.unplug()).toBe(0);
      expect(e.lisns.map((l) => probe(e, l))).toEqual(before);
    });
  }

  it('dedicated-irqs: bound before the guest boots, its own irq numbers are backed by the device from the first access on — never an IPI — and are retired at unplug', () => {
    const e = env(dedicatedIrqs, { boot: false });
    expect(e.lisns).toEqual(DEDICATED);
    const seam = dedicatedIrqs.vmmSeam!() as DedicatedIrqsSeam;
    const dev = plug(e, seam);
    boot(e);
    // The guest's view: its irqs are the dedicated numbers (not QEMU's 0x1300…: I6).
    expect(
      e
        .guest!.irqs()
        .filter((q) => q.kind === 'msi')
        .map((q) => q.lisn),
    ).toEqual(DEDICATED);
    // Booting touched the EOI pages: the device's, from the first fault.
    for (const [v, l] of e.lisns.entries())
      expect(e.vm.pt.lookup(mgmtGpa(l) / P, false)).toBe(devEoi(e, 0, v));
    expect(e.lisns.map((l) => probe(e, l))).toEqual(e.lisns.map((_, v) => devEoi(e, 0, v)));
    const vmasBound = vmas(e);
    expect(dev.unplug()).toBe(0);
    expect(seam.retired).toEqual(DEDICATED);
    expect(leftOnSlot(e, 0)).toBe(0);
    // Retired: no entry, no IPI; a guest access is a KVM_RUN failure (QEMU would abort).
    const fails = e.vm.stats.partitionFaultErrors;
    expect(e.lisns.map((l) => probe(e, l))).toEqual([-1, -1, -1, -1]);
    expect(e.vm.stats.partitionFaultErrors - fails).toBe(NVEC);
    // The ESB VMA split once around the retired range (4 contiguous irqs: one anonymous piece).
    expect(vmas(e) - vmasBound).toBe(2);
    expect(e.stats.repoints).toBe(2 * NVEC);
    expect(e.stats.zaps).toBe(0);
  });

  it('dedicated-irqs rests on fresh numbers: if the guest touched them before the bind (a function plugged after the guest probed its device), it stays on the IPI, as nothing zaps; and a retired number stays dead on a re-plug', () => {
    const e = env(dedicatedIrqs);
    const before = e.lisns.map((l) => probe(e, l));
    expect(before).toEqual(e.lisns.map((l) => ipiEoi(e, l)));
    const dev = plug(e, dedicatedIrqs.vmmSeam!());
    expect(e.lisns.map((l) => probe(e, l))).toEqual(before);
    expect(dev.unplug()).toBe(0);
    const again = plug(e, dedicatedIrqs.vmmSeam!());
    expect(e.lisns.map((l) => probe(e, l))).toEqual([-1, -1, -1, -1]);
    expect(again.unplug()).toBe(0);
  });

  it('dedicated-irqs: the machine claims exactly the given LISNs and leaves the MSI bitmap alone; without them the emulated numbering is unchanged', () => {
    const e = env(dedicatedIrqs, { boot: false });
    expect(e.m.devices[0]!.msis).toEqual(DEDICATED);
    expect(e.m.msiMap.used).toBe(0);
    const ref = new SpaprMachine({
      smp: 2,
      ramSize: 0x800_0000,
      devices: [{ name: 'nic', msis: NVEC, lsis: 0 }],
      trace: NULL_TRACE,
    });
    expect(ref.devices[0]!.msis).toEqual([0x1300, 0x1301, 0x1302, 0x1303]);
    expect(
      () =>
        new SpaprMachine({
          smp: 1,
          ramSize: 0x400_0000,
          devices: [{ name: 'a', msis: 2, lsis: 0, lisns: [0x1800] }],
        }),
    ).toThrow(/1 LISNs given for 2 MSIs/);
    expect(
      () =>
        new SpaprMachine({
          smp: 1,
          ramSize: 0x400_0000,
          devices: [
            { name: 'a', msis: 1, lsis: 0, lisns: [0x1800] },
            { name: 'b', msis: 1, lsis: 0, lisns: [0x1800] },
          ],
        }),
    ).toThrow(/not free/);
    expect(emulated.option).toBe(0);
    expect(emulated.kernelSeam(new DesignStats())).toBe(null);
    expect(emulated.vmmSeam).toBe(undefined);
  });
});

describe('overlap-regions: what option 2 leaves to the kernel', () => {
  it("the VMM's own accesses to a bound irq (PQ save/restore at VM stop/start) go through its KVM ESB mapping, which nothing re-points: bound before the first access, the device page stays in the VMM's page table after unplug and the guest reaches it again (I2)", () => {
    const e = env(overlapRegions, { boot: false });
    const dev = plug(e, overlapRegions.vmmSeam!());
    boot(e);
    expect(e.m.vmStop()).toBe(0);
    expect(e.m.vmStart()).toBe(0);
    expect(dev.unplug()).toBe(0);
    // The VMM's PTEs of the 4 irqs' EOI pages (its KVM mapping) still point at the function.
    expect(leftOnSlot(e, 0)).toBe(NVEC);
    // With the overlay gone the ESB memslot leads the guest through those PTEs.
    expect(probe(e, e.lisns[0]!)).toBe(devEoi(e, 0, 0));
    expect(leftOnSlot(e, 0)).toBe(NVEC + 1);
  });
});

describe('VMM-seam designs: costs per passthrough irq', () => {
  it('overlap-regions: each passthrough irq costs memslots — k contiguous irqs split the ESB slot into k + 2, k scattered ones into 2k + 1; unbind gives them back', () => {
    const e = env(overlapRegions);
    expect(slots(e)).toBe(3); // RAM, ESB, TIMA
    const vmas0 = vmas(e);
    const seam = overlapRegions.vmmSeam!() as OverlapRegionsSeam;
    const one = plug(e, seam, [e.lisns[0]!]);
    expect(slots(e)).toBe(3 + 2);
    expect(one.unplug()).toBe(0);
    expect(slots(e)).toBe(3);
    const four = plug(e, seam);
    expect(slots(e)).toBe(3 + NVEC + 1);
    // Each overlay is a mapping of the VFIO fd in the VMM: one VMA per irq.
    expect(vmas(e) - vmas0).toBe(NVEC);
    expect(four.unplug()).toBe(0);
    expect(slots(e)).toBe(3);
    expect(vmas(e)).toBe(vmas0);
    // Scattered irqs (every other LISN of a bigger device).
    const f = env(overlapRegions, { devices: [{ name: 'big', msis: 8, lsis: 0 }] });
    const scattered = [0, 2, 4, 6].map((i) => f.lisns[i]!);
    const s = plug(f, overlapRegions.vmmSeam!(), scattered);
    expect(slots(f)).toBe(3 + 2 * 4);
    expect(f.vm.stats.memslotsPeak).toBe(3 + 2 * 4);
    expect(s.unplug()).toBe(0);
    expect(slots(f)).toBe(3);
    expect(seam.added).toBe(1 + NVEC);
    expect(seam.removed).toBe(1 + NVEC);
  });

  it('qemu-remap: no memslot, but VMAs — k contiguous irqs split the ESB VMA into k + 2 pieces, and the pieces stay split after unbind (VM_PFNMAP VMAs never merge)', () => {
    const e = env(qemuRemap);
    const vmas0 = vmas(e);
    const seam = qemuRemap.vmmSeam!() as QemuRemapSeam;
    const one = plug(e, seam, [e.lisns[1]!]);
    expect(slots(e)).toBe(3);
    expect(vmas(e) - vmas0).toBe(2);
    expect(one.unplug()).toBe(0);
    expect(vmas(e) - vmas0).toBe(2);
    const four = plug(e, seam);
    expect(slots(e)).toBe(3);
    expect(vmas(e) - vmas0).toBe(NVEC + 1);
    expect(four.unplug()).toBe(0);
    expect(vmas(e) - vmas0).toBe(NVEC + 1);
    expect(e.vm.stats.memslotsPeak).toBe(3);
    expect(seam.mappedIn).toBe(1 + NVEC);
    expect(seam.mappedBack).toBe(1 + NVEC);
    expect(seam.failures).toBe(0);
  });

  it('dedicated-irqs: no memslot and no VMA while bound', () => {
    const e = env(dedicatedIrqs, { boot: false });
    const vmas0 = vmas(e);
    const dev = plug(e, dedicatedIrqs.vmmSeam!());
    boot(e);
    expect(slots(e)).toBe(3);
    expect(vmas(e)).toBe(vmas0);
    expect(dev.unplug()).toBe(0);
    expect(slots(e)).toBe(3);
  });
});

describe('VMM-seam designs: at the limits', () => {
  it('overlap-regions: out of memslots the bind fails with −ENOSPC (QEMU would abort in kvm_alloc_slot), the overlay is taken back out, the function unplugged, the guest still on its IPIs', () => {
    const e = env(overlapRegions, { maxMemslots: 6 });
    expect(e.m.kvm!.nrSlots).toBe(6);
    const seam = overlapRegions.vmmSeam!() as OverlapRegionsSeam;
    const before = e.lisns.map((l) => probe(e, l));
    // 1 irq: 5 slots, fits; 4 contiguous irqs need 8.
    const one = plug(e, seam, [e.lisns[0]!]);
    expect(slots(e)).toBe(5);
    expect(one.unplug()).toBe(0);
    const pdev = new PciDevice({ name: 'vf', msix: NVEC });
    expect(VmmVfioPci.plug(e.m, { phb: 0, slot: 0, pdev }, e.lisns, seam)).toBe(-ENOSPC);
    expect(seam.memslotFailures).toBe(1);
    expect(seam.lastError).toBe('kvm_alloc_slot: no free slot available');
    // The third irq's view wanted 3 + 3 + 1 slots; all four would need 3 + 4 + 1.
    expect(seam.lastWanted).toBe(7);
    expect(seam.overlays.size).toBe(0);
    expect(slots(e)).toBe(3);
    const ioctls = e.m.kvm!.listener!.ioctls;
    expect(seam.memslotsWanted(e.m, e.lisns)).toBe(8);
    expect([slots(e), e.m.kvm!.listener!.ioctls]).toEqual([3, ioctls]);
    expect(e.m.kvm!.listener!.slots().map((s) => s.region)).toEqual([
      'ppc_spapr.ram',
      'xive.esb-kvm',
      'xive.tima',
    ]);
    expect(pdev.phb).toBe(null);
    expect(e.x.stats.clrMapped).toBe(e.x.stats.setMapped);
    expect(leftOnSlot(e, 0)).toBe(0);
    expect(e.lisns.map((l) => probe(e, l))).toEqual(before);
  });

  it('qemu-remap: at vm.max_map_count the MAP_FIXED split fails with −ENOMEM; mapping back needs more room (mremap wants map_count + 2 < max − 3), so near the limit a remapped irq cannot go back and dies with its function', () => {
    const base = vmas(env(qemuRemap, { boot: false }));
    // Room for one split only: the second irq's MAP_FIXED fails, and so does mapping the first back.
    const e = env(qemuRemap, { maxMapCount: base + 1 });
    const seam = qemuRemap.vmmSeam!() as QemuRemapSeam;
    const two = [e.lisns[0]!, e.lisns[2]!];
    const pdev = new PciDevice({ name: 'vf', msix: 2 });
    expect(VmmVfioPci.plug(e.m, { phb: 0, slot: 0, pdev }, two, seam)).toBe(-ENOMEM);
    expect(seam.mappedIn).toBe(1);
    expect(seam.mappedBack).toBe(0);
    expect(seam.failures).toBe(2);
    expect(seam.lastError).toBe(`mmap of the KVM ESB pages for irq ${two[0]}: errno ${ENOMEM}`);
    expect(pdev.phb).toBe(null);
    // VFIO revoked the function's pages at unbind: nothing reaches them…
    expect(leftOnSlot(e, 0)).toBe(0);
    // … but the first irq's pages are still the (revoked) VFIO mapping: a guest access fails.
    const fails = e.vm.stats.partitionFaultErrors;
    expect(probe(e, two[0]!)).toBe(-1);
    expect(e.vm.stats.partitionFaultErrors).toBe(fails + 1);
    expect(probe(e, two[1]!)).toBe(ipiEoi(e, two[1]!));

    // Room for both splits: the bind works, the unbind cannot map back (−ENOMEM from mremap).
    const f = env(qemuRemap, { maxMapCount: base + 8 });
    const seam2 = qemuRemap.vmmSeam!() as QemuRemapSeam;
    const dev = VmmVfioPci.plug(
      f.m,
      { phb: 0, slot: 0, pdev: new PciDevice({ name: 'vf', msix: 2 }) },
      two,
      seam2,
    );
    if (typeof dev === 'number') throw new Error(`plug: ${dev}`);
    expect(vmas(f)).toBe(base + 4);
    expect(dev.unplug()).toBe(-ENOMEM);
    expect(seam2.lastError).toBe(`mremap of the KVM ESB pages of irq ${two[1]} into place: errno ${ENOMEM}`);
    expect(seam2.mappedBack).toBe(0);
    expect(leftOnSlot(f, 0)).toBe(0);
    expect(probe(f, two[0]!)).toBe(-1);
    // With the default limit (65530) the same sequence maps both back.
    const g = env(qemuRemap);
    const ok = plug(g, qemuRemap.vmmSeam!(), two);
    expect(ok.unplug()).toBe(0);
    expect(probe(g, two[0]!)).toBe(ipiEoi(g, two[0]!));
  });
});

describe('qemu-remap: what option 3 needs', () => {
  it('works only with a VMM that tracks bind/unbind: with qemu-remap’s kernel seam and a VMM that calls no seam, the guest stays on the IPI page after the bind', () => {
    const e = env(qemuRemap);
    const before = e.lisns.map((l) => probe(e, l));
    const dev = plug(e, null);
    expect(e.lisns.map((l) => e.x.irqState(l)!.ptNumber)).toEqual(
      e.lisns.map((_, v) => e.host.phbs[0]!.msiHwIrq(0, v)),
    );
    expect(e.lisns.map((l) => probe(e, l))).toEqual(before);
    expect(e.stats.zaps).toBe(0);
    expect(dev.unplug()).toBe(0);
  });

  it('the merged device refuses an mmap at file page 4 + 2n (kvmppc_xive_native_mmap()): mapping the KVM pages back directly fails with −EINVAL and leaves a hole in the ESB mapping', () => {
    const e = env(qemuRemap);
    const xk = e.m.xiveKvm!;
    const p = e.m.kvm!.proc;
    const l = e.lisns[0]!;
    const at = xk.esbMmap + 2 * l * P;
    const r = p.mmap(at, 2 * P, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED, xk.fd, (4 + 2 * l) * P);
    expect(r).toBe(-EINVAL);
    expect(p.proc.mm.vmas.find(at)?.start === at).toBe(false);
    expect(p.load(at + P + 0x800, 8, new Word64())).not.toBe(0);
  });

  it('with the merged fault handler (page offset relative to the VMA) every irq above a remapped one resolves to the wrong source (irq n above resolves as irq n − 1 − the remapped one)', () => {
    const d: Design = {
      ...qemuRemap,
      xiveFlags: { ...qemuRemap.xiveFlags, faultUsesVmaRelativePgoff: true },
    };
    const e = env(d);
    const dev = plug(e, d.vmmSeam!(), [e.lisns[0]!]);
    // The irq right above it, trigger page not touched yet: the piece above starts at its pages,
    // so the relative page offset is 0 — irq 0, vCPU 0's IPI.
    const l = e.lisns[1]!;
    e.m.cpus[0]!.load(trigGpa(l), 8, new Word64());
    const got = e.vm.pt.lookup(trigGpa(l) / P, false);
    expect(got).not.toBe(e.x.irqState(l)!.ipiData.trigPage / P);
    expect(got).toBe(e.x.irqState(0)!.ipiData.trigPage / P);
    // Two irqs above: irq 2, no source at all (2 vCPUs): SIGBUS, a KVM_RUN failure.
    const fails = e.vm.stats.partitionFaultErrors;
    e.m.cpus[0]!.load(trigGpa(e.lisns[3]!), 8, new Word64());
    expect(e.vm.stats.partitionFaultErrors).toBe(fails + 1);
    expect(dev.unplug()).toBe(0);
  });
});
