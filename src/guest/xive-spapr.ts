/**
 * The sPAPR backend of the guest's XIVE driver: everything that goes through hypervisor calls
 * (source info, source and queue configuration, ESB accesses for `H_INT_ESB` sources), the TIMA
 * acknowledge cycle, and the IPI number allocator over `ibm,xive-lisn-ranges`.
 *
 * @remarks Models arch/powerpc/sysdev/xive/spapr.c (the `xive_spapr_*` ops and `plpar_int_*`
 * wrappers).
 */

import type { TraceSink } from '../sim/trace-sink.ts';
import type { GuestDeviceTree, GuestVcpu, LoadResult } from './platform.ts';
import {
  EINVAL,
  EIO,
  ENXIO,
  H_INT_ESB,
  H_INT_GET_QUEUE_INFO,
  H_INT_GET_SOURCE_INFO,
  H_INT_SET_QUEUE_CONFIG,
  H_INT_SET_SOURCE_CONFIG,
  H_INT_SYNC,
  H_SUCCESS,
  hcallBusy,
  TM_QW1_NSR_EO,
  TM_SPC_ACK_OS_REG,
  XIVE_EQ_ALWAYS_NOTIFY,
  XIVE_ESB_FLAG_STORE,
  XIVE_ESB_SET_PQ_00,
  XIVE_INVALID_CHIP_ID,
  XIVE_IRQ_FLAG_H_INT_ESB,
  XIVE_IRQ_FLAG_LSI,
  XIVE_IRQ_FLAG_STORE_EOI,
  XIVE_SRC_H_INT_ESB,
  XIVE_SRC_LSI,
  XIVE_SRC_SET_EISN,
  XIVE_SRC_STORE_EOI,
  XIVE_SRC_TRIGGER,
} from './xive-regs.ts';

/** Per-source data the driver keeps (`struct xive_irq_data`). Addresses are −1 when absent. */
export class XiveIrqData {
  flags!: number;
  eoiPage!: number;
  /** Where ESB loads go (`eoi_mmio`); −1 when not mapped (H_INT_ESB sources). */
  eoiMmio!: number;
  /**
   * `eoi_mmio + XIVE_ESB_SET_PQ_00`, the load of every MSI EOI; null when not mapped. A model
   * cache: a guest physical address is past V8's small integers, so `eoiMmio + offset` boxes a
   * new number on every EOI, where this field (null first, so V8 keeps it tagged) hands the one
   * boxed number on.
   */
  eoiPq00!: number | null;
  trigPage!: number;
  /** Where triggers are stored (`trig_mmio`); −1 = NULL. */
  trigMmio!: number;
  esbShift!: number;
  srcChip!: number;
  hwIrq!: number;
  /** Logical CPU the source is routed to, or XIVE_INVALID_TARGET. */
  target!: number;
  /** A queue entry for this source exists although P may now be clear (it was masked). */
  savedP!: boolean;
  /** No queue entry exists although P may be set (the EOI was skipped). */
  staleP!: boolean;

  constructor() {
    this.clear();
  }

  /** `memset(data, 0, sizeof(*data))`. */
  clear(): void {
    this.flags = 0;
    this.eoiPage = -1;
    this.eoiMmio = -1;
    this.eoiPq00 = null;
    this.trigPage = -1;
    this.trigMmio = -1;
    this.esbShift = 0;
    this.srcChip = XIVE_INVALID_CHIP_ID;
    this.hwIrq = 0;
    this.target = -1;
    this.savedP = false;
    this.staleP = false;
  }
}

/** One event queue as the driver tracks it (`struct xive_q`). */
export class XiveQ {
  /** Guest physical address of the queue page, −1 = none. */
  qpage: number;
  msk: number;
  idx: number;
  toggle: number;
  eoiPhys: number;
  /** Sources targeting this queue (accounting, limit msk). */
  count: number;
  /** Sources moved away, still to be subtracted once the queue is seen empty. */
  pendingCount: number;
  /** Model counters: entries consumed (cumulative) and the largest `count` seen. */
  reads: number;
  maxCount: number;

  constructor() {
    this.qpage = -1;
    this.msk = 0;
    this.idx = 0;
    this.toggle = 0;
    this.eoiPhys = 0;
    this.count = 0;
    this.pendingCount = 0;
    this.reads = 0;
    this.maxCount = 0;
  }
}

const U64_MAX = 0xffff_ffff_ffff_ffffn;

/** A u64 register as a guest physical address; all-ones (the "−1" of the ABI) → −1. */
export function regToAddr(r: bigint | undefined): number {
  if (r === undefined || r === U64_MAX) return -1;
  return Number(r);
}

/** A u32/u64 guest value as the register an hcall takes (−1 → all ones). */
function reg(n: number): bigint {
  return n < 0 ? U64_MAX : BigInt(n);
}

export class XiveSpapr {
  /** `xive_tima`: guest physical address of the TIMA OS page. */
  readonly tima: number;
  /** `xive_tima + TM_SPC_ACK_OS_REG`: the acknowledge cycle's load. */
  private readonly ackAddr: number;
  /** Number of busy retries before a call is given up (a livelocked hypervisor). */
  readonly maxRetries: number;
  /** Model counter: hcalls issued, by opcode. */
  readonly hcalls: Map<number, number>;
  private readonly trace: TraceSink;
  private readonly out: bigint[];
  private readonly w: LoadResult;
  // xive_irq_bitmap over ibm,xive-lisn-ranges
  private readonly ipiBase: number;
  private readonly ipiUsed: Uint8Array;

  constructor(dt: GuestDeviceTree, trace: TraceSink) {
    this.tima = dt.timaOsPage;
    this.ackAddr = dt.timaOsPage + TM_SPC_ACK_OS_REG;
    this.maxRetries = 1000;
    this.hcalls = new Map();
    this.trace = trace;
    this.out = new Array<bigint>(9).fill(0n);
    this.w = { hi: 0, lo: 0 };
    this.ipiBase = dt.ipiRange[0];
    this.ipiUsed = new Uint8Array(dt.ipiRange[1]);
  }

  /** One `plpar_hcall` with the `plpar_busy_delay` retry loop. */
  hcall(v: GuestVcpu, opcode: number, args: readonly bigint[]): number {
    let rc = 0;
    for (let i = 0; i <= this.maxRetries; i++) {
      this.hcalls.set(opcode, (this.hcalls.get(opcode) ?? 0) + 1);
      rc = v.hcall(opcode, args, this.out);
      if (!hcallBusy(rc)) return rc;
    }
    this.trace.guestError(`xive: hcall 0x${opcode.toString(16)} still busy after ${this.maxRetries} retries`);
    return rc;
  }

  /** Output register `i` (R4 + i) of the last call. */
  outReg(i: number): bigint {
    return this.out[i] ?? 0n;
  }

  /**
   * Fill `xd` from H_INT_GET_SOURCE_INFO; 0 or −EINVAL.
   *
   * @remarks Models spapr.c:xive_spapr_populate_irq_data(). The guest runs in real mode, so
   * "ioremap" is the identity: the ESB pages are used at the addresses the hcall returned.
   */
  populateIrqData(v: GuestVcpu, hwIrq: number, xd: XiveIrqData): number {
    xd.clear();
    const rc = this.hcall(v, H_INT_GET_SOURCE_INFO, [0n, BigInt(hwIrq)]);
    if (rc !== H_SUCCESS) return -EINVAL;
    const flags = Number(this.out[0]! & 0xffn);
    if (flags & XIVE_SRC_H_INT_ESB) xd.flags |= XIVE_IRQ_FLAG_H_INT_ESB;
    if (flags & XIVE_SRC_STORE_EOI) xd.flags |= XIVE_IRQ_FLAG_STORE_EOI;
    if (flags & XIVE_SRC_LSI) xd.flags |= XIVE_IRQ_FLAG_LSI;
    xd.eoiPage = regToAddr(this.out[1]);
    xd.trigPage = regToAddr(this.out[2]);
    xd.esbShift = Number(this.out[3]! & 0xffn);
    xd.hwIrq = hwIrq;
    xd.srcChip = XIVE_INVALID_CHIP_ID;
    // H_INT_ESB: the pages are not mapped; every access goes through the hcall.
    if (xd.flags & XIVE_IRQ_FLAG_H_INT_ESB) return 0;
    xd.eoiMmio = xd.eoiPage;
    xd.eoiPq00 = xd.eoiMmio + XIVE_ESB_SET_PQ_00;
    xd.trigMmio = flags & XIVE_SRC_TRIGGER ? xd.eoiMmio : xd.trigPage;
    return 0;
  }

  /**
   * Route `hwIrq` to `target` (hardware CPU id) at `prio` with EISN `swIrq`; 0 or −ENXIO.
   *
   * @remarks Models spapr.c:xive_spapr_configure_irq().
   */
  configureIrq(v: GuestVcpu, hwIrq: number, target: number, prio: number, swIrq: number): number {
    const rc = this.hcall(v, H_INT_SET_SOURCE_CONFIG, [
      BigInt(XIVE_SRC_SET_EISN),
      BigInt(hwIrq),
      reg(target),
      BigInt(prio),
      BigInt(swIrq >>> 0),
    ]);
    return rc === H_SUCCESS ? 0 : -ENXIO;
  }

  /**
   * Program queue `prio` of hardware CPU `target` at `qpagePhys` (`order` = log2 of its size in
   * bytes, 0 = reset); 0 or −EIO.
   *
   * @remarks Models spapr.c:xive_spapr_configure_queue().
   */
  configureQueue(
    v: GuestVcpu,
    target: number,
    q: XiveQ,
    prio: number,
    qpagePhys: number,
    order: number,
  ): number {
    q.msk = order ? 2 ** (order - 2) - 1 : 0;
    q.idx = 0;
    q.toggle = 0;
    let rc = this.hcall(v, H_INT_GET_QUEUE_INFO, [0n, BigInt(target), BigInt(prio)]);
    if (rc !== H_SUCCESS) {
      this.trace.guestError(`xive: Error ${rc} getting queue info CPU ${target} prio ${prio}`);
      return -EIO;
    }
    q.eoiPhys = regToAddr(this.out[0]);
    rc = this.hcall(v, H_INT_SET_QUEUE_CONFIG, [
      BigInt(XIVE_EQ_ALWAYS_NOTIFY),
      BigInt(target),
      BigInt(prio),
      BigInt(qpagePhys),
      BigInt(order),
    ]);
    if (rc !== H_SUCCESS) {
      this.trace.guestError(`xive: Error ${rc} setting queue for CPU ${target} prio ${prio}`);
      return -EIO;
    }
    q.qpage = qpagePhys;
    return 0;
  }

  /**
   * Reset queue `prio` of `target` in the hypervisor (the caller frees the page).
   *
   * @remarks Models spapr.c:xive_spapr_cleanup_queue().
   */
  cleanupQueue(v: GuestVcpu, target: number, q: XiveQ, prio: number): void {
    const rc = this.hcall(v, H_INT_SET_QUEUE_CONFIG, [0n, BigInt(target), BigInt(prio), 0n, 0n]);
    if (rc !== H_SUCCESS)
      this.trace.guestError(`xive: Error ${rc} setting queue for CPU ${target} prio ${prio}`);
    q.qpage = -1;
  }

  /**
   * An ESB load or store through H_INT_ESB: the loaded u64's low byte (what `(u8)` keeps), 0 for
   * a store, 0xff on failure.
   *
   * @remarks Models spapr.c:xive_spapr_esb_rw().
   */
  esbRw(v: GuestVcpu, lisn: number, offset: number, data: number, write: boolean): number {
    const rc = this.hcall(v, H_INT_ESB, [
      BigInt(write ? XIVE_ESB_FLAG_STORE : 0),
      BigInt(lisn),
      BigInt(offset),
      BigInt(data),
    ]);
    if (rc !== H_SUCCESS) return 0xff;
    return write ? 0 : Number(this.out[0]! & 0xffn);
  }

  /** @remarks Models spapr.c:xive_spapr_sync_source(). */
  syncSource(v: GuestVcpu, hwIrq: number): void {
    this.hcall(v, H_INT_SYNC, [0n, BigInt(hwIrq)]);
  }

  /**
   * The acknowledge cycle (Load16 at TIMA + ACK_OS_REG): record the presented priority in the
   * software pending bitmap. Returns the raw 16-bit ack value.
   *
   * @remarks Models spapr.c:xive_spapr_update_pending().
   */
  updatePending(v: GuestVcpu, xc: { pendingPrio: number; cppr: number; readonly cpu: number }): number {
    v.load(this.ackAddr, 2, this.w);
    const ack = this.w.lo & 0xffff;
    const cppr = ack & 0xff;
    const nsr = ack >>> 8;
    if (nsr & TM_QW1_NSR_EO) {
      if (cppr === 0xff) return ack;
      xc.pendingPrio |= 1 << cppr;
      if (cppr >= xc.cppr)
        this.trace.guestError(`xive: CPU ${xc.cpu} odd ack CPPR, got ${cppr} at ${xc.cppr}`);
      xc.cppr = cppr;
    }
    return ack;
  }

  /**
   * Take the first free LISN of `ibm,xive-lisn-ranges`; the LISN or −ENXIO.
   *
   * @remarks Models spapr.c:xive_spapr_get_ipi() / xive_irq_bitmap_alloc().
   */
  getIpi(): number {
    const i = this.ipiUsed.indexOf(0);
    if (i < 0) return -ENXIO;
    this.ipiUsed[i] = 1;
    return this.ipiBase + i;
  }

  /** @remarks Models spapr.c:xive_spapr_put_ipi() / xive_irq_bitmap_free(). */
  putIpi(lisn: number): void {
    const i = lisn - this.ipiBase;
    if (i >= 0 && i < this.ipiUsed.length) this.ipiUsed[i] = 0;
  }
}
