/**
 * The host kernel's XIVE driver as far as KVM needs it: per-irq `xive_irq_data`, HW IPI
 * allocation, routing through OPAL, ESB MMIO helpers, `request_irq` / `free_irq` with handlers,
 * the host's own interrupt entry (HV line → ack the PHYS ring → read the CPU's queue → handler →
 * EOI), and the host side of passthrough (`irq_set_vcpu_affinity`).
 *
 * Host queues: one 64 KiB queue per host CPU at priority {@link HOST_XIVE_PRIO}, for VP
 * `0x80 | cpu` (the thread's HW CAM line), in a RAM region this driver registers at
 * {@link HOST_XIVE_QUEUE_BASE} in the chip's physical memory (the kernel's own pages).
 *
 * Host irq numbers (Linux virqs) are allocated from {@link HOST_VIRQ_BASE}; one virq per hardware
 * irq (`irq_create_mapping` returns the existing mapping).
 *
 * @remarks Models arch/powerpc/sysdev/xive/common.c and native.c (the parts KVM uses).
 */

import { type AccessSize, Word64 } from '../../hw/mmio.ts';
import {
  OPAL_SUCCESS,
  OPAL_XIVE_EQ_ALWAYS_NOTIFY,
  OPAL_XIVE_EQ_ENABLED,
  OPAL_XIVE_EQ_ESCALATE,
  OPAL_XIVE_IRQ_LSI,
  OPAL_XIVE_IRQ_STORE_EOI,
  OPAL_XIVE_VP_ENABLED,
  OPAL_XIVE_VP_SINGLE_ESCALATION,
  type P9Chip,
  XIVE_SYNC_EAS,
  XIVE_SYNC_QUEUE,
  XiveIrqInfo,
  type XiveQueueInfo,
} from '../../hw/xive/p9-chip.ts';
import {
  TM_QW3_HV_PHYS,
  TM_SPC_ACK_HV_REG,
  XIVE_ESB_LD_ST_MO,
  XIVE_ESB_LOAD_EOI,
  XIVE_ESB_SET_PQ_00,
  XIVE_ESB_SET_PQ_01,
  XIVE_ESB_SET_PQ_10,
  XIVE_ESB_SET_PQ_11,
  XIVE_ESB_STORE_EOI,
  XIVE_ESB_VAL_P,
  XIVE_ESB_VAL_Q,
  XIVE_TM_HV_PAGE,
} from '../../hw/xive/regs.ts';
import { traceEvent } from '../../sim/trace-events.ts';
import { TRACE_KVM, type TraceSink } from '../../sim/trace-sink.ts';
import { EBUSY, EINVAL, EIO, ENXIO } from '../errno.ts';
import { PAGE_SIZE } from '../mm/constants.ts';

/** `XIVE_IRQ_FLAG_*` (arch/powerpc/include/asm/xive.h). */
export const XIVE_IRQ_FLAG_STORE_EOI = 0x01;
export const XIVE_IRQ_FLAG_LSI = 0x02;
export const XIVE_IRQ_FLAG_H_INT_ESB = 0x20;
export const XIVE_IRQ_FLAG_NO_EOI = 0x80;

/** `XIVE_INVALID_TARGET`: the irq has no host CPU. */
export const XIVE_INVALID_TARGET = -1;
/** Priority of every host interrupt (`xive_irq_priority` on a P9 host). */
export const HOST_XIVE_PRIO = 7;
/** Host queue pages: one 64 KiB page per host CPU. */
export const HOST_XIVE_QUEUE_BASE = 0x0000_7f00_0000_0000;
/** Host queue size (log2 bytes). */
export const HOST_XIVE_QUEUE_SHIFT = 16;
/** First virq handed out. */
export const HOST_VIRQ_BASE = 0x20;

/**
 * `struct xive_irq_data`: what the kernel knows of one hardware irq (page addresses are host
 * physical; 0 = none).
 */
export class XiveIrqData {
  flags = 0;
  eoiPage = 0;
  trigPage = 0;
  esbShift = 0;
  hwIrq = 0;
  /** Host CPU the irq is routed to, or {@link XIVE_INVALID_TARGET}. */
  target = XIVE_INVALID_TARGET;
  /** A queue entry exists for this irq somewhere even if P is clear. */
  savedP = false;
  /** No queue entry exists even if P is set (EOI skipped). */
  staleP = false;
}

/** A host interrupt descriptor (virq). */
export class HostIrq {
  readonly virq: number;
  readonly data: XiveIrqData;
  name = '';
  /** `request_irq` handler, or null when not requested. */
  handler: ((virq: number) => void) | null = null;
  disabled = true;
  forwarded = false;
  /** Handler invocations. */
  count = 0;
  constructor(virq: number, data: XiveIrqData) {
    this.virq = virq;
    this.data = data;
  }
}

/** Host consumer state of one CPU queue. */
class HostQueue {
  idx = 0;
  toggle = 0;
  readonly msk: number;
  readonly addr: number;
  constructor(addr: number, shift: number) {
    this.addr = addr;
    this.msk = 2 ** (shift - 2) - 1;
  }
}

/** Counters of each host path running. */
export interface HostXiveStats {
  hostIrqs: number;
  spurious: number;
  eois: number;
}

/**
 * The host kernel's XIVE driver over a {@link P9Chip}.
 *
 * @remarks Models arch/powerpc/sysdev/xive/common.c + native.c.
 */
export class HostXive {
  readonly chip: P9Chip;
  readonly trace: TraceSink;
  readonly stats: HostXiveStats;
  /**
   * Fault injection for `irq_set_vcpu_affinity`: when set, called first and a non-zero result
   * is returned as the error (the real function can fail in `configure_irq`).
   */
  affinityHook: ((hwIrq: number, forward: boolean) => number) | null;
  private readonly irqs: Map<number, HostIrq>;
  private readonly byHw: Map<number, number>;
  private nextVirq: number;
  private nextTarget: number;
  private readonly queues: HostQueue[];
  private readonly out: Word64;
  private readonly info: XiveIrqInfo;
  private inEntry: boolean;

  constructor(chip: P9Chip, trace: TraceSink) {
    this.chip = chip;
    this.trace = trace;
    this.stats = { hostIrqs: 0, spurious: 0, eois: 0 };
    this.affinityHook = null;
    this.irqs = new Map();
    this.byHw = new Map();
    this.nextVirq = HOST_VIRQ_BASE;
    this.nextTarget = 0;
    this.queues = [];
    this.out = new Word64();
    this.info = new XiveIrqInfo();
    this.inEntry = false;
    chip.mem.addRam(HOST_XIVE_QUEUE_BASE, chip.nrCpus * PAGE_SIZE, 'host.xive-queues');
    for (let cpu = 0; cpu < chip.nrCpus; cpu++) {
      const q = new HostQueue(HOST_XIVE_QUEUE_BASE + cpu * PAGE_SIZE, HOST_XIVE_QUEUE_SHIFT);
      this.queues.push(q);
      const rc = chip.setQueueInfo(
        chip.hostVp(cpu),
        HOST_XIVE_PRIO,
        q.addr,
        HOST_XIVE_QUEUE_SHIFT,
        OPAL_XIVE_EQ_ENABLED | OPAL_XIVE_EQ_ALWAYS_NOTIFY,
      );
      if (rc !== OPAL_SUCCESS) throw new Error(`HostXive: host queue of CPU ${cpu}: OPAL ${rc}`);
      const tctx = chip.tctxs[cpu]!;
      // The host accepts every priority (CPPR 0xFF) and takes interrupts on the HV line.
      tctx.setCppr(TM_QW3_HV_PHYS, 0xff);
      tctx.onHvLine = (level) => {
        if (level) this.hostIrqEntry(cpu);
      };
    }
  }

  // -------------------------------------------------------------------------------------------
  // ESB access (kernel mappings of the ESB pages)
  // -------------------------------------------------------------------------------------------

  /**
   * An 8-byte load on the irq's EOI/management page; returns the low byte (0xFF when the MMIO
   * failed).
   *
   * @remarks Models common.c:xive_esb_read() (and KVM's xive_vm_esb_load(), which adds
   * LD_ST_MO to SET_PQ_10 for StoreEOI sources).
   */
  esbRead(xd: XiveIrqData, offset: number): number {
    let off = offset;
    if (off === XIVE_ESB_SET_PQ_10 && xd.flags & XIVE_IRQ_FLAG_STORE_EOI) off += XIVE_ESB_LD_ST_MO;
    this.chip.mem.load(xd.eoiPage + off, 8, this.out);
    return this.out.lo & 0xff;
  }

  /** @remarks Models common.c:xive_esb_write(). */
  esbWrite(xd: XiveIrqData, offset: number, value: number): void {
    this.chip.mem.store(xd.eoiPage + offset, 8 as AccessSize, 0, value);
  }

  /** A store to the trigger page (no-op without one). */
  trigger(xd: XiveIrqData): void {
    if (xd.trigPage !== 0) this.chip.mem.store(xd.trigPage, 8, 0, 0);
  }

  /**
   * Source EOI: StoreEOI, else LSI load-EOI, else SET_PQ_00 and a re-trigger if Q was set.
   *
   * @remarks Models common.c:xive_do_source_eoi() / book3s_xive.c:xive_vm_source_eoi().
   */
  sourceEoi(xd: XiveIrqData): void {
    xd.staleP = false;
    this.stats.eois++;
    if (xd.flags & XIVE_IRQ_FLAG_STORE_EOI) {
      this.esbWrite(xd, XIVE_ESB_STORE_EOI, 0);
      return;
    }
    if (xd.flags & XIVE_IRQ_FLAG_LSI) {
      this.esbRead(xd, XIVE_ESB_LOAD_EOI);
      return;
    }
    const eoi = this.esbRead(xd, XIVE_ESB_SET_PQ_00);
    if (eoi & XIVE_ESB_VAL_Q && eoi !== 0xff) this.trigger(xd);
  }

  // -------------------------------------------------------------------------------------------
  // OPAL wrappers (native.c)
  // -------------------------------------------------------------------------------------------

  /**
   * Fill `xd` from OPAL's irq info; 0 or -EINVAL.
   *
   * @remarks Models native.c:xive_native_populate_irq_data().
   */
  populateIrqData(hwIrq: number, xd: XiveIrqData): number {
    const info = this.info;
    if (this.chip.getIrqInfo(hwIrq, info) !== OPAL_SUCCESS) return -EINVAL;
    xd.flags =
      (info.flags & OPAL_XIVE_IRQ_STORE_EOI ? XIVE_IRQ_FLAG_STORE_EOI : 0) |
      (info.flags & OPAL_XIVE_IRQ_LSI ? XIVE_IRQ_FLAG_LSI : 0);
    xd.eoiPage = info.eoiPage;
    xd.trigPage = info.trigPage;
    xd.esbShift = info.esbShift;
    xd.hwIrq = hwIrq;
    xd.target = XIVE_INVALID_TARGET;
    xd.savedP = false;
    xd.staleP = false;
    return 0;
  }

  /** @remarks Models native.c:xive_native_alloc_irq(): a HW IPI number, or 0. */
  allocIrq(): number {
    return this.chip.allocIrq();
  }

  /** @remarks Models native.c:xive_native_free_irq(). */
  freeHwIrq(hwIrq: number): void {
    this.chip.freeIrq(hwIrq);
  }

  /**
   * Route a hardware irq; 0 or -ENXIO.
   *
   * @remarks Models native.c:xive_native_configure_irq().
   */
  configureIrq(hwIrq: number, vp: number, prio: number, lirq: number): number {
    return this.chip.setIrqConfig(hwIrq, vp, prio, lirq) === OPAL_SUCCESS ? 0 : -ENXIO;
  }

  /** @remarks Models native.c:xive_native_sync_source(). */
  syncSource(hwIrq: number): void {
    this.chip.sync(XIVE_SYNC_EAS, hwIrq);
  }

  /** @remarks Models native.c:xive_native_sync_queue(). */
  syncQueue(hwIrq: number): void {
    this.chip.sync(XIVE_SYNC_QUEUE, hwIrq);
  }

  /**
   * Configure a guest VP's queue (`qpage` host physical, 0 = none). Returns 0 or -EIO; fills
   * `out` with the queue's escalation irq.
   *
   * @remarks Models native.c:xive_native_configure_queue().
   */
  configureQueue(
    vp: number,
    prio: number,
    qpage: number,
    order: number,
    canEscalate: boolean,
    out: XiveQueueInfo,
  ): number {
    if (this.chip.getQueueInfo(vp, prio, out) !== OPAL_SUCCESS) return -EIO;
    let flags = OPAL_XIVE_EQ_ALWAYS_NOTIFY | OPAL_XIVE_EQ_ENABLED;
    if (canEscalate) flags |= OPAL_XIVE_EQ_ESCALATE;
    return this.chip.setQueueInfo(vp, prio, qpage, order, flags) === OPAL_SUCCESS ? 0 : -EIO;
  }

  /** @remarks Models native.c:xive_native_disable_queue(). */
  disableQueue(vp: number, prio: number): void {
    this.chip.setQueueInfo(vp, prio, 0, 0, 0);
  }

  /**
   * Allocate `nr` VPs (rounded up to a power of two); the first VP id or -1 (XIVE_INVALID_VP).
   *
   * @remarks Models native.c:xive_native_alloc_vp_block().
   */
  allocVpBlock(nr: number): number {
    let order = 31 - Math.clz32(Math.max(1, nr));
    if (nr > 2 ** order) order++;
    const r = this.chip.allocVpBlock(order);
    return r < 0 ? -1 : r;
  }

  /** @remarks Models native.c:xive_native_free_vp_block(). */
  freeVpBlock(base: number): void {
    this.chip.freeVpBlock(base);
  }

  /** @remarks Models native.c:xive_native_enable_vp(); 0 or -EIO. */
  enableVp(vp: number, singleEscalation: boolean): number {
    const f = OPAL_XIVE_VP_ENABLED | (singleEscalation ? OPAL_XIVE_VP_SINGLE_ESCALATION : 0);
    return this.chip.setVpInfo(vp, f) === OPAL_SUCCESS ? 0 : -EIO;
  }

  /** @remarks Models native.c:xive_native_disable_vp(). */
  disableVp(vp: number): number {
    return this.chip.setVpInfo(vp, 0) === OPAL_SUCCESS ? 0 : -EIO;
  }

  // -------------------------------------------------------------------------------------------
  // Host irq descriptors
  // -------------------------------------------------------------------------------------------

  /**
   * The virq of a hardware irq, created on first use with its irq data.
   *
   * @remarks Models kernel/irq/irqdomain.c:irq_create_mapping() + xive_irq_domain_map().
   */
  createMapping(hwIrq: number): number {
    const v = this.byHw.get(hwIrq);
    if (v !== undefined) return v;
    const xd = new XiveIrqData();
    if (this.populateIrqData(hwIrq, xd) !== 0) return 0;
    const virq = this.nextVirq++;
    this.irqs.set(virq, new HostIrq(virq, xd));
    this.byHw.set(hwIrq, virq);
    return virq;
  }

  /** @remarks Models irq_dispose_mapping(). */
  disposeMapping(virq: number): void {
    const d = this.irqs.get(virq);
    if (!d) return;
    if (d.handler) this.freeIrq(virq);
    this.irqs.delete(virq);
    this.byHw.delete(d.data.hwIrq);
  }

  irq(virq: number): HostIrq | null {
    return this.irqs.get(virq) ?? null;
  }

  /** The descriptor of a hardware irq, if mapped. */
  irqOfHw(hwIrq: number): HostIrq | null {
    const v = this.byHw.get(hwIrq);
    return v === undefined ? null : (this.irqs.get(v) ?? null);
  }

  /**
   * Install a handler, pick a host CPU (round robin), route the EAS to its queue with EISN =
   * virq, and unmask (PQ 00). -EINVAL for an unmapped virq, -EBUSY if already requested.
   *
   * @remarks Models kernel/irq/manage.c:request_irq() → common.c:xive_irq_startup().
   */
  requestIrq(virq: number, handler: (virq: number) => void, name: string): number {
    const d = this.irqs.get(virq);
    if (!d) return -EINVAL;
    if (d.handler) return -EBUSY;
    d.handler = handler;
    d.name = name;
    const xd = d.data;
    xd.target = this.nextTarget;
    this.nextTarget = (this.nextTarget + 1) % this.chip.nrCpus;
    xd.savedP = false;
    xd.staleP = false;
    const rc = this.configureIrq(xd.hwIrq, this.chip.hostVp(xd.target), HOST_XIVE_PRIO, virq);
    if (rc) {
      d.handler = null;
      return rc;
    }
    d.disabled = false;
    this.esbRead(xd, XIVE_ESB_SET_PQ_00);
    return 0;
  }

  /**
   * Mask (PQ 01), un-route and drop the handler.
   *
   * @remarks Models free_irq() → common.c:xive_irq_shutdown().
   */
  freeIrq(virq: number): void {
    const d = this.irqs.get(virq);
    if (!d?.handler) return;
    this.esbRead(d.data, XIVE_ESB_SET_PQ_01);
    this.configureIrq(d.data.hwIrq, 0, 0xff, 0);
    d.data.target = XIVE_INVALID_TARGET;
    d.handler = null;
    d.disabled = true;
  }

  /**
   * Host side of passthrough. `forward`: the irq now belongs to a vCPU (PQ 10, or 11 + sync
   * when a host queue entry may be in flight); the host will not EOI it. Back (`!forward`):
   * sync, re-route to the host CPU, and EOI unless `savedP`.
   *
   * @remarks Models common.c:xive_irq_set_vcpu_affinity().
   */
  irqSetVcpuAffinity(hwIrq: number, forward: boolean): number {
    if (this.affinityHook) {
      const r = this.affinityHook(hwIrq, forward);
      if (r) return r;
    }
    const virq = this.createMapping(hwIrq);
    const d = this.irqs.get(virq);
    if (!d) return -EINVAL;
    const xd = d.data;
    if (forward) {
      d.forwarded = true;
      const pq = this.esbRead(xd, XIVE_ESB_SET_PQ_10);
      if (!xd.staleP) {
        xd.savedP = (pq & XIVE_ESB_VAL_P) !== 0;
        xd.staleP = !xd.savedP;
      }
      if (xd.target === XIVE_INVALID_TARGET) return 0;
      if (xd.savedP) {
        this.esbRead(xd, XIVE_ESB_SET_PQ_11);
        this.syncSource(hwIrq);
      }
      return 0;
    }
    d.forwarded = false;
    if (xd.target === XIVE_INVALID_TARGET) {
      this.esbRead(xd, XIVE_ESB_SET_PQ_01);
      return 0;
    }
    this.syncSource(hwIrq);
    const rc = this.configureIrq(hwIrq, this.chip.hostVp(xd.target), HOST_XIVE_PRIO, virq);
    if (rc) return rc;
    if (!xd.savedP) this.sourceEoi(xd);
    return 0;
  }

  // -------------------------------------------------------------------------------------------
  // Host interrupt entry
  // -------------------------------------------------------------------------------------------

  /**
   * The host CPU takes its external interrupt: ack the PHYS ring through the HV TIMA page, drain
   * its queue calling each virq's handler (then EOI it unless NO_EOI, forwarded or disabled:
   * `stale_p` instead), and restore CPPR 0xFF. Re-entrant calls (a handler's EOI re-firing) are
   * folded into the running drain.
   *
   * @remarks Models common.c:xive_get_irq() / xive_irq_eoi() on the host.
   */
  hostIrqEntry(cpu: number): void {
    if (this.inEntry) return;
    this.inEntry = true;
    try {
      const mem = this.chip.mem;
      const hv = this.chip.timaPageAddr(XIVE_TM_HV_PAGE);
      const q = this.queues[cpu]!;
      for (let guard = 0; guard < 1 << 16; guard++) {
        mem.load(hv + TM_SPC_ACK_HV_REG, 2, this.out, cpu);
        const entry = mem.loadBe32(q.addr + q.idx * 4);
        if (entry >>> 31 === q.toggle) {
          // Queue empty: reopen the CPPR; stop unless that presented something new.
          mem.store(hv + TM_QW3_HV_PHYS + 1, 1, 0, 0xff, cpu);
          if (!this.chip.tctxs[cpu]!.hvLine) break;
          continue;
        }
        q.idx = (q.idx + 1) & q.msk;
        if (q.idx === 0) q.toggle ^= 1;
        this.dispatch(entry & 0x7fff_ffff);
      }
    } finally {
      this.inEntry = false;
    }
  }

  private dispatch(virq: number): void {
    const d = this.irqs.get(virq);
    if (!d?.handler) {
      this.stats.spurious++;
      this.trace.guestError(`xive: spurious host interrupt ${virq}`);
      return;
    }
    this.stats.hostIrqs++;
    d.count++;
    if (this.trace.mask & TRACE_KVM) traceEvent(this.trace, 'host.irq', { virq, hwIrq: d.data.hwIrq });
    d.handler(virq);
    const xd = d.data;
    if (!d.disabled && !d.forwarded && (xd.flags & XIVE_IRQ_FLAG_NO_EOI) === 0) this.sourceEoi(xd);
    else xd.staleP = true;
    xd.savedP = false;
  }

  /** The PQ bits of a hardware irq, read through its management page (GET). */
  pqOf(xd: XiveIrqData): number {
    return this.esbRead(xd, 0x800) & (XIVE_ESB_VAL_P | XIVE_ESB_VAL_Q);
  }
}
