/**
 * Option 1 as merged, with each latent bug of thread.md §6 and kernel.md §9.3 fixed: the fault
 * resolves the irq from the absolute file offset, `set_mapped` publishes the new backing irq
 * before it zaps and the fault selects under the source lock, native mode carries the PQ and
 * the EISN over, and the error path of `clr_mapped` drops the lock. The record and the zap are
 * the merged ones ({@link rmap}).
 */

import type { Design } from './design.ts';
import { countingFileMapping } from './rmap.ts';

export const rmapFixed: Design = {
  name: 'rmap-fixed',
  option: 1,
  summary: 'the merged zap with every latent bug fixed',
  xiveFlags: {
    faultUsesVmaRelativePgoff: false,
    zapOmitsEsbOffset: false,
    bindZapsBeforePublish: false,
    faultSelectsOutsideLock: false,
    nativeSetMappedUsesXicsPq: false,
    setMappedEisnIsStateNumber: false,
    clrMappedErrorKeepsLock: false,
  },
  kernelSeam: (stats) => countingFileMapping(stats),
};
