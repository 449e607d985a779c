/**
 * Option 1 as merged (Linux 5.2): the device records the file's address_space at mmap and
 * re-points an irq with `unmap_mapping_range` over file pages 4+2n, 5+2n — every VMA of every
 * process that maps them, found through the file's reverse map. Carries mainline's latent
 * behaviours (thread.md §6, kernel.md §9.3) exactly as {@link XIVE_NATIVE_MAINLINE} has them.
 *
 * @remarks Models book3s_xive_native.c:kvmppc_xive_native_mmap() + reset_mapped().
 */

import { fileMappingZapper, XIVE_NATIVE_MAINLINE, type XiveMapping } from '../host/kvm/xive-native-flags.ts';
import type { File } from '../host/mm/file.ts';
import type { Design, DesignStats } from './design.ts';

/** The mainline record, counting the VMAs the reverse map reaches and the zaps it issues. */
export function countingFileMapping(stats: DesignStats): (file: File) => XiveMapping {
  return (file) => {
    const inner = fileMappingZapper(file.mapping);
    return {
      unmapMappingRange(pgoff: number, npages: number): void {
        stats.repoints++;
        const hit = file.mapping.iMmap.query(pgoff, pgoff + npages - 1).length;
        stats.vmasVisited += hit;
        stats.zaps += hit;
        inner.unmapMappingRange(pgoff, npages);
      },
    };
  };
}

export const rmap: Design = {
  name: 'rmap',
  option: 1,
  summary: 'kernel zaps through the file address_space (unmap_mapping_range), as merged',
  xiveFlags: { ...XIVE_NATIVE_MAINLINE },
  kernelSeam: (stats) => countingFileMapping(stats),
};
