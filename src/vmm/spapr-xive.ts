/**
 * The sPAPR XIVE interrupt controller (QEMU's `SpaprXive`): the router backend of the pseries
 * machine. It keeps the EAT (one EAS per LISN) and the ENDT (8 ENDs per vCPU) in VMM memory,
 * synthesises NVTs from vCPU ids, owns the interrupt source, the router, one thread context per
 * vCPU and the TIMA, and serves the H_INT_* hypercalls (in `spapr-xive-hcalls.ts`).
 *
 * Numbering (QEMU's spapr_xive_target_to_end() and spapr_xive_cpu_to_nvt()): END index = `(vcpu << 3) + prio`, NVT index = `0x400 + vcpu`, block 0.
 */

import { EBUSY } from '../host/errno.ts';
import { getField32 } from '../hw/bits.ts';
import type { AccessSize, DmaSpace, MmioDevice, Word64 } from '../hw/mmio.ts';
import * as regs from '../hw/xive/regs.ts';
import { XiveRouter, type XiveRouterBackend, type XiveTctxMatch, xiveMatchTctxs } from '../hw/xive/router.ts';
import { XiveSource, type XiveSourceSnapshot } from '../hw/xive/source.ts';
import { XiveTctx } from '../hw/xive/tctx.ts';
import { XiveTima } from '../hw/xive/tima.ts';
import { traceEvent } from '../sim/trace-events.ts';
import type { TraceSink } from '../sim/trace-sink.ts';
import * as traceSink from '../sim/trace-sink.ts';
import { spaprXiveHcall } from './spapr-xive-hcalls.ts';
import * as layout from './spapr-xive-layout.ts';

// Module-local copies of the imported constants the router's hooks use: V8 reads an imported
// binding through its module cell (a load and a hole check) at every use, while a module-local
// const folds to an immediate in optimised code.
const { TRACE_VMM } = traceSink;
const {
  SPAPR_XIVE_BLOCK_ID,
  SPAPR_XIVE_END_ESB_SHIFT,
  SPAPR_XIVE_ESB_SHIFT,
  SPAPR_XIVE_NVT_BASE,
  SPAPR_XIVE_VC_BASE,
} = layout;
const {
  EAS_END_DATA_LO,
  EAS_END_INDEX_HI,
  EAS_MASKED_LO,
  EAS_VALID_HI,
  END_W0_QSIZE,
  END_W0_VALID,
  END_W1_ESe_Q,
  END_W1_ESn_Q,
  END_W1_GENERATION,
  END_W1_PAGE_OFF,
  END_W2_EQ_ADDR_HI,
  END_W6_NVT_INDEX,
  END_W7_F0_PRIORITY,
  NVT_W0_VALID,
  TM_ACK_CNT,
  TM_AGE,
  TM_CPPR,
  TM_INC,
  TM_IPB,
  TM_LSMFB,
  TM_NSR,
  TM_PIPR,
  TM_QW1_OS,
  TM_QW1W2_VO,
  XIVE_ESB_OFF,
  XIVE_ESB_VAL_P,
  XIVE_ESB_VAL_Q,
  xiveNvtCam,
} = regs;

export * from './spapr-xive-layout.ts';

/**
 * The in-kernel (KVM) side of the controller, set by the KVM accelerator (`spapr-xive-kvm.ts`).
 * While {@link inKernel}, the hcalls mirror their effects into the KVM device and fail with
 * H_HARDWARE when it refuses; device lines become ESB trigger stores. Negative results are −errno
 * (or the signal the VMM took for {@link esbRw}).
 */
export interface SpaprXiveKvmBackend {
  /** `spapr_xive_in_kernel()`: the KVM device is connected. */
  readonly inKernel: boolean;
  sourceResetOne(lisn: number): number;
  setSourceConfig(lisn: number, easHi: number, easLo: number): number;
  setQueueConfig(endIdx: number, end: Uint32Array): number;
  /** Refresh END w1 (toggle, index) from KVM, in place. */
  getQueueConfig(endIdx: number, end: Uint32Array): number;
  syncSource(lisn: number): number;
  reset(): number;
  esbRw(lisn: number, offset: number, hi: number, lo: number, write: boolean, out: Word64): number;
  setIrq(lisn: number, level: number): void;
  /** Pull the device's state into the emulated copies before the monitor prints them. */
  synchronizeForMonitor(): void;
}

export interface SpaprXiveConfig {
  /** Number of LISNs (0x2000 on QEMU 7.2). */
  nrIrqs: number;
  /** vCPU ids 0 … nrServers−1 each get a thread context and 8 ENDs. */
  nrServers: number;
  /** Priorities ≥ hvPrio are reserved (`hv-prio`, 7). */
  hvPrio: number;
}

/** Serialised controller state (version 1). */
export interface SpaprXiveSnapshot {
  v: 1;
  exploitation: boolean;
  /** EAT words, [hi, lo] per LISN. */
  eat: number[];
  /** ENDT words, 8 per END. */
  endt: number[];
  source: XiveSourceSnapshot;
  tctxs: unknown[];
}

const hex = (n: number): string => n.toString(16);
const hex2 = (n: number): string => n.toString(16).padStart(2, '0');
const hex8 = (n: number): string => (n >>> 0).toString(16).padStart(8, '0');
/** C `%3d`-style right alignment. */
const padNum = (n: number, width: number): string => String(n).padStart(width, ' ');

/**
 * The END ESB window of sPAPR: mapped after the source ESBs but always disabled, so every load
 * reads 0 and stores are dropped (observed on QEMU 7.2: the region is unassigned).
 *
 * @remarks Models hw/intc/spapr_xive.c:spapr_xive_mmio_set_enabled() leaving `end_source.esb_mmio`
 * disabled.
 */
class SpaprEndEsbDisabled implements MmioDevice {
  load(_offset: number, _size: AccessSize, _cpu: number, out: Word64): void {
    out.set(0, 0);
  }
  store(_offset: number, _size: AccessSize, _hi: number, _lo: number, _cpu: number): void {}
}

/**
 * The sPAPR XIVE controller.
 *
 * @remarks Models hw/intc/spapr_xive.c (SpaprXive) of QEMU 7.2, emulated mode
 * (`kernel-irqchip=off`).
 */
export class SpaprXive implements XiveRouterBackend {
  // `declare`d fields: the constructor's first store sets each field's representation (a
  // class-field definition stores `undefined` first and leaves them generic, slower to read).
  declare readonly nrIrqs: number;
  declare readonly nrServers: number;
  /** `nrServers << 3`: 8 priorities per vCPU. */
  declare readonly nrEnds: number;
  declare readonly hvPrio: number;
  /** Source ESB pages: `esbShift` 17, flags 0 (no StoreEOI, PQ enabled), reset PQ 01. */
  declare readonly source: XiveSource;
  declare readonly router: XiveRouter;
  /** One thread context per vCPU id. */
  declare readonly tctxs: readonly XiveTctx[];
  declare readonly tima: XiveTima;
  /** END ESB window: disabled on sPAPR, reads 0. */
  declare readonly endEsb: MmioDevice;
  /** `VC_BASE + (nrIrqs << 17)`: where the END ESB window is mapped. */
  declare readonly endBase: number;
  /** Set by the machine when CAS negotiated XIVE exploitation (OV5 byte 23 bit 0x40). */
  declare exploitation: boolean;
  /**
   * The MMIO view H_INT_ESB goes through, at offsets from {@link SPAPR_XIVE_VC_BASE}. QEMU's
   * emulated H_INT_ESB is a DMA on `address_space_memory`, which reaches the source ESB region;
   * defaults to {@link source}. A machine that overlays the ESB window may point it elsewhere.
   */
  declare hcallEsb: MmioDevice;
  /** EAT: `[hi, lo]` of the EAS of each LISN. Internal table, exposed for the hcalls and tests. */
  declare readonly eat: Uint32Array;
  /** ENDT: 8 words per END, host order. Internal table, exposed for the hcalls and tests. */
  declare readonly endt: Uint32Array;
  /** The memory the EQs live in (guest RAM as DMA). */
  declare readonly dma: DmaSpace;
  /** Where guest errors and events go (shared with the hcalls). */
  declare readonly trace: TraceSink;
  /** The KVM device backend (KVM accelerator only), else null: emulated. */
  declare kvm: SpaprXiveKvmBackend | null;

  constructor(cfg: SpaprXiveConfig, dma: DmaSpace, trace: TraceSink) {
    if (!Number.isInteger(cfg.nrIrqs) || cfg.nrIrqs <= 0 || cfg.nrIrqs > 0x0100_0000) {
      throw new Error(`SpaprXive: invalid nrIrqs ${cfg.nrIrqs}`);
    }
    if (!Number.isInteger(cfg.nrServers) || cfg.nrServers <= 0 || cfg.nrServers > 0x1_0000) {
      throw new Error(`SpaprXive: invalid nrServers ${cfg.nrServers}`);
    }
    if (!Number.isInteger(cfg.hvPrio) || cfg.hvPrio < 0 || cfg.hvPrio > 0xff) {
      throw new Error(`SpaprXive: invalid hvPrio ${cfg.hvPrio}`);
    }
    this.nrIrqs = cfg.nrIrqs;
    this.nrServers = cfg.nrServers;
    this.nrEnds = cfg.nrServers * 8;
    this.hvPrio = cfg.hvPrio;
    this.dma = dma;
    this.trace = trace;
    this.eat = new Uint32Array(this.nrIrqs * 2);
    this.endt = new Uint32Array(this.nrEnds * 8);
    this.exploitation = false;
    this.kvm = null;
    this.source = new XiveSource(
      { nrIrqs: this.nrIrqs, esbShift: SPAPR_XIVE_ESB_SHIFT, flags: 0, resetPq: XIVE_ESB_OFF },
      trace,
    );
    this.hcallEsb = this.source;
    this.router = new XiveRouter(this, dma, trace);
    // Block 0: the source number is the LISN.
    this.source.notifier = this.router.notify.bind(this.router);
    const tctxs: XiveTctx[] = [];
    for (let cpu = 0; cpu < this.nrServers; cpu++) tctxs.push(new XiveTctx(cpu, trace));
    this.tctxs = tctxs;
    this.tima = new XiveTima(tctxs, this, trace);
    this.endEsb = new SpaprEndEsbDisabled();
    // The END source is realized with nr-ends = nr_irqs (a QEMU quirk), so both windows have
    // the same size and the END window starts where the source ESBs end.
    this.endBase = SPAPR_XIVE_VC_BASE + this.esbSize;
    this.reset();
  }

  /** Size of the source ESB region: `nrIrqs << 17`. */
  get esbSize(): number {
    return this.nrIrqs * 2 ** SPAPR_XIVE_ESB_SHIFT;
  }

  /** Size of the (disabled) END ESB region: `nrIrqs` ENDs of 2 × 64 KiB (QEMU quirk). */
  get endEsbSize(): number {
    return this.nrIrqs * 2 ** (SPAPR_XIVE_END_ESB_SHIFT + 1);
  }

  // -------------------------------------------------------------------------------------------
  // Numbering
  // -------------------------------------------------------------------------------------------

  /**
   * The vCPU of a hypercall "target" (a server number), or -1. QEMU passes the 64-bit register to
   * `spapr_find_cpu(int vcpu_id)`, so only the low 32 bits, signed, take part.
   *
   * @remarks Models hw/ppc/spapr.c:spapr_find_cpu() for vCPU ids 0 … nrServers−1.
   */
  findCpu(target: bigint): number {
    const id = Number(BigInt.asIntN(32, target));
    return id >= 0 && id < this.nrServers ? id : -1;
  }

  /**
   * END index of (vCPU, priority): 8 ENDs per vCPU.
   *
   * @remarks Models hw/intc/spapr_xive.c:spapr_xive_cpu_to_end().
   */
  cpuToEnd(cpu: number, prio: number): number {
    return cpu * 8 + (prio & 0xff);
  }

  /**
   * NVT index of a vCPU.
   *
   * @remarks Models hw/intc/spapr_xive.c:spapr_xive_cpu_to_nvt().
   */
  cpuToNvt(cpu: number): number {
    return SPAPR_XIVE_NVT_BASE + cpu;
  }

  /**
   * The server number of an NVT index, as the u32 QEMU returns (0xFFFFFC00 for NVT 0).
   *
   * @remarks Models hw/intc/spapr_xive.c:spapr_xive_nvt_to_target().
   */
  nvtToTarget(nvtIdx: number): number {
    return (nvtIdx - SPAPR_XIVE_NVT_BASE) >>> 0;
  }

  // -------------------------------------------------------------------------------------------
  // XiveRouterBackend
  // -------------------------------------------------------------------------------------------

  /** @remarks Models hw/intc/spapr_xive.c:spapr_xive_get_eas(). The block is not checked, as QEMU. */
  getEas(_blk: number, idx: number, eas: Uint32Array): boolean {
    if (!(idx >= 0 && idx < this.nrIrqs)) return false;
    eas[0] = this.eat[idx * 2]!;
    eas[1] = this.eat[idx * 2 + 1]!;
    return true;
  }

  /** @remarks Models hw/intc/spapr_xive.c:spapr_xive_get_end(). */
  getEnd(_blk: number, idx: number, end: Uint32Array): boolean {
    if (!(idx >= 0 && idx < this.nrEnds)) return false;
    // Word by word, not `set(subarray(…))` (a view object per notification) nor a loop (its
    // back edge and index checks cost as much as the copy on the interrupt path).
    const b = idx * 8;
    const t = this.endt;
    end[0] = t[b]!;
    end[1] = t[b + 1]!;
    end[2] = t[b + 2]!;
    end[3] = t[b + 3]!;
    end[4] = t[b + 4]!;
    end[5] = t[b + 5]!;
    end[6] = t[b + 6]!;
    end[7] = t[b + 7]!;
    return true;
  }

  /** The whole END is written back whatever `word` says, as QEMU's memcpy. */
  writeEnd(_blk: number, idx: number, end: Uint32Array, _word: number): void {
    if (!(idx >= 0 && idx < this.nrEnds)) return;
    // Word by word, as getEnd.
    const b = idx * 8;
    const t = this.endt;
    t[b] = end[0]!;
    t[b + 1] = end[1]!;
    t[b + 2] = end[2]!;
    t[b + 3] = end[3]!;
    t[b + 4] = end[4]!;
    t[b + 5] = end[5]!;
    t[b + 6] = end[6]!;
    t[b + 7] = end[7]!;
  }

  /**
   * sPAPR keeps no NVT table: an NVT is valid when a vCPU with that id exists. QEMU sets w0
   * only; the model also zeroes w4 so the backlog IPB (the one other word the router and the
   * TIMA read) always reads empty, and leaves the rest of the buffer as it is.
   *
   * @remarks Models hw/intc/spapr_xive.c:spapr_xive_get_nvt().
   */
  getNvt(_blk: number, idx: number, nvt: Uint32Array): boolean {
    const cpu = idx - SPAPR_XIVE_NVT_BASE;
    if (!(cpu >= 0 && cpu < this.nrServers)) return false;
    nvt[0] = NVT_W0_VALID;
    nvt[4] = 0;
    return true;
  }

  /**
   * Never called on sPAPR (no END has the backlog bit, and a pushed NVT has no backlog): QEMU
   * asserts. A call here is a broken model invariant.
   *
   * @remarks Models hw/intc/spapr_xive.c:spapr_xive_write_nvt().
   */
  writeNvt(blk: number, idx: number, _nvt: Uint32Array, word: number): void {
    throw new Error(`SpaprXive: write_nvt(${hex(blk)}/${hex(idx)}, word ${word}) is unreachable on sPAPR`);
  }

  /**
   * XiveFabric match: scan every thread context. A second match is a duplicate CAM line: logged
   * and the scan stops, returning 2 (the router then fails the notification).
   *
   * @remarks Models hw/intc/spapr_xive.c:spapr_xive_match_nvt().
   */
  matchNvt(
    format: number,
    nvtBlk: number,
    nvtIdx: number,
    ignore: boolean,
    _priority: number,
    logicServ: number,
    out: XiveTctxMatch,
  ): number {
    return xiveMatchTctxs(this.tctxs, format, nvtBlk, nvtIdx, ignore, logicServ, out, this.trace);
  }

  // -------------------------------------------------------------------------------------------
  // IRQ claim / free / line
  // -------------------------------------------------------------------------------------------

  private checkLisn(lisn: number): void {
    if (!(Number.isInteger(lisn) && lisn >= 0 && lisn < this.nrIrqs)) {
      throw new Error(`SpaprXive: LISN ${lisn} out of range (nrIrqs ${this.nrIrqs})`);
    }
  }

  /**
   * Allocate a LISN: EAS := VALID | MASKED (other bits kept, as QEMU ORs them in), LSI marked.
   * Returns 0, or −EBUSY if the EAS is already valid.
   *
   * @remarks Models hw/intc/spapr_xive.c:spapr_xive_claim_irq().
   */
  claimIrq(lisn: number, lsi: boolean): number {
    this.checkLisn(lisn);
    if (this.eat[lisn * 2]! & EAS_VALID_HI) {
      this.trace.guestError(`IRQ ${lisn} is not free`);
      return -EBUSY;
    }
    this.eat[lisn * 2] = (this.eat[lisn * 2]! | EAS_VALID_HI) >>> 0;
    this.eat[lisn * 2 + 1] = (this.eat[lisn * 2 + 1]! | EAS_MASKED_LO) >>> 0;
    if (lsi) this.source.setLsi(lisn, true);
    if (this.trace.mask & TRACE_VMM) traceEvent(this.trace, 'xive.claim', { lisn, lsi: +lsi });
    // Under KVM the source is declared to the device at once (kvmppc_xive_source_reset_one).
    if (this.kvm?.inKernel) return this.kvm.sourceResetOne(lisn);
    return 0;
  }

  /**
   * Release a LISN: only the VALID bit is cleared (targeting and the LSI mark stay).
   *
   * @remarks Models hw/intc/spapr_xive.c:spapr_xive_free_irq().
   */
  freeIrq(lisn: number): void {
    this.checkLisn(lisn);
    this.eat[lisn * 2] = (this.eat[lisn * 2]! & ~EAS_VALID_HI) >>> 0;
    if (this.trace.mask & TRACE_VMM) traceEvent(this.trace, 'xive.free', { lisn });
  }

  isClaimed(lisn: number): boolean {
    this.checkLisn(lisn);
    return (this.eat[lisn * 2]! & EAS_VALID_HI) !== 0;
  }

  /**
   * A device interrupt line.
   *
   * @remarks Models hw/intc/spapr_xive.c:spapr_xive_set_irq() (KVM: kvmppc_xive_source_set_irq).
   */
  setIrq(lisn: number, level: number): void {
    this.checkLisn(lisn);
    const kvm = this.kvm;
    if (kvm?.inKernel) kvm.setIrq(lisn, level);
    else this.source.setIrq(lisn, level);
  }

  // -------------------------------------------------------------------------------------------
  // Reset
  // -------------------------------------------------------------------------------------------

  /**
   * EAT and ENDT reset: valid EASs become VALID | MASKED (EISN and target dropped), others 0;
   * every END zeroed with both ESBs off (w1 = ESe_Q | ESn_Q).
   *
   * @remarks Models hw/intc/spapr_xive.c:spapr_xive_reset() and spapr_xive_end_reset().
   */
  resetTables(): void {
    const eat = this.eat;
    for (let i = 0; i < this.nrIrqs; i++) {
      const valid = (eat[i * 2]! & EAS_VALID_HI) !== 0;
      eat[i * 2] = valid ? EAS_VALID_HI : 0;
      eat[i * 2 + 1] = valid ? EAS_MASKED_LO : 0;
    }
    for (let i = 0; i < this.nrEnds; i++) this.endReset(i);
  }

  /**
   * Zero an END and switch off its ESn and ESe.
   *
   * @remarks Models hw/intc/spapr_xive.c:spapr_xive_end_reset().
   */
  endReset(endIdx: number): void {
    const o = endIdx * 8;
    this.endt.fill(0, o, o + 8);
    this.endt[o + 1] = (END_W1_ESe_Q | END_W1_ESn_Q) >>> 0;
  }

  /**
   * System reset of the interrupt controller: the tables, the source PQs (all 01, the LSI map
   * kept) and every vCPU's thread context with its OS CAM line. `exploitation` is machine state
   * (CAS): the machine clears it on system reset.
   *
   * @remarks Models the reset handlers QEMU runs on `system_reset`: spapr_xive_reset(),
   * xive_source_reset(), and spapr_xive_cpu_intc_reset() per vCPU.
   */
  reset(): void {
    this.resetTables();
    this.source.reset();
    for (let cpu = 0; cpu < this.nrServers; cpu++) this.cpuIntcReset(cpu);
    if (this.trace.mask & TRACE_VMM) traceEvent(this.trace, 'xive.reset', {});
  }

  /**
   * Reset one vCPU's thread context and push its OS CAM line, as the hypervisor does when the
   * vCPU is dispatched: QW1 W2 = VO | cam(0, 0x400 + cpu) (0x80000400 for vCPU 0).
   *
   * @remarks Models hw/intc/spapr_xive.c:spapr_xive_cpu_intc_reset().
   */
  cpuIntcReset(cpu: number): void {
    const tctx = this.tctxs[cpu];
    if (!tctx) throw new Error(`SpaprXive: no thread context for vCPU ${cpu}`);
    tctx.reset();
    tctx.setWord2(TM_QW1_OS, (TM_QW1W2_VO | xiveNvtCam(SPAPR_XIVE_BLOCK_ID, this.cpuToNvt(cpu))) >>> 0);
  }

  /**
   * The H_INT_RESET effect. QEMU 7.2 calls `device_cold_reset()`, which does not run the handlers
   * registered with `qemu_register_reset()`, so nothing changes there (observed). We follow
   * PAPR and KVM (`KVM_DEV_XIVE_RESET`): all routing and queues are reset (EAT masked, ENDs
   * cleared) and the sources switched off (PQ 01); sources stay allocated and thread contexts
   * are untouched.
   */
  hIntReset(): void {
    this.resetTables();
    this.source.reset();
    if (this.trace.mask & TRACE_VMM) traceEvent(this.trace, 'xive.h_int_reset', {});
  }

  // -------------------------------------------------------------------------------------------
  // Hypercalls
  // -------------------------------------------------------------------------------------------

  /**
   * Serve an H_INT_* hypercall: `args[0]` is R4; `out` receives R4… (see {@link spaprXiveHcall}).
   * Returns H_FUNCTION until {@link exploitation} is set, or for an opcode that is not H_INT_*.
   */
  hcall(cpu: number, opcode: number, args: readonly bigint[], out: bigint[]): number {
    return spaprXiveHcall(this, cpu, opcode, args, out);
  }

  // -------------------------------------------------------------------------------------------
  // Monitor
  // -------------------------------------------------------------------------------------------

  /**
   * The XIVE part of HMP `info pic`: every vCPU's four rings, then one line per valid LISN with
   * its PQ, EISN and, when routed to a valid END, the queue (target/prio, index/entries, address,
   * generation and the window of the 6 last entries, `^` on the next slot).
   *
   * @remarks Models hw/intc/spapr_xive.c:spapr_xive_print_info(), spapr_xive_pic_print_info(),
   * spapr_xive_end_pic_print_info() and hw/intc/xive.c:xive_tctx_pic_print_info(),
   * xive_end_queue_pic_print_info() as in QEMU 7.2.
   */
  infoPic(): string {
    // Under KVM the thread contexts, PQs and queue positions live in the kernel.
    if (this.kvm?.inKernel) this.kvm.synchronizeForMonitor();
    const lines: string[] = [];
    const names = ['USER', 'OS', 'POOL', 'PHYS'];
    for (const tctx of this.tctxs) {
      const c = `CPU[${tctx.cpu.toString(16).padStart(4, '0')}]:`;
      lines.push(`${c}   QW   NSR CPPR IPB LSMFB ACK# INC AGE PIPR  W2\n`);
      for (let i = 0; i < 4; i++) {
        const r = tctx.regs;
        const o = i * 16;
        const ring =
          `${hex2(r[o + TM_NSR]!)}   ${hex2(r[o + TM_CPPR]!)}  ${hex2(r[o + TM_IPB]!)}    ` +
          `${hex2(r[o + TM_LSMFB]!)}   ${hex2(r[o + TM_ACK_CNT]!)}  ${hex2(r[o + TM_INC]!)}  ` +
          `${hex2(r[o + TM_AGE]!)}   ${hex2(r[o + TM_PIPR]!)}  ${hex8(tctx.word2(o))}`;
        lines.push(`${c} ${names[i]!.padStart(4, ' ')}    ${ring}\n`);
      }
    }
    lines.push('  LISN         PQ    EISN     CPU/PRIO EQ\n');
    for (let i = 0; i < this.nrIrqs; i++) {
      const hi = this.eat[i * 2]!;
      const lo = this.eat[i * 2 + 1]!;
      if ((hi & EAS_VALID_HI) === 0) continue;
      const pq = this.source.getPq(i);
      const masked = (lo & EAS_MASKED_LO) !== 0;
      let line =
        `  ${hex8(i)} ${this.source.isLsi(i) ? 'LSI' : 'MSI'} ` +
        `${pq & XIVE_ESB_VAL_P ? 'P' : '-'}${pq & XIVE_ESB_VAL_Q ? 'Q' : '-'}` +
        `${this.source.isAsserted(i) ? 'A' : ' '} ${masked ? 'M' : ' '} ${hex8(lo & EAS_END_DATA_LO)} `;
      if (!masked) {
        const endIdx = hi & EAS_END_INDEX_HI;
        if (endIdx >= this.nrEnds) throw new Error(`SpaprXive: LISN ${hex(i)} routed to END ${endIdx}`);
        if (this.endt[endIdx * 8]! & END_W0_VALID) line += this.endPicPrintInfo(endIdx);
      }
      lines.push(`${line}\n`);
    }
    return lines.join('');
  }

  /** The sPAPR END summary of {@link infoPic}. */
  private endPicPrintInfo(endIdx: number): string {
    const e = this.endt.subarray(endIdx * 8, endIdx * 8 + 8);
    const qaddr = (e[2]! & END_W2_EQ_ADDR_HI) * 2 ** 32 + e[3]!;
    const qindex = e[1]! & END_W1_PAGE_OFF;
    const qgen = (e[1]! & END_W1_GENERATION) !== 0 ? 1 : 0;
    const qsize = getField32(END_W0_QSIZE, e[0]!);
    const qentries = 2 ** (qsize + 10);
    const target = this.nvtToTarget(e[6]! & END_W6_NVT_INDEX) | 0; // printed with %d
    const prio = getField32(END_W7_F0_PRIORITY, e[7]!);
    // "% 6d": a space for the sign, then right-aligned to 6 columns.
    let s = `${padNum(target, 3)}/${prio} ${` ${qindex}`.padStart(6, ' ')}/${padNum(qentries, 5)} @${hex(qaddr)} ^${qgen}`;
    // The window [qindex − 5 … qindex] (the last 6 entries, the next slot marked "^").
    s += ' [ ';
    let idx = (qindex - 5 + qentries) % qentries;
    for (let i = 0; i < 6; i++) {
      const a = qaddr + idx * 4;
      if (!this.dma.isRam(a, 4)) {
        this.trace.guestError(`XIVE: failed to read EQ @0x${hex(a)}`);
        return s;
      }
      s += `${i === 5 ? '^' : ''}${hex8(this.dma.loadBe32(a))} `;
      idx = (idx + 1) % qentries;
    }
    return `${s}]`;
  }

  // -------------------------------------------------------------------------------------------
  // State
  // -------------------------------------------------------------------------------------------

  snapshot(): SpaprXiveSnapshot {
    return {
      v: 1,
      exploitation: this.exploitation,
      eat: Array.from(this.eat),
      endt: Array.from(this.endt),
      source: this.source.snapshot(),
      tctxs: this.tctxs.map((t) => t.snapshot()),
    };
  }

  restore(s: unknown): void {
    const snap = s as SpaprXiveSnapshot;
    if (
      snap?.v !== 1 ||
      !Array.isArray(snap.eat) ||
      snap.eat.length !== this.eat.length ||
      !Array.isArray(snap.endt) ||
      snap.endt.length !== this.endt.length ||
      !Array.isArray(snap.tctxs) ||
      snap.tctxs.length !== this.tctxs.length
    ) {
      throw new Error('SpaprXive.restore: not a version 1 snapshot of this geometry');
    }
    this.exploitation = snap.exploitation === true;
    this.eat.set(snap.eat);
    this.endt.set(snap.endt);
    this.source.restore(snap.source);
    this.tctxs.forEach((t, i) => {
      t.restore(snap.tctxs[i]);
    });
  }
}
