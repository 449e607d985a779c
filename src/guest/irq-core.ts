/**
 * The generic interrupt layer of the guest kernel: irq descriptors (Linux virqs), the XIVE irq
 * domain's hwirq → virq map, `request_irq` / `free_irq`, lazy `disable_irq` / `enable_irq` with
 * resend, `irq_set_affinity`, and the two flow handlers the XIVE driver uses (fasteoi for
 * sources, percpu for IPIs).
 *
 * @remarks Models kernel/irq/{irqdesc,irqdomain,manage,chip,resend}.c, reduced to what an
 * interrupt delivered through XIVE exercises.
 */

import { EBUSY } from './xive-regs.ts';
import type { XiveIrqData } from './xive-spapr.ts';

export const IRQF_SHARED = 0x80;
export const IRQF_PERCPU = 0x400;
export const IRQF_NO_AUTOEN = 0x80000;
export const IRQ_NONE = 0;
export const IRQ_HANDLED = 1;

/** `irq_set_affinity` results (`IRQ_SET_MASK_OK`). */
export const IRQ_SET_MASK_OK = 0;

/** Which domain a descriptor belongs to. */
export const DOMAIN_XIVE = 0;
export const DOMAIN_IPI = 1;
/** Flow handlers. */
export const FLOW_FASTEOI = 0;
export const FLOW_PERCPU = 1;

const EINVAL = 22;
const ENOSPC = 28;

/** `irqreturn_t handler(int irq, void *dev_id)`, plus the CPU it runs on. */
export type IrqHandler = (irq: number, cpu: number) => number;

export class IrqAction {
  readonly handler: IrqHandler;
  readonly flags: number;
  readonly name: string;
  readonly devId: object;

  constructor(handler: IrqHandler, flags: number, name: string, devId: object) {
    this.handler = handler;
    this.flags = flags;
    this.name = name;
    this.devId = devId;
  }
}

/** The chip operations the core calls (`struct irq_chip`). */
export interface IrqChip {
  readonly name: string;
  readonly canSetAffinity: boolean;
  startup(d: IrqDesc): number;
  shutdown(d: IrqDesc): void;
  mask(d: IrqDesc): void;
  unmask(d: IrqDesc): void;
  eoi(d: IrqDesc): void;
  /** 0 (IRQ_SET_MASK_OK) or −errno. */
  setAffinity(d: IrqDesc, mask: Uint8Array, force: boolean): number;
  /** 1 if the chip re-triggered the interrupt in hardware, 0 if not. */
  retrigger(d: IrqDesc): number;
}

/** One Linux irq (`struct irq_desc` + `struct irq_data`). */
export class IrqDesc {
  readonly irq: number;
  hwirq: number;
  domain: number;
  flow: number;
  chip: IrqChip | null;
  /** `handler_data`: the XIVE source data (null for the IPI). */
  xd: XiveIrqData | null;
  actions: IrqAction[];
  depth: number;
  // irqd state bits
  started: boolean;
  disabled: boolean;
  masked: boolean;
  perCpu: boolean;
  level: boolean;
  forwardedToVcpu: boolean;
  /** `IRQ_DISABLE_UNLAZY`: disable_irq masks at once. */
  disableUnlazy: boolean;
  // istate bits
  pending: boolean;
  replay: boolean;
  /** Affinity mask, one byte per CPU. */
  readonly affinity: Uint8Array;
  /** Handler runs (kstat_irqs). */
  kstat: number;
  /** Interrupts taken while disabled (IRQS_PENDING path). */
  deferred: number;

  constructor(irq: number, nrCpus: number) {
    this.irq = irq;
    this.hwirq = 0;
    this.domain = DOMAIN_XIVE;
    this.flow = FLOW_FASTEOI;
    this.chip = null;
    this.xd = null;
    this.actions = [];
    this.depth = 1;
    this.started = false;
    this.disabled = true;
    this.masked = true;
    this.perCpu = false;
    this.level = false;
    this.forwardedToVcpu = false;
    this.disableUnlazy = false;
    this.pending = false;
    this.replay = false;
    this.affinity = new Uint8Array(nrCpus).fill(1);
    this.kstat = 0;
    this.deferred = 0;
  }
}

/** Counters per hardware interrupt number (LISN), in lazily allocated 1024-LISN blocks. */
export class LisnStats {
  static readonly DELIVERED = 0;
  static readonly CONSUMED = 1;
  static readonly DEFERRED = 2;
  private readonly blocks: Map<number, Uint32Array>;
  /** The block {@link inc} used last and its number (an interrupt counts twice in one block). */
  private lastBlock: Uint32Array | null;
  private lastBlockNo: number;

  constructor() {
    this.blocks = new Map();
    this.lastBlock = null;
    this.lastBlockNo = -1;
  }

  /** Count one `kind` event of `lisn` (a u32: block and index are shifts and masks, all int32). */
  inc(lisn: number, kind: number): void {
    const b = lisn >>> 10;
    const blk = b === this.lastBlockNo && this.lastBlock !== null ? this.lastBlock : this.block(b);
    blk[(lisn & 1023) * 3 + kind]!++;
  }

  /** The block of LISNs `b·1024 …`, allocated on first use; remembered for the next {@link inc}. */
  private block(b: number): Uint32Array {
    let blk = this.blocks.get(b);
    if (blk === undefined) {
      blk = new Uint32Array(3 * 1024);
      this.blocks.set(b, blk);
    }
    this.lastBlock = blk;
    this.lastBlockNo = b;
    return blk;
  }

  get(lisn: number, kind: number): number {
    const blk = this.blocks.get(lisn >>> 10);
    return blk === undefined ? 0 : blk[(lisn & 1023) * 3 + kind]!;
  }
}

export class IrqCore {
  readonly nrCpus: number;
  /** `nr_irqs` (CONFIG_NR_IRQS): the allocation hint is `hwirq % nrIrqs`. */
  readonly nrIrqs: number;
  /** Descriptors by virq (dense array; undefined = no descriptor). */
  readonly descs: (IrqDesc | undefined)[];
  /** The XIVE domain's reverse map hwirq → virq. */
  readonly revmap: Map<number, number>;
  /** `cpu_online_mask`. */
  readonly online: Uint8Array;
  readonly stats: LisnStats;
  /** The CPU the kernel is executing on (`smp_processor_id()`). */
  cur: number;
  /** LISN of the interrupt being handled (set by the fetch loop before dispatch). */
  curLisn: number;
  /** Called once per handler run (not per shared action). */
  onDeliver: (lisn: number, cpu: number) => void;
  /** Per-CPU handler runs. */
  readonly cpuDelivered: Uint32Array;
  private readonly allocated: Uint8Array;

  constructor(nrCpus: number, nrIrqs = 512) {
    this.nrCpus = nrCpus;
    this.nrIrqs = nrIrqs;
    this.descs = [];
    this.revmap = new Map();
    this.online = new Uint8Array(nrCpus);
    this.stats = new LisnStats();
    this.cur = 0;
    this.curLisn = -1;
    this.onDeliver = () => {};
    this.cpuDelivered = new Uint32Array(nrCpus);
    // IRQ_BITMAP_BITS = NR_IRQS + 8196 with SPARSE_IRQ; the 16 legacy descriptors are taken.
    this.allocated = new Uint8Array(nrIrqs + 8196);
    this.allocated.fill(1, 0, 16);
  }

  desc(irq: number): IrqDesc | undefined {
    return irq >= 0 ? this.descs[irq] : undefined;
  }

  /**
   * Allocate one descriptor: first free virq at or above `hwirq % nr_irqs` (at least 1), else
   * from 1. Returns the virq or −ENOSPC.
   *
   * @remarks Models kernel/irq/irqdomain.c:irq_domain_alloc_descs() → __irq_alloc_descs().
   */
  allocDesc(hwirq: number): number {
    let hint = hwirq % this.nrIrqs;
    if (hint === 0) hint = 1;
    let virq = this.allocated.indexOf(0, hint);
    if (virq < 0 && hint > 1) virq = this.allocated.indexOf(0, 1);
    if (virq < 0) return -ENOSPC;
    this.allocated[virq] = 1;
    this.descs[virq] = new IrqDesc(virq, this.nrCpus);
    return virq;
  }

  /** @remarks Models kernel/irq/irqdesc.c:irq_free_descs(). */
  freeDesc(virq: number): void {
    const d = this.descs[virq];
    if (d === undefined) return;
    if (d.domain === DOMAIN_XIVE && this.revmap.get(d.hwirq) === virq) this.revmap.delete(d.hwirq);
    this.descs[virq] = undefined;
    this.allocated[virq] = 0;
  }

  // --- request / free ------------------------------------------------------------------------

  /**
   * Install `handler` on `irq`; the first action starts the interrupt (unless IRQF_NO_AUTOEN).
   * 0 or −errno.
   *
   * @remarks Models kernel/irq/manage.c:request_threaded_irq() / __setup_irq() (no threads).
   */
  requestIrq(irq: number, handler: IrqHandler, flags: number, name: string, devId: object): number {
    const d = this.descs[irq];
    if (d === undefined || d.chip === null) return -EINVAL;
    if (flags & IRQF_SHARED && devId === undefined) return -EINVAL;
    if (d.actions.length > 0) {
      const first = d.actions[0]!;
      if (!(first.flags & flags & IRQF_SHARED)) return -EBUSY;
      d.actions.push(new IrqAction(handler, flags, name, devId));
      return 0;
    }
    d.actions.push(new IrqAction(handler, flags, name, devId));
    d.pending = false;
    d.replay = false;
    if (flags & IRQF_PERCPU) d.perCpu = true;
    if (flags & IRQF_NO_AUTOEN) {
      d.depth = 1;
      return 0;
    }
    this.irqStartup(d, true);
    return 0;
  }

  /**
   * Remove `devId`'s action; the last one shuts the interrupt down.
   *
   * @remarks Models kernel/irq/manage.c:__free_irq().
   */
  freeIrq(irq: number, devId: object): number {
    const d = this.descs[irq];
    if (d === undefined) return -EINVAL;
    const i = d.actions.findIndex((a) => a.devId === devId);
    if (i < 0) return -EINVAL;
    d.actions.splice(i, 1);
    if (d.actions.length === 0) this.irqShutdown(d);
    return 0;
  }

  /** @remarks Models kernel/irq/chip.c:irq_startup() (`resend` = IRQ_RESEND). */
  irqStartup(d: IrqDesc, resend: boolean): void {
    d.depth = 0;
    if (d.started) {
      this.irqEnable(d);
    } else {
      const chip = d.chip!;
      chip.startup(d);
      d.disabled = false;
      d.masked = false;
      d.started = true;
      // irq_setup_affinity: the default affinity ∩ online; the chip keeps a target inside it.
      this.irqDoSetAffinity(d, d.affinity, false);
    }
    if (resend) this.checkIrqResend(d);
  }

  /** @remarks Models kernel/irq/chip.c:irq_shutdown(). */
  irqShutdown(d: IrqDesc): void {
    if (!d.started) return;
    d.pending = false;
    d.depth = 1;
    d.chip!.shutdown(d);
    d.disabled = true;
    d.masked = true;
    d.started = false;
  }

  /** @remarks Models kernel/irq/chip.c:irq_enable(). */
  private irqEnable(d: IrqDesc): void {
    if (d.disabled) d.disabled = false;
    this.unmaskIrq(d);
  }

  /** @remarks Models kernel/irq/chip.c:mask_irq(). */
  maskIrq(d: IrqDesc): void {
    if (d.masked) return;
    d.chip!.mask(d);
    d.masked = true;
  }

  /** @remarks Models kernel/irq/chip.c:unmask_irq(). */
  unmaskIrq(d: IrqDesc): void {
    if (!d.masked) return;
    d.chip!.unmask(d);
    d.masked = false;
  }

  /**
   * `disable_irq` (no synchronisation needed: handlers run to completion here). Lazy, as in
   * Linux: only the disabled state is set; the source is masked when an interrupt arrives.
   *
   * @remarks Models kernel/irq/manage.c:__disable_irq() and chip.c:__irq_disable().
   */
  disableIrq(irq: number): number {
    const d = this.descs[irq];
    if (d === undefined) return -EINVAL;
    if (d.depth++ === 0) {
      d.disabled = true;
      if (d.disableUnlazy) this.maskIrq(d);
    }
    return 0;
  }

  /** @remarks Models kernel/irq/manage.c:__enable_irq(). */
  enableIrq(irq: number): number {
    const d = this.descs[irq];
    if (d === undefined) return -EINVAL;
    switch (d.depth) {
      case 0:
        return -EINVAL; // "Unbalanced enable for IRQ"
      case 1:
        this.irqStartup(d, true);
        return 0;
      default:
        d.depth--;
        return 0;
    }
  }

  /**
   * Resend an interrupt that arrived while disabled: level interrupts are left to the hardware.
   *
   * @remarks Models kernel/irq/resend.c:check_irq_resend() (try_retrigger only: no software
   * resend, the XIVE chip always re-triggers MSIs).
   */
  checkIrqResend(d: IrqDesc): number {
    if (d.level) {
      d.pending = false;
      return -EINVAL;
    }
    if (d.replay) return -EBUSY;
    if (!d.pending) return 0;
    d.pending = false;
    if (d.chip!.retrigger(d) === 0) return -EINVAL;
    d.replay = true;
    return 0;
  }

  /**
   * `irq_set_affinity`; 0 or −errno.
   *
   * @remarks Models kernel/irq/manage.c:irq_set_affinity_locked() → irq_do_set_affinity().
   */
  setAffinity(irq: number, mask: Uint8Array): number {
    const d = this.descs[irq];
    if (d === undefined || d.chip === null || d.perCpu || !d.chip.canSetAffinity) return -EINVAL;
    return this.irqDoSetAffinity(d, mask, false);
  }

  /** @remarks Models kernel/irq/manage.c:irq_do_set_affinity(). */
  irqDoSetAffinity(d: IrqDesc, mask: Uint8Array, force: boolean): number {
    if (!d.chip!.canSetAffinity) return 0;
    const ret = d.chip!.setAffinity(d, mask, force);
    if (ret === IRQ_SET_MASK_OK && mask !== d.affinity) d.affinity.set(mask);
    return ret;
  }

  /**
   * Move every started interrupt whose affinity includes the dying `cpu` (already cleared in
   * the online mask), breaking the affinity when none of its CPUs is left.
   *
   * @remarks Models kernel/irq/cpuhotplug.c:irq_migrate_all_off_this_cpu() / migrate_one_irq().
   */
  migrateAllOffCpu(cpu: number): number {
    let moved = 0;
    for (const d of this.descs) {
      if (d === undefined || d.chip === null || !d.chip.canSetAffinity) continue;
      if (d.perCpu || !d.started || d.affinity[cpu] === 0) continue;
      let any = false;
      for (let c = 0; c < this.nrCpus; c++) if (d.affinity[c] && this.online[c]) any = true;
      const mask = any ? d.affinity : this.online;
      if (this.irqDoSetAffinity(d, mask, false) === 0) moved++;
    }
    return moved;
  }

  // --- flow handlers -----------------------------------------------------------------------

  /** Run the actions (`handle_irq_event`); counts one delivery. */
  private handleIrqEvent(d: IrqDesc, cpu: number): void {
    d.kstat++;
    this.cpuDelivered[cpu]!++;
    const lisn = this.curLisn;
    if (lisn >= 0) this.stats.inc(lisn, LisnStats.DELIVERED);
    const actions = d.actions;
    for (let i = 0; i < actions.length; i++) actions[i]!.handler(d.irq, cpu);
    this.onDeliver(lisn, cpu);
  }

  /** @remarks Models kernel/irq/chip.c:handle_fasteoi_irq(). */
  handleFasteoiIrq(d: IrqDesc, cpu: number): void {
    d.replay = false;
    if (d.actions.length === 0 || d.disabled) {
      d.pending = true;
      d.deferred++;
      if (this.curLisn >= 0) this.stats.inc(this.curLisn, LisnStats.DEFERRED);
      this.maskIrq(d);
      d.chip!.eoi(d);
      return;
    }
    this.handleIrqEvent(d, cpu);
    d.chip!.eoi(d);
  }

  /** @remarks Models kernel/irq/chip.c:handle_percpu_irq(). */
  handlePercpuIrq(d: IrqDesc, cpu: number): void {
    this.handleIrqEvent(d, cpu);
    d.chip!.eoi(d);
  }

  /** @remarks Models kernel/irq/irqdesc.c:generic_handle_irq(). */
  genericHandleIrq(irq: number, cpu: number): number {
    const d = this.descs[irq];
    if (d === undefined || d.chip === null) return -EINVAL;
    if (d.flow === FLOW_PERCPU) this.handlePercpuIrq(d, cpu);
    else this.handleFasteoiIrq(d, cpu);
    return 0;
  }
}
