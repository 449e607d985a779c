/**
 * The Thread Interrupt Management Area: 4 pages × 64 KiB (HW, HV, OS, USER) giving the
 * accessing thread a filtered view of its thread context plus the special operations.
 */

import { traceEvent } from '../../sim/trace-events.ts';
import type { TraceSink } from '../../sim/trace-sink.ts';
import * as traceSink from '../../sim/trace-sink.ts';
import * as bits from '../bits.ts';
import type { AccessSize, MmioDevice, Word64 } from '../mmio.ts';
import * as mmio from '../mmio.ts';
import * as regs from './regs.ts';
import type { XiveRouterBackend } from './router.ts';
import type { XiveTctx } from './tctx.ts';

// Module-local copies of the imported constants and helpers the hot paths use: V8 reads an
// imported binding through its module cell (a load and a hole check) at every use, while a
// module-local const folds to an immediate in optimised code.
const { NO_CPU } = mmio;
const { TRACE_TIMA } = traceSink;
const { getField32, setField32 } = bits;
const {
  NVT_W4_IPB,
  TM_CPPR,
  TM_QW0_USER,
  TM_QW1_OS,
  TM_QW1W2_VO,
  TM_QW2_HV_POOL,
  TM_QW2W2_VP,
  TM_QW3_HV_PHYS,
  TM_SHIFT,
  TM_SPC_ACK_HV_REG,
  TM_SPC_ACK_OS_REG,
  TM_SPC_PULL_OS_CTX,
  TM_SPC_PULL_POOL_CTX,
  TM_SPC_SET_OS_PENDING,
  TM_SPECIAL_OP,
  TM_WORD2,
  XIVE_NVT_SHIFT,
  XIVE_TM_HV_PAGE,
  XIVE_TM_OS_PAGE,
} = regs;

/** Size of the TIMA region: 4 pages of `1 << TM_SHIFT`. */
export const XIVE_TM_SIZE = 4 * 2 ** TM_SHIFT;
/** TIMA page size and its inverse, as constants (a computed power costs a Math.pow per access). */
const TM_PAGE_SIZE = 2 ** TM_SHIFT;
const TM_PAGE_INV = 2 ** -TM_SHIFT;

// Per-page, per-byte raw access permission (1 = write, 2 = read, 3 = both), QW0..QW3.
// The POOL ring's INC/AGE bytes (5, 6) are not accessible on P9 (they are P10 LGS/T).
// biome-ignore format: register table
const VIEWS = new Uint8Array([
  // HW page
  3, 0, 0, 0, 0, 0, 0, 0, 3, 3, 3, 3, 0, 0, 0, 0,
  3, 3, 3, 3, 3, 3, 0, 2, 3, 3, 3, 3, 0, 0, 0, 0,
  0, 0, 3, 3, 0, 0, 0, 0, 3, 3, 3, 3, 0, 0, 0, 0,
  3, 3, 3, 3, 0, 3, 0, 2, 3, 0, 0, 3, 3, 3, 3, 0,
  // HV page
  3, 0, 0, 0, 0, 0, 0, 0, 3, 3, 3, 3, 0, 0, 0, 0,
  3, 3, 3, 3, 3, 3, 0, 2, 3, 3, 3, 3, 0, 0, 0, 0,
  0, 0, 3, 3, 0, 0, 0, 0, 0, 3, 3, 3, 0, 0, 0, 0,
  3, 3, 3, 3, 0, 3, 0, 2, 3, 0, 0, 3, 0, 0, 0, 0,
  // OS page
  3, 0, 0, 0, 0, 0, 0, 0, 3, 3, 3, 3, 0, 0, 0, 0,
  2, 3, 2, 2, 2, 2, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0,
  0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
  0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
  // USER page
  3, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
  0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
  0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
  0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
]);

// Special operations (QEMU `xive_tm_operations`, 7.2). An op matches when its page is at or
// below the accessing page's privilege (`opPage >= page`), offset and size match exactly.
const OP_NONE = 0;
const OP_SET_OS_CPPR = 1;
const OP_PUSH_OS_CTX = 2;
const OP_SET_HV_CPPR = 3;
const OP_VT_PUSH = 4;
const OP_VT_POLL = 5;
const OP_ACK_OS_REG = 6;
const OP_SET_OS_PENDING = 7;
const OP_PULL_OS_CTX = 8;
const OP_ACK_HV_REG = 9;
const OP_PULL_POOL_CTX = 10;
/** The least privileged page allowed to use each op. */
const OP_PAGE = [
  -1,
  XIVE_TM_OS_PAGE,
  XIVE_TM_HV_PAGE,
  XIVE_TM_HV_PAGE,
  XIVE_TM_HV_PAGE,
  XIVE_TM_HV_PAGE,
  XIVE_TM_OS_PAGE,
  XIVE_TM_OS_PAGE,
  XIVE_TM_HV_PAGE,
  XIVE_TM_HV_PAGE,
  XIVE_TM_HV_PAGE,
];

const QW1_CPPR = TM_QW1_OS + TM_CPPR;
const QW1_WORD2 = TM_QW1_OS + TM_WORD2;
const QW3_CPPR = TM_QW3_HV_PHYS + TM_CPPR;
const QW3_WORD2 = TM_QW3_HV_PHYS + TM_WORD2;

/** Access directions, as numbers (the op lookup adds them in). */
const TM_READ = 0;
const TM_WRITE = 1;

/**
 * QEMU's `xive_tm_operations` (7.2): offset (`& 0xFFF`), access sizes, direction, op. Every op
 * sits in the ring registers (0x000–0x03F) or the special area (0x800–0x83F).
 */
const TM_OPERATIONS: readonly (readonly [number, readonly AccessSize[], number, number])[] = [
  [QW1_CPPR, [1], TM_WRITE, OP_SET_OS_CPPR],
  [QW1_WORD2, [4], TM_WRITE, OP_PUSH_OS_CTX],
  [QW3_CPPR, [1], TM_WRITE, OP_SET_HV_CPPR],
  [QW3_WORD2, [1], TM_WRITE, OP_VT_PUSH],
  [TM_SPC_SET_OS_PENDING, [1], TM_WRITE, OP_SET_OS_PENDING],
  [QW3_WORD2, [1], TM_READ, OP_VT_POLL],
  [TM_SPC_ACK_OS_REG, [2], TM_READ, OP_ACK_OS_REG],
  [TM_SPC_PULL_OS_CTX, [4, 8], TM_READ, OP_PULL_OS_CTX],
  [TM_SPC_ACK_HV_REG, [2], TM_READ, OP_ACK_HV_REG],
  [TM_SPC_PULL_POOL_CTX, [4, 8], TM_READ, OP_PULL_POOL_CTX],
];

/**
 * Slot of an access in {@link TM_OP_TABLE}, for an offset with no bit in 0x7C0 (the only
 * offsets an op has): bit 11 and bits 5:0 of the offset, the size and the direction.
 */
function tmOpSlot(op: number, size: number, dir: number): number {
  return (((op >>> 5) & 0x40) | (op & 0x3f)) * 32 + size * 2 + dir;
}

/** {@link TM_OPERATIONS} as a table by {@link tmOpSlot}: the op of an access, or OP_NONE. */
const TM_OP_TABLE = new Uint8Array(128 * 32);
for (const [op, sizes, dir, id] of TM_OPERATIONS) {
  for (const size of sizes) TM_OP_TABLE[tmOpSlot(op, size, dir)] = id;
}

/**
 * The special operation of an access, or OP_NONE. One table load instead of QEMU's scan.
 *
 * @remarks Models hw/intc/xive.c:xive_tm_find_op() (7.2 compares `offset & 0xFFF`).
 */
function xiveTmFindOp(op: number, size: number, dir: number, page: number): number {
  if ((op & 0x7c0) !== 0) return OP_NONE;
  const id = TM_OP_TABLE[tmOpSlot(op, size, dir)]!;
  return id !== OP_NONE && OP_PAGE[id]! >= page ? id : OP_NONE;
}

/** All-ones of an access size, in the {@link Word64} convention (zero-extended below 8 bytes). */
function setOnes(out: Word64, size: AccessSize): void {
  if (size === 8) out.setOnes();
  else out.set(0, size === 4 ? 0xffff_ffff : size === 2 ? 0xffff : 0xff);
}

const hex = (n: number): string => n.toString(16);

/**
 * The TIMA MMIO region. The thread context is the accessing vCPU's (QEMU `current_cpu`).
 *
 * @remarks Models hw/intc/xive.c:xive_tctx_tm_read() / xive_tctx_tm_write() (QEMU 7.2) with two
 * deliberate differences: an access without a vCPU is a guest error (QEMU dereferences NULL),
 * and PULL_OS_CTX / PULL_POOL_CTX return the word in host order (QEMU 7.2 byte-swaps it).
 */
export class XiveTima implements MmioDevice {
  // `declare`d fields: the constructor's first store sets each field's representation (a
  // class-field definition stores `undefined` first and leaves them generic, slower to read).
  declare private readonly tctxs: readonly XiveTctx[];
  declare private readonly router: XiveRouterBackend;
  declare private readonly trace: TraceSink;
  declare private readonly nvt: Uint32Array;

  constructor(tctxs: readonly XiveTctx[], router: XiveRouterBackend, trace: TraceSink) {
    this.tctxs = tctxs;
    this.router = router;
    this.trace = trace;
    this.nvt = new Uint32Array(16);
  }

  private tctxOf(offset: number, cpu: number): XiveTctx | null {
    const t = cpu === NO_CPU ? undefined : this.tctxs[cpu];
    if (t === undefined || !(offset >= 0 && offset < XIVE_TM_SIZE)) {
      this.noTctx(offset, cpu, t === undefined);
      return null;
    }
    return t;
  }

  /** {@link tctxOf}'s guest errors (out of line: the access paths stay small enough to inline). */
  private noTctx(offset: number, cpu: number, noCpu: boolean): void {
    this.trace.guestError(
      noCpu
        ? `XIVE: TIMA access @${hex(offset)} without a thread context (cpu ${cpu})`
        : `XIVE: invalid TIMA access @${hex(offset)}`,
    );
  }

  /** An access {@link xiveTmFindOp} refused in the special area. */
  private invalidSpecial(offset: number, write: boolean): void {
    this.trace.guestError(`XIVE: invalid ${write ? 'write' : 'read'} access at TIMA @${hex(offset)}`);
  }

  private traceAccess(
    kind: 'tima.load' | 'tima.store',
    cpu: number,
    offset: number,
    size: number,
    value: number,
  ): void {
    traceEvent(this.trace, kind, { cpu, offset, size, value });
  }

  load(offset: number, size: AccessSize, cpu: number, out: Word64): void {
    const tctx = this.tctxOf(offset, cpu);
    if (tctx === null) {
      setOnes(out, size);
      return;
    }
    const pfn = Math.floor(offset * TM_PAGE_INV);
    const page = pfn & 3;
    const pageOff = offset - pfn * TM_PAGE_SIZE;
    const id = xiveTmFindOp(pageOff & 0xfff, size, TM_READ, page);
    if (id !== OP_NONE) this.readOp(tctx, id, out);
    else this.rawRead(tctx, offset, page, pageOff, size, out);
    if (this.trace.mask & TRACE_TIMA) this.traceAccess('tima.load', cpu, offset, size, out.lo);
  }

  store(offset: number, size: AccessSize, hi: number, lo: number, cpu: number): void {
    const tctx = this.tctxOf(offset, cpu);
    if (tctx === null) return;
    if (this.trace.mask & TRACE_TIMA) this.traceAccess('tima.store', cpu, offset, size, lo);
    const pfn = Math.floor(offset * TM_PAGE_INV);
    const page = pfn & 3;
    const pageOff = offset - pfn * TM_PAGE_SIZE;
    const id = xiveTmFindOp(pageOff & 0xfff, size, TM_WRITE, page);
    if (id !== OP_NONE) this.writeOp(tctx, id, lo >>> 0);
    else if (pageOff & TM_SPECIAL_OP) this.invalidSpecial(offset, true);
    else this.rawWrite(tctx, offset, page, pageOff, size, hi, lo);
  }

  /**
   * A load with no special op: refused in the special area (all-ones), else a raw 4/8-byte read
   * of the registers through the page view; never the USER ring. (Out of {@link load}'s line:
   * it stays small enough to inline.)
   *
   * @remarks Models hw/intc/xive.c:xive_tm_raw_read() and xive_tm_mask().
   */
  private rawRead(
    tctx: XiveTctx,
    offset: number,
    page: number,
    pageOff: number,
    size: AccessSize,
    out: Word64,
  ): void {
    if (pageOff & TM_SPECIAL_OP) {
      this.invalidSpecial(offset, false);
      setOnes(out, size);
      return;
    }
    const reg = pageOff & 0x3f;
    const ring = pageOff & 0x30;
    let any = false;
    let hi = 0;
    let lo = 0;
    if (size >= 4 && ring !== TM_QW0_USER) {
      const regs = tctx.regs;
      for (let i = 0; i < size; i++) {
        const idx = reg + i;
        // Bytes past the 64-byte context have no permission.
        const perm = idx < 64 ? VIEWS[page * 64 + idx]! : 0;
        const byte = perm & 2 ? regs[idx]! : 0;
        if (perm & 2) any = true;
        if (size === 8 && i < 4) hi = (hi << 8) | byte;
        else lo = (lo << 8) | byte;
      }
    }
    if (!any) {
      this.trace.guestError(`XIVE: invalid read access at TIMA @${hex(offset)}`);
      setOnes(out, size);
      return;
    }
    out.set(hi, lo);
  }

  /**
   * Raw 4/8-byte write through the page view: only permitted bytes change, verbatim (no CPPR
   * clamp, no notify, as QEMU).
   *
   * @remarks Models hw/intc/xive.c:xive_tm_raw_write().
   */
  private rawWrite(
    tctx: XiveTctx,
    offset: number,
    page: number,
    pageOff: number,
    size: AccessSize,
    hi: number,
    lo: number,
  ): void {
    const reg = pageOff & 0x3f;
    const ring = pageOff & 0x30;
    let any = false;
    if (size >= 4 && ring !== TM_QW0_USER) {
      for (let i = 0; i < size && !any; i++) {
        const idx = reg + i;
        if (idx < 64 && VIEWS[page * 64 + idx]! & 1) any = true;
      }
    }
    if (!any) {
      this.trace.guestError(`XIVE: invalid write access at TIMA @${hex(offset)}`);
      return;
    }
    const regs = tctx.regs;
    for (let i = 0; i < size; i++) {
      const idx = reg + i;
      if (idx >= 64 || (VIEWS[page * 64 + idx]! & 1) === 0) continue;
      const j = size === 8 ? i : i + 4;
      regs[idx] = j < 4 ? hi >>> (24 - 8 * j) : lo >>> (24 - 8 * (j - 4));
    }
  }

  private readOp(tctx: XiveTctx, id: number, out: Word64): void {
    // The interrupt path's op first, the others out of line (this stays small enough to inline).
    if (id === OP_ACK_OS_REG) {
      // xive_tm_ack_os_reg()
      out.set(0, tctx.accept(TM_QW1_OS));
      return;
    }
    this.readOtherOp(tctx, id, out);
  }

  private readOtherOp(tctx: XiveTctx, id: number, out: Word64): void {
    switch (id) {
      case OP_VT_POLL:
        // xive_tm_vt_poll()
        out.set(0, tctx.regs[QW3_WORD2]!);
        return;
      case OP_ACK_HV_REG:
        // xive_tm_ack_hv_reg()
        out.set(0, tctx.accept(TM_QW3_HV_PHYS));
        return;
      case OP_PULL_OS_CTX:
        out.set(0, this.pullOsCtx(tctx));
        return;
      case OP_PULL_POOL_CTX: {
        // xive_tm_pull_pool_ctx(): return W2 (host order), clear VP.
        const w2 = tctx.word2(TM_QW2_HV_POOL);
        tctx.setWord2(TM_QW2_HV_POOL, w2 & ~TM_QW2W2_VP);
        out.set(0, w2);
        return;
      }
      default:
        throw new Error(`XiveTima: no read op ${id}`);
    }
  }

  private writeOp(tctx: XiveTctx, id: number, value: number): void {
    // The interrupt path's op first, as readOp.
    if (id === OP_SET_OS_CPPR) {
      tctx.setCppr(TM_QW1_OS, value & 0xff);
      return;
    }
    this.writeOtherOp(tctx, id, value);
  }

  private writeOtherOp(tctx: XiveTctx, id: number, value: number): void {
    switch (id) {
      case OP_SET_HV_CPPR:
        tctx.setCppr(TM_QW3_HV_PHYS, value & 0xff);
        return;
      case OP_VT_PUSH:
        // xive_tm_vt_push()
        tctx.regs[QW3_WORD2] = value & 0xff;
        return;
      case OP_SET_OS_PENDING:
        // xive_tm_set_os_pending()
        tctx.ipbUpdate(TM_QW1_OS, value & 0xff);
        return;
      case OP_PUSH_OS_CTX:
        this.pushOsCtx(tctx, value);
        return;
      default:
        throw new Error(`XiveTima: no write op ${id}`);
    }
  }

  /**
   * Return the OS CAM word (host order), invalidate it and lower the OS line.
   *
   * @remarks Models hw/intc/xive.c:xive_tm_pull_os_ctx().
   */
  private pullOsCtx(tctx: XiveTctx): number {
    const w2 = tctx.word2(TM_QW1_OS);
    if ((w2 & TM_QW1W2_VO) === 0) {
      this.trace.guestError(
        `XIVE: pulling invalid NVT ${hex((w2 >>> XIVE_NVT_SHIFT) & 0xf)}/${hex(w2 & 0x7ffff)} !?`,
      );
    }
    tctx.setWord2(TM_QW1_OS, w2 & ~TM_QW1W2_VO);
    tctx.lowerOsLine();
    return w2;
  }

  /**
   * Push the OS context (QW1 W2); with VO set, resend the NVT's backlog.
   *
   * @remarks Models hw/intc/xive.c:xive_tm_push_os_ctx().
   */
  private pushOsCtx(tctx: XiveTctx, cam: number): void {
    tctx.setWord2(TM_QW1_OS, cam);
    if (cam & TM_QW1W2_VO) {
      this.needResend(tctx, (cam >>> XIVE_NVT_SHIFT) & 0xf, cam & ((1 << XIVE_NVT_SHIFT) - 1));
    }
  }

  /**
   * Move the NVT's backlog IPB into the OS ring; always recompute PIPR and notify.
   *
   * @remarks Models hw/intc/xive.c:xive_tctx_need_resend().
   */
  private needResend(tctx: XiveTctx, nvtBlk: number, nvtIdx: number): void {
    const nvt = this.nvt;
    if (!this.router.getNvt(nvtBlk, nvtIdx, nvt)) {
      this.trace.guestError(`XIVE: invalid NVT ${hex(nvtBlk)}/${hex(nvtIdx)}`);
      return;
    }
    const ipb = getField32(NVT_W4_IPB, nvt[4]!);
    if (ipb) {
      nvt[4] = setField32(NVT_W4_IPB, nvt[4]!, 0);
      this.router.writeNvt(nvtBlk, nvtIdx, nvt, 4);
    }
    tctx.ipbMerge(TM_QW1_OS, ipb);
  }
}
