/**
 * Removing PTEs: `zap_page_range_single`, `zap_vma_ptes` and `unmap_mapping_range` over a file's
 * reverse map. Every zap is bracketed by MMU-notifier invalidate_range_start/end on the mm whose
 * PTEs go, which is how KVM learns to drop its partition-scoped entries.
 */

import { traceEvent } from '../../sim/trace-events.ts';
import { TRACE_MM } from '../../sim/trace-sink.ts';
import {
  AtomicStep,
  driveSteps,
  FILE_IMAP,
  filePteObj,
  MMU_NOTIFIERS,
  mustYield,
  waitsForever,
} from '../atomic-step.ts';
import { MMU_NOTIFY_CLEAR, PAGE_SCALE, PAGE_SIZE, VM_PFNMAP } from './constants.ts';
import type { FileMapping } from './file.ts';
import { type Mm, MmuNotifierRange } from './mm.ts';
import { PTE_ANON } from './page-table.ts';
import type { Vma } from './vma.ts';

/**
 * Clear the PTEs of `[start, end)` (page-aligned) without notifying; frees private anonymous
 * frames. Callers bracket it with the notifier. Returns the number of PTEs cleared.
 */
export function clearPteRange(mm: Mm, start: number, end: number): number {
  const pt = mm.pgtable;
  const frames = mm.host.frames;
  let n = 0;
  pt.scan(start * PAGE_SCALE, end * PAGE_SCALE, (vpn, pfn, flags) => {
    pt.clear(vpn);
    if (flags & PTE_ANON) frames.freeRam(pfn);
    n++;
  });
  mm.stats.ptesZapped += n;
  return n;
}

/**
 * Zap the PTEs of one VMA in `[address, address + size)`, notifying `[address, address + size)`
 * with `event`. Returns the number of PTEs cleared.
 *
 * @remarks Models mm/memory.c:zap_page_range_single()
 */
export function zapPageRangeSingle(
  vma: Vma,
  address: number,
  size: number,
  event = MMU_NOTIFY_CLEAR,
): number {
  const mm = vma.mm;
  const end = address + size;
  mm.stats.zaps++;
  const range = new MmuNotifierRange(mm, address, end, event);
  mm.invalidateRangeStart(range);
  const n = clearPteRange(mm, Math.max(address, vma.start), Math.min(end, vma.end));
  mm.invalidateRangeEnd(range);
  const t = mm.host.trace;
  if (t.mask & TRACE_MM) traceEvent(t, 'mm.zap', { pid: mm.pid, start: address, end, ptes: n });
  return n;
}

/**
 * Remove the PTEs of a VM_PFNMAP VMA in `[address, address + size)`. Silently does nothing when
 * the range is outside the VMA or the VMA is not VM_PFNMAP, as the kernel does.
 *
 * @remarks Models mm/memory.c:zap_vma_ptes()
 */
export function zapVmaPtes(vma: Vma, address: number, size: number): void {
  if (address < vma.start || address + size > vma.end || !(vma.flags & VM_PFNMAP)) return;
  zapPageRangeSingle(vma, address, size);
}

/**
 * Zap file pages `[start, start + nr)` in every VMA of every process that maps them, under
 * `i_mmap_rwsem` held for read. Each VMA gets its own notifier bracket over just the part that
 * maps the range, in reverse-map order (by VMA pgoff). `evenCows` is accepted for fidelity: the
 * model has no private COW copies of file pages, so both values zap the same PTEs. Returns the
 * PTEs cleared.
 *
 * @remarks Models mm/memory.c:unmap_mapping_pages()
 */
export function unmapMappingPages(
  mapping: FileMapping,
  start: number,
  nr: number,
  evenCows: boolean,
): number {
  void evenCows;
  return driveSteps(unmapMappingPagesSteps(mapping, start, nr, ''), waitsForever);
}

/**
 * {@link unmapMappingPages} as atomic steps: `i_mmap_lock_read` (blocked while a writer holds
 * `i_mmap_rwsem`: mmap, munmap, mremap, mprotect's VMA split, fork), one step per VMA the
 * reverse map yields (`zap_page_range_single`: the notifier bracket around its PTE-lock
 * section), then `i_mmap_unlock_read`. A fault in one VMA can run between the zaps of two
 * others. `who` prefixes the step labels.
 *
 * @remarks Models mm/memory.c:unmap_mapping_pages() → unmap_mapping_range_tree().
 */
export function* unmapMappingPagesSteps(
  mapping: FileMapping,
  start: number,
  nr: number,
  who: string,
): Generator<AtomicStep, number, void> {
  const first = start;
  // nr = 0 means "to the end of the file" (last_index wraps to ULONG_MAX).
  const last = nr > 0 ? start + nr - 1 : Number.MAX_SAFE_INTEGER;
  const rw = mapping.iMmapRwsem;
  const lock = new AtomicStep(`${who}i_mmap_lock_read`, [FILE_IMAP], [], () => rw.canRead);
  if (mustYield(lock)) yield lock;
  rw.downRead();
  const vmas = mapping.iMmap.query(first, last);
  lock.effect = `${vmas.length} VMA(s) map the range`;
  let n = 0;
  for (const vma of vmas) {
    const vba = vma.pgoff;
    const vea = vba + vma.pages - 1;
    const zba = Math.max(first, vba);
    const zea = Math.min(last, vea);
    const from = vma.start + (zba - vba) * PAGE_SIZE;
    const to = vma.start + (zea - vba + 1) * PAGE_SIZE;
    // Per-page objects for the explorer's small zaps; a bulk zap (truncation) names its range.
    const ptes: string[] = [];
    if (zea - zba < 64) for (let pg = zba; pg <= zea; pg++) ptes.push(filePteObj(pg));
    else ptes.push(`pte:file-pages-${zba}-${zea}`);
    const st = new AtomicStep(
      `${who}zap pid ${vma.mm.pid} VMA 0x${vma.start.toString(16)}: file pages ${zba}..${zea} (PTE lock)`,
      [],
      [...ptes, MMU_NOTIFIERS],
    );
    if (mustYield(st)) yield st;
    const k = zapPageRangeSingle(vma, from, to - from);
    st.effect = `${k} PTE(s) removed`;
    n += k;
  }
  const unlock = new AtomicStep(`${who}i_mmap_unlock_read`, [FILE_IMAP], []);
  if (mustYield(unlock)) yield unlock;
  rw.upRead();
  return n;
}

/**
 * Byte-range form: `holebegin` is rounded down and `holelen` up to whole pages; `holelen` 0
 * means to the end of the file.
 *
 * @remarks Models mm/memory.c:unmap_mapping_range()
 */
export function unmapMappingRange(
  mapping: FileMapping,
  holebegin: number,
  holelen: number,
  evenCows: boolean,
): number {
  const hba = Math.floor(holebegin * PAGE_SCALE);
  const hlen = Math.ceil(holelen * PAGE_SCALE);
  return unmapMappingPages(mapping, hba, hlen, evenCows);
}
