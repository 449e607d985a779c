/**
 * Accesses through a process's page tables: user loads and stores (a miss faults; the result is
 * the value or the signal raised), the kernel's `copy_from_user` / `copy_to_user` (-EFAULT), and
 * the pfn lookup KVM does for a host virtual address.
 */

import type { AccessSize, Word64 } from '../../hw/mmio.ts';
import { EFAULT, ENOMEM } from '../errno.ts';
import {
  FAULT_FLAG_USER,
  FAULT_FLAG_WRITE,
  PAGE_SCALE,
  PAGE_SIZE,
  SIGBUS,
  SIGSEGV,
  VM_ACCESS_FLAGS,
  VM_FAULT_OOM,
  VM_FAULT_SIGBUS,
  VM_FAULT_SIGSEGV,
  VM_WRITE,
} from './constants.ts';
import { handleMmFault } from './fault.ts';
import type { Mm } from './mm.ts';
import {
  PTE_ACCESSED,
  PTE_DIRTY,
  PTE_PRESENT,
  PTE_PROTNONE,
  PTE_WRITE,
  TLB_FLAGS,
  TLB_PFN,
  TLB_VPN,
} from './page-table.ts';

/**
 * The calling process's memory, as `get_user` / `copy_from_user` / `copy_to_user` see it.
 * Multi-byte values are big-endian (the model's user memory byte order).
 */
export interface UserMemory {
  /** `len` bytes at user address `addr`, or −EFAULT. */
  copyFromUser(addr: number, len: number): Uint8Array | number;
  /**
   * `copy_from_user` into the kernel's own buffer `dst` (what a hot ioctl path reuses instead of
   * new bytes per call): 0 or −EFAULT.
   */
  copyFromUserTo(dst: Uint8Array, addr: number): number;
  /** 0 or −EFAULT (nothing is written on failure). */
  copyToUser(addr: number, bytes: Uint8Array): number;
}

/** Bytes of the largest struct {@link structView} copies (KVM's `struct kvm_enable_cap`: 104). */
const STRUCT_MAX = 128;
const structBytes = new Uint8Array(STRUCT_MAX);
const structData = new DataView(structBytes.buffer);

/**
 * A view of user bytes for decoding them at once: a copy in one reused buffer. A view of `b`
 * itself would need `b.buffer`, which for a small array makes V8 allocate an ArrayBuffer (and a
 * malloc'd store) per call: the ioctl paths run a million times at the scale of a full VM.
 */
export function structView(b: Uint8Array): DataView {
  if (b.length > STRUCT_MAX) return new DataView(b.buffer, b.byteOffset, b.byteLength);
  structBytes.set(b);
  return structData;
}

/** The big-endian u64 at `off` of user bytes `b`. */
export function decodeU64(b: Uint8Array, off = 0): bigint {
  return structView(b).getBigUint64(off);
}

/** The OOM killer's signal: what a VM_FAULT_OOM on a user access amounts to. */
export const SIGKILL = 9;

/**
 * Find and resolve a fault (`do_page_fault` → `handle_mm_fault`) under `mmap_lock` for read.
 * Returns 0, or the signal the access raises.
 */
function pageFault(mm: Mm, addr: number, write: boolean): number {
  mm.mmapLock.downRead();
  try {
    const vma = mm.vmas.find(addr);
    if (vma === null || vma.start > addr || !(write ? vma.flags & VM_WRITE : vma.flags & VM_ACCESS_FLAGS)) {
      mm.stats.sigsegv++;
      return SIGSEGV;
    }
    const ret = handleMmFault(mm, vma, addr, (write ? FAULT_FLAG_WRITE : 0) | FAULT_FLAG_USER);
    if (ret & VM_FAULT_SIGBUS) {
      mm.stats.sigbus++;
      return SIGBUS;
    }
    if (ret & VM_FAULT_SIGSEGV) {
      mm.stats.sigsegv++;
      return SIGSEGV;
    }
    if (ret & VM_FAULT_OOM) return SIGKILL;
    return 0;
  } finally {
    mm.mmapLock.upRead();
  }
}

/**
 * Translate a user address for an access, faulting on a miss. Returns the pfn (≥ 0) or minus the
 * signal raised. Marks the PTE accessed (and dirty for a write).
 */
export function userTranslate(mm: Mm, addr: number, write: boolean): number {
  if (!(addr >= 0 && addr < mm.host.taskSize)) {
    mm.stats.sigsegv++;
    return -SIGSEGV;
  }
  const vpn = Math.floor(addr * PAGE_SCALE);
  const mark = PTE_ACCESSED | (write ? PTE_DIRTY : 0);
  const need = PTE_PRESENT | mark | (write ? PTE_WRITE : 0);
  // The last translation, when its PTE allows the access and is already marked as this one
  // would mark it (what the walk below would find and leave).
  const tlb = mm.pgtable.tlb;
  if (tlb[TLB_VPN] === vpn) {
    const f = tlb[TLB_FLAGS]!;
    if ((f & need) === need && !(f & PTE_PROTNONE)) return tlb[TLB_PFN]!;
  }
  const pt = mm.pgtable;
  for (let attempt = 0; attempt < 2; attempt++) {
    const s = pt.slot(vpn);
    if (s >= 0) {
      const f = pt.slotFlags(s);
      if (f & PTE_PRESENT && !(f & PTE_PROTNONE) && (!write || f & PTE_WRITE)) {
        pt.markSlot(s, mark);
        tlb[TLB_VPN] = vpn;
        const pfn = pt.slotPfn(s);
        tlb[TLB_PFN] = pfn;
        tlb[TLB_FLAGS] = f | mark;
        return pfn;
      }
    }
    if (attempt === 1) break;
    const sig = pageFault(mm, addr, write);
    if (sig) return -sig;
  }
  // The real process would refault forever: the fault handler claimed success without a PTE.
  throw new Error(`fault at 0x${addr.toString(16)} returned success but left no usable PTE`);
}

/**
 * A user load of `size` bytes (big-endian value in `out`). Returns 0, or SIGSEGV / SIGBUS (the
 * access had no effect then). An access crossing a page is done byte by byte.
 */
export function userLoad(mm: Mm, addr: number, size: AccessSize, cpu: number, out: Word64): number {
  const vpn = Math.floor(addr * PAGE_SCALE);
  const off = addr - vpn * PAGE_SIZE;
  const frames = mm.host.frames;
  if (off + size <= PAGE_SIZE) {
    const pfn = userTranslate(mm, addr, false);
    if (pfn < 0) return -pfn;
    frames.load(pfn, off, size, cpu, out);
    return 0;
  }
  let hi = 0;
  let lo = 0;
  for (let k = 0; k < size; k++) {
    const a = addr + k;
    const pfn = userTranslate(mm, a, false);
    if (pfn < 0) return -pfn;
    const p = Math.floor(a * PAGE_SCALE);
    frames.load(pfn, a - p * PAGE_SIZE, 1, cpu, out);
    hi = ((hi << 8) | (lo >>> 24)) >>> 0;
    lo = ((lo << 8) | out.lo) >>> 0;
  }
  out.set(hi, lo);
  return 0;
}

/** A user store of `size` bytes (`hi`/`lo` as in MmioDevice). Returns 0, SIGSEGV or SIGBUS. */
export function userStore(
  mm: Mm,
  addr: number,
  size: AccessSize,
  hi: number,
  lo: number,
  cpu: number,
): number {
  const vpn = Math.floor(addr * PAGE_SCALE);
  const off = addr - vpn * PAGE_SIZE;
  const frames = mm.host.frames;
  if (off + size <= PAGE_SIZE) {
    const pfn = userTranslate(mm, addr, true);
    if (pfn < 0) return -pfn;
    frames.store(pfn, off, size, hi, lo, cpu);
    return 0;
  }
  // Check every page first so that a faulting store writes nothing.
  for (let k = 0; k < size; k += size - 1) {
    const pfn = userTranslate(mm, addr + k, true);
    if (pfn < 0) return -pfn;
  }
  for (let k = 0; k < size; k++) {
    const shift = 8 * (size - 1 - k);
    const byte = shift >= 32 ? (hi >>> (shift - 32)) & 0xff : (lo >>> shift) & 0xff;
    const a = addr + k;
    const pfn = userTranslate(mm, a, true);
    const p = Math.floor(a * PAGE_SCALE);
    frames.store(pfn, a - p * PAGE_SIZE, 1, 0, byte, cpu);
  }
  return 0;
}

/** Bytes up to which a copy from or to RAM goes byte by byte. */
const SMALL_COPY = 128;

/** The access loop of copies: one page chunk at a time. */
function copyUser(mm: Mm, addr: number, buf: Uint8Array, write: boolean, cpu: number, w: Word64): number {
  const frames = mm.host.frames;
  let done = 0;
  while (done < buf.length) {
    const a = addr + done;
    const pfn = userTranslate(mm, a, write);
    if (pfn < 0) return -EFAULT;
    const vpn = Math.floor(a * PAGE_SCALE);
    const off = a - vpn * PAGE_SIZE;
    const n = Math.min(PAGE_SIZE - off, buf.length - done);
    if (frames.isRam(pfn)) {
      // RAM has no access side effects: the bytes move straight to or from the frame.
      const f = frames.ramBytes(pfn, write);
      if (f === null) buf.fill(0, done, done + n);
      else if (n <= SMALL_COPY) {
        // An ioctl struct's few bytes: a loop, where a typed-array copy would make two views;
        // four bytes a frame access, the byte order kept (a big-endian word from the bytes in
        // order, and back). Here, not in a function of its own: one that is not inlined cost
        // each copy a fifth more.
        let k = 0;
        if (write) {
          for (; k + 4 <= n; k += 4) {
            const j = done + k;
            f.setUint32(
              off + k,
              ((buf[j]! << 24) | (buf[j + 1]! << 16) | (buf[j + 2]! << 8) | buf[j + 3]!) >>> 0,
            );
          }
          for (; k < n; k++) f.setUint8(off + k, buf[done + k]!);
        } else {
          for (; k + 4 <= n; k += 4) {
            const x = f.getUint32(off + k);
            const j = done + k;
            buf[j] = x >>> 24;
            buf[j + 1] = x >>> 16;
            buf[j + 2] = x >>> 8;
            buf[j + 3] = x;
          }
          for (; k < n; k++) buf[done + k] = f.getUint8(off + k);
        }
      } else {
        const page = new Uint8Array(f.buffer, f.byteOffset + off, n);
        if (write) page.set(buf.subarray(done, done + n));
        else buf.set(page, done);
      }
    } else {
      // Anything else (an MMIO page) byte by byte, as the copy loop accesses it.
      for (let k = 0; k < n; k++) {
        if (write) frames.store(pfn, off + k, 1, 0, buf[done + k]!, cpu);
        else {
          frames.load(pfn, off + k, 1, cpu, w);
          buf[done + k] = w.lo;
        }
      }
    }
    done += n;
  }
  return 0;
}

/**
 * `copy_from_user`: fill `dst` from user memory at `addr`. 0 or -EFAULT (no mapping, no
 * permission, or the fault handler's SIGBUS); bytes before the failing page are copied.
 */
export function copyFromUser(mm: Mm, addr: number, dst: Uint8Array, cpu: number, scratch: Word64): number {
  return copyUser(mm, addr, dst, false, cpu, scratch);
}

/** `copy_to_user`: write `src` to user memory at `addr`. 0 or -EFAULT. */
export function copyToUser(mm: Mm, addr: number, src: Uint8Array, cpu: number, scratch: Word64): number {
  return copyUser(mm, addr, src, true, cpu, scratch);
}

/**
 * The pfn behind a host virtual address, faulting it in: what KVM needs to fill a
 * partition-scoped entry from a memslot. pfn ≥ 0, or -EFAULT (no VMA, no permission, SIGBUS) /
 * -ENOMEM.
 *
 * @remarks Models virt/kvm/kvm_main.c:hva_to_pfn() (GUP, or fixup_user_fault + follow_pfn for
 * VM_IO | VM_PFNMAP VMAs)
 */
export function hvaToPfn(mm: Mm, addr: number, write: boolean): number {
  const r = userTranslate(mm, addr, write);
  if (r >= 0) return r;
  return r === -SIGKILL ? -ENOMEM : -EFAULT;
}
