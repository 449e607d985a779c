/**
 * XIVE interrupt source: per-source PQ state, LSI level, and the ESB MMIO pages.
 *
 * Per-source state lives in lazily created blocks of 1024 sources (as the kernel's sparse irq
 * tables): a block is allocated on the first write to one of its sources; an absent block reads
 * as "every source at `resetPq`, MSI, not asserted, counters 0".
 */

import { traceEvent } from '../../sim/trace-events.ts';
import type { TraceSink } from '../../sim/trace-sink.ts';
import * as traceSink from '../../sim/trace-sink.ts';
import type { AccessSize, MmioDevice, Word64 } from '../mmio.ts';
import * as esb from './esb.ts';
import * as regs from './regs.ts';

// Module-local copies of the imported constants and helpers the hot paths use: V8 reads an
// imported binding through its module cell (a load and a hole check) at every use, while a
// module-local const folds to an immediate in optimised code.
const { TRACE_ESB } = traceSink;
const { XIVE_ESB_FORWARD, xiveEsbEoi, xiveEsbTrigger } = esb;
const {
  XIVE_ESB_4K_2PAGE,
  XIVE_ESB_64K_2PAGE,
  XIVE_ESB_GET,
  XIVE_ESB_OFF,
  XIVE_ESB_PENDING,
  XIVE_ESB_QUEUED,
  XIVE_ESB_RESET,
  XIVE_ESB_SET_PQ_00,
  XIVE_ESB_STORE_EOI,
} = regs;

/** ESB management must go through the H_INT_ESB hcall. */
export const XIVE_SRC_H_INT_ESB = 0x1;
/** StoreEOI supported (store to 0x400 of the management page). */
export const XIVE_SRC_STORE_EOI = 0x2;
/** PQ checking offloaded to the router (newer QEMU); MSI triggers always forward. */
export const XIVE_SRC_PQ_DISABLE = 0x4;

/** Status byte bit 2: the LSI line is asserted. Bits 1:0 are PQ. */
export const XIVE_STATUS_ASSERTED = 0x4;

/** Counter kinds for {@link XiveSource.counter}. */
/** Trigger operations (set_irq(1), trigger-page and trigger stores, {@link XiveSource.esbTrigger}). */
export const XIVE_STAT_TRIGGER = 0;
/** Events forwarded to the notifier, from a trigger or an EOI. */
export const XIVE_STAT_FORWARD = 1;
/** Triggers that found P=1 and did not forward. */
export const XIVE_STAT_COALESCED = 2;
/** Triggers that found PQ=01 and were dropped. */
export const XIVE_STAT_OFF = 3;
const XIVE_STAT_KINDS = 4;

const BLOCK_SHIFT = 10;
const BLOCK_SIZE = 1 << BLOCK_SHIFT;
const BLOCK_MASK = BLOCK_SIZE - 1;

export interface XiveSourceConfig {
  nrIrqs: number;
  esbShift: 12 | 13 | 16 | 17;
  flags: number;
  resetPq: number;
}

/** One block of 1024 sources. */
class SourceBlock {
  // `declare`d fields: the constructor's first store sets each field's representation (a
  // class-field definition stores `undefined` first and leaves them generic, slower to read).
  /** PQ in bits 1:0, {@link XIVE_STATUS_ASSERTED} in bit 2. */
  declare readonly status: Uint8Array;
  /** 1 where the source is level-sensitive (not cleared by reset, as QEMU's `lsi_map`). */
  declare readonly lsi: Uint8Array;
  constructor(resetPq: number) {
    this.status = new Uint8Array(BLOCK_SIZE).fill(resetPq);
    this.lsi = new Uint8Array(BLOCK_SIZE);
  }
}

/** Serialised source state (version 1). */
export interface XiveSourceSnapshot {
  v: 1;
  /** Allocated blocks only: block number, status bytes, LSI flags. */
  blocks: { n: number; status: number[]; lsi: number[] }[];
}

const hex = (n: number): string => n.toString(16);

/**
 * Emit a PQ transition (`r`: a primitive's result). Trace emission is kept out of the access
 * paths' own code, so they stay small enough for the JIT to inline.
 */
function pqEvent(t: TraceSink, kind: 'esb.trigger' | 'esb.eoi', srcno: number, old: number, r: number): void {
  traceEvent(t, kind, { srcno, oldPq: old & 3, newPq: r & 3, forward: r >> 2 });
}

/** Emit a SET_PQ transition (out of line, as {@link pqEvent}). */
function setPqEvent(t: TraceSink, srcno: number, old: number, pq: number): void {
  traceEvent(t, 'esb.set_pq', { srcno, oldPq: old & 3, newPq: pq });
}

/**
 * A XIVE interrupt source (`XiveSource`): the ESB MMIO region of `nrIrqs << esbShift` bytes.
 *
 * @remarks Models hw/intc/xive.c (XiveSource) as in QEMU 7.2: 8-byte-only ESB accesses, no
 * ESB inject.
 */
export class XiveSource implements MmioDevice {
  // `declare`d fields: the constructor's first store sets each field's representation (a
  // class-field definition stores `undefined` first and leaves them generic, slower to read).
  declare readonly nrIrqs: number;
  declare readonly esbShift: number;
  declare readonly flags: number;
  declare readonly resetPq: number;
  /**
   * Called on every forwarded event; the owner sets it (router notify). `pqChecked` is false
   * only for PQ_DISABLE sources, where the router must run the PQ check itself.
   */
  declare notifier: (srcno: number, pqChecked: boolean) => void;
  declare private readonly trace: TraceSink;
  declare private readonly blocks: (SourceBlock | null)[];
  /**
   * `counters[srcno * XIVE_STAT_KINDS + kind]`, 0 for a source of no allocated block. One array
   * for every source, not one per block: few sources are ever counted, and a large array's
   * pages are only touched where they are (a block's own would be zeroed whole).
   */
  declare private readonly counters: Uint32Array;
  declare private readonly twoPage: boolean;
  /**
   * Size of the trigger page in 2-page mode, else 0: ESB offsets below it trigger. A number, not
   * a second test of {@link twoPage}: the access path tests one integer.
   */
  declare private readonly trigPageSize: number;
  /** Bytes per source: `1 << esbShift`. */
  declare private readonly srcSize: number;
  /** `2 ** -esbShift`, precomputed: a variable exponent would cost a Math.pow per access. */
  declare private readonly invSrcSize: number;
  /** Bytes per page: `1 << (esbShift - 1)` in 2-page mode. */
  declare private readonly pageSize: number;

  constructor(cfg: XiveSourceConfig, trace: TraceSink) {
    if (!Number.isInteger(cfg.nrIrqs) || cfg.nrIrqs <= 0 || cfg.nrIrqs > 0x1000_0000) {
      throw new Error(`XiveSource: invalid nrIrqs ${cfg.nrIrqs}`);
    }
    if (cfg.esbShift !== 12 && cfg.esbShift !== 13 && cfg.esbShift !== 16 && cfg.esbShift !== 17) {
      throw new Error(`XiveSource: invalid esbShift ${cfg.esbShift}`);
    }
    this.nrIrqs = cfg.nrIrqs;
    this.esbShift = cfg.esbShift;
    this.flags = cfg.flags;
    this.resetPq = cfg.resetPq & 3;
    this.notifier = () => {};
    this.trace = trace;
    this.blocks = new Array<SourceBlock | null>(Math.ceil(cfg.nrIrqs / BLOCK_SIZE)).fill(null);
    this.counters = new Uint32Array(cfg.nrIrqs * XIVE_STAT_KINDS);
    this.twoPage = cfg.esbShift === XIVE_ESB_4K_2PAGE || cfg.esbShift === XIVE_ESB_64K_2PAGE;
    this.srcSize = 2 ** cfg.esbShift;
    this.invSrcSize = 2 ** -cfg.esbShift;
    this.pageSize = this.twoPage ? this.srcSize / 2 : this.srcSize;
    this.trigPageSize = this.twoPage ? this.pageSize : 0;
  }

  /** Size in bytes of the ESB MMIO region. */
  get esbSize(): number {
    return this.nrIrqs * this.srcSize;
  }

  /** True with 2 pages per source (even = trigger, odd = management). */
  get isTwoPage(): boolean {
    return this.twoPage;
  }

  // -------------------------------------------------------------------------------------------
  // State access
  // -------------------------------------------------------------------------------------------

  private checkSrcno(srcno: number): void {
    if (!(srcno >= 0 && srcno < this.nrIrqs && Number.isInteger(srcno))) {
      throw new Error(`XiveSource: source ${srcno} out of range (nrIrqs ${this.nrIrqs})`);
    }
  }

  /** The block holding `srcno`, allocated on demand. */
  private block(srcno: number): SourceBlock {
    const n = srcno >>> BLOCK_SHIFT;
    let b = this.blocks[n];
    if (b === null || b === undefined) {
      b = new SourceBlock(this.resetPq);
      this.blocks[n] = b;
    }
    return b;
  }

  private status(srcno: number): number {
    const b = this.blocks[srcno >>> BLOCK_SHIFT];
    return b ? b.status[srcno & BLOCK_MASK]! : this.resetPq;
  }

  /** Count an event of `kind` on a source of an allocated block. */
  private count(srcno: number, kind: number): void {
    this.counters[srcno * XIVE_STAT_KINDS + kind]!++;
  }

  /** Per-source counter (`XIVE_STAT_*`). */
  counter(srcno: number, kind: number): number {
    this.checkSrcno(srcno);
    return this.counters[srcno * XIVE_STAT_KINDS + kind]!;
  }

  /** Number of allocated 1024-source blocks (for tests and memory accounting). */
  get allocatedBlocks(): number {
    let n = 0;
    for (const b of this.blocks) if (b) n++;
    return n;
  }

  isLsi(srcno: number): boolean {
    this.checkSrcno(srcno);
    const b = this.blocks[srcno >>> BLOCK_SHIFT];
    return b ? b.lsi[srcno & BLOCK_MASK] === 1 : false;
  }

  setLsi(srcno: number, lsi: boolean): void {
    this.checkSrcno(srcno);
    this.block(srcno).lsi[srcno & BLOCK_MASK] = lsi ? 1 : 0;
  }

  isAsserted(srcno: number): boolean {
    this.checkSrcno(srcno);
    return (this.status(srcno) & XIVE_STATUS_ASSERTED) !== 0;
  }

  /**
   * Record an LSI's line level (no trigger): the KVM backend keeps QEMU's copy of the level.
   *
   * @remarks Models hw/intc/xive.c:xive_source_set_asserted().
   */
  setAsserted(srcno: number, on: boolean): void {
    const st = this.block(srcno).status;
    const i = srcno & BLOCK_MASK;
    st[i] = on ? st[i]! | XIVE_STATUS_ASSERTED : st[i]! & ~XIVE_STATUS_ASSERTED;
  }

  /**
   * @remarks Models hw/intc/xive.c:xive_source_esb_get().
   */
  getPq(srcno: number): number {
    this.checkSrcno(srcno);
    return this.status(srcno) & 3;
  }

  /**
   * Overwrite PQ, keeping the assertion bit; returns the old PQ.
   *
   * @remarks Models hw/intc/xive.c:xive_source_esb_set().
   */
  setPq(srcno: number, pq: number): number {
    this.checkSrcno(srcno);
    return this.swapPq(srcno, pq & 3);
  }

  /** {@link setPq} for a source number already checked and a PQ of 2 bits. */
  private swapPq(srcno: number, pq: number): number {
    const st = this.block(srcno).status;
    const i = srcno & BLOCK_MASK;
    const old = st[i]!;
    st[i] = (old & ~3) | pq;
    if (this.trace.mask & TRACE_ESB) setPqEvent(this.trace, srcno, old, pq);
    return old & 3;
  }

  private esbDisabled(srcno: number): boolean {
    return (this.flags & XIVE_SRC_PQ_DISABLE) !== 0 && !this.isLsi(srcno);
  }

  // -------------------------------------------------------------------------------------------
  // Event paths
  // -------------------------------------------------------------------------------------------

  /**
   * Run the trigger primitive on a source (the MSI path, also for LSIs reached through their ESB
   * trigger page); returns whether the event must be forwarded. Does not call the notifier.
   *
   * @remarks Models hw/intc/xive.c:xive_source_esb_trigger().
   */
  esbTrigger(srcno: number): boolean {
    this.checkSrcno(srcno);
    return this.trigger(srcno);
  }

  /** {@link esbTrigger} for a source number already checked. */
  private trigger(srcno: number): boolean {
    const b = this.block(srcno);
    const i = srcno & BLOCK_MASK;
    this.count(srcno, XIVE_STAT_TRIGGER);
    const lsi = b.lsi[i] === 1;
    if ((this.flags & XIVE_SRC_PQ_DISABLE) !== 0 && !lsi) return true;
    const st = b.status;
    const old = st[i]!;
    const r = xiveEsbTrigger(old & 3);
    st[i] = (old & ~3) | (r & 3);
    // A forwarded MSI with no trace listening is done; the rest out of line (this stays small
    // enough for the JIT to inline).
    if ((r & XIVE_ESB_FORWARD) !== 0 && !lsi && (this.trace.mask & TRACE_ESB) === 0) return true;
    return this.triggerTail(srcno, old, r, lsi);
  }

  /** {@link trigger} past the PQ update: dropped-event counts, the trace, an LSI's Q. */
  private triggerTail(srcno: number, old: number, r: number, lsi: boolean): boolean {
    if ((r & XIVE_ESB_FORWARD) === 0)
      this.count(srcno, (old & 3) === XIVE_ESB_OFF ? XIVE_STAT_OFF : XIVE_STAT_COALESCED);
    if (this.trace.mask & TRACE_ESB) pqEvent(this.trace, 'esb.trigger', srcno, old, r);
    if (lsi && (r & 3) === XIVE_ESB_QUEUED) this.lsiQueued(srcno);
    return (r & XIVE_ESB_FORWARD) !== 0;
  }

  private lsiQueued(srcno: number): void {
    this.trace.guestError(`XIVE: queued an event on LSI IRQ ${srcno}`);
  }

  /**
   * Run the EOI primitive; an LSI whose line is still asserted is re-triggered. Returns whether
   * an event must be forwarded. Does not call the notifier.
   *
   * @remarks Models hw/intc/xive.c:xive_source_esb_eoi().
   */
  esbEoi(srcno: number): boolean {
    this.checkSrcno(srcno);
    return this.eoi(srcno);
  }

  /** {@link esbEoi} for a source number already checked. */
  private eoi(srcno: number): boolean {
    if (this.esbDisabled(srcno)) {
      this.invalidEoi(srcno);
      return false;
    }
    const st = this.block(srcno).status;
    const i = srcno & BLOCK_MASK;
    const old = st[i]!;
    const r = xiveEsbEoi(old & 3);
    st[i] = (old & ~3) | (r & 3);
    if (this.trace.mask & TRACE_ESB) pqEvent(this.trace, 'esb.eoi', srcno, old, r);
    let fwd = (r & XIVE_ESB_FORWARD) !== 0;
    // LSIs never set Q, but a line still asserted at EOI time must notify again.
    if (this.isLsi(srcno) && (st[i]! & XIVE_STATUS_ASSERTED) !== 0) fwd = this.lsiTrigger(srcno);
    return fwd;
  }

  private invalidEoi(srcno: number): void {
    this.trace.guestError(`XIVE: invalid EOI for IRQ ${srcno}`);
  }

  /**
   * Assert an LSI: only an idle source (PQ 00) moves to 10 and forwards; Q is never set.
   *
   * @remarks Models hw/intc/xive.c:xive_source_lsi_trigger().
   */
  private lsiTrigger(srcno: number): boolean {
    const old = this.status(srcno) & 3;
    this.setAsserted(srcno, true);
    if (old === XIVE_ESB_RESET) {
      this.setPq(srcno, XIVE_ESB_PENDING);
      if (this.trace.mask & TRACE_ESB)
        traceEvent(this.trace, 'esb.lsi', { srcno, oldPq: old, newPq: XIVE_ESB_PENDING, forward: 1 });
      return true;
    }
    if (old === XIVE_ESB_OFF) this.count(srcno, XIVE_STAT_OFF);
    else this.count(srcno, XIVE_STAT_COALESCED);
    return false;
  }

  /**
   * Forward an event to the notifier (the router).
   *
   * @remarks Models hw/intc/xive.c:xive_source_notify().
   */
  private notify(srcno: number): void {
    const b = this.block(srcno);
    const i = srcno & BLOCK_MASK;
    this.count(srcno, XIVE_STAT_FORWARD);
    if (this.trace.mask & TRACE_ESB) this.traceForward(srcno);
    // The PQ was checked here unless the source is PQ_DISABLE (an LSI keeps its PQ): !esbDisabled.
    this.notifier(srcno, (this.flags & XIVE_SRC_PQ_DISABLE) === 0 || b.lsi[i] === 1);
  }

  /** Out of {@link notify}'s line, as {@link pqEvent}. */
  private traceForward(srcno: number): void {
    traceEvent(this.trace, 'esb.forward', { srcno });
  }

  /**
   * A device line: MSI level 1 triggers (0 ignored); LSI level asserts/deasserts.
   *
   * @remarks Models hw/intc/xive.c:xive_source_set_irq().
   */
  setIrq(srcno: number, level: number): void {
    this.checkSrcno(srcno);
    let fwd = false;
    if (this.isLsi(srcno)) {
      if (level) {
        this.count(srcno, XIVE_STAT_TRIGGER);
        fwd = this.lsiTrigger(srcno);
      } else {
        this.setAsserted(srcno, false);
      }
    } else if (level) {
      fwd = this.esbTrigger(srcno);
    }
    if (fwd) this.notify(srcno);
  }

  // -------------------------------------------------------------------------------------------
  // ESB MMIO
  // -------------------------------------------------------------------------------------------

  /** Decode a region offset; returns the source number or -1 (with a guest error). */
  /** An access {@link load} / {@link store} refuses: a size other than 8, or past the sources. */
  private badAccess(offset: number, size: AccessSize, write: boolean): void {
    this.trace.guestError(
      size !== 8
        ? `Invalid ${write ? 'write' : 'read'} at addr 0x${hex(offset)}, size ${size}, region 'xive.esb-emulated', reason: invalid size (min:8 max:8)`
        : `XIVE: invalid ESB ${write ? 'write' : 'read'} @0x${hex(offset)}`,
    );
  }

  /**
   * An 8-byte ESB load. Other sizes are rejected as QEMU 7.2's memory core does: value 0.
   *
   * @remarks Models hw/intc/xive.c:xive_source_esb_read().
   */
  load(offset: number, size: AccessSize, _cpu: number, out: Word64): void {
    const srcno = Math.floor(offset * this.invSrcSize);
    if (size !== 8 || !(offset >= 0 && srcno < this.nrIrqs)) {
      this.badLoad(offset, size, out);
      return;
    }
    const within = offset - srcno * this.srcSize;
    const op = within & 0xfff;
    // GET and SET_PQ_xx (which returns the old PQ) here; a trigger page and LOAD_EOI (below
    // GET) out of line, so this stays small enough for the JIT to inline.
    if (within < this.trigPageSize || op < XIVE_ESB_GET) {
      this.loadOther(srcno, offset, within, out);
      return;
    }
    let ret: number;
    if (op < XIVE_ESB_SET_PQ_00) {
      const b = this.blocks[srcno >>> BLOCK_SHIFT];
      ret = (b !== null && b !== undefined ? b.status[srcno & BLOCK_MASK]! : this.resetPq) & 3;
    } else {
      ret = this.swapPq(srcno, (op >>> 8) & 3);
    }
    out.hi = 0;
    out.lo = ret;
  }

  /**
   * A load from a trigger page (2-page mode: all-ones, with a guest error), or LOAD_EOI (1 when
   * a re-notification was forwarded, else 0).
   */
  private loadOther(srcno: number, offset: number, within: number, out: Word64): void {
    if (within < this.trigPageSize) {
      this.trace.guestError(`XIVE: invalid load on IRQ ${srcno} trigger page at 0x${hex(offset)}`);
      out.setOnes();
    } else {
      out.set(0, this.loadEoi(srcno));
    }
  }

  /** A load refused for its size (value 0, as QEMU 7.2's memory core) or past the sources. */
  private badLoad(offset: number, size: AccessSize, out: Word64): void {
    this.badAccess(offset, size, false);
    if (size !== 8) out.set(0, 0);
    else out.setOnes();
  }

  /** LOAD_EOI: returns whether a re-notification was forwarded (1), not the PQ. */
  private loadEoi(srcno: number): number {
    const fwd = this.eoi(srcno);
    if (fwd) this.notify(srcno);
    return fwd ? 1 : 0;
  }

  /**
   * An 8-byte ESB store. Other sizes are rejected (ignored).
   *
   * @remarks Models hw/intc/xive.c:xive_source_esb_write().
   */
  store(offset: number, size: AccessSize, _hi: number, _lo: number, _cpu: number): void {
    const srcno = Math.floor(offset * this.invSrcSize);
    if (size !== 8 || !(offset >= 0 && srcno < this.nrIrqs)) {
      this.badAccess(offset, size, true);
      return;
    }
    const within = offset - srcno * this.srcSize;
    // In 2-page mode the trigger page only triggers, whatever the offset; on the management
    // page, offsets below STORE_EOI trigger. The other ops out of line, as in load().
    const op = within & 0xfff;
    if (within < this.trigPageSize || op < XIVE_ESB_STORE_EOI) {
      if (this.trigger(srcno)) this.notify(srcno);
    } else {
      this.storeOp(srcno, op);
    }
  }

  /** An ESB store at a management offset from STORE_EOI up: StoreEOI, INJECT, SET_PQ_xx. */
  private storeOp(srcno: number, op: number): void {
    let fwd = false;
    if (op < XIVE_ESB_GET) {
      if ((this.flags & XIVE_SRC_STORE_EOI) === 0) {
        this.invalidStoreEoi(srcno);
        return;
      }
      fwd = this.eoi(srcno);
    } else if (op < XIVE_ESB_SET_PQ_00) {
      // XIVE_ESB_INJECT: forward unconditionally, PQ untouched. QEMU 7.2.22 forwards (a second
      // EQ entry for a routed source, seen by the differential suite), so the model follows it.
      fwd = true;
    } else {
      this.swapPq(srcno, (op >>> 8) & 3);
    }
    if (fwd) this.notify(srcno);
  }

  private invalidStoreEoi(srcno: number): void {
    this.trace.guestError(`XIVE: invalid Store EOI for IRQ ${srcno}`);
  }

  // -------------------------------------------------------------------------------------------
  // Reset and state
  // -------------------------------------------------------------------------------------------

  /**
   * Every status byte := `resetPq` (assertion cleared); the LSI map and counters are kept.
   *
   * @remarks Models hw/intc/xive.c:xive_source_reset().
   */
  reset(): void {
    for (const b of this.blocks) if (b) b.status.fill(this.resetPq);
  }

  /** Hardware state only (status bytes and the LSI map); counters are metrics, not state. */
  snapshot(): XiveSourceSnapshot {
    const blocks: XiveSourceSnapshot['blocks'] = [];
    this.blocks.forEach((b, n) => {
      if (b) blocks.push({ n, status: Array.from(b.status), lsi: Array.from(b.lsi) });
    });
    return { v: 1, blocks };
  }

  restore(s: unknown): void {
    const snap = s as XiveSourceSnapshot;
    if (snap?.v !== 1 || !Array.isArray(snap.blocks)) {
      throw new Error('XiveSource.restore: not a version 1 snapshot');
    }
    this.blocks.fill(null);
    for (const sb of snap.blocks) {
      if (sb.n < 0 || sb.n >= this.blocks.length || sb.status.length !== BLOCK_SIZE) {
        throw new Error(`XiveSource.restore: bad block ${sb.n}`);
      }
      const b = new SourceBlock(this.resetPq);
      b.status.set(sb.status);
      b.lsi.set(sb.lsi);
      this.blocks[sb.n] = b;
    }
    // The counters of a block the snapshot leaves out go with it.
    const per = BLOCK_SIZE * XIVE_STAT_KINDS;
    this.blocks.forEach((b, n) => {
      if (b === null) this.counters.fill(0, n * per, (n + 1) * per);
    });
  }
}
