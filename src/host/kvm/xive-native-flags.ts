/**
 * The latent bugs of the merged KVM XIVE native device, as flags (defaults: mainline), and the
 * mapping seam the passthrough-page designs (`src/designs/`) plug into: what the device records
 * as `xive->mapping` at mmap, and how an irq's ESB pages are zapped through it.
 */

import type { AtomicStep } from '../atomic-step.ts';
import { PAGE_SIZE } from '../mm/constants.ts';
import type { File, FileMapping } from '../mm/file.ts';
import type { Vma } from '../mm/vma.ts';
import { unmapMappingPagesSteps, unmapMappingRange } from '../mm/zap.ts';

/**
 * What the device needs from the memory manager: the device file's `address_space` zap.
 * `unmapMappingRange(pgoff, npages)` = `unmap_mapping_range(mapping, pgoff << PAGE_SHIFT,
 * npages << PAGE_SHIFT, even_cows = 1)`: remove every PTE, in every VMA of every process, that
 * maps file pages `[pgoff, pgoff + npages)`. {@link fileMappingZapper} adapts mm's
 * {@link FileMapping}.
 */
export interface XiveMapping {
  unmapMappingRange(pgoff: number, npages: number): void;
  /**
   * The same zap as atomic steps (`i_mmap_lock_read`, one PTE-lock section per VMA, the
   * unlock), for the interleaving explorer; without it the zap is one step. `who` prefixes the
   * step labels.
   */
  unmapMappingRangeSteps?(pgoff: number, npages: number, who: string): Generator<AtomicStep, void, void>;
}

/**
 * The kernel seam of the passthrough-page designs (`src/designs/`): what the device records in
 * `xive->mapping` when its file is mmap'd, given the file, the new VMA, whether it maps the ESB
 * range, and what was recorded before. The record's `unmapMappingRange` is then how an irq's ESB
 * pages are re-pointed on bind/unbind. Mainline is {@link recordFileMapping}.
 */
export type XiveRecordMapping = (
  file: File,
  vma: Vma,
  esb: boolean,
  current: XiveMapping | null,
) => XiveMapping | null;

/**
 * Mainline: record the file's address_space at every mmap (TIMA or ESB), so a zap reaches every
 * VMA of every process mapping the file.
 *
 * @remarks Models the `xive->mapping = vma->vm_file->f_mapping` line of
 * book3s_xive_native.c:kvmppc_xive_native_mmap().
 */
export const recordFileMapping: XiveRecordMapping = (file) => fileMappingZapper(file.mapping);

/** The {@link XiveMapping} of an mm {@link FileMapping} (the device file's `f_mapping`). */
export function fileMappingZapper(fm: FileMapping): XiveMapping {
  return {
    unmapMappingRange(pgoff: number, npages: number): void {
      unmapMappingRange(fm, pgoff * PAGE_SIZE, npages * PAGE_SIZE, true);
    },
    *unmapMappingRangeSteps(pgoff: number, npages: number, who: string): Generator<AtomicStep, void, void> {
      yield* unmapMappingPagesSteps(fm, pgoff, npages, who);
    },
  };
}

/**
 * Latent bugs of the merged code, each reproducible; `false` gives a fixed variant. Mainline
 * values are in {@link XIVE_NATIVE_MAINLINE}.
 */
export interface XiveNativeFlags {
  /**
   * Inferred from book3s_xive_native.c:xive_native_esb_fault() / xive_native_tima_fault() (never
   * reported upstream): the handlers compute
   * `page_offset = vmf->pgoff − vma->vm_pgoff`, relative to the VMA, not to
   * `KVM_XIVE_ESB_PAGE_OFFSET`. After userspace splits an ESB VMA, faults in the tail resolve
   * the wrong irq while zaps still hit the right file pages. Mainline: true.
   */
  faultUsesVmaRelativePgoff: boolean;
  /**
   * "KVM: PPC: Book3S HV: XIVE: fix page offset when clearing ESB pages" (28-May-2019,
   * https://lore.kernel.org/r/20190528211324.18656-1-clg@kaod.org) fixed this: before it, the zap
   * omits the ESB base (`2·irq` instead of `4 + 2·irq`), hitting TIMA pages for irq 0–1 and irq
   * n−2's ESB pages otherwise. Mainline (≥ 5.2 final): false.
   */
  zapOmitsEsbOffset: boolean;
  /**
   * Inferred from book3s_xive.c:kvmppc_xive_set_mapped(): it zaps the guest ESB PTEs *before* publishing
   * `pt_number`/`pt_data`. With `false` it publishes first, then zaps. Mainline: true. (The
   * fault's own window is {@link faultSelectsOutsideLock}.)
   */
  bindZapsBeforePublish: boolean;
  /**
   * Inferred from book3s_xive_native.c:xive_native_esb_fault(): it runs `kvmppc_xive_select_irq()` before taking
   * `sb->lock`, so a bind can publish and zap between the selection and the insertion, leaving
   * the IPI page mapped. With `false` the selection moves under the lock with the page read.
   * The insertion cannot follow it there: `vmf_insert_pfn` may allocate page tables and sleep,
   * so it runs after `arch_spin_unlock` either way, and a bind can still publish and zap between
   * the unlock and the insertion ({@link esbMemoryLock} closes that window). Mainline: true.
   */
  faultSelectsOutsideLock: boolean;
  /**
   * The fix vfio-pci uses for PFN maps it re-points (`vdev->memory_lock`, drivers/vfio/pci/
   * vfio_pci_core.c: vfio_pci_mmap_fault() vs vfio_pci_zap_and_down_write_memory_lock()): an
   * rwsem the ESB fault holds for read from `kvmppc_xive_select_irq` to after `vmf_insert_pfn`,
   * and set/clr_mapped hold for write around publishing the new backing irq and zapping (taken
   * before `sb->lock`, a spinlock it may not sleep under). A fault then either inserts before
   * the zap (which removes it) or selects after the publish. Not in mainline: false.
   */
  esbMemoryLock: boolean;
  /**
   * Inferred from book3s_xive.c:kvmppc_xive_set_mapped() / clr_mapped(): they use the XICS-mode `guest_priority` /
   * `old_p` logic that native code never maintains: `xive_lock_and_mask` is a no-op returning
   * MASKED, set_mapped never EOIs the passthrough irq and clr_mapped always leaves the IPI at
   * PQ 10. With `false`: the priority is `act_priority` and the guest-visible PQ of the old
   * backing irq is carried over to the new one (00 → source EOI, else the same PQ). Mainline: true.
   */
  nativeSetMappedUsesXicsPq: boolean;
  /**
   * Inferred from book3s_xive.c:kvmppc_xive_set_mapped() / clr_mapped(): they program the EAS with `state->number` (the guest
   * LISN, XICS convention) as EISN instead of `state->eisn`. Mainline: true.
   */
  setMappedEisnIsStateNumber: boolean;
  /**
   * Inferred from book3s_xive.c:kvmppc_xive_clr_mapped(): when `irq_set_vcpu_affinity(host_irq, NULL)` fails,
   * clr_mapped returns with the source block's spinlock still held; every later user of that
   * block hangs (the model returns −EDEADLK / {@link XIVE_FAULT_HANG} and counts a hang).
   * With `false` the lock is released. Mainline: true.
   */
  clrMappedErrorKeepsLock: boolean;
}

/** Mainline (Linux ≥ 5.2 final) behaviour. */
export const XIVE_NATIVE_MAINLINE: Readonly<XiveNativeFlags> = Object.freeze({
  faultUsesVmaRelativePgoff: true,
  zapOmitsEsbOffset: false,
  bindZapsBeforePublish: true,
  faultSelectsOutsideLock: true,
  esbMemoryLock: false,
  nativeSetMappedUsesXicsPq: true,
  setMappedEisnIsStateNumber: true,
  clrMappedErrorKeepsLock: true,
});

/**
 * Every latent bug of the merged code fixed. The passthrough-page designs other than `rmap`
 * carry these flags too, so that their results show their own mechanism and not the merged
 * code's native-mode bugs (which `rmap` alone reproduces).
 */
export const XIVE_NATIVE_FIXED: Readonly<XiveNativeFlags> = Object.freeze({
  faultUsesVmaRelativePgoff: false,
  zapOmitsEsbOffset: false,
  bindZapsBeforePublish: false,
  faultSelectsOutsideLock: false,
  esbMemoryLock: true,
  nativeSetMappedUsesXicsPq: false,
  setMappedEisnIsStateNumber: false,
  clrMappedErrorKeepsLock: false,
});
