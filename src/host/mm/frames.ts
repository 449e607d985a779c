/**
 * Host physical frames as the memory manager sees them: RAM frames handed out one at a time for
 * anonymous memory, and MMIO frames (IPI and device ESB pages, TIMA pages) owned by an
 * {@link MmioDevice} and addressable by pfn, so that a PTE to an MMIO pfn dispatches the access
 * to its owner.
 *
 * This is the memory manager's own registry behind the small {@link HostFrames} interface;
 * `hw/phys-mem.ts` can stand behind the same interface later without changes here.
 *
 * RAM words are big-endian, as in `hw/phys-mem.ts`, so the same frame reads the same whether a
 * process or a guest reaches it.
 */

import type { AccessSize, MmioDevice, Word64 } from '../../hw/mmio.ts';
import { TRACE_GUEST_ERROR, type TraceSink } from '../../sim/trace-sink.ts';
import { PAGE_SCALE, PAGE_SIZE } from './constants.ts';

/** What the memory manager needs from physical memory. */
export interface HostFrames {
  /** A zeroed RAM frame, or -1 when RAM is exhausted (the fault then reports VM_FAULT_OOM). */
  allocRam(): number;
  /** Return a RAM frame from {@link allocRam}. */
  freeRam(pfn: number): void;
  isRam(pfn: number): boolean;
  /** Copy a whole RAM frame (fork of private anonymous memory). */
  copyRam(dstPfn: number, srcPfn: number): void;
  load(pfn: number, offset: number, size: AccessSize, cpu: number, out: Word64): void;
  store(pfn: number, offset: number, size: AccessSize, hi: number, lo: number, cpu: number): void;
  /**
   * The bytes of allocated RAM frame `pfn`, for copies (no access side effects): null for a
   * frame that reads as zeros (never written) when `write` is false.
   */
  ramBytes(pfn: number, write: boolean): DataView | null;
}

/** Configuration of a {@link FrameTable}. */
export interface FrameTableConfig {
  /** Physical address of the RAM pool (64 KiB aligned). */
  ramBase: number;
  /** Number of RAM frames in the pool. */
  ramFrames: number;
}

class MmioRange {
  readonly basePfn: number;
  readonly endPfn: number;
  readonly owner: MmioDevice;
  readonly name: string;
  constructor(basePfn: number, endPfn: number, owner: MmioDevice, name: string) {
    this.basePfn = basePfn;
    this.endPfn = endPfn;
    this.owner = owner;
    this.name = name;
  }
}

const hex = (n: number): string => n.toString(16);

/**
 * The frame registry: a RAM pool with a LIFO free list (deterministic reuse) and sorted MMIO
 * ranges looked up by binary search with a one-entry cache (MMIO pfns exceed 2^30, so no Map).
 */
export class FrameTable implements HostFrames {
  readonly ramBasePfn: number;
  readonly ramFrames: number;
  /** Frames currently allocated. */
  allocated: number;
  /** Frames ever allocated (a count of the allocation path running). */
  allocations: number;
  private readonly trace: TraceSink;
  private readonly ram: (DataView | null)[];
  private readonly free: number[];
  private highWater: number;
  private mmio: MmioRange[];
  private last: MmioRange | null;

  constructor(cfg: FrameTableConfig, trace: TraceSink) {
    if (cfg.ramBase % PAGE_SIZE !== 0 || cfg.ramBase < 0 || !Number.isSafeInteger(cfg.ramBase)) {
      throw new Error(`FrameTable: RAM base 0x${hex(cfg.ramBase)} is not page-aligned`);
    }
    this.ramBasePfn = cfg.ramBase * PAGE_SCALE;
    this.ramFrames = cfg.ramFrames;
    this.allocated = 0;
    this.allocations = 0;
    this.trace = trace;
    this.ram = new Array<DataView | null>(cfg.ramFrames).fill(null);
    this.free = [];
    this.highWater = 0;
    this.mmio = [];
    this.last = null;
  }

  allocRam(): number {
    let i: number;
    if (this.free.length > 0) i = this.free.pop()!;
    else if (this.highWater < this.ramFrames) i = this.highWater++;
    else return -1;
    this.ram[i] = new DataView(new ArrayBuffer(PAGE_SIZE));
    this.allocated++;
    this.allocations++;
    return this.ramBasePfn + i;
  }

  freeRam(pfn: number): void {
    const i = pfn - this.ramBasePfn;
    if (!this.isRam(pfn) || this.ram[i] === null) {
      throw new Error(`FrameTable: freeing pfn 0x${hex(pfn)} that is not an allocated RAM frame`);
    }
    this.ram[i] = null;
    this.free.push(i);
    this.allocated--;
  }

  isRam(pfn: number): boolean {
    return pfn >= this.ramBasePfn && pfn < this.ramBasePfn + this.ramFrames;
  }

  copyRam(dstPfn: number, srcPfn: number): void {
    const d = this.frame(dstPfn);
    const s = this.frame(srcPfn);
    new Uint8Array(d.buffer).set(new Uint8Array(s.buffer));
  }

  /** Register MMIO frames `[base, base+size)`; the owner receives offsets relative to `base`. */
  addMmio(base: number, size: number, owner: MmioDevice, name: string): void {
    if (base % PAGE_SIZE !== 0 || size % PAGE_SIZE !== 0 || size <= 0 || !Number.isSafeInteger(base + size)) {
      throw new Error(`FrameTable: MMIO '${name}' at 0x${hex(base)} size 0x${hex(size)} is not page-aligned`);
    }
    const basePfn = base * PAGE_SCALE;
    const endPfn = basePfn + size * PAGE_SCALE;
    if (basePfn < this.ramBasePfn + this.ramFrames && this.ramBasePfn < endPfn) {
      throw new Error(`FrameTable: MMIO '${name}' at 0x${hex(base)} overlaps RAM`);
    }
    for (const r of this.mmio) {
      if (basePfn < r.endPfn && r.basePfn < endPfn) {
        throw new Error(`FrameTable: MMIO '${name}' at 0x${hex(base)} overlaps '${r.name}'`);
      }
    }
    this.mmio.push(new MmioRange(basePfn, endPfn, owner, name));
    this.mmio.sort((a, b) => a.basePfn - b.basePfn);
  }

  /** Remove the MMIO range starting at `base` (device unplug). Stale PTEs then read all-ones. */
  removeMmio(base: number): void {
    const basePfn = base * PAGE_SCALE;
    const i = this.mmio.findIndex((r) => r.basePfn === basePfn);
    if (i < 0) throw new Error(`FrameTable: no MMIO range at 0x${hex(base)}`);
    this.mmio.splice(i, 1);
    this.last = null;
  }

  /** Owner name of an MMIO pfn, 'ram' for a RAM frame, or null. */
  ownerName(pfn: number): string | null {
    if (this.isRam(pfn)) return 'ram';
    return this.findMmio(pfn)?.name ?? null;
  }

  load(pfn: number, offset: number, size: AccessSize, cpu: number, out: Word64): void {
    const i = pfn - this.ramBasePfn;
    if (i >= 0 && i < this.ramFrames) {
      const f = this.ram[i];
      if (!f) throw new Error(`FrameTable: load from free RAM frame 0x${hex(pfn)}`);
      if (size === 8) out.set(f.getUint32(offset), f.getUint32(offset + 4));
      else if (size === 4) out.set(0, f.getUint32(offset));
      else if (size === 2) out.set(0, f.getUint16(offset));
      else out.set(0, f.getUint8(offset));
      return;
    }
    const r = this.findMmio(pfn);
    if (r === null) {
      this.unbacked('load', pfn, offset);
      out.setOnes();
      if (size !== 8) out.set(0, size === 4 ? 0xffff_ffff : 2 ** (size * 8) - 1);
      return;
    }
    r.owner.load((pfn - r.basePfn) * PAGE_SIZE + offset, size, cpu, out);
  }

  store(pfn: number, offset: number, size: AccessSize, hi: number, lo: number, cpu: number): void {
    const i = pfn - this.ramBasePfn;
    if (i >= 0 && i < this.ramFrames) {
      const f = this.ram[i];
      if (!f) throw new Error(`FrameTable: store to free RAM frame 0x${hex(pfn)}`);
      if (size === 8) {
        f.setUint32(offset, hi >>> 0);
        f.setUint32(offset + 4, lo >>> 0);
      } else if (size === 4) f.setUint32(offset, lo >>> 0);
      else if (size === 2) f.setUint16(offset, lo & 0xffff);
      else f.setUint8(offset, lo & 0xff);
      return;
    }
    const r = this.findMmio(pfn);
    if (r === null) {
      this.unbacked('store', pfn, offset);
      return;
    }
    r.owner.store((pfn - r.basePfn) * PAGE_SIZE + offset, size, hi, lo, cpu);
  }

  ramBytes(pfn: number, _write: boolean): DataView {
    return this.frame(pfn);
  }

  private frame(pfn: number): DataView {
    const f = this.isRam(pfn) ? this.ram[pfn - this.ramBasePfn] : null;
    if (!f) throw new Error(`FrameTable: pfn 0x${hex(pfn)} is not an allocated RAM frame`);
    return f;
  }

  private unbacked(op: string, pfn: number, offset: number): void {
    if (this.trace.mask & TRACE_GUEST_ERROR) {
      this.trace.guestError(`host phys: ${op} at unbacked address 0x${hex(pfn * PAGE_SIZE + offset)}`);
    }
  }

  private findMmio(pfn: number): MmioRange | null {
    const c = this.last;
    if (c !== null && pfn >= c.basePfn && pfn < c.endPfn) return c;
    const m = this.mmio;
    let lo = 0;
    let hi = m.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (m[mid]!.endPfn <= pfn) lo = mid + 1;
      else hi = mid;
    }
    const r = m[lo];
    if (r !== undefined && r.basePfn <= pfn) {
      this.last = r;
      return r;
    }
    return null;
  }
}
