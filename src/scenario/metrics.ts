/**
 * The run probe: a {@link TraceSink} that counts the model's own paths as they emit their trace
 * events (the source's trigger path, the router's enqueue and masked-EAS paths, the machine's
 * hypercall dispatch), per interrupt and per queue. Counting trace events keeps every number
 * a count of the path running: nothing is recomputed beside the model.
 *
 * Emulated, the events come from QEMU's XIVE model, numbered as the guest numbers them (source
 * number = LISN, END index = server << 3 | priority). Under KVM they come from the host's POWER9
 * chip, which numbers its own way: a {@link HostView} translates (the chip's IPI behind each
 * LISN, the guest VPs' ENDs) and leaves out what is the host's own (escalations into its
 * queues, the hypervisor ring), and the VMM's events reach the probe through
 * {@link RunProbe.vmmSide}, which counts only its hypercalls.
 */

import { TM_QW1_NSR_EO, TM_QW1_OS, XIVE_ESB_OFF } from '../hw/xive/regs.ts';
import { type TraceKind, traceArgs } from '../sim/trace-events.ts';
import {
  TRACE_ESB,
  TRACE_GUEST_ERROR,
  TRACE_HCALL,
  TRACE_ROUTER,
  TRACE_TIMA,
  type TraceSink,
} from '../sim/trace-sink.ts';

/** Where the counted events carry what the probe reads. */
const ESB_TRIGGER = traceArgs('esb.trigger');
const ESB_FORWARD = traceArgs('esb.forward');
const ROUTER_MASKED = traceArgs('router.masked');
const ROUTER_ENQUEUE = traceArgs('router.enqueue');
const TCTX_ACCEPT = traceArgs('tctx.accept');
const HCALL = traceArgs('hcall');

/** sPAPR END index = server << 3 | priority (spapr_xive_target_to_end). */
const END_PRIO_SHIFT = 3;

/** How the probe reads the host chip's events in KVM mode. */
export interface HostView {
  /** Per source number of the chip's IPI source: the LISN that IPI backs, −1 none. */
  readonly lisnOfSrc: Int32Array;
  /** Per LISN: the source number of the chip IPI behind it, −1 none (the inverse). */
  readonly srcOfLisn: Int32Array;
  /** The chip's hardware irq number of IPI source 0 (router events carry hardware numbers). */
  readonly hwBase: number;
  /** The sPAPR END index (server << 3 | priority) of a chip END, −1 for the host's queues. */
  readonly endOf: (chipEnd: number) => number;
  /** Per LISN, 1 for an LSI: the runner stamps its live triggers (assertions), not the chip,
   * whose trigger stores for it include deasserts and the EOI's re-trigger. */
  readonly lsi: Uint8Array;
}

export class RunProbe implements TraceSink {
  mask: number;
  /** Run sequence: bumped on every live trigger and every delivery, to order them. */
  seq: number;
  /** Per LISN: triggers that forwarded (the trigger path, not the EOI path). */
  readonly triggerForwarded: Uint32Array;
  /** Per LISN: sequence of the last trigger that found the source on; −1 none. */
  readonly lastLiveTrigger: Float64Array;
  /** Per LISN: forwarded events dropped at a masked EAS. */
  readonly easMasked: Uint32Array;
  /** Per LISN: EQ entries written for its events. */
  readonly enqueued: Uint32Array;
  /** EQ entries written with no source event being routed, by EISN. */
  readonly strayEnqueued: Map<number, number>;
  /** Per END index: EQ entries written, and the most written-but-unread entries seen. */
  readonly endEnqueued: Uint32Array;
  readonly endMaxOccupancy: Uint32Array;
  /** Entries the guest has read from the queue of END `idx` (set by the runner). */
  queueRead: (endIdx: number) => number;
  /** Per vCPU: OS-ring acknowledges that returned a pending interrupt (NSR EO set). */
  readonly acks: Uint32Array;
  /** The LISN whose event the router is handling (set by `esb.forward`), −1 none. */
  routing: number;
  /** Hypercalls by opcode. */
  readonly hcalls: Map<number, number>;
  /** Guest-error lines (the first 64) and their count. */
  readonly guestErrors: string[];
  guestErrorCount: number;
  /** Events are also forwarded here (a ring trace for failure messages), or null. */
  readonly inner: TraceSink | null;
  /** KVM mode: how to read the host chip's events; null emulated. */
  hostView: HostView | null;
  /** The event being counted, by argument position. */
  private readonly args: Float64Array;

  constructor(nrIrqs: number, nrEnds: number, inner: TraceSink | null = null) {
    this.mask = TRACE_ESB | TRACE_ROUTER | TRACE_HCALL | TRACE_TIMA | TRACE_GUEST_ERROR | (inner?.mask ?? 0);
    this.seq = 0;
    this.triggerForwarded = new Uint32Array(nrIrqs);
    this.lastLiveTrigger = new Float64Array(nrIrqs).fill(-1);
    this.easMasked = new Uint32Array(nrIrqs);
    this.enqueued = new Uint32Array(nrIrqs);
    this.strayEnqueued = new Map();
    this.endEnqueued = new Uint32Array(nrEnds);
    this.endMaxOccupancy = new Uint32Array(nrEnds);
    this.queueRead = () => 0;
    this.acks = new Uint32Array(nrEnds >>> END_PRIO_SHIFT);
    this.routing = -1;
    this.hcalls = new Map();
    this.guestErrors = [];
    this.guestErrorCount = 0;
    this.inner = inner;
    this.hostView = null;
    this.args = new Float64Array(4);
  }

  /** The LISN of a source event's source number (emulated: itself), −1 none of the guest's. */
  private lisnOfSrc(srcno: number): number {
    const v = this.hostView;
    return v === null ? srcno : (v.lisnOfSrc[srcno] ?? -1);
  }

  /**
   * The sink for the VMM's own events in KVM mode: they all reach the inner trace, and only its
   * hypercalls and guest errors are counted (QEMU's XIVE model does not route anything there).
   */
  vmmSide(): TraceSink {
    const inner = this.inner;
    return {
      mask: TRACE_HCALL | TRACE_GUEST_ERROR | (inner?.mask ?? 0),
      emit: (cat, kind, a0, a1, a2, a3) => {
        if (kind === 'hcall') this.countHcall(this.load(a0, a1, a2, a3)[HCALL.opcode]!);
        if (inner && cat & inner.mask) inner.emit(cat, kind, a0, a1, a2, a3);
      },
      guestError: (msg) => this.guestError(msg),
    };
  }

  /** Stamp a trigger the runner made through a path that emits no trace (an LSI assert). */
  noteLiveTrigger(lisn: number): void {
    this.lastLiveTrigger[lisn] = ++this.seq;
  }

  /** A delivery's place in the run order. */
  nextSeq(): number {
    return ++this.seq;
  }

  emit(cat: number, kind: TraceKind, a0: number, a1: number, a2: number, a3: number): void {
    const a = this.load(a0, a1, a2, a3);
    switch (kind) {
      case 'esb.trigger': {
        const lisn = this.lisnOfSrc(a[ESB_TRIGGER.srcno]!);
        if (lisn < 0) break;
        // A trigger that finds the source off is dropped.
        if (a[ESB_TRIGGER.oldPq] !== XIVE_ESB_OFF && this.hostView?.lsi[lisn] !== 1)
          this.lastLiveTrigger[lisn] = ++this.seq;
        if (a[ESB_TRIGGER.forward]) this.triggerForwarded[lisn]!++;
        break;
      }
      case 'router.masked': {
        const v = this.hostView;
        const hw = a[ROUTER_MASKED.hwIrq]!;
        const lisn = v === null ? hw : (v.lisnOfSrc[hw - v.hwBase] ?? -1);
        if (lisn >= 0) this.easMasked[lisn]!++;
        break;
      }
      case 'esb.forward':
        // The source notifies the router; the enqueue that follows is this LISN's.
        this.routing = this.lisnOfSrc(a[ESB_FORWARD.srcno]!);
        break;
      case 'router.enqueue':
        this.enqueue(a[ROUTER_ENQUEUE.endIdx]!, a[ROUTER_ENQUEUE.qdata]!);
        break;
      case 'tctx.accept': {
        // An acknowledge with the exception bit set took one. Under KVM the vCPU's OS ring is
        // its host thread's (vCPU i on thread i).
        const cpu = a[TCTX_ACCEPT.cpu]!;
        if (
          a[TCTX_ACCEPT.ring] === TM_QW1_OS &&
          a[TCTX_ACCEPT.nsrCppr]! & (TM_QW1_NSR_EO << 8) &&
          cpu < this.acks.length
        )
          this.acks[cpu]!++;
        break;
      }
      case 'hcall':
        this.countHcall(a[HCALL.opcode]!);
        break;
    }
    if (this.inner && cat & this.inner.mask) this.inner.emit(cat, kind, a0, a1, a2, a3);
  }

  /**
   * An EQ entry written to chip END `chipEnd` with `qdata` = gen << 31 | EISN. The guest chooses
   * the EISN (Linux: its virq), so the entry is attributed to the LISN being routed.
   */
  private enqueue(chipEnd: number, qdata: number): void {
    const end = this.hostView === null ? chipEnd : this.hostView.endOf(chipEnd);
    if (end < 0) return; // a host queue (an escalation)
    const lisn = this.routing;
    this.routing = -1;
    if (lisn >= 0 && lisn < this.enqueued.length) this.enqueued[lisn]!++;
    else {
      const eisn = qdata & 0x7fff_ffff;
      this.strayEnqueued.set(eisn, (this.strayEnqueued.get(eisn) ?? 0) + 1);
    }
    if (end < this.endEnqueued.length) {
      const n = ++this.endEnqueued[end]!;
      const occ = n - this.queueRead(end);
      if (occ > this.endMaxOccupancy[end]!) this.endMaxOccupancy[end] = occ;
    }
  }

  /** The event's arguments by position (read with the `traceArgs` indexes above). */
  private load(a0: number, a1: number, a2: number, a3: number): Float64Array {
    const a = this.args;
    a[0] = a0;
    a[1] = a1;
    a[2] = a2;
    a[3] = a3;
    return a;
  }

  private countHcall(opcode: number): void {
    this.hcalls.set(opcode, (this.hcalls.get(opcode) ?? 0) + 1);
  }

  guestError(msg: string): void {
    this.guestErrorCount++;
    if (this.guestErrors.length < 64) this.guestErrors.push(msg);
    this.inner?.guestError(msg);
  }

  /** (cpu, priority) of an sPAPR END index. */
  static endTarget(endIdx: number): [number, number] {
    return [endIdx >>> END_PRIO_SHIFT, endIdx & ((1 << END_PRIO_SHIFT) - 1)];
  }
}
