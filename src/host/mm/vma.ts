/**
 * `struct vm_area_struct`, `struct vm_operations_struct` and `struct vm_fault`.
 */

import type { AtomicStep } from '../atomic-step.ts';
import { PAGE_SCALE, PAGE_SIZE } from './constants.ts';
import type { File } from './file.ts';
import type { Mm } from './mm.ts';

/**
 * A driver's VMA operations. Drivers of the model (the KVM XIVE device, VFIO) install these from
 * their `f_op.mmap`.
 */
export interface VmOperations {
  /** Shown in traces and `/proc/pid/maps`-like dumps. */
  readonly name: string;
  /**
   * `vm_ops->fault`: resolve `vmf.pgoff` (a file page offset; `vmf.pgoff - vma.pgoff` is the
   * page's offset inside the VMA). Either insert the PTE itself with `vmfInsertPfn` and return
   * `VM_FAULT_NOPAGE`, or set `vmf.pfn` and return 0 for the core to install it, or return
   * `VM_FAULT_SIGBUS`.
   */
  fault?(vmf: VmFault): number;
  /**
   * The same fault as atomic steps (see `AtomicStep`), for the interleaving explorer: returns
   * what {@link fault} returns. Handlers whose fault can race declare it; {@link fault} is then
   * the sequential drive of these steps.
   */
  faultSteps?(vmf: VmFault): Generator<AtomicStep, number, void>;
  /** `vm_ops->open`: a new VMA now shares this one's state (split, fork, mremap). */
  open?(vma: Vma): void;
  /** `vm_ops->close`: the VMA goes away. */
  close?(vma: Vma): void;
  /** `vm_ops->may_split`: 0, or −errno to refuse a split at `addr`. */
  maySplit?(vma: Vma, addr: number): number;
  /** `vm_ops->mremap`: 0, or −errno to refuse a move. */
  mremap?(vma: Vma): number;
}

/**
 * A virtual memory area: `[start, end)` of one process, mapping file pages from `pgoff` on
 * (for private anonymous memory `pgoff` is `start / PAGE_SIZE` at creation, as in Linux).
 */
export class Vma {
  /** Unique, in creation order (deterministic tie-breaks in the reverse map). */
  readonly id: number;
  readonly mm: Mm;
  start: number;
  end: number;
  /** File page offset of `start` (`vm_pgoff`). */
  pgoff: number;
  /** `vm_flags`: VM_READ/WRITE/EXEC, VM_MAY*, VM_SHARED, VM_PFNMAP, VM_IO… */
  flags: number;
  /** `vm_file` (holds a reference), or null for private anonymous memory. */
  file: File | null;
  ops: VmOperations | null;
  /** `vm_private_data`. */
  privateData: unknown;
  /** `anon_vma` identity: 0 until the first anonymous page; shared by split halves. */
  anonVma: number;
  /** Set once the VMA is unlinked and freed; a driver holding it sees a dead VMA. */
  freed: boolean;

  constructor(
    id: number,
    mm: Mm,
    start: number,
    end: number,
    pgoff: number,
    flags: number,
    file: File | null,
  ) {
    this.id = id;
    this.mm = mm;
    this.start = start;
    this.end = end;
    this.pgoff = pgoff;
    this.flags = flags;
    this.file = file;
    this.ops = null;
    this.privateData = null;
    this.anonVma = 0;
    this.freed = false;
  }

  /** `vma_pages()`. */
  get pages(): number {
    return (this.end - this.start) * PAGE_SCALE;
  }

  /** File page offset backing `addr` (`linear_page_index`). */
  pgoffOf(addr: number): number {
    return this.pgoff + Math.floor((addr - this.start) * PAGE_SCALE);
  }

  /** Address of file page `pgoff` in this VMA (may lie outside it). */
  addrOf(pgoff: number): number {
    return this.start + (pgoff - this.pgoff) * PAGE_SIZE;
  }
}

/**
 * `struct vm_fault`: one fault in progress. The fields are set only by the constructor and by
 * {@link VmFault.reuse} (the step-wise faults a sequential driver runs reuse one: see
 * `stepFault`).
 */
export class VmFault {
  // `declare`d fields: one is made per fault (a million at a full VM's set-up), and a class-field
  // definition would store `undefined` in each before the constructor does.
  declare vma: Vma;
  /** Faulting address rounded down to its page. */
  declare address: number;
  /** The address the access used. */
  declare realAddress: number;
  /** File page offset of `address` (`vmf->pgoff`). */
  declare pgoff: number;
  /** FAULT_FLAG_*. */
  declare flags: number;
  /** Out: the frame for the core to map when the handler returns 0; -1 otherwise. */
  declare pfn: number;

  constructor(vma: Vma, realAddress: number, flags: number) {
    this.reuse(vma, realAddress, flags);
  }

  /** This object, made over for a new fault (what the constructor makes of the arguments). */
  reuse(vma: Vma, realAddress: number, flags: number): VmFault {
    this.vma = vma;
    this.realAddress = realAddress;
    this.address = Math.floor(realAddress * PAGE_SCALE) * PAGE_SIZE;
    this.pgoff = vma.pgoffOf(this.address);
    this.flags = flags;
    this.pfn = -1;
    return this;
  }
}
