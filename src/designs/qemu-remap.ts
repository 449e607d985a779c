/**
 * Option 3 of the debate (review of the XIVE native mode series, 2019): "remap in QEMU with mmap(MAP_FIXED)". The kernel never
 * re-points anything. When a vector is bound the VMM maps the function's two ESB pages of that
 * vector (from the VFIO device fd's ESB region, a model extension) with MAP_FIXED over the irq's
 * two pages inside its own mapping of the KVM device's ESB range — the very range the ESB memslot
 * points at. The memslot is unchanged; replacing the PTEs runs the VMM mm's notifiers, which
 * invalidate the partition-scoped entries, and the guest's next access faults the device page in.
 * On unbind the KVM device's pages go back the same way.
 *
 * Costs and limits, as measured on the model:
 * - the ESB VMA splits around every remapped irq: up to 2 more VMAs per passthrough irq, and the
 *   pieces never merge again (VM_IO | VM_PFNMAP VMAs are not mergeable), all within
 *   `vm.max_map_count` — beyond it mmap/mremap return −ENOMEM and the bind fails;
 * - the merged device accepts an mmap at file page 4 only (kvmppc_xive_native_mmap() checks vm_pgoff), so mapping file pages
 *   4+2n back directly is refused (−EINVAL, after MAP_FIXED already unmapped the range). The VMM
 *   maps pages 4…5+2n at a spare address and `mremap`s the last two into place;
 * - the split pieces have `vm_pgoff` ≠ 4, so the merged fault handler (page offset relative to
 *   the VMA, {@link XiveNativeFlags.faultUsesVmaRelativePgoff}) resolves every irq above a
 *   remapped one to the wrong source: this design needs that fix, and carries it;
 * - it only works with a VMM that tracks bind and unbind: with a VMM that does not call the seam
 *   the guest keeps the IPI page it had before the bind (the kernel zaps nothing).
 *
 * @remarks Models what an option-3 QEMU would do in hw/vfio/pci.c at vector use/release:
 * mmap(MAP_FIXED) of the VFIO region over `xsrc->esb_mmap` (hw/intc/spapr_xive_kvm.c) and the
 * reverse, with mm/mmap.c:mmap_region() (MAP_FIXED unmaps first), mm/mremap.c and the
 * kvm_mmu_notifier_invalidate_range_start() path doing the rest.
 */

import { XIVE_NATIVE_FIXED } from '../host/kvm/xive-native-flags.ts';
import { KVM_XIVE_ESB_PAGE_OFFSET } from '../host/kvm/xive-native-uapi.ts';
import {
  MAP_FIXED,
  MAP_SHARED,
  MREMAP_FIXED,
  MREMAP_MAYMOVE,
  PAGE_SIZE,
  PROT_READ,
  PROT_WRITE,
} from '../host/mm/constants.ts';
import { VFIO_PCI_ESB_REGION_PGOFF } from '../host/vfio/vfio.ts';
import { SPAPR_XIVE_ESB_SHIFT } from '../vmm/spapr-xive.ts';
import type { VfioPciSeam, VfioVector, VmmVfioPci } from '../vmm/vfio-pci.ts';
import { type Design, vmmSwitchesPages } from './design.ts';

/** Bytes of one irq's ESB pages (trigger + EOI). */
const ESB_PAIR = 2 ** SPAPR_XIVE_ESB_SHIFT;
const RW = PROT_READ | PROT_WRITE;

/** The option-3 VMM seam: MAP_FIXED the function's pages in, and the KVM device's pages back. */
export class QemuRemapSeam implements VfioPciSeam {
  /** Remaps done: device pages in, KVM pages back. */
  mappedIn: number;
  mappedBack: number;
  /** Syscalls that failed (−ENOMEM at vm.max_map_count, …). */
  failures: number;
  /** The last failure. */
  lastError: string | null;

  constructor() {
    this.mappedIn = 0;
    this.mappedBack = 0;
    this.failures = 0;
    this.lastError = null;
  }

  bound(dev: VmmVfioPci, v: VfioVector): number {
    const m = dev.machine;
    const xk = m.xiveKvm!;
    const p = m.kvm!.proc;
    const at = xk.esbMmap + v.lisn * ESB_PAIR;
    const r = p.mmap(
      at,
      ESB_PAIR,
      RW,
      MAP_SHARED | MAP_FIXED,
      v.vfioFd,
      (VFIO_PCI_ESB_REGION_PGOFF + 2 * v.vector) * PAGE_SIZE,
    );
    if (r < 0) return this.fail(`mmap(MAP_FIXED) of vector ${v.vector} over irq ${v.lisn}`, r);
    this.mappedIn++;
    return 0;
  }

  unbinding(dev: VmmVfioPci, v: VfioVector): number {
    const m = dev.machine;
    const xk = m.xiveKvm!;
    const p = m.kvm!.proc;
    const at = xk.esbMmap + v.lisn * ESB_PAIR;
    // The device takes mmaps at file page 4 only: map pages 4 … 5+2n, move the last two in place.
    const len = (v.lisn + 1) * ESB_PAIR;
    const spare = p.mmap(0, len, RW, MAP_SHARED, xk.fd, KVM_XIVE_ESB_PAGE_OFFSET * PAGE_SIZE);
    if (spare < 0) return this.fail(`mmap of the KVM ESB pages for irq ${v.lisn}`, spare);
    const r = p.mremap(spare + v.lisn * ESB_PAIR, ESB_PAIR, ESB_PAIR, MREMAP_MAYMOVE | MREMAP_FIXED, at);
    const rest = v.lisn * ESB_PAIR;
    if (rest > 0) p.munmap(spare, rest);
    if (r < 0) {
      // The device's pages stay mapped at the irq (VFIO revokes them when the function goes).
      p.munmap(spare + rest, ESB_PAIR);
      return this.fail(`mremap of the KVM ESB pages of irq ${v.lisn} into place`, r);
    }
    this.mappedBack++;
    return 0;
  }

  private fail(what: string, errno: number): number {
    this.failures++;
    this.lastError = `${what}: errno ${-errno}`;
    return errno;
  }
}

export const qemuRemap: Design = {
  name: 'qemu-remap',
  accel: 'kvm',
  option: 3,
  summary:
    'the VMM mmap(MAP_FIXED)s the device ESB pages over the irq in its ESB mapping: VMAs split per irq',
  xiveFlags: { ...XIVE_NATIVE_FIXED },
  kernelSeam: (stats) => vmmSwitchesPages(stats),
  vmmSeam: () => new QemuRemapSeam(),
};
