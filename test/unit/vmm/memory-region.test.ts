import { describe, expect, it } from 'vitest';
import { type AccessSize, Word64 } from '../../../src/hw/mmio.ts';
import {
  MemoryRegion,
  memoryRegionTransactionBegin,
  memoryRegionTransactionCommit,
  memoryRegionTransactionDepth,
} from '../../../src/vmm/memory-region.ts';
import { loaded } from '../hw/loaded.ts';

/** A RAM load of `size` bytes at `addr`, as one 64-bit value. */
const ld = (ram: MemoryRegion, addr: number, size: AccessSize): bigint =>
  loaded((w) => ram.ramLoad(addr, size, w));

describe('MemoryRegion RAM', () => {
  it('stores and loads big-endian 1/2/4/8-byte values', () => {
    const ram = MemoryRegion.ram('ram', 0x20000);
    ram.ramStore(0x100, 8, 0x01020304, 0x05060708);
    expect(ld(ram, 0x100, 1)).toBe(0x01n);
    expect(ld(ram, 0x102, 2)).toBe(0x0304n);
    expect(ld(ram, 0x104, 4)).toBe(0x05060708n);
    expect(ld(ram, 0x100, 8)).toBe(0x01020304_05060708n);
    ram.ramStore(0x200, 4, 0, 0xdeadbeef);
    ram.ramStore(0x204, 2, 0, 0xcafe);
    ram.ramStore(0x206, 1, 0, 0x1ff);
    expect(ld(ram, 0x200, 8)).toBe(0xdeadbeef_cafeff00n);
  });

  it('handles accesses crossing a 64 KiB backing page', () => {
    const ram = MemoryRegion.ram('ram', 0x20000);
    ram.ramStore(0xfffc, 8, 0x11223344, 0x55667788);
    expect(ld(ram, 0xfffc, 8)).toBe(0x11223344_55667788n);
    expect(ld(ram, 0x10000, 4)).toBe(0x55667788n);
    expect(ld(ram, 0xfffe, 4)).toBe(0x33445566n);
    expect(ram.ramPagesAllocated).toBe(2);
  });

  it('reads zero from untouched memory without allocating', () => {
    const ram = MemoryRegion.ram('ram', 1 << 30);
    const w = new Word64().set(1, 1);
    ram.ramLoad(0x3fff_fff8, 8, w);
    expect([w.hi, w.lo]).toEqual([0, 0]);
    ram.ramFill(0, 0x1000, 0);
    expect(ram.ramPagesAllocated).toBe(0);
    ram.ramFill(0x10, 2, 0xab);
    ram.ramLoad(0x10, 2, w);
    expect(w.lo).toBe(0xabab);
  });

  it('bulk reads and writes, and rejects out-of-range bulk access', () => {
    const ram = MemoryRegion.ram('ram', 0x100);
    ram.ramWrite(0xfe, new Uint8Array([1, 2]));
    const dst = new Uint8Array(3);
    ram.ramRead(0xfd, dst);
    expect([...dst]).toEqual([0, 1, 2]);
    expect(() => ram.ramWrite(0xff, new Uint8Array(2))).toThrow(RangeError);
    ram.ramClear();
    ram.ramRead(0xfd, dst);
    expect([...dst]).toEqual([0, 0, 0]);
  });

  it('a bulk read across backing pages, written and never written: the bytes of one-byte loads', () => {
    const ram = MemoryRegion.ram('ram', 0x3_0000);
    ram.ramWrite(0xfffe, new Uint8Array([1, 2, 3, 4]));
    ram.ramWrite(0x2_0010, new Uint8Array([5]));
    const dst = new Uint8Array(0x3_0000 - 7).fill(0xee);
    ram.ramRead(7, dst);
    const w = new Word64();
    const bytes = Array.from(dst, (_, i) => {
      ram.ramLoad(7 + i, 1, w);
      return w.lo;
    });
    expect([...dst]).toEqual(bytes);
    expect([...dst.subarray(0xfff7, 0xfffb)]).toEqual([1, 2, 3, 4]);
    expect(dst[0x2_0009]).toBe(5);
    expect(dst.reduce((n, b) => n + (b === 0 ? 0 : 1), 0)).toBe(5);
  });
});

describe('MemoryRegion subregions', () => {
  it('orders by priority, newest first among equals (memory_region_add_subregion)', () => {
    const c = MemoryRegion.container('c', 0x1000);
    const a = MemoryRegion.ram('a', 0x100);
    const b = MemoryRegion.ram('b', 0x100);
    const hi = MemoryRegion.ram('hi', 0x100);
    const lo = MemoryRegion.ram('lo', 0x100);
    c.addSubregion(0, a);
    c.addSubregionOverlap(0, hi, 1);
    c.addSubregion(0, b);
    c.addSubregionOverlap(0, lo, -1);
    expect(c.subregions.map((r) => r.name)).toEqual(['hi', 'b', 'a', 'lo']);
    expect(a.container).toBe(c);
    c.delSubregion(b);
    expect(c.subregions.map((r) => r.name)).toEqual(['hi', 'a', 'lo']);
    expect(b.container).toBeNull();
  });

  it('re-adding on setAddress makes the region the newest of its priority', () => {
    const c = MemoryRegion.container('c', 0x1000);
    const a = MemoryRegion.ram('a', 0x100);
    const b = MemoryRegion.ram('b', 0x100);
    c.addSubregion(0, a);
    c.addSubregion(0x100, b);
    expect(c.subregions.map((r) => r.name)).toEqual(['b', 'a']);
    a.setAddress(0x200);
    expect(c.subregions.map((r) => r.name)).toEqual(['a', 'b']);
    expect(a.addr).toBe(0x200);
  });

  it('throws on model misuse: double mapping, self containment, foreign delete', () => {
    const c = MemoryRegion.container('c', 0x1000);
    const d = MemoryRegion.container('d', 0x1000);
    const a = MemoryRegion.ram('a', 0x100);
    c.addSubregion(0, a);
    expect(() => d.addSubregion(0, a)).toThrow(/already mapped in c/);
    expect(() => c.addSubregion(0, c)).toThrow(/itself/);
    expect(() => d.delSubregion(a)).toThrow(/not a subregion/);
    expect(() => a.setAliasOffset(4)).toThrow(/not an alias/);
  });

  it('classifies kinds: terminates / isRam', () => {
    const dev = { load() {}, store() {} };
    const ram = MemoryRegion.ram('r', 16);
    expect([ram.terminates, ram.isRam]).toEqual([true, true]);
    const io = MemoryRegion.io('io', 16, dev);
    expect([io.terminates, io.isRam]).toEqual([true, false]);
    const rd = MemoryRegion.ramDevice('rd', 16, 0x7f00_0000_0000, dev);
    expect([rd.terminates, rd.isRam, rd.ramOffset]).toEqual([true, true, 0x7f00_0000_0000]);
    const ct = MemoryRegion.container('c', 16);
    expect([ct.terminates, ct.isRam]).toEqual([false, false]);
    const al = MemoryRegion.alias('al', ram, 4, 8);
    expect([al.terminates, ram.aliasedBy[0]]).toEqual([false, al]);
  });

  it('nests transactions and rejects an unbalanced commit', () => {
    expect(memoryRegionTransactionDepth()).toBe(0);
    memoryRegionTransactionBegin();
    memoryRegionTransactionBegin();
    expect(memoryRegionTransactionDepth()).toBe(2);
    memoryRegionTransactionCommit();
    memoryRegionTransactionCommit();
    expect(memoryRegionTransactionDepth()).toBe(0);
    expect(() => memoryRegionTransactionCommit()).toThrow(/without begin/);
  });
});
