/**
 * IBM bit-numbering helpers for 32-bit hardware words (bit 0 = most significant bit).
 *
 * @remarks Models QEMU include/hw/ppc/xive_regs.h `xive_get_field32` / `xive_set_field32`
 * and include/qemu/host-utils.h `PPC_BIT32` / `PPC_BITMASK32`. 64-bit registers are kept as
 * `[hi, lo]` u32 pairs: IBM bit `b` of a 64-bit word is bit `b` of `hi` when `b < 32`, else bit
 * `b - 32` of `lo`.
 */

/** `PPC_BIT32(b)`: the mask of IBM bit `b` (0..31) of a 32-bit word. */
export const ppcBit32 = (b: number): number => 0x8000_0000 >>> b;

/** `PPC_BITMASK32(bs, be)`: IBM bits `bs..be` inclusive of a 32-bit word. */
export const ppcBitmask32 = (bs: number, be: number): number =>
  ((0xffff_ffff >>> bs) & (0xffff_ffff << (31 - be))) >>> 0;

// The field's shift, `ctz32(mask)`, is written out in each helper: a nested call is one more
// level for the JIT's inlining budget on the router's hot path.

/** `xive_get_field32(mask, word)`. */
export const getField32 = (mask: number, w: number): number =>
  ((w & mask) >>> 0) >>> (31 - Math.clz32(mask & -mask));

/** `xive_set_field32(mask, word, value)`. */
export const setField32 = (mask: number, w: number, v: number): number =>
  ((w & ~mask) | ((v << (31 - Math.clz32(mask & -mask))) & mask)) >>> 0;

/** Unsigned 32-bit view of a number. */
export const u32 = (n: number): number => n >>> 0;

/** Byte-swap a u32 (used only where the real system is documented to swap). */
export const bswap32 = (v: number): number =>
  (((v & 0xff) << 24) | ((v & 0xff00) << 8) | ((v >>> 8) & 0xff00) | (v >>> 24)) >>> 0;
