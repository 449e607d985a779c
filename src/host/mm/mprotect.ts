/**
 * `mprotect`: change the protection of whole pages, splitting VMAs at the range ends and merging
 * the result with compatible neighbours.
 */

import { EACCES, EINVAL, ENOMEM } from '../errno.ts';
import {
  MMU_NOTIFY_PROTECTION_VMA,
  PAGE_SCALE,
  PAGE_SIZE,
  PROT_EXEC,
  PROT_GROWSDOWN,
  PROT_GROWSUP,
  PROT_READ,
  PROT_SAO,
  PROT_SEM,
  PROT_WRITE,
  VM_ACCESS_FLAGS,
  VM_EXEC,
  VM_READ,
  VM_SPECIAL,
  VM_WRITE,
} from './constants.ts';
import { type Mm, MmuNotifierRange } from './mm.ts';
import { calcVmProtBits, pageAlign, splitVma, splitVmaUnchecked, vmaMergeAround } from './mmap.ts';
import { PTE_PROTNONE, PTE_WRITE } from './page-table.ts';
import type { Vma } from './vma.ts';

/** Could `[start, end)` of `vma`, with `flags`, join a neighbour without growing map_count? */
function joinsNeighbour(mm: Mm, vma: Vma, start: number, end: number, flags: number): boolean {
  if (flags & VM_SPECIAL || vma.ops?.close) return false;
  const ok = (n: Vma | null): n is Vma =>
    n !== null &&
    n.flags === flags &&
    n.file === vma.file &&
    !n.ops?.close &&
    (n.anonVma === 0 || vma.anonVma === 0 || n.anonVma === vma.anonVma);
  const prev = mm.vmas.prev(vma);
  if (start === vma.start && ok(prev) && prev.end === start && prev.pgoff + prev.pages === vma.pgoff)
    return true;
  const next = mm.vmas.next(vma);
  return end === vma.end && ok(next) && next.start === end && vma.pgoffOf(end) === next.pgoff;
}

/**
 * Apply the VMA's (new) protection to its present PTEs in `[start, end)`, bracketed by a
 * PROTECTION_VMA notifier when there is anything to change.
 *
 * @remarks Models mm/mprotect.c:change_protection() (one bracket per VMA piece)
 */
export function changeProtection(mm: Mm, vma: Vma, start: number, end: number): void {
  const pt = mm.pgtable;
  const s = start * PAGE_SCALE;
  const e = end * PAGE_SCALE;
  if (pt.countPresent(s, e) === 0) return;
  const range = new MmuNotifierRange(mm, start, end, MMU_NOTIFY_PROTECTION_VMA);
  mm.invalidateRangeStart(range);
  const write = vma.flags & VM_WRITE ? PTE_WRITE : 0;
  const none = vma.flags & VM_ACCESS_FLAGS ? 0 : PTE_PROTNONE;
  pt.scan(s, e, (vpn, _pfn, flags) => {
    pt.setFlags(vpn, (flags & ~(PTE_WRITE | PTE_PROTNONE)) | write | none);
  });
  mm.invalidateRangeEnd(range);
}

/**
 * Give `[start, end)` (inside `vma`) the flags `newFlags`: split as needed (-ENOMEM at
 * `vm.max_map_count` unless the piece merges into a neighbour), update PTEs, merge. Returns the
 * VMA now covering the piece (the kernel's `*pprev`), or −errno.
 *
 * @remarks Models mm/mprotect.c:mprotect_fixup()
 */
export function mprotectFixup(mm: Mm, vma: Vma, start: number, end: number, newFlags: number): Vma | number {
  if (newFlags === vma.flags) return vma;
  const joins = joinsNeighbour(mm, vma, start, end, newFlags);
  const split = joins ? splitVmaUnchecked : splitVma;
  if (start !== vma.start) {
    const r = split(mm, vma, start, true);
    if (typeof r === 'number') return r;
  }
  if (end !== vma.end) {
    const r = split(mm, vma, end, false);
    if (typeof r === 'number') return r;
  }
  vma.flags = newFlags;
  changeProtection(mm, vma, start, end);
  return joins ? vmaMergeAround(mm, vma) : vma;
}

/**
 * The mprotect syscall body (caller holds nothing; takes `mmap_lock`). Pieces before a hole are
 * changed before -ENOMEM is returned, as in the kernel.
 *
 * @remarks Models mm/mprotect.c:do_mprotect_pkey()
 */
export function doMprotect(mm: Mm, start: number, len: number, prot: number): number {
  if (start % PAGE_SIZE !== 0) return -EINVAL;
  if (len === 0) return 0;
  len = pageAlign(len);
  const end = start + len;
  if (!(end > start)) return -ENOMEM;
  const grows = prot & (PROT_GROWSDOWN | PROT_GROWSUP);
  if (grows === (PROT_GROWSDOWN | PROT_GROWSUP)) return -EINVAL;
  prot &= ~grows;
  // arch_validate_prot (powerpc): POWER9 has SAO.
  if (prot & ~(PROT_READ | PROT_WRITE | PROT_EXEC | PROT_SEM | PROT_SAO)) return -EINVAL;
  mm.mmapLock.downWrite();
  try {
    let vma = mm.vmas.find(start);
    if (vma === null || vma.start > start) return -ENOMEM;
    let nstart = start;
    for (;;) {
      const newFlags = calcVmProtBits(prot) | (vma.flags & ~(VM_READ | VM_WRITE | VM_EXEC));
      // VM_MAY* sit 4 bits above the VM_* they allow.
      if (newFlags & ~(newFlags >> 4) & (VM_READ | VM_WRITE | VM_EXEC)) return -EACCES;
      const tmp = Math.min(vma.end, end);
      const cur = mprotectFixup(mm, vma, nstart, tmp, newFlags);
      if (typeof cur === 'number') return cur;
      // A merge may have carried the covering VMA past the piece.
      nstart = Math.max(tmp, cur.end);
      if (nstart >= end) return 0;
      vma = mm.vmas.next(cur);
      if (vma === null || vma.start !== nstart) return -ENOMEM;
    }
  } finally {
    mm.mmapLock.upWrite();
  }
}
