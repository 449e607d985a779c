/**
 * The page-fault path: `handle_mm_fault` for a VMA already found and permission-checked,
 * anonymous faults (a fresh zeroed frame), file faults through `vm_ops->fault`, and
 * `vmf_insert_pfn` for drivers that map raw pfns (the KVM XIVE ESB and TIMA handlers).
 */

import { traceEvent } from '../../sim/trace-events.ts';
import { TRACE_MM } from '../../sim/trace-sink.ts';
import {
  AtomicStep,
  mmapLockObj,
  mustYield,
  pteObj,
  StepPool,
  sequentialDriverRuns,
  vmasObj,
} from '../atomic-step.ts';
import {
  FAULT_FLAG_WRITE,
  PAGE_SCALE,
  PAGE_SIZE,
  VM_FAULT_ERROR,
  VM_FAULT_NOPAGE,
  VM_FAULT_OOM,
  VM_FAULT_SIGBUS,
  VM_FAULT_SIGSEGV,
  VM_MIXEDMAP,
  VM_PFNMAP,
  VM_READ,
  VM_SHARED,
  VM_WRITE,
} from './constants.ts';
import type { Mm } from './mm.ts';
import { PTE_ACCESSED, PTE_ANON, PTE_DIRTY, PTE_PRESENT, PTE_SPECIAL, PTE_WRITE } from './page-table.ts';
import { type Vma, VmFault } from './vma.ts';

/** PTE permission bits a VMA grants (`vm_page_prot`): writable iff VM_WRITE. */
export function vmaPteFlags(vma: Vma): number {
  return PTE_PRESENT | (vma.flags & VM_WRITE ? PTE_WRITE : 0);
}

/**
 * Insert a special PTE for `pfn` at `address` in a VM_PFNMAP/VM_MIXEDMAP VMA. An existing PTE is
 * left as it is. Returns VM_FAULT_NOPAGE, or VM_FAULT_SIGBUS for an address outside the VMA.
 *
 * @remarks Models mm/memory.c:vmf_insert_pfn()
 */
export function vmfInsertPfn(vma: Vma, address: number, pfn: number): number {
  if (!(vma.flags & (VM_PFNMAP | VM_MIXEDMAP))) {
    throw new Error(`vmf_insert_pfn on VMA ${vma.id} without VM_PFNMAP|VM_MIXEDMAP (kernel BUG_ON)`);
  }
  if (address < vma.start || address >= vma.end) return VM_FAULT_SIGBUS;
  const mm = vma.mm;
  const vpn = Math.floor(address * PAGE_SCALE);
  if (mm.pgtable.pfn(vpn) < 0) {
    mm.pgtable.set(vpn, pfn, vmaPteFlags(vma) | PTE_SPECIAL);
    mm.stats.pfnInserts++;
    const t = mm.host.trace;
    if (t.mask & TRACE_MM) traceEvent(t, 'mm.insert_pfn', { pid: mm.pid, address, pfn, vma: vma.id });
  }
  return VM_FAULT_NOPAGE;
}

/**
 * Resolve a fault at `address` in `vma` (the caller found the VMA and checked the access against
 * its flags). Returns 0 or VM_FAULT_NOPAGE on success (a PTE is now present), else
 * VM_FAULT_SIGBUS / VM_FAULT_SIGSEGV / VM_FAULT_OOM.
 *
 * @remarks Models mm/memory.c:handle_mm_fault()
 */
export function handleMmFault(mm: Mm, vma: Vma, address: number, flags: number): number {
  mm.stats.faults++;
  const vpn = Math.floor(address * PAGE_SCALE);
  const pt = mm.pgtable;
  const t = mm.host.trace;
  if (t.mask & TRACE_MM) traceEvent(t, 'mm.fault', { pid: mm.pid, address, flags, vma: vma.id });
  const cur = pt.flags(vpn);
  if (cur & PTE_PRESENT) {
    // A write to a present read-only PTE of a writable VMA (do_wp_page): shared and pfnmap
    // pages are simply made writable; private pages are not shared in this model (no COW).
    if (flags & FAULT_FLAG_WRITE && vma.flags & VM_WRITE) pt.setFlags(vpn, cur | PTE_WRITE | PTE_DIRTY);
    return 0;
  }
  if (vma.ops === null) return doAnonymousPage(mm, vma, vpn, flags);
  const fault = vma.ops.fault;
  if (fault === undefined) return VM_FAULT_SIGBUS;
  mm.stats.fileFaults++;
  const vmf = new VmFault(vma, address, flags);
  const ret = fault.call(vma.ops, vmf);
  if (ret & VM_FAULT_ERROR) return ret;
  if (ret & VM_FAULT_NOPAGE) return ret;
  if (vmf.pfn < 0) {
    throw new Error(`vm_ops '${vma.ops.name}' fault returned ${ret} without a pfn or VM_FAULT_NOPAGE`);
  }
  // finish_fault: map the page the handler returned.
  if (pt.pfn(vpn) < 0) {
    const dirty = flags & FAULT_FLAG_WRITE ? PTE_DIRTY : 0;
    pt.set(vpn, vmf.pfn, vmaPteFlags(vma) | PTE_ACCESSED | dirty);
    if (t.mask & TRACE_MM)
      traceEvent(t, 'mm.set_pte', { pid: mm.pid, address: vpn * PAGE_SIZE, pfn: vmf.pfn, vma: vma.id });
  }
  return ret;
}

/** @remarks Models mm/memory.c:do_anonymous_page() */
function doAnonymousPage(mm: Mm, vma: Vma, vpn: number, flags: number): number {
  if (vma.flags & VM_SHARED) throw new Error(`shared VMA ${vma.id} without vm_ops (shmem not set up)`);
  if (vma.anonVma === 0) vma.anonVma = mm.host.newAnonVma(); // anon_vma_prepare
  const pfn = mm.host.frames.allocRam();
  if (pfn < 0) return VM_FAULT_OOM;
  const dirty = flags & FAULT_FLAG_WRITE ? PTE_DIRTY : 0;
  mm.pgtable.set(vpn, pfn, vmaPteFlags(vma) | PTE_ANON | PTE_ACCESSED | dirty);
  mm.stats.anonFaults++;
  const t = mm.host.trace;
  if (t.mask & TRACE_MM)
    traceEvent(t, 'mm.set_pte', { pid: mm.pid, address: vpn * PAGE_SIZE, pfn, vma: vma.id });
  return 0;
}

/** Which step of a fault (do_page_fault's, or KVM's hva_to_pfn's) a {@link FaultStep} is. */
export const FAULT_LOCK = 0;
const FAULT_HANDLE = 1;
export const FAULT_UNLOCK = 2;

/**
 * A step of {@link faultSteps} (or of KVM's `hva_to_pfn`): `mmap_read_lock` + `find_vma`
 * (blocked while a writer holds the lock), the whole `handle_mm_fault`, or `mmap_read_unlock`.
 * Keeps the numbers its text is made of (see {@link AtomicStep}); {@link FaultStep.of} makes one.
 */
export class FaultStep extends AtomicStep {
  declare private kind: number;
  declare private mm: Mm;
  declare private who: string;
  declare private addr: number;
  /** The file page mapped at `addr` (−1: none): names the PTE object. */
  declare private pgoff: number;

  private constructor(kind: number, mm: Mm, who: string, addr: number, pgoff: number) {
    super();
    this.kind = kind;
    this.mm = mm;
    this.who = who;
    this.addr = addr;
    this.pgoff = pgoff;
  }

  /** A step of `kind` ({@link FAULT_LOCK} …): new, or recycled under a sequential driver. */
  static of(kind: number, mm: Mm, who: string, addr: number, pgoff: number): FaultStep {
    const s = faultStepPool.take(kind);
    if (s === null) return faultStepPool.keep(kind, new FaultStep(kind, mm, who, addr, pgoff));
    s.mm = mm;
    s.who = who;
    s.addr = addr;
    s.pgoff = pgoff;
    return s;
  }

  private pte(): string {
    return pteObj(this.mm.pid, Math.floor(this.addr * PAGE_SCALE), this.pgoff);
  }

  protected override describe(): string {
    if (this.kind === FAULT_LOCK) return `${this.who}: mmap_read_lock, find_vma(0x${this.addr.toString(16)})`;
    return `${this.who}: ${this.kind === FAULT_HANDLE ? 'handle_mm_fault' : 'mmap_read_unlock'}`;
  }

  protected override describeReads(): readonly string[] {
    return this.kind === FAULT_LOCK ? [vmasObj(this.mm.pid), this.pte()] : [];
  }

  protected override describeWrites(): readonly string[] {
    return this.kind === FAULT_HANDLE ? [this.pte()] : [mmapLockObj(this.mm.pid)];
  }

  override canRun(): boolean {
    return this.kind !== FAULT_LOCK || this.mm.mmapLock.canRead;
  }
}

const faultStepPool = new StepPool<FaultStep>();

/**
 * Under `mmap_read_lock` (taken by step `lock`, whose effect this fills in): the VMA a fault at
 * `addr` resolves in, or what it returns without one: VM_FAULT_SIGSEGV (no VMA, or an access the
 * VMA does not allow), 0 (a PTE is already present: nothing to do).
 *
 * @remarks Models the `find_vma` + `access_error` of arch/powerpc/mm/fault.c:do_page_fault()
 * (`vma_lookup` + `vma_permits_fault` in mm/gup.c:fixup_user_fault()) and the present-PTE check
 * of mm/memory.c:handle_pte_fault().
 */
export function faultVma(mm: Mm, addr: number, flags: number, lock: AtomicStep): Vma | number {
  const vma = mm.vmas.lookup(addr);
  if (vma === null) {
    lock.effect = 'no VMA: SIGSEGV';
    return VM_FAULT_SIGSEGV;
  }
  if (!(vma.flags & (flags & FAULT_FLAG_WRITE ? VM_WRITE : VM_READ))) {
    lock.effect = 'access not allowed by the VMA: SIGSEGV';
    return VM_FAULT_SIGSEGV;
  }
  if (mm.pgtable.flags(Math.floor(addr * PAGE_SCALE)) & PTE_PRESENT) {
    lock.effect = 'PTE present';
    return 0;
  }
  return vma;
}

/**
 * The {@link VmFault} of the step-wise faults a sequential driver runs: one, reused, as nothing
 * keeps a fault's past its handler and none nests in another (a full VM's million ESB faults
 * made a million, three heap objects each). The explorer's faults get new ones.
 */
let sequentialVmf: VmFault | null = null;

/**
 * `handle_mm_fault` of a VMA whose `vm_ops.faultSteps` resolve the fault: counted and traced
 * here, the {@link VmFault} they take.
 */
export function stepFault(mm: Mm, vma: Vma, addr: number, flags: number): VmFault {
  mm.stats.faults++;
  mm.stats.fileFaults++;
  const t = mm.host.trace;
  if (t.mask & TRACE_MM) traceEvent(t, 'mm.fault', { pid: mm.pid, address: addr, flags, vma: vma.id });
  if (!sequentialDriverRuns()) return new VmFault(vma, addr, flags);
  if (sequentialVmf === null) sequentialVmf = new VmFault(vma, addr, flags);
  else sequentialVmf.reuse(vma, addr, flags);
  return sequentialVmf;
}

/**
 * A fault at `addr` as atomic steps, the form the interleaving explorer runs: `mmap_read_lock`
 * with `find_vma` and the access and present-PTE checks ({@link faultVma}); the VMA's
 * `vm_ops.faultSteps` when it declares them, else the whole `handle_mm_fault` as one step;
 * `mmap_read_unlock`. `who` names the faulting context in the step labels. Returns what
 * {@link handleMmFault} returns, or VM_FAULT_SIGSEGV.
 *
 * @remarks Models arch/powerpc/mm/fault.c:do_page_fault() down to
 * mm/memory.c:handle_mm_fault().
 */
export function* faultSteps(
  mm: Mm,
  addr: number,
  flags: number,
  who: string,
): Generator<AtomicStep, number, void> {
  // The PTE object this fault installs: named after the file page where there is one (a zap
  // through the file's reverse map writes the same name).
  const v0 = mm.vmas.lookup(addr);
  const pgoff = v0?.file ? v0.pgoffOf(addr) : -1;
  const lock = FaultStep.of(FAULT_LOCK, mm, who, addr, pgoff);
  if (mustYield(lock)) yield lock;
  mm.mmapLock.downRead();
  const vma = faultVma(mm, addr, flags, lock);
  let ret: number;
  if (typeof vma === 'number') ret = vma;
  else if (vma.ops?.faultSteps) ret = yield* vma.ops.faultSteps(stepFault(mm, vma, addr, flags));
  else {
    const handle = FaultStep.of(FAULT_HANDLE, mm, who, addr, pgoff);
    if (mustYield(handle)) yield handle;
    ret = handleMmFault(mm, vma, addr, flags);
  }
  const unlock = FaultStep.of(FAULT_UNLOCK, mm, who, addr, pgoff);
  if (mustYield(unlock)) yield unlock;
  mm.mmapLock.upRead();
  return ret;
}
