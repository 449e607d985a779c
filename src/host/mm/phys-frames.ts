/**
 * The memory manager's {@link HostFrames} over the machine's one physical memory
 * (`hw/phys-mem.ts`): a pool of RAM frames registered as a PhysMem RAM region, handed out one at
 * a time, and every other pfn (the XIVE's ESB and TIMA pages, a PHB's device ESB pages)
 * dispatched to whatever PhysMem has mapped there. The chip's DMA (EQ entries written through
 * `PhysMem.storeBe32`) therefore lands in the very frames the VMM process and the guest read.
 *
 * Frames carry a pin count (`get_page` / `put_page` on a page KVM holds, such as a pinned EQ
 * page): a frame freed by the memory manager while pinned stays allocated until its last unpin,
 * as a page with an elevated refcount does.
 */

import type { AccessSize, Word64 } from '../../hw/mmio.ts';
import { PHYS_FRAME_SIZE, type PhysMem, type PhysRegion } from '../../hw/phys-mem.ts';
import { PAGE_SCALE, PAGE_SIZE } from './constants.ts';
import type { HostFrames } from './frames.ts';

const FREE = 0;
const USED = 1;
/** Freed by the mm while pinned: returned to the pool on the last unpin. */
const ORPHAN = 2;

/**
 * RAM frames of the host pool in PhysMem, plus pass-through access to every other physical
 * frame.
 */
export class PhysFrames implements HostFrames {
  readonly phys: PhysMem;
  /** The pool's RAM region in {@link phys}: frame `i` of it is pfn `ramBasePfn + i`. */
  private readonly ram: PhysRegion;
  readonly ramBasePfn: number;
  readonly ramFrames: number;
  /** Frames currently allocated (including orphans still pinned). */
  allocated: number;
  /** Frames ever allocated (a count of the allocation path running). */
  allocations: number;
  private readonly state: Uint8Array;
  private readonly pins: Uint32Array;
  private readonly free: number[];
  private highWater: number;

  /** Registers RAM `[ramBase, ramBase + ramFrames·64 KiB)` in `phys` as 'host.ram'. */
  constructor(phys: PhysMem, ramBase: number, ramFrames: number) {
    if (ramBase % PAGE_SIZE !== 0 || !Number.isSafeInteger(ramBase) || ramBase < 0) {
      throw new Error(`PhysFrames: RAM base 0x${ramBase.toString(16)} is not page-aligned`);
    }
    if (!Number.isInteger(ramFrames) || ramFrames <= 0)
      throw new Error(`PhysFrames: bad frame count ${ramFrames}`);
    if (PHYS_FRAME_SIZE !== PAGE_SIZE) throw new Error('PhysFrames: PhysMem frames are not pages');
    this.ram = phys.addRam(ramBase, ramFrames * PAGE_SIZE, 'host.ram');
    this.phys = phys;
    this.ramBasePfn = ramBase * PAGE_SCALE;
    this.ramFrames = ramFrames;
    this.allocated = 0;
    this.allocations = 0;
    this.state = new Uint8Array(ramFrames);
    this.pins = new Uint32Array(ramFrames);
    this.free = [];
    this.highWater = 0;
  }

  allocRam(): number {
    let i: number;
    if (this.free.length > 0) i = this.free.pop()!;
    else if (this.highWater < this.ramFrames) i = this.highWater++;
    else return -1;
    this.state[i] = USED;
    this.allocated++;
    this.allocations++;
    return this.ramBasePfn + i;
  }

  freeRam(pfn: number): void {
    const i = this.index(pfn, 'freeing');
    if (this.state[i] !== USED) throw new Error(`PhysFrames: double free of pfn 0x${pfn.toString(16)}`);
    if (this.pins[i]! > 0) {
      this.state[i] = ORPHAN;
      return;
    }
    this.release(i);
  }

  private release(i: number): void {
    this.phys.discardFrame((this.ramBasePfn + i) * PAGE_SIZE);
    this.state[i] = FREE;
    this.free.push(i);
    this.allocated--;
  }

  isRam(pfn: number): boolean {
    return pfn >= this.ramBasePfn && pfn < this.ramBasePfn + this.ramFrames;
  }

  /** True when `pfn` is a RAM frame of the pool that is currently allocated (or pinned orphan). */
  isAllocated(pfn: number): boolean {
    return this.isRam(pfn) && this.state[pfn - this.ramBasePfn] !== FREE;
  }

  copyRam(dstPfn: number, srcPfn: number): void {
    this.index(dstPfn, 'copying to');
    this.index(srcPfn, 'copying from');
    this.phys.copyFrame(dstPfn * PAGE_SIZE, srcPfn * PAGE_SIZE);
  }

  /** `get_page`: pin a RAM frame (it outlives a free by the memory manager). */
  pin(pfn: number): void {
    const i = this.index(pfn, 'pinning');
    if (this.state[i] === FREE) throw new Error(`PhysFrames: pinning free pfn 0x${pfn.toString(16)}`);
    this.pins[i]!++;
  }

  /** `put_page` of a {@link pin}. */
  unpin(pfn: number): void {
    const i = this.index(pfn, 'unpinning');
    if (this.pins[i] === 0) throw new Error(`PhysFrames: unpinning unpinned pfn 0x${pfn.toString(16)}`);
    if (--this.pins[i]! === 0 && this.state[i] === ORPHAN) this.release(i);
  }

  /** Pin count of a RAM frame (0 for anything else). */
  pinCount(pfn: number): number {
    return this.isRam(pfn) ? this.pins[pfn - this.ramBasePfn]! : 0;
  }

  load(pfn: number, offset: number, size: AccessSize, cpu: number, out: Word64): void {
    const i = pfn - this.ramBasePfn;
    if (i >= 0 && i < this.ramFrames && this.state[i] === FREE) {
      throw new Error(`PhysFrames: load from free RAM frame 0x${pfn.toString(16)}`);
    }
    this.phys.load(pfn * PAGE_SIZE + offset, size, out, cpu);
  }

  store(pfn: number, offset: number, size: AccessSize, hi: number, lo: number, cpu: number): void {
    const i = pfn - this.ramBasePfn;
    if (i >= 0 && i < this.ramFrames && this.state[i] === FREE) {
      throw new Error(`PhysFrames: store to free RAM frame 0x${pfn.toString(16)}`);
    }
    this.phys.store(pfn * PAGE_SIZE + offset, size, hi, lo, cpu);
  }

  ramBytes(pfn: number, write: boolean): DataView | null {
    if (this.state[this.index(pfn, 'copying')] === FREE)
      throw new Error(`PhysFrames: copy with free RAM frame 0x${pfn.toString(16)}`);
    return this.phys.regionFrame(this.ram, pfn - this.ramBasePfn, write);
  }

  private index(pfn: number, what: string): number {
    if (!this.isRam(pfn))
      throw new Error(`PhysFrames: ${what} pfn 0x${pfn.toString(16)} that is not host RAM`);
    return pfn - this.ramBasePfn;
  }
}
