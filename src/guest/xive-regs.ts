/**
 * The guest's own copy of the XIVE and hypervisor-call constants it programs against (Linux
 * `asm/xive-regs.h`, `asm/xive.h`, `asm/hvcall.h`, `sysdev/xive/spapr.c`). The guest imports
 * nothing from `hw/`, `host/` or `vmm/`: like Linux, it carries its own headers.
 */

// --- ESB MMIO (asm/xive-regs.h) ------------------------------------------------------------------

export const XIVE_ESB_LOAD_EOI = 0x000;
export const XIVE_ESB_STORE_EOI = 0x400;
export const XIVE_ESB_LD_ST_MO = 0x40;
export const XIVE_ESB_GET = 0x800;
export const XIVE_ESB_SET_PQ_00 = 0xc00;
export const XIVE_ESB_SET_PQ_01 = 0xd00;
export const XIVE_ESB_SET_PQ_10 = 0xe00;
export const XIVE_ESB_SET_PQ_11 = 0xf00;
export const XIVE_ESB_VAL_P = 0x2;
export const XIVE_ESB_VAL_Q = 0x1;
/** All ones from a failed ESB load (`(u8)-1`). */
export const XIVE_ESB_INVALID = 0xff;

// --- TIMA (asm/xive-regs.h) -----------------------------------------------------------------------

export const TM_QW1_OS = 0x10;
export const TM_CPPR = 0x1;
/** Load16 on the OS page: acknowledge, returns NSR << 8 | CPPR. */
export const TM_SPC_ACK_OS_REG = 0x810;
export const TM_QW1_NSR_EO = 0x80;

// --- asm/xive.h -----------------------------------------------------------------------------------

export const XIVE_IRQ_FLAG_STORE_EOI = 0x01;
export const XIVE_IRQ_FLAG_LSI = 0x02;
export const XIVE_IRQ_FLAG_H_INT_ESB = 0x20;
export const XIVE_IRQ_FLAG_NO_EOI = 0x80;
export const XIVE_INVALID_CHIP_ID = -1;
export const XIVE_MAX_QUEUES = 8;
/** EISN programmed into a shut-down source (`XIVE_BAD_IRQ`). */
export const XIVE_BAD_IRQ = 0x7fff_ffff;
export const XIVE_INVALID_TARGET = -1;

// --- sPAPR hcall ABI (asm/hvcall.h, sysdev/xive/spapr.c) -------------------------------------------

export const H_SUCCESS = 0;
export const H_BUSY = 1;
export const H_LONG_BUSY_ORDER_1_MSEC = 9900;
export const H_LONG_BUSY_ORDER_100_SEC = 9905;

export const H_INT_GET_SOURCE_INFO = 0x3a8;
export const H_INT_SET_SOURCE_CONFIG = 0x3ac;
export const H_INT_GET_SOURCE_CONFIG = 0x3b0;
export const H_INT_GET_QUEUE_INFO = 0x3b4;
export const H_INT_SET_QUEUE_CONFIG = 0x3b8;
export const H_INT_GET_QUEUE_CONFIG = 0x3bc;
export const H_INT_ESB = 0x3c8;
export const H_INT_SYNC = 0x3cc;
export const H_INT_RESET = 0x3d0;
/** `ibm,client-architecture-support` as SLOF forwards it to the hypervisor. */
export const KVMPPC_H_CAS = 0xf002;

/** H_INT_GET_SOURCE_INFO output flags (PPC bit numbering: bit 63 = 0x1). */
export const XIVE_SRC_H_INT_ESB = 0x8;
export const XIVE_SRC_LSI = 0x4;
export const XIVE_SRC_TRIGGER = 0x2;
export const XIVE_SRC_STORE_EOI = 0x1;
/** H_INT_SET_SOURCE_CONFIG flags. */
export const XIVE_SRC_SET_EISN = 0x2;
export const XIVE_SRC_MASK = 0x1;
/** H_INT_SET_QUEUE_CONFIG flags. */
export const XIVE_EQ_ALWAYS_NOTIFY = 0x1;
/** H_INT_ESB flags. */
export const XIVE_ESB_FLAG_STORE = 0x1;

// --- errno (the values the kernel paths return, negated) -------------------------------------------

export const EIO = 5;
export const ENXIO = 6;
export const ENOMEM = 12;
export const EBUSY = 16;
export const ENODEV = 19;
export const EINVAL = 22;
export const ENOSPC = 28;

/** `H_IS_LONG_BUSY(rc) || rc == H_BUSY`: the call must be retried (`plpar_busy_delay`). */
export function hcallBusy(rc: number): boolean {
  return rc === H_BUSY || (rc >= H_LONG_BUSY_ORDER_1_MSEC && rc <= H_LONG_BUSY_ORDER_100_SEC);
}
