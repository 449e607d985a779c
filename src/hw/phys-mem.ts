/**
 * The host physical memory map: RAM and MMIO regions in whole 64 KiB frames, each with a name
 * and (for MMIO) an owner that receives region-relative offsets.
 *
 * Addresses are plain numbers below 2^53: never bitwise-operated. Lookup is a binary search over
 * the sorted regions with a one-entry cache (frame numbers of MMIO at 0x6_0000_0000_0000 exceed
 * the range a Map key should hold). RAM frames are allocated on first write; an untouched frame
 * reads as zeros.
 */

import type { TraceSink } from '../sim/trace-sink.ts';
import { type AccessSize, type DmaSpace, type MmioDevice, NO_CPU, Word64 } from './mmio.ts';

/** Frame size: 64 KiB. */
export const PHYS_FRAME_SIZE = 0x1_0000;
const FRAME_SCALE = 2 ** -16;

const hex = (n: number): string => n.toString(16);

/** One mapped range. */
export class PhysRegion {
  readonly base: number;
  readonly size: number;
  readonly end: number;
  readonly name: string;
  /** MMIO owner, or null for RAM. */
  readonly owner: MmioDevice | null;
  /** RAM frames (null until written); empty for MMIO. */
  readonly frames: (DataView | null)[];
  constructor(base: number, size: number, name: string, owner: MmioDevice | null) {
    this.base = base;
    this.size = size;
    this.end = base + size;
    this.name = name;
    this.owner = owner;
    this.frames = owner ? [] : new Array<DataView | null>(size * FRAME_SCALE).fill(null);
  }
}

/** Regions remembered by the lookup. */
const RECENT = 4;

/**
 * Physical memory: dispatches loads and stores to RAM frames or to the owning MMIO device.
 * Unbacked accesses read all-ones and are ignored on write, with a guest error.
 */
export class PhysMem implements DmaSpace {
  private readonly trace: TraceSink;
  private regions: PhysRegion[];
  /**
   * Indices in {@link regions} of the last {@link RECENT} regions found (−1: none), replaced
   * round robin (`nextRecent[0]`): a guest's interrupt path alternates between RAM, the ESB
   * pages and the TIMA. Typed arrays, so a lookup writes no field (the explorer may freeze the
   * objects of a world, see `check/explore/heap-snapshot.ts`).
   */
  private readonly recent: Int32Array;
  private readonly nextRecent: Uint8Array;
  private readonly tmp: Word64;

  constructor(trace: TraceSink) {
    this.trace = trace;
    this.regions = [];
    this.recent = new Int32Array(RECENT).fill(-1);
    this.nextRecent = new Uint8Array(1);
    this.tmp = new Word64();
  }

  private add(region: PhysRegion): void {
    const { base, size } = region;
    if (
      !Number.isSafeInteger(base) ||
      !Number.isSafeInteger(region.end) ||
      base < 0 ||
      size <= 0 ||
      base % PHYS_FRAME_SIZE !== 0 ||
      size % PHYS_FRAME_SIZE !== 0
    ) {
      throw new Error(
        `PhysMem: region '${region.name}' at 0x${hex(base)} size 0x${hex(size)} is not frame-aligned`,
      );
    }
    for (const r of this.regions) {
      if (base < r.end && r.base < region.end) {
        throw new Error(`PhysMem: region '${region.name}' at 0x${hex(base)} overlaps '${r.name}'`);
      }
    }
    this.regions.push(region);
    this.regions.sort((a, b) => a.base - b.base);
    this.recent.fill(-1);
  }

  /**
   * Map RAM (frames allocated lazily). Returns the region, for an owner that reaches its frames
   * by number ({@link regionFrame}) rather than by address.
   */
  addRam(base: number, size: number, name: string): PhysRegion {
    const r = new PhysRegion(base, size, name, null);
    this.add(r);
    return r;
  }

  /** Map an MMIO device; it receives offsets relative to `base`. */
  addMmio(base: number, size: number, owner: MmioDevice, name: string): void {
    this.add(new PhysRegion(base, size, name, owner));
  }

  /** Unmap the region starting at `base` (RAM contents are dropped). */
  remove(base: number): void {
    const i = this.regions.findIndex((r) => r.base === base);
    if (i < 0) throw new Error(`PhysMem: no region at 0x${hex(base)}`);
    this.regions.splice(i, 1);
    this.recent.fill(-1);
  }

  private find(addr: number): PhysRegion | null {
    const recent = this.recent;
    const rs = this.regions;
    for (let k = 0; k < RECENT; k++) {
      const i = recent[k]!;
      if (i < 0) continue;
      const l = rs[i]!;
      if (addr >= l.base && addr < l.end) return l;
    }
    return this.findSlow(addr);
  }

  /** {@link find} past the recent regions: a binary search (and the region becomes recent). */
  private findSlow(addr: number): PhysRegion | null {
    const recent = this.recent;
    const rs = this.regions;
    let lo = 0;
    let hi = rs.length - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >>> 1;
      const r = rs[mid]!;
      if (addr < r.base) hi = mid - 1;
      else if (addr >= r.end) lo = mid + 1;
      else {
        const k = this.nextRecent[0]!;
        recent[k] = mid;
        this.nextRecent[0] = (k + 1) % RECENT;
        return r;
      }
    }
    return null;
  }

  /** Name of the region holding `addr`, or null. */
  ownerName(addr: number): string | null {
    return this.find(addr)?.name ?? null;
  }

  /** The MMIO owner at `addr`, or null (RAM or unbacked). */
  ownerAt(addr: number): MmioDevice | null {
    return this.find(addr)?.owner ?? null;
  }

  /** Number of RAM frames actually allocated. */
  get allocatedFrames(): number {
    let n = 0;
    for (const r of this.regions) for (const f of r.frames) if (f) n++;
    return n;
  }

  /** The region fully containing `[addr, addr+len)`, or null. */
  private span(addr: number, len: number): PhysRegion | null {
    const r = this.find(addr);
    return r !== null && addr + len <= r.end ? r : null;
  }

  private frame(r: PhysRegion, f: number, alloc: boolean): DataView | null {
    let v = r.frames[f]!;
    if (v === null && alloc) {
      v = new DataView(new ArrayBuffer(PHYS_FRAME_SIZE));
      r.frames[f] = v;
    }
    return v;
  }

  private ramByte(r: PhysRegion, addr: number): number {
    const off = addr - r.base;
    const f = Math.floor(off * FRAME_SCALE);
    const v = r.frames[f]!;
    return v === null ? 0 : v.getUint8(off - f * PHYS_FRAME_SIZE);
  }

  private setRamByte(r: PhysRegion, addr: number, b: number): void {
    const off = addr - r.base;
    const f = Math.floor(off * FRAME_SCALE);
    this.frame(r, f, true)!.setUint8(off - f * PHYS_FRAME_SIZE, b);
  }

  /**
   * Frame `f` of RAM region `r` ({@link addRam}), for a copy that moves plain bytes (RAM has no
   * access side effects): null where the frame was never written (it reads as zeros) and
   * `alloc` is false. By number: the owner of the region needs no address look-up.
   */
  regionFrame(r: PhysRegion, f: number, alloc: boolean): DataView | null {
    return this.frame(r, f, alloc);
  }

  /** Drop the contents of the RAM frame holding `addr` (it reads as zeros again): a freed page. */
  discardFrame(addr: number): void {
    const r = this.span(addr, 1);
    if (r === null || r.owner !== null) throw new Error(`PhysMem: no RAM frame at 0x${hex(addr)}`);
    r.frames[Math.floor((addr - r.base) * FRAME_SCALE)] = null;
  }

  /** Copy the whole RAM frame holding `src` over the one holding `dst` (fork of private memory). */
  copyFrame(dst: number, src: number): void {
    const rs = this.span(src, 1);
    const rd = this.span(dst, 1);
    if (rs === null || rs.owner !== null || rd === null || rd.owner !== null) {
      throw new Error(`PhysMem: copy between non-RAM frames 0x${hex(src)} -> 0x${hex(dst)}`);
    }
    const s = rs.frames[Math.floor((src - rs.base) * FRAME_SCALE)]!;
    const fd = Math.floor((dst - rd.base) * FRAME_SCALE);
    rd.frames[fd] = s === null ? null : new DataView(s.buffer.slice(0));
  }

  /** Big-endian RAM read of 1..8 bytes into `out`. */
  private ramLoad(r: PhysRegion, addr: number, size: AccessSize, out: Word64): void {
    const off = addr - r.base;
    const f = Math.floor(off * FRAME_SCALE);
    const fo = off - f * PHYS_FRAME_SIZE;
    if (fo + size <= PHYS_FRAME_SIZE) {
      const v = r.frames[f]!;
      if (v === null) out.set(0, 0);
      else if (size === 8) out.set(v.getUint32(fo), v.getUint32(fo + 4));
      else if (size === 4) out.set(0, v.getUint32(fo));
      else if (size === 2) out.set(0, v.getUint16(fo));
      else out.set(0, v.getUint8(fo));
      return;
    }
    // Crossing a frame boundary: byte by byte.
    let hi = 0;
    let lo = 0;
    for (let i = 0; i < size; i++) {
      const b = this.ramByte(r, addr + i);
      if (size === 8 && i < 4) hi = (hi << 8) | b;
      else lo = (lo << 8) | b;
    }
    out.set(hi, lo);
  }

  private ramStore(r: PhysRegion, addr: number, size: AccessSize, hi: number, lo: number): void {
    const off = addr - r.base;
    const f = Math.floor(off * FRAME_SCALE);
    const fo = off - f * PHYS_FRAME_SIZE;
    if (fo + size <= PHYS_FRAME_SIZE) {
      const v = this.frame(r, f, true)!;
      if (size === 8) {
        v.setUint32(fo, hi >>> 0);
        v.setUint32(fo + 4, lo >>> 0);
      } else if (size === 4) v.setUint32(fo, lo >>> 0);
      else if (size === 2) v.setUint16(fo, lo & 0xffff);
      else v.setUint8(fo, lo & 0xff);
      return;
    }
    for (let i = 0; i < size; i++) {
      const j = size === 8 ? i : i + 8 - size;
      const b = j < 4 ? hi >>> (24 - 8 * j) : lo >>> (24 - 8 * (j - 4));
      this.setRamByte(r, addr + i, b & 0xff);
    }
  }

  /**
   * A load at a physical address. `cpu` is the accessing vCPU for MMIO owners (TIMA).
   * Unbacked → all-ones (of the access size) and a guest error.
   */
  load(addr: number, size: AccessSize, out: Word64, cpu: number = NO_CPU): void {
    const r = this.span(addr, size);
    if (r === null) {
      this.loadRejected(addr, size, out);
      return;
    }
    if (r.owner !== null) r.owner.load(addr - r.base, size, cpu, out);
    else this.ramLoad(r, addr, size, out);
  }

  /** A store at a physical address; unbacked → ignored with a guest error. */
  store(addr: number, size: AccessSize, hi: number, lo: number, cpu: number = NO_CPU): void {
    const r = this.span(addr, size);
    if (r === null) {
      this.rejected(addr, size, true);
      return;
    }
    if (r.owner !== null) r.owner.store(addr - r.base, size, hi, lo, cpu);
    else this.ramStore(r, addr, size, hi, lo);
  }

  /** A load nothing answers: all-ones of the access size. */
  private loadRejected(addr: number, size: AccessSize, out: Word64): void {
    this.rejected(addr, size, false);
    if (size === 8) out.setOnes();
    else out.set(0, size === 4 ? 0xffff_ffff : size === 2 ? 0xffff : 0xff);
  }

  /**
   * The guest error of an access nothing answers (out of the access paths' line: they stay
   * small enough for the JIT to inline).
   */
  private rejected(addr: number, size: AccessSize, write: boolean): void {
    this.trace.guestError(
      `Invalid ${write ? 'write' : 'read'} at addr 0x${hex(addr).toUpperCase()}, size ${size}, region '(unassigned)', reason: rejected`,
    );
  }

  /** DMA read of a big-endian u32 from RAM; 0xFFFFFFFF where not RAM. */
  loadBe32(addr: number): number {
    const r = this.span(addr, 4);
    if (r === null || r.owner !== null) return 0xffff_ffff;
    this.ramLoad(r, addr, 4, this.tmp);
    return this.tmp.lo;
  }

  /** DMA write of a big-endian u32 to RAM; false where not RAM. */
  storeBe32(addr: number, value: number): boolean {
    const r = this.span(addr, 4);
    if (r === null || r.owner !== null) return false;
    this.ramStore(r, addr, 4, 0, value | 0);
    return true;
  }

  /** True when `[addr, addr+len)` is RAM (possibly spanning adjacent RAM regions). */
  isRam(addr: number, len: number): boolean {
    let a = addr;
    const end = addr + len;
    while (a < end) {
      const r = this.find(a);
      if (r === null || r.owner !== null) return false;
      a = r.end;
    }
    return len >= 0;
  }

  /** Copy RAM into `dst` (unbacked bytes read as 0xFF). Not for hot paths. */
  readBytes(addr: number, dst: Uint8Array): void {
    for (let i = 0; i < dst.length; i++) {
      const r = this.find(addr + i);
      dst[i] = r !== null && r.owner === null ? this.ramByte(r, addr + i) : 0xff;
    }
  }

  /** Copy `src` into RAM; returns false (writing nothing) unless the whole range is RAM. */
  writeBytes(addr: number, src: Uint8Array): boolean {
    if (!this.isRam(addr, src.length)) return false;
    for (let i = 0; i < src.length; i++) this.setRamByte(this.find(addr + i)!, addr + i, src[i]!);
    return true;
  }
}
