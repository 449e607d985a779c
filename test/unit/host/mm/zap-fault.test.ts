import { assert, describe, expect, it } from 'vitest';
import {
  MAP_ANONYMOUS,
  MAP_PRIVATE,
  MAP_SHARED,
  MMU_NOTIFY_CLEAR,
  PROT_READ,
  SIGBUS,
  SIGSEGV,
  VM_FAULT_SIGBUS,
} from '../../../../src/host/mm/constants.ts';
import { vmfInsertPfn } from '../../../../src/host/mm/fault.ts';
import { PTE_PRESENT, PTE_SPECIAL, PTE_WRITE } from '../../../../src/host/mm/page-table.ts';
import { unmapMappingPages, unmapMappingRange, zapVmaPtes } from '../../../../src/host/mm/zap.ts';
import { Word64 } from '../../../../src/hw/mmio.ts';
import { DEV_BASE_PFN, deviceProcess, FakeDevice, makeHost, NotifierLog, P, RW } from './helpers.ts';

const h = (n: number) => n.toString(16);

describe('faults', () => {
  it('first access faults and inserts the pfn; the second does not fault', () => {
    const { p, dev, pdev, fd, w } = deviceProcess();
    const a = p.mmap(0, 8 * P, RW, MAP_SHARED, fd, 4 * P);
    expect(p.load(a + 2 * P + 0x800, 8, w)).toBe(0);
    expect(w.lo).toBe(6 * P + 0x800); // file page 6 → device page 6
    expect(p.mm.stats.faults).toBe(1);
    expect(p.mm.stats.pfnInserts).toBe(1);
    expect(p.mm.pgtable.flags((a + 2 * P) / P)).toBe(
      PTE_PRESENT | PTE_WRITE | PTE_SPECIAL | 0x10 /* accessed */,
    );
    expect(p.load(a + 2 * P + 0x10, 4, w)).toBe(0);
    expect(p.store(a + 2 * P + 0xc00, 8, 0, 1)).toBe(0);
    expect(p.mm.stats.faults).toBe(1);
    expect(dev.faults).toEqual(['1:6']);
    expect(pdev.stores).toEqual([`${h(6 * P + 0xc00)}/8=0:1`]);
  });

  it('SIGBUS from the handler reaches the access, and is retried (no PTE was installed)', () => {
    const { p, dev, fd, w } = deviceProcess();
    dev.sigbusFrom = 3;
    const a = p.mmap(0, 4 * P, RW, MAP_SHARED, fd, 0);
    expect(p.load(a + 3 * P, 8, w)).toBe(SIGBUS);
    expect(p.store(a + 3 * P, 8, 0, 0)).toBe(SIGBUS);
    expect(p.mm.stats.faults).toBe(2);
    expect(p.mm.stats.sigbus).toBe(2);
    expect(p.load(a + 2 * P, 8, w)).toBe(0);
    // copy_from_user over a SIGBUS page is -EFAULT.
    expect(p.copyFromUser(a + 3 * P, new Uint8Array(4))).toBe(-14);
  });

  it('SIGSEGV without a VMA, and for a store to a read-only mapping', () => {
    const { p, fd, w } = deviceProcess();
    expect(p.load(0x1234_0000, 4, w)).toBe(SIGSEGV);
    const a = p.mmap(0, P, PROT_READ, MAP_SHARED, fd, 0);
    expect(p.load(a, 4, w)).toBe(0);
    expect(p.store(a, 4, 0, 1)).toBe(SIGSEGV);
    expect(p.mm.stats.sigsegv).toBe(2);
  });

  it('the handler sees the VMA and the file pgoff: a VMA at pgoff k resolves pgoff-relative if asked', () => {
    const { p, dev, fd, w } = deviceProcess();
    dev.relative = true; // like the merged ESB handler: page = vmf.pgoff - vma.pgoff
    const a = p.mmap(0, 8 * P, RW, MAP_SHARED, fd, 4 * P);
    expect(p.munmap(a, 2 * P)).toBe(0); // the tail VMA now starts at pgoff 6
    expect(p.mm.vmas.lookup(a + 2 * P)!.pgoff).toBe(6);
    expect(p.load(a + 2 * P, 4, w)).toBe(0);
    expect(w.lo).toBe(0); // resolved as VMA-relative page 0, not file page 6
    expect(dev.faults).toEqual(['1:0']);
  });

  it('vmf_insert_pfn outside the VMA → SIGBUS; a present PTE is left as it is', () => {
    const { p, fd } = deviceProcess();
    const a = p.mmap(0, P, RW, MAP_SHARED, fd, 0);
    const vma = p.mm.vmas.lookup(a)!;
    expect(vmfInsertPfn(vma, a + P, DEV_BASE_PFN)).toBe(VM_FAULT_SIGBUS);
    vmfInsertPfn(vma, a, DEV_BASE_PFN + 7);
    vmfInsertPfn(vma, a, DEV_BASE_PFN + 9);
    expect(p.mm.pgtable.pfn(a / P)).toBe(DEV_BASE_PFN + 7);
    const anon = p.mmap(0, P, RW, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    expect(() => vmfInsertPfn(p.mm.vmas.lookup(anon)!, anon, 1)).toThrow(/VM_PFNMAP/);
  });
});

describe('zap_vma_ptes', () => {
  it('zaps a range of a pfnmap VMA with a CLEAR notifier; ignores bad ranges and non-pfnmap VMAs', () => {
    const { p, fd, w } = deviceProcess();
    const n = NotifierLog.on(p.mm);
    const a = p.mmap(0, 4 * P, RW, MAP_SHARED, fd, 0);
    for (let i = 0; i < 4; i++) p.load(a + i * P, 4, w);
    const vma = p.mm.vmas.lookup(a)!;
    zapVmaPtes(vma, a + 3 * P, 2 * P); // beyond the end: nothing
    expect(n.log).toEqual([]);
    zapVmaPtes(vma, a + P, 2 * P);
    expect(n.log).toEqual([
      `start 1:${h(a + P)}-${h(a + 3 * P)}:${MMU_NOTIFY_CLEAR}`,
      `end 1:${h(a + P)}-${h(a + 3 * P)}:${MMU_NOTIFY_CLEAR}`,
    ]);
    expect([0, 1, 2, 3].map((i) => p.mm.pgtable.pfn(a / P + i) >= 0)).toEqual([true, false, false, true]);
    const anon = p.mmap(0, P, RW, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    p.store(anon, 4, 0, 1);
    zapVmaPtes(p.mm.vmas.lookup(anon)!, anon, P);
    expect(p.mm.pgtable.pfn(anon / P)).toBeGreaterThanOrEqual(0);
    expect(p.mm.stats.faults).toBe(5);
    p.load(a + P, 4, w);
    expect(p.mm.stats.faults).toBe(6); // refault after the zap
  });
});

describe('unmap_mapping_range', () => {
  it('reaches two processes and two mappings of one process at different addresses and pgoffs', () => {
    const { host, p, dev, fd, w } = deviceProcess();
    const q = host.spawn();
    const qfd = p.sendFd(q, fd);
    // p: the whole range from pgoff 4, and a second window starting at pgoff 8.
    const a1 = p.mmap(0, 16 * P, RW, MAP_SHARED, fd, 4 * P);
    const a2 = p.mmap(0, 4 * P, RW, MAP_SHARED, fd, 8 * P);
    // q: a window from pgoff 4 of 8 pages (covers 4..11), and one at pgoff 20 (no overlap).
    const b1 = q.mmap(0, 8 * P, RW, MAP_SHARED, qfd, 4 * P);
    const b2 = q.mmap(0, 2 * P, RW, MAP_SHARED, qfd, 20 * P);
    const touch = () => {
      for (let i = 0; i < 16; i++) p.load(a1 + i * P, 4, w);
      for (let i = 0; i < 4; i++) p.load(a2 + i * P, 4, w);
      for (let i = 0; i < 8; i++) q.load(b1 + i * P, 4, w);
      for (let i = 0; i < 2; i++) q.load(b2 + i * P, 4, w);
    };
    touch();
    const np = new NotifierLog();
    const nq = new NotifierLog();
    p.mm.mmuNotifierRegister(np);
    q.mm.mmuNotifierRegister(nq);
    // File pages 8 and 9 (an "irq 2" pair at 4 + 2·2).
    const zapped = unmapMappingRange(p.fget(fd)!.mapping, 8 * P, 2 * P, true);
    expect(zapped).toBe(6);
    expect(np.log).toEqual([
      `start 1:${h(a1 + 4 * P)}-${h(a1 + 6 * P)}:${MMU_NOTIFY_CLEAR}`,
      `end 1:${h(a1 + 4 * P)}-${h(a1 + 6 * P)}:${MMU_NOTIFY_CLEAR}`,
      `start 1:${h(a2)}-${h(a2 + 2 * P)}:${MMU_NOTIFY_CLEAR}`,
      `end 1:${h(a2)}-${h(a2 + 2 * P)}:${MMU_NOTIFY_CLEAR}`,
    ]);
    expect(nq.log).toEqual([
      `start 2:${h(b1 + 4 * P)}-${h(b1 + 6 * P)}:${MMU_NOTIFY_CLEAR}`,
      `end 2:${h(b1 + 4 * P)}-${h(b1 + 6 * P)}:${MMU_NOTIFY_CLEAR}`,
    ]);
    expect(p.mm.pgtable.pfn((a1 + 4 * P) / P)).toBe(-1);
    expect(p.mm.pgtable.pfn((a1 + 3 * P) / P)).toBe(DEV_BASE_PFN + 7);
    expect(p.mm.pgtable.pfn((a1 + 6 * P) / P)).toBe(DEV_BASE_PFN + 10);
    expect(q.mm.pgtable.pfn(b2 / P)).toBe(DEV_BASE_PFN + 20);
    // Everything refaults to the same pages.
    dev.faults.length = 0;
    touch();
    expect(dev.faults).toEqual(['1:8', '1:9', '1:8', '1:9', '2:8', '2:9']);
    // Holes: sub-page begin rounds down; length 0 = to the end of the file.
    expect(unmapMappingRange(p.fget(fd)!.mapping, 19 * P + 5, 0, false)).toBe(3); // a1's page 19, b2's 20 and 21
  });

  it('a munmapped VMA is no longer in the reverse map; a forked child is', () => {
    const { p, fd, w } = deviceProcess();
    const a = p.mmap(0, 4 * P, RW, MAP_SHARED, fd, 0);
    const b = p.mmap(0, 4 * P, RW, MAP_SHARED, fd, 0);
    p.munmap(a, 4 * P);
    const c = p.fork();
    assert(typeof c !== 'number', `fork: ${c}`);
    p.load(b + P, 4, w);
    c.load(b + P, 4, w);
    const mapping = p.fget(fd)!.mapping;
    expect(mapping.iMmap.size).toBe(2);
    expect(unmapMappingPages(mapping, 1, 1, true)).toBe(2);
    expect(p.mm.pgtable.pfn((b + P) / P)).toBe(-1);
    expect(c.mm.pgtable.pfn((b + P) / P)).toBe(-1);
  });

  it('all anon-inode files share one address_space, so a zap reaches every anon-inode mapping', () => {
    const { host } = makeHost();
    const w = new Word64();
    const p = host.spawn();
    const d1 = new FakeDevice();
    const d2 = new FakeDevice();
    const f1 = p.installFd(host.anonInodeGetFile('kvm-xive', d1.fops, null));
    const f2 = p.installFd(host.anonInodeGetFile('kvm-xive', d2.fops, null));
    expect(p.fget(f1)!.mapping).toBe(p.fget(f2)!.mapping);
    const a = p.mmap(0, 2 * P, RW, MAP_SHARED, f1, 4 * P);
    const b = p.mmap(0, 2 * P, RW, MAP_SHARED, f2, 4 * P);
    p.load(a, 4, w);
    p.load(b, 4, w);
    expect(unmapMappingPages(p.fget(f1)!.mapping, 4, 1, true)).toBe(2);
  });
});
