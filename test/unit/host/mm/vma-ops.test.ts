import { describe, expect, it } from 'vitest';
import { EFAULT, EINVAL, ENOMEM } from '../../../../src/host/errno.ts';
import {
  MAP_FIXED,
  MAP_SHARED,
  MMU_NOTIFY_PROTECTION_VMA,
  MMU_NOTIFY_UNMAP,
  MREMAP_FIXED,
  MREMAP_MAYMOVE,
  PROT_NONE,
  PROT_READ,
  SIGSEGV,
  VM_READ,
  VM_WRITE,
} from '../../../../src/host/mm/constants.ts';
import { Word64 } from '../../../../src/hw/mmio.ts';
import { ANON, DEV_BASE_PFN, deviceProcess, layout, NotifierLog, P, RW } from './helpers.ts';

const A = 0x3000_0000;
const h = (n: number) => n.toString(16);

describe('munmap', () => {
  it('EINVAL for unaligned address and zero length; unmapping nothing succeeds', () => {
    const { p } = deviceProcess();
    expect(p.munmap(A + 1, P)).toBe(-EINVAL);
    expect(p.munmap(A, 0)).toBe(-EINVAL);
    expect(p.munmap(A, P)).toBe(0);
  });

  it('a hole in the middle splits the VMA, pgoffs follow, the file gains a reference', () => {
    const { p, fd, w } = deviceProcess();
    const file = p.fget(fd)!;
    p.mmap(A, 4 * P, RW, MAP_SHARED, fd, 8 * P);
    expect(file.count).toBe(2);
    expect(p.munmap(A + P, P + 1)).toBe(0); // rounds up to 2 pages
    expect(layout(p.mm)).toEqual([`${h(A)}-${h(A + P)}:8`, `${h(A + 3 * P)}-${h(A + 4 * P)}:11`]);
    expect(file.count).toBe(3);
    expect(file.mapping.iMmap.size).toBe(2);
    expect(p.load(A + P, 4, w)).toBe(SIGSEGV);
    expect(p.load(A + 3 * P, 4, w)).toBe(0);
    expect(w.lo).toBe(11 * P);
  });

  it('a range spanning several VMAs and holes unmaps them all under one notifier bracket', () => {
    const { p } = deviceProcess();
    const n = NotifierLog.on(p.mm);
    p.mmap(A, 2 * P, RW, ANON, -1, 0);
    p.mmap(A + 3 * P, 2 * P, PROT_READ, ANON, -1, 0);
    p.mmap(A + 6 * P, P, RW, ANON, -1, 0);
    expect(p.mm.mapCount).toBe(3);
    expect(p.munmap(A + P, 5 * P)).toBe(0);
    expect(layout(p.mm)).toEqual([
      `${h(A)}-${h(A + P)}:${A / P}`,
      `${h(A + 6 * P)}-${h(A + 7 * P)}:${A / P + 6}`,
    ]);
    expect(n.log).toEqual([
      `start 1:${h(A + P)}-${h(A + 6 * P)}:${MMU_NOTIFY_UNMAP}`,
      `end 1:${h(A + P)}-${h(A + 6 * P)}:${MMU_NOTIFY_UNMAP}`,
    ]);
  });

  it('frees the anonymous frames of the unmapped pages only', () => {
    const { p, frames } = deviceProcess();
    p.mmap(A, 3 * P, RW, ANON, -1, 0);
    for (let i = 0; i < 3; i++) expect(p.store(A + i * P, 8, i, 0xdead)).toBe(0);
    expect(frames.allocated).toBe(3);
    p.munmap(A + P, P);
    expect(frames.allocated).toBe(2);
    const w = new Word64();
    expect(p.load(A + 2 * P, 8, w)).toBe(0);
    expect([w.hi, w.lo]).toEqual([2, 0xdead]);
  });
});

describe('mprotect', () => {
  it('splits at both ends, changes PTE protection under a PROTECTION_VMA notifier, merges back', () => {
    const { p } = deviceProcess();
    const n = NotifierLog.on(p.mm);
    p.mmap(A, 4 * P, RW, ANON, -1, 0);
    expect(p.store(A + P, 4, 0, 7)).toBe(0);
    expect(p.mprotect(A + P, 2 * P, PROT_READ)).toBe(0);
    expect(layout(p.mm)).toEqual([
      `${h(A)}-${h(A + P)}:${A / P}`,
      `${h(A + P)}-${h(A + 3 * P)}:${A / P + 1}`,
      `${h(A + 3 * P)}-${h(A + 4 * P)}:${A / P + 3}`,
    ]);
    expect(p.mm.vmas.lookup(A + P)!.flags & (VM_READ | VM_WRITE)).toBe(VM_READ);
    expect(n.log).toEqual([
      `start 1:${h(A + P)}-${h(A + 3 * P)}:${MMU_NOTIFY_PROTECTION_VMA}`,
      `end 1:${h(A + P)}-${h(A + 3 * P)}:${MMU_NOTIFY_PROTECTION_VMA}`,
    ]);
    expect(p.store(A + P, 4, 0, 8)).toBe(SIGSEGV);
    const w = new Word64();
    expect(p.load(A + P, 4, w)).toBe(0);
    expect(w.lo).toBe(7);
    // Restoring RW merges the three pieces again; the data is still there.
    expect(p.mprotect(A + P, 2 * P, RW)).toBe(0);
    expect(layout(p.mm)).toEqual([`${h(A)}-${h(A + 4 * P)}:${A / P}`]);
    expect(p.store(A + P, 4, 0, 9)).toBe(0);
  });

  it('PROT_NONE keeps the page but every access is SIGSEGV', () => {
    const { p } = deviceProcess();
    p.mmap(A, P, RW, ANON, -1, 0);
    p.store(A, 4, 0, 5);
    expect(p.mprotect(A, P, PROT_NONE)).toBe(0);
    const w = new Word64();
    expect(p.load(A, 4, w)).toBe(SIGSEGV);
    expect(p.mprotect(A, P, PROT_READ)).toBe(0);
    expect(p.load(A, 4, w)).toBe(0);
    expect(w.lo).toBe(5);
  });

  it('EINVAL unaligned / bad prot, 0 for zero length, ENOMEM over a hole after changing what precedes it', () => {
    const { p } = deviceProcess();
    expect(p.mprotect(A + 1, P, PROT_READ)).toBe(-EINVAL);
    expect(p.mprotect(A, P, 0x100)).toBe(-EINVAL);
    expect(p.mprotect(A, 0, PROT_READ)).toBe(0);
    expect(p.mprotect(A, P, PROT_READ)).toBe(-ENOMEM);
    p.mmap(A, P, RW, ANON, -1, 0);
    p.mmap(A + 2 * P, P, RW, ANON, -1, 0);
    expect(p.mprotect(A, 3 * P, PROT_READ)).toBe(-ENOMEM);
    expect(p.mm.vmas.lookup(A)!.flags & VM_WRITE).toBe(0);
    expect(p.mm.vmas.lookup(A + 2 * P)!.flags & VM_WRITE).toBe(VM_WRITE);
  });
});

describe('mremap', () => {
  it('flag and argument checks', () => {
    const { p } = deviceProcess();
    p.mmap(A, 2 * P, RW, ANON, -1, 0);
    expect(p.mremap(A, P, 2 * P, 4)).toBe(-EINVAL);
    expect(p.mremap(A, P, 2 * P, MREMAP_FIXED, A + 8 * P)).toBe(-EINVAL);
    expect(p.mremap(A + 1, P, 2 * P, 0)).toBe(-EINVAL);
    expect(p.mremap(A, P, 0, 0)).toBe(-EINVAL);
    expect(p.mremap(A + 4 * P, P, 2 * P, MREMAP_MAYMOVE)).toBe(-EFAULT); // nothing mapped
    expect(p.mremap(A, 3 * P, 4 * P, MREMAP_MAYMOVE)).toBe(-EFAULT); // crosses the VMA end
    expect(p.mremap(A, P, 2 * P, MREMAP_MAYMOVE | MREMAP_FIXED, A + P + 1)).toBe(-EINVAL);
    expect(p.mremap(A, 2 * P, 2 * P, MREMAP_MAYMOVE | MREMAP_FIXED, A + P)).toBe(-EINVAL); // overlap
  });

  it('shrinks by unmapping the tail, grows in place when the space is free', () => {
    const { p } = deviceProcess();
    p.mmap(A, 4 * P, RW, ANON, -1, 0);
    expect(p.mremap(A, 4 * P, 2 * P, 0)).toBe(A);
    expect(layout(p.mm)).toEqual([`${h(A)}-${h(A + 2 * P)}:${A / P}`]);
    expect(p.mremap(A, 2 * P, 3 * P, 0)).toBe(A);
    expect(layout(p.mm)).toEqual([`${h(A)}-${h(A + 3 * P)}:${A / P}`]);
    p.mmap(A + 3 * P, P, PROT_READ, ANON, -1, 0);
    expect(p.mremap(A, 3 * P, 4 * P, 0)).toBe(-ENOMEM); // blocked, may not move
  });

  it('a move keeps the pages (anonymous data, pfnmap PTEs) and notifies the old range', () => {
    const { p, fd } = deviceProcess();
    const n = NotifierLog.on(p.mm);
    p.mmap(A, 2 * P, RW, ANON, -1, 0);
    p.store(A + P, 8, 0x1234, 0x5678);
    const B = 0x5000_0000;
    expect(p.mremap(A, 2 * P, 2 * P, MREMAP_MAYMOVE | MREMAP_FIXED, B)).toBe(B);
    expect(p.mm.vmas.lookup(A)).toBeNull();
    const w = new Word64();
    expect(p.load(B + P, 8, w)).toBe(0);
    expect([w.hi, w.lo]).toEqual([0x1234, 0x5678]);
    expect(p.mm.stats.anonFaults).toBe(1); // no refault after the move
    // (mremap_to's unmap of the empty target finds no VMA and notifies nothing.)
    expect(n.log).toEqual([
      `start 1:${h(A)}-${h(A + 2 * P)}:${MMU_NOTIFY_UNMAP}`, // move_page_tables
      `end 1:${h(A)}-${h(A + 2 * P)}:${MMU_NOTIFY_UNMAP}`,
      `start 1:${h(A)}-${h(A + 2 * P)}:${MMU_NOTIFY_UNMAP}`, // do_munmap of the old range
      `end 1:${h(A)}-${h(A + 2 * P)}:${MMU_NOTIFY_UNMAP}`,
    ]);
    // A pfnmap VMA moves with its PTEs and its pgoff, but may not grow.
    const d = p.mmap(A, 2 * P, RW, MAP_SHARED, fd, 4 * P);
    expect(p.load(d + P, 4, w)).toBe(0);
    expect(p.mremap(d, 2 * P, 3 * P, MREMAP_MAYMOVE)).toBe(-EFAULT);
    const e = p.mremap(d, 2 * P, 2 * P, MREMAP_MAYMOVE | MREMAP_FIXED, 0x6000_0000);
    expect(e).toBe(0x6000_0000);
    expect(p.mm.pgtable.pfn(e / P + 1)).toBe(DEV_BASE_PFN + 5);
    expect(p.mm.vmas.lookup(e)!.pgoff).toBe(4);
    expect(p.fget(fd)!.mapping.iMmap.size).toBe(1);
  });

  it('MREMAP_MAYMOVE moves a blocked growing mapping top-down; a partial move splits the source', () => {
    const { p } = deviceProcess();
    p.mmap(A, 3 * P, RW, ANON, -1, 0);
    p.mmap(A + 3 * P, P, PROT_READ, ANON, -1, 0);
    p.store(A + P, 4, 0, 42);
    const to = p.mremap(A + P, P, 4 * P, MREMAP_MAYMOVE);
    expect(to).toBeGreaterThan(A + 4 * P);
    expect(layout(p.mm)).toEqual([
      `${h(A)}-${h(A + P)}:${A / P}`,
      `${h(A + 2 * P)}-${h(A + 3 * P)}:${A / P + 2}`,
      `${h(A + 3 * P)}-${h(A + 4 * P)}:${A / P + 3}`,
      `${h(to)}-${h(to + 4 * P)}:${A / P + 1}`,
    ]);
    const w = new Word64();
    expect(p.load(to, 4, w)).toBe(0);
    expect(w.lo).toBe(42);
  });

  it('fixed move over an existing mapping replaces it', () => {
    const { p } = deviceProcess();
    p.mmap(A, P, RW, ANON, -1, 0);
    p.mmap(A + 4 * P, 2 * P, PROT_READ, ANON | MAP_FIXED, -1, 0);
    expect(p.mremap(A, P, P, MREMAP_MAYMOVE | MREMAP_FIXED, A + 4 * P)).toBe(A + 4 * P);
    // Never faulted (no anon_vma): the moved VMA takes its new address as pgoff.
    expect(layout(p.mm)).toEqual([
      `${h(A + 4 * P)}-${h(A + 5 * P)}:${A / P + 4}`,
      `${h(A + 5 * P)}-${h(A + 6 * P)}:${A / P + 5}`,
    ]);
  });
});

describe('the last-translation cache of user copies', () => {
  it('the next copy after munmap, mprotect or PROT_NONE of the cached page sees the change', () => {
    const { p } = deviceProcess();
    p.mmap(A, 2 * P, RW, ANON, -1, 0);
    const b = Uint8Array.of(1, 2, 3, 4, 5, 6, 7, 8);
    const r = new Uint8Array(8);
    expect(p.copyToUser(A + 8, b)).toBe(0);
    expect(p.copyFromUser(A + 8, r)).toBe(0);
    expect([...r]).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
    // Read-only: a copy in reads, a copy out faults.
    expect(p.mprotect(A, P, PROT_READ)).toBe(0);
    expect(p.copyToUser(A + 8, b)).toBe(-EFAULT);
    expect(p.copyFromUser(A + 8, r)).toBe(0);
    expect(p.mprotect(A, P, PROT_NONE)).toBe(0);
    expect(p.copyFromUser(A + 8, r)).toBe(-EFAULT);
    expect(p.mprotect(A, P, RW)).toBe(0);
    expect(p.copyToUser(A + P, b)).toBe(0);
    expect(p.munmap(A + P, P)).toBe(0);
    expect(p.copyFromUser(A + P, r)).toBe(-EFAULT);
    expect(p.copyToUser(A + P, b)).toBe(-EFAULT);
    // A fresh anonymous page mapped there again reads zeros, not the old frame's bytes.
    expect(p.mmap(A + P, P, RW, ANON | MAP_FIXED, -1, 0)).toBe(A + P);
    expect(p.copyFromUser(A + P, r)).toBe(0);
    expect([...r]).toEqual([0, 0, 0, 0, 0, 0, 0, 0]);
  });
});

describe('small user copies', () => {
  it('move every length from 1 to 20 bytes at every offset mod 4 exactly, in byte order, both ways', () => {
    const { p } = deviceProcess();
    p.mmap(A, P, RW, ANON, -1, 0);
    const w = new Word64();
    for (let len = 1; len <= 20; len++) {
      for (let at = 0; at < 4; at++) {
        const addr = A + 0x100 * len + 0x20 * at + 4 + at;
        const b = Uint8Array.from({ length: len }, (_, k) => (0x80 + 17 * k + len) & 0xff);
        expect(p.copyToUser(addr, b)).toBe(0);
        // Byte order as the process sees it: byte k at addr + k, nothing written past the end.
        for (let k = 0; k <= len; k++) {
          expect(p.load(addr + k, 1, w)).toBe(0);
          expect(w.lo, `len ${len} at ${at} byte ${k}`).toBe(k < len ? b[k] : 0);
        }
        const r = new Uint8Array(len + 2).fill(0x5a);
        expect(p.copyFromUser(addr - 1, r)).toBe(0);
        expect([...r], `len ${len} at ${at}`).toEqual([0, ...b, 0]);
      }
    }
  });
});
