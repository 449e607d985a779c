/**
 * QEMU's vfio-pci for the VMM in KVM mode (`-device vfio-pci` with `kernel-irqchip=on`): a PCI
 * function of the host, bound to vfio-pci, opened by the VMM process, its MSI-X vectors wired
 * straight into the guest — one eventfd per vector, `KVM_IRQFD` with GSI = the guest irq (sPAPR
 * maps GSIs directly, `kvm_gsi_direct_mapping`), then `VFIO_DEVICE_SET_IRQS` with the eventfds,
 * which connects the irq bypass pair and makes KVM re-back the guest irq with the function's
 * interrupt (`kvmppc_xive_set_mapped`). Everything is a syscall on the machine's VMM process.
 *
 * The passthrough-page designs of options 2–4 (review of the XIVE native mode series, 2019) act at the VMM seam
 * ({@link VfioPciSeam}): right after a vector is bound and right before it is unbound.
 *
 * @remarks Models hw/vfio/pci.c (QEMU 7.2): vfio_realize() (device fd, GET_INFO/GET_IRQ_INFO),
 * vfio_msix_enable() / vfio_msix_vector_use() → vfio_add_kvm_msi_virq() →
 * kvm_irqchip_add_irqfd_notifier_gsi(), vfio_enable_vectors(), vfio_msix_disable() →
 * vfio_disable_irqindex() + vfio_msix_vector_release() → vfio_remove_kvm_msi_virq(), and
 * vfio_exitfn() / vfio_instance_finalize() (device fd closed).
 */

import { EINVAL, ENODEV } from '../host/errno.ts';
import {
  EPOLLIN,
  type EventfdWaiter,
  eventfdCtxFileget,
  KVM_IRQFD,
  KVM_IRQFD_FLAG_DEASSIGN,
  KVM_IRQFD_SIZE,
} from '../host/kvm/irqfd.ts';
import type { HostProcess } from '../host/syscalls.ts';
import {
  VFIO_DEVICE_FLAGS_PCI,
  VFIO_DEVICE_GET_INFO,
  VFIO_DEVICE_GET_IRQ_INFO,
  VFIO_DEVICE_INFO_SIZE,
  VFIO_DEVICE_SET_IRQS,
  VFIO_IRQ_INFO_SIZE,
  VFIO_IRQ_SET_ACTION_TRIGGER,
  VFIO_IRQ_SET_DATA_EVENTFD,
  VFIO_IRQ_SET_DATA_NONE,
  VFIO_IRQ_SET_MINSZ,
  VFIO_PCI_MSIX_IRQ_INDEX,
} from '../host/vfio/vfio.ts';
import type { AccessSize, Word64 } from '../hw/mmio.ts';
import type { PciDevice } from '../hw/phb.ts';
import { traceEvent } from '../sim/trace-events.ts';
import { TRACE_VMM } from '../sim/trace-sink.ts';
import type { SpaprMachine } from './spapr-machine.ts';

/** One bound vector as the seam sees it. */
export interface VfioVector {
  /** The guest irq (LISN = KVM GSI) the vector is wired to. */
  readonly lisn: number;
  /** MSI-X vector of the function. */
  readonly vector: number;
  /** The VMM's VFIO device fd (its ESB region maps the vector's two ESB pages). */
  readonly vfioFd: number;
}

/** What a design does in the VMM around bind and unbind (options 2–4). */
export interface VfioPciSeam {
  /** after KVM_IRQFD + SET_IRQS bound the vector (irq bypass → set_mapped ran): 0 or -errno */
  bound(dev: VmmVfioPci, v: VfioVector): number;
  /** before the vector is unbound (SET_IRQS DATA_NONE → clr_mapped): 0 or -errno */
  unbinding(dev: VmmVfioPci, v: VfioVector): number;
  /**
   * Designs whose binds cost memslots: the memslots the VM would need were the irqs `lisns`
   * bound too (binds refused at the limit), counted without changing anything.
   */
  memslotsWanted?(machine: SpaprMachine, lisns: readonly number[]): number;
}

/** The PCI function to assign: host PHB index, slot, and the function itself. */
export interface VfioPciFunction {
  readonly phb: number;
  readonly slot: number;
  readonly pdev: PciDevice;
}

/**
 * An MMIO view of a range of the VMM's own address space (what QEMU itself reads and writes when
 * it touches a RAM-device region, `ram_device_mem_ops`): loads and stores through the process's
 * page tables; a signal reads all ones and drops the store.
 */
export class ProcessRangeOps {
  private readonly proc: HostProcess;
  private readonly base: number;
  constructor(proc: HostProcess, base: number) {
    this.proc = proc;
    this.base = base;
  }
  load(offset: number, size: AccessSize, _cpu: number, out: Word64): void {
    if (this.proc.load(this.base + offset, size, out) !== 0) out.setOnes();
  }
  store(offset: number, size: AccessSize, hi: number, lo: number, _cpu: number): void {
    this.proc.store(this.base + offset, size, hi, lo);
  }
}

/** Counts of what the VMM's vfio-pci did. */
export class VmmVfioPciStats {
  /** KVM_IRQFD assign / deassign ioctls that succeeded. */
  irqfdsAssigned = 0;
  irqfdsDeassigned = 0;
  /** seam.bound / seam.unbinding calls, and how many returned an error. */
  seamBound = 0;
  seamUnbinding = 0;
  seamErrors = 0;
}

/**
 * A passthrough PCI function as the VMM holds it.
 *
 * @remarks Models hw/vfio/pci.c's VFIOPCIDevice (MSI-X only; INTx, MSI and BARs are not modelled).
 */
export class VmmVfioPci {
  readonly machine: SpaprMachine;
  /** The guest irq of each vector. */
  readonly lisns: readonly number[];
  /** The VMM's device fd. */
  readonly vfioFd: number;
  readonly pdev: PciDevice;
  /** True between a successful {@link plug} and {@link unplug}. */
  plugged: boolean;
  readonly phb: number;
  readonly slot: number;
  /** N of `/dev/vfio/devices/vfioN`. */
  readonly vfioN: number;
  /** The eventfd of each vector (`vector->kvm_interrupt`). */
  readonly eventfds: readonly number[];
  readonly seam: VfioPciSeam | null;
  readonly stats: VmmVfioPciStats;
  /** The last error, QEMU's wording. */
  lastError: string | null;
  private readonly proc: HostProcess;
  /** The VM fd, or −1 without KVM (the VMM relays the MSIs itself). */
  private readonly vmFd: number;
  /** Without KVM: the VMM's wait-queue entry on each vector's eventfd (its main-loop poll). */
  private readonly relays: (() => void)[];

  private constructor(
    machine: SpaprMachine,
    fn: VfioPciFunction,
    lisns: readonly number[],
    seam: VfioPciSeam | null,
    s: { vfioN: number; vfioFd: number; eventfds: number[]; relays: (() => void)[] },
  ) {
    const vmm = machine.vmm!;
    this.machine = machine;
    this.lisns = [...lisns];
    this.vfioFd = s.vfioFd;
    this.pdev = fn.pdev;
    this.plugged = true;
    this.phb = fn.phb;
    this.slot = fn.slot;
    this.vfioN = s.vfioN;
    this.eventfds = s.eventfds;
    this.seam = seam;
    this.stats = new VmmVfioPciStats();
    this.lastError = null;
    this.proc = vmm.proc;
    this.vmFd = machine.kvm?.vmFd ?? -1;
    this.relays = s.relays;
  }

  /**
   * QEMU's vfio-pci realize + MSI-X enable: plug the function into the host slot if it is not
   * there yet, bind it to vfio-pci, open `/dev/vfio/devices/vfioN` (GET_INFO: a PCI device;
   * GET_IRQ_INFO: enough MSI-X vectors), an eventfd per vector with `KVM_IRQFD(gsi = lisn)` in
   * KVM mode (without KVM the VMM relays each eventfd to the emulated source), `SET_IRQS` MSI-X
   * with the eventfds; then `seam.bound` per vector. On an error everything done is undone in
   * reverse order and −errno returned (QEMU's realize fails with the device left unplugged).
   * −EINVAL for a machine without a host (no KVM, no `vfioHost`), no vectors, or a function with
   * fewer MSI-X vectors than `lisns`.
   *
   * @remarks Models hw/vfio/pci.c:vfio_realize(), vfio_msix_enable(), vfio_msix_vector_use() and
   * vfio_add_kvm_msi_virq() (kvm_irqchip_add_irqfd_notifier_gsi), vfio_enable_vectors().
   */
  static plug(
    machine: SpaprMachine,
    fn: VfioPciFunction,
    lisns: readonly number[],
    seam: VfioPciSeam | null,
  ): VmmVfioPci | number {
    const vmm = machine.vmm;
    if (vmm === null || lisns.length === 0) return -EINVAL;
    const kvm = machine.kvm;
    const host = vmm.host;
    const p = vmm.proc;
    const phb = host.phbs[fn.phb];
    if (phb === undefined) return -EINVAL;
    // Undo stack: run in reverse on failure.
    const undo: (() => void)[] = [];
    const fail = (rc: number): number => {
      for (let i = undo.length - 1; i >= 0; i--) undo[i]!();
      return rc;
    };

    if (fn.pdev.phb === null) {
      if (!phb.plug(fn.slot, fn.pdev)) return -EINVAL;
      undo.push(() => phb.unplug(fn.slot));
    } else if (fn.pdev.phb !== phb || fn.pdev.slot !== fn.slot) {
      return -EINVAL;
    }
    const ownsBind = !host.vfio.devices.some((d) => d.pdev === fn.pdev);
    const n = host.vfioBind(fn.phb, fn.slot);
    if (n < 0) return fail(n);
    if (ownsBind) undo.push(() => host.vfioUnbind(n));

    // vfio_realize: the device fd, its info and its MSI-X count.
    const vfd = p.open(`/dev/vfio/devices/vfio${n}`);
    if (vfd < 0) return fail(vfd);
    undo.push(() => p.close(vfd));
    const info = p.scratch(Math.max(VFIO_DEVICE_INFO_SIZE, VFIO_IRQ_INFO_SIZE));
    p.putU32(info, VFIO_DEVICE_INFO_SIZE);
    let rc = p.ioctl(vfd, VFIO_DEVICE_GET_INFO, info);
    if (rc < 0) return fail(rc);
    if ((p.getU32(info + 4) & VFIO_DEVICE_FLAGS_PCI) === 0) return fail(-EINVAL);
    p.putU32(info, VFIO_IRQ_INFO_SIZE);
    p.putU32(info + 8, VFIO_PCI_MSIX_IRQ_INDEX);
    rc = p.ioctl(vfd, VFIO_DEVICE_GET_IRQ_INFO, info);
    if (rc < 0) return fail(rc);
    if (p.getU32(info + 12) < lisns.length) return fail(-EINVAL);

    // vfio_msix_vector_use: an eventfd per vector, and an irqfd (GSI = the guest irq) with KVM;
    // without it the VMM's main loop polls the eventfd and pulses the emulated source.
    const efds: number[] = [];
    const relays: (() => void)[] = [];
    for (const lisn of lisns) {
      const efd = p.eventfd();
      if (efd < 0) return fail(efd);
      undo.push(() => p.close(efd));
      if (kvm !== null) {
        rc = irqfd(p, kvm.vmFd, efd, lisn, 0);
        if (rc < 0) return fail(rc);
        undo.push(() => irqfd(p, kvm.vmFd, efd, lisn, KVM_IRQFD_FLAG_DEASSIGN));
      } else {
        const stop = relayMsi(machine, p, efd, lisn);
        undo.push(stop);
        relays.push(stop);
      }
      efds.push(efd);
    }

    // vfio_enable_vectors: SET_IRQS MSI-X with every eventfd (irq bypass → set_mapped).
    rc = setIrqs(p, vfd, efds);
    if (rc < 0) return fail(rc);
    undo.push(() => setIrqs(p, vfd, []));

    const dev = new VmmVfioPci(machine, fn, lisns, seam, {
      vfioN: n,
      vfioFd: vfd,
      eventfds: efds,
      relays,
    });
    if (kvm !== null) dev.stats.irqfdsAssigned = efds.length;
    if (seam !== null) {
      for (let v = 0; v < lisns.length; v++) {
        const vec: VfioVector = { lisn: lisns[v]!, vector: v, vfioFd: vfd };
        dev.stats.seamBound++;
        rc = seam.bound(dev, vec);
        if (rc < 0) {
          dev.stats.seamErrors++;
          dev.lastError = `vfio ${fn.pdev.name}: vector ${v} (irq ${lisns[v]}): the VMM seam failed: errno ${-rc}`;
          for (let u = v - 1; u >= 0; u--) seam.unbinding(dev, { lisn: lisns[u]!, vector: u, vfioFd: vfd });
          dev.plugged = false;
          return fail(rc);
        }
      }
    }
    const t = machine.trace;
    if (t.mask & TRACE_VMM)
      traceEvent(t, 'vfio.plug', { phb: fn.phb, slot: fn.slot, firstLisn: lisns[0]!, nvec: lisns.length });
    return dev;
  }

  /**
   * `seam.unbinding` per vector, SET_IRQS DATA_NONE (irq bypass del → clr_mapped), KVM_IRQFD
   * deassign and close of each eventfd, close of the device fd, then the host side: unbind from
   * vfio-pci and unplug from the slot (whoever plugged it). Every step runs whatever failed
   * before; returns 0 or the first error (−ENODEV when already unplugged).
   *
   * @remarks Models hw/vfio/pci.c:vfio_msix_disable() (vfio_disable_irqindex, then
   * vfio_msix_vector_release → vfio_remove_kvm_msi_virq per vector) and vfio_exitfn() /
   * vfio_instance_finalize().
   */
  unplug(): number {
    if (!this.plugged) return -ENODEV;
    this.plugged = false;
    const p = this.proc;
    let first = 0;
    const note = (rc: number): void => {
      if (rc < 0 && first === 0) first = rc;
    };
    if (this.seam !== null) {
      for (let v = 0; v < this.lisns.length; v++) {
        this.stats.seamUnbinding++;
        const rc = this.seam.unbinding(this, { lisn: this.lisns[v]!, vector: v, vfioFd: this.vfioFd });
        if (rc < 0) {
          this.stats.seamErrors++;
          this.lastError = `vfio ${this.pdev.name}: vector ${v} (irq ${this.lisns[v]}): the VMM seam failed on unbind: errno ${-rc}`;
        }
        note(rc);
      }
    }
    note(setIrqs(p, this.vfioFd, []));
    this.eventfds.forEach((efd, v) => {
      if (this.vmFd >= 0) {
        const rc = irqfd(p, this.vmFd, efd, this.lisns[v]!, KVM_IRQFD_FLAG_DEASSIGN);
        if (rc === 0) this.stats.irqfdsDeassigned++;
        note(rc);
      } else this.relays[v]!();
      note(p.close(efd));
    });
    note(p.close(this.vfioFd));
    const host = this.machine.vmm!.host;
    note(host.vfioUnbind(this.vfioN));
    if (this.pdev.phb !== null) host.phbs[this.phb]!.unplug(this.slot);
    const t = this.machine.trace;
    if (t.mask & TRACE_VMM)
      traceEvent(t, 'vfio.unplug', { phb: this.phb, slot: this.slot, firstLisn: first });
    return first;
  }
}

/**
 * Without KVM, QEMU's main loop polls a vector's eventfd and, when it fires, reads it and
 * notifies the MSI: the emulated source of `lisn` is pulsed once per read, however many signals
 * the read collected (an edge). Modelled as the VMM's wait-queue entry on the eventfd, as epoll
 * adds one. Returns the removal.
 *
 * @remarks Models hw/vfio/pci.c:vfio_msi_interrupt() → msix_notify() → hw/ppc/spapr_pci.c
 * spapr_msi_write() → qemu_irq_pulse().
 */
function relayMsi(machine: SpaprMachine, p: HostProcess, efd: number, lisn: number): () => void {
  const file = p.proc.fget(efd);
  const ctx = file === null ? null : eventfdCtxFileget(file);
  if (ctx === null || typeof ctx === 'number') return () => {};
  const waiter: EventfdWaiter = (c, flags) => {
    if (!(flags & EPOLLIN) || c.doRead() === 0) return;
    machine.xive.setIrq(lisn, 1);
    machine.xive.setIrq(lisn, 0);
  };
  ctx.addWaiter(waiter);
  return () => ctx.removeWaiter(waiter);
}

/**
 * `KVM_IRQFD` (assign, or deassign with {@link KVM_IRQFD_FLAG_DEASSIGN}) of `efd` on GSI `gsi`.
 *
 * @remarks Models accel/kvm/kvm-all.c:kvm_irqchip_assign_irqfd().
 */
function irqfd(p: HostProcess, vmFd: number, efd: number, gsi: number, flags: number): number {
  const a = p.scratch(KVM_IRQFD_SIZE);
  p.putBytes(a, new Uint8Array(KVM_IRQFD_SIZE));
  p.putU32(a, efd);
  p.putU32(a + 4, gsi);
  p.putU32(a + 8, flags);
  return p.ioctl(vmFd, KVM_IRQFD, a);
}

/**
 * `VFIO_DEVICE_SET_IRQS` on the MSI-X index: the eventfds of vectors 0… (DATA_EVENTFD), or with
 * none, DATA_NONE with count 0 (disable).
 *
 * @remarks Models hw/vfio/pci.c:vfio_enable_vectors() and hw/vfio/common.c:vfio_disable_irqindex().
 */
function setIrqs(p: HostProcess, vfd: number, efds: readonly number[]): number {
  const len = VFIO_IRQ_SET_MINSZ + 4 * efds.length;
  const s = p.scratch(len);
  p.putU32(s, len);
  p.putU32(
    s + 4,
    (efds.length ? VFIO_IRQ_SET_DATA_EVENTFD : VFIO_IRQ_SET_DATA_NONE) | VFIO_IRQ_SET_ACTION_TRIGGER,
  );
  p.putU32(s + 8, VFIO_PCI_MSIX_IRQ_INDEX);
  p.putU32(s + 12, 0);
  p.putU32(s + 16, efds.length);
  for (let i = 0; i < efds.length; i++) p.putU32(s + 20 + 4 * i, efds[i]!);
  return p.ioctl(vfd, VFIO_DEVICE_SET_IRQS, s);
}
