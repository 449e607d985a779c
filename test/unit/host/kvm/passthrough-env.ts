/**
 * Passthrough through the host syscalls, as QEMU's vfio-pci does it with kernel_irqchip=on: plug
 * a function, bind it to vfio-pci, open it, one eventfd + KVM_IRQFD (GSI = guest irq) per
 * vector, then VFIO_DEVICE_SET_IRQS; and the reverse.
 */
import { expect } from 'vitest';
import { KVM_IRQFD, KVM_IRQFD_FLAG_DEASSIGN } from '../../../../src/host/kvm/irqfd.ts';
import type { HostProcess } from '../../../../src/host/syscalls.ts';
import {
  VFIO_DEVICE_SET_IRQS,
  VFIO_IRQ_SET_ACTION_TRIGGER,
  VFIO_IRQ_SET_DATA_EVENTFD,
  VFIO_IRQ_SET_DATA_NONE,
  VFIO_PCI_MSIX_IRQ_INDEX,
} from '../../../../src/host/vfio/vfio.ts';
import { PciDevice } from '../../../../src/hw/phb.ts';
import type { VmEnv } from './host-env.ts';

/** What {@link assign} needs of a VM: the host, the VMM process and the VM fd. */
export type PassthroughVm = Pick<VmEnv, 'host' | 'vmm' | 'vmFd'>;

export interface Assigned {
  pdev: PciDevice;
  n: number;
  vfd: number;
  efds: number[];
  gsis: number[];
}

/**
 * What QEMU's vfio-pci does for a passthrough function with kernel_irqchip=on: plug, bind to
 * vfio-pci, open, an eventfd + KVM_IRQFD (GSI = guest irq) per vector, then SET_IRQS MSI-X with
 * the eventfds (irq bypass → kvmppc_xive_set_mapped).
 */
export function assign(e: PassthroughVm, slot: number, gsis: number[]): Assigned {
  const p = e.vmm;
  const pdev = new PciDevice({ name: `nic${slot}`, msix: gsis.length });
  expect(e.host.phbs[0]!.plug(slot, pdev)).toBe(true);
  const n = e.host.vfioBind(0, slot);
  const vfd = p.open(`/dev/vfio/devices/vfio${n}`);
  expect(vfd).toBeGreaterThanOrEqual(0);
  const efds = gsis.map((gsi) => {
    const efd = p.eventfd();
    expect(irqfd(p, e.vmFd, efd, gsi, 0)).toBe(0);
    return efd;
  });
  expect(setIrqs(p, vfd, efds)).toBe(0);
  return { pdev, n, vfd, efds, gsis };
}

/** The reverse: SET_IRQS DATA_NONE (irq bypass del → clr_mapped), deassign, close, unplug. */
export function unassign(e: PassthroughVm, a: Assigned, slot: number): void {
  const p = e.vmm;
  expect(setIrqs(p, a.vfd, [])).toBe(0);
  a.efds.forEach((efd, i) => {
    expect(irqfd(p, e.vmFd, efd, a.gsis[i]!, KVM_IRQFD_FLAG_DEASSIGN)).toBe(0);
    expect(p.close(efd)).toBe(0);
  });
  expect(p.close(a.vfd)).toBe(0);
  expect(e.host.vfioUnbind(a.n)).toBe(0);
  expect(e.host.phbs[0]!.unplug(slot)).toBe(a.pdev);
}

/** Writes `words` as consecutive u32s at a fresh user address and returns it. */
function userWords(p: HostProcess, words: readonly number[]): number {
  const a = p.userAlloc(4 * words.length);
  for (const [i, w] of words.entries()) p.putU32(a + 4 * i, w);
  return a;
}

/** `KVM_IRQFD`: struct kvm_irqfd {fd, gsi, flags, resamplefd, pad[16]} (32 bytes). */
export function irqfd(p: HostProcess, vmFd: number, efd: number, gsi: number, flags = 0): number {
  return p.ioctl(vmFd, KVM_IRQFD, userWords(p, [efd, gsi, flags, 0, 0, 0, 0, 0]));
}

/**
 * `VFIO_DEVICE_SET_IRQS` MSI-X: eventfds for vectors [0, n), or disable (none). struct
 * vfio_irq_set {argsz, flags, index, start, count, data[]}.
 */
export function setIrqs(p: HostProcess, vfd: number, efds: number[]): number {
  const flags =
    (efds.length ? VFIO_IRQ_SET_DATA_EVENTFD : VFIO_IRQ_SET_DATA_NONE) | VFIO_IRQ_SET_ACTION_TRIGGER;
  const set = [20 + 4 * efds.length, flags, VFIO_PCI_MSIX_IRQ_INDEX, 0, efds.length, ...efds];
  return p.ioctl(vfd, VFIO_DEVICE_SET_IRQS, userWords(p, set));
}
