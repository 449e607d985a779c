/**
 * RFC v1 (the "add XIVE native exploitation mode" series, v1, 7 Jan 2019): the device keeps a pointer to the VMA of the *last* ESB mmap
 * and re-points an irq with `zap_vma_ptes` on that VMA only. Userspace may map the file many
 * times, fork, pass the fd on, split or unmap the VMA: every other mapping keeps its stale PTE,
 * and a VMA that was unmapped since is a use-after-free, which the model detects (the VMA is
 * marked freed by the memory manager) and counts instead of corrupting memory; the zap is then
 * skipped, as nothing valid is left to zap.
 *
 * @remarks Models the v1 patch's `xive->vma` + `zap_vma_ptes()` in
 * kvmppc_xive_native_reset_mapped() (archive series_63107).
 */

import type { XiveMapping } from '../host/kvm/xive-native-flags.ts';
import { XIVE_NATIVE_FIXED } from '../host/kvm/xive-native-flags.ts';
import { PAGE_SIZE } from '../host/mm/constants.ts';
import type { Vma } from '../host/mm/vma.ts';
import { zapVmaPtes } from '../host/mm/zap.ts';
import type { Design, DesignStats } from './design.ts';

/** The v1 record: the last ESB VMA; TIMA mmaps leave it as it was. */
class VmaPointer implements XiveMapping {
  private readonly vma: Vma;
  private readonly stats: DesignStats;
  constructor(vma: Vma, stats: DesignStats) {
    this.vma = vma;
    this.stats = stats;
  }
  unmapMappingRange(pgoff: number, npages: number): void {
    const { vma, stats } = this;
    stats.repoints++;
    stats.vmasVisited++;
    if (vma.freed) {
      stats.useAfterFree++;
      return;
    }
    stats.zaps++;
    zapVmaPtes(vma, vma.addrOf(pgoff), npages * PAGE_SIZE);
  }
}

export const vmaPointer: Design = {
  name: 'vma-pointer',
  accel: 'kvm',
  option: 1,
  summary: 'device keeps the last ESB VMA and zap_vma_ptes() it (RFC v1)',
  xiveFlags: { ...XIVE_NATIVE_FIXED },
  kernelSeam: (stats) => (_file, vma, esb, current) => (esb ? new VmaPointer(vma, stats) : current),
};
