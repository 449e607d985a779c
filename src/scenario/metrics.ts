/**
 * The run probe: a {@link TraceSink} that counts the model's own paths as they emit their trace
 * events (the source's trigger path, the router's enqueue and masked-EAS paths, the machine's
 * hypercall dispatch), per interrupt and per queue. Counting trace events keeps every number
 * a count of the path running: nothing is recomputed beside the model.
 */

import {
  TRACE_ESB,
  TRACE_GUEST_ERROR,
  TRACE_HCALL,
  TRACE_ROUTER,
  TRACE_TIMA,
  type TraceSink,
} from '../hw/trace-sink.ts';

/** TM_QW1_NSR_EO: the OS ring's exception bit. */
const TM_NSR_EO = 0x80;
/** XIVE_ESB_OFF: a trigger that finds the source off is dropped. */
const PQ_OFF = 1;
/** sPAPR END index = server << 3 | priority (spapr_xive_target_to_end). */
const END_PRIO_SHIFT = 3;

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
  }

  /** Stamp a trigger the runner made through a path that emits no trace (an LSI assert). */
  noteLiveTrigger(lisn: number): void {
    this.lastLiveTrigger[lisn] = ++this.seq;
  }

  /** A delivery's place in the run order. */
  nextSeq(): number {
    return ++this.seq;
  }

  emit(cat: number, kind: string, a0: number, a1: number, a2: number, a3: number): void {
    switch (kind) {
      case 'esb.trigger':
        // (srcno, old PQ, new PQ, forward)
        if (a1 !== PQ_OFF) this.lastLiveTrigger[a0] = ++this.seq;
        if (a3) this.triggerForwarded[a0]!++;
        break;
      case 'router.masked':
        this.easMasked[a0]!++;
        break;
      case 'esb.forward':
        // (srcno): the source notifies the router; the enqueue that follows is this LISN's.
        this.routing = a0;
        break;
      case 'router.enqueue': {
        // (END block, END index, queue index, data = gen << 31 | EISN). The guest chooses the
        // EISN (Linux: its virq), so the entry is attributed to the LISN being routed.
        const lisn = this.routing;
        this.routing = -1;
        if (lisn >= 0 && lisn < this.enqueued.length) this.enqueued[lisn]!++;
        else {
          const eisn = a3 & 0x7fff_ffff;
          this.strayEnqueued.set(eisn, (this.strayEnqueued.get(eisn) ?? 0) + 1);
        }
        if (a1 < this.endEnqueued.length) {
          const n = ++this.endEnqueued[a1]!;
          const occ = n - this.queueRead(a1);
          if (occ > this.endMaxOccupancy[a1]!) this.endMaxOccupancy[a1] = occ;
        }
        break;
      }
      case 'tctx.accept':
        // (cpu, ring, oldNSR << 8 | CPPR): an acknowledge with the exception bit set took one.
        if (a2 & (TM_NSR_EO << 8) && a0 < this.acks.length) this.acks[a0]!++;
        break;
      case 'hcall':
        this.hcalls.set(a1, (this.hcalls.get(a1) ?? 0) + 1);
        break;
    }
    if (this.inner && cat & this.inner.mask) this.inner.emit(cat, kind, a0, a1, a2, a3);
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
