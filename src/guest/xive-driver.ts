/**
 * The guest's XIVE interrupt controller driver: the irq_chip of XIVE sources (startup, shutdown,
 * mask, unmask, eoi with the saved_p / stale_p bookkeeping, retrigger, set_affinity), the IPI
 * chip, per-CPU event queues with target accounting, the fetch loop (acknowledge, software
 * pending-priority bitmap, toggle-bit queue scan, CPPR updates, replay after EOI), and CPU
 * setup / teardown for hotplug.
 *
 * @remarks Models arch/powerpc/sysdev/xive/common.c on top of the sPAPR backend (`xive-spapr.ts`).
 */

import { traceEvent } from '../sim/trace-events.ts';
import { TRACE_GUEST, type TraceSink } from '../sim/trace-sink.ts';
import { type GuestMemory, PAGE_SHIFT, zeroGuestMemory } from './guest-memory.ts';
import {
  DOMAIN_IPI,
  DOMAIN_XIVE,
  FLOW_FASTEOI,
  FLOW_PERCPU,
  IRQ_SET_MASK_OK,
  type IrqChip,
  type IrqCore,
  type IrqDesc,
  LisnStats,
} from './irq-core.ts';
import type { GuestDeviceTree, GuestVcpu, LoadResult } from './platform.ts';
import {
  EINVAL,
  EIO,
  ENODEV,
  ENOMEM,
  ENXIO,
  TM_CPPR,
  TM_QW1_OS,
  XIVE_BAD_IRQ,
  XIVE_ESB_GET,
  XIVE_ESB_INVALID,
  XIVE_ESB_LD_ST_MO,
  XIVE_ESB_LOAD_EOI,
  XIVE_ESB_SET_PQ_00,
  XIVE_ESB_SET_PQ_01,
  XIVE_ESB_SET_PQ_10,
  XIVE_ESB_SET_PQ_11,
  XIVE_ESB_STORE_EOI,
  XIVE_ESB_VAL_P,
  XIVE_ESB_VAL_Q,
  XIVE_INVALID_CHIP_ID,
  XIVE_INVALID_TARGET,
  XIVE_IRQ_FLAG_H_INT_ESB,
  XIVE_IRQ_FLAG_LSI,
  XIVE_IRQ_FLAG_NO_EOI,
  XIVE_IRQ_FLAG_STORE_EOI,
  XIVE_MAX_QUEUES,
} from './xive-regs.ts';
import { XiveIrqData, XiveQ, type XiveSpapr } from './xive-spapr.ts';

/** Per-CPU driver state (`struct xive_cpu`) plus the model's per-CPU counters. */
export class XiveCpu {
  readonly cpu: number;
  /** Hardware CPU id (what H_INT_* calls name as target). */
  readonly hwCpu: number;
  hwIpi: number;
  readonly ipiData: XiveIrqData;
  chipId: number;
  readonly queue: readonly XiveQ[];
  /** Software bitmap of priorities seen pending (bit p = priority p). */
  pendingPrio: number;
  cppr: number;
  /** `force_external_irq_replay()` was called during this exception. */
  replay: boolean;
  /** virq / LISN resolved by the last successful scan. */
  lastVirq: number;
  lastLisn: number;
  // model counters
  eqEntries: number;
  ipis: number;
  spurious: number;
  offlines: number;
  /** IPI entries dropped by the hot-unplug queue flush. */
  ipisFlushed: number;

  constructor(cpu: number, hwCpu: number) {
    this.cpu = cpu;
    this.hwCpu = hwCpu;
    this.hwIpi = XIVE_BAD_IRQ;
    this.ipiData = new XiveIrqData();
    this.chipId = XIVE_INVALID_CHIP_ID;
    this.queue = Array.from({ length: XIVE_MAX_QUEUES }, () => new XiveQ());
    this.pendingPrio = 0;
    this.cppr = 0;
    this.replay = false;
    this.lastVirq = -1;
    this.lastLisn = -1;
    this.eqEntries = 0;
    this.ipis = 0;
    this.spurious = 0;
    this.offlines = 0;
    this.ipisFlushed = 0;
  }
}

export interface XiveDriverOptions {
  /**
   * What the guest programs as EISN: `virq` (Linux: the Linux irq number; all IPIs share the
   * IPI virq) or `lisn` (the source number itself, resolved through the domain's reverse map).
   */
  readonly eisn: 'virq' | 'lisn';
  /** Initial value of `xive_pick_irq_target`'s round-robin `fuzz` (a seeded choice). */
  readonly fuzz: number;
}

/** Lowest set bit index (`ffs(x) - 1`), x ≠ 0. */
function lowestBit(x: number): number {
  return 31 - Math.clz32(x & -x);
}

export class XiveDriver {
  readonly core: IrqCore;
  readonly backend: XiveSpapr;
  readonly vcpus: readonly GuestVcpu[];
  readonly mem: GuestMemory;
  /** `xive_irq_priority`: the one priority used for every interrupt. */
  prio: number;
  /** `xive_queue_shift`. */
  queueShift: number;
  /** `per_cpu(xive_cpu)`, null until prepared. */
  readonly xcs: (XiveCpu | null)[];
  fuzz: number;
  /** `xive_ipi_irq`, −1 until requested. */
  ipiVirq: number;
  readonly eisnIsLisn: boolean;
  /** EQ entries whose EISN maps to no descriptor (EISN → count). */
  readonly unknownEisns: Map<number, number>;
  readonly xiveChip: IrqChip;
  readonly ipiChip: IrqChip;
  private readonly trace: TraceSink;
  private readonly w: LoadResult;
  /** `xive_tima + TM_QW1_OS + TM_CPPR`: where every CPPR update is stored. */
  private readonly cpprAddr: number;

  constructor(
    core: IrqCore,
    backend: XiveSpapr,
    vcpus: readonly GuestVcpu[],
    mem: GuestMemory,
    trace: TraceSink,
    opts: XiveDriverOptions,
  ) {
    this.core = core;
    this.backend = backend;
    this.vcpus = vcpus;
    this.mem = mem;
    this.prio = 0xff;
    this.queueShift = 0;
    this.xcs = vcpus.map(() => null);
    this.fuzz = opts.fuzz >>> 0;
    this.ipiVirq = -1;
    this.eisnIsLisn = opts.eisn === 'lisn';
    this.unknownEisns = new Map();
    this.trace = trace;
    this.w = { hi: 0, lo: 0 };
    this.cpprAddr = backend.tima + TM_QW1_OS + TM_CPPR;
    this.xiveChip = {
      name: 'XIVE-IRQ',
      canSetAffinity: true,
      startup: (d) => this.irqStartup(d),
      shutdown: (d) => this.irqShutdown(d),
      mask: (d) => this.doSourceSetMask(d.xd!, true),
      unmask: (d) => this.doSourceSetMask(d.xd!, false),
      eoi: (d) => this.irqEoi(d),
      setAffinity: (d, mask, force) => this.irqSetAffinity(d, mask, force),
      retrigger: (d) => this.irqRetrigger(d),
    };
    this.ipiChip = {
      name: 'XIVE-IPI',
      canSetAffinity: false,
      startup: () => 0,
      shutdown: () => {},
      mask: () => {},
      unmask: () => {},
      eoi: () => this.ipiEoi(),
      setAffinity: () => -EINVAL,
      retrigger: () => 0,
    };
  }

  /** The vCPU the kernel is executing on. */
  private v(): GuestVcpu {
    return this.vcpus[this.core.cur]!;
  }

  /**
   * Read the device tree: the priority (the highest 0..7 not reserved) and the EQ size.
   * 0 or −ENODEV.
   *
   * @remarks Models spapr.c:xive_spapr_init() / xive_get_max_prio() and common.c:xive_core_init().
   */
  init(dt: GuestDeviceTree): number {
    const res = dt.resIntPriorities;
    let found = 0xff;
    for (let prio = 0; prio < 8; prio++) {
      let reserved = 0;
      for (let i = 0; i + 1 < res.length; i += 2) {
        const base = res[i]!;
        const range = res[i + 1]!;
        if (prio >= base && prio < base + range) reserved++;
      }
      if (!reserved) found = prio;
    }
    if (found === 0xff) {
      this.trace.guestError("xive: no valid priority found in 'ibm,plat-res-int-priorities'");
      return -ENODEV;
    }
    this.prio = found;
    let shift = 0;
    for (const val of dt.eqSizes) {
      shift = val;
      if (val === PAGE_SHIFT) break;
    }
    if (shift < 12) return -ENODEV;
    this.queueShift = shift;
    return 0;
  }

  /** The EISN the guest programs for `d`. */
  eisnOf(d: IrqDesc): number {
    return this.eisnIsLisn ? d.hwirq : d.irq;
  }

  // --- ESB access ------------------------------------------------------------------------------

  /** @remarks Models common.c:xive_esb_read(): the old PQ in the low byte. */
  esbRead(xd: XiveIrqData, offset: number): number {
    let off = offset;
    if (off === XIVE_ESB_SET_PQ_10 && xd.flags & XIVE_IRQ_FLAG_STORE_EOI) off += XIVE_ESB_LD_ST_MO;
    if (xd.flags & XIVE_IRQ_FLAG_H_INT_ESB) return this.backend.esbRw(this.v(), xd.hwIrq, off, 0, false);
    const addr = off === XIVE_ESB_SET_PQ_00 && xd.eoiPq00 !== null ? xd.eoiPq00 : xd.eoiMmio + off;
    this.v().load(addr, 8, this.w);
    return this.w.lo & 0xff;
  }

  /** @remarks Models common.c:xive_esb_write(). */
  esbWrite(xd: XiveIrqData, offset: number, data: number): void {
    if (xd.flags & XIVE_IRQ_FLAG_H_INT_ESB) {
      this.backend.esbRw(this.v(), xd.hwIrq, offset, data, true);
      return;
    }
    this.v().store(xd.eoiMmio + offset, 8, 0, data);
  }

  /**
   * EOI at the source: StoreEOI, LOAD_EOI for LSIs, else SET_PQ_00 and a re-trigger if Q was set.
   *
   * @remarks Models common.c:xive_do_source_eoi().
   */
  doSourceEoi(xd: XiveIrqData): void {
    xd.staleP = false;
    if (xd.flags & XIVE_IRQ_FLAG_STORE_EOI) {
      this.esbWrite(xd, XIVE_ESB_STORE_EOI, 0);
      return;
    }
    if (xd.flags & XIVE_IRQ_FLAG_LSI) {
      this.esbRead(xd, XIVE_ESB_LOAD_EOI);
      return;
    }
    const eoiVal = this.esbRead(xd, XIVE_ESB_SET_PQ_00);
    if (eoiVal & XIVE_ESB_VAL_Q && xd.trigMmio >= 0) this.v().store(xd.trigMmio, 8, 0, 0);
  }

  /** @remarks Models common.c:xive_do_source_set_mask(). */
  doSourceSetMask(xd: XiveIrqData, mask: boolean): void {
    if (mask) {
      const val = this.esbRead(xd, XIVE_ESB_SET_PQ_01);
      if (!xd.staleP && val & XIVE_ESB_VAL_P) xd.savedP = true;
      xd.staleP = false;
    } else if (xd.savedP) {
      this.esbRead(xd, XIVE_ESB_SET_PQ_10);
      xd.savedP = false;
    } else {
      this.esbRead(xd, XIVE_ESB_SET_PQ_00);
      xd.staleP = false;
    }
  }

  // --- irq_chip ----------------------------------------------------------------------------------

  /** @remarks Models common.c:xive_irq_startup(). */
  irqStartup(d: IrqDesc): number {
    const xd = d.xd!;
    xd.savedP = false;
    xd.staleP = false;
    let target = this.pickIrqTarget(d, d.affinity);
    if (target === XIVE_INVALID_TARGET) {
      target = this.pickIrqTarget(d, this.core.online);
      if (target === XIVE_INVALID_TARGET) return -ENXIO;
      this.trace.guestError(`irq ${d.irq} started with broken affinity`);
    }
    xd.target = target;
    const rc = this.backend.configureIrq(this.v(), xd.hwIrq, this.hwCpu(target), this.prio, this.eisnOf(d));
    if (rc) return rc;
    this.doSourceSetMask(xd, false);
    return 0;
  }

  /** @remarks Models common.c:xive_irq_shutdown(). */
  irqShutdown(d: IrqDesc): void {
    const xd = d.xd!;
    this.doSourceSetMask(xd, true);
    this.backend.configureIrq(this.v(), xd.hwIrq, this.hwCpu(xd.target), 0xff, XIVE_BAD_IRQ);
    this.decTargetCount(xd.target);
    xd.target = XIVE_INVALID_TARGET;
  }

  /** @remarks Models common.c:xive_irq_eoi(). */
  irqEoi(d: IrqDesc): void {
    const xd = d.xd!;
    if (!d.disabled && !d.forwardedToVcpu && !(xd.flags & XIVE_IRQ_FLAG_NO_EOI)) this.doSourceEoi(xd);
    else xd.staleP = true;
    xd.savedP = false;
    const xc = this.xcs[this.core.cur];
    if (xc) this.doQueueEoi(xc);
  }

  /** @remarks Models common.c:xive_irq_retrigger(). */
  irqRetrigger(d: IrqDesc): number {
    const xd = d.xd!;
    if (xd.flags & XIVE_IRQ_FLAG_LSI) return 0;
    this.esbRead(xd, XIVE_ESB_SET_PQ_11);
    this.doSourceEoi(xd);
    return 1;
  }

  /** @remarks Models common.c:xive_irq_set_affinity(). */
  irqSetAffinity(d: IrqDesc, mask: Uint8Array, _force: boolean): number {
    const xd = d.xd!;
    const online = this.core.online;
    let any = false;
    for (let c = 0; c < mask.length; c++) if (mask[c] && online[c]) any = true;
    if (!any) return -EINVAL;
    if (xd.target !== XIVE_INVALID_TARGET && online[xd.target] && mask[xd.target]) return IRQ_SET_MASK_OK;
    const target = this.pickIrqTarget(d, mask);
    if (target === XIVE_INVALID_TARGET) return -ENXIO;
    const oldTarget = xd.target;
    let rc = 0;
    if (!d.forwardedToVcpu) {
      rc = this.backend.configureIrq(this.v(), xd.hwIrq, this.hwCpu(target), this.prio, this.eisnOf(d));
    }
    if (rc < 0) {
      this.trace.guestError(`Error ${rc} reconfiguring irq ${d.irq}`);
      return rc;
    }
    xd.target = target;
    if (oldTarget !== XIVE_INVALID_TARGET) this.decTargetCount(oldTarget);
    return IRQ_SET_MASK_OK;
  }

  /**
   * IRQCHIP_STATE_ACTIVE: whether the source still occupies a queue slot.
   *
   * @remarks Models common.c:xive_get_irqchip_state().
   */
  getIrqchipStateActive(d: IrqDesc): boolean {
    const xd = d.xd!;
    const pq = this.esbRead(xd, XIVE_ESB_GET);
    return pq !== XIVE_ESB_INVALID && !xd.staleP && (xd.savedP || (!!(pq & XIVE_ESB_VAL_P) && !d.disabled));
  }

  /** @remarks Models common.c:xive_ipi_eoi(). */
  ipiEoi(): void {
    const xc = this.xcs[this.core.cur];
    if (!xc) return;
    this.doSourceEoi(xc.ipiData);
    this.doQueueEoi(xc);
  }

  // --- targets and queue accounting ---------------------------------------------------------------

  hwCpu(cpu: number): number {
    return cpu < 0 ? -1 : this.vcpus[cpu]!.id;
  }

  /**
   * Take a slot in `cpu`'s queue unless it is full (limit entries − 1).
   *
   * @remarks Models common.c:xive_try_pick_target().
   */
  tryPickTarget(cpu: number): boolean {
    const xc = this.xcs[cpu];
    if (!xc) return false;
    const q = xc.queue[this.prio]!;
    const max = q.msk + 1 - 1;
    if (q.count > max) throw new Error(`xive: CPU ${cpu} queue accounting ${q.count} above its limit ${max}`);
    if (q.count === max) return false;
    q.count++;
    if (q.count > q.maxCount) q.maxCount = q.count;
    return true;
  }

  /**
   * Release a slot lazily: applied when the queue is next seen empty.
   *
   * @remarks Models common.c:xive_dec_target_count().
   */
  decTargetCount(cpu: number): void {
    const xc = cpu >= 0 ? this.xcs[cpu] : null;
    if (!xc) {
      this.trace.guestError(`xive_dec_target_count: cpu=${cpu} xc=null`);
      return;
    }
    xc.queue[this.prio]!.pendingCount++;
  }

  /**
   * First CPU of `mask`, counting `fuzz` CPUs in, that is online and has room; −1 if none.
   *
   * @remarks Models common.c:xive_find_target_in_mask().
   */
  findTargetInMask(mask: Uint8Array, fuzz: number): number {
    const n = this.vcpus.length;
    let weight = 0;
    for (let c = 0; c < n; c++) if (mask[c]) weight++;
    const num = Math.min(weight, n);
    if (num === 0) return XIVE_INVALID_TARGET;
    const skip = (fuzz >>> 0) % num;
    const next = (c: number): number => {
      for (let i = c + 1; i < n; i++) if (mask[i]) return i;
      return n;
    };
    let cpu = next(-1);
    for (let i = 0; i < skip && cpu < n; i++) cpu = next(cpu);
    const first = cpu;
    do {
      if (this.core.online[cpu] && this.tryPickTarget(cpu)) return cpu;
      cpu = next(cpu);
      if (cpu >= n) cpu = next(-1);
    } while (cpu !== first);
    return XIVE_INVALID_TARGET;
  }

  /**
   * sPAPR sources have no chip id: a round-robin pick in the affinity mask.
   *
   * @remarks Models common.c:xive_pick_irq_target().
   */
  pickIrqTarget(d: IrqDesc, mask: Uint8Array): number {
    const xd = d.xd!;
    if (xd.srcChip !== XIVE_INVALID_CHIP_ID) {
      // Not reached on sPAPR (populate_irq_data sets XIVE_INVALID_CHIP_ID).
      throw new Error('xive: chip-local targeting is not modelled');
    }
    const f = this.fuzz;
    this.fuzz = (this.fuzz + 1) >>> 0;
    return this.findTargetInMask(mask, f);
  }

  // --- queues and the fetch loop ----------------------------------------------------------------

  /**
   * The next entry of `q`, or −1 when the entry's generation bit equals the toggle (empty).
   *
   * @remarks Models common.c:xive_read_eq() (−1 instead of 0 for "nothing", so EISN 0 can be
   * told apart when EISNs are LISNs).
   */
  readEq(q: XiveQ, justPeek: boolean): number {
    if (q.qpage < 0) return -1;
    this.v().load(q.qpage + q.idx * 4, 4, this.w);
    // As an int32 (`| 0`, not `>>> 0`): an entry with the generation bit set stays a small int.
    const cur = this.w.lo | 0;
    if (cur >>> 31 === q.toggle) return -1;
    if (!justPeek) {
      q.idx = (q.idx + 1) & q.msk;
      if (q.idx === 0) q.toggle ^= 1;
      q.reads++;
    }
    return cur & 0x7fff_ffff;
  }

  /**
   * Find the EISN's descriptor; sets `xc.lastVirq` / `xc.lastLisn`. False when there is none.
   * (`irq_to_desc(irq)` in the scan; with LISN EISNs, the domain's reverse map first.)
   */
  private resolve(xc: XiveCpu, eisn: number): boolean {
    if (this.eisnIsLisn) {
      const virq = this.core.revmap.get(eisn);
      if (virq === undefined || this.core.desc(virq) === undefined) return false;
      xc.lastVirq = virq;
      xc.lastLisn = eisn;
      return true;
    }
    const d = this.core.desc(eisn);
    if (d === undefined) return false;
    xc.lastVirq = eisn;
    xc.lastLisn = d.domain === DOMAIN_IPI ? xc.hwIpi : d.hwirq;
    return true;
  }

  /**
   * Scan the pending priorities' queues, most favoured first; update CPPR. Returns the EISN
   * found, or −1.
   *
   * @remarks Models common.c:xive_scan_interrupts(). The rare outcomes (an EISN without a
   * descriptor, EISN 0, releasing queue slots) are out of line, so this stays small enough for
   * the JIT to inline the queue read and the CPPR store into it.
   */
  scanInterrupts(xc: XiveCpu, justPeek: boolean): number {
    let irq = -1;
    let prio = 0;
    while (xc.pendingPrio !== 0) {
      prio = lowestBit(xc.pendingPrio);
      const q = xc.queue[prio]!;
      const e = this.readEq(q, justPeek);
      // Linux reads EISN 0 as "nothing" (virq 0 is never programmed).
      if (e > 0 || (e === 0 && this.eisnIsLisn)) {
        if (justPeek || this.consume(xc, e)) {
          irq = e;
          break;
        }
        continue;
      }
      if (e === 0 && !justPeek) {
        xc.eqEntries++;
        this.countUnknown(0);
      }
      xc.pendingPrio &= ~(1 << prio);
      if (q.pendingCount) this.releaseSlots(xc, q);
    }
    if (irq < 0) prio = 0xff;
    if (prio !== xc.cppr) {
      xc.cppr = prio;
      this.vcpus[xc.cpu]!.store(this.cpprAddr, 1, 0, prio);
    }
    return irq;
  }

  /**
   * An entry the scan consumed: count it, resolve its descriptor. False when there is none
   * ("got interrupt %d without descriptor, dropping").
   */
  private consume(xc: XiveCpu, e: number): boolean {
    xc.eqEntries++;
    if (this.resolve(xc, e)) {
      this.core.stats.inc(xc.lastLisn, LisnStats.CONSUMED);
      return true;
    }
    this.countUnknown(e);
    this.trace.guestError(`xive: got interrupt ${e} without descriptor, dropping`);
    return false;
  }

  /** An EISN with no descriptor (or EISN 0, which Linux skips as "nothing"). */
  private countUnknown(e: number): void {
    this.unknownEisns.set(e, (this.unknownEisns.get(e) ?? 0) + 1);
  }

  /** The queue was seen empty: apply the slot releases {@link decTargetCount} deferred. */
  private releaseSlots(xc: XiveCpu, q: XiveQ): void {
    const p = q.pendingCount;
    q.pendingCount = 0;
    if (p > q.count) throw new Error(`xive: CPU ${xc.cpu} releases ${p} queue slots but holds ${q.count}`);
    q.count -= p;
  }

  /** @remarks Models common.c:xive_do_queue_eoi(): replay if anything is left. */
  doQueueEoi(xc: XiveCpu): void {
    if (this.scanInterrupts(xc, true) >= 0) xc.replay = true;
  }

  /**
   * Acknowledge and fetch one interrupt: the EISN, or −1 (spurious). The descriptor is in
   * `xc.lastVirq`.
   *
   * @remarks Models common.c:xive_get_irq().
   */
  getIrq(xc: XiveCpu): number {
    this.backend.updatePending(this.vcpus[xc.cpu]!, xc);
    const irq = this.scanInterrupts(xc, false);
    if (!this.eisnIsLisn && irq === XIVE_BAD_IRQ) return -1;
    return irq;
  }

  /**
   * One external-interrupt exception on `cpu` (`do_IRQ`) and every replay it forces. Returns
   * the number of interrupts dispatched.
   *
   * @remarks Models arch/powerpc/kernel/irq.c:__do_irq() with the replay of
   * irq_happened & PACA_IRQ_EE.
   */
  doIrq(cpu: number): number {
    const xc = this.xcs[cpu];
    if (!xc) return 0;
    this.core.cur = cpu;
    let n = 0;
    do {
      xc.replay = false;
      const e = this.getIrq(xc);
      if (e < 0) {
        xc.spurious++;
        if (this.trace.mask & TRACE_GUEST) traceEvent(this.trace, 'guest.spurious', { cpu });
        continue;
      }
      if (this.trace.mask & TRACE_GUEST)
        traceEvent(this.trace, 'guest.irq', { cpu, virq: xc.lastVirq, lisn: xc.lastLisn });
      this.core.curLisn = xc.lastLisn;
      this.core.genericHandleIrq(xc.lastVirq, cpu);
      this.core.curLisn = -1;
      if (++n > 1_000_000) throw new Error(`guest: CPU ${cpu} replayed 1000000 interrupts in one exception`);
    } while (xc.replay);
    return n;
  }

  // --- irq domain --------------------------------------------------------------------------------

  /**
   * `irq_create_mapping` on the XIVE domain: allocate a virq, read the source, turn it off
   * (PQ=01). Returns the virq (the existing one if mapped) or −errno.
   *
   * @remarks Models common.c:xive_irq_domain_map() / xive_irq_alloc_data() and
   * kernel/irq/irqdomain.c:irq_create_mapping().
   */
  createMapping(hwirq: number): number {
    const existing = this.core.revmap.get(hwirq);
    if (existing !== undefined) return existing;
    const virq = this.core.allocDesc(hwirq);
    if (virq < 0) return virq;
    const d = this.core.desc(virq)!;
    const xd = new XiveIrqData();
    const rc = this.backend.populateIrqData(this.v(), hwirq, xd);
    if (rc) {
      this.core.freeDesc(virq);
      return rc;
    }
    d.hwirq = hwirq;
    d.domain = DOMAIN_XIVE;
    d.flow = FLOW_FASTEOI;
    d.chip = this.xiveChip;
    d.xd = xd;
    // Turn OFF by default the interrupt being mapped.
    this.esbRead(xd, XIVE_ESB_SET_PQ_01);
    // The domain's xlate gives LSIs level type (xive_irq_set_type checks it against the FW flag).
    d.level = (xd.flags & XIVE_IRQ_FLAG_LSI) !== 0;
    this.core.revmap.set(hwirq, virq);
    return virq;
  }

  /** @remarks Models kernel/irq/irqdomain.c:irq_dispose_mapping(). 0 or −EINVAL (in use). */
  disposeMapping(virq: number): number {
    const d = this.core.desc(virq);
    if (d === undefined || d.domain !== DOMAIN_XIVE || d.started || d.actions.length > 0) return -EINVAL;
    this.core.freeDesc(virq);
    return 0;
  }

  /**
   * Create the IPI virq (one for all CPUs, per-CPU flow). Returns the virq.
   *
   * @remarks Models common.c:xive_request_ipi() (the descriptor part; the caller requests it).
   */
  createIpiIrq(): number {
    if (this.ipiVirq >= 0) return this.ipiVirq;
    const virq = this.core.allocDesc(0);
    if (virq < 0) return virq;
    const d = this.core.desc(virq)!;
    d.domain = DOMAIN_IPI;
    d.flow = FLOW_PERCPU;
    d.chip = this.ipiChip;
    d.perCpu = true;
    this.ipiVirq = virq;
    return virq;
  }

  // --- CPUs ----------------------------------------------------------------------------------------

  /**
   * Allocate `cpu`'s per-CPU data and its queue (from the CPU running the hotplug).
   *
   * @remarks Models common.c:xive_prepare_cpu() / xive_setup_cpu_queues() and
   * spapr.c:xive_spapr_setup_queue() / common.c:xive_queue_page_alloc().
   */
  prepareCpu(cpu: number): number {
    let xc = this.xcs[cpu];
    if (!xc) {
      xc = new XiveCpu(cpu, this.vcpus[cpu]!.id);
      this.xcs[cpu] = xc;
    }
    const q = xc.queue[this.prio]!;
    if (q.qpage >= 0) return 0;
    const order = Math.max(0, this.queueShift - PAGE_SHIFT);
    const page = this.mem.allocPages(order);
    if (page < 0) return -ENOMEM;
    zeroGuestMemory(this.v(), page, 2 ** this.queueShift);
    return this.backend.configureQueue(this.v(), xc.hwCpu, q, this.prio, page, this.queueShift);
  }

  /**
   * On `cpu` itself: open the CPPR.
   *
   * @remarks Models common.c:xive_setup_cpu().
   */
  setupCpu(cpu: number): void {
    const xc = this.xcs[cpu]!;
    xc.cppr = 0xff;
    this.vcpus[cpu]!.store(this.cpprAddr, 1, 0, 0xff);
  }

  /**
   * Allocate, route and unmask `cpu`'s IPI source. 0 or −EIO.
   *
   * @remarks Models common.c:xive_setup_cpu_ipi().
   */
  setupCpuIpi(cpu: number): number {
    const xc = this.xcs[cpu]!;
    if (xc.hwIpi !== XIVE_BAD_IRQ) return 0;
    const lisn = this.backend.getIpi();
    if (lisn < 0) return -EIO;
    xc.hwIpi = lisn;
    if (this.backend.populateIrqData(this.v(), lisn, xc.ipiData)) {
      this.trace.guestError(`Failed to populate IPI data on CPU ${cpu}`);
      return -EIO;
    }
    if (this.eisnIsLisn) this.core.revmap.set(lisn, this.ipiVirq);
    const eisn = this.eisnIsLisn ? lisn : this.ipiVirq;
    if (this.backend.configureIrq(this.v(), lisn, xc.hwCpu, this.prio, eisn)) {
      this.trace.guestError(`Failed to map IPI CPU ${cpu}`);
      return -EIO;
    }
    this.doSourceSetMask(xc.ipiData, false);
    return 0;
  }

  /** @remarks Models common.c:xive_cleanup_cpu_ipi(). */
  cleanupCpuIpi(cpu: number): void {
    const xc = this.xcs[cpu]!;
    if (xc.hwIpi === XIVE_BAD_IRQ) return;
    this.doSourceSetMask(xc.ipiData, true);
    const eisn = this.eisnIsLisn ? xc.hwIpi : this.ipiVirq;
    this.backend.configureIrq(this.v(), xc.hwIpi, xc.hwCpu, 0xff, eisn);
    if (this.eisnIsLisn) this.core.revmap.delete(xc.hwIpi);
    this.backend.putIpi(xc.hwIpi);
    xc.hwIpi = XIVE_BAD_IRQ;
  }

  /** @remarks Models common.c:xive_cleanup_cpu_queues() / spapr.c:xive_spapr_cleanup_queue(). */
  cleanupCpuQueues(cpu: number): void {
    const xc = this.xcs[cpu]!;
    const q = xc.queue[this.prio]!;
    if (q.qpage < 0) return;
    const page = q.qpage;
    this.backend.cleanupQueue(this.v(), xc.hwCpu, q, this.prio);
    this.mem.freePagesAt(page, Math.max(0, this.queueShift - PAGE_SHIFT));
  }

  /**
   * Re-send what is left in the dying CPU's queue: LSIs are EOId, MSIs re-triggered, IPIs
   * dropped. Counts every entry as deferred (consumed without a handler run).
   *
   * @remarks Models common.c:xive_flush_cpu_queue().
   */
  flushCpuQueue(xc: XiveCpu): void {
    for (let e = this.scanInterrupts(xc, false); e >= 0; e = this.scanInterrupts(xc, false)) {
      const d = this.core.desc(xc.lastVirq)!;
      this.core.stats.inc(xc.lastLisn, LisnStats.DEFERRED);
      if (d.domain !== DOMAIN_XIVE) {
        xc.ipisFlushed++;
        continue;
      }
      const xd = d.xd!;
      xd.savedP = false;
      if (xd.flags & XIVE_IRQ_FLAG_LSI) this.doSourceEoi(xd);
      else this.irqRetrigger(d);
    }
  }

  /**
   * On the dying CPU (already out of the online mask): migrate its interrupts, close the CPPR,
   * flush the queue, reopen the CPPR.
   *
   * @remarks Models common.c:xive_smp_disable_cpu().
   */
  smpDisableCpu(cpu: number): void {
    const xc = this.xcs[cpu]!;
    const v = this.vcpus[cpu]!;
    this.core.cur = cpu;
    this.core.migrateAllOffCpu(cpu);
    xc.cppr = 0;
    v.store(this.cpprAddr, 1, 0, 0);
    this.flushCpuQueue(xc);
    xc.cppr = 0xff;
    v.store(this.cpprAddr, 1, 0, 0xff);
  }

  /**
   * On the dying CPU, last: CPPR 0, free the IPI and the queue.
   *
   * @remarks Models common.c:xive_teardown_cpu().
   */
  teardownCpu(cpu: number): void {
    const xc = this.xcs[cpu]!;
    this.core.cur = cpu;
    xc.cppr = 0;
    this.vcpus[cpu]!.store(this.cpprAddr, 1, 0, 0);
    this.cleanupCpuIpi(cpu);
    this.cleanupCpuQueues(cpu);
  }

  /**
   * Send an IPI to `to` from the current CPU: a store to its IPI source's trigger page.
   * 0, or −ENXIO when `to` has no IPI (offline).
   *
   * @remarks Models common.c:xive_cause_ipi().
   */
  causeIpi(to: number): number {
    const xc = this.xcs[to];
    if (!xc || xc.hwIpi === XIVE_BAD_IRQ) return -ENXIO;
    if (xc.ipiData.trigMmio < 0) return -EINVAL;
    this.v().store(xc.ipiData.trigMmio, 8, 0, 0);
    return 0;
  }

  /**
   * Queue-accounting check over every CPU: `count` never above entries − 1, pending releases
   * never above `count`. One line per violation.
   */
  checkQueueAccounting(): string[] {
    const out: string[] = [];
    for (const xc of this.xcs) {
      if (!xc) continue;
      const q = xc.queue[this.prio]!;
      if (q.count > q.msk)
        out.push(`CPU ${xc.cpu}: ${q.count} sources target a queue of ${q.msk + 1} entries`);
      if (q.pendingCount > q.count)
        out.push(`CPU ${xc.cpu}: ${q.pendingCount} pending releases but ${q.count} held`);
    }
    return out;
  }
}
