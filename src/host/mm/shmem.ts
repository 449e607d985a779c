/**
 * Shared anonymous memory (`MAP_SHARED | MAP_ANONYMOUS`): backed by an unlinked shmem file with
 * its own page cache, so that fork's child and parent see the same frames.
 */

import { PAGE_SCALE } from './constants.ts';
import { File, FMODE_RDWR, type Inode } from './file.ts';
import type { MmHost } from './mm-host.ts';
import type { Vma, VmFault, VmOperations } from './vma.ts';

const SHMEM_FILE_OPS = {
  name: 'shmem',
  release(inode: Inode, file: File): void {
    const pages = inode.mapping.pages;
    if (pages === null) return;
    const host = file.privateData as MmHost;
    for (const pfn of pages.values()) host.frames.freeRam(pfn);
    pages.clear();
  },
};

/** `shmem_vm_ops`: find or allocate the page-cache frame of the file page. */
export const SHMEM_VM_OPS: VmOperations = {
  name: 'shmem',
  fault(vmf: VmFault): number {
    const file = vmf.vma.file!;
    const pages = file.mapping.pages!;
    let pfn = pages.get(vmf.pgoff);
    if (pfn === undefined) {
      pfn = (file.privateData as MmHost).frames.allocRam();
      if (pfn < 0) return 0x0001; // VM_FAULT_OOM
      pages.set(vmf.pgoff, pfn);
    }
    vmf.pfn = pfn;
    return 0;
  },
};

/**
 * Give a shared anonymous VMA its backing file (the VMA takes the file's only reference).
 *
 * @remarks Models mm/shmem.c:shmem_zero_setup()
 */
export function shmemZeroSetup(host: MmHost, vma: Vma): void {
  const inode = host.newInode('dev/zero');
  inode.mapping.pages = new Map();
  const size = (vma.end - vma.start) * PAGE_SCALE;
  const file = new File(`dev/zero (deleted) [${size} pages]`, SHMEM_FILE_OPS, inode, FMODE_RDWR, host);
  vma.file = file;
  vma.ops = SHMEM_VM_OPS;
}
