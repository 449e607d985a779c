/**
 * The sPAPR (`pseries`) machine in XIVE-only mode (`ic-mode=xive`): guest RAM, the XIVE MMIO
 * regions in the system address space, the interrupt numbering and claims, PCI-like devices
 * with MSIs and LSIs, the hypercall dispatch (CAS and H_INT_*), vCPUs and system reset.
 *
 * @remarks Models hw/ppc/spapr.c (spapr_machine_init, spapr_machine_reset),
 * hw/ppc/spapr_irq.c (spapr_irq_init, spapr_irq_update_active_intc), hw/intc/spapr_xive.c
 * (spapr_xive_realize region set-up, spapr_xive_mmio_set_enabled) and hw/ppc/spapr_hcall.c
 * (spapr_hypercall dispatch, h_client_architecture_support), QEMU 7.2.
 */

import type { GuestDeviceInfo, GuestDeviceTree } from '../guest/platform.ts';
import type { Host } from '../host/host.ts';
import type { HostProcess } from '../host/syscalls.ts';
import { type AccessSize, NO_CPU, type Word64 } from '../hw/mmio.ts';
import { XIVE_TM_SIZE } from '../hw/xive/tima.ts';
import { traceEvent } from '../sim/trace-events.ts';
import { NULL_TRACE, TRACE_HCALL, TRACE_VMM, type TraceSink } from '../sim/trace-sink.ts';
import { AddressSpace } from './address-space.ts';
import { KvmAccel, SpaprKvmCpu } from './kvm-accel.ts';
import { MemoryRegion, UINT64_SPACE } from './memory-region.ts';
import {
  CAS_STATUS_EXIT,
  type CasResult,
  CPU_POWERPC_POWER9_DD20,
  doClientArchitectureSupport,
  KVMPPC_H_CAS,
  ppc64PhysToReal,
  SPAPR_DT_UPDATE_HEADER_SIZE,
} from './spapr-cas.ts';
import { SpaprCpu } from './spapr-cpu.ts';
import {
  PCI_NUM_PINS,
  SPAPR_IRQ_EPOW,
  SPAPR_IRQ_HOTPLUG,
  SPAPR_IRQ_IPI,
  SPAPR_IRQ_NR_IPIS,
  SPAPR_IRQ_VIO,
  SPAPR_XIVE_NR_IRQS,
  SpaprMsiBitmap,
  spaprPhbLsi,
} from './spapr-irq.ts';
import { SPAPR_XIVE_ESB_SHIFT, SPAPR_XIVE_TM_BASE, SPAPR_XIVE_VC_BASE, SpaprXive } from './spapr-xive.ts';
import { H_FUNCTION, H_HARDWARE, H_INT_GET_SOURCE_INFO, H_INT_RESET } from './spapr-xive-hcalls.ts';
import { SpaprXiveKvm } from './spapr-xive-kvm.ts';

/** One PCI-like device: how many MSIs it uses and how many INTx pins (≤ 4). */
export interface SpaprDeviceConfig {
  readonly name: string;
  readonly msis: number;
  readonly lsis: number;
  /**
   * The MSIs' LISNs, claimed as given instead of allocated from the MSI bitmap (a dedicated
   * passthrough range, option 4 of the designs); `msis` of them. Absent: QEMU's allocation.
   */
  readonly lisns?: readonly number[];
}

export interface SpaprMachineConfig {
  /** Number of vCPUs (= XIVE servers; IPIs 0..smp−1). */
  readonly smp: number;
  /** Guest RAM at guest physical 0, bytes (multiple of 64 KiB, more than 1 MiB). */
  readonly ramSize: number;
  readonly devices: readonly SpaprDeviceConfig[];
  readonly trace?: TraceSink;
  /**
   * The accelerator (`-accel kvm,kernel-irqchip=on`): guest RAM, vCPUs and the XIVE controller
   * in the host's KVM. Default: TCG-like emulation in the VMM (today's machine, unchanged).
   */
  readonly accel?: SpaprAccelConfig;
  /**
   * Without KVM: a host whose PCI functions the VMM may pass through with vfio-pci, the MSIs
   * relayed by the VMM to the emulated XIVE (`kernel_irqchip=off`). The VMM runs as a process
   * of that host.
   */
  readonly vfioHost?: Host;
  /**
   * Create the machine stopped (`-S` / `-incoming`): the vCPUs do not enter KVM_RUN until
   * {@link SpaprMachine.vmStart} (a migration destination).
   */
  readonly startStopped?: boolean;
}

/** `-accel kvm -machine kernel-irqchip=on` on a given host. */
export interface SpaprAccelConfig {
  readonly kind: 'kvm';
  readonly host: Host;
  /** Only `true` (required) is modelled: a connect failure is fatal, no fallback to emulation. */
  readonly kernelIrqchip?: true;
}

/** Guest physical memory reserved for firmware, the qtest mailbox and CAS buffers. */
export const SPAPR_FIRMWARE_AREA = 0x10_0000;

/**
 * The default PHB's INTx lines (`SPAPR_IRQ_PCI_LSI` + 0..3): devices share them through the
 * PCI swizzle and a line is asserted while any pin routed to it is.
 *
 * @remarks Models hw/pci/pci.c:pci_change_irq_level() (per-line assert counts) and
 * pci_swizzle_map_irq_fn() as used by hw/ppc/spapr_pci.c.
 */
class SpaprPhbIntx {
  private readonly counts: Int32Array;
  private readonly xive: SpaprXive;

  constructor(xive: SpaprXive) {
    this.counts = new Int32Array(PCI_NUM_PINS);
    this.xive = xive;
  }

  change(line: number, delta: number): void {
    const before = this.counts[line]!;
    const after = before + delta;
    this.counts[line] = after;
    if (before > 0 !== after > 0) this.xive.setIrq(spaprPhbLsi(0, line), after > 0 ? 1 : 0);
  }

  reset(): void {
    this.counts.fill(0);
  }
}

/** A device's interrupt lines as the machine wires them. */
export class SpaprDevice implements GuestDeviceInfo {
  readonly name: string;
  /** MSI LISNs (allocated from the MSI bitmap and claimed at machine init). */
  readonly msis: readonly number[];
  /** LSI LISNs, one per INTx pin (after the swizzle; may be shared with other devices). */
  readonly lsis: readonly number[];
  /** PHB INTx line of each pin. */
  readonly lines: readonly number[];
  private readonly pinLevel: Uint8Array;
  private readonly xive: SpaprXive;
  private readonly intx: SpaprPhbIntx;

  constructor(
    name: string,
    msis: readonly number[],
    lines: readonly number[],
    xive: SpaprXive,
    intx: SpaprPhbIntx,
  ) {
    this.name = name;
    this.msis = msis;
    this.lines = lines;
    this.lsis = lines.map((l) => spaprPhbLsi(0, l));
    this.pinLevel = new Uint8Array(lines.length);
    this.xive = xive;
    this.intx = intx;
  }

  /**
   * Signal MSI `vector`: the MSI window write pulses the source line.
   *
   * @remarks Models hw/ppc/spapr_pci.c:spapr_msi_write() → qemu_irq_pulse().
   */
  raiseMsi(vector: number): void {
    const lisn = this.msis[vector];
    if (lisn === undefined)
      throw new RangeError(`${this.name}: no MSI vector ${vector} (has ${this.msis.length})`);
    this.xive.setIrq(lisn, 1);
    this.xive.setIrq(lisn, 0);
  }

  /** Drive INTx pin `i` (level-sensitive). */
  setLsi(i: number, level: number | boolean): void {
    const line = this.lines[i];
    if (line === undefined) throw new RangeError(`${this.name}: no INTx pin ${i} (has ${this.lines.length})`);
    const l = level ? 1 : 0;
    if (this.pinLevel[i] === l) return;
    this.pinLevel[i] = l;
    this.intx.change(line, l ? 1 : -1);
  }

  /** Level of INTx pin `i` (migrated with the device, `PCIDevice.irq_state`). */
  intxLevel(i: number): number {
    return this.pinLevel[i] ?? 0;
  }

  /** PCI reset deasserts INTx (`pci_device_deassert_intx`); the PHB counts are reset beside. */
  resetPins(): void {
    this.pinLevel.fill(0);
  }
}

export class SpaprMachine {
  readonly smp: number;
  readonly ramSize: number;
  readonly trace: TraceSink;
  readonly xive: SpaprXive;
  /** The system address space (`address_space_memory`). */
  readonly sysmem: AddressSpace;
  readonly cpus: readonly SpaprCpu[];
  readonly devices: readonly SpaprDevice[];
  readonly msiMap: SpaprMsiBitmap;
  /** PVR of every vCPU (CAS matches the guest's list against it). */
  readonly cpuPvr: number;

  // Regions (kept so the KVM backend can overlay RAM devices on them).
  readonly sysmemRoot: MemoryRegion;
  readonly ram: MemoryRegion;
  /** `xive.esb` container at SPAPR_XIVE_VC_BASE. */
  readonly esbRegion: MemoryRegion;
  /** `xive.esb-emulated`, priority 0 inside {@link esbRegion}. */
  readonly esbEmulated: MemoryRegion;
  /** `xive.end` at the END ESB base, always disabled on sPAPR. */
  readonly endRegion: MemoryRegion;
  /** `xive.tima` at SPAPR_XIVE_TM_BASE (4 × 64 KiB). */
  readonly timaRegion: MemoryRegion;

  /** CAS negotiated successfully since the last reset. */
  casDone: boolean;
  /** What the last CAS concluded (null before any). */
  lastCas: CasResult | null;
  /** Where QEMU would have exited (`exit(EXIT_FAILURE)`), the message it printed. */
  fatalError: string | null;
  /** Called once when {@link fatalError} is set (the front end exits). */
  onFatalError: ((msg: string) => void) | null;
  /** The KVM accelerator, or null (emulated). */
  readonly kvm: KvmAccel | null;
  /** The VMM as a host process, when the machine has a host (KVM, or {@link SpaprMachineConfig.vfioHost}). */
  readonly vmm: { readonly host: Host; readonly proc: HostProcess } | null;
  /** The KVM side of the XIVE controller (connected at init), or null (emulated). */
  readonly xiveKvm: SpaprXiveKvm | null;
  /** Run state (`runstate_is_running()`): vCPUs in KVM_RUN. Always true when emulated. */
  running: boolean;

  private readonly intx: SpaprPhbIntx;

  constructor(cfg: SpaprMachineConfig) {
    const { smp, ramSize } = cfg;
    if (!Number.isInteger(smp) || smp < 1 || smp > SPAPR_IRQ_NR_IPIS) {
      throw new RangeError(`smp ${smp}: must be 1..${SPAPR_IRQ_NR_IPIS}`);
    }
    if (!Number.isSafeInteger(ramSize) || ramSize <= SPAPR_FIRMWARE_AREA || ramSize % 0x10000 !== 0) {
      throw new RangeError(`ram size 0x${ramSize.toString(16)}: must be a multiple of 64 KiB above 1 MiB`);
    }
    this.smp = smp;
    this.ramSize = ramSize;
    this.trace = cfg.trace ?? NULL_TRACE;
    this.cpuPvr = CPU_POWERPC_POWER9_DD20;
    this.casDone = false;
    this.lastCas = null;
    this.fatalError = null;
    this.onFatalError = null;
    this.running = true;
    const kvm = cfg.accel?.kind === 'kvm' ? new KvmAccel(cfg.accel.host, this.trace) : null;
    this.kvm = kvm;
    this.vmm =
      kvm !== null
        ? { host: kvm.host, proc: kvm.proc }
        : cfg.vfioHost !== undefined
          ? { host: cfg.vfioHost, proc: cfg.vfioHost.spawn() }
          : null;

    // Memory map. One transaction: the flat view is rendered once.
    this.sysmemRoot = MemoryRegion.container('system', UINT64_SPACE);
    this.sysmem = new AddressSpace(this.sysmemRoot, 'memory', this.trace);
    this.xive = new SpaprXive(
      { nrIrqs: SPAPR_XIVE_NR_IRQS, nrServers: smp, hvPrio: 7 },
      this.sysmem,
      this.trace,
    );
    const esbSize = this.xive.nrIrqs * 2 ** SPAPR_XIVE_ESB_SHIFT;
    this.ram =
      kvm !== null ? kvm.allocRam('ppc_spapr.ram', ramSize) : MemoryRegion.ram('ppc_spapr.ram', ramSize);
    this.esbRegion = MemoryRegion.container('xive.esb', esbSize);
    // The source ESB ops accept 8-byte accesses only (`xive_source_esb_ops.valid`).
    this.esbEmulated = MemoryRegion.io('xive.esb-emulated', esbSize, this.xive.source, {
      min: 8,
      max: 8,
      unaligned: false,
    });
    // Quirk kept from QEMU: the END source is realized with nr-ends = nr_irqs, so its window
    // is as large as the source ESB window.
    this.endRegion = MemoryRegion.io('xive.end', esbSize, this.xive.endEsb, {
      min: 8,
      max: 8,
      unaligned: false,
    });
    this.timaRegion = MemoryRegion.io('xive.tima', XIVE_TM_SIZE, this.xive.tima, {
      min: 1,
      max: 8,
      unaligned: false,
    });
    this.sysmem.begin();
    this.sysmemRoot.addSubregion(0, this.ram);
    this.esbRegion.addSubregionOverlap(0, this.esbEmulated, 0);
    this.sysmemRoot.addSubregion(SPAPR_XIVE_VC_BASE, this.esbRegion);
    this.sysmemRoot.addSubregion(this.xive.endBase, this.endRegion);
    this.sysmemRoot.addSubregion(SPAPR_XIVE_TM_BASE, this.timaRegion);
    this.endRegion.setEnabled(false);
    // XIVE-only machine: XIVE is the active controller from init (spapr_irq_update_active_intc).
    this.setXiveMmioEnabled(true);
    this.sysmem.commit();
    // KVM: the memory listener turns the flat view's RAM ranges into memslots.
    kvm?.listen(this.sysmem);

    // vCPUs, each wired to its thread context.
    const cpus: SpaprCpu[] = [];
    for (let i = 0; i < smp; i++) {
      const tctx = this.xive.tctxs[i];
      if (tctx === undefined) throw new Error(`SpaprXive has no thread context for vCPU ${i}`);
      cpus.push(
        kvm !== null
          ? new SpaprKvmCpu(i, tctx, this, kvm, this.trace)
          : new SpaprCpu(i, this.sysmem, tctx, this, this.trace),
      );
    }
    this.cpus = cpus;

    // Interrupt numbering (spapr_irq_init, spapr_events_init, VIO, default PHB).
    for (let i = 0; i < smp; i++) this.claim(SPAPR_IRQ_IPI + i, false);
    this.claim(SPAPR_IRQ_EPOW, false);
    this.claim(SPAPR_IRQ_HOTPLUG, false);
    this.claim(SPAPR_IRQ_VIO, false);
    for (let pin = 0; pin < PCI_NUM_PINS; pin++) this.claim(spaprPhbLsi(0, pin), true);

    this.msiMap = new SpaprMsiBitmap();
    this.intx = new SpaprPhbIntx(this.xive);
    const devices: SpaprDevice[] = [];
    cfg.devices.forEach((d, slot) => {
      if (!Number.isInteger(d.lsis) || d.lsis < 0 || d.lsis > PCI_NUM_PINS) {
        throw new RangeError(
          `device ${d.name}: ${d.lsis} LSIs requested, a PCI function has ${PCI_NUM_PINS} INTx pins at most`,
        );
      }
      if (!Number.isInteger(d.msis) || d.msis < 0)
        throw new RangeError(`device ${d.name}: bad MSI count ${d.msis}`);
      const msis: number[] = [];
      if (d.lisns !== undefined) {
        if (d.lisns.length !== d.msis)
          throw new RangeError(`device ${d.name}: ${d.lisns.length} LISNs given for ${d.msis} MSIs`);
        for (const lisn of d.lisns) {
          this.claim(lisn, false);
          msis.push(lisn);
        }
      } else if (d.msis > 0) {
        const first = this.msiMap.alloc(d.msis, true);
        if (first < 0)
          throw new RangeError(`Can't allocate MSIs for device ${d.name}: ${this.msiMap.lastError}`);
        for (let v = 0; v < d.msis; v++) {
          this.claim(first + v, false);
          msis.push(first + v);
        }
      }
      const lines: number[] = [];
      for (let pin = 0; pin < d.lsis; pin++) lines.push((slot + pin) % PCI_NUM_PINS);
      devices.push(new SpaprDevice(d.name, msis, lines, this.xive, this.intx));
    });
    this.devices = devices;

    // KVM: connect the in-kernel XIVE (spapr_irq_init_kvm at the first reset, before the vCPUs
    // enter KVM_RUN); kernel-irqchip=on makes a failure fatal.
    this.xiveKvm = null;
    if (kvm !== null) {
      const xk = new SpaprXiveKvm({
        xive: this.xive,
        proc: kvm.proc,
        vmFd: kvm.vmFd,
        esbContainer: this.esbRegion,
        timaRegion: this.timaRegion,
        vcpuFds: kvm.vcpuFds,
        trace: this.trace,
      });
      this.xive.kvm = xk;
      xk.runOnCpu = (cpu, fn) => {
        const c = cpus[cpu] as SpaprKvmCpu;
        const wasRunning = c.run !== null;
        c.stop();
        try {
          fn();
        } finally {
          if (wasRunning) c.start();
        }
      };
      xk.isRunning = () => this.running;
      if (xk.connect(smp) < 0) throw new Error(`kernel-irqchip=on: ${xk.lastError}`);
      this.xiveKvm = xk;
      if (!cfg.startStopped) for (const c of cpus) (c as SpaprKvmCpu).start();
    }
    this.running = cfg.startStopped !== true;
  }

  /**
   * Stop the VM: vCPUs leave KVM_RUN, then the VM change-state handlers run (XIVE: sources set
   * PENDING with their PQ saved, EQ_SYNC). Emulated: only the run state changes.
   *
   * @remarks Models softmmu/cpus.c:do_vm_stop() (pause_all_vcpus, vm_state_notify(false)).
   */
  vmStop(): number {
    if (!this.running) return 0;
    if (this.kvm !== null) for (const c of this.cpus) (c as SpaprKvmCpu).stop();
    this.running = false;
    return this.xiveKvm?.changeState(false) ?? 0;
  }

  /**
   * Resume the VM: change-state handlers first (XIVE: saved PQs written back, a trigger for what
   * was caught meanwhile), then the vCPUs re-enter KVM_RUN.
   *
   * @remarks Models softmmu/cpus.c:vm_prepare_start() / vm_start() (vm_state_notify(true),
   * resume_all_vcpus).
   */
  vmStart(): number {
    if (this.running) return 0;
    const rc = this.xiveKvm?.changeState(true) ?? 0;
    this.running = true;
    if (this.kvm !== null) for (const c of this.cpus) (c as SpaprKvmCpu).start();
    return rc;
  }

  /**
   * Claim `lisn` in the (only) interrupt controller; a failure is a machine-construction bug.
   *
   * @remarks Models hw/ppc/spapr_irq.c:spapr_irq_claim().
   */
  private claim(lisn: number, lsi: boolean): void {
    const rc = this.xive.claimIrq(lisn, lsi);
    if (rc !== 0) throw new Error(`IRQ ${lisn} is not free (claim returned ${rc})`);
  }

  /**
   * Map or unmap the XIVE ESB and TIMA windows (the END ESB window stays disabled).
   *
   * @remarks Models hw/intc/spapr_xive.c:spapr_xive_mmio_set_enabled().
   */
  setXiveMmioEnabled(on: boolean): void {
    this.sysmem.begin();
    this.esbRegion.setEnabled(on);
    this.endRegion.setEnabled(false);
    this.timaRegion.setEnabled(on);
    this.sysmem.commit();
  }

  /**
   * Hypercall dispatch: R3 = opcode, `args` = R4…, outputs in `out`.
   *
   * @remarks Models hw/ppc/spapr_hcall.c:spapr_hypercall().
   */
  hcall(cpu: number, opcode: number, args: readonly bigint[], out: bigint[]): number {
    if (this.trace.mask & TRACE_HCALL) traceEvent(this.trace, 'hcall', { cpu, opcode });
    if (opcode === KVMPPC_H_CAS) return this.hClientArchitectureSupport(args);
    if (opcode >= H_INT_GET_SOURCE_INFO && opcode <= H_INT_RESET && opcode % 4 === 0) {
      return this.xive.hcall(cpu, opcode, args, out);
    }
    // QEMU logs "Unimplemented SPAPR hcall" under LOG_UNIMP (not a guest error).
    if (this.trace.mask & TRACE_HCALL) traceEvent(this.trace, 'hcall.unimplemented', { cpu, opcode });
    return H_FUNCTION;
  }

  /**
   * KVMPPC_H_CAS(vec, fdt_buf, fdt_bufsize): parse the guest's PVR list and option vectors;
   * on success record the negotiated interrupt mode and write the device-tree update header.
   *
   * @remarks Models hw/ppc/spapr_hcall.c:h_client_architecture_support(). We write the
   * `SpaprDeviceTreeUpdateHeader` (version 1) but no FDT blob: the guest reads its device
   * tree through {@link deviceTree}.
   */
  private hClientArchitectureSupport(args: readonly bigint[]): number {
    const vec = ppc64PhysToReal(args[0] ?? 0n);
    const fdtBuf = ppc64PhysToReal(args[1] ?? 0n);
    const fdtBufSize = args[2] ?? 0n;
    if (fdtBufSize < BigInt(SPAPR_DT_UPDATE_HEADER_SIZE)) {
      this.fatal(`SLOF provided insufficient CAS buffer ${fdtBufSize} (min: ${SPAPR_DT_UPDATE_HEADER_SIZE})`);
      return H_HARDWARE;
    }
    const r = doClientArchitectureSupport(this.sysmem, vec, { cpuPvr: this.cpuPvr, xics: false, xive: true });
    this.lastCas = r;
    if (r.status === CAS_STATUS_EXIT) {
      this.fatal(r.message ?? 'CAS failed');
      return H_HARDWARE;
    }
    if (r.rc !== 0) {
      if (this.trace.mask & TRACE_VMM) traceEvent(this.trace, 'cas.fail', { rc: r.rc });
      return r.rc;
    }
    // ov5_cas = platform ov5 ∩ guest ov5; the platform offers exploitation (ic-mode=xive).
    this.xive.exploitation = r.xiveExploitation;
    this.casDone = true;
    this.sysmem.storeBe32(fdtBuf, 1);
    if (this.trace.mask & TRACE_VMM)
      traceEvent(this.trace, 'cas.done', { xiveExploitation: +r.xiveExploitation, ov5Byte23: r.ov5Byte23 });
    return 0;
  }

  private fatal(msg: string): void {
    if (this.fatalError !== null) return;
    this.fatalError = msg;
    this.onFatalError?.(msg);
  }

  /**
   * `system_reset`: interrupt controller state (EAS/END reset, PQs to 01, thread contexts and
   * OS CAM push), CAS forgotten, XIVE still the active controller. Guest RAM is kept, as in
   * QEMU.
   *
   * @remarks Models hw/ppc/spapr.c:spapr_machine_reset() (the interrupt-related steps).
   * Deviation: device MSIs stay allocated and claimed (here they are allocated at init, not by
   * `ibm,change-msi`, so there is no RTAS call to allocate them again).
   *
   * Under KVM the vCPUs are paused around the reset (no run-state change, so no XIVE
   * change-state handler) and the in-kernel device is left as it is: QEMU 7.2 resets its own
   * copies only (the device stays connected; `kvmppc_xive_connect` is a no-op on reboot), so
   * KVM keeps the old targeting, queues, PQs and VP states until the next guest reconfigures them
   * or calls H_INT_RESET.
   */
  reset(): void {
    const kvm = this.kvm !== null && this.running;
    if (kvm) for (const c of this.cpus) (c as SpaprKvmCpu).stop();
    this.intx.reset();
    for (const d of this.devices) d.resetPins();
    this.xive.reset();
    this.xive.exploitation = false;
    this.casDone = false;
    this.lastCas = null;
    this.setXiveMmioEnabled(true);
    if (kvm) for (const c of this.cpus) (c as SpaprKvmCpu).start();
  }

  /** The device-tree facts the guest reads (`spapr_xive_dt` and friends). */
  deviceTree(): GuestDeviceTree {
    return {
      ramSize: this.ramSize,
      ramFree: SPAPR_FIRMWARE_AREA,
      timaOsPage: SPAPR_XIVE_TM_BASE + 2 * 0x10000,
      ipiRange: [SPAPR_IRQ_IPI, SPAPR_IRQ_IPI + this.smp],
      eqSizes: [16],
      resIntPriorities: [this.xive.hvPrio, 0xff - this.xive.hvPrio],
      devices: this.devices.map((d) => ({ name: d.name, msis: [...d.msis], lsis: [...d.lsis] })),
    };
  }

  // --- accesses without a vCPU (qtest readb/writeq…, DMA) ----------------------------------

  /** Load with no vCPU (QEMU `current_cpu == NULL`). */
  load(addr: number, size: AccessSize, out: Word64): void {
    this.sysmem.load(addr, size, NO_CPU, out);
  }

  /** Store with no vCPU. */
  store(addr: number, size: AccessSize, hi: number, lo: number): void {
    this.sysmem.store(addr, size, hi >>> 0, lo >>> 0, NO_CPU);
  }

  /**
   * qtest `read`: bytes from guest memory, as `address_space_read` (RAM copied in one go, devices
   * in the widest accesses they take: see {@link AddressSpace.read}).
   */
  readMemory(addr: number, dst: Uint8Array): void {
    if (addr >= 0 && addr + dst.length <= this.ramSize && this.sysmem.isRam(addr, dst.length)) {
      this.ram.ramRead(addr, dst);
      return;
    }
    this.sysmem.read(addr, dst, NO_CPU);
  }

  /** qtest `write` / `memset`: bytes into guest memory, as `address_space_write`. */
  writeMemory(addr: number, src: Uint8Array): void {
    if (addr >= 0 && addr + src.length <= this.ramSize && this.sysmem.isRam(addr, src.length)) {
      this.ram.ramWrite(addr, src);
      return;
    }
    this.sysmem.write(addr, src, NO_CPU);
  }
}
