/**
 * Option 1 with a VMA walk (review of the XIVE native mode series, 2019): on bind/unbind the device walks every VMA of the
 * address space that created the VM (`kvm->mm`, the VMM) and zaps those mapping the device file
 * over the irq's pages. Each bind costs a walk over all of the VMM's VMAs, and mappings in other
 * processes — a forked helper, a receiver of the fd by SCM_RIGHTS — are never seen.
 *
 * @remarks Models the alternative discussed on the list (walk `mm->mmap` under `mmap_sem`) in
 * place of book3s_xive_native.c's unmap_mapping_range().
 */

import type { XiveMapping } from '../host/kvm/xive-native-flags.ts';
import { XIVE_NATIVE_FIXED } from '../host/kvm/xive-native-flags.ts';
import { PAGE_SIZE } from '../host/mm/constants.ts';
import type { File } from '../host/mm/file.ts';
import type { Mm } from '../host/mm/mm.ts';
import { zapPageRangeSingle } from '../host/mm/zap.ts';
import type { Design, DesignStats } from './design.ts';

class VmaWalk implements XiveMapping {
  private readonly mm: Mm;
  private readonly file: File;
  private readonly stats: DesignStats;
  constructor(mm: Mm, file: File, stats: DesignStats) {
    this.mm = mm;
    this.file = file;
    this.stats = stats;
  }
  unmapMappingRange(pgoff: number, npages: number): void {
    const { mm, file, stats } = this;
    stats.repoints++;
    const last = pgoff + npages - 1;
    mm.mmapLock.downRead();
    try {
      for (const vma of mm.vmas.all()) {
        stats.vmasVisited++;
        if (vma.file !== file) continue;
        const first = Math.max(pgoff, vma.pgoff);
        const end = Math.min(last, vma.pgoff + vma.pages - 1);
        if (first > end) continue;
        stats.zaps++;
        zapPageRangeSingle(vma, vma.addrOf(first), (end - first + 1) * PAGE_SIZE);
      }
    } finally {
      mm.mmapLock.upRead();
    }
  }
}

export const vmaWalk: Design = {
  name: 'vma-walk',
  accel: 'kvm',
  option: 1,
  summary: "device walks the VMM's VMAs and zaps those mapping the file",
  xiveFlags: { ...XIVE_NATIVE_FIXED },
  // The walk is bound to the address space of the first mmap (the VMM's, kvm->mm).
  kernelSeam: (stats) => (file, vma, _esb, current) => current ?? new VmaWalk(vma.mm, file, stats),
};
