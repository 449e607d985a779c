/**
 * Option 1 as merged, with each latent bug of the merged code fixed: the fault resolves the irq
 * from the absolute file offset, `set_mapped` publishes the new backing irq before it zaps and
 * the fault selects under the source lock, native mode carries the PQ and the EISN over, and the
 * error path of `clr_mapped` drops the lock. The record and the zap are the merged ones
 * ({@link rmap}).
 *
 * Selection, page read *and insertion* under the source lock, which this design once claimed,
 * is not something the kernel can do: `sb->lock` is an arch spinlock and `vmf_insert_pfn` may
 * allocate page tables and sleep, so book3s_xive_native.c:xive_native_esb_fault() inserts after
 * `arch_spin_unlock`. Between that unlock and the insertion a bind can still publish and zap,
 * and the fault then inserts the page it read before: the S12 race, which `xivelab explore
 * s12-fault-vs-bind` finds for this design without its last fix. That fix is the one the kernel
 * uses for the PFN maps vfio-pci re-points (`vdev->memory_lock` in drivers/vfio/pci/
 * vfio_pci_core.c): an rwsem held for read across selection + insertion in the fault and for
 * write across publication + zap in set/clr_mapped ({@link XiveNativeFlags.esbMemoryLock}).
 * With it the explorer exhausts every interleaving of the race scenarios without a violation.
 */

import { XIVE_NATIVE_FIXED } from '../host/kvm/xive-native-flags.ts';
import { countingFileMapping, type Design } from './design.ts';

export const rmapFixed: Design = {
  name: 'rmap-fixed',
  accel: 'kvm',
  option: 1,
  summary: 'the merged zap with every latent bug fixed',
  xiveFlags: { ...XIVE_NATIVE_FIXED },
  kernelSeam: (stats) => countingFileMapping(stats),
};
