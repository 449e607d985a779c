/**
 * The access contract every MMIO owner implements, and the DMA view devices use to write memory.
 *
 * Values are exchanged as u32 words so that no access allocates: a load fills a caller-owned
 * {@link Word64} (`hi` is 0 for accesses of 1, 2 or 4 bytes, and `lo` holds the value
 * zero-extended), a store passes `hi`/`lo`. All values are host-order numbers; MMIO is
 * big-endian on POWER and the owner does the byte placement, as QEMU's `DEVICE_BIG_ENDIAN`
 * MemoryRegionOps do.
 */

/** Access width in bytes. */
export type AccessSize = 1 | 2 | 4 | 8;

/** A 64-bit value as two u32 halves; reused by callers to avoid allocation. */
export class Word64 {
  hi = 0;
  lo = 0;
  set(hi: number, lo: number): this {
    this.hi = hi >>> 0;
    this.lo = lo >>> 0;
    return this;
  }
  /** All-ones, what a failed or rejected load returns. */
  setOnes(): this {
    this.hi = 0xffff_ffff;
    this.lo = 0xffff_ffff;
    return this;
  }
  /** Exact value as a bigint (boundaries and printing only). */
  toBigInt(): bigint {
    return (BigInt(this.hi) << 32n) | BigInt(this.lo);
  }
}

/** No vCPU is performing the access (qtest, DMA, the VMM itself). */
export const NO_CPU = -1;

/**
 * An MMIO region owner. `offset` is relative to the start of the region; `cpu` is the index of
 * the accessing vCPU (what QEMU calls `current_cpu`), or {@link NO_CPU}.
 */
export interface MmioDevice {
  load(offset: number, size: AccessSize, cpu: number, out: Word64): void;
  store(offset: number, size: AccessSize, hi: number, lo: number, cpu: number): void;
}

/**
 * DMA into (guest) memory, as QEMU's `address_space_stl_be` / `address_space_ldl_be`.
 * Returns false where the address is not backed by RAM (MEMTX error).
 */
export interface DmaSpace {
  loadBe32(addr: number): number;
  /**
   * `value` is the word's 32 bits, as a u32 or as an int32 (the same bits: an int32 crosses a
   * call unboxed, a u32 of 2^31 or more is a heap number).
   */
  storeBe32(addr: number, value: number): boolean;
  /** True when `[addr, addr+len)` is RAM. */
  isRam(addr: number, len: number): boolean;
}
