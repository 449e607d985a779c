/**
 * VMA lifecycle and the mmap/munmap core: linking into the index and the file's reverse map,
 * splitting, merging, address choice, `do_mmap`, `mmap_region` and `do_munmap`. Callers hold
 * `mmap_lock` for write.
 */

import { traceEvent } from '../../sim/trace-events.ts';
import { TRACE_MM } from '../../sim/trace-sink.ts';
import { EACCES, EEXIST, EINVAL, ENODEV, ENOMEM, EOPNOTSUPP, EPERM } from '../errno.ts';
import {
  FMODE_READ,
  FMODE_WRITE,
  LEGACY_MAP_MASK,
  MAP_FIXED,
  MAP_FIXED_NOREPLACE,
  MAP_GROWSDOWN,
  MAP_LOCKED,
  MAP_PRIVATE,
  MAP_SHARED,
  MAP_SHARED_VALIDATE,
  MAP_TYPE,
  MMU_NOTIFY_UNMAP,
  PAGE_SCALE,
  PAGE_SIZE,
  PROT_EXEC,
  PROT_READ,
  PROT_WRITE,
  VM_EXEC,
  VM_GROWSDOWN,
  VM_LOCKED,
  VM_MAYEXEC,
  VM_MAYREAD,
  VM_MAYSHARE,
  VM_MAYWRITE,
  VM_READ,
  VM_SHARED,
  VM_SPECIAL,
  VM_WRITE,
} from './constants.ts';
import { type File, fput, getFile } from './file.ts';
import { type Mm, MmuNotifierRange } from './mm.ts';
import { shmemZeroSetup } from './shmem.ts';
import { Vma } from './vma.ts';
import { clearPteRange } from './zap.ts';

/** `PAGE_ALIGN`. */
export function pageAlign(n: number): number {
  return Math.ceil(n * PAGE_SCALE) * PAGE_SIZE;
}

/** `calc_vm_prot_bits`. */
export function calcVmProtBits(prot: number): number {
  return (
    (prot & PROT_READ ? VM_READ : 0) | (prot & PROT_WRITE ? VM_WRITE : 0) | (prot & PROT_EXEC ? VM_EXEC : 0)
  );
}

/** A VMA with a fresh id (`vm_area_alloc`). */
export function vmaAlloc(
  mm: Mm,
  start: number,
  end: number,
  pgoff: number,
  flags: number,
  file: File | null,
): Vma {
  return new Vma(mm.host.newVmaId(), mm, start, end, pgoff, flags, file);
}

function immapInsert(vma: Vma): void {
  if (vma.file === null) return;
  const m = vma.file.mapping;
  m.iMmapRwsem.downWrite();
  m.iMmap.insert(vma);
  m.iMmapRwsem.upWrite();
}

function immapRemove(vma: Vma): void {
  if (vma.file === null) return;
  const m = vma.file.mapping;
  m.iMmapRwsem.downWrite();
  m.iMmap.remove(vma);
  m.iMmapRwsem.upWrite();
}

/** Link a VMA into the mm's index and its file's reverse map (`vma_link`). */
export function vmaLink(mm: Mm, vma: Vma): void {
  mm.vmas.insert(vma);
  immapInsert(vma);
  mm.totalVm += vma.pages;
}

/** Unlink a VMA from the index and the reverse map (detach). */
export function vmaUnlink(mm: Mm, vma: Vma): void {
  mm.vmas.remove(vma);
  immapRemove(vma);
  mm.totalVm -= vma.pages;
}

/**
 * Change a linked VMA's bounds and pgoff, keeping the index and the reverse map consistent.
 *
 * @remarks Models mm/mmap.c:vma_adjust() for one VMA
 */
export function vmaAdjust(mm: Mm, vma: Vma, start: number, end: number, pgoff: number): void {
  mm.vmas.remove(vma);
  immapRemove(vma);
  mm.totalVm -= vma.pages;
  vma.start = start;
  vma.end = end;
  vma.pgoff = pgoff;
  mm.vmas.insert(vma);
  immapInsert(vma);
  mm.totalVm += vma.pages;
}

/** Free an unlinked VMA: `vm_ops->close`, drop its file reference (`remove_vma`). */
export function removeVma(vma: Vma): void {
  vma.ops?.close?.(vma);
  const file = vma.file;
  vma.freed = true;
  if (file !== null) fput(file);
}

/**
 * Split `vma` at `addr`: with `newBelow` the new VMA takes `[start, addr)`, else `[addr, end)`.
 * Returns the new VMA, or −errno from `vm_ops->may_split`. No map-count check (callers do it).
 *
 * @remarks Models mm/mmap.c:__split_vma()
 */
export function splitVmaUnchecked(mm: Mm, vma: Vma, addr: number, newBelow: boolean): Vma | number {
  if (vma.ops?.maySplit) {
    const err = vma.ops.maySplit(vma, addr);
    if (err) return err;
  }
  const nv = vmaAlloc(mm, vma.start, vma.end, vma.pgoff, vma.flags, vma.file);
  nv.ops = vma.ops;
  nv.privateData = vma.privateData;
  nv.anonVma = vma.anonVma;
  if (newBelow) {
    nv.end = addr;
    vmaAdjust(mm, vma, addr, vma.end, vma.pgoffOf(addr));
  } else {
    nv.start = addr;
    nv.pgoff = vma.pgoffOf(addr);
    vmaAdjust(mm, vma, vma.start, addr, vma.pgoff);
  }
  if (nv.file !== null) getFile(nv.file);
  nv.ops?.open?.(nv);
  vmaLink(mm, nv);
  mm.stats.splits++;
  return nv;
}

/**
 * `split_vma`: as {@link splitVmaUnchecked}, but -ENOMEM when the mm already holds
 * `vm.max_map_count` VMAs.
 */
export function splitVma(mm: Mm, vma: Vma, addr: number, newBelow: boolean): Vma | number {
  if (mm.mapCount >= mm.host.maxMapCount) return -ENOMEM;
  return splitVmaUnchecked(mm, vma, addr, newBelow);
}

/** `is_mergeable_vma` + `is_mergeable_anon_vma`. */
function mergeable(vma: Vma, flags: number, file: File | null, anonVma: number): boolean {
  if (flags & VM_SPECIAL || vma.flags !== flags || vma.file !== file) return false;
  if (vma.ops?.close) return false;
  return anonVma === 0 || vma.anonVma === 0 || vma.anonVma === anonVma;
}

/**
 * Merge `right` into `left` (adjacent, compatible); `keepRight` chooses which object survives,
 * as the kernel keeps `prev` when a range joins it and `next` when it joins that.
 */
function absorb(mm: Mm, left: Vma, right: Vma, keepRight: boolean): Vma {
  const keep = keepRight ? right : left;
  const gone = keepRight ? left : right;
  const start = left.start;
  const end = right.end;
  const pgoff = left.pgoff;
  const anon = left.anonVma || right.anonVma;
  vmaUnlink(mm, gone);
  vmaAdjust(mm, keep, start, end, pgoff);
  keep.anonVma = anon;
  gone.freed = true;
  if (gone.file !== null) fput(gone.file);
  mm.stats.merges++;
  return keep;
}

/**
 * Try to extend a neighbour over the free range `[addr, end)` instead of creating a VMA.
 * Returns the VMA now covering the range, or null.
 *
 * @remarks Models mm/mmap.c:vma_merge() for a range that no VMA covers
 */
export function vmaMergeFree(
  mm: Mm,
  addr: number,
  end: number,
  flags: number,
  file: File | null,
  pgoff: number,
  anonVma: number,
): Vma | null {
  if (flags & VM_SPECIAL) return null;
  const i = mm.vmas.lowerBound(addr);
  const prev = mm.vmas.at(i - 1);
  const next = mm.vmas.at(i);
  const pglen = (end - addr) * PAGE_SCALE;
  const withPrev =
    prev !== null &&
    prev.end === addr &&
    mergeable(prev, flags, file, anonVma) &&
    prev.pgoff + prev.pages === pgoff;
  const withNext =
    next !== null &&
    next.start === end &&
    mergeable(next, flags, file, anonVma) &&
    next.pgoff === pgoff + pglen;
  if (withPrev) {
    const p = prev!;
    vmaAdjust(mm, p, p.start, end, p.pgoff);
    if (anonVma !== 0) p.anonVma = anonVma;
    mm.stats.merges++;
    if (withNext && (p.anonVma === 0 || next!.anonVma === 0 || p.anonVma === next!.anonVma)) {
      return absorb(mm, p, next!, false);
    }
    return p;
  }
  if (withNext) {
    const n = next!;
    vmaAdjust(mm, n, addr, n.end, pgoff);
    if (anonVma !== 0) n.anonVma = anonVma;
    mm.stats.merges++;
    return n;
  }
  return null;
}

/**
 * Merge a linked VMA with its neighbours where compatible (after mprotect changed its flags).
 * Returns the VMA that now covers its range.
 */
export function vmaMergeAround(mm: Mm, vma: Vma): Vma {
  let cur = vma;
  const prev = mm.vmas.prev(cur);
  if (
    prev !== null &&
    prev.end === cur.start &&
    mergeable(prev, cur.flags, cur.file, cur.anonVma) &&
    !cur.ops?.close &&
    prev.pgoff + prev.pages === cur.pgoff
  ) {
    cur = absorb(mm, prev, cur, false);
  }
  const next = mm.vmas.next(cur);
  if (
    next !== null &&
    next.start === cur.end &&
    mergeable(next, cur.flags, cur.file, cur.anonVma) &&
    !cur.ops?.close &&
    cur.pgoff + cur.pages === next.pgoff
  ) {
    cur = absorb(mm, cur, next, true);
  }
  return cur;
}

/**
 * Choose where a mapping goes. MAP_FIXED: the address as given (-ENOMEM beyond TASK_SIZE,
 * -EINVAL unaligned, -EPERM below `vm.mmap_min_addr`). Otherwise the page-aligned hint if it is
 * free, else the highest gap below `mmap_base` (top-down), else bottom-up from
 * TASK_UNMAPPED_BASE; -ENOMEM when nothing fits.
 *
 * @remarks Models mm/mmap.c:get_unmapped_area() + arch_get_unmapped_area_topdown()
 */
export function getUnmappedArea(mm: Mm, addr: number, len: number, flags: number): number {
  const host = mm.host;
  const taskSize = host.taskSize;
  if (len > taskSize) return -ENOMEM;
  if (flags & MAP_FIXED) {
    if (addr > taskSize - len) return -ENOMEM;
    if (addr % PAGE_SIZE !== 0) return -EINVAL;
    if (addr < host.mmapMinAddr) return -EPERM; // security_mmap_addr: cap_mmap_addr
    return addr;
  }
  if (addr !== 0) {
    const a = pageAlign(addr);
    if (taskSize - len >= a && a >= host.mmapMinAddr && mm.vmas.findIntersection(a, a + len) === null)
      return a;
  }
  // Top-down: the highest gap below mmap_base that fits.
  const vmas = mm.vmas;
  let hi = host.mmapBase;
  const straddle = vmas.find(hi);
  if (straddle !== null && straddle.start < hi) hi = straddle.start;
  for (let i = vmas.lowerBound(hi) - 1; i >= -1; i--) {
    const v = vmas.at(i);
    const lo = Math.max(v === null ? 0 : v.end, host.mmapMinAddr);
    if (hi - lo >= len) return hi - len;
    if (v === null) break;
    hi = v.start;
  }
  // Fallback: bottom-up from TASK_UNMAPPED_BASE (a quarter of the address space on ppc64).
  let lo = pageAlign(taskSize / 4);
  for (let i = vmas.lowerBound(lo); ; i++) {
    const v = vmas.at(i);
    if (v !== null && v.start <= lo) {
      lo = Math.max(lo, v.end);
      continue;
    }
    const gapEnd = v === null ? taskSize : v.start;
    if (gapEnd - lo >= len) return lo;
    if (v === null) break;
    lo = v.end;
  }
  return -ENOMEM;
}

/**
 * Remove PTEs of `[start, end)` with one UNMAP notifier bracket over the whole range
 * (`unmap_region` → `unmap_vmas`). Returns the number of PTEs cleared.
 */
export function unmapRegion(mm: Mm, start: number, end: number): number {
  const range = new MmuNotifierRange(mm, start, end, MMU_NOTIFY_UNMAP);
  mm.invalidateRangeStart(range);
  const n = clearPteRange(mm, start, end);
  mm.invalidateRangeEnd(range);
  return n;
}

/**
 * Unmap `[start, start + len)`: split the VMAs straddling its ends, unlink those inside, zap their
 * PTEs, close them and drop their file references. 0 or −errno.
 *
 * @remarks Models mm/mmap.c:do_munmap()
 */
export function doMunmap(mm: Mm, start: number, len: number): number {
  const taskSize = mm.host.taskSize;
  if (start % PAGE_SIZE !== 0 || start > taskSize || len > taskSize - start) return -EINVAL;
  len = pageAlign(len);
  if (len === 0) return -EINVAL;
  const end = start + len;
  const vma = mm.vmas.find(start);
  if (vma === null || vma.start >= end) return 0;
  if (start > vma.start) {
    // Keep map_count within the limit on return, but let it go just above it transiently.
    if (end < vma.end && mm.mapCount >= mm.host.maxMapCount) return -ENOMEM;
    const r = splitVmaUnchecked(mm, vma, start, false);
    if (typeof r === 'number') return r;
  }
  const last = mm.vmas.find(end);
  if (last !== null && end > last.start) {
    const r = splitVmaUnchecked(mm, last, end, true);
    if (typeof r === 'number') return r;
  }
  const doomed = mm.vmas.range(start, end);
  for (const v of doomed) vmaUnlink(mm, v);
  const ptes = unmapRegion(mm, start, end);
  for (const v of doomed) removeVma(v);
  const t = mm.host.trace;
  if (t.mask & TRACE_MM) traceEvent(t, 'mm.munmap', { pid: mm.pid, start, end, ptes });
  return 0;
}

/**
 * Create the mapping at an address already chosen: unmap what was there, merge with a neighbour
 * when possible (then the driver's mmap is not called), else a new VMA set up by `f_op->mmap`
 * or shmem. Returns the address or −errno.
 *
 * @remarks Models mm/mmap.c:mmap_region()
 */
export function mmapRegion(
  mm: Mm,
  file: File | null,
  addr: number,
  len: number,
  vmFlags: number,
  pgoff: number,
): number {
  const end = addr + len;
  if (mm.vmas.findIntersection(addr, end) !== null) {
    if (doMunmap(mm, addr, len) !== 0) return -ENOMEM;
  }
  const t = mm.host.trace;
  const merged = vmaMergeFree(mm, addr, end, vmFlags, file, pgoff, 0);
  if (merged !== null) {
    if (t.mask & TRACE_MM) traceEvent(t, 'mm.mmap', { pid: mm.pid, start: addr, end, pgoff });
    return addr;
  }
  const vma = vmaAlloc(mm, addr, end, pgoff, vmFlags, null);
  if (file !== null) {
    vma.file = getFile(file);
    const mmap = file.fOp.mmap;
    const err = mmap === undefined ? -ENODEV : mmap.call(file.fOp, file, vma);
    if (err) {
      vma.file = null;
      fput(file);
      // Undo any partial mapping the driver made.
      unmapRegion(mm, addr, end);
      vma.freed = true;
      return err;
    }
  } else if (vmFlags & VM_SHARED) {
    shmemZeroSetup(mm.host, vma);
  }
  vmaLink(mm, vma);
  if (t.mask & TRACE_MM) traceEvent(t, 'mm.mmap', { pid: mm.pid, start: addr, end, pgoff });
  return addr;
}

/**
 * The body of mmap once the file is resolved: checks in the kernel's order, then
 * {@link mmapRegion}. `len` is the caller's length (not yet page-aligned). Returns the address
 * or −errno.
 *
 * @remarks Models mm/mmap.c:do_mmap()
 */
export function doMmap(
  mm: Mm,
  file: File | null,
  addr: number,
  len: number,
  prot: number,
  flags: number,
  pgoff: number,
): number {
  const host = mm.host;
  if (len === 0) return -EINVAL;
  // MAP_FIXED_NOREPLACE takes the MAP_FIXED path of get_unmapped_area.
  if (flags & MAP_FIXED_NOREPLACE) flags |= MAP_FIXED;
  if (!(flags & MAP_FIXED)) {
    // round_hint_to_min
    addr = Math.floor(addr * PAGE_SCALE) * PAGE_SIZE;
    if (addr !== 0 && addr < host.mmapMinAddr) addr = pageAlign(host.mmapMinAddr);
  }
  len = pageAlign(len);
  if (len <= 0 || len > 2 ** 52) return -ENOMEM;
  if (mm.mapCount > host.maxMapCount) return -ENOMEM;
  addr = getUnmappedArea(mm, addr, len, flags);
  if (addr < 0) return addr;
  if (flags & MAP_FIXED_NOREPLACE && mm.vmas.findIntersection(addr, addr + len) !== null) return -EEXIST;
  let vmFlags =
    calcVmProtBits(prot) |
    (flags & MAP_GROWSDOWN ? VM_GROWSDOWN : 0) |
    (flags & MAP_LOCKED ? VM_LOCKED : 0) |
    VM_MAYREAD |
    VM_MAYWRITE |
    VM_MAYEXEC;
  const type = flags & MAP_TYPE;
  if (file !== null) {
    if (type === MAP_SHARED || type === MAP_SHARED_VALIDATE) {
      // MAP_SHARED ignores unknown flags for compatibility; MAP_SHARED_VALIDATE refuses them.
      if (type === MAP_SHARED_VALIDATE && flags & ~LEGACY_MAP_MASK) return -EOPNOTSUPP;
      if (prot & PROT_WRITE && !(file.fMode & FMODE_WRITE)) return -EACCES;
      vmFlags |= VM_SHARED | VM_MAYSHARE;
      if (!(file.fMode & FMODE_WRITE)) vmFlags &= ~(VM_MAYWRITE | VM_SHARED);
    } else if (type !== MAP_PRIVATE) {
      return -EINVAL;
    }
    if (!(file.fMode & FMODE_READ)) return -EACCES;
    if (file.fOp.mmap === undefined) return -ENODEV;
    if (vmFlags & VM_GROWSDOWN) return -EINVAL;
  } else if (type === MAP_SHARED) {
    if (vmFlags & VM_GROWSDOWN) return -EINVAL;
    pgoff = 0;
    vmFlags |= VM_SHARED | VM_MAYSHARE;
  } else if (type === MAP_PRIVATE) {
    pgoff = addr * PAGE_SCALE;
  } else {
    return -EINVAL;
  }
  return mmapRegion(mm, file, addr, len, vmFlags, pgoff);
}
