/**
 * The Linux-like guest kernel: boots on the vCPUs it is given (CAS, XIVE exploitation init,
 * per-CPU queues, IPIs), binds a driver to every device, takes external interrupts, and offers
 * the operations a workload drives (disable / enable, affinity, CPU hotplug, IPIs) with the
 * counters a run reads. Its method names match the scenario runner's `GuestPort`, so the runner
 * can use it directly.
 *
 * @remarks Models arch/powerpc/platforms/pseries (prom_init's CAS call, smp.c / hotplug-cpu.c
 * CPU bring-up and offline), arch/powerpc/kernel/irq.c and the XIVE driver in `xive-driver.ts`.
 */

import { traceEvent } from '../sim/trace-events.ts';
import { TRACE_GUEST, type TraceSink } from '../sim/trace-sink.ts';
import { DeviceDriver } from './drivers.ts';
import { GuestMemory, PAGE_SIZE, writeGuestBytes } from './guest-memory.ts';
import { IRQ_HANDLED, IRQF_PERCPU, IRQF_SHARED, IrqCore, LisnStats } from './irq-core.ts';
import type { GuestDeviceTree, GuestVcpu } from './platform.ts';
import { XiveDriver } from './xive-driver.ts';
import { EBUSY, EINVAL, ENODEV, KVMPPC_H_CAS, XIVE_BAD_IRQ } from './xive-regs.ts';
import { XiveSpapr } from './xive-spapr.ts';

export interface GuestKernelOptions {
  /**
   * EISN programmed into every source: `virq` (Linux; default) or `lisn` (EISN = LISN, for
   * consumers that account queue entries per LISN).
   */
  readonly eisn?: 'virq' | 'lisn';
  /** Initial round-robin offset of target selection (`fuzz`), e.g. from the run's seed. */
  readonly fuzz?: number;
  /** CONFIG_NR_IRQS (virq allocation hint modulus); default 512. */
  readonly nrIrqs?: number;
}

/** One interrupt the guest set up. */
export interface GuestIrqInfo {
  /** Linux virq. */
  readonly girq: number;
  /** Hardware interrupt number (LISN). */
  readonly lisn: number;
  readonly kind: 'ipi' | 'msi' | 'lsi';
  /** Device name, or `ipi`. */
  readonly device: string;
  /** MSI vector, INTx pin, or the CPU of an IPI. */
  readonly vector: number;
}

/** Guest physical address / size of the CAS device-tree update buffer Linux passes. */
const CAS_FDT_BUF_SIZE = PAGE_SIZE;

/**
 * The `ibm,client-architecture-support` table: a POWER9 PVR pair, the list terminator, then five
 * option vectors: OV1 (ISA 3.00), OV2–OV4 empty, OV5 with byte 23 = 0x40 (XIVE exploitation).
 *
 * @remarks Models the table arch/powerpc/kernel/prom_init.c hands to CAS, reduced to the bytes
 * the platform acts on.
 */
export function casOptionVectors(ov5Byte23 = 0x40): Uint8Array {
  const b: number[] = [];
  const be32 = (v: number): void => {
    b.push((v >>> 24) & 0xff, (v >>> 16) & 0xff, (v >>> 8) & 0xff, v & 0xff);
  };
  be32(0xffff_0000); // POWER9 raw PVR
  be32(0x004e_0000);
  be32(0x0000_0000); // terminator: pvr bits outside the mask
  be32(0x0f00_0003);
  b.push(5 - 1); // number of vectors − 1
  b.push(3 - 1, 0x00, 0x00, 0x80); // OV1: byte 3 bit 0 = ISA 3.00
  b.push(1 - 1, 0x00); // OV2
  b.push(1 - 1, 0x00); // OV3
  b.push(1 - 1, 0x00); // OV4
  const ov5 = new Array<number>(24).fill(0);
  ov5[22] = ov5Byte23; // byte 23: 0x40 OV5_XIVE_EXPLOIT (0x80 asks for both modes)
  b.push(ov5.length - 1, ...ov5);
  return Uint8Array.from(b);
}

export class GuestKernel {
  readonly cpus: readonly GuestVcpu[];
  readonly dt: GuestDeviceTree;
  readonly mem: GuestMemory;
  readonly core: IrqCore;
  readonly backend: XiveSpapr;
  readonly xive: XiveDriver;
  readonly drivers: readonly DeviceDriver[];
  /** R3 of the CAS call (−1 before boot). */
  casRc: number;
  booted: boolean;
  /** Guest physical addresses of the CAS table and buffer. */
  casVector: number;
  casBuffer: number;
  private readonly trace: TraceSink;
  private readonly out: bigint[];

  constructor(
    cpus: readonly GuestVcpu[],
    dt: GuestDeviceTree,
    trace: TraceSink,
    opts: GuestKernelOptions = {},
  ) {
    if (cpus.length === 0) throw new RangeError('guest kernel needs at least one vCPU');
    this.cpus = cpus;
    this.dt = dt;
    this.trace = trace;
    this.mem = new GuestMemory(dt.ramFree, dt.ramSize);
    this.core = new IrqCore(cpus.length, opts.nrIrqs ?? 512);
    this.backend = new XiveSpapr(dt, trace);
    this.xive = new XiveDriver(this.core, this.backend, cpus, this.mem, trace, {
      eisn: opts.eisn ?? 'virq',
      fuzz: opts.fuzz ?? 0,
    });
    this.drivers = dt.devices.map((d) => new DeviceDriver(d, cpus.length));
    this.casRc = -1;
    this.booted = false;
    this.casVector = -1;
    this.casBuffer = -1;
    this.out = new Array<bigint>(9).fill(0n);
  }

  // --- boot ---------------------------------------------------------------------------------------

  /**
   * Boot: CAS asking for XIVE exploitation, XIVE init, the boot CPU, the IPI, every secondary
   * CPU. Device interrupts are requested by {@link startDevices}. 0 or −errno (−ENODEV: CAS
   * failed or no usable priority; this guest has no XICS fallback).
   */
  boot(): number {
    if (this.booted) return -EBUSY;
    const v0 = this.cpus[0]!;
    this.core.cur = 0;
    this.core.online[0] = 1;
    this.casVector = this.mem.allocPages(0);
    this.casBuffer = this.mem.allocPages(0);
    writeGuestBytes(v0, this.casVector, casOptionVectors());
    this.casRc = v0.hcall(
      KVMPPC_H_CAS,
      [BigInt(this.casVector), BigInt(this.casBuffer), BigInt(CAS_FDT_BUF_SIZE)],
      this.out,
    );
    if (this.casRc !== 0) {
      this.trace.guestError(`prom_init: CAS failed (${this.casRc}), XIVE exploitation not available`);
      return -ENODEV;
    }
    let rc = this.xive.init(this.dt);
    if (rc) return rc;
    // xive_core_init: the boot CPU's queue and CPPR.
    rc = this.xive.prepareCpu(0);
    if (rc) return rc;
    this.xive.setupCpu(0);
    // xive_smp_probe: the IPI, then the boot CPU's IPI source.
    const ipi = this.xive.createIpiIrq();
    if (ipi < 0) return ipi;
    rc = this.core.requestIrq(ipi, (_irq, cpu) => this.ipiAction(cpu), IRQF_PERCPU, 'IPI', this);
    if (rc) return rc;
    rc = this.xive.setupCpuIpi(0);
    if (rc) return rc;
    for (let c = 1; c < this.cpus.length; c++) {
      rc = this.bringUp(c, 0);
      if (rc) return rc;
    }
    this.booted = true;
    if (this.trace.mask & TRACE_GUEST)
      traceEvent(this.trace, 'guest.boot', { cpus: this.cpus.length, prio: this.xive.prio });
    return 0;
  }

  /** `smp_ipi_demux`: the IPI's action. */
  private ipiAction(cpu: number): number {
    const xc = this.xive.xcs[cpu];
    if (xc) xc.ipis++;
    return IRQ_HANDLED;
  }

  /** __cpu_up on `from`: prepare `cpu` (queue, IPI), then `cpu` opens its CPPR and goes online. */
  private bringUp(cpu: number, from: number): number {
    this.core.cur = from;
    let rc = this.xive.prepareCpu(cpu);
    if (rc) return rc;
    rc = this.xive.setupCpuIpi(cpu);
    if (rc) return rc;
    this.core.cur = cpu;
    this.xive.setupCpu(cpu);
    this.core.online[cpu] = 1;
    return 0;
  }

  /**
   * Every driver probes: maps its MSIs and INTx lines and requests them. 0 or the first −errno.
   */
  startDevices(): number {
    let first = 0;
    for (const drv of this.drivers) {
      const rc = this.probe(drv);
      if (rc && !first) first = rc;
    }
    return first;
  }

  /** Probe one driver. 0 or −errno. */
  probe(drv: DeviceDriver): number {
    if (drv.probed) return 0;
    this.core.cur = this.controlCpu();
    for (let v = 0; v < drv.info.msis.length; v++) {
      const virq = this.xive.createMapping(drv.info.msis[v]!);
      if (virq < 0) return virq;
      drv.msiVirqs[v] = virq;
      const rc = this.core.requestIrq(virq, drv.msiHandler(v), 0, `${drv.name}-msi${v}`, drv);
      if (rc) return rc;
    }
    for (let pin = 0; pin < drv.info.lsis.length; pin++) {
      const virq = this.xive.createMapping(drv.info.lsis[pin]!);
      if (virq < 0) return virq;
      drv.lsiVirqs[pin] = virq;
      const rc = this.core.requestIrq(virq, drv.lsiHandler(pin), IRQF_SHARED, `${drv.name}-intx${pin}`, drv);
      if (rc) return rc;
    }
    drv.probed = true;
    return 0;
  }

  /** Driver removal: free every irq it requested. */
  remove(drv: DeviceDriver): void {
    if (!drv.probed) return;
    this.core.cur = this.controlCpu();
    for (const virq of drv.msiVirqs) if (virq >= 0) this.core.freeIrq(virq, drv);
    for (const virq of drv.lsiVirqs) if (virq >= 0) this.core.freeIrq(virq, drv);
    drv.probed = false;
  }

  driver(name: string): DeviceDriver | undefined {
    return this.drivers.find((d) => d.name === name);
  }

  /** The CPU that runs workload operations: the first online one. */
  controlCpu(): number {
    return Math.max(this.core.online.indexOf(1), 0);
  }

  // --- interrupts ---------------------------------------------------------------------------------

  /**
   * Take one external interrupt on `cpu` (do_IRQ and the replays it forces). Returns the number
   * of interrupts dispatched; 0 on an offline CPU. The caller calls it while the vCPU's
   * `externalInterrupt` line is high.
   */
  handleInterrupt(cpu: number): number {
    if (!this.core.online[cpu]) return 0;
    return this.xive.doIrq(cpu);
  }

  /** Take interrupts on `cpu` while its line is high. Returns the number dispatched. */
  takePendingInterrupts(cpu: number, maxExceptions = 1_000_000): number {
    const v = this.cpus[cpu]!;
    let n = 0;
    for (let i = 0; v.externalInterrupt && this.core.online[cpu]; i++) {
      if (i >= maxExceptions)
        throw new Error(`guest: CPU ${cpu} still interrupted after ${maxExceptions} exceptions`);
      n += this.handleInterrupt(cpu);
    }
    return n;
  }

  /** `disable_irq` (lazy). 0 or −EINVAL. */
  disableIrq(girq: number): number {
    this.core.cur = this.controlCpu();
    return this.core.disableIrq(girq);
  }

  /** `enable_irq` (unmask + resend of an MSI that arrived while disabled). 0 or −EINVAL. */
  enableIrq(girq: number): number {
    this.core.cur = this.controlCpu();
    return this.core.enableIrq(girq);
  }

  /** `irq_set_affinity` to one CPU or a mask (one byte per CPU). 0 or −errno. */
  setAffinity(girq: number, cpu: number | Uint8Array): number {
    let mask: Uint8Array;
    if (typeof cpu === 'number') {
      if (!Number.isInteger(cpu) || cpu < 0 || cpu >= this.cpus.length) return -EINVAL;
      mask = new Uint8Array(this.cpus.length);
      mask[cpu] = 1;
    } else {
      mask = cpu;
    }
    this.core.cur = this.controlCpu();
    return this.core.setAffinity(girq, mask);
  }

  /** Send an IPI from `from` to `to`. 0 or −errno (−EINVAL: `from` offline; −ENXIO: `to` has no IPI). */
  sendIpi(from: number, to: number): number {
    if (!this.core.online[from] || to < 0 || to >= this.cpus.length) return -EINVAL;
    this.core.cur = from;
    return this.xive.causeIpi(to);
  }

  /**
   * Offline `cpu`: it first takes what is pending (the hotplug thread runs on it with interrupts
   * enabled), then leaves the online mask, migrates its interrupts, flushes its queue and
   * frees its IPI and queue. 0 or −errno (−EBUSY: last online CPU).
   *
   * @remarks Models pseries_cpu_disable() → xive_smp_disable_cpu() and
   * pseries_cpu_offline_self() → xive_teardown_cpu().
   */
  cpuDown(cpu: number): number {
    if (!Number.isInteger(cpu) || cpu < 0 || cpu >= this.cpus.length || !this.core.online[cpu])
      return -EINVAL;
    let onlineCount = 0;
    for (const o of this.core.online) onlineCount += o;
    if (onlineCount === 1) return -EBUSY;
    this.takePendingInterrupts(cpu);
    this.core.online[cpu] = 0;
    this.xive.smpDisableCpu(cpu);
    this.xive.teardownCpu(cpu);
    this.xive.xcs[cpu]!.offlines++;
    if (this.trace.mask & TRACE_GUEST) traceEvent(this.trace, 'guest.cpu_down', { cpu });
    return 0;
  }

  /** Online `cpu` again (queue, IPI, CPPR 0xff). 0 or −errno. */
  cpuUp(cpu: number): number {
    if (!Number.isInteger(cpu) || cpu < 0 || cpu >= this.cpus.length || this.core.online[cpu]) return -EINVAL;
    const rc = this.bringUp(cpu, this.controlCpu());
    if (rc === 0 && this.trace.mask & TRACE_GUEST) traceEvent(this.trace, 'guest.cpu_up', { cpu });
    return rc;
  }

  isOnline(cpu: number): boolean {
    return this.core.online[cpu] === 1;
  }

  // --- what the guest set up ----------------------------------------------------------------------

  /** IPIs (per CPU with an IPI now), then every probed device's MSIs and INTx lines (one per LISN). */
  irqs(): GuestIrqInfo[] {
    const out: GuestIrqInfo[] = [];
    for (const xc of this.xive.xcs) {
      if (!xc || xc.hwIpi === XIVE_BAD_IRQ) continue;
      out.push({ girq: this.xive.ipiVirq, lisn: xc.hwIpi, kind: 'ipi', device: 'ipi', vector: xc.cpu });
    }
    const seen = new Set<number>();
    for (const drv of this.drivers) {
      if (!drv.probed) continue;
      drv.info.msis.forEach((lisn, v) => {
        out.push({ girq: drv.msiVirqs[v]!, lisn, kind: 'msi', device: drv.name, vector: v });
      });
      drv.info.lsis.forEach((lisn, pin) => {
        if (seen.has(lisn)) return;
        seen.add(lisn);
        out.push({ girq: drv.lsiVirqs[pin]!, lisn, kind: 'lsi', device: drv.name, vector: pin });
      });
    }
    return out;
  }

  /** Started and not disabled. */
  isEnabled(girq: number): boolean {
    const d = this.core.desc(girq);
    return d?.started === true && !d.disabled;
  }

  /** The CPU the irq is routed to, −1 for none (and for the per-CPU IPI). */
  target(girq: number): number {
    return this.core.desc(girq)?.xd?.target ?? -1;
  }

  /** virq of a hardware interrupt number, −1 if unmapped. */
  virqOf(lisn: number): number {
    return this.core.revmap.get(lisn) ?? -1;
  }

  // --- counters -------------------------------------------------------------------------------------

  /** Called once per handler run with (LISN, CPU). */
  get onDeliver(): (lisn: number, cpu: number) => void {
    return this.core.onDeliver;
  }

  set onDeliver(f: (lisn: number, cpu: number) => void) {
    this.core.onDeliver = f;
  }

  /** Handler runs for `lisn`. */
  delivered(lisn: number): number {
    return this.core.stats.get(lisn, LisnStats.DELIVERED);
  }

  /** EQ entries carrying `lisn` consumed without a handler run (disabled, or flushed at offline). */
  deferred(lisn: number): number {
    return this.core.stats.get(lisn, LisnStats.DEFERRED);
  }

  /** EQ entries carrying `lisn` the guest read. */
  consumed(lisn: number): number {
    return this.core.stats.get(lisn, LisnStats.CONSUMED);
  }

  /** Handler runs of virq `girq` (kstat). */
  irqDelivered(girq: number): number {
    return this.core.desc(girq)?.kstat ?? 0;
  }

  unknownEisns(): ReadonlyMap<number, number> {
    return this.xive.unknownEisns;
  }

  /** Entries read from (cpu, prio)'s queue since boot. */
  queueRead(cpu: number, prio: number): number {
    return this.xive.xcs[cpu]?.queue[prio]?.reads ?? 0;
  }

  /** Entries of (cpu, prio)'s queue (0 for a priority the guest does not use). */
  queueCapacity(cpu: number, prio: number): number {
    const q = this.xive.xcs[cpu]?.queue[prio];
    return q && q.msk > 0 ? q.msk + 1 : 0;
  }

  /** Target accounting of `cpu`'s queue: sources routed there, releases pending, limit. */
  queueAccounting(cpu: number): { count: number; pendingCount: number; limit: number; maxCount: number } {
    const q = this.xive.xcs[cpu]?.queue[this.xive.prio];
    if (!q) return { count: 0, pendingCount: 0, limit: 0, maxCount: 0 };
    return { count: q.count, pendingCount: q.pendingCount, limit: q.msk, maxCount: q.maxCount };
  }

  /** Queue-accounting violations (empty when sound). */
  checkQueues(): string[] {
    return this.xive.checkQueueAccounting();
  }

  cpuDelivered(cpu: number): number {
    return this.core.cpuDelivered[cpu] ?? 0;
  }

  cpuIpis(cpu: number): number {
    return this.xive.xcs[cpu]?.ipis ?? 0;
  }

  cpuEqEntries(cpu: number): number {
    return this.xive.xcs[cpu]?.eqEntries ?? 0;
  }

  cpuOfflines(cpu: number): number {
    return this.xive.xcs[cpu]?.offlines ?? 0;
  }

  /** External interrupts that found nothing (`irq_stat.spurious_irqs`). */
  cpuSpurious(cpu: number): number {
    return this.xive.xcs[cpu]?.spurious ?? 0;
  }

  /** Hypercalls issued by the XIVE driver, by opcode. */
  hcallCounts(): ReadonlyMap<number, number> {
    return this.backend.hcalls;
  }
}
