/**
 * A host process as the memory manager sees it: an fd table and an address space, with the
 * syscalls of this layer in raw-syscall form (a result ≥ 0, or −errno).
 */

import { type AccessSize, NO_CPU, Word64 } from '../../hw/mmio.ts';
import { traceEvent } from '../../sim/trace-events.ts';
import { TRACE_MM } from '../../sim/trace-sink.ts';
import { EBADF, EINVAL, EMFILE, ENOMEM } from '../errno.ts';
import {
  FAULT_FLAG_WRITE,
  MAP_ANONYMOUS,
  MAP_HUGETLB,
  MAP_NONBLOCK,
  MAP_POPULATE,
  MMU_NOTIFY_PROTECTION_PAGE,
  PAGE_SIZE,
  PROT_EXEC,
  PROT_READ,
  PROT_SAO,
  PROT_SEM,
  PROT_WRITE,
  VM_DONTCOPY,
  VM_IO,
  VM_MAYWRITE,
  VM_MIXEDMAP,
  VM_PFNMAP,
  VM_SHARED,
  VM_WRITE,
} from './constants.ts';
import { handleMmFault } from './fault.ts';
import { type File, fput, getFile } from './file.ts';
import { Mm, MmuNotifierRange } from './mm.ts';
import type { MmHost } from './mm-host.ts';
import { doMmap, doMunmap, removeVma, unmapRegion, vmaAlloc, vmaLink, vmaUnlink } from './mmap.ts';
import { doMprotect } from './mprotect.ts';
import { doMremap } from './mremap.ts';
import { PTE_ANON } from './page-table.ts';
import { copyFromUser, copyToUser, hvaToPfn, userLoad, userStore } from './uaccess.ts';
import type { Vma } from './vma.ts';

export class Process {
  readonly host: MmHost;
  readonly pid: number;
  readonly mm: Mm;
  exited: boolean;
  private readonly fds: (File | null)[];
  private readonly scratch: Word64;

  constructor(host: MmHost, pid: number) {
    this.host = host;
    this.pid = pid;
    this.mm = new Mm(host, pid);
    this.exited = false;
    this.fds = [];
    this.scratch = new Word64();
  }

  // ---- file descriptors ----

  /**
   * Install a file at the lowest free fd, taking over the caller's reference; -EMFILE (and the
   * reference stays the caller's) when RLIMIT_NOFILE is reached.
   *
   * @remarks Models fs/file.c:get_unused_fd_flags() + fd_install()
   */
  installFd(file: File): number {
    let fd = this.fds.indexOf(null);
    if (fd < 0) fd = this.fds.length;
    if (fd >= this.host.nrOpen) return -EMFILE;
    this.fds[fd] = file;
    return fd;
  }

  /** The file at `fd` (borrowed: no reference taken), or null. */
  fget(fd: number): File | null {
    return Number.isInteger(fd) && fd >= 0 ? (this.fds[fd] ?? null) : null;
  }

  /** Open fd numbers, ascending. */
  openFds(): number[] {
    const out: number[] = [];
    this.fds.forEach((f, i) => {
      if (f !== null) out.push(i);
    });
    return out;
  }

  /** close(2): 0 or -EBADF. The file is released only when no fd and no mapping holds it. */
  close(fd: number): number {
    const file = this.fget(fd);
    if (file === null) return -EBADF;
    this.fds[fd] = null;
    while (this.fds.length > 0 && this.fds[this.fds.length - 1] === null) this.fds.pop();
    fput(file);
    return 0;
  }

  /**
   * Pass `fd` to `to` over a unix socket (SCM_RIGHTS): the receiver's new fd number, or
   * -EBADF / -EMFILE.
   */
  sendFd(to: Process, fd: number): number {
    const file = this.fget(fd);
    if (file === null) return -EBADF;
    getFile(file);
    const nfd = to.installFd(file);
    if (nfd < 0) fput(file);
    const t = this.host.trace;
    if (t.mask & TRACE_MM) traceEvent(t, 'mm.scm_rights', { pid: this.pid, to: to.pid, fd, newFd: nfd });
    return nfd;
  }

  // ---- address space ----

  /**
   * mmap(2) as the powerpc entry point does it: prot validated, offset page-aligned, fd resolved,
   * then `do_mmap` under `mmap_lock`. The mapped address, or −errno.
   *
   * @remarks Models arch/powerpc/kernel/syscalls.c:do_mmap2() + mm/mmap.c:ksys_mmap_pgoff()
   */
  mmap(addr: number, length: number, prot: number, flags: number, fd: number, offset: number): number {
    if (prot & ~(PROT_READ | PROT_WRITE | PROT_EXEC | PROT_SEM | PROT_SAO)) return -EINVAL;
    if (offset < 0 || offset % PAGE_SIZE !== 0) return -EINVAL;
    const pgoff = offset / PAGE_SIZE;
    let file: File | null = null;
    if (!(flags & MAP_ANONYMOUS)) {
      file = this.fget(fd);
      if (file === null) return -EBADF;
      if (flags & MAP_HUGETLB) return -EINVAL;
    } else if (flags & MAP_HUGETLB) {
      return -ENOMEM; // no huge pages reserved (vm.nr_hugepages = 0)
    }
    if (length < 0) return -ENOMEM;
    const mm = this.mm;
    mm.mmapLock.downWrite();
    let ret: number;
    try {
      ret = doMmap(mm, file, addr, length, prot, flags, pgoff);
    } finally {
      mm.mmapLock.upWrite();
    }
    if (ret >= 0 && flags & MAP_POPULATE && !(flags & MAP_NONBLOCK)) this.populate(ret, length);
    return ret;
  }

  /** `mm_populate`: fault in a new mapping (VM_IO / VM_PFNMAP VMAs are skipped, errors ignored). */
  private populate(start: number, len: number): void {
    const mm = this.mm;
    mm.mmapLock.downRead();
    try {
      for (let a = start; a < start + len; a += PAGE_SIZE) {
        const vma = mm.vmas.lookup(a);
        if (vma === null || vma.flags & (VM_IO | VM_PFNMAP)) continue;
        const write = (vma.flags & (VM_WRITE | VM_SHARED)) === VM_WRITE;
        handleMmFault(mm, vma, a, write ? FAULT_FLAG_WRITE : 0);
      }
    } finally {
      mm.mmapLock.upRead();
    }
  }

  /** munmap(2): 0 or -EINVAL (-ENOMEM when a split would exceed vm.max_map_count). */
  munmap(addr: number, length: number): number {
    const mm = this.mm;
    mm.mmapLock.downWrite();
    try {
      return doMunmap(mm, addr, length);
    } finally {
      mm.mmapLock.upWrite();
    }
  }

  /** mremap(2): the new address or −errno. */
  mremap(oldAddress: number, oldSize: number, newSize: number, flags: number, newAddress = 0): number {
    return doMremap(this.mm, oldAddress, oldSize, newSize, flags, newAddress);
  }

  /** mprotect(2): 0 or −errno. */
  mprotect(addr: number, len: number, prot: number): number {
    return doMprotect(this.mm, addr, len, prot);
  }

  /**
   * fork(2): a child with a copy of every VMA (except VM_DONTCOPY) and of the fd table, or
   * −ENOMEM. PTEs are copied only where a fault could not recreate them (private anonymous memory
   * — copied eagerly here instead of COW — and VM_PFNMAP / VM_MIXEDMAP VMAs); shared file and
   * shmem pages refault. When a private page cannot be copied (RAM frames exhausted), the VMA
   * being copied is still opened, the copy stops, and the half-built address space is torn down
   * with everything copied so far: no child remains and the parent is unchanged.
   *
   * @remarks Models kernel/fork.c:dup_mmap() (the `vm_ops->open` before the `retval` check, then
   * `goto out`) + mm/memory.c:copy_page_range(), and copy_process()'s `bad_fork_cleanup_mm`
   * (mmput → exit_mmap of the child's mm).
   */
  fork(): Process | number {
    const child = this.host.spawn();
    const mm = this.mm;
    const t = this.host.trace;
    if (t.mask & TRACE_MM) traceEvent(t, 'mm.fork', { pid: this.pid, child: child.pid });
    let rc = 0;
    mm.mmapLock.downWrite();
    try {
      for (const vma of mm.vmas.all()) {
        if (vma.flags & VM_DONTCOPY) continue;
        const nv = vmaAlloc(child.mm, vma.start, vma.end, vma.pgoff, vma.flags, vma.file);
        nv.ops = vma.ops;
        nv.privateData = vma.privateData;
        nv.anonVma = vma.anonVma !== 0 ? this.host.newAnonVma() : 0;
        if (nv.file !== null) getFile(nv.file);
        vmaLink(child.mm, nv);
        if (vma.anonVma !== 0 || vma.flags & (VM_PFNMAP | VM_MIXEDMAP)) rc = this.copyPageRange(vma, nv);
        nv.ops?.open?.(nv);
        if (rc < 0) break;
      }
    } finally {
      mm.mmapLock.upWrite();
    }
    if (rc < 0) {
      child.exit();
      return rc;
    }
    this.fds.forEach((f, i) => {
      if (f !== null) child.fds[i] = getFile(f);
    });
    return child;
  }

  /** 0, or −ENOMEM when a private page cannot be copied (the PTEs copied so far stay in `dst`). */
  private copyPageRange(src: Vma, dst: Vma): number {
    const mm = this.mm;
    const frames = this.host.frames;
    // A COW mapping write-protects the parent's PTEs: the parent's notifiers hear of it.
    const cow = (src.flags & (VM_SHARED | VM_MAYWRITE)) === VM_MAYWRITE;
    const range = cow ? new MmuNotifierRange(mm, src.start, src.end, MMU_NOTIFY_PROTECTION_PAGE) : null;
    if (range !== null) mm.invalidateRangeStart(range);
    const cpt = dst.mm.pgtable;
    const t = this.host.trace;
    const traced = (t.mask & TRACE_MM) !== 0;
    let rc = 0;
    mm.pgtable.scan(src.start / PAGE_SIZE, src.end / PAGE_SIZE, (vpn, pfn, flags) => {
      if (rc < 0) return;
      let to = pfn;
      if (flags & PTE_ANON) {
        to = frames.allocRam();
        if (to < 0) {
          rc = -ENOMEM;
          return;
        }
        frames.copyRam(to, pfn);
      }
      cpt.set(vpn, to, flags);
      if (traced)
        traceEvent(t, 'mm.copy_pte', { pid: dst.mm.pid, address: vpn * PAGE_SIZE, pfn: to, vma: dst.id });
    });
    if (range !== null) mm.invalidateRangeEnd(range);
    return rc;
  }

  /**
   * Process exit: the address space goes first (MMU notifiers released, every VMA unmapped and
   * closed), then the fd table, as `do_exit` orders `exit_mm` before `exit_files`.
   */
  exit(): void {
    if (this.exited) return;
    this.exited = true;
    const mm = this.mm;
    mm.mmapLock.downWrite();
    try {
      mm.notifierRelease();
      const vmas = mm.vmas.all();
      for (const v of vmas) vmaUnlink(mm, v);
      const ptes = unmapRegion(mm, 0, this.host.taskSize);
      for (const v of vmas) removeVma(v);
      mm.dead = true;
      const t = this.host.trace;
      if (t.mask & TRACE_MM) traceEvent(t, 'mm.exit', { pid: this.pid, ptes });
    } finally {
      mm.mmapLock.upWrite();
    }
    for (const fd of this.openFds()) this.close(fd);
    this.host.reap(this);
  }

  // ---- memory access ----

  /** A user load: 0 with the value in `out`, or SIGSEGV / SIGBUS. */
  load(addr: number, size: AccessSize, out: Word64, cpu = NO_CPU): number {
    return userLoad(this.mm, addr, size, cpu, out);
  }

  /** A user store: 0, or SIGSEGV / SIGBUS. */
  store(addr: number, size: AccessSize, hi: number, lo: number, cpu = NO_CPU): number {
    return userStore(this.mm, addr, size, hi, lo, cpu);
  }

  /** `copy_from_user`: 0 or -EFAULT. */
  copyFromUser(addr: number, dst: Uint8Array): number {
    return copyFromUser(this.mm, addr, dst, NO_CPU, this.scratch);
  }

  /** `copy_to_user`: 0 or -EFAULT. */
  copyToUser(addr: number, src: Uint8Array): number {
    return copyToUser(this.mm, addr, src, NO_CPU, this.scratch);
  }

  /** The pfn behind `addr`, faulted in (KVM's hva_to_pfn): pfn ≥ 0 or −errno. */
  hvaToPfn(addr: number, write: boolean): number {
    return hvaToPfn(this.mm, addr, write);
  }
}
