/**
 * XIVE register constants and bit layouts (POWER9, gen1).
 *
 * Names and values follow QEMU include/hw/ppc/xive_regs.h and include/hw/ppc/xive.h, and Linux
 * arch/powerpc/include/asm/xive-regs.h, so a grep works across the three code bases. Bit masks
 * use IBM numbering (bit 0 = MSB); 64-bit structures (the EAS) are split into `_HI` / `_LO`
 * masks over the `[hi, lo]` u32 pair.
 */

// ---------------------------------------------------------------------------------------------
// ESB (Event State Buffer) MMIO
// ---------------------------------------------------------------------------------------------

/** ESB page geometries (`esb_shift`): 4 KiB, 2 × 4 KiB, 64 KiB, 2 × 64 KiB per source. */
export const XIVE_ESB_4K = 12;
export const XIVE_ESB_4K_2PAGE = 13;
export const XIVE_ESB_64K = 16;
export const XIVE_ESB_64K_2PAGE = 17;

/** Load: EOI (0x000–0x7FF on the management page). */
export const XIVE_ESB_LOAD_EOI = 0x000;
/** Store: EOI, only if the source supports StoreEOI. */
export const XIVE_ESB_STORE_EOI = 0x400;
/** Load: return PQ. */
export const XIVE_ESB_GET = 0x800;
/** Store (newer QEMU only): forward without PQ check; ignored by the 7.2 model. */
export const XIVE_ESB_INJECT = 0x800;
export const XIVE_ESB_SET_PQ_00 = 0xc00;
export const XIVE_ESB_SET_PQ_01 = 0xd00;
export const XIVE_ESB_SET_PQ_10 = 0xe00;
export const XIVE_ESB_SET_PQ_11 = 0xf00;
/** Load-after-store ordering modifier (Linux adds it to SET_PQ_10 with StoreEOI). */
export const XIVE_ESB_LD_ST_MO = 0x40;

export const XIVE_ESB_VAL_P = 0x2;
export const XIVE_ESB_VAL_Q = 0x1;
/** All ones: the MMIO failed. */
export const XIVE_ESB_INVALID = 0xff;

/** PQ states. */
export const XIVE_ESB_RESET = 0x0;
export const XIVE_ESB_OFF = 0x1;
export const XIVE_ESB_PENDING = 0x2;
export const XIVE_ESB_QUEUED = 0x3;

// ---------------------------------------------------------------------------------------------
// EAS (Event Assignment Structure): one 64-bit word as [hi, lo]
// ---------------------------------------------------------------------------------------------

/** EAS bit 0. */
export const EAS_VALID_HI = 0x8000_0000;
/** EAS bits 4–7. */
export const EAS_END_BLOCK_HI = 0x0f00_0000;
/** EAS bits 8–31. */
export const EAS_END_INDEX_HI = 0x00ff_ffff;
/** EAS bit 32. */
export const EAS_MASKED_LO = 0x8000_0000;
/** EAS bits 33–63 (EISN). */
export const EAS_END_DATA_LO = 0x7fff_ffff;

// ---------------------------------------------------------------------------------------------
// END (Event Notification Descriptor): 8 words
// ---------------------------------------------------------------------------------------------

export const END_W0_VALID = 0x8000_0000;
/** "q": enqueue. */
export const END_W0_ENQUEUE = 0x4000_0000;
/** "n": unconditional notify (skip ESn). */
export const END_W0_UCOND_NOTIFY = 0x2000_0000;
/** "b": backlog into the NVT when not dispatched. */
export const END_W0_BACKLOG = 0x1000_0000;
/** "p": precluded escalation control. */
export const END_W0_PRECL_ESC_CTL = 0x0800_0000;
/** "e": escalate. */
export const END_W0_ESCALATE_CTL = 0x0400_0000;
/** "u": unconditional escalation (skip ESe). */
export const END_W0_UNCOND_ESCALATE = 0x0200_0000;
/** "s": silent escalation. */
export const END_W0_SILENT_ESCALATE = 0x0100_0000;
/** Bits 12–15: EQ size, `4 KiB << qsize`. */
export const END_W0_QSIZE = 0x000f_0000;
export const END_W0_SW0 = 0x0000_8000;
export const END_W0_FIRMWARE = END_W0_SW0;
export const END_W0_HWDEP = 0x0000_00ff;

/** Bits 0–1: ESn PQ pair. */
export const END_W1_ESn = 0xc000_0000;
export const END_W1_ESn_P = 0x8000_0000;
export const END_W1_ESn_Q = 0x4000_0000;
/** Bits 2–3: ESe PQ pair. */
export const END_W1_ESe = 0x3000_0000;
export const END_W1_ESe_P = 0x2000_0000;
export const END_W1_ESe_Q = 0x1000_0000;
/** Bit 9. */
export const END_W1_GENERATION = 0x0040_0000;
/** Bits 10–31: queue index. */
export const END_W1_PAGE_OFF = 0x003f_ffff;

export const END_W2_MIGRATION_REG = 0xf000_0000;
export const END_W2_EQ_ADDR_HI = 0x0fff_ffff;
export const END_W3_EQ_ADDR_LO = 0xffff_ffff;

export const END_W4_ESC_END_BLOCK = 0x0f00_0000;
export const END_W4_ESC_END_INDEX = 0x00ff_ffff;
export const END_W5_ESC_END_DATA = 0x7fff_ffff;

/** Bit 8. */
export const END_W6_FORMAT_BIT = 0x0080_0000;
/** Bits 9–12. */
export const END_W6_NVT_BLOCK = 0x0078_0000;
/** Bits 13–31. */
export const END_W6_NVT_INDEX = 0x0007_ffff;

export const END_W7_F0_IGNORE = 0x8000_0000;
export const END_W7_F0_BLK_GROUPING = 0x4000_0000;
/** Bits 8–15. */
export const END_W7_F0_PRIORITY = 0x00ff_0000;
export const END_W7_F1_WAKEZ = 0x8000_0000;
/** Bits 1–31. */
export const END_W7_F1_LOG_SERVER_ID = 0x7fff_ffff;

// ---------------------------------------------------------------------------------------------
// NVT (Notification Virtual Target): 16 words
// ---------------------------------------------------------------------------------------------

export const NVT_W0_VALID = 0x8000_0000;
export const NVT_W1_EQ_BLOCK = 0xf000_0000;
export const NVT_W1_EQ_INDEX = 0x0fff_ffff;
/** Bits 16–23: backlog of pending priorities recorded while not dispatched. */
export const NVT_W4_IPB = 0x0000_ff00;
export const NVT_W8_GRP_VALID = 0x8000_0000;

/** CAM line: `blk << 19 | idx`. */
export const XIVE_NVT_SHIFT = 19;

export const XIVE_PRIORITY_MAX = 7;

// ---------------------------------------------------------------------------------------------
// TIMA (Thread Interrupt Management Area)
// ---------------------------------------------------------------------------------------------

export const TM_SHIFT = 16;

/** Ring offsets inside the 64-byte thread context. */
export const TM_QW0_USER = 0x00;
export const TM_QW1_OS = 0x10;
export const TM_QW2_HV_POOL = 0x20;
export const TM_QW3_HV_PHYS = 0x30;

/** Byte offsets inside a ring. */
export const TM_NSR = 0x0;
export const TM_CPPR = 0x1;
export const TM_IPB = 0x2;
export const TM_LSMFB = 0x3;
export const TM_ACK_CNT = 0x4;
export const TM_INC = 0x5;
export const TM_AGE = 0x6;
export const TM_PIPR = 0x7;
export const TM_WORD0 = 0x0;
export const TM_WORD1 = 0x4;
export const TM_WORD2 = 0x8;
export const TM_WORD3 = 0xc;

/** QW0 W2. */
export const TM_QW0W2_VU = 0x8000_0000;
export const TM_QW0W2_LOGIC_SERV = 0x7fff_ffff;
/** QW1 W2. */
export const TM_QW1W2_VO = 0x8000_0000;
export const TM_QW1W2_HO = 0x4000_0000;
export const TM_QW1W2_OS_CAM = 0x00ff_ffff;
/** QW2 W2. */
export const TM_QW2W2_VP = 0x8000_0000;
export const TM_QW2W2_POOL_CAM = 0x00ff_ffff;
/** QW3 W2. */
export const TM_QW3W2_VT = 0x8000_0000;
export const TM_QW3W2_LP = 0x0200_0000;
export const TM_QW3W2_LE = 0x0100_0000;
export const TM_QW3W2_T = 0x0000_0001;

/** NSR bits. */
export const TM_QW0_NSR_EB = 0x80;
export const TM_QW1_NSR_EO = 0x80;
/** QW3 NSR HE: a 2-bit field at bits 0–1 of the byte. */
export const TM_QW3_NSR_HE = 0xc0;
export const TM_QW3_NSR_HE_NONE = 0;
export const TM_QW3_NSR_HE_POOL = 1;
export const TM_QW3_NSR_HE_PHYS = 2;
export const TM_QW3_NSR_HE_LSI = 3;
export const TM_QW3_NSR_I = 0x20;

/** Bit 11 of a TIMA page offset: the special-operation region. */
export const TM_SPECIAL_OP = 0x800;
export const TM_SPC_ACK_EBB = 0x800;
export const TM_SPC_PUSH_USR_CTX = 0x808;
export const TM_SPC_PULL_USR_CTX = 0x808;
export const TM_SPC_ACK_OS_REG = 0x810;
export const TM_SPC_SET_OS_PENDING = 0x812;
export const TM_SPC_PULL_OS_CTX = 0x818;
export const TM_SPC_PULL_POOL_CTX = 0x828;
export const TM_SPC_ACK_HV_REG = 0x830;
export const TM_SPC_PULL_PHYS_CTX = 0x838;
export const TM_SPC_PULL_USR_CTX_OL = 0xc08;
export const TM_SPC_ACK_OS_EL = 0xc10;
export const TM_SPC_ACK_HV_POOL_EL = 0xc20;
export const TM_SPC_ACK_HV_EL = 0xc30;

/** TIMA pages, most privileged first. */
export const XIVE_TM_HW_PAGE = 0;
export const XIVE_TM_HV_PAGE = 1;
export const XIVE_TM_OS_PAGE = 2;
export const XIVE_TM_USER_PAGE = 3;

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

/**
 * The IPB bit of a priority: `0x80 >> p`, or 0 for a priority above {@link XIVE_PRIORITY_MAX}.
 *
 * @remarks Models hw/intc/xive.c:xive_priority_to_ipb().
 */
export function xivePriorityToIpb(priority: number): number {
  return priority > XIVE_PRIORITY_MAX ? 0 : 0x80 >>> priority;
}

/**
 * The most favoured pending priority of an IPB (its leading one), or 0xFF when empty.
 *
 * @remarks Models hw/intc/xive.c:ipb_to_pipr().
 */
export function xiveIpbToPipr(ipb: number): number {
  return (ipb & 0xff) === 0 ? 0xff : Math.clz32(ipb & 0xff) - 24;
}

/**
 * The CAM line of an NVT.
 *
 * @remarks Models include/hw/ppc/xive.h:xive_nvt_cam_line().
 */
export function xiveNvtCam(blk: number, idx: number): number {
  return ((blk << XIVE_NVT_SHIFT) | idx) >>> 0;
}

/** `XIVE_EAS_BLOCK(lisn)`: bits 31:28 of a LISN. */
export function xiveEasBlock(lisn: number): number {
  return lisn >>> 28;
}

/** `XIVE_EAS_INDEX(lisn)`: bits 27:0 of a LISN. */
export function xiveEasIndex(lisn: number): number {
  return lisn & 0x0fff_ffff;
}

/** `XIVE_SRCNO(blk, idx)`: the LISN of a block/index pair. */
export function xiveSrcno(blk: number, idx: number): number {
  return ((blk << 28) | (idx & 0x0fff_ffff)) >>> 0;
}
