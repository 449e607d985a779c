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
  encodeKvmUserspaceMemoryRegion,
  KVM_CREATE_DEVICE,
  KVM_CREATE_VCPU,
  KVM_CREATE_VM,
  KVM_DEV_TYPE_XIVE,
  KVM_DEV_XIVE_GRP_SOURCE,
  KVM_SET_DEVICE_ATTR,
  KVM_SET_USER_MEMORY_REGION,
} from '../../../host/kvm/uapi.ts';
import type { KvmXiveNative } from '../../../host/kvm/xive-native.ts';
import type { XiveNativeFlags } from '../../../host/kvm/xive-native-flags.ts';
import { MAP_SHARED, PROT_READ, PROT_WRITE } from '../../../host/mm/constants.ts';
import type { HostProcess } from '../../../host/syscalls.ts';
import {
  VFIO_DEVICE_SET_IRQS,
  VFIO_IRQ_SET_ACTION_TRIGGER,
  VFIO_IRQ_SET_DATA_EVENTFD,
  VFIO_PCI_MSIX_IRQ_INDEX,
} from '../../../host/vfio/vfio.ts';
import { Word64 } from '../../../hw/mmio.ts';
import { PciDevice } from '../../../hw/phb.ts';
import { NULL_TRACE } from '../../../hw/trace-sink.ts';
import { RACE_NR_IRQS, type RaceSetup } from '../../../scenario/race-schema.ts';
import { HeapSnapshot } from '../heap-snapshot.ts';
import { ExploreLock } from '../locks.ts';

/** Host page size. */
export const P = 0x1_0000;
/** Guest physical address of the ESB range (QEMU's sPAPR XIVE ESB window). */
export const ESB_GPA = 0x0006_0100_0000_0000;
const RW = PROT_READ | PROT_WRITE;

/** One process of the scenario and where its ESB mapping starts (−1: none). */
export interface WorldProcess {
  readonly name: string;
  readonly p: HostProcess;
  readonly esb: number;
}

/** A VFIO function of the scenario. */
export interface WorldFunction {
  readonly name: string;
  /** Host HW irq of each MSI vector. */
  readonly hw: readonly number[];
}

export class KernelWorld {
  readonly host: Host;
  readonly dev: KvmXiveNative;
  readonly procs: WorldProcess[] = [];
  readonly fns: WorldFunction[] = [];
  readonly irqs: readonly number[];
  /** The VM (its partition-scoped tree, MMU notifier). */
  readonly vm: KvmVm;
  /** `kvm->lock`: set/clr_mapped (through kvmppc_{set,clr}_passthru_irq) and release. */
  readonly kvmLock = new ExploreLock('kvm->lock');
  /** `vcpu->mutex` of each vCPU: KVM_RUN holds it; release takes it around each vCPU cleanup. */
  readonly vcpuMutex: ExploreLock[] = [];
  private snapshot: HeapSnapshot | null = null;

  constructor(setup: RaceSetup, design: Design, flags: Partial<XiveNativeFlags>) {
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
      trace: NULL_TRACE,
    });
    const vmm = this.host.spawn();
    const vmFd = vmm.ioctl(vmm.open('/dev/kvm'), KVM_CREATE_VM, 0);
    for (let i = 0; i < setup.vcpus; i++) {
      must(vmm.ioctl(vmFd, KVM_CREATE_VCPU, i), 'KVM_CREATE_VCPU');
      this.vcpuMutex.push(new ExploreLock(`vcpu${i}->mutex`));
    }
    const cd = vmm.userStruct(encodeKvmCreateDevice({ type: KVM_DEV_TYPE_XIVE }));
    must(vmm.ioctl(vmFd, KVM_CREATE_DEVICE, cd), 'KVM_CREATE_DEVICE');
    const devFd = vmm.getU32(cd + 4);
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
    const esb = must(vmm.mmap(0, esbLen, RW, MAP_SHARED, devFd, 4 * P), 'mmap');
    this.procs.push({ name: first.name, p: vmm, esb });
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
      this.fns.push({ name: f.name, hw: Array.from({ length: f.vectors }, (_, v) => phb.msiHwIrq(slot, v)) });
    });
    for (const b of setup.bound) must(this.dev.setMapped(b.irq, this.hwOf(b.function, b.vector)), 'bind');
    for (const pr of setup.processes.slice(1)) {
      const parent = this.proc(pr.fork!);
      const child = parent.p.fork();
      if (typeof child === 'number') throw new Error(`race world set-up: fork failed (${child})`);
      this.procs.push({ name: pr.name, p: child, esb: parent.esb });
    }
    const w = new Word64();
    for (const f of setup.faulted) {
      const pr = this.proc(f.process);
      must(-pr.p.load(this.esbAddr(pr, f.irq, f.page), 8, w), `fault in ${f.process} girq ${f.irq}`);
    }
  }

  /** Take the snapshot {@link restore} returns to (once the set-up is complete). */
  snapshotNow(): void {
    this.snapshot = new HeapSnapshot([this.host, this.kvmLock, ...this.vcpuMutex]);
  }

  /** Back to the snapshot. */
  restore(): void {
    if (this.snapshot === null) throw new Error('KernelWorld.restore before snapshotNow');
    this.snapshot.restore();
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
    const f = this.fns.find((x) => x.name === fn);
    if (f === undefined) throw new Error(`no function ${fn}`);
    return f.hw[vector]!;
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
