/**
 * Option 1 as merged, with each latent bug of thread.md §6 and kernel.md §9.3 fixed: the fault
 * resolves the irq from the absolute file offset, `set_mapped` publishes the new backing irq
 * before it zaps and the fault selects under the source lock, native mode carries the PQ and
 * the EISN over, and the error path of `clr_mapped` drops the lock. The record and the zap are
 * the merged ones ({@link rmap}).
 */

import type { XiveNativeFlags } from '../host/kvm/xive-native-flags.ts';
import type { Design } from './design.ts';
import { countingFileMapping } from './rmap.ts';

/**
 * Every latent bug of the merged code fixed. The designs other than `rmap` carry these flags
 * too, so that their results show their own mechanism and not the merged code's native-mode
 * bugs (which `rmap` alone reproduces).
 */
export const XIVE_NATIVE_FIXED: Readonly<XiveNativeFlags> = Object.freeze({
  faultUsesVmaRelativePgoff: false,
  zapOmitsEsbOffset: false,
  bindZapsBeforePublish: false,
  faultSelectsOutsideLock: false,
  nativeSetMappedUsesXicsPq: false,
  setMappedEisnIsStateNumber: false,
  clrMappedErrorKeepsLock: false,
});

export const rmapFixed: Design = {
  name: 'rmap-fixed',
  option: 1,
  summary: 'the merged zap with every latent bug fixed',
  xiveFlags: { ...XIVE_NATIVE_FIXED },
  kernelSeam: (stats) => countingFileMapping(stats),
};
