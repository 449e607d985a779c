/**
 * XIVE thread interrupt context (`XiveTCTX`): the four 16-byte rings of one hardware thread and
 * the two output lines (OS external interrupt, HV virtualization interrupt).
 */

import { traceEvent } from '../../sim/trace-events.ts';
import type { TraceSink } from '../../sim/trace-sink.ts';
import * as traceSink from '../../sim/trace-sink.ts';
import * as regs from './regs.ts';

// Module-local copies of the imported constants and helpers the hot paths use: V8 reads an
// imported binding through its module cell (a load and a hole check) at every use, while a
// module-local const folds to an immediate in optimised code.
const { TRACE_TIMA } = traceSink;
const {
  TM_ACK_CNT,
  TM_AGE,
  TM_CPPR,
  TM_IPB,
  TM_LSMFB,
  TM_NSR,
  TM_PIPR,
  TM_QW0_NSR_EB,
  TM_QW0_USER,
  TM_QW0W2_LOGIC_SERV,
  TM_QW0W2_VU,
  TM_QW1_NSR_EO,
  TM_QW1_OS,
  TM_QW1W2_OS_CAM,
  TM_QW1W2_VO,
  TM_QW2_HV_POOL,
  TM_QW2W2_POOL_CAM,
  TM_QW2W2_VP,
  TM_QW3_HV_PHYS,
  TM_QW3_NSR_HE,
  TM_QW3_NSR_HE_PHYS,
  TM_QW3_NSR_HE_POOL,
  TM_QW3W2_VT,
  TM_WORD2,
  XIVE_PRIORITY_MAX,
  xiveIpbToPipr,
  xiveNvtCam,
  xivePriorityToIpb,
} = regs;

/**
 * Each ring's W2 valid bit (VT, VP, VO, VU) is the top bit of the word's first byte: as small
 * integers, so the presenter's scan of every thread tests a byte without converting 2^31.
 */
const QW3_VT_BYTE = TM_QW3W2_VT >>> 24;
const QW2_VP_BYTE = TM_QW2W2_VP >>> 24;
const QW1_VO_BYTE = TM_QW1W2_VO >>> 24;
const QW0_VU_BYTE = TM_QW0W2_VU >>> 24;

/** Serialised thread context (version 1). */
export interface XiveTctxSnapshot {
  v: 1;
  regs: number[];
  osLine: boolean;
  hvLine: boolean;
}

/**
 * One thread interrupt context. Ring arguments are the ring byte offsets `TM_QW0_USER` …
 * `TM_QW3_HV_PHYS`, as in QEMU.
 *
 * Output lines are levels; `onOsLine` / `onHvLine` are called on each level change only (an
 * edge), which is what QEMU's qtest `irq_intercept_in` reports.
 *
 * @remarks Models hw/intc/xive.c (XiveTCTX, gen1 semantics of QEMU 7.2).
 */
export class XiveTctx {
  // `declare`d fields: the constructor's first store sets each field's representation (a
  // class-field definition stores `undefined` first and leaves them generic, slower to read).
  declare readonly cpu: number;
  /** 64 bytes: QW0 USER, QW1 OS, QW2 POOL, QW3 PHYS. */
  declare readonly regs: Uint8Array;
  /** POWER9 external interrupt (QEMU `os_output`). */
  declare onOsLine: (level: boolean) => void;
  /** Hypervisor virtualization interrupt (QEMU `hv_output`). */
  declare onHvLine: (level: boolean) => void;
  declare private os: boolean;
  declare private hv: boolean;
  declare private readonly trace: TraceSink;
  /** {@link hwCamLine}, computed once: the presenter compares it on every thread it scans. */
  declare private readonly hwCam: number;

  constructor(cpu: number, trace: TraceSink) {
    this.cpu = cpu;
    this.hwCam = xiveNvtCam(0, 0x80 | (cpu & 0x7f));
    this.regs = new Uint8Array(64);
    this.onOsLine = () => {};
    this.onHvLine = () => {};
    this.os = false;
    this.hv = false;
    this.trace = trace;
    this.reset();
  }

  get osLine(): boolean {
    return this.os;
  }

  get hvLine(): boolean {
    return this.hv;
  }

  /** Set the output line of a ring (OS → os line; POOL/PHYS → hv line); callbacks on change. */
  private setOutput(ring: number, level: boolean): void {
    if (ring === TM_QW1_OS) this.setOsOutput(level);
    else if (ring === TM_QW2_HV_POOL || ring === TM_QW3_HV_PHYS) this.setHvOutput(level);
  }

  /** {@link setOutput} of the OS ring (the interrupt path's line, kept apart: it stays small). */
  private setOsOutput(level: boolean): void {
    if (this.os === level) return;
    this.os = level;
    if (this.trace.mask & TRACE_TIMA) this.traceLine('tctx.os_line', level);
    this.onOsLine(level);
  }

  /** {@link setOutput} of the POOL and PHYS rings. */
  private setHvOutput(level: boolean): void {
    if (this.hv === level) return;
    this.hv = level;
    if (this.trace.mask & TRACE_TIMA) this.traceLine('tctx.hv_line', level);
    this.onHvLine(level);
  }

  // Trace emission out of the register paths' own code (they stay small enough to inline).

  private traceLine(kind: 'tctx.os_line' | 'tctx.hv_line', level: boolean): void {
    traceEvent(this.trace, kind, { cpu: this.cpu, level: +level });
  }

  private traceIpb(ring: number): void {
    const r = this.regs;
    traceEvent(this.trace, 'tctx.ipb', {
      cpu: this.cpu,
      ring,
      ipb: r[ring + TM_IPB]!,
      pipr: r[ring + TM_PIPR]!,
    });
  }

  private traceCppr(ring: number, cppr: number): void {
    traceEvent(this.trace, 'tctx.cppr', { cpu: this.cpu, ring, oldCppr: this.regs[ring + TM_CPPR]!, cppr });
  }

  private traceAccept(ring: number, nsrCppr: number): void {
    traceEvent(this.trace, 'tctx.accept', { cpu: this.cpu, ring, nsrCppr });
  }

  /** Lower the OS line (pull of the OS context). */
  lowerOsLine(): void {
    this.setOutput(TM_QW1_OS, false);
  }

  /**
   * All registers zero except OS LSMFB = ACK_CNT = AGE = 0xFF and OS/PHYS PIPR = 0xFF; both
   * lines lowered (the CPU reset drops a pending external interrupt).
   *
   * @remarks Models hw/intc/xive.c:xive_tctx_reset().
   */
  reset(): void {
    const r = this.regs;
    r.fill(0);
    r[TM_QW1_OS + TM_LSMFB] = 0xff;
    r[TM_QW1_OS + TM_ACK_CNT] = 0xff;
    r[TM_QW1_OS + TM_AGE] = 0xff;
    // PIPR 0xFF (from IPB 0) avoids a phantom interrupt when the CPPR is first set.
    r[TM_QW1_OS + TM_PIPR] = xiveIpbToPipr(r[TM_QW1_OS + TM_IPB]!);
    r[TM_QW3_HV_PHYS + TM_PIPR] = xiveIpbToPipr(r[TM_QW3_HV_PHYS + TM_IPB]!);
    this.setOutput(TM_QW1_OS, false);
    this.setOutput(TM_QW3_HV_PHYS, false);
  }

  /**
   * Word 2 of a ring (valid bit + CAM), host order.
   *
   * @remarks Models hw/intc/xive.c:xive_tctx_word2().
   */
  word2(ring: number): number {
    return this.word2Bits(ring) >>> 0;
  }

  /**
   * {@link word2} as an int32 (the same bits): what the presenter masks and compares, so a word
   * with its valid bit set is not boxed on the way.
   */
  private word2Bits(ring: number): number {
    const r = this.regs;
    const o = ring + TM_WORD2;
    return (r[o]! << 24) | (r[o + 1]! << 16) | (r[o + 2]! << 8) | r[o + 3]!;
  }

  setWord2(ring: number, w2: number): void {
    const r = this.regs;
    const o = ring + TM_WORD2;
    r[o] = w2 >>> 24;
    r[o + 1] = w2 >>> 16;
    r[o + 2] = w2 >>> 8;
    r[o + 3] = w2;
  }

  /**
   * Record a pending priority: IPB |= bit(priority), PIPR recomputed, notify.
   *
   * @remarks Models hw/intc/xive.c:xive_tctx_ipb_update() (gen1 `pipr_update`).
   */
  ipbUpdate(ring: number, priority: number): void {
    this.ipbMerge(ring, xivePriorityToIpb(priority));
  }

  /**
   * Merge a whole IPB (e.g. an NVT backlog), recompute PIPR and notify; also used with 0 to
   * recompute.
   *
   * @remarks Models hw/intc/xive.c:xive_tctx_ipb_update() with an IPB argument.
   */
  ipbMerge(ring: number, ipb: number): void {
    const r = this.regs;
    r[ring + TM_IPB] = r[ring + TM_IPB]! | (ipb & 0xff);
    r[ring + TM_PIPR] = xiveIpbToPipr(r[ring + TM_IPB]!);
    if (this.trace.mask & TRACE_TIMA) this.traceIpb(ring);
    this.notify(ring);
  }

  /**
   * If PIPR < CPPR: set the ring's exception bit in NSR and raise its line. Otherwise nothing
   * (NSR is not cleared). The POOL ring presents through the PHYS CPPR and NSR (HE = POOL).
   *
   * @remarks Models hw/intc/xive.c:xive_tctx_notify().
   */
  notify(ring: number): void {
    // The OS ring first, the others out of line (this stays small enough to inline).
    if (ring !== TM_QW1_OS) {
      this.notifyOther(ring);
      return;
    }
    const r = this.regs;
    if (r[TM_QW1_OS + TM_PIPR]! < r[TM_QW1_OS + TM_CPPR]!) {
      r[TM_QW1_OS + TM_NSR] = r[TM_QW1_OS + TM_NSR]! | TM_QW1_NSR_EO;
      this.setOsOutput(true);
    }
  }

  /** {@link notify} of the USER, POOL and PHYS rings. */
  private notifyOther(ring: number): void {
    const r = this.regs;
    if (ring === TM_QW2_HV_POOL) {
      if (r[TM_QW2_HV_POOL + TM_PIPR]! < r[TM_QW3_HV_PHYS + TM_CPPR]!) {
        r[TM_QW3_HV_PHYS + TM_NSR] = TM_QW3_NSR_HE_POOL << 6;
        this.setHvOutput(true);
      }
      return;
    }
    if (r[ring + TM_PIPR]! < r[ring + TM_CPPR]!) {
      if (ring === TM_QW3_HV_PHYS) r[ring + TM_NSR] = r[ring + TM_NSR]! | (TM_QW3_NSR_HE_PHYS << 6);
      else {
        this.noNotifySupport(ring);
        return;
      }
      this.setHvOutput(true);
    }
  }

  /** QEMU asserts here (an EBB to the USER ring); the model logs and presents nothing. */
  private noNotifySupport(ring: number): void {
    this.trace.guestError(`XIVE: no notification support for ring 0x${ring.toString(16)}`);
  }

  /**
   * CPPR := v (values above 7 become 0xFF), then notify. NSR is left as is.
   *
   * @remarks Models hw/intc/xive.c:xive_tctx_set_cppr().
   */
  setCppr(ring: number, cppr: number): void {
    const v = (cppr & 0xff) > XIVE_PRIORITY_MAX ? 0xff : cppr & 0xff;
    if (this.trace.mask & TRACE_TIMA) this.traceCppr(ring, v);
    this.regs[ring + TM_CPPR] = v;
    this.notify(ring);
  }

  /**
   * Acknowledge: lower the line; if the exception bit is set, CPPR := PIPR, that priority's IPB
   * bit cleared, PIPR recomputed, exception cleared. Returns `(old NSR << 8) | CPPR`.
   *
   * @remarks Models hw/intc/xive.c:xive_tctx_accept().
   */
  accept(ring: number): number {
    const r = this.regs;
    const nsr = r[ring + TM_NSR]!;
    const mask = ring === TM_QW1_OS ? TM_QW1_NSR_EO : ring === TM_QW3_HV_PHYS ? TM_QW3_NSR_HE : TM_QW0_NSR_EB;
    this.setOutput(ring, false);
    if (nsr & mask) {
      const cppr = r[ring + TM_PIPR]!;
      r[ring + TM_CPPR] = cppr;
      r[ring + TM_IPB] = r[ring + TM_IPB]! & ~xivePriorityToIpb(cppr);
      r[ring + TM_PIPR] = xiveIpbToPipr(r[ring + TM_IPB]!);
      r[ring + TM_NSR] = nsr & ~mask;
    }
    const ret = ((nsr << 8) | r[ring + TM_CPPR]!) & 0xffff;
    if (this.trace.mask & TRACE_TIMA) this.traceAccept(ring, ret);
    return ret;
  }

  /** The HW CAM line of this thread: block 0, `1 << 7 | (PIR & 0x7F)` with PIR = cpu. */
  hwCamLine(): number {
    return this.hwCam;
  }

  /**
   * Does this context match an NVT? Returns the matching ring or -1. Checked in the order
   * PHYS, POOL, OS for format 0; USER for format 1. Logical-server (ignore) matching is not
   * supported on gen1.
   *
   * @remarks Models hw/intc/xive.c:xive_presenter_tctx_match().
   */
  match(format: number, nvtBlk: number, nvtIdx: number, ignore: boolean, logicServ: number): number {
    if (format !== 0) return this.matchUser(xiveNvtCam(nvtBlk, nvtIdx), logicServ);
    if (ignore) return this.lsNvtUnsupported(nvtBlk, nvtIdx);
    const r = this.regs;
    const cam = xiveNvtCam(nvtBlk, nvtIdx);
    // Test each ring's valid bit before assembling its word, so scanning many idle threads
    // costs a byte load each.
    if (r[TM_QW3_HV_PHYS + TM_WORD2]! & QW3_VT_BYTE && cam === this.hwCam) return TM_QW3_HV_PHYS;
    if (
      r[TM_QW2_HV_POOL + TM_WORD2]! & QW2_VP_BYTE &&
      cam === (this.word2Bits(TM_QW2_HV_POOL) & TM_QW2W2_POOL_CAM)
    )
      return TM_QW2_HV_POOL;
    if (r[TM_QW1_OS + TM_WORD2]! & QW1_VO_BYTE && cam === (this.word2Bits(TM_QW1_OS) & TM_QW1W2_OS_CAM))
      return TM_QW1_OS;
    return -1;
  }

  /** {@link match} for format 1 (logical server): the OS CAM and the USER ring's server. */
  private matchUser(cam: number, logicServ: number): number {
    const r = this.regs;
    return r[TM_QW1_OS + TM_WORD2]! & QW1_VO_BYTE &&
      cam === (this.word2Bits(TM_QW1_OS) & TM_QW1W2_OS_CAM) &&
      r[TM_QW0_USER + TM_WORD2]! & QW0_VU_BYTE &&
      logicServ === (this.word2Bits(TM_QW0_USER) & TM_QW0W2_LOGIC_SERV)
      ? TM_QW0_USER
      : -1;
  }

  /** Logical-server matching (`cam_ignore`) is not supported on gen1: logged, no match. */
  private lsNvtUnsupported(nvtBlk: number, nvtIdx: number): number {
    this.trace.guestError(`XIVE: no support for LS NVT ${nvtBlk.toString(16)}/${nvtIdx.toString(16)}`);
    return -1;
  }

  snapshot(): XiveTctxSnapshot {
    return { v: 1, regs: Array.from(this.regs), osLine: this.os, hvLine: this.hv };
  }

  /** Restores registers and line levels; line callbacks fire for levels that change. */
  restore(s: unknown): void {
    const snap = s as XiveTctxSnapshot;
    if (snap?.v !== 1 || !Array.isArray(snap.regs) || snap.regs.length !== 64) {
      throw new Error('XiveTctx.restore: not a version 1 snapshot');
    }
    this.regs.set(snap.regs);
    this.setOutput(TM_QW1_OS, snap.osLine);
    this.setOutput(TM_QW3_HV_PHYS, snap.hvLine);
  }
}
