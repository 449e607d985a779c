/**
 * Hot-plug and hot-unplug of an assigned PCI function while the guest runs: the host and VMM
 * steps, in the order QEMU + VFIO + KVM take them.
 *
 * Plug: the function appears in a PHB slot → vfio-pci binds it and the VMM opens it → one eventfd
 * per vector, each bound to its guest interrupt number with `KVM_IRQFD` → `VFIO_DEVICE_SET_IRQS`
 * enables MSI-X (or MSI) with those eventfds: for each vector request_irq on the host, then the
 * irq bypass producer meets KVM's irqfd consumer → `kvmppc_xive_set_mapped(gsi, hw irq)`, which
 * zaps the guest irq's ESB pages so that the next access faults in the device's pages.
 *
 * Unplug: `VFIO_DEVICE_SET_IRQS` DATA_NONE disables MSI: for each vector the producer is
 * unregistered (→ `kvmppc_xive_clr_mapped`: the zap sends the guest back to the IPI's pages),
 * then the host irq is freed → irqfds deassigned → eventfds released → device fd closed, driver
 * unbound → the function leaves the slot and its ESB frames go away.
 *
 * The guest's own part (its driver starting the interrupts through H_INT_SET_SOURCE_CONFIG and
 * an ESB unmask, and stopping them before the unplug) is the caller's, between the two calls.
 */

import type { PciDevice, Phb } from '../../hw/phb.ts';
import { EBUSY, EINVAL } from '../errno.ts';
import { EventfdCtx, KVM_IRQFD_FLAG_DEASSIGN, type KvmIrqfds } from '../kvm/irqfd.ts';
import { VFIO_PCI_MSI_IRQ_INDEX, VFIO_PCI_MSIX_IRQ_INDEX, type VfioPci, type VfioPciDevice } from './vfio.ts';

/** An assigned function, from plug to unplug. */
export class AssignedDevice {
  readonly phb: Phb;
  readonly slot: number;
  readonly pdev: PciDevice;
  readonly vdev: VfioPciDevice;
  readonly vm: KvmIrqfds;
  /** Guest interrupt number (GSI = LISN) of each vector. */
  readonly gsis: readonly number[];
  readonly eventfds: readonly EventfdCtx[];
  /** VFIO irq index in use (MSI or MSI-X). */
  readonly index: number;
  plugged: boolean;
  constructor(
    phb: Phb,
    slot: number,
    pdev: PciDevice,
    vdev: VfioPciDevice,
    vm: KvmIrqfds,
    gsis: readonly number[],
    eventfds: readonly EventfdCtx[],
    index: number,
  ) {
    this.phb = phb;
    this.slot = slot;
    this.pdev = pdev;
    this.vdev = vdev;
    this.vm = vm;
    this.gsis = gsis;
    this.eventfds = eventfds;
    this.index = index;
    this.plugged = true;
  }

  /** Whether vector `v` is bypassed (its GSI mapped to the device hw irq in KVM). */
  isBound(v: number): boolean {
    const m = this.vm.passthruOf(this.gsis[v]!);
    return m !== null && m.rHwirq === this.phb.msiHwIrq(this.slot, v);
  }

  /** Hardware irq of vector `v`. */
  hwIrq(v: number): number {
    return this.phb.msiHwIrq(this.slot, v);
  }
}

/** Options of {@link vfioHotplug}. */
export interface HotplugOptions {
  /** 'msix' (default) or 'msi'. */
  mode?: 'msix' | 'msi';
}

/**
 * Plug `pdev` into `phb` slot `slot` and assign it to the VM whose irqfds are `vm`, vector v
 * delivering to guest interrupt `gsis[v]`. Returns the assignment or −errno (−EBUSY: slot
 * taken; −EINVAL: no vectors; a VFIO / KVM error), with everything done so far undone.
 */
export function vfioHotplug(
  vfio: VfioPci,
  vm: KvmIrqfds,
  phb: Phb,
  slot: number,
  pdev: PciDevice,
  gsis: readonly number[],
  opts: HotplugOptions = {},
): AssignedDevice | number {
  const msix = (opts.mode ?? 'msix') === 'msix';
  const index = msix ? VFIO_PCI_MSIX_IRQ_INDEX : VFIO_PCI_MSI_IRQ_INDEX;
  if (gsis.length === 0) return -EINVAL;
  if (!phb.plug(slot, pdev)) return -EBUSY;
  const vdev = vfio.bind(pdev);
  if (typeof vdev === 'number') {
    phb.unplug(slot);
    return vdev;
  }
  let rc = vdev.open();
  if (rc) {
    vfio.unbind(vdev);
    phb.unplug(slot);
    return rc;
  }
  const efds: EventfdCtx[] = [];
  const undo = (): void => {
    for (let i = 0; i < efds.length; i++) vm.kvmIrqfd(efds[i]!, gsis[i]!, KVM_IRQFD_FLAG_DEASSIGN);
    for (const e of efds) e.hangup();
    vfio.unbind(vdev);
    phb.unplug(slot);
  };
  // QEMU: kvm_irqchip_add_irqfd_notifier_gsi for each vector, before the vectors are enabled.
  for (let v = 0; v < gsis.length; v++) {
    const e = new EventfdCtx();
    rc = vm.kvmIrqfd(e, gsis[v]!, 0);
    if (rc) {
      e.hangup();
      undo();
      return rc;
    }
    efds.push(e);
  }
  rc = vdev.setIrqsEventfds(index, 0, efds);
  if (rc) {
    undo();
    return rc;
  }
  return new AssignedDevice(phb, slot, pdev, vdev, vm, gsis, efds, index);
}

/**
 * Unassign and unplug. 0, or the first error met (the later steps still run: an unplug cannot
 * be refused).
 */
export function vfioHotUnplug(vfio: VfioPci, a: AssignedDevice): number {
  if (!a.plugged) return -EINVAL;
  let first = 0;
  const note = (rc: number): void => {
    if (rc && !first) first = rc;
  };
  note(a.vdev.disableIrqs(a.index));
  for (let v = 0; v < a.gsis.length; v++)
    note(a.vm.kvmIrqfd(a.eventfds[v]!, a.gsis[v]!, KVM_IRQFD_FLAG_DEASSIGN));
  for (const e of a.eventfds) e.hangup();
  vfio.unbind(a.vdev);
  a.phb.unplug(a.slot);
  a.plugged = false;
  return first;
}
