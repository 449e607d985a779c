/**
 * A whole host: one physical memory shared by everything (the POWER9 XIVE's MMIO, the PHBs'
 * device ESB pages, the host RAM pool the memory manager hands out), the host XIVE driver, the
 * memory manager, vfio-pci with the irq bypass manager, and the KVM module. Userspace reaches
 * it only through {@link HostProcess} syscalls.
 *
 * Physical layout: host RAM at 0 (`ramFrames` × 64 KiB), the host XIVE's own queues at
 * `HOST_XIVE_QUEUE_BASE`, the chip's IPI ESB / TIMA / END ESB and the PHB windows in their
 * `0x6_…` ranges. Because the memory manager's frames are PhysMem's RAM, an EQ entry the chip
 * writes by DMA is the word the VMM process and the guest read.
 */

import { Phb } from '../hw/phb.ts';
import { PhysMem } from '../hw/phys-mem.ts';
import { P9Chip } from '../hw/xive/p9-chip.ts';
import { NULL_TRACE, type TraceSink } from '../sim/trace-sink.ts';
import { EINVAL, ENODEV } from './errno.ts';
import { Kvm } from './kvm/kvm.ts';
import type { XiveNativeFlags, XiveRecordMapping } from './kvm/xive-native-flags.ts';
import { MmHost } from './mm/mm-host.ts';
import { PhysFrames } from './mm/phys-frames.ts';
import { HostProcess } from './syscalls.ts';
import { IrqBypassManager } from './vfio/irq-bypass.ts';
import { VfioPci, type VfioPciDevice } from './vfio/vfio.ts';
import { HostXive } from './xive/host-xive.ts';

/** Physical address of the host RAM pool. */
export const HOST_RAM_BASE = 0;

export interface HostConfig {
  /** Physical threads (default 16); vCPU i of a VM runs on host thread i mod nrCpus. */
  nrCpus?: number;
  /** Host RAM in 64 KiB frames (default 16384 = 1 GiB). */
  ramFrames?: number;
  /** KVM_USER_MEM_SLOTS (default 512, as ppc). */
  maxMemslots?: number;
  /** Latent-bug flags of every XIVE device created (default: mainline). */
  xiveFlags?: Partial<XiveNativeFlags>;
  /** What every XIVE device records at mmap: the designs' kernel seam (default: mainline). */
  xiveRecordMapping?: XiveRecordMapping;
  /** PHBs with hot-plug slots (default [{ slots: 4, maxVectors: 64 }]). */
  phbs?: readonly { slots: number; maxVectors: number }[];
  /** vm.max_map_count (default 65530). */
  maxMapCount?: number;
  /** RLIMIT_NOFILE of every process (default 1024; QEMU raises its soft limit to the hard one). */
  nrOpen?: number;
  /** HW IPIs of the chip (default 0x10000). */
  nrIpis?: number;
  trace?: TraceSink;
}

/** The host: hardware + kernel. */
export class Host {
  readonly trace: TraceSink;
  readonly phys: PhysMem;
  readonly chip: P9Chip;
  readonly xive: HostXive;
  /** The memory manager's frame pool over {@link phys}. */
  readonly frames: PhysFrames;
  readonly mm: MmHost;
  readonly phbs: readonly Phb[];
  readonly vfio: VfioPci;
  readonly bypass: IrqBypassManager;
  /** The KVM module: live VMs, stats. */
  readonly kvm: Kvm;
  /** `/dev/vfio/devices/vfioN` → the bound function (null once unbound). */
  private readonly vfioDevs: (VfioPciDevice | null)[];

  constructor(cfg: HostConfig = {}) {
    const trace = cfg.trace ?? NULL_TRACE;
    const nrCpus = cfg.nrCpus ?? 16;
    this.trace = trace;
    this.phys = new PhysMem(trace);
    const chipCfg: { nrCpus: number; nrIpis?: number } = { nrCpus };
    if (cfg.nrIpis !== undefined) chipCfg.nrIpis = cfg.nrIpis;
    this.chip = new P9Chip(chipCfg, this.phys, trace);
    this.xive = new HostXive(this.chip, trace);
    this.frames = new PhysFrames(this.phys, HOST_RAM_BASE, cfg.ramFrames ?? 16384);
    const mmCfg: { frames: PhysFrames; maxMapCount?: number; nrOpen?: number } = { frames: this.frames };
    if (cfg.maxMapCount !== undefined) mmCfg.maxMapCount = cfg.maxMapCount;
    if (cfg.nrOpen !== undefined) mmCfg.nrOpen = cfg.nrOpen;
    this.mm = new MmHost(trace, mmCfg);
    this.phbs = (cfg.phbs ?? [{ slots: 4, maxVectors: 64 }]).map(
      (p, i) => new Phb({ index: i, slots: p.slots, maxVectors: p.maxVectors }, this.chip, trace),
    );
    this.bypass = new IrqBypassManager();
    this.vfio = new VfioPci(this.xive, this.bypass, trace);
    const kvmCfg: ConstructorParameters<typeof Kvm>[0] = {
      mm: this.mm,
      frames: this.frames,
      xive: this.xive,
      bypass: this.bypass,
      trace,
      nrCpus,
    };
    if (cfg.maxMemslots !== undefined) kvmCfg.maxMemslots = cfg.maxMemslots;
    if (cfg.xiveFlags !== undefined) kvmCfg.xiveFlags = cfg.xiveFlags;
    if (cfg.xiveRecordMapping !== undefined) kvmCfg.xiveRecordMapping = cfg.xiveRecordMapping;
    this.kvm = new Kvm(kvmCfg);
    this.vfioDevs = [];
  }

  /** A new process with an empty address space and no fds. */
  spawn(): HostProcess {
    return new HostProcess(this, this.mm.spawn());
  }

  /**
   * Bind the PCI function plugged in (phb, slot) to vfio-pci: N of `/dev/vfio/devices/vfioN`
   * (the same N again for a function already bound), −EINVAL for no such PHB/slot, −ENODEV for
   * an empty slot.
   */
  vfioBind(phb: number, slot: number): number {
    const s = this.phbs[phb]?.slots[slot];
    if (s === undefined) return -EINVAL;
    if (s.device === null) return -ENODEV;
    const vdev = this.vfio.bind(s.device);
    if (typeof vdev === 'number') return vdev;
    const have = this.vfioDevs.indexOf(vdev);
    if (have >= 0) return have;
    this.vfioDevs.push(vdev);
    return this.vfioDevs.length - 1;
  }

  /**
   * Unbind `/dev/vfio/devices/vfioN` from vfio-pci (open device fds are released first, as
   * when the user answers the REQ interrupt). 0 or −ENODEV.
   */
  vfioUnbind(n: number): number {
    const vdev = this.vfioDevs[n] ?? null;
    if (vdev === null) return -ENODEV;
    this.vfio.unbind(vdev);
    this.vfioDevs[n] = null;
    return 0;
  }

  /** The function behind `/dev/vfio/devices/vfioN`, or null. */
  vfioDevice(n: number): VfioPciDevice | null {
    return Number.isInteger(n) && n >= 0 ? (this.vfioDevs[n] ?? null) : null;
  }
}

/** A host with the given configuration (see {@link HostConfig} for the defaults). */
export function createHost(cfg?: HostConfig): Host {
  return new Host(cfg);
}
