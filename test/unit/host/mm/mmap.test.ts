import { describe, expect, it } from 'vitest';
import {
  EACCES,
  EBADF,
  EEXIST,
  EINVAL,
  ENODEV,
  ENOMEM,
  EOPNOTSUPP,
  EPERM,
} from '../../../../src/host/errno.ts';
import {
  DEFAULT_MMAP_BASE,
  FMODE_READ,
  MAP_ANONYMOUS,
  MAP_FIXED,
  MAP_FIXED_NOREPLACE,
  MAP_HUGETLB,
  MAP_POPULATE,
  MAP_PRIVATE,
  MAP_SHARED,
  MAP_SHARED_VALIDATE,
  MAP_SYNC,
  MMU_NOTIFY_UNMAP,
  PROT_READ,
  PROT_WRITE,
  SIGSEGV,
  TASK_SIZE,
  VM_IO,
  VM_PFNMAP,
  VM_SHARED,
} from '../../../../src/host/mm/constants.ts';
import { DEV_BASE_PFN, deviceProcess, FakeDevice, layout, NotifierLog, P } from './helpers.ts';

const RW = PROT_READ | PROT_WRITE;
const ANON = MAP_PRIVATE | MAP_ANONYMOUS;

describe('mmap argument checks (exact errno, kernel order)', () => {
  it('rejects bad prot, unaligned offset, bad fd, zero length, bad type', () => {
    const { p, fd } = deviceProcess();
    expect(p.mmap(0, P, 0x40, ANON, -1, 0)).toBe(-EINVAL); // arch_validate_prot
    expect(p.mmap(0, P, RW, MAP_SHARED, fd, 0x1000)).toBe(-EINVAL); // offset not page-aligned
    expect(p.mmap(0, P, RW, MAP_SHARED, fd, -P)).toBe(-EINVAL);
    expect(p.mmap(0, P, RW, MAP_SHARED, 7, 0)).toBe(-EBADF);
    expect(p.mmap(0, 0, RW, MAP_SHARED, 7, 0)).toBe(-EBADF); // fget comes before the length check
    expect(p.mmap(0, 0, RW, MAP_SHARED, fd, 0)).toBe(-EINVAL);
    expect(p.mmap(0, 0, RW, ANON, -1, 0)).toBe(-EINVAL);
    expect(p.mmap(0, P, RW, MAP_ANONYMOUS, -1, 0)).toBe(-EINVAL); // neither shared nor private
    expect(p.mmap(0, P, RW, MAP_ANONYMOUS | 0x0f, -1, 0)).toBe(-EINVAL);
    expect(p.mmap(0, P, RW, 0, fd, 0)).toBe(-EINVAL);
    expect(p.mmap(0, P, RW, MAP_SHARED | MAP_HUGETLB, fd, 0)).toBe(-EINVAL);
    expect(p.mmap(0, P, RW, MAP_SHARED_VALIDATE | MAP_SYNC, fd, 0)).toBe(-EOPNOTSUPP);
    expect(p.mmap(0, P, RW, MAP_SHARED | MAP_SYNC, fd, 0)).toBeGreaterThan(0); // MAP_SHARED ignores it
    expect(p.mm.mapCount).toBe(1);
  });

  it('MAP_FIXED: unaligned → EINVAL, beyond TASK_SIZE → ENOMEM, below mmap_min_addr → EPERM', () => {
    const { p } = deviceProcess();
    expect(p.mmap(0x2000_0000 + 0x100, P, RW, ANON | MAP_FIXED, -1, 0)).toBe(-EINVAL);
    expect(p.mmap(TASK_SIZE - P, 2 * P, RW, ANON | MAP_FIXED, -1, 0)).toBe(-ENOMEM);
    expect(p.mmap(0, P, RW, ANON | MAP_FIXED, -1, 0)).toBe(-EPERM);
    expect(p.mmap(0x1_0000, P, RW, ANON | MAP_FIXED, -1, 0)).toBe(0x1_0000);
  });

  it('a file without f_op->mmap → ENODEV; a read-only file: shared PROT_WRITE → EACCES', () => {
    const { host, p } = deviceProcess();
    const nommap = p.installFd(host.newFile('nommap', { name: 'nommap' }, null));
    expect(p.mmap(0, P, RW, MAP_SHARED, nommap, 0)).toBe(-ENODEV);
    const dev = new FakeDevice();
    const ro = p.installFd(host.newFile('ro', dev.fops, null, FMODE_READ));
    expect(p.mmap(0, P, RW, MAP_SHARED, ro, 0)).toBe(-EACCES);
    expect(p.mmap(0, P, PROT_READ, MAP_SHARED, ro, 0)).toBeGreaterThan(0);
    // Without FMODE_WRITE the shared mapping loses VM_SHARED/VM_MAYWRITE: mprotect cannot add write.
    const vma = p.mm.vmas.all()[0]!;
    expect(vma.flags & VM_SHARED).toBe(0);
    expect(p.mprotect(vma.start, P, RW)).toBe(-EACCES);
  });

  it('a driver mmap error is returned and leaves no VMA', () => {
    const { p, dev, fd } = deviceProcess();
    dev.mmapError = -EINVAL;
    expect(p.mmap(0, P, RW, MAP_SHARED, fd, 0)).toBe(-EINVAL);
    expect(p.mm.mapCount).toBe(0);
    expect(p.fget(fd)!.count).toBe(1);
  });

  it('anonymous MAP_HUGETLB → ENOMEM (no huge pages reserved)', () => {
    const { p } = deviceProcess();
    expect(p.mmap(0, P, RW, ANON | MAP_HUGETLB, -1, 0)).toBe(-ENOMEM);
  });
});

describe('address choice', () => {
  it('is top-down from mmap_base, lengths rounded up to 64 KiB pages', () => {
    const { p } = deviceProcess();
    const a = p.mmap(0, 1, RW, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    expect(a).toBe(DEFAULT_MMAP_BASE - P);
    const b = p.mmap(0, 3 * P - 5, RW, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    expect(b).toBe(DEFAULT_MMAP_BASE - 4 * P);
    // Freed space is reused: the highest gap that fits.
    expect(p.munmap(a, P)).toBe(0);
    expect(p.mmap(0, P, RW, MAP_SHARED | MAP_ANONYMOUS, -1, 0)).toBe(a);
  });

  it('honours a free hint (rounded) and ignores a busy one', () => {
    const { p } = deviceProcess();
    expect(p.mmap(0x4000_0000, P, RW, ANON, -1, 0)).toBe(0x4000_0000);
    expect(p.mmap(0x4000_0000, P, RW, ANON, -1, 0)).toBe(DEFAULT_MMAP_BASE - P);
    expect(p.mmap(0x5000_0001, P, RW, ANON, -1, 0)).toBe(0x5000_0000); // round_hint_to_min rounds down
  });

  it('adjacent private anonymous mappings merge into one VMA; pfnmap ones never do', () => {
    const { p, fd } = deviceProcess();
    p.mmap(0, P, RW, ANON, -1, 0);
    p.mmap(0, P, RW, ANON, -1, 0);
    expect(p.mm.mapCount).toBe(1);
    expect(layout(p.mm)).toEqual([
      `${(DEFAULT_MMAP_BASE - 2 * P).toString(16)}-${DEFAULT_MMAP_BASE.toString(16)}:${(DEFAULT_MMAP_BASE - 2 * P) / P}`,
    ]);
    const x = p.mmap(0x2000_0000, P, RW, MAP_SHARED, fd, 0);
    const y = p.mmap(0x2000_0000 + P, P, RW, MAP_SHARED, fd, P);
    expect(y).toBe(x + P);
    expect(p.mm.mapCount).toBe(3);
    expect(p.mm.vmas.lookup(x)!.flags & (VM_IO | VM_PFNMAP)).toBe(VM_IO | VM_PFNMAP);
  });
});

describe('MAP_FIXED', () => {
  it('replaces what was there, zapping its PTEs under an UNMAP notifier', () => {
    const { p, fd, w } = deviceProcess();
    const n = NotifierLog.on(p.mm);
    const a = p.mmap(0x3000_0000, 4 * P, RW, MAP_SHARED, fd, 0);
    expect(p.load(a + P, 8, w)).toBe(0);
    expect(p.mm.pgtable.pfn((a + P) / P)).toBe(DEV_BASE_PFN + 1);
    expect(p.mmap(a + P, 2 * P, RW, ANON | MAP_FIXED, -1, 0)).toBe(a + P);
    expect(n.log).toEqual([
      `start 1:${(a + P).toString(16)}-${(a + 3 * P).toString(16)}:${MMU_NOTIFY_UNMAP}`,
      `end 1:${(a + P).toString(16)}-${(a + 3 * P).toString(16)}:${MMU_NOTIFY_UNMAP}`,
    ]);
    expect(p.mm.pgtable.pfn((a + P) / P)).toBe(-1);
    expect(layout(p.mm)).toEqual([
      `30000000-30010000:0`,
      `30010000-30030000:${(a + P) / P}`,
      `30030000-30040000:3`,
    ]);
    // The anonymous page reads zero; the device tail still maps device page 3.
    expect(p.load(a + P, 4, w)).toBe(0);
    expect(w.lo).toBe(0);
    expect(p.load(a + 3 * P + 8, 4, w)).toBe(0);
    expect(w.lo).toBe(3 * P + 8);
  });

  it('MAP_FIXED_NOREPLACE over a mapping → EEXIST, nothing changes', () => {
    const { p } = deviceProcess();
    const a = p.mmap(0x3000_0000, 2 * P, RW, ANON, -1, 0);
    expect(p.mmap(a + P, P, RW, ANON | MAP_FIXED_NOREPLACE, -1, 0)).toBe(-EEXIST);
    expect(p.mm.mapCount).toBe(1);
    expect(p.mmap(a + 2 * P, P, PROT_READ, ANON | MAP_FIXED_NOREPLACE, -1, 0)).toBe(a + 2 * P);
  });
});

describe('vm.max_map_count', () => {
  it('mmap fails with ENOMEM once map_count exceeds the limit (the kernel checks >, not >=)', () => {
    const { p, fd } = deviceProcess({ maxMapCount: 3 });
    for (let i = 0; i < 4; i++) expect(p.mmap(0, P, RW, MAP_SHARED, fd, 0)).toBeGreaterThan(0);
    expect(p.mm.mapCount).toBe(4);
    expect(p.mmap(0, P, RW, MAP_SHARED, fd, 0)).toBe(-ENOMEM);
  });

  it('a munmap that splits one VMA in three → ENOMEM at the limit; trimming an end still works', () => {
    const { p } = deviceProcess({ maxMapCount: 1 });
    const a = p.mmap(0x3000_0000, 4 * P, RW, ANON, -1, 0);
    expect(p.munmap(a + P, P)).toBe(-ENOMEM);
    expect(p.munmap(a, P)).toBe(0); // the split goes transiently above the limit
    expect(layout(p.mm)).toEqual([`30010000-30040000:${(a + P) / P}`]);
  });

  it('an mprotect split beyond the limit → ENOMEM', () => {
    const { p } = deviceProcess({ maxMapCount: 1 });
    const a = p.mmap(0x3000_0000, 4 * P, RW, ANON, -1, 0);
    expect(p.mprotect(a + P, P, PROT_READ)).toBe(-ENOMEM);
    expect(p.mm.mapCount).toBe(1);
  });
});

describe('MAP_POPULATE and protection', () => {
  it('populates anonymous memory, and PROT_READ mappings fault with SIGSEGV on store', () => {
    const { p, frames } = deviceProcess();
    const before = frames.allocated;
    const a = p.mmap(0, 3 * P, PROT_READ, ANON | MAP_POPULATE, -1, 0);
    expect(frames.allocated - before).toBe(3);
    expect(p.mm.stats.faults).toBe(3);
    expect(p.store(a, 4, 0, 1)).toBe(SIGSEGV);
    expect(p.mm.stats.sigsegv).toBe(1);
  });
});
