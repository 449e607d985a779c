/**
 * Option 2 of the debate (review of the XIVE native mode series, 2019): "remap in QEMU with overlapping MemoryRegions". The
 * kernel never re-points anything; when a vector is bound the VMM maps the function's two ESB
 * pages of that vector (from the VFIO device fd's ESB region, a model extension: mainline VFIO
 * exposes no such region) and lays a RAM-device region over the irq's two pages inside
 * `xive.esb`, at priority 2 (above `xive.esb-kvm`, priority 1). The flat view splits there and the
 * KVM memory listener turns every piece into its own memslot: the one ESB memslot becomes
 * three for an irq in the middle of the window, and each further passthrough irq splits one more
 * — David's objection, memslots are a small fixed pool. On unbind the overlay is removed (the
 * ESB slot is whole again) and the pages unmapped.
 *
 * When the listener runs out of memslots QEMU aborts (`kvm_alloc_slot: no free slot available`).
 * Here the seam catches that abort, notes how many memslots the refused view wanted, takes the
 * overlay back out (the old slots come back), counts the failure and returns −ENOSPC, so the bind
 * fails observably instead of the model crashing. {@link OverlapRegionsSeam.memslotsWanted}
 * counts what the VM would need were the refused irqs bound too, for the plots past the limit.
 *
 * @remarks Models what an option-2 QEMU would do in hw/vfio/pci.c at vector use: vfio_region_mmap()
 * of the region, memory_region_init_ram_device_ptr() and memory_region_add_subregion_overlap()
 * inside memory_region_transaction_begin()/commit() (softmmu/memory.c), with
 * accel/kvm/kvm-all.c:kvm_region_add()/kvm_region_del() making the memslots.
 */

import { ENOSPC } from '../host/errno.ts';
import { XIVE_NATIVE_FIXED } from '../host/kvm/xive-native-flags.ts';
import { MAP_SHARED, PAGE_SIZE, PROT_READ, PROT_WRITE } from '../host/mm/constants.ts';
import { VFIO_PCI_ESB_REGION_PGOFF } from '../host/vfio/vfio.ts';
import { generateMemoryTopology } from '../vmm/address-space.ts';
import { MemoryRegion } from '../vmm/memory-region.ts';
import type { SpaprMachine } from '../vmm/spapr-machine.ts';
import { SPAPR_XIVE_ESB_SHIFT } from '../vmm/spapr-xive.ts';
import { ProcessRangeOps, type VfioPciSeam, type VfioVector, type VmmVfioPci } from '../vmm/vfio-pci.ts';
import { type Design, vmmSwitchesPages } from './design.ts';

/** Bytes of one irq's ESB pages (trigger + EOI). */
const ESB_PAIR = 2 ** SPAPR_XIVE_ESB_SHIFT;
/** Priority of the overlays: above `xive.esb-kvm` (1) and `xive.esb-emulated` (0). */
export const OVERLAY_PRIORITY = 2;

/** One overlay in place. */
interface Overlay {
  readonly mr: MemoryRegion;
  /** The VMM's mapping of the function's two ESB pages. */
  readonly addr: number;
}

/** The option-2 VMM seam: one RAM-device overlay per bound vector. */
export class OverlapRegionsSeam implements VfioPciSeam {
  /** Overlays in place, by guest irq. */
  readonly overlays: Map<number, Overlay>;
  /** Overlays laid / taken out. */
  added: number;
  removed: number;
  /** Binds refused because the memory listener ran out of memslots (QEMU would abort). */
  memslotFailures: number;
  /** mmaps of the VFIO ESB region that failed. */
  mmapFailures: number;
  /** The last failure, with QEMU's message. */
  lastError: string | null;
  /** Memslots the view of the last bind refused at the limit wanted (0: none refused). */
  lastWanted: number;

  constructor() {
    this.overlays = new Map();
    this.added = 0;
    this.removed = 0;
    this.memslotFailures = 0;
    this.mmapFailures = 0;
    this.lastError = null;
    this.lastWanted = 0;
  }

  bound(dev: VmmVfioPci, v: VfioVector): number {
    const m = dev.machine;
    const p = m.kvm!.proc;
    const addr = p.mmap(
      0,
      ESB_PAIR,
      PROT_READ | PROT_WRITE,
      MAP_SHARED,
      v.vfioFd,
      (VFIO_PCI_ESB_REGION_PGOFF + 2 * v.vector) * PAGE_SIZE,
    );
    if (addr < 0) {
      this.mmapFailures++;
      this.lastError = `vfio_region_mmap: ESB pages of vector ${v.vector}: errno ${-addr}`;
      return addr;
    }
    const mr = MemoryRegion.ramDevice(
      `vfio-esb ${dev.pdev.name}[${v.vector}]`,
      ESB_PAIR,
      addr,
      new ProcessRangeOps(p, addr),
    );
    const aborted = transaction(m.sysmem, () =>
      m.esbRegion.addSubregionOverlap(v.lisn * ESB_PAIR, mr, OVERLAY_PRIORITY),
    );
    if (aborted !== null) {
      // The refused view is installed (the listener failed while applying it): count its slots.
      this.lastWanted = m.kvm!.listener!.slotsFor(m.sysmem.flatView);
      // Take the overlay back out: the deletions run first, so the old slots fit again.
      const again = transaction(m.sysmem, () => m.esbRegion.delSubregion(mr));
      if (again !== null) throw new Error(`overlap-regions: cannot restore the memslots: ${again}`);
      p.munmap(addr, ESB_PAIR);
      this.memslotFailures++;
      this.lastError = aborted;
      return -ENOSPC;
    }
    this.overlays.set(v.lisn, { mr, addr });
    this.added++;
    return 0;
  }

  unbinding(dev: VmmVfioPci, v: VfioVector): number {
    const o = this.overlays.get(v.lisn);
    if (o === undefined) return 0;
    const m = dev.machine;
    const aborted = transaction(m.sysmem, () => m.esbRegion.delSubregion(o.mr));
    if (aborted !== null) throw new Error(`overlap-regions: removing an overlay failed: ${aborted}`);
    this.overlays.delete(v.lisn);
    this.removed++;
    return m.kvm!.proc.munmap(o.addr, ESB_PAIR);
  }

  /**
   * The memslots the VM would need with an overlay over each irq of `lisns` too (irqs with none
   * in place: the binds refused at the limit). Stand-ins go into the tree inside one
   * transaction, the flat view is rendered and counted as the KVM memory listener would make
   * slots, and they come out again before the commit: the listeners see no change.
   *
   * @remarks A measurement of the model, not a QEMU path: softmmu/memory.c
   * generate_memory_topology() on the would-be tree, with the slot arithmetic of
   * accel/kvm/kvm-all.c:kvm_set_phys_mem().
   */
  memslotsWanted(m: SpaprMachine, lisns: readonly number[]): number {
    const standIns = lisns.map((lisn) => ({
      lisn,
      mr: MemoryRegion.ram(`vfio-esb wanted[${lisn}]`, ESB_PAIR),
    }));
    m.sysmem.begin();
    for (const s of standIns) m.esbRegion.addSubregionOverlap(s.lisn * ESB_PAIR, s.mr, OVERLAY_PRIORITY);
    const n = m.kvm!.listener!.slotsFor(generateMemoryTopology(m.sysmem.root));
    for (const s of standIns) m.esbRegion.delSubregion(s.mr);
    m.sysmem.commit();
    return n;
  }
}

/**
 * Run `change` in one memory transaction; null, or the message of the KVM memory listener's
 * abort (QEMU's `kvm_…` error line) raised while the new flat view was committed. Anything else
 * propagates.
 */
function transaction(as: { begin(): void; commit(): void }, change: () => void): string | null {
  as.begin();
  change();
  try {
    as.commit();
  } catch (e) {
    if (e instanceof Error && e.message.startsWith('kvm_')) return e.message;
    throw e;
  }
  return null;
}

export const overlapRegions: Design = {
  name: 'overlap-regions',
  accel: 'kvm',
  option: 2,
  summary: 'the VMM overlays the device ESB pages as a priority-2 RAM device: memslots split per irq',
  xiveFlags: { ...XIVE_NATIVE_FIXED },
  kernelSeam: (stats) => vmmSwitchesPages(stats),
  vmmSeam: () => new OverlapRegionsSeam(),
};
