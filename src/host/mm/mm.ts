/**
 * `struct mm_struct`: a process address space — the VMA index, the page table, `mmap_lock`
 * (a counter-modelled rwsem) and the registered MMU notifiers — plus the counters the reports
 * read, each a count of its path running.
 */

import { traceEvent } from '../../sim/trace-events.ts';
import { TRACE_MM } from '../../sim/trace-sink.ts';
import type { MmHost } from './mm-host.ts';
import { PageTable } from './page-table.ts';
import { RwSem } from './rwsem.ts';
import { VmaIndex } from './vma-index.ts';

/** `struct mmu_notifier_range`. */
export class MmuNotifierRange {
  readonly mm: Mm;
  readonly start: number;
  readonly end: number;
  /** MMU_NOTIFY_*. */
  readonly event: number;
  constructor(mm: Mm, start: number, end: number, event: number) {
    this.mm = mm;
    this.start = start;
    this.end = end;
    this.event = event;
  }
}

/** `struct mmu_notifier_ops` (the callbacks KVM uses). */
export interface MmuNotifier {
  invalidateRangeStart(range: MmuNotifierRange): void;
  invalidateRangeEnd(range: MmuNotifierRange): void;
  /** The address space is being torn down (`exit_mmap`). */
  release(mm: Mm): void;
}

/** Counters of the memory-manager paths, per address space. */
export class MmStats {
  /** handle_mm_fault calls. */
  faults = 0;
  /** Faults that allocated an anonymous frame. */
  anonFaults = 0;
  /** Faults that called a vm_ops->fault handler. */
  fileFaults = 0;
  /** PTEs installed by vmf_insert_pfn. */
  pfnInserts = 0;
  /** PTEs cleared by zaps, munmap, mremap and exit. */
  ptesZapped = 0;
  /** zap_page_range_single calls (zap_vma_ptes, unmap_mapping_range per VMA). */
  zaps = 0;
  notifierStarts = 0;
  notifierEnds = 0;
  /** Accesses that raised SIGBUS / SIGSEGV. */
  sigbus = 0;
  sigsegv = 0;
  /** VMA splits and merges. */
  splits = 0;
  merges = 0;
}

export class Mm {
  readonly host: MmHost;
  /** Owner process id (for traces). */
  readonly pid: number;
  readonly vmas: VmaIndex;
  readonly pgtable: PageTable;
  /** `mmap_lock`: taken for write by mmap/munmap/mremap/mprotect, for read by faults. */
  readonly mmapLock: RwSem;
  readonly notifiers: MmuNotifier[];
  readonly stats: MmStats;
  /** Pages mapped (`total_vm`). */
  totalVm: number;
  /** Set by exit_mmap. */
  dead: boolean;

  constructor(host: MmHost, pid: number) {
    this.host = host;
    this.pid = pid;
    this.vmas = new VmaIndex();
    this.pgtable = new PageTable();
    this.mmapLock = new RwSem('mmap_lock');
    this.notifiers = [];
    this.stats = new MmStats();
    this.totalVm = 0;
    this.dead = false;
  }

  /** `mm->map_count`. */
  get mapCount(): number {
    return this.vmas.count;
  }

  /** `mmu_notifier_register`. */
  mmuNotifierRegister(n: MmuNotifier): void {
    if (this.notifiers.includes(n)) throw new Error('mmu_notifier_register: already registered');
    this.notifiers.push(n);
  }

  /** `mmu_notifier_unregister` (calls `release` as the kernel does when the mm is live). */
  mmuNotifierUnregister(n: MmuNotifier): void {
    const i = this.notifiers.indexOf(n);
    if (i < 0) throw new Error('mmu_notifier_unregister: not registered');
    this.notifiers.splice(i, 1);
    if (!this.dead) n.release(this);
  }

  /** `mmu_notifier_invalidate_range_start`. */
  invalidateRangeStart(range: MmuNotifierRange): void {
    this.stats.notifierStarts++;
    const t = this.host.trace;
    if (t.mask & TRACE_MM)
      traceEvent(t, 'mm.notify.start', {
        pid: this.pid,
        start: range.start,
        end: range.end,
        event: range.event,
      });
    for (const n of this.notifiers) n.invalidateRangeStart(range);
  }

  /** `mmu_notifier_invalidate_range_end`. */
  invalidateRangeEnd(range: MmuNotifierRange): void {
    this.stats.notifierEnds++;
    for (const n of this.notifiers) n.invalidateRangeEnd(range);
  }

  /** `mmu_notifier_release` (exit_mmap). */
  notifierRelease(): void {
    const ns = this.notifiers.splice(0);
    for (const n of ns) n.release(this);
  }
}
