/**
 * `mremap`: shrink, grow in place, or move a mapping with its PTEs.
 */

import { traceEvent } from '../../sim/trace-events.ts';
import { TRACE_MM } from '../../sim/trace-sink.ts';
import { EFAULT, EINVAL, ENOMEM } from '../errno.ts';
import {
  MAP_FIXED,
  MAP_SHARED,
  MMU_NOTIFY_UNMAP,
  MREMAP_FIXED,
  MREMAP_MAYMOVE,
  PAGE_SCALE,
  PAGE_SIZE,
  VM_DONTEXPAND,
  VM_MAYSHARE,
  VM_PFNMAP,
} from './constants.ts';
import { getFile } from './file.ts';
import { type Mm, MmuNotifierRange } from './mm.ts';
import { doMunmap, getUnmappedArea, pageAlign, vmaAdjust, vmaAlloc, vmaLink, vmaMergeFree } from './mmap.ts';
import type { Vma } from './vma.ts';

/**
 * The VMA at `addr` if `[addr, addr + oldLen)` lies inside one VMA that may grow to `newLen`:
 * -EFAULT for no VMA, a range crossing VMAs, or growing a VM_PFNMAP/VM_DONTEXPAND VMA.
 *
 * @remarks Models mm/mremap.c:vma_to_resize()
 */
function vmaToResize(mm: Mm, addr: number, oldLen: number, newLen: number): Vma | number {
  const vma = mm.vmas.find(addr);
  if (vma === null || vma.start > addr) return -EFAULT;
  if (oldLen > vma.end - addr) return -EFAULT;
  if (newLen === oldLen) return vma;
  if (vma.flags & (VM_DONTEXPAND | VM_PFNMAP) && newLen > oldLen) return -EFAULT;
  return vma;
}

/**
 * Move PTEs of `[oldAddr, oldAddr + len)` to `newAddr`, with an UNMAP notifier on the old range.
 *
 * @remarks Models mm/mremap.c:move_page_tables()
 */
function movePageTables(mm: Mm, oldAddr: number, newAddr: number, len: number): void {
  const pt = mm.pgtable;
  const range = new MmuNotifierRange(mm, oldAddr, oldAddr + len, MMU_NOTIFY_UNMAP);
  mm.invalidateRangeStart(range);
  const moves: number[] = [];
  pt.scan(oldAddr * PAGE_SCALE, (oldAddr + len) * PAGE_SCALE, (vpn, pfn, flags) => {
    moves.push(vpn, pfn, flags);
    pt.clear(vpn);
  });
  const delta = (newAddr - oldAddr) * PAGE_SCALE;
  for (let i = 0; i < moves.length; i += 3) pt.set(moves[i]! + delta, moves[i + 1]!, moves[i + 2]!);
  mm.invalidateRangeEnd(range);
  const t = mm.host.trace;
  if (t.mask & TRACE_MM)
    traceEvent(t, 'mm.mremap', { pid: mm.pid, oldStart: oldAddr, oldEnd: oldAddr + len, newStart: newAddr });
}

/**
 * Copy `vma`'s part at `oldAddr` to a new VMA at `newAddr` (or extend a neighbour there), move
 * the PTEs, then unmap the old range. Returns `newAddr` or −errno.
 *
 * @remarks Models mm/mremap.c:move_vma() + mm/mmap.c:copy_vma()
 */
function moveVma(mm: Mm, vma: Vma, oldAddr: number, oldLen: number, newLen: number, newAddr: number): number {
  // Stay 4 maps below the limit: the old and new ranges may each split in three.
  if (mm.mapCount >= mm.host.maxMapCount - 3) return -ENOMEM;
  if (vma.ops?.mremap) {
    const err = vma.ops.mremap(vma);
    if (err) return err;
  }
  let pgoff = vma.pgoffOf(oldAddr);
  // An anonymous VMA never faulted has no anon_vma: it takes the new address as pgoff.
  if (vma.file === null && vma.anonVma === 0) pgoff = newAddr * PAGE_SCALE;
  let nv = vmaMergeFree(mm, newAddr, newAddr + newLen, vma.flags, vma.file, pgoff, vma.anonVma);
  if (nv === null) {
    nv = vmaAlloc(mm, newAddr, newAddr + newLen, pgoff, vma.flags, vma.file);
    nv.ops = vma.ops;
    nv.privateData = vma.privateData;
    nv.anonVma = vma.anonVma;
    if (nv.file !== null) getFile(nv.file);
    nv.ops?.open?.(nv);
    vmaLink(mm, nv);
  }
  const t = mm.host.trace;
  if (t.mask & TRACE_MM)
    traceEvent(t, 'mm.mmap', { pid: mm.pid, start: newAddr, end: newAddr + newLen, pgoff });
  movePageTables(mm, oldAddr, newAddr, oldLen);
  // The old range goes; a failure (map_count) only leaves it mapped, as in the kernel.
  if (oldLen > 0) doMunmap(mm, oldAddr, oldLen);
  return newAddr;
}

/** @remarks Models mm/mremap.c:mremap_to() */
function mremapTo(mm: Mm, addr: number, oldLen: number, newAddr: number, newLen: number): number {
  const taskSize = mm.host.taskSize;
  if (newAddr % PAGE_SIZE !== 0) return -EINVAL;
  if (newLen > taskSize || newAddr > taskSize - newLen) return -EINVAL;
  if (addr + oldLen > newAddr && newAddr + newLen > addr) return -EINVAL;
  if (mm.mapCount + 2 >= mm.host.maxMapCount - 3) return -ENOMEM;
  let ret = doMunmap(mm, newAddr, newLen);
  if (ret) return ret;
  if (oldLen >= newLen) {
    ret = doMunmap(mm, addr + newLen, oldLen - newLen);
    if (ret && oldLen !== newLen) return ret;
    oldLen = newLen;
  }
  const vma = vmaToResize(mm, addr, oldLen, newLen);
  if (typeof vma === 'number') return vma;
  const mapFlags = MAP_FIXED | (vma.flags & VM_MAYSHARE ? MAP_SHARED : 0);
  const at = getUnmappedArea(mm, newAddr, newLen, mapFlags);
  if (at < 0) return at;
  return moveVma(mm, vma, addr, oldLen, newLen, at);
}

/**
 * The mremap syscall body (takes `mmap_lock`). Returns the (possibly new) address or −errno.
 * A zero `oldLen` on a shared mapping duplicates it, as the kernel allows.
 *
 * @remarks Models mm/mremap.c:SYSCALL_DEFINE5(mremap) (Linux 5.2: MREMAP_FIXED / MREMAP_MAYMOVE)
 */
export function doMremap(
  mm: Mm,
  addr: number,
  oldLen: number,
  newLen: number,
  flags: number,
  newAddr: number,
): number {
  if (flags & ~(MREMAP_FIXED | MREMAP_MAYMOVE)) return -EINVAL;
  if (flags & MREMAP_FIXED && !(flags & MREMAP_MAYMOVE)) return -EINVAL;
  if (addr % PAGE_SIZE !== 0) return -EINVAL;
  oldLen = pageAlign(oldLen);
  newLen = pageAlign(newLen);
  if (newLen === 0) return -EINVAL;
  mm.mmapLock.downWrite();
  try {
    if (flags & MREMAP_FIXED) return mremapTo(mm, addr, oldLen, newAddr, newLen);
    // A shrinking remap just unmaps the tail.
    if (oldLen >= newLen) {
      const ret = doMunmap(mm, addr + newLen, oldLen - newLen);
      if (ret && oldLen !== newLen) return ret;
      return addr;
    }
    const vma = vmaToResize(mm, addr, oldLen, newLen);
    if (typeof vma === 'number') return vma;
    if (oldLen === vma.end - addr) {
      // Grow in place when the space after the VMA is free.
      const end = addr + newLen;
      const next = mm.vmas.next(vma);
      if ((next === null || next.start >= end) && end <= mm.host.taskSize) {
        vmaAdjust(mm, vma, vma.start, end, vma.pgoff);
        const t = mm.host.trace;
        if (t.mask & TRACE_MM)
          traceEvent(t, 'mm.mmap', { pid: mm.pid, start: vma.start, end, pgoff: vma.pgoff });
        return addr;
      }
    }
    if (!(flags & MREMAP_MAYMOVE)) return -ENOMEM;
    const mapFlags = vma.flags & VM_MAYSHARE ? MAP_SHARED : 0;
    const at = getUnmappedArea(mm, 0, newLen, mapFlags);
    if (at < 0) return at;
    return moveVma(mm, vma, addr, oldLen, newLen, at);
  } finally {
    mm.mmapLock.upWrite();
  }
}
