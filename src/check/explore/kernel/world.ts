/**
 * The kernel state a race scenario starts from, built once through the host's syscall surface
 * (the VMM creates the VM, the XIVE device and its sources, maps the ESB range; VFIO functions
 * get their MSI vectors; processes fork; pages are faulted in; bindings made) and then restored
 * in place before every explored execution ({@link HeapSnapshot}): a rebuild costs milliseconds,
 * a restore a fraction of one.
 */

import type { Design } from '../../../designs/design.ts';
import { DesignStats } from '../../../designs/design.ts';
import { createHost, type Host } from '../../../host/host.ts';
import type { KvmVm } from '../../../host/kvm/kvm.ts';
import {
  encodeKvmCreateDevice,
  encodeKvmDeviceAttr,
  encodeKvmEnableCap,
  encodeKvmUserspaceMemoryRegion,
  KVM_CREATE_DEVICE,
  KVM_CREATE_VCPU,
  KVM_CREATE_VM,
  KVM_DEV_TYPE_XIVE,
  KVM_DEV_XIVE_GRP_SOURCE,
  KVM_ENABLE_CAP,
  KVM_SET_DEVICE_ATTR,
  KVM_SET_USER_MEMORY_REGION,
} from '../../../host/kvm/uapi.ts';
import type { KvmXiveNative } from '../../../host/kvm/xive-native.ts';
import type { XiveNativeFlags } from '../../../host/kvm/xive-native-flags.ts';
import {
  encodeKvmPpcXiveEq,
  KVM_CAP_PPC_IRQ_XIVE,
  KVM_DEV_XIVE_GRP_EQ_CONFIG,
  KVM_XIVE_EQ_ALWAYS_NOTIFY,
  KVM_XIVE_EQ_SERVER_SHIFT,
} from '../../../host/kvm/xive-native-uapi.ts';
import { MAP_ANONYMOUS, MAP_PRIVATE, MAP_SHARED, PROT_READ, PROT_WRITE } from '../../../host/mm/constants.ts';
import type { FileMapping } from '../../../host/mm/file.ts';
import type { HostProcess } from '../../../host/syscalls.ts';
import {
  VFIO_DEVICE_SET_IRQS,
  VFIO_IRQ_SET_ACTION_TRIGGER,
  VFIO_IRQ_SET_DATA_EVENTFD,
  VFIO_PCI_MSIX_IRQ_INDEX,
} from '../../../host/vfio/vfio.ts';
import { Word64 } from '../../../hw/mmio.ts';
import { PciDevice } from '../../../hw/phb.ts';
import { NULL_TRACE, type TraceSink } from '../../../sim/trace-sink.ts';
import { HeapSnapshot } from '../heap-snapshot.ts';
import { ExploreLock } from '../locks.ts';
import { RACE_NR_IRQS, type RaceSetup } from '../race-schema.ts';

/** Host page size. */
export const P = 0x1_0000;
/** Guest physical address of the ESB range (QEMU's sPAPR XIVE ESB window). */
export const ESB_GPA = 0x0006_0100_0000_0000;
const RW = PROT_READ | PROT_WRITE;

/** One process of the scenario and where its ESB and TIMA mappings start (−1: none). */
export interface WorldProcess {
  readonly name: string;
  readonly p: HostProcess;
  readonly esb: number;
  readonly tima: number;
}

/** A VFIO function of the scenario. */
export interface WorldFunction {
  readonly name: string;
  /** PHB slot. */
  readonly slot: number;
  /** Host HW irq of each MSI vector. */
  readonly hw: readonly number[];
  /** Host pfns of its vectors' trigger and EOI pages. */
  readonly pages: readonly number[];
}

/**
 * The checker's ghost state (no kernel object): binds/unbinds in flight per girq, functions
 * removed, and the first violation a step saw. Restored with the world.
 */
export class RaceLog {
  /** Per girq: set/clr_mapped calls between their `kvm->lock` acquire and release. */
  readonly rebinding = new Array<number>(RACE_NR_IRQS).fill(0);
  /** Functions hot-unplugged (their ESB pages are gone). */
  readonly gone: string[] = [];
  /** The first violation seen at a step ('' none). */
  violation = '';
}

/** Where `mremap` threads move a span of the ESB mapping (free in every race world). */
export const MREMAP_TARGET = 0x1000_0000_0000;

export class KernelWorld {
  readonly host: Host;
  readonly dev: KvmXiveNative;
  readonly procs: WorldProcess[] = [];
  readonly fns: WorldFunction[] = [];
  readonly irqs: readonly number[];
  /** The device file's address_space (its reverse map and `i_mmap_rwsem`). */
  readonly fileMapping: FileMapping;
  /** The VM (its partition-scoped tree, MMU notifier). */
  readonly vm: KvmVm;
  /** `kvm->lock`: set/clr_mapped (through kvmppc_{set,clr}_passthru_irq) and release. */
  readonly kvmLock = new ExploreLock('kvm->lock');
  /** `vcpu->mutex` of each vCPU: KVM_RUN holds it; release takes it around each vCPU cleanup. */
  readonly vcpuMutex: ExploreLock[] = [];
  readonly log = new RaceLog();
  private snapshot: HeapSnapshot | null = null;

  /** `trace`: where the host's trace events go (the UI's replay of a counterexample); none by default. */
  constructor(
    setup: RaceSetup,
    design: Design,
    flags: Partial<XiveNativeFlags>,
    trace: TraceSink = NULL_TRACE,
  ) {
    const stats = new DesignStats();
    const seam = design.kernelSeam(stats);
    this.irqs = setup.irqs;
    this.host = createHost({
      nrCpus: 2,
      nrIpis: 256,
      ramFrames: 256,
      phbs: [{ slots: Math.max(1, setup.functions.length), maxVectors: 4 }],
      xiveFlags: { ...design.xiveFlags, ...flags },
      ...(seam !== null ? { xiveRecordMapping: seam } : {}),
      trace,
    });
    const vmm = this.host.spawn();
    const vmFd = vmm.ioctl(vmm.open('/dev/kvm'), KVM_CREATE_VM, 0);
    const vcpuFds: number[] = [];
    for (let i = 0; i < setup.vcpus; i++) {
      vcpuFds.push(must(vmm.ioctl(vmFd, KVM_CREATE_VCPU, i), 'KVM_CREATE_VCPU'));
      this.vcpuMutex.push(new ExploreLock(`vcpu${i}->mutex`));
    }
    const cd = vmm.userStruct(encodeKvmCreateDevice({ type: KVM_DEV_TYPE_XIVE }));
    must(vmm.ioctl(vmFd, KVM_CREATE_DEVICE, cd), 'KVM_CREATE_DEVICE');
    const devFd = vmm.getU32(cd + 4);
    if (setup.queues) connectVcpus(vmm, vmFd, devFd, vcpuFds);
    this.vm = this.host.kvm.vms[0]!;
    this.dev = this.vm.devices[0]!.xive;
    for (const irq of setup.irqs) {
      const a = vmm.userAlloc(8);
      vmm.putU64(a, 0n);
      const attr = vmm.userStruct(
        encodeKvmDeviceAttr({ group: KVM_DEV_XIVE_GRP_SOURCE, attr: irq, addr: a }),
      );
      must(vmm.ioctl(devFd, KVM_SET_DEVICE_ATTR, attr), `KVM_DEV_XIVE_GRP_SOURCE ${irq}`);
    }
    const esbLen = 2 * RACE_NR_IRQS * P;
    const first = setup.processes[0]!;
    const tima = setup.tima ? must(vmm.mmap(0, 4 * P, RW, MAP_SHARED, devFd, 0), 'mmap TIMA') : -1;
    const esb = must(vmm.mmap(0, esbLen, RW, MAP_SHARED, devFd, 4 * P), 'mmap');
    this.procs.push({ name: first.name, p: vmm, esb, tima });
    this.fileMapping = vmm.proc.mm.vmas.lookup(esb)!.file!.mapping;
    // The ESB range as the guest sees it: a memslot (QEMU's RAM device region).
    const region = vmm.userStruct(
      encodeKvmUserspaceMemoryRegion({
        slot: 1,
        flags: 0,
        guestPhysAddr: ESB_GPA,
        memorySize: esbLen,
        userspaceAddr: esb,
      }),
    );
    must(vmm.ioctl(vmFd, KVM_SET_USER_MEMORY_REGION, region), 'KVM_SET_USER_MEMORY_REGION');
    // VFIO functions: plug, bind to vfio-pci, request the MSI-X vectors (the host irqs exist).
    const phb = this.host.phbs[0]!;
    setup.functions.forEach((f, slot) => {
      phb.plug(slot, new PciDevice({ name: f.name, msix: f.vectors }));
      const vfd = must(vmm.open(`/dev/vfio/devices/vfio${this.host.vfioBind(0, slot)}`), 'open vfio');
      must(setMsix(vmm, vfd, f.vectors), 'VFIO_DEVICE_SET_IRQS');
      const hw = Array.from({ length: f.vectors }, (_, v) => phb.msiHwIrq(slot, v));
      const pages = hw.flatMap((h) => {
        const d = this.host.xive.irqOfHw(h)!.data;
        return [d.trigPage / P, d.eoiPage / P];
      });
      this.fns.push({ name: f.name, slot, hw, pages });
    });
    for (const b of setup.bound) must(this.dev.setMapped(b.irq, this.hwOf(b.function, b.vector)), 'bind');
    for (const pr of setup.processes.slice(1)) {
      const parent = this.proc(pr.fork!);
      const child = parent.p.fork();
      if (typeof child === 'number') throw new Error(`race world set-up: fork failed (${child})`);
      this.procs.push({ name: pr.name, p: child, esb: parent.esb, tima: parent.tima });
    }
    const w = new Word64();
    for (const f of setup.faulted) {
      const pr = this.proc(f.process);
      must(-pr.p.load(this.esbAddr(pr, f.irq, f.page), 8, w), `fault in ${f.process} girq ${f.irq}`);
    }
  }

  /** Take the snapshot {@link restore} returns to (once the set-up is complete). */
  snapshotNow(): void {
    this.snapshot = new HeapSnapshot([this.host, this.kvmLock, ...this.vcpuMutex, this.log]);
  }

  /** Back to the snapshot. */
  restore(): void {
    this.snap().restore();
  }

  /** Freeze what the restores may skip ({@link HeapSnapshot.freezeExcept}). */
  freezeExcept(writable: ReadonlySet<number>): void {
    this.snap().freezeExcept(writable);
  }

  /** The snapshot entries that differ from the snapshot now ({@link HeapSnapshot.changed}). */
  changedEntries(): number[] {
    return this.snap().changed();
  }

  private snap(): HeapSnapshot {
    if (this.snapshot === null) throw new Error('KernelWorld used before snapshotNow');
    return this.snapshot;
  }

  /** Objects the restore covers (a size figure). */
  get snapshotObjects(): number {
    return this.snapshot?.size ?? 0;
  }

  proc(name: string): WorldProcess {
    const p = this.procs.find((x) => x.name === name);
    if (p === undefined) throw new Error(`no process ${name}`);
    return p;
  }

  hwOf(fn: string, vector: number): number {
    return this.fn(fn).hw[vector]!;
  }

  fn(name: string): WorldFunction {
    const f = this.fns.find((x) => x.name === name);
    if (f === undefined) throw new Error(`no function ${name}`);
    return f;
  }

  /** Guest frame of girq `irq`'s trigger or EOI page (through the ESB memslot). */
  esbGfn(irq: number, page: 'trig' | 'eoi'): number {
    return ESB_GPA / P + 2 * irq + (page === 'eoi' ? 1 : 0);
  }

  /** User address of girq `irq`'s trigger or EOI page in `pr`'s ESB mapping (ESB GET offset). */
  esbAddr(pr: WorldProcess, irq: number, page: 'trig' | 'eoi'): number {
    return pr.esb + (2 * irq + (page === 'eoi' ? 1 : 0)) * P + 0x800;
  }
}

/** Guest RAM (slot 0 at guest address 0): one page per vCPU, each holding its queue. */
const RAM_SLOT_PAGES = 2;

/**
 * QEMU's vCPU side of the device: guest RAM, then per vCPU `KVM_ENABLE_CAP(KVM_CAP_PPC_IRQ_XIVE)`
 * and a priority-6 event queue (`KVM_DEV_XIVE_GRP_EQ_CONFIG`) in its own RAM page, so that
 * `SOURCE_CONFIG` has a target.
 */
function connectVcpus(vmm: HostProcess, vmFd: number, devFd: number, vcpuFds: readonly number[]): void {
  const ram = must(vmm.mmap(0, RAM_SLOT_PAGES * P, RW, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0), 'mmap RAM');
  const region = vmm.userStruct(
    encodeKvmUserspaceMemoryRegion({
      slot: 0,
      flags: 0,
      guestPhysAddr: 0,
      memorySize: RAM_SLOT_PAGES * P,
      userspaceAddr: ram,
    }),
  );
  must(vmm.ioctl(vmFd, KVM_SET_USER_MEMORY_REGION, region), 'KVM_SET_USER_MEMORY_REGION (RAM)');
  vcpuFds.forEach((fd, server) => {
    const cap = vmm.userStruct(encodeKvmEnableCap({ cap: KVM_CAP_PPC_IRQ_XIVE, args: [devFd, server] }));
    must(vmm.ioctl(fd, KVM_ENABLE_CAP, cap), 'KVM_ENABLE_CAP(KVM_CAP_PPC_IRQ_XIVE)');
    const eq = vmm.userStruct(
      encodeKvmPpcXiveEq({
        flags: KVM_XIVE_EQ_ALWAYS_NOTIFY,
        qshift: 16,
        qaddr: BigInt(server * P),
        qtoggle: 1,
        qindex: 0,
      }),
    );
    const attr = vmm.userStruct(
      encodeKvmDeviceAttr({
        group: KVM_DEV_XIVE_GRP_EQ_CONFIG,
        attr: (BigInt(server) << KVM_XIVE_EQ_SERVER_SHIFT) | 6n,
        addr: eq,
      }),
    );
    must(vmm.ioctl(devFd, KVM_SET_DEVICE_ATTR, attr), 'KVM_DEV_XIVE_GRP_EQ_CONFIG');
  });
}

function must(rc: number, what: string): number {
  if (rc < 0) throw new Error(`race world set-up: ${what} failed (${rc})`);
  return rc;
}

/** `VFIO_DEVICE_SET_IRQS`, MSI-X vectors [0, n) with an eventfd each. */
function setMsix(p: HostProcess, vfd: number, n: number): number {
  const s = p.userAlloc(20 + 4 * n);
  p.putU32(s, 20 + 4 * n);
  p.putU32(s + 4, VFIO_IRQ_SET_DATA_EVENTFD | VFIO_IRQ_SET_ACTION_TRIGGER);
  p.putU32(s + 8, VFIO_PCI_MSIX_IRQ_INDEX);
  p.putU32(s + 12, 0);
  p.putU32(s + 16, n);
  for (let i = 0; i < n; i++) p.putU32(s + 20 + 4 * i, p.eventfd());
  return p.ioctl(vfd, VFIO_DEVICE_SET_IRQS, s);
}
