import { describe, expect, it } from 'vitest';
import { type AccessSize, type MmioDevice, NO_CPU, Word64 } from '../../../src/hw/mmio.ts';
import { PhysMem } from '../../../src/hw/phys-mem.ts';
import { Trace } from '../../../src/sim/trace.ts';
import { loaded } from './loaded.ts';

class Recorder implements MmioDevice {
  readonly log: string[] = [];
  load(offset: number, size: AccessSize, cpu: number, out: Word64): void {
    this.log.push(`ld ${offset.toString(16)} ${size} ${cpu}`);
    out.set(0x1122_3344, 0x5566_7788);
  }
  store(offset: number, size: AccessSize, hi: number, lo: number, cpu: number): void {
    this.log.push(`st ${offset.toString(16)} ${size} ${hi.toString(16)}:${lo.toString(16)} ${cpu}`);
  }
}

const TM = 0x0006_0302_0318_0000;

function make() {
  const trace = new Trace();
  const mem = new PhysMem(trace);
  mem.addRam(0, 0x40_0000, 'ram');
  const dev = new Recorder();
  mem.addMmio(TM, 0x40000, dev, 'xive.tima');
  return { trace, mem, dev, w: new Word64() };
}

/** A load of `size` bytes at `addr`, as one 64-bit value. */
const ld = (mem: PhysMem, addr: number, size: AccessSize): bigint => loaded((w) => mem.load(addr, size, w));

describe('PhysMem', () => {
  it('RAM is big-endian, zero until written, frames allocated lazily', () => {
    const { mem } = make();
    expect(ld(mem, 0x1000, 8)).toBe(0n);
    expect(mem.allocatedFrames).toBe(0);
    mem.store(0x1000, 8, 0x0102_0304, 0x0506_0708);
    expect(mem.allocatedFrames).toBe(1);
    expect(ld(mem, 0x1000, 4)).toBe(0x0102_0304n);
    expect(ld(mem, 0x1006, 2)).toBe(0x0708n);
    expect(ld(mem, 0x1003, 1)).toBe(0x04n);
    expect(mem.loadBe32(0x1004)).toBe(0x0506_0708);
    expect(mem.storeBe32(0x2000, 0xdead_beef)).toBe(true);
    const b = new Uint8Array(4);
    mem.readBytes(0x2000, b);
    expect([...b]).toEqual([0xde, 0xad, 0xbe, 0xef]);
  });

  it('accesses crossing a 64 KiB frame boundary', () => {
    const { mem } = make();
    mem.store(0xfffc, 8, 0xa1a2_a3a4, 0xb1b2_b3b4);
    expect(mem.allocatedFrames).toBe(2);
    expect(ld(mem, 0xfffc, 8)).toBe(0xa1a2_a3a4_b1b2_b3b4n);
    expect(ld(mem, 0xfffe, 4)).toBe(0xa3a4_b1b2n);
    mem.store(0x1ffff, 2, 0, 0xcafe);
    expect(ld(mem, 0x1ffff, 2)).toBe(0xcafen);
    expect(mem.loadBe32(0x1fffe)).toBe(0x00ca_fe00);
  });

  it('MMIO: dispatch with region-relative offsets and the cpu', () => {
    const { mem, dev, w } = make();
    mem.load(TM + 0x20810, 2, w, 3);
    expect([w.hi, w.lo]).toEqual([0x1122_3344, 0x5566_7788]);
    mem.store(TM + 0x10018, 4, 0, 0x8000_0400, 1);
    mem.store(TM + 0x11, 1, 0, 0xff);
    expect(dev.log).toEqual(['ld 20810 2 3', 'st 10018 4 0:80000400 1', `st 11 1 0:ff ${NO_CPU}`]);
    expect(mem.ownerName(TM + 0x3ffff)).toBe('xive.tima');
    expect(mem.ownerAt(TM)).toBe(dev);
    expect(mem.ownerName(0x10)).toBe('ram');
    expect(mem.ownerName(TM + 0x40000)).toBeNull();
    // DMA never reaches MMIO
    expect(mem.storeBe32(TM, 1)).toBe(false);
    expect(mem.loadBe32(TM)).toBe(0xffff_ffff);
    expect(dev.log.length).toBe(3);
  });

  it('unbacked access: all-ones of the access size, writes ignored, guest errors', () => {
    const { mem, trace, w } = make();
    mem.load(0x40_0000, 8, w);
    expect(w.toBigInt()).toBe(0xffff_ffff_ffff_ffffn);
    mem.load(0x40_0000, 4, w);
    expect([w.hi, w.lo]).toEqual([0, 0xffff_ffff]);
    mem.load(0x40_0000, 1, w);
    expect(w.lo).toBe(0xff);
    mem.store(0x40_0000, 4, 0, 1);
    mem.load(0x3f_fffc, 8, w); // straddles the end of RAM
    expect(w.toBigInt()).toBe(0xffff_ffff_ffff_ffffn);
    expect(mem.loadBe32(0x40_0000)).toBe(0xffff_ffff);
    expect(mem.storeBe32(0x40_0000, 1)).toBe(false);
    expect(trace.guestErrors).toEqual([
      "Invalid read at addr 0x400000, size 8, region '(unassigned)', reason: rejected",
      "Invalid read at addr 0x400000, size 4, region '(unassigned)', reason: rejected",
      "Invalid read at addr 0x400000, size 1, region '(unassigned)', reason: rejected",
      "Invalid write at addr 0x400000, size 4, region '(unassigned)', reason: rejected",
      "Invalid read at addr 0x3FFFFC, size 8, region '(unassigned)', reason: rejected",
    ]);
  });

  it('isRam spans adjacent RAM regions but not MMIO or holes', () => {
    const { mem } = make();
    mem.addRam(0x40_0000, 0x1_0000, 'ram2');
    expect(mem.isRam(0x3f_fff0, 0x20)).toBe(true);
    expect(mem.isRam(0x40_fff0, 0x20)).toBe(false);
    expect(mem.isRam(TM, 4)).toBe(false);
    expect(mem.writeBytes(0x40_fffe, Uint8Array.of(1, 2, 3))).toBe(false);
    expect(mem.writeBytes(0x3f_ffff, Uint8Array.of(1, 2))).toBe(true);
    const b = new Uint8Array(4);
    mem.readBytes(0x3f_fffe, b);
    expect([...b]).toEqual([0, 1, 2, 0]);
    // a single access must sit in one region (as a QEMU flat range)
    expect(mem.loadBe32(0x3f_fffe)).toBe(0xffff_ffff);
  });

  it('configuration errors throw; remove unmaps', () => {
    const { mem, w, trace } = make();
    expect(() => mem.addRam(0x1000, 0x1_0000, 'x')).toThrow('not frame-aligned');
    expect(() => mem.addRam(0x30_0000, 0x20_0000, 'x')).toThrow("overlaps 'ram'");
    expect(() => mem.remove(0x5_0000)).toThrow('no region');
    mem.store(0x100, 4, 0, 7);
    mem.remove(0);
    mem.load(0x100, 4, w);
    expect(w.lo).toBe(0xffff_ffff);
    expect(trace.guestErrors.length).toBe(1);
    mem.addRam(0, 0x1_0000, 'fresh');
    mem.load(0x100, 4, w);
    expect(w.lo).toBe(0);
  });
});
