/**
 * XIVE router: event → EAS → END (enqueue, ESn, presenter, backlog, escalation).
 *
 * The tables live in the machine (sPAPR keeps them in QEMU memory, PowerNV in guest RAM); the
 * router reaches them through {@link XiveRouterBackend}, as QEMU's `XiveRouterClass` hooks.
 */

import { traceEvent } from '../../sim/trace-events.ts';
import type { TraceSink } from '../../sim/trace-sink.ts';
import * as traceSink from '../../sim/trace-sink.ts';
import * as bits from '../bits.ts';
import type { DmaSpace } from '../mmio.ts';
import * as esb from './esb.ts';
import * as regs from './regs.ts';
import type { XiveTctx } from './tctx.ts';

// Module-local copies of the imported constants and helpers the hot paths use: V8 reads an
// imported binding through its module cell (a load and a hole check) at every use, while a
// module-local const folds to an immediate in optimised code.
const { TRACE_ROUTER } = traceSink;
const { XIVE_ESB_FORWARD, xiveEsbTrigger } = esb;
const { getField32, setField32 } = bits;
const {
  EAS_END_BLOCK_HI,
  EAS_END_DATA_LO,
  EAS_END_INDEX_HI,
  EAS_MASKED_LO,
  EAS_VALID_HI,
  END_W0_BACKLOG,
  END_W0_ENQUEUE,
  END_W0_ESCALATE_CTL,
  END_W0_QSIZE,
  END_W0_SILENT_ESCALATE,
  END_W0_UCOND_NOTIFY,
  END_W0_UNCOND_ESCALATE,
  END_W0_VALID,
  END_W1_ESe,
  END_W1_ESn,
  END_W1_GENERATION,
  END_W1_PAGE_OFF,
  END_W2_EQ_ADDR_HI,
  END_W4_ESC_END_BLOCK,
  END_W4_ESC_END_INDEX,
  END_W5_ESC_END_DATA,
  END_W6_FORMAT_BIT,
  END_W6_NVT_BLOCK,
  END_W6_NVT_INDEX,
  END_W7_F0_IGNORE,
  END_W7_F0_PRIORITY,
  END_W7_F1_LOG_SERVER_ID,
  NVT_W0_VALID,
  NVT_W4_IPB,
  xiveEasBlock,
  xiveEasIndex,
  xivePriorityToIpb,
} = regs;

/** A field's shift, `ctz32(mask)`: the hot paths extract fields with a mask and a shift. */
const fieldShift = (mask: number): number => 31 - Math.clz32(mask & -mask);
// A get-field call per field would cost the JIT's inlining budget its whole bytecode each time.
const EAS_END_BLOCK_SHIFT = fieldShift(EAS_END_BLOCK_HI);
const END_W0_QSIZE_SHIFT = fieldShift(END_W0_QSIZE);
const END_W6_NVT_BLOCK_SHIFT = fieldShift(END_W6_NVT_BLOCK);
const END_W7_F0_PRIORITY_SHIFT = fieldShift(END_W7_F0_PRIORITY);

/** Where a presenter match landed: the thread context and its ring. Reused, never allocated per event. */
export class XiveTctxMatch {
  tctx: XiveTctx | null = null;
  ring = -1;
}

/**
 * A presenter's `match_nvt` over its thread contexts: the first context matching the NVT goes
 * to `out`; a second one is a duplicate CAM line, logged, and the scan stops there. Returns the
 * number of matches (more than 1: the router fails the notification).
 *
 * @remarks The scan of hw/intc/spapr_xive.c:spapr_xive_match_nvt() (every vCPU) and of
 * hw/intc/pnv_xive.c:pnv_xive_match_nvt() (every thread of the chip): the same loop over
 * xive_presenter_tctx_match() in both.
 */
export function xiveMatchTctxs(
  tctxs: readonly XiveTctx[],
  format: number,
  nvtBlk: number,
  nvtIdx: number,
  ignore: boolean,
  logicServ: number,
  out: XiveTctxMatch,
  trace: TraceSink,
): number {
  let count = 0;
  // An indexed loop: `for…of` costs an iterator and its cleanup on the presenter's path.
  for (let i = 0; i < tctxs.length; i++) {
    const tctx = tctxs[i]!;
    const ring = tctx.match(format, nvtBlk, nvtIdx, ignore, logicServ);
    if (ring === -1) continue;
    if (out.tctx !== null) {
      trace.guestError(`XIVE: already found a thread context NVT ${hex(nvtBlk)}/${hex(nvtIdx)}`);
      return count + 1;
    }
    out.tctx = tctx;
    out.ring = ring;
    count++;
  }
  return count;
}

/** The machine side of the router: QEMU `XiveRouterClass` table accessors + `XiveFabric`. */
export interface XiveRouterBackend {
  getEas(blk: number, idx: number, eas: Uint32Array /* [hi, lo] */): boolean;
  getEnd(blk: number, idx: number, end: Uint32Array /* 8 words */): boolean;
  /** `word`: the word number written back, or -1 for all. */
  writeEnd(blk: number, idx: number, end: Uint32Array, word: number): void;
  /** Fills at least W0 and W4 of `nvt` (16 words): the only words the router and TIMA read. */
  getNvt(blk: number, idx: number, nvt: Uint32Array /* 16 words */): boolean;
  writeNvt(blk: number, idx: number, nvt: Uint32Array, word: number): void;
  /**
   * XiveFabric `match_nvt`: scan thread contexts; the match goes to `out`. Returns the number of
   * matches (more than 1 = duplicate CAM: the notification fails).
   */
  matchNvt(
    format: number,
    nvtBlk: number,
    nvtIdx: number,
    ignore: boolean,
    priority: number,
    logicServ: number,
    out: XiveTctxMatch,
  ): number;
}

/** Router counters: counts of each path running. */
export interface XiveRouterStats {
  /** LISN with no EAS (lookup failed). */
  unknownLisn: number;
  /** EAS not valid. */
  easInvalid: number;
  /** EAS masked: dropped after the source's PQ update. */
  easMasked: number;
  /** END lookup failed or END invalid. */
  endInvalid: number;
  /** EQ words written. */
  enqueued: number;
  /** END priority 0xFF (masked END). */
  endMasked: number;
  /** ESn found P set (or off) and did not notify. */
  endCoalesced: number;
  /** A thread context received the priority (IPB update). */
  presented: number;
  /** No thread context matched. */
  notDispatched: number;
  /** Priorities recorded in an NVT backlog. */
  backlogged: number;
  /** Escalations forwarded (re-entry with the ESC EAS). */
  escalations: number;
}

/** Escalation chains deeper than this are a configuration loop (the hardware would hang). */
const MAX_DEPTH = 8;

const hex = (n: number): string => n.toString(16);

/**
 * The XIVE router.
 *
 * @remarks Models hw/intc/xive.c (XiveRouter) as in QEMU 7.2, gen1.
 */
export class XiveRouter {
  // `declare`d fields: the constructor's first store sets each field's representation (a
  // class-field definition stores `undefined` first and leaves them generic, slower to read).
  declare readonly stats: XiveRouterStats;
  declare private readonly backend: XiveRouterBackend;
  declare private readonly dma: DmaSpace;
  declare private readonly trace: TraceSink;
  declare private readonly eas: Uint32Array;
  /** One END / NVT buffer per nesting depth, so re-entry (escalation, callbacks) is safe. */
  declare private readonly ends: Uint32Array[];
  declare private readonly nvts: Uint32Array[];
  declare private readonly match: XiveTctxMatch[];
  declare private depth: number;

  constructor(backend: XiveRouterBackend, dma: DmaSpace, trace: TraceSink) {
    this.backend = backend;
    this.dma = dma;
    this.trace = trace;
    this.stats = {
      unknownLisn: 0,
      easInvalid: 0,
      easMasked: 0,
      endInvalid: 0,
      enqueued: 0,
      endMasked: 0,
      endCoalesced: 0,
      presented: 0,
      notDispatched: 0,
      backlogged: 0,
      escalations: 0,
    };
    this.eas = new Uint32Array(2);
    this.ends = [];
    this.nvts = [];
    this.match = [];
    for (let i = 0; i < MAX_DEPTH; i++) {
      this.ends.push(new Uint32Array(8));
      this.nvts.push(new Uint32Array(16));
      this.match.push(new XiveTctxMatch());
    }
    this.depth = 0;
  }

  /**
   * An event for `lisn` (= blk << 28 | idx). `pqChecked` is false only when the source left the
   * PQ check to the router (PQ_DISABLE); the backend has no PQ accessors, so such events are
   * routed as if the check forwarded (sPAPR never uses PQ_DISABLE).
   *
   * @remarks Models hw/intc/xive.c:xive_router_notify().
   */
  notify(lisn: number, _pqChecked: boolean): void {
    const eas = this.eas;
    const found = this.backend.getEas(xiveEasBlock(lisn), xiveEasIndex(lisn), eas);
    const hi = eas[0]!;
    const lo = eas[1]!;
    if (!found || (hi & EAS_VALID_HI) === 0 || (lo & EAS_MASKED_LO) !== 0) {
      this.easDropped(lisn, found);
      return;
    }
    this.endNotify(
      (hi & EAS_END_BLOCK_HI) >>> EAS_END_BLOCK_SHIFT,
      hi & EAS_END_INDEX_HI,
      lo & EAS_END_DATA_LO,
    );
  }

  /** The event stops at the EAS: unknown LISN, invalid EAS, or masked (dropped silently). */
  private easDropped(lisn: number, found: boolean): void {
    if (!found) {
      this.stats.unknownLisn++;
      this.lisnError('Unknown', lisn);
    } else if ((this.eas[0]! & EAS_VALID_HI) === 0) {
      this.stats.easInvalid++;
      this.lisnError('Invalid', lisn);
    } else {
      // Notification completed: a masked EAS drops the event silently.
      this.stats.easMasked++;
      if (this.trace.mask & TRACE_ROUTER) this.traceMasked(lisn);
    }
  }

  /**
   * Write one event into the END's queue and advance the index (generation flips on wrap).
   * Updates `end[1]` in place; the caller writes word 1 back.
   *
   * @remarks Models hw/intc/xive.c:xive_end_enqueue().
   */
  private endEnqueue(blk: number, idx: number, end: Uint32Array, data: number): void {
    const w1 = end[1]!;
    const qsize = (end[0]! & END_W0_QSIZE) >>> END_W0_QSIZE_SHIFT;
    const qbase = (end[2]! & END_W2_EQ_ADDR_HI) * 2 ** 32 + end[3]!;
    const qindex = w1 & END_W1_PAGE_OFF;
    const qgen = (w1 & END_W1_GENERATION) !== 0 ? 1 : 0;
    const qaddr = qbase + qindex * 4;
    // An int32, not a u32: with the generation bit set it would be boxed at each call.
    const qdata = (qgen << 31) | (data & 0x7fff_ffff);
    if (!this.dma.storeBe32(qaddr, qdata)) {
      this.enqueueFailed(qaddr);
      return;
    }
    this.stats.enqueued++;
    if (this.trace.mask & TRACE_ROUTER) this.traceEnqueue(blk, idx, qindex, qdata);
    // The next index wraps at the queue's 2^(qsize + 10) entries (qsize <= 15: an int shift),
    // flipping the generation; both fields written in place (no set-field helper calls: each
    // inlined call costs the JIT's inlining budget its whole bytecode).
    const next = qindex + 1;
    end[1] =
      next < 1 << (qsize + 10)
        ? (w1 & ~END_W1_PAGE_OFF) | (next & END_W1_PAGE_OFF)
        : (w1 & ~(END_W1_GENERATION | END_W1_PAGE_OFF)) | (qgen === 0 ? END_W1_GENERATION : 0);
  }

  /**
   * END trigger: enqueue, ESn, presenter, backlog, escalation.
   *
   * @remarks Models hw/intc/xive.c:xive_router_end_notify().
   */
  private endNotify(endBlk: number, endIdx: number, data: number): void {
    const depth = this.depth;
    if (depth >= MAX_DEPTH) {
      this.tableError('END', endBlk, endIdx, ' escalation loop');
      return;
    }
    this.depth = depth + 1;
    try {
      this.endTrigger(endBlk, endIdx, data, depth);
    } finally {
      this.depth = depth;
    }
  }

  /**
   * {@link endNotify} at nesting `depth` (its END, NVT and match buffers). The common case, an
   * enqueue and a presented priority, runs here; the rest out of line, so the code stays within
   * the JIT's inlining limits.
   */
  private endTrigger(endBlk: number, endIdx: number, data: number, depth: number): void {
    const end = this.ends[depth]!;
    const found = this.backend.getEnd(endBlk, endIdx, end);
    const w0 = end[0]!;
    if (!found || (w0 & END_W0_VALID) === 0) {
      this.endInvalid(endBlk, endIdx, found);
      return;
    }
    if (w0 & END_W0_ENQUEUE) {
      this.endEnqueue(endBlk, endIdx, end, data);
      this.backend.writeEnd(endBlk, endIdx, end, 1);
    }
    if ((w0 & END_W0_SILENT_ESCALATE) === 0 && !this.endPresent(endBlk, endIdx, end, w0, depth)) return;
    if ((w0 & END_W0_ESCALATE_CTL) !== 0) this.endEscalate(endBlk, endIdx, end, w0);
  }

  /**
   * The notification part of {@link endTrigger}: masked END, ESn, NVT, presenter, backlog.
   * Returns whether the event goes on to escalation.
   */
  private endPresent(endBlk: number, endIdx: number, end: Uint32Array, w0: number, depth: number): boolean {
    const w6 = end[6]!;
    const w7 = end[7]!;
    const format = (w6 & END_W6_FORMAT_BIT) !== 0 ? 1 : 0;
    const priority = (w7 & END_W7_F0_PRIORITY) >>> END_W7_F0_PRIORITY_SHIFT;
    if (format === 0 && priority === 0xff) {
      // The END is masked.
      this.stats.endMasked++;
      return false;
    }
    // Without "unconditional notify", the ESn PQ pair coalesces notifications.
    if ((w0 & END_W0_UCOND_NOTIFY) === 0 && !this.endEsn(endBlk, endIdx, end)) return false;
    const nvtBlk = (w6 & END_W6_NVT_BLOCK) >>> END_W6_NVT_BLOCK_SHIFT;
    const nvtIdx = w6 & END_W6_NVT_INDEX;
    const nvt = this.nvts[depth]!;
    const nvtFound = this.backend.getNvt(nvtBlk, nvtIdx, nvt);
    if (!nvtFound || (nvt[0]! & NVT_W0_VALID) === 0) {
      this.nvtError(nvtBlk, nvtIdx, nvtFound);
      return false;
    }
    const ignore = (w7 & END_W7_F0_IGNORE) !== 0;
    const logicServ = w7 & END_W7_F1_LOG_SERVER_ID;
    if (this.presenterNotify(format, nvtBlk, nvtIdx, ignore, priority, logicServ, this.match[depth]!))
      return false;
    return this.notDispatched(endBlk, endIdx, w0, format, priority, nvtBlk, nvtIdx, nvt);
  }

  /** No END (`found` false) or an invalid one. */
  private endInvalid(endBlk: number, endIdx: number, found: boolean): void {
    this.stats.endInvalid++;
    if (found) this.tableError('END', endBlk, endIdx, ' is invalid');
    else this.tableError('No END', endBlk, endIdx, '');
  }

  /** No NVT (`found` false) or an invalid one. */
  private nvtError(nvtBlk: number, nvtIdx: number, found: boolean): void {
    if (found) this.tableError('NVT', nvtBlk, nvtIdx, ' is invalid');
    else this.tableError('no NVT', nvtBlk, nvtIdx, '');
  }

  /** The ESn PQ pair of `end`: returns whether the notification goes on (else coalesced). */
  private endEsn(endBlk: number, endIdx: number, end: Uint32Array): boolean {
    const r = xiveEsbTrigger(getField32(END_W1_ESn, end[1]!));
    end[1] = setField32(END_W1_ESn, end[1]!, r & 3);
    this.backend.writeEnd(endBlk, endIdx, end, 1);
    if ((r & XIVE_ESB_FORWARD) !== 0) return true;
    this.stats.endCoalesced++;
    return false;
  }

  /**
   * No thread context took the priority: record it in the NVT backlog when the END asks for it.
   * Returns false when the END's configuration stops the notification there (F1 and backlog).
   * Out of {@link endNotify}'s line, as the rest of the rare paths, so the presented path stays
   * small enough for the JIT to inline.
   */
  private notDispatched(
    endBlk: number,
    endIdx: number,
    w0: number,
    format: number,
    priority: number,
    nvtBlk: number,
    nvtIdx: number,
    nvt: Uint32Array,
  ): boolean {
    this.stats.notDispatched++;
    this.trace.guestError(`XIVE: NVT ${hex(nvtBlk)}/${hex(nvtIdx)} is not dispatched`);
    if (w0 & END_W0_BACKLOG) {
      if (format === 1) {
        this.trace.guestError(`XIVE: END ${hex(endBlk)}/${hex(endIdx)} invalid config: F1 & backlog`);
        return false;
      }
      const ipb = getField32(NVT_W4_IPB, nvt[4]!) | xivePriorityToIpb(priority);
      nvt[4] = setField32(NVT_W4_IPB, nvt[4]!, ipb);
      this.backend.writeNvt(nvtBlk, nvtIdx, nvt, 4);
      this.stats.backlogged++;
    }
    return true;
  }

  /** Escalation: the ESe PQ (unless unconditional), then the escalation END, one level deeper. */
  private endEscalate(endBlk: number, endIdx: number, end: Uint32Array, w0: number): void {
    if ((w0 & END_W0_UNCOND_ESCALATE) === 0) {
      const r = xiveEsbTrigger(getField32(END_W1_ESe, end[1]!));
      end[1] = setField32(END_W1_ESe, end[1]!, r & 3);
      this.backend.writeEnd(endBlk, endIdx, end, 1);
      if ((r & XIVE_ESB_FORWARD) === 0) return;
    }
    this.stats.escalations++;
    const escBlk = getField32(END_W4_ESC_END_BLOCK, end[4]!);
    const escIdx = getField32(END_W4_ESC_END_INDEX, end[4]!);
    const escData = getField32(END_W5_ESC_END_DATA, end[5]!);
    if (this.trace.mask & TRACE_ROUTER) {
      traceEvent(this.trace, 'router.escalate', { endBlk, endIdx, escBlk, escIdx });
    }
    this.endNotify(escBlk, escIdx, escData);
  }

  /**
   * Ask the fabric for a matching thread context and record the priority in its IPB.
   *
   * @remarks Models hw/intc/xive.c:xive_presenter_notify().
   */
  private presenterNotify(
    format: number,
    nvtBlk: number,
    nvtIdx: number,
    ignore: boolean,
    priority: number,
    logicServ: number,
    match: XiveTctxMatch,
  ): boolean {
    match.tctx = null;
    match.ring = -1;
    const count = this.backend.matchNvt(format, nvtBlk, nvtIdx, ignore, priority, logicServ, match);
    // More than one match = duplicate CAM lines: the fabric fails the notification.
    // (Read back through a widened type: the backend filled `match`.)
    const tctx = match.tctx as XiveTctx | null;
    if (count !== 1 || tctx === null) return false;
    this.stats.presented++;
    if (this.trace.mask & TRACE_ROUTER) this.tracePresent(tctx.cpu, match.ring, priority);
    tctx.ipbUpdate(match.ring, priority);
    return true;
  }

  // Guest errors and trace emission out of the notification path's own code (it stays small
  // enough to inline).

  private enqueueFailed(qaddr: number): void {
    this.trace.guestError(`XIVE: failed to write END data @0x${hex(qaddr)}`);
  }

  private lisnError(what: 'Unknown' | 'Invalid', lisn: number): void {
    this.trace.guestError(`XIVE: ${what} LISN ${hex(lisn)}`);
  }

  private traceMasked(hwIrq: number): void {
    traceEvent(this.trace, 'router.masked', { hwIrq });
  }

  /** `XIVE: <what> <blk>/<idx><tail>`, the router's END and NVT lookup errors. */
  private tableError(what: string, blk: number, idx: number, tail: string): void {
    this.trace.guestError(`XIVE: ${what} ${hex(blk)}/${hex(idx)}${tail}`);
  }

  private traceEnqueue(endBlk: number, endIdx: number, qindex: number, qdata: number): void {
    traceEvent(this.trace, 'router.enqueue', { endBlk, endIdx, qindex, qdata: qdata >>> 0 });
  }

  private tracePresent(cpu: number, ring: number, priority: number): void {
    traceEvent(this.trace, 'router.present', { cpu, ring, priority });
  }

  /** Reset the counters. */
  resetStats(): void {
    const s = this.stats;
    s.unknownLisn = s.easInvalid = s.easMasked = s.endInvalid = s.enqueued = s.endMasked = 0;
    s.endCoalesced = s.presented = s.notDispatched = s.backlogged = s.escalations = 0;
  }
}
