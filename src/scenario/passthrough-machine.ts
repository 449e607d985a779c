/**
 * The machine builder of a passthrough run: the functions the scenario passes through (PHB slot,
 * vectors, and for option 4 a new guest device with new irq numbers per plug), the host they live
 * on — KVM's, carrying the design's kernel seam and flags, or for the emulated reference a host
 * that only runs VFIO — and the sPAPR machine over it.
 */

import { DEDICATED_LISN_BASE } from '../designs/dedicated-irqs.ts';
import type { Design } from '../designs/design.ts';
import { createHost, type Host } from '../host/host.ts';
import type { XiveRecordMapping } from '../host/kvm/xive-native-flags.ts';
import type { PciDevice } from '../hw/phb.ts';
import type { TraceSink } from '../sim/trace-sink.ts';
import { SPAPR_XIVE_NR_IRQS } from '../vmm/spapr-irq.ts';
import { type SpaprDeviceConfig, SpaprMachine } from '../vmm/spapr-machine.ts';
import type { VmmVfioPci } from '../vmm/vfio-pci.ts';
import type { PassthroughSpec, Scenario } from './schema.ts';

/** RLIMIT_NOFILE of the VMM: the usual hard limit, which QEMU's start-up raises the soft one to. */
const QEMU_NOFILE = 524_288;
/** PHB slots per PHB on the host (PHB_MAX_SLOTS). */
const SLOTS_PER_PHB = 16;

/** A function assigned to the guest, through its cycles. */
export interface PtFunction {
  readonly name: string;
  /** The machine device the function is now (option 4: a new one, with new numbers, per plug). */
  deviceIndex: number;
  /** Its machine device for each cycle. */
  readonly instances: number[];
  readonly phb: number;
  readonly slot: number;
  readonly vectors: number;
  lisns: readonly number[];
  pdev: PciDevice | null;
  vfio: VmmVfioPci | null;
}

/** How the run's hosts and machines are made. */
export class PassthroughPlan {
  readonly fns: PtFunction[];
  /** Plug cycles, and one more on the destination after a migration. */
  readonly totalCycles: number;
  /** Option 4: every plug of a function is numbered anew from its own range. */
  readonly dedicated: boolean;
  /** The machine's devices: the scenario's, then (option 4) one per later plug of a function. */
  readonly devices: SpaprDeviceConfig[];
  /** The function name of each machine device that is a function's plug. */
  readonly baseName: Map<number, string>;
  private readonly s: Scenario;
  private readonly pt: PassthroughSpec;
  private readonly design: Design;
  private readonly seam: XiveRecordMapping | null;
  private readonly trace: TraceSink;
  private nextDedicated = DEDICATED_LISN_BASE;

  constructor(s: Scenario, design: Design, seam: XiveRecordMapping | null, trace: TraceSink) {
    const pt = s.passthrough;
    if (pt === undefined) throw new Error(`scenario ${s.name} has no passthrough section`);
    this.s = s;
    this.pt = pt;
    this.design = design;
    this.seam = seam;
    this.trace = trace;
    this.fns = pt.devices.map((name, i) => {
      const deviceIndex = s.devices.findIndex((x) => x.name === name);
      return {
        name,
        deviceIndex,
        instances: [],
        phb: Math.floor(i / SLOTS_PER_PHB),
        slot: i % SLOTS_PER_PHB,
        vectors: s.devices[deviceIndex]!.msis,
        lisns: [],
        pdev: null,
        vfio: null,
      };
    });
    this.totalCycles = pt.cycles + (pt.migrate ? 1 : 0);
    this.dedicated = design.accel === 'kvm' && design.lisnRange === 'dedicated';
    this.devices = this.machineDevices();
    this.baseName = new Map();
    for (const f of this.fns) for (const i of f.instances) this.baseName.set(i, f.name);
  }

  /** A host for the functions: KVM's for the designs, VFIO's alone for the reference. */
  newHost(): Host {
    const kvm = this.design.accel === 'kvm';
    const nPhbs = Math.max(1, Math.ceil(this.fns.length / SLOTS_PER_PHB));
    const maxVectors = Math.max(64, ...this.fns.map((f) => f.vectors));
    return createHost({
      // A vCPU per host thread under KVM; the reference's host only runs VFIO.
      nrCpus: kvm ? Math.max(16, this.s.vcpus) : 16,
      ...(kvm ? { xiveFlags: this.design.xiveFlags } : {}),
      ...(this.seam !== null ? { xiveRecordMapping: this.seam } : {}),
      phbs: Array.from({ length: nPhbs }, () => ({ slots: SLOTS_PER_PHB, maxVectors })),
      maxMemslots: this.pt.maxMemslots,
      maxMapCount: this.pt.maxMapCount,
      // QEMU raises RLIMIT_NOFILE to the hard limit at start-up (an eventfd per vector).
      nrOpen: QEMU_NOFILE,
      trace: this.trace,
    });
  }

  /**
   * The machine on host `h`: the designs drive the in-kernel XIVE; the reference emulates it and
   * relays the functions' MSIs through the VMM (vfio-pci eventfds, kernel_irqchip=off).
   */
  newMachine(h: Host, startStopped: boolean): SpaprMachine {
    return new SpaprMachine({
      smp: this.s.vcpus,
      ramSize: this.s.ramSize,
      devices: this.devices,
      trace: this.trace,
      ...(startStopped ? { startStopped } : {}),
      ...(this.design.accel === 'kvm' ? { accel: { kind: 'kvm' as const, host: h } } : { vfioHost: h }),
    });
  }

  /** The scenario's devices, then one per later plug of each function (option 4). */
  private machineDevices(): SpaprDeviceConfig[] {
    const devices: SpaprDeviceConfig[] = this.s.devices.map((dev, i) => {
      const f = this.fns.find((x) => x.deviceIndex === i);
      if (f !== undefined && this.dedicated)
        return {
          name: dev.name,
          msis: dev.msis,
          lsis: dev.lsis,
          lisns: this.dedicatedLisns(dev.msis, dev.name),
        };
      return { name: dev.name, msis: dev.msis, lsis: dev.lsis };
    });
    for (const f of this.fns) {
      f.instances.push(f.deviceIndex);
      for (let c = 1; c < this.totalCycles; c++) {
        if (this.dedicated) {
          f.instances.push(devices.length);
          devices.push({
            name: `${f.name}.${c}`,
            msis: f.vectors,
            lsis: 0,
            lisns: this.dedicatedLisns(f.vectors, f.name),
          });
        } else f.instances.push(f.deviceIndex);
      }
    }
    return devices;
  }

  /** The next `n` numbers of the dedicated range, never reused. */
  private dedicatedLisns(n: number, what: string): number[] {
    const lisns = Array.from({ length: n }, (_, v) => this.nextDedicated + v);
    this.nextDedicated += n;
    if (this.nextDedicated > SPAPR_XIVE_NR_IRQS)
      throw new Error(
        `dedicated irq range exhausted at ${what} (${this.nextDedicated} > ${SPAPR_XIVE_NR_IRQS})`,
      );
    return lisns;
  }
}
