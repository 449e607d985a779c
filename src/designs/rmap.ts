/**
 * Option 1 as merged (Linux 5.2): the device records the file's address_space at mmap and
 * re-points an irq with `unmap_mapping_range` over file pages 4+2n, 5+2n — every VMA of every
 * process that maps them, found through the file's reverse map. Carries mainline's latent
 * behaviours (book3s_xive_native.c as of Linux 5.2) exactly as {@link XIVE_NATIVE_MAINLINE} has them.
 *
 * @remarks Models book3s_xive_native.c:kvmppc_xive_native_mmap() + reset_mapped().
 */

import { XIVE_NATIVE_MAINLINE } from '../host/kvm/xive-native-flags.ts';
import { countingFileMapping, type Design } from './design.ts';

export const rmap: Design = {
  name: 'rmap',
  accel: 'kvm',
  option: 1,
  summary: 'kernel zaps through the file address_space (unmap_mapping_range), as merged',
  xiveFlags: { ...XIVE_NATIVE_MAINLINE },
  kernelSeam: (stats) => countingFileMapping(stats),
};
