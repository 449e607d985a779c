import { describe, expect, it } from 'vitest';
import { VmaIntervalTree } from '../../../../src/host/mm/file.ts';
import { FrameTable } from '../../../../src/host/mm/frames.ts';
import { MAX_VPN, PageTable, PTE_PRESENT, PTE_WRITE } from '../../../../src/host/mm/page-table.ts';
import type { Vma } from '../../../../src/host/mm/vma.ts';
import { Word64 } from '../../../../src/hw/mmio.ts';
import { NULL_TRACE } from '../../../../src/sim/trace-sink.ts';
import { DEV_BASE, DEV_BASE_PFN, makeHost, P, PageDevice } from './helpers.ts';

describe('PageTable', () => {
  it('sparse levels come and go; pfns above 2^32 are kept exactly', () => {
    const pt = new PageTable();
    expect(pt.tablePages).toBe(0);
    const vpn = 0x7fff_f7ff; // near the top of the 47-bit window
    pt.set(vpn, DEV_BASE_PFN + 3, PTE_PRESENT | PTE_WRITE);
    expect(pt.tablePages).toBe(3);
    expect(pt.pfn(vpn)).toBe(0x6_0100_0003);
    expect(pt.pfn(vpn + 1)).toBe(-1);
    pt.set(vpn + 1, 5, PTE_PRESENT);
    expect(pt.tablePages).toBe(4); // the next PTE page (32 PTEs per table)
    expect(pt.present).toBe(2);
    const seen: number[] = [];
    pt.scan(0, MAX_VPN, (v, pfn) => seen.push(v, pfn));
    expect(seen).toEqual([vpn, DEV_BASE_PFN + 3, vpn + 1, 5]);
    expect(pt.clear(vpn)).toBe(DEV_BASE_PFN + 3);
    expect(pt.clear(vpn)).toBe(-1);
    expect(pt.clear(vpn + 1)).toBe(5);
    expect(pt.tablePages).toBe(0);
    expect(pt.present).toBe(0);
    expect(() => pt.set(MAX_VPN, 1, PTE_PRESENT)).toThrow();
    expect(() => pt.set(1, 1, 0)).toThrow();
  });

  it('keeps pfns up to 2^40 - 1 exactly (a u32 and a byte) and refuses larger ones', () => {
    const pt = new PageTable();
    pt.set(7, 2 ** 40 - 1, PTE_PRESENT);
    pt.set(8, 2 ** 32, PTE_PRESENT | PTE_WRITE);
    expect(pt.pfn(7)).toBe(0xff_ffff_ffff);
    expect(pt.pfn(8)).toBe(0x1_0000_0000);
    expect(pt.flags(8)).toBe(PTE_PRESENT | PTE_WRITE);
    expect(() => pt.set(9, 2 ** 40, PTE_PRESENT)).toThrow(
      'PageTable.set: bad PTE vpn=9 pfn=1099511627776 flags=1',
    );
    expect(pt.clear(7)).toBe(0xff_ffff_ffff);
    expect(pt.pfn(7)).toBe(-1);
  });
  it('hands a freed leaf table out again, empty, and keeps 600 tables apart across slabs', () => {
    const pt = new PageTable();
    // 600 leaf tables (32 PTEs each): more than one slab holds (8, 16, … up to 512 tables).
    for (let t = 0; t < 600; t++) pt.set(t * 32 + (t % 32), 1000 + t, PTE_PRESENT);
    expect(pt.tablePages).toBe(600 + 2 + 1); // leaves, two PMD pages, a PUD page
    for (let t = 0; t < 600; t++) expect(pt.pfn(t * 32 + (t % 32))).toBe(1000 + t);
    // Table 3's one PTE goes: the table is freed; the next new table is that one again. (Its
    // walk was the last: the page table's memory of it goes with it.)
    expect(pt.slot(3 * 32 + 3)).toBe(3 * 32 + 3);
    expect(pt.clear(3 * 32 + 3)).toBe(1003);
    expect(pt.slot(3 * 32 + 4)).toBe(-1);
    expect(pt.tablePages).toBe(602);
    const far = 0x10_0000;
    pt.set(far + 5, 77, PTE_PRESENT | PTE_WRITE);
    expect(pt.tablePages).toBe(604); // the leaf and its PMD page
    const s = pt.slot(far + 5);
    expect(s).toBe(3 * 32 + 5);
    expect(pt.slotPfn(s)).toBe(77);
    // Nothing of the table's earlier life shows through.
    for (let i = 0; i < 32; i++) if (i !== 5) expect(pt.flags(far + i)).toBe(0);
    expect(pt.pfn(3 * 32 + 3)).toBe(-1);
    expect(pt.slot(3 * 32 + 3)).toBe(-1);
    pt.markSlot(s, 0x10);
    expect(pt.flags(far + 5)).toBe(PTE_PRESENT | PTE_WRITE | 0x10);
    expect(pt.present).toBe(600);
  });
});

describe('VmaIntervalTree (i_mmap)', () => {
  it('stabbing queries over many VMAs return exactly the overlapping ones, in pgoff order', () => {
    const t = new VmaIntervalTree();
    const fake = (id: number, pgoff: number, pages: number) => ({ id, pgoff, pages }) as unknown as Vma;
    const all: Vma[] = [];
    for (let i = 0; i < 100; i++) {
      const v = fake(i, (i * 37) % 200, 1 + ((i * 13) % 9));
      all.push(v);
      t.insert(v);
    }
    t.remove(all[50]!);
    for (const [first, last] of [
      [0, 0],
      [10, 12],
      [150, 400],
      [199, 199],
    ] as const) {
      const want = all
        .filter((v, i) => i !== 50 && v.pgoff <= last && v.pgoff + v.pages - 1 >= first)
        .sort((a, b) => a.pgoff - b.pgoff || a.id - b.id)
        .map((v) => v.id);
      expect(t.query(first, last).map((v) => v.id)).toEqual(want);
    }
    expect(() => t.remove(all[50]!)).toThrow();
  });
});

describe('FrameTable', () => {
  it('RAM is zeroed, big-endian, reused LIFO; MMIO dispatches region-relative offsets', () => {
    const ft = new FrameTable({ ramBase: 0x100_0000, ramFrames: 2 }, NULL_TRACE);
    const dev = new PageDevice();
    ft.addMmio(DEV_BASE, 4 * P, dev, 'dev');
    const a = ft.allocRam();
    const b = ft.allocRam();
    expect([a, b]).toEqual([0x100, 0x101]);
    expect(ft.allocRam()).toBe(-1);
    const w = new Word64();
    ft.store(a, 8, 4, 0, 0x0102_0304, -1);
    ft.load(a, 8, 1, -1, w);
    expect(w.lo).toBe(0x01);
    ft.freeRam(a);
    expect(ft.allocRam()).toBe(a);
    ft.load(a, 8, 4, -1, w);
    expect(w.lo).toBe(0);
    ft.load(DEV_BASE_PFN + 2, 0x10, 8, 3, w);
    expect(w.lo).toBe(2 * P + 0x10);
    ft.load(DEV_BASE_PFN + 9, 0, 4, 3, w);
    expect(w.lo).toBe(0xffff_ffff); // unbacked
    expect(ft.ownerName(DEV_BASE_PFN + 3)).toBe('dev');
    expect(() => ft.addMmio(DEV_BASE + P, P, dev, 'x')).toThrow(/overlaps/);
    expect(() => ft.freeRam(0x5)).toThrow();
  });

  it('an MmHost can take any HostFrames', () => {
    const { host, frames } = makeHost();
    expect(host.frames).toBe(frames);
  });
});
